use hub_runtime::prelude::*;

#[hub_client]
trait ChatClient {
    fn confirm(&self, question: String) -> bool;
}

struct Chat;

#[hub(client = ChatClient)]
impl Chat {
    async fn ask_everyone(&self, cx: &HubContext<Self>) -> Result<bool, HubError> {
        Ok(cx.clients.all().confirm("sure?".into()).await?)
    }
}

fn main() {}
