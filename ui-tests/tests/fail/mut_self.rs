use hub_runtime::prelude::*;

struct Counter {
    count: u64,
}

#[hub]
impl Counter {
    fn increment(&mut self) -> u64 {
        self.count += 1;
        self.count
    }
}

fn main() {}
