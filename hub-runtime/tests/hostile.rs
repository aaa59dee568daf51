//! Clients that push the server hard or behave badly: thousands of messages in one frame,
//! hundreds of sockets dropped without a close, a crowd of bad handshakes at once. The server
//! answers each as the protocol says, forgets what it should, and keeps serving everyone else.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{eventually, within, Client, TestServer, RS};
use hub_runtime::prelude::*;
use serde_json::json;

/// What the hub has seen; the tests read the same counts.
#[derive(Default)]
struct Counts {
    connected: AtomicUsize,
    disconnected: AtomicUsize,
    streams_started: AtomicUsize,
    streams_dropped: AtomicUsize,
}

struct Tough(Arc<Counts>);

/// Counts its stream's drop.
struct DropCount(Arc<Counts>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.streams_dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[hub]
impl Tough {
    #[hub(on_connected)]
    fn connected(&self) {
        self.0.connected.fetch_add(1, Ordering::SeqCst);
    }

    #[hub(on_disconnected)]
    fn disconnected(&self) {
        self.0.disconnected.fetch_add(1, Ordering::SeqCst);
    }

    fn echo(&self, message: String) -> String {
        message
    }

    /// One item, then nothing until cancelled.
    fn ticks(&self) -> impl Stream<Item = u32> {
        self.0.streams_started.fetch_add(1, Ordering::SeqCst);
        let guard = DropCount(self.0.clone());
        futures_util::stream::iter([1])
            .chain(futures_util::stream::pending())
            .map(move |n| {
                let _alive = &guard;
                n
            })
    }
}

async fn server() -> (TestServer, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let hub = Tough(counts.clone());
    let server = TestServer::start(HubServer::builder().hub("/tough", hub).build()).await;
    (server, counts)
}

#[tokio::test]
async fn ten_thousand_invocations_in_one_frame_are_all_answered_in_order() {
    let (server, _) = server().await;
    let mut client = server.connect("/tough").await;
    let mut frame = String::new();
    for i in 0..10_000 {
        frame.push_str(&format!(
            r#"{{"type":1,"invocationId":"{i}","target":"echo","arguments":["m{i}"]}}{RS}"#
        ));
    }
    client.send_text(&frame).await;
    for i in 0..10_000 {
        let reply = client.recv_skip_pings().await;
        assert_eq!(reply["type"], 3, "{reply}");
        assert_eq!(reply["invocationId"], i.to_string(), "{reply}");
        assert_eq!(reply["result"], format!("m{i}"), "{reply}");
    }
    // Still a normal connection afterwards.
    assert_eq!(client.call_ok("echo", json!(["after"])).await, json!("after"));
}

#[tokio::test]
async fn ten_thousand_pings_in_one_frame_are_taken_quietly() {
    let (server, _) = server().await;
    let mut client = server.connect("/tough").await;
    let frame = format!("{{\"type\":6}}{RS}").repeat(10_000);
    client.send_text(&frame).await;
    assert_eq!(
        client.call_ok("echo", json!(["after pings"])).await,
        json!("after pings")
    );
}

#[tokio::test]
async fn hundreds_of_sockets_dropped_without_a_close_are_forgotten() {
    let (server, counts) = server().await;
    let mut clients = Vec::new();
    for _ in 0..300 {
        clients.push(server.connect("/tough").await);
    }
    eventually("every connection is connected", || {
        counts.connected.load(Ordering::SeqCst) == 300
    })
    .await;
    assert_eq!(server.server.connection_count(), 300);
    // Some drop mid-message: half a record, no separator, then the TCP connection goes.
    for client in clients.iter_mut().step_by(3) {
        client.send_text(r#"{"type":1,"invocationId":"1","tar"#).await;
    }
    drop(clients);
    eventually("every disconnect hook ran", || {
        counts.disconnected.load(Ordering::SeqCst) == 300
    })
    .await;
    eventually("the server forgot every connection", || {
        server.server.connection_count() == 0
    })
    .await;
    let mut fresh = server.connect("/tough").await;
    assert_eq!(fresh.call_ok("echo", json!(["still here"])).await, json!("still here"));
}

#[tokio::test]
async fn a_crowd_of_bad_handshakes_each_gets_an_error_and_good_clients_are_served() {
    let (server, counts) = server().await;
    let bad = (0..100).map(|i| {
        let url = server.ws_url("/tough");
        async move {
            let mut client = Client::open(&url).await.expect("the WebSocket opens");
            let garbage = match i % 3 {
                0 => format!("{{\"protocol\":\"nonsense\",\"version\":1}}{RS}"),
                1 => format!("not json at all{RS}"),
                _ => format!("{{\"protocol\":\"json\",\"version\":99}}{RS}"),
            };
            client.send_text(&garbage).await;
            let reply = client.recv().await;
            let error = reply["error"].as_str().unwrap_or_default().to_string();
            assert!(!error.is_empty(), "a handshake error for {garbage:?}, got {reply}");
            error
        }
    });
    let good = async {
        let mut client = server.connect("/tough").await;
        for i in 0..50 {
            assert_eq!(
                client.call_ok("echo", json!([i.to_string()])).await,
                json!(i.to_string())
            );
        }
    };
    let (errors, ()) = within(
        "bad handshakes and a good client",
        futures_util::future::join(futures_util::future::join_all(bad), good),
    )
    .await;
    assert_eq!(errors.len(), 100);
    // None of the bad ones became a hub connection.
    assert_eq!(counts.connected.load(Ordering::SeqCst), 1);
    eventually("the bad sockets are forgotten", || {
        server.server.connection_count() <= 1
    })
    .await;
}

#[tokio::test]
async fn a_thousand_cancelled_streams_leave_nothing_behind() {
    let (server, counts) = server().await;
    let mut client = server.connect("/tough").await;
    // In waves of 50 (a connection may have 64 streams open at once): start, see the first
    // item, cancel. A stream that outlived its cancellation would use up the limit.
    for wave in 0..20 {
        for i in 0..50 {
            let id = format!("s{wave}-{i}");
            client
                .send(&json!({"type": 4, "invocationId": id, "target": "ticks", "arguments": []}))
                .await;
        }
        for _ in 0..50 {
            let item = client.recv_skip_pings().await;
            assert_eq!(item["type"], 2, "{item}");
        }
        for i in 0..50 {
            client
                .send(&json!({"type": 5, "invocationId": format!("s{wave}-{i}")}))
                .await;
        }
        // The cancellations are handled before this call; no Completion follows them.
        assert_eq!(client.call_ok("echo", json!(["sync"])).await, json!("sync"));
        eventually("every cancelled stream is dropped", || {
            counts.streams_dropped.load(Ordering::SeqCst) == (wave + 1) * 50
        })
        .await;
    }
    assert_eq!(counts.streams_started.load(Ordering::SeqCst), 1000);
}
