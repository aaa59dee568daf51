//! A WebSocket message larger than `max_frame_size`: the client is told why (a Close message
//! with the error, on hub connections) and gets a close frame 1009 (message too big, RFC 6455),
//! and the connection ends cleanly rather than with a reset.

mod common;
mod msgpack_client;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hub_runtime::prelude::*;
use hub_runtime::Connection;
use msgpack_client::{message_type, Ending, MsgpackClient};
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use common::{eventually, http, within, TestServer, RS};

struct Echo;

#[hub]
impl Echo {
    fn echo(&self, message: String) -> String {
        message
    }
}

async fn echo(mut connection: Connection) {
    let sender = connection.sender();
    while let Some(frame) = connection.recv().await {
        if sender.send(frame).await.is_err() {
            break;
        }
    }
}

/// A raw handler that ignores the end of its input until the connection is torn down.
async fn deaf(connection: Connection) {
    connection.aborted().await;
}

const LIMIT: usize = 1024 * 1024;

const EXPECTED: &str =
    "Connection closed with an error. InvalidDataException: The maximum message size of 1048576B was exceeded.";

async fn server() -> TestServer {
    let options = HubOptions {
        detailed_errors: true,
        ..Default::default()
    };
    TestServer::start(
        HubServer::builder()
            .options(options)
            .hub("/echo", Echo)
            .connection("/raw", echo)
            .connection("/deaf", deaf)
            .build(),
    )
    .await
}

/// After the close frame, the server closes the TCP connection in order: the client sees
/// the end of the stream, not a reset.
async fn expect_clean_end(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) {
    loop {
        match within("the end of the socket", ws.next()).await {
            None => return,
            Some(Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("expected the socket to end, got {other:?}"),
            Some(Err(e)) => panic!("the socket ended with an error, not cleanly: {e}"),
        }
    }
}

fn expect_too_big(ending: Ending) {
    match ending {
        Ending::Close(Some(close)) => assert_eq!(close.code, CloseCode::Size, "{close:?}"),
        other => panic!("expected a close frame 1009, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_json_message_gets_a_close_message_and_1009() {
    let server = server().await;
    let negotiated = http(server.addr, "POST", "/echo/negotiate?negotiateVersion=1", &[], "").await;
    let token = negotiated.json()["connectionToken"].as_str().unwrap().to_string();
    let url = format!("ws://{}/echo?id={token}", server.addr);
    let (mut ws, _) = within("open", tokio_tungstenite::connect_async(url)).await.unwrap();
    ws.send(Message::text(format!("{{\"protocol\":\"json\",\"version\":1}}{RS}")))
        .await
        .unwrap();
    match within("handshake reply", ws.next()).await {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), format!("{{}}{RS}")),
        other => panic!("expected the handshake reply, got {other:?}"),
    }
    // One invocation whose argument makes the message just over the limit.
    let head = "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"";
    let tail = format!("\"]}}{RS}");
    let filler = "x".repeat(LIMIT + 1 - head.len() - tail.len());
    let message = format!("{head}{filler}{tail}");
    assert_eq!(message.len(), LIMIT + 1);
    within("send", ws.send(Message::text(message))).await.unwrap();
    let close = loop {
        match within("the Close message", ws.next()).await {
            Some(Ok(Message::Text(text))) => {
                let close: Value = serde_json::from_str(text.as_str().trim_end_matches(RS)).unwrap();
                if close["type"] == 6 {
                    continue;
                }
                break close;
            }
            other => panic!("expected the Close message, got {other:?}"),
        }
    };
    assert_eq!(close["type"], 7, "{close}");
    let error = close["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(EXPECTED), "{close}");
    match within("the close frame", ws.next()).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Size, "{frame:?}"),
        other => panic!("expected a close frame 1009, got {other:?}"),
    }
    expect_clean_end(&mut ws).await;
    eventually("the connection is gone", || server.server.connection_count() == 0).await;
}

#[tokio::test]
async fn an_oversized_messagepack_message_gets_a_close_message_and_1009() {
    let server = server().await;
    let mut client = MsgpackClient::connect(server.addr, "/echo").await;
    client.send_binary(vec![0x91; LIMIT + 1]).await;
    let close = client.recv().await;
    assert_eq!(message_type(&close), 7, "{close}");
    let error = close[1].as_str().unwrap_or_default();
    assert!(error.starts_with(EXPECTED), "{close}");
    expect_too_big(client.try_recv().await.unwrap_err());
    expect_clean_end(&mut client.ws).await;
    eventually("the connection is gone", || server.server.connection_count() == 0).await;
}

#[tokio::test]
async fn an_oversized_message_on_a_raw_connection_gets_1009() {
    let server = server().await;
    for path in ["/raw", "/deaf"] {
        let url = server.ws_url(path);
        let (mut ws, _) = within("open", tokio_tungstenite::connect_async(url)).await.unwrap();
        ws.send(Message::binary(vec![1u8; 10])).await.unwrap();
        if path == "/raw" {
            match within("the echo", ws.next()).await {
                Some(Ok(Message::Binary(data))) => assert_eq!(data.len(), 10),
                other => panic!("expected the echo, got {other:?}"),
            }
        }
        within("send", ws.send(Message::binary(vec![2u8; LIMIT + 1])))
            .await
            .unwrap();
        // A handler that does not end with its input is not waited for beyond the send timeout.
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a close frame in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Size, "{path}: {frame:?}"),
            other => panic!("{path}: expected a close frame 1009, got {other:?}"),
        }
        expect_clean_end(&mut ws).await;
    }
    eventually("the connections are gone", || server.server.connection_count() == 0).await;
}
