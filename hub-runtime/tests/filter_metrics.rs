//! What the server counts when filters decide a call's outcome: a failure counts once, and
//! only if it reaches the caller (read back through a real Prometheus recorder).

mod common;

use common::TestServer;
use hub_runtime::hub::filter::{HubFilter, InvocationContext, InvocationResult, InvokeFuture, Next};
use hub_runtime::prelude::*;
use serde_json::json;

struct Flaky;

#[hub]
impl Flaky {
    fn fail(&self, why: String) -> Result<u32, HubError> {
        Err(HubError::new(why))
    }

    fn count(&self, to: u32) -> impl Stream<Item = Result<u32, HubError>> {
        futures_util::stream::iter((1..=to).map(move |n| if n < to { Ok(n) } else { Err(HubError::new("last")) }))
    }
}

/// `Fail("hide")` becomes 0; `Fail("reword")` another error; other failures pass unchanged.
struct Forgiving;

impl HubFilter for Forgiving {
    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        InvokeFuture::new(async move {
            let why: String = call.argument(0).unwrap_or_default();
            let result = next.run().await;
            match why.as_str() {
                "hide" => InvocationResult::value(0),
                "reword" => InvocationResult::error(HubError::for_client("reworded")),
                _ => result,
            }
        })
    }
}

fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static RECORDER: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    RECORDER.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the only recorder in this test binary")
    })
}

fn errors(text: &str, hub: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with("hub_invocation_errors_total{"))
        .find(|line| line.contains(&format!("hub=\"{hub}\"")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_failure_counts_once_and_only_if_the_caller_gets_it() {
    let prometheus = prometheus();
    let server = HubServer::builder().filter(Forgiving).hub("/flaky", Flaky).build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/flaky").await;
    assert_eq!(client.call_ok("Fail", json!(["hide"])).await, 0);
    assert_eq!(
        errors(&prometheus.render(), "/flaky"),
        0.0,
        "a hidden failure is no error"
    );
    assert_eq!(
        client.call_err("Fail", json!(["reword"])).await,
        "An unexpected error occurred invoking 'Fail' on the server. HubException: reworded"
    );
    assert_eq!(
        errors(&prometheus.render(), "/flaky"),
        1.0,
        "a reworded failure is one error"
    );
    client.call_err("Fail", json!(["as is"])).await;
    assert_eq!(errors(&prometheus.render(), "/flaky"), 2.0);
    // A stream's failure after it started is counted as without filters.
    client
        .send(&json!({"type": 4, "invocationId": "s", "target": "Count", "arguments": [2]}))
        .await;
    loop {
        let message = client.recv_skip_pings().await;
        if message["type"] == 3 {
            assert!(message["error"].is_string(), "{message}");
            break;
        }
    }
    assert_eq!(errors(&prometheus.render(), "/flaky"), 3.0);
    client.close().await;
}
