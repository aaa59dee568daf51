use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    fn shout(&self, text: &str) -> String {
        text.to_uppercase()
    }

    fn sum(&self, values: &[i32]) -> i32 {
        values.iter().sum()
    }
}

fn main() {}
