//! Every form of `authorize`, on the impl block and on methods.

use hub_runtime::prelude::*;
use hub_runtime::auth::Requirement;
use hub_runtime::{Hub, Identity};

mod policies {
    use hub_runtime::Identity;

    pub fn staff(identity: &Identity) -> bool {
        identity.claim("department").is_some()
    }
}

fn writer(identity: &Identity) -> bool {
    identity.has_claim("scope", "write")
}

#[hub_client]
trait Client {
    fn notify(&self, text: String);
}

struct Open;

#[hub]
impl Open {
    fn public(&self) {}

    #[hub(authorize)]
    fn signed_in(&self) {}

    #[hub(authorize(role = "admin"))]
    fn admin(&self) {}

    #[hub(authorize(role = "admin, owner"))]
    fn admin_or_owner(&self) {}

    #[hub(authorize(claim = "scope"))]
    fn any_scope(&self) {}

    #[hub(authorize(claim = "scope", value = "write"))]
    fn write_scope(&self) {}

    #[hub(authorize(policy = writer))]
    fn by_policy(&self) {}

    #[hub(authorize(policy = policies::staff))]
    fn by_path(&self) {}

    #[hub(name = "Everything", authorize(role = "admin", claim = "scope", value = "write", policy = writer))]
    fn everything(&self) {}

    #[hub(authorize(role = "admin"))]
    #[hub(authorize(policy = policies::staff))]
    async fn stacked(&self) -> Result<(), HubError> {
        Ok(())
    }

    #[hub(authorize(policy = Self::is_owner))]
    fn owned(&self) {}

    #[hub(skip)]
    fn is_owner(identity: &Identity) -> bool {
        identity.is_in_role("owner")
    }

    #[hub(authorize)]
    fn numbers(&self) -> impl Stream<Item = i32> {
        futures_util::stream::iter([1, 2, 3])
    }
}

struct Closed;

#[hub(client = Client, authorize)]
impl Closed {
    fn echo(&self, text: String) -> String {
        text
    }
}

struct Staff;

#[hub(authorize(role = "staff"), authorize(policy = policies::staff))]
impl Staff {
    fn echo(&self, text: String) -> String {
        text
    }
}

fn main() {
    let methods = <Open as Hub>::__METHODS;
    assert!(methods[0].authorize.is_empty());
    assert!(matches!(methods[1].authorize, [Requirement::Authenticated]));
    assert!(matches!(methods[2].authorize, [Requirement::Role("admin")]));
    assert!(matches!(methods[5].authorize, [Requirement::Claim("scope", Some("write"))]));
    assert_eq!(methods[8].authorize.len(), 3);
    assert_eq!(methods[9].authorize.len(), 2);
    assert!(<Open as Hub>::__AUTHORIZE.is_empty());
    assert!(matches!(<Closed as Hub>::__AUTHORIZE, [Requirement::Authenticated]));
    assert_eq!(<Staff as Hub>::__AUTHORIZE.len(), 2);
    let _ = HubServer::builder().hub("/open", Open).hub("/closed", Closed).hub("/staff", Staff);
}
