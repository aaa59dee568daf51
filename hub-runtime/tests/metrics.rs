//! What the server counts: connections by transport, messages by protocol, invocation
//! errors, read back through a real Prometheus recorder installed before the server is built.

mod common;

use common::{eventually, TestServer};
use hub_runtime::prelude::*;
use serde_json::json;

struct Counted;

#[hub]
impl Counted {
    fn echo(&self, message: String) -> String {
        message
    }

    fn fail(&self) -> Result<(), HubError> {
        Err(HubError::for_client("no"))
    }

    fn divide(&self, a: i32, b: i32) -> i32 {
        a / b
    }
}

/// The recorder of this test binary (one per process), installed by the first test that asks.
fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static RECORDER: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    RECORDER.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the only recorder in this test binary")
    })
}

/// The value of one sample line `name{labels} value` in the Prometheus text.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn connections_messages_and_errors_are_counted() {
    let prometheus = prometheus();
    let server = TestServer::start(HubServer::builder().hub("/counted", Counted).build()).await;

    let mut a = server.connect("/counted").await;
    let mut b = server.connect("/counted").await;
    let text = prometheus.render();
    let ws = [("hub", "/counted"), ("transport", "WebSockets")];
    assert_eq!(sample(&text, "hub_connections", &ws), 2.0, "{text}");
    assert_eq!(sample(&text, "hub_connections_opened_total", &ws), 2.0, "{text}");

    for i in 0..5 {
        assert_eq!(
            a.call_ok("echo", json!([format!("m{i}")])).await,
            json!(format!("m{i}"))
        );
    }
    let error = b.call_err("fail", json!([])).await;
    assert!(error.contains("no"), "{error}");
    let error = b.call_err("nothing_here", json!([])).await;
    assert!(error.contains("Method does not exist"), "{error}");

    let text = prometheus.render();
    let json_label = [("hub", "/counted"), ("protocol", "json")];
    // Five echoes and two failing invocations (handshakes are not hub messages).
    assert_eq!(sample(&text, "hub_messages_received_total", &json_label), 7.0, "{text}");
    // Seven completions, at least; the handshake replies were sent before the protocol was known.
    assert!(sample(&text, "hub_messages_sent_total", &json_label) >= 7.0, "{text}");
    assert_eq!(
        sample(&text, "hub_invocation_errors_total", &[("hub", "/counted")]),
        2.0,
        "{text}"
    );

    a.close().await;
    eventually("the gauge drops when a connection ends", || {
        sample(&prometheus.render(), "hub_connections", &ws) == 1.0
    })
    .await;
    drop(b);
    eventually("the gauge drops when a socket is dropped", || {
        sample(&prometheus.render(), "hub_connections", &ws) == 0.0
    })
    .await;
}

#[tokio::test]
async fn panics_are_counted_by_hub_and_method() {
    let prometheus = prometheus();
    let server = TestServer::start(HubServer::builder().hub("/panicky", Counted).build()).await;
    let mut client = server.connect("/panicky").await;
    for _ in 0..3 {
        let error = client.call_err("divide", json!([1, 0])).await;
        assert_eq!(error, "An unexpected error occurred invoking 'divide' on the server.");
    }
    assert_eq!(client.call_ok("echo", json!(["alive"])).await, json!("alive"));
    let text = prometheus.render();
    let labels = [("hub", "/panicky"), ("method", "Divide")];
    assert_eq!(sample(&text, "hub_panics_total", &labels), 3.0, "{text}");
    assert_eq!(
        sample(&text, "hub_invocation_errors_total", &[("hub", "/panicky")]),
        3.0,
        "{text}"
    );
}

/// A policy that panics for any caller without a `tenant` claim.
fn tenant_policy(identity: &hub_runtime::Identity) -> bool {
    identity.claim("tenant").unwrap() == "acme"
}

struct Policed;

#[hub]
impl Policed {
    #[hub(authorize(policy = tenant_policy))]
    fn tenant_only(&self) -> u32 {
        1
    }
}

#[tokio::test]
async fn a_panicking_authorization_policy_is_counted_under_its_method() {
    let prometheus = prometheus();
    let anyone = |_: &hub_runtime::RequestContext| Ok(Some(hub_runtime::Identity::user("u")));
    let server = HubServer::builder()
        .hub_with(
            "/policed",
            Policed,
            hub_runtime::EndpointOptions::new().authenticator(anyone),
        )
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/policed").await;
    for _ in 0..2 {
        let error = client.call_err("TenantOnly", json!([])).await;
        assert_eq!(
            error,
            "An unexpected error occurred invoking 'TenantOnly' on the server."
        );
    }
    let labels = [("hub", "/policed"), ("method", "TenantOnly")];
    assert_eq!(sample(&prometheus.render(), "hub_panics_total", &labels), 2.0);
}

/// Invocations that wait until the test opens the gate.
struct Held {
    open: tokio::sync::watch::Receiver<bool>,
    started: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[hub]
impl Held {
    async fn hold(&self, n: u32) -> u32 {
        self.started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.open.clone();
        let _ = open.wait_for(|open| *open).await;
        n
    }
}

/// One frame may carry any number of messages: the server parses the next one only when it
/// is ready to handle it, so a frame of invocations that wait costs the running ones, the
/// queue of waiting ones, and the frame's own bytes — not a parsed copy of every message in
/// it. `hub_messages_received_total` counts the messages parsed.
#[tokio::test]
async fn a_frame_is_parsed_only_as_fast_as_its_messages_are_handled() {
    let prometheus = prometheus();
    let (gate, open) = tokio::sync::watch::channel(false);
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hub = Held {
        open,
        started: started.clone(),
    };
    let options = HubOptions {
        max_parallel_invocations: 2,
        max_pending_invocations: 3,
        ..Default::default()
    };
    let server = TestServer::start(HubServer::builder().options(options).hub("/held", hub).build()).await;
    let mut client = server.connect("/held").await;
    const COUNT: usize = 300;
    let mut frame = String::new();
    for i in 0..COUNT {
        frame.push_str(&format!(
            r#"{{"type":1,"invocationId":"{i}","target":"Hold","arguments":[{i}]}}{}"#,
            common::RS
        ));
    }
    client.send_text(&frame).await;
    eventually("two invocations run", || {
        started.load(std::sync::atomic::Ordering::SeqCst) == 2
    })
    .await;
    let json_label = [("hub", "/held"), ("protocol", "json")];
    let parsed = sample(&prometheus.render(), "hub_messages_received_total", &json_label);
    // Two running, three waiting, and at most the one in hand.
    assert!(parsed <= 6.0, "{parsed} of {COUNT} messages were parsed at once");

    gate.send_replace(true);
    let mut answered = std::collections::HashSet::new();
    while answered.len() < COUNT {
        let reply = client.recv_skip_pings().await;
        assert_eq!(reply["type"], 3, "{reply}");
        let id = reply["invocationId"].as_str().expect("an id").to_string();
        assert_eq!(reply["result"].to_string(), id, "{reply}");
        assert!(answered.insert(id), "answered twice: {reply}");
    }
    assert_eq!(
        sample(&prometheus.render(), "hub_messages_received_total", &json_label),
        COUNT as f64
    );
}
