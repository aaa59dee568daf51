use hub_runtime::prelude::*;

#[hub_client]
trait AskClient {
    fn confirm(&self, question: String) -> bool;
    fn note(&self, text: &str);
}

struct Streams;

#[hub(client = AskClient)]
impl Streams {
    fn count(&self, to: u32) -> impl Stream<Item = u32> {
        futures_util::stream::iter(0..to)
    }

    fn fallible(&self) -> impl Stream<Item = Result<u32, HubError>> {
        futures_util::stream::iter([Ok(1), Err(HubError::for_client("stop"))])
    }

    async fn maybe(&self, ok: bool) -> Result<impl Stream<Item = String>, HubError> {
        if ok {
            Ok(futures_util::stream::iter(vec!["x".to_string()]))
        } else {
            Err(HubError::for_client("no"))
        }
    }

    fn boxed(&self) -> std::pin::Pin<Box<dyn Stream<Item = u8> + Send>> {
        Box::pin(futures_util::stream::empty())
    }

    async fn upload(&self, lines: ClientStream<String>, tag: String) -> Result<usize, HubError> {
        Ok(lines.collect_all().await?.len() + tag.len())
    }

    async fn ask(&self, cx: &HubContext<Self>) -> Result<bool, HubError> {
        let yes = cx.clients.caller().confirm("sure?".into()).await?;
        cx.clients.all().note("asked").await?;
        Ok(yes)
    }
}

fn main() {
    let server = HubServer::builder().hub("/s", Streams).build();
    let handle = server.handle::<Streams>().unwrap();
    let _ = async move { handle.clients.client("id").confirm("outside?".into()).await };
}
