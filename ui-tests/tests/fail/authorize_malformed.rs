use hub_runtime::prelude::*;

struct Admin;

#[hub]
impl Admin {
    #[hub(authorize = "admin")]
    fn after_equals(&self) {}

    #[hub(authorize())]
    fn empty_parentheses(&self) {}

    #[hub(authorize(role = ""))]
    fn empty_role(&self) {}

    #[hub(authorize(role = admin))]
    fn role_not_a_string(&self) {}

    #[hub(authorize(role = "admin", role = "owner"))]
    fn role_twice(&self) {}

    #[hub(authorize(value = "write"))]
    fn value_without_claim(&self) {}

    #[hub(authorize(policy = |_| true))]
    fn policy_closure(&self) {}

    #[hub(authorize(group = "staff"))]
    fn unknown_requirement(&self) {}
}

fn main() {}
