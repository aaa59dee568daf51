//! What `#[hub(authorize(...))]` requires of a connection's identity.

use super::Identity;

/// One authorization requirement, as `#[hub(authorize(...))]` states it on a hub or a hub
/// method. Every requirement needs an identity (a request the endpoint's authenticator
/// admitted anonymously, with `Ok(None)`, meets none); a list of requirements is met when
/// each one is.
///
/// | attribute | requirement |
/// |---|---|
/// | `authorize` | [`Requirement::Authenticated`] |
/// | `authorize(role = "admin, owner")` | [`Requirement::Role`]: any of the comma-separated roles |
/// | `authorize(claim = "scope")` | [`Requirement::Claim`] with any value |
/// | `authorize(claim = "scope", value = "write")` | [`Requirement::Claim`] with that value |
/// | `authorize(policy = path::to::function)` | [`Requirement::Policy`]: `fn(&Identity) -> bool` |
///
/// ```
/// use hub_runtime::auth::{authorized, Requirement};
/// use hub_runtime::Identity;
///
/// let admin = Identity::user("alice").with_claim("role", "admin").with_claim("scope", "write");
/// let rules = [Requirement::Role("admin, owner"), Requirement::Claim("scope", Some("write"))];
/// assert!(authorized(&rules, Some(&admin)));
/// assert!(!authorized(&rules, Some(&Identity::user("bob"))));
/// assert!(!authorized(&[Requirement::Authenticated], None));
/// assert!(authorized(&[], None));
/// ```
#[derive(Clone, Copy)]
pub enum Requirement {
    /// Any identity.
    Authenticated,
    /// At least one of these roles (a comma-separated list, as ASP.NET Core's `Roles`): a
    /// `role` claim, or its long name [`claim_types::ROLE`](super::claim_types::ROLE).
    Role(&'static str),
    /// A claim of this type; with `Some(value)`, one with that value.
    Claim(&'static str, Option<&'static str>),
    /// A function of the identity that you supply.
    Policy(fn(&Identity) -> bool),
}

impl Requirement {
    /// Whether `identity` meets this requirement.
    pub fn allows(&self, identity: &Identity) -> bool {
        match *self {
            Requirement::Authenticated => true,
            Requirement::Role(roles) => roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .any(|role| identity.is_in_role(role)),
            Requirement::Claim(kind, None) => identity.claim(kind).is_some(),
            Requirement::Claim(kind, Some(value)) => identity.has_claim(kind, value),
            Requirement::Policy(policy) => policy(identity),
        }
    }
}

impl std::fmt::Debug for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requirement::Authenticated => f.write_str("Authenticated"),
            Requirement::Role(roles) => f.debug_tuple("Role").field(roles).finish(),
            Requirement::Claim(kind, value) => f.debug_tuple("Claim").field(kind).field(value).finish(),
            Requirement::Policy(_) => f.write_str("Policy(..)"),
        }
    }
}

/// Whether `identity` meets every requirement. No requirement: anyone, even without an
/// identity; otherwise an identity is needed.
pub fn authorized(requirements: &[Requirement], identity: Option<&Identity>) -> bool {
    if requirements.is_empty() {
        return true;
    }
    identity.is_some_and(|identity| requirements.iter().all(|r| r.allows(identity)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::claim_types;

    fn writer(identity: &Identity) -> bool {
        identity.has_claim("scope", "write")
    }

    #[test]
    fn roles_are_any_of_a_comma_separated_list_under_either_claim_name() {
        let short = Identity::user("a").with_claim("role", "editor");
        let long = Identity::user("b").with_claim(claim_types::ROLE, "editor");
        let other = Identity::user("c").with_claim("role", "viewer");
        let rule = Requirement::Role("admin, editor");
        assert!(rule.allows(&short));
        assert!(rule.allows(&long));
        assert!(!rule.allows(&other));
        assert!(!Requirement::Role("edit").allows(&short), "roles match whole");
    }

    #[test]
    fn claims_with_and_without_a_value() {
        let who = Identity::user("a")
            .with_claim("scope", "read")
            .with_claim("scope", "write");
        assert!(Requirement::Claim("scope", None).allows(&who));
        assert!(
            Requirement::Claim("scope", Some("write")).allows(&who),
            "any value of the claim"
        );
        assert!(!Requirement::Claim("scope", Some("admin")).allows(&who));
        assert!(!Requirement::Claim("tenant", None).allows(&who));
    }

    #[test]
    fn policies_and_lists() {
        let who = Identity::user("a").with_claim("scope", "write");
        assert!(Requirement::Policy(writer).allows(&who));
        assert!(!Requirement::Policy(writer).allows(&Identity::anonymous()));
        assert!(authorized(&[Requirement::Authenticated], Some(&Identity::anonymous())));
        assert!(!authorized(
            &[Requirement::Policy(writer), Requirement::Role("admin")],
            Some(&who)
        ));
        assert!(!authorized(&[Requirement::Policy(writer)], None));
        assert_eq!(format!("{:?}", Requirement::Policy(writer)), "Policy(..)");
    }
}
