//! A client interface with one wrong method: the error is reported once, at the declaration;
//! the methods that passed are still generated, so calls of them compile.

use hub_runtime::prelude::*;

#[hub_client]
trait ChatClient {
    fn receive_message(&self, text: String);

    fn broken<T>(&self, value: T);

    fn confirm(&self, question: String) -> bool;
}

struct Chat;

#[hub(client = ChatClient)]
impl Chat {
    async fn send(&self, cx: &HubContext<Self>, text: String) -> Result<bool, HubError> {
        cx.clients.all().receive_message(text.clone()).await?;
        Ok(cx.clients.caller().confirm(text).await?)
    }
}

fn main() {}
