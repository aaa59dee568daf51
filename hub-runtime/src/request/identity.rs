//! Who a request's client is, as an endpoint's authenticator established it. Below the
//! connections (which keep their client's identity) and authentication (which makes it).

/// Well-known claim types: the long names ASP.NET Core uses, beside the short JWT ones.
pub mod claim_types {
    /// The NameIdentifier claim's long name (`nameid` in a JWT).
    pub const NAME_IDENTIFIER: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier";
    /// The Role claim's long name (`role` in a JWT).
    pub const ROLE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
    /// The Name claim's long name (`unique_name` in a JWT).
    pub const NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
}

/// Who the client is, as an endpoint's [`Authenticator`](crate::auth::Authenticator) established it.
///
/// ```
/// use hub_runtime::Identity;
/// let who = Identity::user("alice").with_claim("role", "admin");
/// assert_eq!(who.user_id(), Some("alice"));
/// assert_eq!(who.claim("role"), Some("admin"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub(crate) user_id: Option<String>,
    pub(crate) claims: Vec<(String, String)>,
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
