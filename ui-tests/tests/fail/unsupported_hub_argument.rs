use hub_runtime::prelude::*;

struct Chat;

#[hub(clients = ChatClient)]
impl Chat {
    fn echo(&self, text: String) -> String {
        text
    }
}

fn main() {}
