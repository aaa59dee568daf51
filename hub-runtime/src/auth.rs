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

use crate::connection::{BoxFuture, RequestContext};

#[cfg(feature = "jwt")]
pub use jsonwebtoken;
#[cfg(feature = "jwt")]
pub use jwt::JwtAuthenticator;
pub use requirement::{authorized, Requirement};

/// Well-known claim types: the long names ASP.NET Core uses, beside the short JWT ones.
pub mod claim_types {
    /// The NameIdentifier claim's long name (`nameid` in a JWT).
    pub const NAME_IDENTIFIER: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier";
    /// The Role claim's long name (`role` in a JWT).
    pub const ROLE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
    /// The Name claim's long name (`unique_name` in a JWT).
    pub const NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
}

/// Who the client is, as an endpoint's [`Authenticator`] established it.
///
/// ```
/// use hub_runtime::Identity;
/// let who = Identity::user("alice").with_claim("role", "admin");
/// assert_eq!(who.user_id(), Some("alice"));
/// assert_eq!(who.claim("role"), Some("admin"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    user_id: Option<String>,
    claims: Vec<(String, String)>,
}

impl Identity {
    /// An identity with a user id (what `clients.user(..)` targets).
    pub fn user(user_id: impl Into<String>) -> Self {
        Identity {
            user_id: Some(user_id.into()),
            claims: Vec::new(),
        }
    }

    /// An authenticated identity without a user id.
    pub fn anonymous() -> Self {
        Identity::default()
    }

    /// Adds a claim.
    pub fn with_claim(mut self, kind: impl Into<String>, value: impl Into<String>) -> Self {
        self.claims.push((kind.into(), value.into()));
        self
    }

    /// The user id, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The first claim of that type.
    pub fn claim(&self, kind: &str) -> Option<&str> {
        self.claims.iter().find(|(k, _)| k == kind).map(|(_, v)| v.as_str())
    }

    /// Every value of claims of that type, in order (a JWT array claim gives several).
    pub fn claim_values<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.claims
            .iter()
            .filter(move |(k, _)| k == kind)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a claim of that type has that value.
    pub fn has_claim(&self, kind: &str, value: &str) -> bool {
        self.claim_values(kind).any(|v| v == value)
    }

    /// Whether the identity has that role: a `role` claim (or its long name,
    /// [`claim_types::ROLE`]) with that value.
    ///
    /// ```
    /// use hub_runtime::Identity;
    /// let who = Identity::user("alice").with_claim("role", "admin");
    /// assert!(who.is_in_role("admin"));
    /// assert!(!who.is_in_role("owner"));
    /// ```
    pub fn is_in_role(&self, role: &str) -> bool {
        self.has_claim("role", role) || self.has_claim(claim_types::ROLE, role)
    }

    /// Every claim, in order.
    pub fn claims(&self) -> &[(String, String)] {
        &self.claims
    }
}

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
    fn authenticate(&self, request: &RequestContext) -> BoxFuture<Result<Option<Identity>, AuthError>>;
}

impl<F> Authenticator for F
where
    F: Fn(&RequestContext) -> Result<Option<Identity>, AuthError> + Send + Sync + 'static,
{
    fn authenticate(&self, request: &RequestContext) -> BoxFuture<Result<Option<Identity>, AuthError>> {
        let result = self(request);
        Box::pin(async move { result })
    }
}

/// Admits everyone anonymously (the default).
pub(crate) fn anonymous() -> Arc<dyn Authenticator> {
    Arc::new(|_: &RequestContext| -> Result<Option<Identity>, AuthError> { Ok(None) })
}
