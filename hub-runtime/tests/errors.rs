//! Hub methods that fail with `anyhow::Error` or `Box<dyn Error + Send + Sync>`: the caller sees
//! the standard text, and the detail (`Kind: message`, with the causes) only with detailed
//! errors on. A `HubError` inside them keeps its kind and stays visible when meant for clients.

#![cfg(feature = "anyhow")]

mod common;

use std::error::Error;

use anyhow::Context;
use common::TestServer;
use hub_runtime::prelude::*;
use serde_json::json;

struct Store;

#[hub]
impl Store {
    fn save(&self) -> anyhow::Result<i32> {
        Err(std::io::Error::other("disk full")).context("saving the room")
    }

    async fn save_later(&self) -> anyhow::Result<()> {
        tokio::task::yield_now().await;
        anyhow::bail!("no room")
    }

    fn join(&self) -> anyhow::Result<()> {
        Err(HubError::for_client("the room is full")).context("joining")
    }

    fn parse(&self, text: String) -> Result<i32, Box<dyn Error + Send + Sync>> {
        Ok(text.parse::<i32>()?)
    }

    async fn parse_later(&self, text: String) -> Result<i32, Box<dyn Error + Send + Sync>> {
        tokio::task::yield_now().await;
        let value: i32 = text.parse()?;
        Ok(value)
    }

    fn refuse(&self) -> Result<(), Box<dyn Error + Send + Sync>> {
        Err(Box::new(HubError::new("too late").with_kind("TimeoutException")))
    }

    fn opened(&self, open: bool) -> Result<impl Stream<Item = u32>, Box<dyn Error + Send + Sync>> {
        if !open {
            return Err("the stream is closed".into());
        }
        Ok(futures_util::stream::iter([7]))
    }

    fn counted(&self) -> impl Stream<Item = anyhow::Result<u32>> {
        futures_util::stream::iter([Ok(1), Err(anyhow::anyhow!("counter broke"))])
    }
}

async fn server(detailed_errors: bool) -> TestServer {
    let options = HubOptions {
        detailed_errors,
        ..Default::default()
    };
    TestServer::start(HubServer::builder().options(options).hub("/store", Store).build()).await
}

fn base(method: &str) -> String {
    format!("An unexpected error occurred invoking '{method}' on the server.")
}

#[tokio::test]
async fn without_detailed_errors_the_caller_sees_the_standard_text() {
    let server = server(false).await;
    let mut client = server.connect("/store").await;
    assert_eq!(client.call_err("Save", json!([])).await, base("Save"));
    assert_eq!(client.call_err("SaveLater", json!([])).await, base("SaveLater"));
    assert_eq!(client.call_err("Parse", json!(["x"])).await, base("Parse"));
    assert_eq!(client.call_err("ParseLater", json!(["x"])).await, base("ParseLater"));
    assert_eq!(client.call_err("Refuse", json!([])).await, base("Refuse"));
    assert_eq!(client.call_ok("Parse", json!(["42"])).await, json!(42));
    assert_eq!(client.call_ok("ParseLater", json!(["7"])).await, json!(7));
    // A HubError meant for clients is shown whatever wraps it.
    assert_eq!(
        client.call_err("Join", json!([])).await,
        format!("{} HubException: the room is full", base("Join"))
    );
}

#[tokio::test]
async fn with_detailed_errors_the_caller_sees_the_detail_and_the_causes() {
    let server = server(true).await;
    let mut client = server.connect("/store").await;
    assert_eq!(
        client.call_err("Save", json!([])).await,
        format!("{} Exception: saving the room: disk full", base("Save"))
    );
    assert_eq!(
        client.call_err("SaveLater", json!([])).await,
        format!("{} Exception: no room", base("SaveLater"))
    );
    assert_eq!(
        client.call_err("Parse", json!(["x"])).await,
        format!("{} Exception: invalid digit found in string", base("Parse"))
    );
    assert_eq!(
        client.call_err("ParseLater", json!([""])).await,
        format!(
            "{} Exception: cannot parse integer from empty string",
            base("ParseLater")
        )
    );
    // A HubError in the box keeps its kind.
    assert_eq!(
        client.call_err("Refuse", json!([])).await,
        format!("{} TimeoutException: too late", base("Refuse"))
    );
}

#[tokio::test]
async fn a_stream_item_error_from_anyhow_ends_the_stream() {
    for (detailed, text) in [
        (
            false,
            "An error occurred on the server while streaming results.".to_string(),
        ),
        (
            true,
            "An error occurred on the server while streaming results. Exception: counter broke".to_string(),
        ),
    ] {
        let server = server(detailed).await;
        let mut client = server.connect("/store").await;
        client
            .send(&json!({"type": 4, "invocationId": "s", "target": "Counted", "arguments": []}))
            .await;
        assert_eq!(client.recv().await, json!({"type": 2, "invocationId": "s", "item": 1}));
        assert_eq!(
            client.recv().await,
            json!({"type": 3, "invocationId": "s", "error": text})
        );
    }
}

struct Gate;

#[hub]
impl Gate {
    #[hub(on_connected)]
    async fn connected(&self) -> anyhow::Result<()> {
        Err(std::io::Error::other("the ledger is locked")).context("opening the gate")
    }

    fn echo(&self, message: String) -> String {
        message
    }
}

#[tokio::test]
async fn an_on_connected_hook_may_fail_with_anyhow() {
    for (detailed_errors, text) in [
        (false, "Connection closed with an error."),
        (
            true,
            "Connection closed with an error. Exception: opening the gate: the ledger is locked",
        ),
    ] {
        let options = HubOptions {
            detailed_errors,
            ..Default::default()
        };
        let server = TestServer::start(HubServer::builder().options(options).hub("/gate", Gate).build()).await;
        let mut client = server.connect("/gate").await;
        assert_eq!(client.expect_close_message().await, json!({"type": 7, "error": text}));
    }
}

#[tokio::test]
async fn a_streaming_method_may_fail_to_start_with_a_boxed_error() {
    for (detailed_errors, text) in [
        (false, base("Opened")),
        (true, format!("{} Exception: the stream is closed", base("Opened"))),
    ] {
        let server = server(detailed_errors).await;
        let mut client = server.connect("/store").await;
        client
            .send(&json!({"type": 4, "invocationId": "s", "target": "Opened", "arguments": [false]}))
            .await;
        assert_eq!(
            client.recv().await,
            json!({"type": 3, "invocationId": "s", "error": text})
        );
        client
            .send(&json!({"type": 4, "invocationId": "t", "target": "Opened", "arguments": [true]}))
            .await;
        assert_eq!(client.recv().await, json!({"type": 2, "invocationId": "t", "item": 7}));
        assert_eq!(client.recv().await, json!({"type": 3, "invocationId": "t"}));
    }
}
