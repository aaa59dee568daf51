//! The one model both macros parse into: a hub (`#[hub]` impl block) or a client interface
//! (`#[hub_client]` trait) is an [`Interface`] of [`Method`]s. Parsing records what is written
//! (leniently); `validate` checks it, and the back ends generate code from what passed.

mod args;
mod parse;

pub(crate) use args::{parse_args, Args};
pub(crate) use parse::{parse_client, parse_hub, parse_hub_contract};

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, Ident, Type};

use crate::attrs::MethodAttrs;
use crate::types::Returns;

/// Which macro the interface comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `#[hub]`: the server implements the methods.
    Hub,
    /// `#[hub_client]`: the clients implement them.
    Client,
    /// `#[hub_contract]`: a hub's methods as its clients call them, in a crate of their own.
    HubContract,
    /// `#[hub_client_contract]`: a client interface in a crate of its own.
    ClientContract,
}

/// A hub or a client interface.
pub(crate) struct Interface {
    pub(crate) side: Side,
    /// `#[hub(...)]` / `#[hub_client(...)]` arguments.
    pub(crate) args: Args,
    /// The type the generated impls are for: the hub's self type, or the proxy struct's name.
    pub(crate) target: TokenStream,
    /// The hub type or trait name, for the descriptor.
    pub(crate) name: String,
    /// Doc comment text of the impl block or trait.
    pub(crate) docs: String,
    /// Shape problems of the item itself (generic hub type, trait impl, supertraits), reported
    /// by `validate`.
    pub(crate) shape: Vec<ShapeError>,
    pub(crate) methods: Vec<Method>,
}

/// A problem with the impl block or trait itself.
pub(crate) struct ShapeError {
    /// What the error points at.
    pub(crate) tokens: TokenStream,
    pub(crate) message: &'static str,
}

/// What a method is for.
pub(crate) enum Role {
    /// Called by name over the wire.
    Invocable,
    /// `#[hub(skip)]`: an ordinary method the macro leaves alone.
    Skipped,
    /// `#[hub(on_connected)]` / `#[hub(on_disconnected)]` (both: an error).
    Hook,
}

/// The connection hook a method implements.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookKind {
    Connected,
    Disconnected,
}

/// One method of an interface.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    pub(crate) wire_name: String,
    /// Where the wire name is written: the `name = "..."` literal, or the method name.
    pub(crate) wire_span: Span,
    pub(crate) role: Role,
    /// The `#[hub(...)]` attributes, and their errors (reported by `validate`).
    pub(crate) attrs: MethodAttrs,
    /// Doc comment text, and the doc attributes themselves (copied onto proxy methods).
    pub(crate) docs: String,
    pub(crate) doc_attrs: Vec<Attribute>,
    /// The signature as written (receiver, generics, `unsafe`... are checked by `validate`).
    pub(crate) sig: syn::Signature,
    /// A client method's body (client methods are declarations: an error).
    pub(crate) body: Option<TokenStream>,
    pub(crate) is_async: bool,
    /// The parameters after the receiver.
    pub(crate) params: Vec<Param>,
    pub(crate) returns: Returns,
    /// Set by `validate`: whether code is generated for this method.
    pub(crate) valid: bool,
}

impl Method {
    /// A streaming hub method.
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self.returns, Returns::Stream { .. } | Returns::StreamResult { .. })
    }

    /// Which hook, for `Role::Hook`.
    pub(crate) fn hook_kind(&self) -> Option<HookKind> {
        match (&self.role, self.attrs.on_connected, self.attrs.on_disconnected) {
            (Role::Hook, Some(_), _) => Some(HookKind::Connected),
            (Role::Hook, None, Some(_)) => Some(HookKind::Disconnected),
            _ => None,
        }
    }

    /// The parameters that travel over the wire.
    pub(crate) fn wire_params(&self) -> impl Iterator<Item = &Param> {
        self.params
            .iter()
            .filter(|p| matches!(p.kind, ParamKind::Argument | ParamKind::Upload(_)))
    }
}

/// One parameter after the receiver.
pub(crate) struct Param {
    /// Its name (`argN` for a pattern).
    pub(crate) ident: Ident,
    pub(crate) ty: Box<Type>,
    pub(crate) kind: ParamKind,
    /// Doc comment text (the macro removes the attributes: Rust allows none on parameters).
    pub(crate) docs: String,
}

/// How a parameter is bound.
pub(crate) enum ParamKind {
    /// `&HubContext<Self>`, injected.
    Context,
    /// `HubContext<Self>` by value (an error).
    ContextByValue,
    /// `CancellationToken`, injected.
    Cancellation,
    /// `ClientStream<T>`: a client-to-server stream of `T` (`None`: no item type, an error).
    Upload(Option<Box<Type>>),
    /// An argument the caller sends.
    Argument,
}

/// The text of `#[doc = "..."]` attributes, one line each, without the space after `///`.
pub(crate) fn doc_text(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|text| text.split('\n').map(str::to_string).collect::<Vec<_>>())
        .map(|line| line.strip_prefix(' ').map(str::to_string).unwrap_or(line))
        .collect();
    lines.join("\n").trim().to_string()
}
