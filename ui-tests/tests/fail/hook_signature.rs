use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    #[hub(on_connected)]
    fn hello(&self, greeting: String) -> String {
        greeting
    }
}

fn main() {}
