//! Bad input after the handshake, and framing: what the server does with malformed, incomplete,
//! unknown, oversized, batched and split messages.

mod common;

use common::{Client, TestServer, RS};
use hub_runtime::prelude::*;
use serde_json::json;

struct Calc;

#[hub]
impl Calc {
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    fn echo(&self, message: String) -> String {
        message
    }
}

async fn server(options: HubOptions) -> TestServer {
    TestServer::start(HubServer::builder().options(options).hub("/calc", Calc).build()).await
}

fn detailed() -> HubOptions {
    HubOptions {
        detailed_errors: true,
        ..Default::default()
    }
}

const CLOSED_WITH_ERROR: &str = "Connection closed with an error.";

/// The server answers a Close message carrying `error`, with reconnect allowed, then closes.
async fn expect_error_close(client: &mut Client) -> String {
    let close = client.expect_close_message().await;
    assert_eq!(close["allowReconnect"], true, "{close}");
    close["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the Close message has no error: {close}"))
        .to_string()
}

#[tokio::test]
async fn malformed_json_closes_with_an_error() {
    let server = server(HubOptions::default()).await;
    let mut client = server.connect("/calc").await;
    client.send_text(&format!("{{nope{RS}")).await;
    assert_eq!(expect_error_close(&mut client).await, CLOSED_WITH_ERROR);
}

#[tokio::test]
async fn malformed_json_with_detailed_errors_says_why() {
    let server = server(detailed()).await;
    let mut client = server.connect("/calc").await;
    client.send_text(&format!("{{\"type\":1,{RS}")).await;
    let error = expect_error_close(&mut client).await;
    assert!(
        error.starts_with("Connection closed with an error. InvalidDataException: Error reading JSON."),
        "{error}"
    );
}

#[tokio::test]
async fn invocation_without_target_closes_with_an_error() {
    let server = server(HubOptions::default()).await;
    let mut client = server.connect("/calc").await;
    client
        .send(&json!({"type": 1, "invocationId": "1", "arguments": [1, 2]}))
        .await;
    assert_eq!(expect_error_close(&mut client).await, CLOSED_WITH_ERROR);
}

#[tokio::test]
async fn invocation_without_target_detailed() {
    let server = server(detailed()).await;
    let mut client = server.connect("/calc").await;
    client
        .send(&json!({"type": 1, "invocationId": "1", "arguments": [1, 2]}))
        .await;
    assert_eq!(
        expect_error_close(&mut client).await,
        "Connection closed with an error. InvalidDataException: Missing required property 'target'."
    );
}

#[tokio::test]
async fn message_without_type_detailed() {
    let server = server(detailed()).await;
    let mut client = server.connect("/calc").await;
    client.send(&json!({"target": "Add", "arguments": [1, 2]})).await;
    assert_eq!(
        expect_error_close(&mut client).await,
        "Connection closed with an error. InvalidDataException: Missing required property 'type'."
    );
}

#[tokio::test]
async fn unknown_message_type_is_ignored() {
    let server = server(HubOptions::default()).await;
    let mut client = server.connect("/calc").await;
    client.send(&json!({"type": 99, "whatever": [1, 2, 3]})).await;
    assert_eq!(client.call_ok("Add", json!([1, 2])).await, 3);
    // In the same frame as a known message, too.
    client
        .send_text(&format!(
            "{{\"type\":42}}{RS}{{\"type\":1,\"invocationId\":\"x\",\"target\":\"Add\",\"arguments\":[2,2]}}{RS}"
        ))
        .await;
    let completion = client.recv().await;
    assert_eq!(completion, json!({"type": 3, "invocationId": "x", "result": 4}));
}

#[tokio::test]
async fn ping_and_unexpected_messages_keep_the_connection() {
    let server = server(HubOptions::default()).await;
    let mut client = server.connect("/calc").await;
    client.send(&json!({"type": 6})).await;
    // A Completion nobody waits for, and a cancel of an unknown stream: logged, ignored.
    client
        .send(&json!({"type": 3, "invocationId": "nobody", "result": 1}))
        .await;
    client.send(&json!({"type": 5, "invocationId": "nobody"})).await;
    assert_eq!(client.call_ok("Echo", json!(["still here"])).await, "still here");
}

