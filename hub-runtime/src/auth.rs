//! Authentication and authorization: who a connection belongs to, and what it may call.
//!
//! An endpoint's [`Authenticator`] turns each request (negotiate and every transport request)
//! into an [`Identity`] or a refusal (401). `JwtAuthenticator` (feature `jwt`) is a ready one for bearer
//! tokens. `#[hub(authorize)]` on a hub or a hub method then states who may connect or call:
//! see [`Requirement`].

#[cfg(feature = "jwt")]
mod jwt;
mod requirement;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::connection::RequestContext;

#[cfg(feature = "jwt")]
pub use jsonwebtoken;
#[cfg(feature = "jwt")]
pub use jwt::JwtAuthenticator;
pub use requirement::{authorized, Requirement};

pub use crate::request::{claim_types, Identity};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// Logged on the server; the client only sees 401.
    pub reason: String,
}

impl AuthError {
    /// A refusal with a reason for the server's log.
    pub fn new(reason: impl Into<String>) -> Self {
        AuthError { reason: reason.into() }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "authentication failed: {}", self.reason)
    }
}

impl std::error::Error for AuthError {}

/// Decides who a request belongs to. It sees negotiate and every transport request of its
/// endpoint. `Ok(None)` admits the request anonymously; `Err` refuses it with 401.
///
/// Any `Fn(&RequestContext) -> Result<Option<Identity>, AuthError>` is an authenticator:
///
/// ```
/// use hub_runtime::{Identity, RequestContext, AuthError};
/// let by_query = |req: &RequestContext| -> Result<Option<Identity>, AuthError> {
///     Ok(req.query("user").map(Identity::user))
/// };
/// # let _ = by_query;
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates one request.
    fn authenticate(&self, request: &RequestContext) -> BoxFuture<'static, Result<Option<Identity>, AuthError>>;
}

impl<F> Authenticator for F
where
    F: Fn(&RequestContext) -> Result<Option<Identity>, AuthError> + Send + Sync + 'static,
{
    fn authenticate(&self, request: &RequestContext) -> BoxFuture<'static, Result<Option<Identity>, AuthError>> {
        let result = self(request);
        Box::pin(async move { result })
    }
}

/// Admits everyone anonymously (the default).
pub(crate) fn anonymous() -> Arc<dyn Authenticator> {
    Arc::new(|_: &RequestContext| -> Result<Option<Identity>, AuthError> { Ok(None) })
}
