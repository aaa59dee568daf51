use hub_runtime::prelude::*;

struct Answer {
    yes: bool,
}

#[hub_client]
trait ChatClient {
    fn confirm(&self, question: String) -> Answer;
}

fn main() {}
