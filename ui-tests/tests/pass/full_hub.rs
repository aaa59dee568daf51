use std::sync::atomic::{AtomicU64, Ordering};

use hub_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[hub_client]
trait ChatClient {
    /// A message for everyone.
    fn receive_message(&self, user: String, text: String);
    #[hub(name = "tick")]
    fn tick(&self);
    fn notice(&self, text: &str);
}

#[derive(Default)]
struct Chat {
    sent: AtomicU64,
}

#[hub(client = ChatClient)]
impl Chat {
    fn echo(&self, message: String) -> String {
        message
    }

    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    fn mirror(&self, p: Point) -> Point {
        Point { x: -p.x, y: -p.y }
    }

    async fn send_message(&self, cx: &HubContext<Self>, user: String, text: String) -> Result<(), HubError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        cx.clients.all().receive_message(user, text).await?;
        cx.clients.caller().tick().await?;
        cx.clients.others().notice("sent").await?;
        Ok(())
    }

    async fn cancellable(&self, token: CancellationToken) -> bool {
        token.is_cancelled()
    }

    fn parse(&self, text: String) -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
        Ok(text.parse()?)
    }

    fn parse_strictly(&self, text: String) -> Result<i32, HubError> {
        text.parse().map_err(|e| HubError::from_error(&e))
    }

    fn nothing(&self) {}

    #[hub(name = "Renamed")]
    fn renamed_method(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    #[hub(skip)]
    fn helper(&self) -> u32 {
        1
    }

    #[hub(on_connected)]
    async fn connected(&self, cx: &HubContext<Self>) -> Result<(), HubError> {
        cx.groups.add(cx.connection_id(), "everyone").await?;
        Ok(())
    }

    #[hub(on_disconnected)]
    fn disconnected(&self, _cx: &HubContext<Self>, error: Option<ConnectionError>) {
        let _ = error;
    }
}

struct Plain;

#[hub]
impl Plain {
    async fn shout(&self, cx: &HubContext<Self>, text: String) -> Result<(), HubError> {
        cx.clients.all().send("Shout", &(text,)).await?;
        Ok(())
    }
}

fn main() {
    let server = HubServer::builder().hub("/chat", Chat::default()).hub("/plain", Plain).build();
    let handle: HubHandle<Chat> = server.handle::<Chat>().unwrap();
    let _future = async move {
        handle.clients.group("ops").receive_message("bot".into(), "hi".into()).await.unwrap();
        handle.clients.user("alice").tick().await.unwrap();
    };
}
