use hub_runtime::prelude::*;
use hub_runtime::Identity;

fn by_name(name: &str) -> bool {
    name == "admin"
}

fn maybe(identity: Option<&Identity>) -> bool {
    identity.is_some()
}

struct Admin;

#[hub]
impl Admin {
    #[hub(authorize(policy = by_name))]
    fn wrong_parameter(&self) {}

    #[hub(authorize(policy = maybe))]
    fn optional_identity(&self) {}

    #[hub(authorize(policy = no_such_policy))]
    fn missing(&self) {}
}

fn main() {}
