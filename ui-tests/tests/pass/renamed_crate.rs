//! `crate = "..."` on both macros, for a user who renamed hub-runtime: every generated path
//! goes through it. Here `::hub_runtime` names this test crate itself (which has no hub runtime
//! in it), so a generated path that bypasses `crate = "..."` fails to compile.

extern crate hub_runtime as renamed;
extern crate self as hub_runtime;

use renamed::descriptor::{Describe, ReturnKind};
use renamed::prelude::*;
use renamed::Identity;

fn staff(identity: &Identity) -> bool {
    identity.claim("department").is_some()
}

#[renamed::hub_client(crate = "renamed")]
trait NoticeClient {
    fn notice(&self, text: &str);
    fn confirm(&self, question: String) -> bool;
}

struct Renamed;

#[renamed::hub(crate = "renamed", client = NoticeClient, authorize)]
impl Renamed {
    async fn echo(&self, cx: &HubContext<Self>, text: String) -> Result<String, HubError> {
        cx.clients.all().notice(&text).await?;
        Ok(text)
    }

    async fn ask(&self, cx: &HubContext<Self>) -> Result<bool, HubError> {
        Ok(cx.clients.caller().confirm("sure?".into()).await?)
    }

    fn count(&self, to: u32) -> impl Stream<Item = u32> {
        futures_util::stream::iter(0..to)
    }

    async fn upload(&self, lines: ClientStream<String>) -> Result<usize, HubError> {
        Ok(lines.collect_all().await?.len())
    }

    #[hub(authorize(role = "admin"), authorize(policy = staff))]
    fn guarded(&self) {}

    #[hub(on_connected)]
    fn hello(&self, cx: &HubContext<Self>) -> Result<(), HubError> {
        let _ = cx;
        Ok(())
    }

    #[hub(on_disconnected)]
    fn bye(&self, error: Option<ConnectionError>) {
        let _ = error;
    }
}

fn main() {
    let _server = renamed::HubServer::builder().hub("/renamed", Renamed).build();
    let hub = <Renamed as Describe>::DESCRIPTOR;
    assert_eq!(hub.methods.len(), 5);
    assert_eq!(hub.methods[2].returns, ReturnKind::Stream { item_type: "u32" });
    let client = <NoticeClient as Describe>::DESCRIPTOR;
    assert_eq!(client.methods[0].params[0].rust_type, "String");
}
