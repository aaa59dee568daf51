use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    fn echo(self, message: String) -> String {
        message
    }
}

fn main() {}
