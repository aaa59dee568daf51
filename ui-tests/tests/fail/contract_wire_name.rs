// The same method under another wire name than the contract's.
use hub_protocol::contract::hub_contract;
use hub_runtime::prelude::*;

#[hub_contract]
pub trait NotesContract {
    #[hub(name = "Append")]
    fn add(&self, text: String);
}

struct Notes;

#[hub(contract = NotesContract)]
impl Notes {
    fn add(&self, _text: String) {}
}

fn main() {}
