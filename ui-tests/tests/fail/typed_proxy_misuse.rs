// Client-side mistakes through a typed proxy and a handler: a misspelt method, an argument of
// the wrong type, a result read as the wrong type, a handler with the wrong signature.
use hub_protocol::contract::{hub_client_contract, hub_contract};

#[hub_contract]
pub trait Notes {
    fn add(&self, text: String) -> u32;
}

#[hub_client_contract]
pub trait NotesClient {
    fn added(&self, id: u32, text: String);
}

struct Handler;

impl NotesClientHandler for Handler {
    async fn added(&self, id: String, text: String) {
        let _ = (id, text);
    }
}

async fn client(connection: hub_client::HubConnection) -> Result<(), hub_client::Error> {
    let notes = NotesProxy::new(&connection);
    notes.ad("text".to_string()).await?;
    notes.add(42).await?;
    let _id: String = notes.add("text".to_string()).await?;
    Ok(())
}

fn main() {
    let _ = client;
}
