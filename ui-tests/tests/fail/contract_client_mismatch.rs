// A server client interface that does not fulfil its contract: a parameter of another type, a
// client result of another type, a method the contract does not have.
use hub_protocol::contract::hub_client_contract;
use hub_runtime::prelude::*;

#[hub_client_contract]
pub trait NotesClientContract {
    fn added(&self, id: u32, text: String);
    fn confirm(&self, question: String) -> bool;
}

#[hub_client(contract = NotesClientContract)]
trait NotesClient {
    fn added(&self, id: i64, text: &str);
    fn confirm(&self, question: &str) -> String;
    fn removed(&self, id: u32);
}

fn main() {}
