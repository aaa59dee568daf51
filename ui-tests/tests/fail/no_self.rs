use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    fn helper(value: u32) -> u32 {
        value
    }
}

fn main() {}
