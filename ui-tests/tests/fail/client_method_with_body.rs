use hub_runtime::prelude::*;

#[hub_client]
trait ChatClient {
    fn receive_message(&self, text: String) {
        println!("{text}");
    }
}

fn main() {}
