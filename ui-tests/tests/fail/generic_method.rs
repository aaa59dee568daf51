use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    fn echo<T: Clone>(&self, message: T) -> T {
        message
    }
}

fn main() {}
