//! TestHub's streams: server-to-client (items, cancellation by drop, empty, an error) and a
//! client-to-server upload.

use std::time::Duration;

use futures_util::StreamExt;

use crate::report::{expect_eq, Context, Failure, Report};
use crate::session::{TestHubEvent, TestHubSession};
use crate::Pair;

pub async fn run(report: &mut Report, pair: Pair, session: &Result<TestHubSession, Failure>) {
    report
        .check(pair, "Stream (a, b, c)", async {
            let items: Vec<Result<String, _>> = session.as_ref()?.hub().stream().collect().await;
            let items = items.into_iter().collect::<Result<Vec<_>, _>>().context("Stream")?;
            expect_eq("Stream's items", items, vec!["a".to_string(), "b".into(), "c".into()])
        })
        .await;
    report
        .check(
            pair,
            "InfiniteStream cancelled (dropped) → StreamCanceled",
            infinite_stream(session),
        )
        .await;
    report
        .check(pair, "EmptyStream", async {
            let items: Vec<Result<i32, _>> = session.as_ref()?.hub().empty_stream().collect().await;
            let items = items
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .context("EmptyStream")?;
            expect_eq("EmptyStream's items", items, vec![])
        })
        .await;
    report
        .check(pair, "StreamThrowException text", stream_throw_exception(session))
        .await;
    report
        .check(pair, "StreamingConcat upload", async {
            // Items arrive one by one, some after a pause, so the server reads a live upload.
            let parts = ["uploaded ", "piece ", "by ", "piece ✓"];
            let upload = futures_util::stream::iter(parts).then(|part| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                part.to_string()
            });
            let joined = session
                .as_ref()?
                .hub()
                .streaming_concat(upload)
                .await
                .context("StreamingConcat")?;
            expect_eq("StreamingConcat", joined, parts.concat())
        })
        .await;
}

async fn infinite_stream(session: &Result<TestHubSession, Failure>) -> Result<(), Failure> {
    let session = session.as_ref()?;
    let hub = session.hub();
    let stream = hub.infinite_stream();
    // A call made after the stream completes after the stream has reached the server, and
    // shows an open stream does not hold up other calls.
    let echoed = hub
        .echo("while streaming".into())
        .await
        .context("Echo while streaming")?;
    expect_eq("Echo while streaming", echoed.as_str(), "while streaming")?;
    drop(stream);
    session
        .next("the client method StreamCanceled", |e| {
            (e == TestHubEvent::StreamCanceled).then_some(())
        })
        .await?;
    let after = hub.echo("after cancel".into()).await.context("Echo after the cancel")?;
    expect_eq("Echo after the cancel", after.as_str(), "after cancel")
}

async fn stream_throw_exception(session: &Result<TestHubSession, Failure>) -> Result<(), Failure> {
    let message = "stream boom ✗";
    let items: Vec<Result<i32, hub_client::Error>> = session
        .as_ref()?
        .hub()
        .stream_throw_exception(message.into())
        .collect()
        .await;
    let expected =
        format!("An unexpected error occurred invoking 'StreamThrowException' on the server. InvalidOperationException: {message}");
    match items.as_slice() {
        [Err(hub_client::Error::Hub(text))] => expect_eq("StreamThrowException's error", text, &expected),
        other => Err(format!(
            "StreamThrowException: expected one error item {expected:?}, got {other:?}"
        )),
    }
}
