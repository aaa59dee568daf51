use hub_runtime::prelude::*;

struct Chat;

#[hub]
impl Chat {
    fn whoami(&self, cx: HubContext<Self>) -> String {
        cx.connection_id().to_string()
    }
}

fn main() {}
