//! Contracts: a hub's interface in a crate of its own, shared by the server and its clients.
//!
//! A contract crate depends on `hub-protocol` only (no server, no client). It declares the hub
//! with [`hub_contract`] and the client callbacks with [`hub_client_contract`], each on a trait:
//!
//! ```
//! use hub_protocol::contract::{hub_client_contract, hub_contract};
//!
//! /// The chat hub, as its clients call it.
//! #[hub_contract]
//! pub trait ChatHub {
//!     /// Sends `text` to everyone.
//!     fn send(&self, user: String, text: String);
//!     /// The last `count` lines.
//!     fn history(&self, count: u32) -> Vec<String>;
//!     /// A server-to-client stream.
//!     fn counter(&self, to: u32) -> impl Stream<Item = u32>;
//!     /// A client-to-server stream: every line, joined.
//!     fn upload(&self, lines: impl Stream<Item = String>) -> String;
//! }
//!
//! /// What the chat hub calls on its clients.
//! #[hub_client_contract]
//! pub trait ChatClient {
//!     fn receive(&self, user: String, text: String);
//!     /// A client result: the client answers.
//!     fn confirm(&self, question: String) -> bool;
//! }
//! ```
//!
//! What that generates, for each side:
//!
//! - **Clients** get `ChatHubProxy<C>`, a typed proxy over any [`Caller`] (hub-client's
//!   `HubConnection` is one): `ChatHubProxy::new(&connection).history(10).await?`. A wrong
//!   method name or argument type does not compile. And the trait `ChatClientHandler`, to be
//!   implemented by the client's handler (async methods; a client result returns its value),
//!   registered with `handler.register(&connection)` on any [`Receiver`].
//! - **The server** implements the traits `ChatHub` and `ChatClient` themselves, but through
//!   its macros: `#[hub(client = ChatClient, contract = chat_contract::ChatHub)]` on the hub's
//!   impl block and `#[hub_client(contract = chat_contract::ChatClient)]` on its client trait
//!   make the compiler check the server against the contract — every method present, none
//!   extra, each with the same wire name, argument and result types (borrowed types count as
//!   their owned forms: a hub method returning `&'static str`, or a client interface taking
//!   `&str`, fulfils a contract's `String`; an upload parameter `ClientStream<T>` fulfils
//!   `impl Stream<Item = T>`). The traits' methods are markers for that check, not for calling.
//!
//! A client result may be declared `Result<T, E>` in a client contract (`E: Display`): the
//! handler then may fail, and its error's text is the hub's error; the server's interface
//! declares `T`.
//!
//! The macro reads the trait's tokens: `Stream` in `impl Stream<Item = T>` needs no import.
//! Method names, wire names (`#[hub(name = "...")]` renames, as on the server) and the
//! parameter and result types follow the server's rules: a method `send_message` is called
//! `SendMessage` on the wire.

use std::future::Future;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use futures_core::Stream;
pub use hub_macros::{hub_client_contract, hub_contract};

/// What a typed proxy calls through: a connection to a hub. Implemented by hub-client's
/// `HubConnection` (and by `&T` for any `T` that implements it).
///
/// `args` is every argument that is not a client-to-server stream, serialized as one
/// sequence (a tuple, or [`NoArgs`](crate::NoArgs)); `uploads` are the streams, in the order
/// of the method's stream parameters.
pub trait Caller: Send + Sync {
    /// What a failed call reports.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A client-to-server stream, ready to be sent.
    type Upload: Send + 'static;
    /// A server-to-client stream of `T`. Dropping it before its end cancels it on the server.
    type Stream<T: DeserializeOwned + Send + 'static>: Stream<Item = Result<T, Self::Error>> + Send + Unpin + 'static;

    /// Invokes `method` and waits for its result.
    fn invoke<A, R>(
        &self,
        method: &'static str,
        args: A,
        uploads: Vec<Self::Upload>,
    ) -> impl Future<Output = Result<R, Self::Error>> + Send
    where
        A: Serialize + Send + Sync + 'static,
        R: DeserializeOwned + Send + 'static;

