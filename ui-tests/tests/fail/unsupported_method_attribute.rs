use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    #[hub(rename = "Shout")]
    fn shout(&self, text: String) -> String {
        text.to_uppercase()
    }
}

fn main() {}
