//! The descriptors `#[hub]` and `#[hub_client]` emit, as a renderer outside the macros reads
//! them.

use hub_runtime::descriptor::{Describe, HubDescriptor, ParamKind, ReturnKind, Role};
use hub_runtime::prelude::*;

/// What the chat hub calls on its clients.
#[hub_client]
trait ChatClient {
    /// A message for everyone.
    fn receive_message(
        &self,
        /// Who wrote it.
        user: &str,
        items: &[u32],
    );

    /// Asks the user.
    #[hub(name = "confirmIt")]
    fn confirm(&self, question: String) -> Option<bool>;
}

/// A chat.
struct Chat;

#[hub(client = ChatClient)]
impl Chat {
    /// Sends a message to everyone.
    ///
    /// Second paragraph.
    async fn send_message(
        &self,
        cx: &HubContext<Self>,
        /// The text, as typed.
        text: String,
        cancel: CancellationToken,
    ) -> Result<(), HubError> {
        let _ = cancel;
        cx.clients.all().receive_message(&text, &[1]).await?;
        Ok(())
    }

    fn add(&self, a: i64, b: i64) -> Result<i64, HubError> {
        Ok(a + b)
    }

    fn counter(&self, to: u32) -> impl Stream<Item = Result<u32, HubError>> {
        futures_util::stream::iter((0..to).map(Ok))
    }

    async fn upload(&self, lines: ClientStream<String>, r#type: Vec<Option<String>>) -> usize {
        let _ = (lines, r#type);
        0
    }

    #[hub(skip)]
    fn helper(&self) {}

    #[hub(on_connected)]
    fn hello(&self) {
        self.helper();
    }
}

#[test]
fn hub_descriptor() {
    const HUB: HubDescriptor = <Chat as Describe>::DESCRIPTOR;
    assert_eq!(HUB.name, "Chat");
    assert_eq!(HUB.role, Role::Hub);
    assert_eq!(HUB.docs, "");
    let names: Vec<_> = HUB.methods.iter().map(|m| (m.name, m.wire_name)).collect();
    assert_eq!(
        names,
        [
            ("send_message", "SendMessage"),
            ("add", "Add"),
            ("counter", "Counter"),
            ("upload", "Upload")
        ]
    );

    let send = HUB.method("sendmessage").unwrap();
    assert_eq!(send.docs, "Sends a message to everyone.\n\nSecond paragraph.");
    assert_eq!(send.params.len(), 1, "context and cancellation token are injected");
    assert_eq!(send.params[0].name, "text");
    assert_eq!(send.params[0].rust_type, "String");
    assert_eq!(send.params[0].docs, "The text, as typed.");
    assert_eq!(send.returns, ReturnKind::Unit);

    let add = HUB.method("Add").unwrap();
    assert_eq!(add.params.iter().map(|p| p.name).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(add.returns, ReturnKind::Value { rust_type: "i64" });

    let counter = HUB.method("Counter").unwrap();
    assert_eq!(counter.returns, ReturnKind::Stream { item_type: "u32" });

    let upload = HUB.method("Upload").unwrap();
    assert_eq!(upload.params[0].kind, ParamKind::Upload);
    assert_eq!(upload.params[0].rust_type, "String");
    assert_eq!(upload.params[1].kind, ParamKind::Argument);
    assert_eq!(upload.params[1].name, "type");
    assert_eq!(upload.params[1].rust_type, "Vec<Option<String>>");
    assert_eq!(upload.returns, ReturnKind::Value { rust_type: "usize" });
}

#[test]
fn client_descriptor() {
    let client = <ChatClient as Describe>::DESCRIPTOR;
    assert_eq!(client.name, "ChatClient");
    assert_eq!(client.role, Role::Client);
    assert_eq!(client.docs, "What the chat hub calls on its clients.");

    let receive = client.method("ReceiveMessage").unwrap();
    assert_eq!(receive.docs, "A message for everyone.");
    let params: Vec<_> = receive.params.iter().map(|p| (p.name, p.rust_type, p.docs)).collect();
    assert_eq!(params, [("user", "String", "Who wrote it."), ("items", "Vec<u32>", "")]);
    assert_eq!(receive.returns, ReturnKind::Unit);

    let confirm = client.method("confirmIt").unwrap();
    assert_eq!(confirm.name, "confirm");
    assert_eq!(
        confirm.returns,
        ReturnKind::ClientResult {
            rust_type: "Option<bool>"
        }
    );
}
