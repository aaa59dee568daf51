// A server hub that does not fulfil its contract: a method missing, one too many, an argument
// of another type, another result type, a stream where the contract has a value.
use hub_protocol::contract::hub_contract;
use hub_runtime::prelude::*;

#[hub_contract]
pub trait NotesContract {
    fn add(&self, text: String) -> u32;
    fn find(&self, id: u32) -> Option<String>;
    fn count(&self) -> u32;
    fn remove(&self, id: u32);
}

struct Notes;

#[hub(contract = NotesContract)]
impl Notes {
    fn add(&self, text: u32) -> u32 {
        text
    }

    fn find(&self, _id: u32) -> String {
        String::new()
    }

    fn count(&self) -> impl Stream<Item = u32> {
        futures_util::stream::empty()
    }

    fn extra(&self) {}
}

fn main() {}
