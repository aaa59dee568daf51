//! TypeScript typings for a hub and its client interface (feature `typescript`): one
//! self-contained module for the official JavaScript client (`@microsoft/signalr`).
//!
//! With the feature on, `#[hub]` and `#[hub_client]` implement [`TypeScript`] for the types they
//! generate, provided every parameter and return type implements [`ts_rs::TS`] (derive it with
//! `#[derive(ts_rs::TS)]` beside the serde derives; ts-rs follows serde's `rename` and
//! `rename_all`). A hub whose types do not is left without the impl, so only the hubs you render
//! need them. [`module`] renders one module:
//!
//! - the payload types the hub's methods use, as exported type aliases with their wire field
//!   names (every integer is `number`, `Option<T>` is `T | null`, `types::Binary` is
//!   `string | Uint8Array`, `types::DateTime` is `string | Date`);
//! - `interface Hub` with one camelCase method per hub method (`Promise<T>`, `IStreamResult<T>`
//!   for a stream, `IStreamResult<T> | Subject<T>` for an upload parameter), and
//!   `createHubProxy(connection)`, calling the wire names;
//! - for a hub with a client interface, `interface Client` and
//!   `registerClient(connection, receiver)`, which returns `{ dispose() }`.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! #[derive(serde::Serialize, serde::Deserialize, ts_rs::TS)]
//! #[serde(rename_all = "PascalCase")]
//! struct Note {
//!     title: String,
//!     stars: u64,
//! }
//!
//! #[hub_client]
//! trait NotesClient {
//!     fn added(&self, note: Note);
//! }
//!
//! struct Notes;
//!
//! #[hub(client = NotesClient)]
//! impl Notes {
//!     async fn add(&self, cx: &HubContext<Self>, note: Note) -> Result<(), HubError> {
//!         cx.clients.others().added(note).await?;
//!         Ok(())
//!     }
//! }
//!
//! let ts = hub_runtime::typescript::module::<Notes>().unwrap();
//! assert!(ts.contains("export type Note = { Title: string, Stars: number, };"));
//! assert!(ts.contains("  add(note: Note): Promise<void>;"));
//! assert!(ts.contains("export function registerNotesClient(connection: HubConnection, receiver: NotesClient)"));
//! ```
//!
//! A hub with a payload type that does not implement `TS` still compiles with the feature on; it
//! only has no module:
//!
//! ```compile_fail
//! use hub_runtime::prelude::*;
//!
//! #[derive(serde::Serialize)]
//! struct Opaque;
//!
//! struct Plain;
//!
//! #[hub]
//! impl Plain {
//!     fn get(&self) -> Opaque {
//!         Opaque
//!     }
//! }
//!
//! let ts = hub_runtime::typescript::module::<Plain>(); // error: `Opaque: TS` is not satisfied
//! ```

mod render;

use std::any::TypeId;
use std::collections::BTreeMap;
use std::fmt;

use ts_rs::{Config, TypeVisitor, TS};

use crate::descriptor::{Describe, HubDescriptor};

pub use render::module_text;

/// Implemented by `#[hub]` and `#[hub_client]` (feature `typescript`) for an interface whose
/// parameter and return types all implement [`TS`].
pub trait TypeScript: Describe {
    /// The TypeScript types of the described methods, declaring the payload types they use in
    /// `types`.
    fn typescript(types: &mut Types) -> Interface;
}

/// One interface with the TypeScript type of every wire parameter and result.
#[derive(Debug, Clone)]
pub struct Interface {
    /// What the macro described.
    pub descriptor: HubDescriptor,
    /// One entry per method of `descriptor.methods`, in the same order.
    pub methods: Vec<MethodTypes>,
    /// A hub's client interface.
    pub client: Option<Box<Interface>>,
}

/// The TypeScript types of one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodTypes {
    /// One per wire parameter (an upload's item type for an upload).
    pub params: Vec<String>,
    /// The result's (or a stream's item) type; `None` for a method returning nothing.
    pub returns: Option<String>,
}

/// The payload types an interface uses: their declarations, by TypeScript name.
pub struct Types {
    config: Config,
    declared: BTreeMap<String, Declared>,
    collision: Option<TypeScriptError>,
}

struct Declared {
    type_id: TypeId,
    text: String,
}

impl Default for Types {
    fn default() -> Self {
        Types {
            // JavaScript numbers: the official client reads every integer as one.
            config: Config::new().with_large_int("number"),
            declared: BTreeMap::new(),
            collision: None,
        }
    }
}

impl Types {
    /// The TypeScript type expression of `T`, declaring the payload types it names.
    pub fn of<T: TS + 'static + ?Sized>(&mut self) -> String {
        self.visit::<T>();
        T::visit_generics(self);
        T::name(&self.config)
    }

    /// The declarations, sorted by name (`export type Name = ...;`, with doc comments).
    pub fn declarations(&self) -> impl Iterator<Item = &str> {
        self.declared.values().map(|d| d.text.as_str())
    }
}

impl TypeVisitor for Types {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if T::output_path().is_none() {
            return;
        }
        let name = T::ident(&self.config);
        let type_id = TypeId::of::<T::WithoutGenerics>();
        if let Some(seen) = self.declared.get(&name) {
            if seen.type_id != type_id && self.collision.is_none() {
                self.collision = Some(TypeScriptError::NameCollision { name });
            }
            return;
        }
        let docs = T::docs().map(|d| format!("{}\n", d.trim_end())).unwrap_or_default();
        let text = format!("{docs}export {}", T::decl(&self.config));
        self.declared.insert(name, Declared { type_id, text });
        T::visit_dependencies(self);
    }
}

/// Why a module could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeScriptError {
    /// Two different Rust types have the same TypeScript name in one module.
    NameCollision {
        /// The name.
        name: String,
    },
}

impl fmt::Display for TypeScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeScriptError::NameCollision { name } => write!(
                f,
                "two payload types are both named `{name}` in TypeScript; rename one with `#[ts(rename = \"...\")]`"
            ),
        }
    }
}

impl std::error::Error for TypeScriptError {}

/// The TypeScript module of hub `H` (and of its client interface), importing only
/// `@microsoft/signalr`. Write it to `<H>.ts` (see [`file_name`]).
pub fn module<H: TypeScript>() -> Result<String, TypeScriptError> {
    let mut types = Types::default();
    let interface = H::typescript(&mut types);
    if let Some(error) = types.collision.take() {
        return Err(error);
    }
    Ok(module_text(&interface, &types))
}

/// The file name of hub `H`'s module: `<HubType>.ts`.
pub fn file_name<H: Describe>() -> String {
    format!("{}.ts", H::DESCRIPTOR.name)
}
