//! Connection lifecycle: hooks, keep-alive, client timeout, abort, shutdown, and how
//! invocations of one connection run.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, Events, TestServer};
use hub_runtime::prelude::*;
use serde_json::json;

struct Life {
    events: Events,
}

#[hub]
impl Life {
    #[hub(on_connected)]
    fn connected(&self, cx: &HubContext<Self>) {
        self.events.push(format!("connected {}", cx.connection_id()));
    }

    #[hub(on_disconnected)]
    fn disconnected(&self, cx: &HubContext<Self>, error: Option<ConnectionError>) {
        let error = error.map(|e| e.message().to_string()).unwrap_or_else(|| "none".into());
        self.events.push(format!("disconnected {} {error}", cx.connection_id()));
    }

    fn connection_id(&self, cx: &HubContext<Self>) -> String {
        cx.connection_id().to_string()
    }

    fn echo(&self, message: String) -> String {
        message
    }

    fn leave(&self, cx: &HubContext<Self>) {
        cx.abort();
    }

    async fn sleep(&self, ms: u64) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("slept {ms}")
    }

    fn fast(&self) -> &'static str {
        "fast"
    }

    /// Reports when the invocation's token is cancelled, from a task of its own.
    fn watch(&self, token: CancellationToken) {
        let events = self.events.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            events.push("watch cancelled".to_string());
        });
    }
}

async fn server(options: HubOptions) -> (TestServer, Events) {
    let events = Events::default();
    let hub = Life { events: events.clone() };
    (
        TestServer::start(HubServer::builder().options(options).hub("/life", hub).build()).await,
        events,
    )
}

#[tokio::test]
async fn hooks_run_and_a_clean_close_has_no_error() {
    let (server, events) = server(HubOptions::default()).await;
    let mut client = server.connect("/life").await;
    let id = client
        .call_ok("ConnectionId", json!([]))
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        Some(&id),
        client.connection_id.as_ref(),
        "the hub sees the negotiated connectionId"
    );
    assert_eq!(events.snapshot(), vec![format!("connected {id}")]);
    client.close().await;
    let disconnected = events
        .wait_for("on_disconnected", |e| e.starts_with("disconnected"))
        .await;
    assert_eq!(disconnected, format!("disconnected {id} none"));
}

#[tokio::test]
async fn a_close_message_from_the_client_is_a_clean_close() {
    let (server, events) = server(HubOptions::default()).await;
    let mut client = server.connect("/life").await;
    let id = client.connection_id.clone().unwrap();
    client.send(&json!({"type": 7})).await;
    // The reference server answers with a Close of its own (no error); the socket ends either way.
    if let Ok(reply) = client.try_recv().await {
        assert_eq!(reply["type"], 7, "{reply}");
        assert!(reply.get("error").is_none(), "{reply}");
        client.expect_closed().await;
    }
    let disconnected = events
        .wait_for("on_disconnected", |e| e.starts_with("disconnected"))
        .await;
    assert_eq!(disconnected, format!("disconnected {id} none"));
}

#[tokio::test]
async fn dropping_the_socket_runs_on_disconnected_without_an_error() {
    let (server, events) = server(HubOptions::default()).await;
    let client = server.connect("/life").await;
    let id = client.connection_id.clone().unwrap();
    // No closing handshake: as with the reference server, the client just went away.
    drop(client);
    let disconnected = events
        .wait_for("on_disconnected", |e| e.starts_with("disconnected"))
        .await;
    assert_eq!(disconnected, format!("disconnected {id} none"));
}

struct Refuses {
    events: Events,
    detail: &'static str,
}

#[hub]
impl Refuses {
    #[hub(on_connected)]
    async fn connected(&self, cx: &HubContext<Self>) -> Result<(), HubError> {
        self.events.push(format!("connected {}", cx.connection_id()));
        Err(HubError::new(self.detail).with_kind("InvalidOperationException"))
    }

