// Method names the generated proxy and handler trait have themselves.
use hub_protocol::contract::{hub_client_contract, hub_contract};

#[hub_contract]
pub trait Notes {
    fn new(&self, text: String) -> u32;
    fn caller(&self);
    fn fine(&self);
}

#[hub_client_contract]
pub trait NotesClient {
    fn register(&self, id: u32);
}

fn main() {}
