//! # hub — real-time web functionality for Rust, speaking the ASP.NET Core SignalR protocol
//!
//! Put `#[hub]` on an impl block and the official SignalR clients (`@microsoft/signalr` and the
//! others) can call its methods; declare what the server may call on clients with
//! `#[hub_client]` and call it through typed proxies checked by the compiler.
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait ChatClient {
//!     fn receive_message(&self, user: String, text: String);
//! }
//!
//! struct Chat;
//!
//! #[hub(client = ChatClient)]
//! impl Chat {
//!     async fn send_message(&self, cx: &HubContext<Self>, user: String, text: String) -> Result<(), HubError> {
//!         cx.clients.all().receive_message(user, text).await?;
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     HubServer::builder().hub("/chat", Chat).build().serve("127.0.0.1:5000").await
//! }
//! ```
//!
//! Layers, each in its own module and importing only the ones before it (`scripts/check-layers`
//! fails on a circle): [`types`] and [`protocol`] (bytes ⇄ messages); `options`
//! ([`HubOptions`]); `request` (who a client is: [`Identity`]); [`observability`];
//! [`connection`] (logical connections, negotiate); [`auth`]; [`backplane`] (send targets,
//! encoded messages and the traits other servers are reached through); [`clients`] (groups,
//! fan-out, typed proxies); [`hub`](mod@hub) (the dispatcher and what hub methods see);
//! `transport` (WebSockets, Server-Sent Events, long polling); and [`server`] (assembly).
//!
//! ## Features
//!
//! One hub over WebSockets needs none of the optional ones; each adds what it names and the
//! crates behind it.
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `json` | on | the JSON hub protocol, `protocol::JsonProtocol` (negotiate and the handshake are JSON whatever is on) |
//! | `msgpack` | on | the MessagePack hub protocol, `protocol::MessagePackProtocol`, and `RawValue::MessagePack` (rmp, rmp-serde, rmpv) |
//! | `anyhow` | on | `From<anyhow::Error> for HubError`: hub methods may return `anyhow::Result<T>` (anyhow) |
//! | `redis` | off | `backplane::RedisBackplane` and `RedisOptions`: several servers act as one (redis) |
//! | `jwt` | off | `JwtAuthenticator` for bearer tokens, and `auth::jsonwebtoken` re-exported (jsonwebtoken) |
//! | `tls` | off | `server::TlsConfig` and `HubServer::serve_tls_with`: HTTPS and WSS served directly (tokio-rustls with ring) |
//! | `metrics` | off | the counters and gauges of [`observability`], reported through the `metrics` facade; without it they compile to nothing |
//!
//! A server speaks the protocols whose features are on. With `default-features = false` and
//! neither protocol, hub endpoints accept no handshake; connection endpoints still work.

#![warn(missing_docs)]

pub mod auth;
pub mod backplane;
pub mod clients;
pub mod connection;
pub mod descriptor;
pub mod guide;
pub mod hub;
pub mod observability;
mod options;
mod request;
pub mod server;
mod transport;

/// Hub protocols: bytes ⇄ messages (the [`hub_protocol`] crate, re-exported).
pub use hub_protocol as protocol;
/// Value types that map the way the official SignalR clients expect (`hub_protocol::types`).
pub use hub_protocol::types;

#[cfg(feature = "jwt")]
pub use auth::JwtAuthenticator;
pub use auth::{AuthError, Authenticator, Identity};
pub use clients::{
    CallerClients, ClientResultError, ClientTarget, GroupError, Groups, HubClients, Many, One, SendError, SendTarget,
};
pub use connection::{Connection, ConnectionHandler, ConnectionSender, Frame, RequestContext, TransportKind};
/// The boxed future that [`ConnectionHandler`], [`Authenticator`] and the backplane traits
/// return: `futures::future::BoxFuture`, re-exported so implementations need not name `futures`.
pub use futures_util::future::BoxFuture;
pub use hub::filter::HubFilter;
pub use hub::stream::ClientStream;
pub use hub::{ConnectionError, Hub, HubContext, HubError, HubHandle};
pub use hub_macros::{hub, hub_client};
pub use server::{Cors, EndpointOptions, HubOptions, HubServer, HubServerBuilder};
pub use tokio_util::sync::CancellationToken;

/// The names most hub code needs, and what the optional features add: `JwtAuthenticator`
/// (`jwt`), `RedisBackplane` (`redis`) and `TlsConfig` (`tls`).
pub mod prelude {
    pub use crate::{
        hub, hub_client, CancellationToken, ClientResultError, ClientStream, ConnectionError, HubContext, HubError,
        HubHandle, HubOptions, HubServer,
    };
    pub use futures_util::{Stream, StreamExt};

    #[cfg(feature = "redis")]
    pub use crate::backplane::RedisBackplane;
    #[cfg(feature = "tls")]
    pub use crate::server::TlsConfig;
    #[cfg(feature = "jwt")]
    pub use crate::JwtAuthenticator;
}

/// What the macros' generated code uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::auth::Requirement;
    pub use crate::clients::{ClientInterface, ClientTarget, TargetKind};
    /// The boxed future generated methods return.
    pub type BoxFuture<T> = futures_util::future::BoxFuture<'static, T>;
    pub use crate::hub::{Call, MethodDef, MethodKind, Outcome};
    pub use crate::protocol::NoArgs;
    pub use erased_serde;
    pub use serde;
    pub use std::sync::Arc;

    /// Checks a hub method parameter type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a hub method parameter: it does not implement `serde::Deserialize`",
        label = "clients send this argument as JSON or MessagePack, so it must be deserializable",
        note = "derive it with `#[derive(serde::Deserialize)]`, or use an owned type such as `String` or `Vec<T>`"
    )]
    pub trait HubArgument: serde::de::DeserializeOwned + Send + 'static {}
    impl<T: serde::de::DeserializeOwned + Send + 'static> HubArgument for T {}

    /// Checks a hub method return type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be returned by a hub method: it does not implement `serde::Serialize`",
        label = "the result is sent to the caller, so it must be serializable",
        note = "derive it with `#[derive(serde::Serialize)]`"
    )]
    pub trait HubReturn: serde::Serialize + Send + Sync {}
    impl<T: serde::Serialize + Send + Sync> HubReturn for T {}

    /// Checks a hub stream's error type (`call.rs` bounds on it; what the router generates goes
    /// through [`IntoHubError`]).
    pub trait HubErrorLike: Into<crate::HubError> {}
    impl<T: Into<crate::HubError>> HubErrorLike for T {}

    /// The bridge every error a hub method, hook or stream returns goes through: `HubError`
    /// implements it for every `E` it converts from, and a type that does not convert gets this
    /// message. (It is implemented on `HubError`, the type the compiler ends at, so that the
    /// compiler shows this message rather than a bare missing `From`.)
    #[diagnostic::on_unimplemented(
        message = "`{E}` cannot be a hub method's error: it does not convert into `HubError`",
        label = "the error is reported to the caller through `HubError`",
        note = "return `anyhow::Result<T>`, `Result<T, Box<dyn std::error::Error + Send + Sync>>` or `Result<T, HubError>` instead",
        note = "or keep `{E}` and implement `From<{E}> for HubError` (`HubError::from_error(&e)` keeps its type name and message)"
    )]
    pub trait IntoHubError<E> {
        /// Converts the error.
        fn convert(error: E) -> crate::HubError;
    }
    impl<E> IntoHubError<E> for crate::HubError
    where
        crate::HubError: From<E>,
    {
        fn convert(error: E) -> crate::HubError {
            crate::HubError::from(error)
        }
    }

    /// Checks a client method argument type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be sent to clients: it does not implement `serde::Serialize`",
        label = "client method arguments are encoded as JSON or MessagePack",
        note = "derive it with `#[derive(serde::Serialize)]`"
    )]
    pub trait ClientArgument: serde::Serialize + Send + Sync {}
    impl<T: serde::Serialize + Send + Sync> ClientArgument for T {}

    /// Converts a hub method's error (the generated call is spanned at the error type).
    pub fn into_hub_error<E>(error: E) -> crate::HubError
    where
        crate::HubError: IntoHubError<E>,
    {
        <crate::HubError as IntoHubError<E>>::convert(error)
    }

    /// Converts the errors of a stream's items (the generated call is spanned at the item type).
    pub fn stream_errors<S, T, E>(stream: S) -> impl futures_util::Stream<Item = Result<T, crate::HubError>> + Send
    where
        S: futures_util::Stream<Item = Result<T, E>> + Send,
        crate::HubError: IntoHubError<E>,
    {
        futures_util::StreamExt::map(stream, |item| item.map_err(into_hub_error))
    }

    /// The type of a client result.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a client result: it does not implement `serde::Deserialize`",
        label = "the client's answer is decoded into this type",
        note = "derive it with `#[derive(serde::Deserialize)]`"
    )]
    pub trait ClientResultValue: serde::de::DeserializeOwned {}
    impl<T: serde::de::DeserializeOwned> ClientResultValue for T {}

    /// Invokes a client result (the generated call is spanned at the result type).
    pub async fn client_result<R: ClientResultValue, A: serde::Serialize + Sync>(
        target: &crate::ClientTarget<crate::One>,
        method: &str,
        args: &A,
    ) -> Result<R, crate::ClientResultError> {
        target.invoke(method, args).await
    }

    /// One argument of a client method call, type-erased (spanned at the parameter type).
    pub fn client_arg<T: ClientArgument>(value: &T) -> &(dyn erased_serde::Serialize + Sync) {
        value
    }
}
