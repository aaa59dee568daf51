use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    fn first(self) {}

    fn second<T>(&self, value: T) {}

    fn third(&self, name: &str) {}

    #[hub(frobnicate)]
    fn fourth(&self) {}
}

fn main() {}
