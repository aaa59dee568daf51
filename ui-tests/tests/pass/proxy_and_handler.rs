// Without a contract: `#[hub(proxy)]` and `#[hub_client(handler)]` give the server crate a
// typed proxy and a handler trait of its own, with owned types and without the injected
// parameters.
use hub_runtime::prelude::*;
use hub_runtime::ClientStream;

#[hub_client(handler)]
trait NotesClient {
    fn added(&self, id: u32, text: &str);
    fn confirm(&self, question: &str) -> bool;
}

struct Notes;

#[hub(client = NotesClient, proxy)]
impl Notes {
    async fn add(&self, cx: &HubContext<Self>, text: String) -> Result<u32, HubError> {
        cx.clients.all().added(1, &text).await?;
        Ok(1)
    }

    fn tail(&self, _token: CancellationToken) -> impl Stream<Item = Result<&'static str, HubError>> {
        futures_util::stream::empty()
    }

    async fn import(&self, lines: ClientStream<String>) -> Result<u32, HubError> {
        Ok(lines.collect_all().await?.len() as u32)
    }
}

struct Handler;

impl NotesClientHandler for Handler {
    async fn added(&self, _id: u32, _text: String) {}

    async fn confirm(&self, _question: String) -> bool {
        true
    }
}

async fn client(connection: hub_client::HubConnection) -> Result<(), hub_client::Error> {
    Handler.register(&connection);
    let notes = NotesProxy::new(&connection);
    let _id: u32 = notes.add("text".into()).await?;
    let _tail: hub_client::HubStream<String> = notes.tail();
    let _count: u32 = notes.import(futures_util::stream::iter(["a".to_string()])).await?;
    Ok(())
}

fn main() {
    let _ = client;
}
