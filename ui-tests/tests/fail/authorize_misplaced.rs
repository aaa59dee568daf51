use hub_runtime::prelude::*;

#[hub_client]
trait Client {
    #[hub(authorize)]
    fn notify(&self, text: String);
}

struct Admin;

#[hub(client = Client, authorize(rol = "admin"))]
impl Admin {
    #[hub(on_connected, authorize)]
    fn connected(&self) {}

    #[hub(skip, authorize(role = "admin"))]
    fn helper(&self) {}

    fn echo(&self, text: String) -> String {
        text
    }
}

fn main() {}