    #[hub(on_disconnected)]
    fn disconnected(&self) {
        self.events.push("disconnected");
    }

    fn echo(&self, message: String) -> String {
        message
    }
}

async fn refused_connection(detailed_errors: bool) -> serde_json::Value {
    let events = Events::default();
    let hub = Refuses {
        events: events.clone(),
        detail: "not today",
    };
    let options = HubOptions {
        detailed_errors,
        ..Default::default()
    };
    let server = TestServer::start(HubServer::builder().options(options).hub("/refuses", hub).build()).await;
    let mut client = server.connect("/refuses").await;
    let close = client.expect_close_message().await;
    eventually("the connection to be gone", || server.server.connection_count() == 0).await;
    assert_eq!(
        events.snapshot().len(),
        1,
        "on_disconnected must not run: {:?}",
        events.snapshot()
    );
    assert!(events.snapshot()[0].starts_with("connected "));
    close
}

#[tokio::test]
async fn on_connected_error_closes_the_connection() {
    let close = refused_connection(false).await;
    assert_eq!(close, json!({"type": 7, "error": "Connection closed with an error."}));
}

#[tokio::test]
async fn on_connected_error_detailed() {
    let close = refused_connection(true).await;
    assert_eq!(
        close,
        json!({"type": 7, "error": "Connection closed with an error. InvalidOperationException: not today"})
    );
}

#[tokio::test]
async fn keep_alive_pings_an_idle_connection() {
    let interval = Duration::from_millis(200);
    let (server, _) = server(HubOptions {
        keep_alive_interval: interval,
        ..Default::default()
    })
    .await;
    let mut client = server.connect("/life").await;
    let started = Instant::now();
    assert_eq!(client.recv().await, json!({"type": 6}));
    assert_eq!(client.recv().await, json!({"type": 6}));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "two pings after {elapsed:?}");
    // Pings do not get in the way of anything else.
    assert_eq!(client.call_ok("Echo", json!(["hi"])).await, "hi");
}