fn oversized_options(detailed_errors: bool) -> HubOptions {
    HubOptions {
        max_message_size: 1024,
        detailed_errors,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_message_under_the_limit_is_accepted() {
    let server = server(oversized_options(false)).await;
    let mut client = server.connect("/calc").await;
    let text = "a".repeat(900);
    assert_eq!(client.call_ok("Echo", json!([text])).await, text.as_str());
}

#[tokio::test]
async fn an_oversized_message_closes_with_an_error() {
    let server = server(oversized_options(false)).await;
    let mut client = server.connect("/calc").await;
    client.invoke("Echo", json!(["a".repeat(2000)])).await;
    assert_eq!(expect_error_close(&mut client).await, CLOSED_WITH_ERROR);
}

#[tokio::test]
async fn an_oversized_message_detailed() {
    let server = server(oversized_options(true)).await;
    let mut client = server.connect("/calc").await;
    client.invoke("Echo", json!(["a".repeat(2000)])).await;
    assert_eq!(
        expect_error_close(&mut client).await,
        "Connection closed with an error. InvalidDataException: The maximum message size of 1024B was exceeded. \
         The message size can be configured in AddHubOptions."
    );
}

#[tokio::test]
async fn an_oversized_partial_message_closes_before_its_end_arrives() {
    let server = server(oversized_options(false)).await;
    let mut client = server.connect("/calc").await;
    // No record separator yet, but already larger than one message may be.
    client
        .send_text(&format!(
            "{{\"type\":1,\"target\":\"Echo\",\"arguments\":[\"{}",
            "a".repeat(1100)
        ))
        .await;
    assert_eq!(expect_error_close(&mut client).await, CLOSED_WITH_ERROR);
}

#[tokio::test]
async fn several_messages_in_one_frame_are_all_processed() {
    let server = server(HubOptions::default()).await;
    let mut client = server.connect("/calc").await;
    let mut frame = String::new();
    for i in 0..5 {
        frame.push_str(
            &json!({"type": 1, "invocationId": i.to_string(), "target": "Add", "arguments": [i, 100]}).to_string(),
        );
        frame.push(RS);
    }
    // Ping and a non-blocking invocation in the middle, too.
    frame.push_str(&format!(
        "{{\"type\":6}}{RS}{{\"type\":1,\"target\":\"Add\",\"arguments\":[0,0]}}{RS}"
    ));
    client.send_text(&frame).await;
    for i in 0..5 {
        let completion = client.recv().await;
        assert_eq!(
            completion,
            json!({"type": 3, "invocationId": i.to_string(), "result": i + 100})
        );
    }
    // Nothing else came for the non-blocking one.
    assert_eq!(client.call_ok("Add", json!([1, 1])).await, 2);
}

#[tokio::test]
async fn a_message_split_across_frames_is_reassembled() {
    let server = server(HubOptions::default()).await;
    let mut client = server.connect("/calc").await;
    let message = format!(
        "{}{RS}",
        json!({"type": 1, "invocationId": "split", "target": "Echo", "arguments": ["joined"]})
    );
    let (first, second) = message.split_at(17);
    client.send_text(first).await;
    client.send_text(second).await;
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": "split", "result": "joined"})
    );

    // Three pieces, the last one also carrying a whole second message.
    let two = format!(
        "{}{RS}{}{RS}",
        json!({"type": 1, "invocationId": "a", "target": "Add", "arguments": [20, 1]}),
        json!({"type": 1, "invocationId": "b", "target": "Add", "arguments": [20, 2]})
    );
    let one_end = two.find(RS).unwrap();
    client.send_text(&two[..5]).await;
    client.send_text(&two[5..one_end - 2]).await;
    client.send_text(&two[one_end - 2..]).await;
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": "a", "result": 21})
    );
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": "b", "result": 22})
    );
}

#[tokio::test]
async fn messages_in_the_handshake_frame_are_processed() {
    let server = server(HubOptions::default()).await;
    let mut client = Client::open(&server.ws_url("/calc")).await.expect("skip negotiation");
    // The handshake arrives in two frames; the second also carries an invocation.
    client.send_text("{\"protocol\":\"json\",").await;
    client
        .send_text(&format!(
            "\"version\":1}}{RS}{}{RS}",
            json!({"type": 1, "invocationId": "1", "target": "Add", "arguments": [40, 2]})
        ))
        .await;
    assert_eq!(client.recv().await, json!({}));
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": "1", "result": 42})
    );
}

#[tokio::test]
async fn binary_frames_carry_json_too() {
    // Clients may send the text protocol in binary frames; the bytes are what counts.
    let server = server(HubOptions::default()).await;
    let mut client = server.connect("/calc").await;
    let message = format!(
        "{}{RS}",
        json!({"type": 1, "invocationId": "1", "target": "Add", "arguments": [1, 2]})
    );
    client.send_binary(message.as_bytes()).await;
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": "1", "result": 3})
    );
}

#[tokio::test]
async fn a_frame_larger_than_max_frame_size_ends_the_connection() {
    let options = HubOptions {
        max_frame_size: 4096,
        ..Default::default()
    };
    let server = server(options).await;
    let mut client = server.connect("/calc").await;
    let mut frame = String::new();
    while frame.len() <= 4096 {
        frame.push_str(&format!(
            "{}{RS}",
            json!({"type": 1, "target": "Add", "arguments": [1, 2]})
        ));
    }
    client.send_text(&frame).await;
    // The WebSocket layer refuses the frame: the socket ends, with no completion first.
    loop {
        match client.try_recv().await {
            Err(_) => break,
            Ok(message) => assert_eq!(message["type"], 7, "only a Close may come: {message}"),
        }
    }
    common::eventually("the connection to be gone", || server.server.connection_count() == 0).await;
}
