use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    fn send(&self, text: String) -> String {
        text
    }

    #[hub(name = "SEND")]
    fn send_loudly(&self, text: String) -> String {
        text.to_uppercase()
    }
}

fn main() {}