#[tokio::test]
async fn a_silent_client_times_out() {
    let timeout = Duration::from_millis(500);
    let (server, events) = server(HubOptions {
        client_timeout: timeout,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let mut client = server.connect("/life").await;
    let id = client.connection_id.clone().unwrap();
    let close = client.expect_close_message().await;
    let elapsed = started.elapsed();
    assert_eq!(
        close,
        json!({"type": 7, "error": "Connection closed with an error.", "allowReconnect": true})
    );
    assert!(
        elapsed >= timeout - Duration::from_millis(50),
        "closed after {elapsed:?}"
    );
    let disconnected = events
        .wait_for("on_disconnected", |e| e.starts_with("disconnected"))
        .await;
    assert_eq!(
        disconnected,
        format!("disconnected {id} Client hasn't sent a message/ping within the configured ClientTimeoutInterval.")
    );
}

#[tokio::test]
async fn a_silent_client_times_out_detailed() {
    let options = HubOptions {
        client_timeout: Duration::from_millis(300),
        detailed_errors: true,
        ..Default::default()
    };
    let (server, _) = server(options).await;
    let mut client = server.connect("/life").await;
    let close = client.expect_close_message().await;
    assert_eq!(
        close["error"],
        "Connection closed with an error. OperationCanceledException: \
         Client hasn't sent a message/ping within the configured ClientTimeoutInterval."
    );
}

#[tokio::test]
async fn client_pings_are_read_while_a_slow_method_runs() {
    let options = HubOptions {
        client_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let (server, _) = server(options).await;
    let mut client = server.connect("/life").await;
    let id = client.invoke("Sleep", json!([1200])).await;
    let pinging = Instant::now();
    while pinging.elapsed() < Duration::from_millis(1400) {
        client.send(&json!({"type": 6})).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let completion = client.recv_skip_pings().await;
    assert_eq!(
        completion,
        json!({"type": 3, "invocationId": id, "result": "slept 1200"})
    );
    client.send(&json!({"type": 6})).await;
    assert_eq!(client.call_ok("Echo", json!(["alive"])).await, "alive");
}

#[tokio::test]
async fn abort_from_a_hub_method_closes_without_error() {
    let (server, events) = server(HubOptions::default()).await;
    let mut client = server.connect("/life").await;
    let id = client.connection_id.clone().unwrap();
    client.send_invocation("Leave", json!([])).await;
    assert_eq!(client.expect_close_message().await, json!({"type": 7}));
    let disconnected = events
        .wait_for("on_disconnected", |e| e.starts_with("disconnected"))
        .await;
    assert_eq!(disconnected, format!("disconnected {id} none"));
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_stops() {
    let drain = Duration::from_secs(2);
    let (mut server, events) = server(HubOptions {
        shutdown_drain: drain,
        ..Default::default()
    })
    .await;
    let mut a = server.connect("/life").await;
    let mut b = server.connect("/life").await;
    assert_eq!(a.call_ok("Echo", json!(["a"])).await, "a");
    assert_eq!(b.call_ok("Echo", json!(["b"])).await, "b");
    server.server.shutdown();
    for client in [&mut a, &mut b] {
        assert_eq!(
            client.expect_close_message().await,
            json!({"type": 7, "allowReconnect": true})
        );
    }
    let took = server.join().await;
    assert!(took < drain, "serve_with returned after {took:?} (drain {drain:?})");
    let disconnected = events
        .snapshot()
        .iter()
        .filter(|e| e.starts_with("disconnected"))
        .count();
    assert_eq!(disconnected, 2, "{:?}", events.snapshot());
}

#[tokio::test]
async fn one_invocation_at_a_time_by_default() {
    let (server, _) = server(HubOptions {
        max_parallel_invocations: 1,
        ..Default::default()
    })
    .await;
    let mut client = server.connect("/life").await;
    let slow = client.invoke("Sleep", json!([300])).await;
    let fast = client.invoke("Fast", json!([])).await;
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": slow, "result": "slept 300"})
    );
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": fast, "result": "fast"})
    );
}

#[tokio::test]
async fn parallel_invocations_complete_out_of_order() {
    let (server, _) = server(HubOptions {
        max_parallel_invocations: 2,
        ..Default::default()
    })
    .await;
    let mut client = server.connect("/life").await;
    let slow = client.invoke("Sleep", json!([300])).await;
    let fast = client.invoke("Fast", json!([])).await;
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": fast, "result": "fast"})
    );
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": slow, "result": "slept 300"})
    );
}

#[tokio::test]
async fn queued_invocations_run_in_order() {
    let (server, _) = server(HubOptions {
        max_parallel_invocations: 2,
        ..Default::default()
    })
    .await;
    let mut client = server.connect("/life").await;
    // Two slow ones fill the slots; the rest wait and then run in arrival order.
    let first = client.invoke("Sleep", json!([200])).await;
    let second = client.invoke("Sleep", json!([400])).await;
    let queued: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(client.invoke("Echo", json!([format!("q{i}")])).await);
        }
        ids
    };
    assert_eq!(client.recv().await["invocationId"], first.as_str());
    for (i, id) in queued.iter().enumerate() {
        assert_eq!(
            client.recv().await,
            json!({"type": 3, "invocationId": id, "result": format!("q{i}")})
        );
    }
    assert_eq!(client.recv().await["invocationId"], second.as_str());
}

#[tokio::test]
async fn a_plain_invocations_token_is_cancelled_when_its_connection_ends() {
    let (server, events) = server(HubOptions::default()).await;
    let mut client = server.connect("/life").await;
    client.call_ok("Watch", json!([])).await;
    // Still running: the connection is open.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!events.snapshot().iter().any(|e| e == "watch cancelled"));
    client.close().await;
    events
        .wait_for("the token's cancellation", |e| e == "watch cancelled")
        .await;
}