    /// Starts the server-to-client stream `method`.
    fn stream<A, T>(&self, method: &'static str, args: A, uploads: Vec<Self::Upload>) -> Self::Stream<T>
    where
        A: Serialize + Send + Sync + 'static,
        T: DeserializeOwned + Send + 'static;

    /// A client-to-server stream of `T` items.
    fn upload<S, T>(stream: S) -> Self::Upload
    where
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + Sync + 'static;
}

impl<C: Caller> Caller for &C {
    type Error = C::Error;
    type Upload = C::Upload;
    type Stream<T: DeserializeOwned + Send + 'static> = C::Stream<T>;

    fn invoke<A, R>(
        &self,
        method: &'static str,
        args: A,
        uploads: Vec<Self::Upload>,
    ) -> impl Future<Output = Result<R, Self::Error>> + Send
    where
        A: Serialize + Send + Sync + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        (**self).invoke(method, args, uploads)
    }

    fn stream<A, T>(&self, method: &'static str, args: A, uploads: Vec<Self::Upload>) -> Self::Stream<T>
    where
        A: Serialize + Send + Sync + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        (**self).stream(method, args, uploads)
    }

    fn upload<S, T>(stream: S) -> Self::Upload
    where
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
    {
        C::upload(stream)
    }
}

/// The arguments of one call from the server, decoded on demand.
pub trait Arguments: Send + 'static {
    /// Argument `index` as a `T`.
    fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgumentError>;
}

/// An argument from the server that is missing or of another type than the handler's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    /// Why, for logs.
    pub message: String,
}

impl std::fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgumentError {}

/// Where a client's handlers are registered: a connection. Implemented by hub-client's
/// `HubConnection`.
pub trait Receiver {
    /// The arguments handlers receive.
    type Arguments: Arguments;

    /// Runs `handler` for each call of `method` from the server.
    fn on<F, Fut>(&self, method: &'static str, handler: F)
    where
        F: Fn(Self::Arguments) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static;

    /// Answers each call of `method` from the server (a client result) with the handler's
    /// value, or its error text.
    fn on_result<F, Fut, R>(&self, method: &'static str, handler: F)
    where
        F: Fn(Self::Arguments) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ArgumentError>> + Send + 'static,
        R: Serialize + Send + Sync + 'static;
}

/// Marks a contract method called with arguments `A` (a tuple of the owned argument types,
/// [`Upload<T>`] for a client-to-server stream) that returns `R`. Used by the conformance
/// check only.
pub struct Call<A, R>(PhantomData<fn(A) -> R>);

/// Marks a contract method called with arguments `A` that streams `T` items to the client.
pub struct StreamCall<A, T>(PhantomData<fn(A) -> T>);

/// Marks a client-to-server stream of `T` among a contract method's arguments.
pub struct Upload<T>(PhantomData<fn() -> T>);

#[doc(hidden)]
pub mod __private {
    pub use super::{ArgumentError, Arguments};
    pub use std::sync::Arc;

    /// Logs that a handler's arguments did not decode (the call is dropped, as the official
    /// clients drop a call whose arguments do not bind).
    pub fn argument_error(method: &str, error: &super::ArgumentError) {
        tracing::warn!(method, %error, "a call from the server had arguments this handler cannot take; ignored");
    }

    /// Whether two wire names are the same, in a constant (the server's check against its
    /// contract): ignoring ASCII case, as hub methods and client handlers are matched.
    pub const fn same_name(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if !a[i].eq_ignore_ascii_case(&b[i]) {
                return false;
            }
            i += 1;
        }
        true
    }

    /// A failed client result's answer: the handler's error as text.
    pub fn handler_error(error: &dyn std::fmt::Display) -> super::ArgumentError {
        super::ArgumentError {
            message: error.to_string(),
        }
    }
}
