// The README is the crate's front page, so its examples are doc tests. It lives in this
// package (the workspace root's README.md is a symlink to it) so that `cargo package` has it.
#![doc = include_str!("../README.md")]
//!
//! ## Where to go from here
//!
//! The [`guide`] walks through hub chapter by chapter. [`prelude`] has the names most hub code
//! needs; [`HubServer`] and [`HubServerBuilder`] assemble and serve; [`HubOptions`] holds every
//! limit and timeout; [`HubContext`] is what hub methods see, and [`HubHandle`] sends from
//! outside them.

#![warn(missing_docs)]

pub mod auth;
pub mod backplane;
pub mod clients;
pub mod connection;
pub mod descriptor;
pub mod guide;
pub mod history;
pub mod hub;
pub mod observability;
mod options;
pub mod presence;
mod request;
pub mod server;
mod transport;
#[cfg(feature = "typescript")]
pub mod typescript;

/// Hub protocols: bytes ⇄ messages (the [`hub_protocol`] crate, re-exported).
pub use hub_protocol as protocol;
/// Value types that map the way the official SignalR clients expect (`hub_protocol::types`).
pub use hub_protocol::types;

#[cfg(feature = "jwt")]
pub use auth::JwtAuthenticator;
pub use auth::{AuthError, Authenticator, Identity};
pub use clients::{
    CallerClients, ClientResultError, ClientTarget, GroupError, Groups, HubClients, Many, One, SendError, SendTarget,
    Users,
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
/// (`jwt`), `RedisBackplane` (`redis`), `NatsBackplane` (`nats`), `PostgresBackplane` (`postgres`)
/// and `TlsConfig` (`tls`).
pub mod prelude {
    pub use crate::{
        hub, hub_client, CancellationToken, ClientResultError, ClientStream, ConnectionError, HubContext, HubError,
        HubHandle, HubOptions, HubServer,
    };
    pub use futures_util::{Stream, StreamExt};

    #[cfg(feature = "nats")]
    pub use crate::backplane::NatsBackplane;
    #[cfg(feature = "postgres")]
    pub use crate::backplane::PostgresBackplane;
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
    pub use crate::presence::{is_presence_event, PresenceEvents};
    pub use crate::protocol::NoArgs;
    pub use erased_serde;
    pub use serde;
    pub use std::sync::Arc;
    #[cfg(feature = "typescript")]
    pub use ts_rs;

    /// What the macros generate for the `typescript` feature: kept when hub-runtime has it,
    /// dropped otherwise, so the generated code compiles in crates that do not enable it.
    #[cfg(feature = "typescript")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __if_typescript {
        ($($generated:tt)*) => { $($generated)* };
    }

    /// What the macros generate for the `typescript` feature: kept when hub-runtime has it,
    /// dropped otherwise, so the generated code compiles in crates that do not enable it.
    #[cfg(not(feature = "typescript"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __if_typescript {
        ($($generated:tt)*) => {};
    }
    pub use crate::__if_typescript as if_typescript;

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
        note = "or, for your own error type, implement `From<{E}> for HubError` (`HubError::from_error(&e)` keeps its type name and message)",
        note = "for another crate's error, convert where it happens: `.map_err(|e| HubError::from_error(&e))?`"
    )]
    pub trait IntoHubError<E> {
        /// Converts the error.
        fn convert(error: E) -> crate::HubError;
    }
    impl<E> IntoHubError<E> for crate::HubError
    where
        E: Into<crate::HubError>,
    {
        fn convert(error: E) -> crate::HubError {
            error.into()
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
