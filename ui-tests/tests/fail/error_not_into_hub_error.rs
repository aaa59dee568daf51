use hub_runtime::prelude::*;

struct NotAnError;

struct Checks;

#[hub]
impl Checks {
    fn check(&self, value: u32) -> Result<u32, NotAnError> {
        if value > 10 {
            Err(NotAnError)
        } else {
            Ok(value)
        }
    }
}

fn main() {}
