use hub_runtime::prelude::*;

trait Greeter {
    fn greet(&self) -> String;
}

struct Chat;

#[hub]
impl Greeter for Chat {
    fn greet(&self) -> String {
        "hello".into()
    }
}

fn main() {}
