// What a contract cannot declare: every error at once, the valid methods kept.
use hub_protocol::contract::{hub_client_contract, hub_contract};

#[hub_contract]
pub trait Notes {
    fn borrowed(&self, text: &str);
    async fn asynchronous(&self);
    fn fallible(&self) -> Result<u32, String>;
    fn with_body(&self) {}
    fn generic<T>(&self, value: T);
    fn no_self(text: String);
    fn opaque(&self) -> impl Clone;
    fn fine(&self, text: String) -> u32;
}

#[hub_client_contract]
pub trait NotesClient {
    fn borrowed(&self, text: &str);
    fn fine(&self, text: String);
}

fn main() {
    fn uses_kept<C: hub_protocol::contract::Caller>(proxy: NotesProxy<C>) {
        let _ = proxy.fine(String::new());
    }
    let _ = uses_kept::<hub_client::HubConnection>;
}
