use hub_runtime::prelude::*;

#[hub_client]
trait ChatClient {
    fn receive_message(&self, user: String, text: String);
}

struct Chat;

#[hub(client = ChatClient)]
impl Chat {
    async fn send(&self, cx: &HubContext<Self>, text: String) -> Result<(), HubError> {
        cx.clients.all().recieve_message("me".into(), text).await?;
        Ok(())
    }
}

fn main() {}
