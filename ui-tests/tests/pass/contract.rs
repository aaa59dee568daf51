// A contract shared by a server and a client: the server's hub and client interface are
// checked against it (borrowed types count as owned, uploads as streams, renamed wire names
// alike); the client calls through the proxy and answers through the handler.
use hub_protocol::contract::{hub_client_contract, hub_contract};
use hub_runtime::prelude::*;

mod contract {
    use super::*;

    #[hub_contract]
    pub trait Notes {
        fn add(&self, text: String) -> u32;
        fn find(&self, id: u32) -> Option<String>;
        fn tail(&self, from: u32) -> impl Stream<Item = String>;
        fn import(&self, tag: String, lines: impl Stream<Item = String>) -> u32;
        #[hub(name = "Clear")]
        fn clear_all(&self);
    }

    #[hub_client_contract]
    pub trait NotesClient {
        fn added(&self, id: u32, text: String);
        fn confirm(&self, question: String) -> bool;
    }
}

#[hub_client(contract = contract::NotesClient)]
trait NotesClient {
    fn added(&self, id: u32, text: &str);
    fn confirm(&self, question: &str) -> bool;
}

struct Notes;

#[hub(client = NotesClient, contract = contract::Notes)]
impl Notes {
    async fn add(&self, cx: &HubContext<Self>, text: String) -> Result<u32, HubError> {
        cx.clients.all().added(1, &text).await?;
        Ok(1)
    }

    fn find(&self, _id: u32) -> Option<&'static str> {
        None
    }

    fn tail(&self, _from: u32, _token: CancellationToken) -> impl Stream<Item = &'static str> {
        futures_util::stream::empty()
    }

    async fn import(&self, _tag: String, lines: ClientStream<String>) -> Result<u32, HubError> {
        Ok(lines.collect_all().await?.len() as u32)
    }

    #[hub(name = "Clear")]
    fn clear_all(&self) {}

    #[hub(skip)]
    fn helper(&self) {}
}

struct Handler;

impl contract::NotesClientHandler for Handler {
    async fn added(&self, _id: u32, _text: String) {}

    async fn confirm(&self, question: String) -> bool {
        question.is_empty()
    }
}

async fn client(connection: hub_client::HubConnection) -> Result<(), hub_client::Error> {
    use contract::NotesClientHandler;
    Handler.register(&connection);
    let notes = contract::NotesProxy::new(&connection);
    let id: u32 = notes.add("text".to_string()).await?;
    let _found: Option<String> = notes.find(id).await?;
    let _tail: hub_client::HubStream<String> = notes.tail(0);
    let _count: u32 = notes.import("tag".into(), futures_util::stream::iter(["a".to_string()])).await?;
    notes.clear_all().await?;
    Ok(())
}

fn main() {
    let _ = client;
}
