//! The handshake: the first message of every hub connection.

mod common;

use std::time::{Duration, Instant};

use common::{Client, TestServer, RS};
use hub_runtime::prelude::*;
use serde_json::json;

struct Calc;

#[hub]
impl Calc {
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

async fn server(options: HubOptions) -> TestServer {
    TestServer::start(HubServer::builder().options(options).hub("/calc", Calc).build()).await
}

/// Opens a WebSocket without negotiating (the handshake is up to the test).
async fn open(server: &TestServer) -> Client {
    Client::open(&server.ws_url("/calc"))
        .await
        .expect("the WebSocket opens")
}

/// Sends `handshake` and returns the error of the reply, which must be followed by the end of
/// the connection.
async fn refused(client: &mut Client, handshake: &str) -> String {
    client.send_text(handshake).await;
    let reply = client.recv().await;
    let error = reply["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a handshake error, got {reply}"))
        .to_string();
    assert_eq!(reply.as_object().map(|o| o.len()), Some(1), "only `error`: {reply}");
    client.expect_closed().await;
    error
}

const HANDSHAKE_FAILED: &str = "An unexpected error occurred during connection handshake.";

#[tokio::test]
async fn invalid_handshake_json() {
    let server = server(HubOptions::default()).await;
    let mut client = open(&server).await;
    assert_eq!(
        refused(&mut client, &format!("this is not json{RS}")).await,
        HANDSHAKE_FAILED
    );
}

#[tokio::test]
async fn invalid_handshake_json_detailed() {
    let server = server(HubOptions {
        detailed_errors: true,
        ..Default::default()
    })
    .await;
    let mut client = open(&server).await;
    let error = refused(&mut client, &format!("{{\"protocol\":\"json\"}}{RS}")).await;
    assert_eq!(
        error,
        format!("{HANDSHAKE_FAILED} InvalidDataException: Missing required property 'version'.")
    );
    let mut client = open(&server).await;
    let error = refused(&mut client, &format!("nope{RS}")).await;
    assert!(
        error.starts_with(&format!("{HANDSHAKE_FAILED} InvalidDataException: ")),
        "{error}"
    );
}

#[tokio::test]
async fn handshake_missing_protocol_or_wrong_types() {
    let server = server(HubOptions::default()).await;
    for bad in [
        json!({"version": 1}),
        json!({"protocol": "json", "version": "1"}),
        json!({"protocol": 1, "version": 1}),
        json!([1, 2]),
    ] {
        let mut client = open(&server).await;
        assert_eq!(
            refused(&mut client, &format!("{bad}{RS}")).await,
            HANDSHAKE_FAILED,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn unknown_protocol() {
    let server = server(HubOptions::default()).await;
    let mut client = open(&server).await;
    let error = refused(&mut client, &format!("{{\"protocol\":\"xyz\",\"version\":1}}{RS}")).await;
    assert_eq!(error, "The protocol 'xyz' is not supported.");
}

#[tokio::test]
async fn unsupported_version() {
    let server = server(HubOptions::default()).await;
    let mut client = open(&server).await;
    let error = refused(&mut client, &format!("{{\"protocol\":\"json\",\"version\":3}}{RS}")).await;
    assert_eq!(error, "The server does not support version 3 of the 'json' protocol.");
}

#[tokio::test]
async fn supported_versions() {
    let server = server(HubOptions::default()).await;
    for version in [0, 1, 2] {
        let mut client = open(&server).await;
        client
            .send_text(&format!("{{\"protocol\":\"json\",\"version\":{version}}}{RS}"))
            .await;
        assert_eq!(client.recv().await, json!({}), "version {version}");
        assert_eq!(client.call_ok("Add", json!([1, 2])).await, 3);
    }
}

#[tokio::test]
async fn protocol_names_match_case_insensitively() {
    let server = server(HubOptions::default()).await;
    let mut client = open(&server).await;
    client
        .send_text(&format!("{{\"protocol\":\"JSON\",\"version\":1}}{RS}"))
        .await;
    assert_eq!(client.recv().await, json!({}));
    assert_eq!(client.call_ok("Add", json!([2, 3])).await, 5);
}

#[tokio::test]
async fn handshake_never_sent_times_out() {
    let timeout = Duration::from_millis(300);
    let server = server(HubOptions {
        handshake_timeout: timeout,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let mut client = open(&server).await;
    let reply = client.recv().await;
    assert_eq!(reply, json!({"error": "Handshake was canceled."}));
    client.expect_closed().await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout - Duration::from_millis(20),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
}

#[tokio::test]
async fn incomplete_handshake_times_out() {
    let timeout = Duration::from_millis(300);
    let server = server(HubOptions {
        handshake_timeout: timeout,
        ..Default::default()
    })
    .await;
    let mut client = open(&server).await;
    client.send_text("{\"protocol\":\"json\",").await;
    assert_eq!(client.recv().await, json!({"error": "Handshake was canceled."}));
    client.expect_closed().await;
}

#[tokio::test]
async fn oversized_handshake_is_canceled() {
    let server = server(HubOptions {
        max_message_size: 1024,
        ..Default::default()
    })
    .await;
    let mut client = open(&server).await;
    let error = refused(
        &mut client,
        &format!("{{\"protocol\":\"json\",\"x\":\"{}", "a".repeat(2000)),
    )
    .await;
    assert_eq!(error, "Handshake was canceled.");
}
