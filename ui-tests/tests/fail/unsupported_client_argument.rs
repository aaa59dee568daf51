use hub_runtime::prelude::*;

#[hub_client(krate = "hub_runtime")]
trait ChatClient {
    fn receive_message(&self, text: String);
}

fn main() {}
