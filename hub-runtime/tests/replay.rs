//! Stateful reconnect: a socket that re-attaches gets the unacknowledged messages again. A
//! client that re-attaches and then never reads must not hold the connection forever: the
//! resend is bounded by the send timeout like every other write.

mod common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hub_runtime::prelude::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use common::{http, within, TestServer, RS};

#[hub_client]
trait Receiver {
    fn receive(&self, message: String);
}

struct Flood;

#[hub(client = Receiver)]
impl Flood {
    /// Sends the caller `count` messages of `size` bytes.
    async fn flood(&self, cx: &HubContext<Self>, count: u32, size: usize) -> Result<(), HubError> {
        let text = "r".repeat(size);
        for _ in 0..count {
            cx.clients.caller().receive(text.clone()).await?;
        }
        Ok(())
    }
}

/// 600 messages of 32 KiB: ~19 MiB, more than loopback socket buffers hold.
const COUNT: u32 = 600;
const SIZE: usize = 32 * 1024;

async fn server() -> TestServer {
    let options = HubOptions {
        stateful_reconnect: true,
        stateful_reconnect_buffer: 64 * 1024 * 1024,
        // The flood is sent in one loop, faster than the test reads: the outbox must hold all
        // of it (the default 1 MiB would close the first socket as a slow consumer).
        outbox_max_bytes: 64 * 1024 * 1024,
        reconnect_grace: Duration::from_secs(1),
        // Only the resend's own bound may end the connection here.
        client_timeout: Duration::from_secs(600),
        ..Default::default()
    };
    TestServer::start(HubServer::builder().options(options).hub("/flood", Flood).build()).await
}

/// Negotiates stateful reconnect, has the server send `count` messages of `size` bytes over a
/// first socket that reads them all and acknowledges none, and drops that socket; returns the
/// WebSocket URL to re-attach with.
async fn flooded_then_dropped(server: &TestServer, count: u32, size: usize) -> String {
    let negotiated = http(
        server.addr,
        "POST",
        "/flood/negotiate?negotiateVersion=1&useStatefulReconnect=true",
        &[],
        "",
    )
    .await;
    let body = negotiated.json();
    assert_eq!(body["useStatefulReconnect"], true, "{body}");
    let token = body["connectionToken"].as_str().unwrap().to_string();
    let url = format!("ws://{}/flood?id={token}", server.addr);

    // The first socket reads everything and acknowledges nothing: all of it stays for replay.
    let (mut first, _) = within("open", tokio_tungstenite::connect_async(url.as_str()))
        .await
        .unwrap();
    first
        .send(Message::text(format!("{{\"protocol\":\"json\",\"version\":2}}{RS}")))
        .await
        .unwrap();
    let invocation =
        format!("{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Flood\",\"arguments\":[{count},{size}]}}{RS}");
    first.send(Message::text(invocation)).await.unwrap();
    let mut received = 0;
    'reading: loop {
        let Some(Ok(Message::Text(text))) = within("the flood", first.next()).await else {
            panic!("the first socket ended early");
        };
        for record in text.as_str().split(RS).filter(|r| !r.is_empty()) {
            let message: Value = serde_json::from_str(record).unwrap();
            match message["type"].as_u64() {
                Some(1) => received += 1,
                Some(3) => break 'reading,
                _ => {}
            }
        }
    }
    assert_eq!(received, count);
    // Gone without a close: the connection waits for its client to re-attach.
    drop(first);
    url
}

#[tokio::test]
async fn a_reattached_socket_gets_the_unacknowledged_messages_again() {
    let server = server().await;
    let url = flooded_then_dropped(&server, 5, 10).await;
    let (mut second, _) = within("re-attach", tokio_tungstenite::connect_async(url.as_str()))
        .await
        .unwrap();
    let mut messages = Vec::new();
    while messages.len() < 7 {
        let Some(Ok(Message::Text(text))) = within("the resend", second.next()).await else {
            panic!("the second socket ended early");
        };
        for record in text.as_str().split(RS).filter(|r| !r.is_empty()) {
            let message: Value = serde_json::from_str(record).unwrap();
            if message["type"] != 6 {
                messages.push(message);
            }
        }
    }
    assert_eq!(messages[0], serde_json::json!({"type": 9, "sequenceId": 1}));
    for message in &messages[1..6] {
        assert_eq!(message["target"], "Receive", "{message}");
    }
    assert_eq!(messages[6]["type"], 3, "{}", messages[6]);
}

#[tokio::test]
async fn a_reattached_socket_that_never_reads_does_not_hold_the_connection() {
    let server = server().await;
    let url = flooded_then_dropped(&server, COUNT, SIZE).await;

    // The second socket re-attaches and never reads: the resend cannot get through.
    let (second, _) = within("re-attach", tokio_tungstenite::connect_async(url.as_str()))
        .await
        .unwrap();
    // Within the send timeout (10 s) the resend gives up, the connection waits again for its
    // client, and after the reconnect grace (1 s) it is gone.
    let deadline = Instant::now() + Duration::from_secs(40);
    while server.server.connection_count() != 0 {
        assert!(
            Instant::now() < deadline,
            "a re-attached socket that does not read holds its connection"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);
}
