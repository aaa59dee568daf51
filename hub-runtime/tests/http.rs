//! The HTTP side: negotiate, the transport URL and its refusals, path matching, raw connection
//! handlers, and authentication.

mod common;

use common::{Client, TestServer};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, Connection, EndpointOptions, Identity, RequestContext, TransportKind};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

struct Calc;

#[hub]
impl Calc {
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    fn connection_id(&self, cx: &HubContext<Self>) -> String {
        cx.connection_id().to_string()
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

fn refuse_without_key(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    match request.query("key") {
        Some("open sesame") => Ok(Some(Identity::user("ali"))),
        _ => Err(AuthError::new("no key")),
    }
}

/// Reads the connection from a task of its own (the handler itself only waits for it).
async fn echo_elsewhere(connection: Connection) {
    let _ = tokio::spawn(echo(connection)).await;
}

async fn server() -> TestServer {
    let server = HubServer::builder()
        .hub("/myhub", Calc)
        .connection("/raw", echo)
        .connection("/raw-elsewhere", echo_elsewhere)
        .hub_with("/nows", Calc, EndpointOptions::new().disable(TransportKind::WebSockets))
        .hub_with(
            "/locked",
            Calc,
            EndpointOptions::new().authenticator(refuse_without_key),
        )
        .build();
    TestServer::start(server).await
}

fn is_connection_id(text: &str) -> bool {
    text.len() == 22
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test]
async fn negotiate_version_1() {
    let server = server().await;
    let response = server.negotiate("/myhub", "negotiateVersion=1").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["negotiateVersion"], 1);
    let id = body["connectionId"].as_str().unwrap();
    let token = body["connectionToken"].as_str().unwrap();
    assert!(is_connection_id(id), "{id}");
    assert!(is_connection_id(token), "{token}");
    assert_ne!(id, token);
    assert_eq!(
        body["availableTransports"],
        json!([
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
            {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
            {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]}
        ])
    );
    // Every negotiate makes a new connection.
    let again = server.negotiate("/myhub", "negotiateVersion=1").await.json();
    assert_ne!(again["connectionId"], body["connectionId"]);
    assert_ne!(again["connectionToken"], body["connectionToken"]);
}

#[tokio::test]
async fn negotiate_versions_above_1_get_1() {
    let server = server().await;
    let body = server.negotiate("/myhub", "negotiateVersion=7").await.json();
    assert_eq!(body["negotiateVersion"], 1);
    assert!(body["connectionToken"].is_string());
    let body = server.negotiate("/myhub", "NEGOTIATEVERSION=1").await.json();
    assert_eq!(body["negotiateVersion"], 1, "the parameter name is case-insensitive");
}

#[tokio::test]
async fn negotiate_version_0_has_no_token() {
    let server = server().await;
    let response = server.negotiate("/myhub", "").await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["negotiateVersion"], 0);
    assert!(body.get("connectionToken").is_none(), "{body}");
    let id = body["connectionId"].as_str().unwrap().to_string();
    assert!(is_connection_id(&id));
    // With version 0 the connectionId is what opens the transport.
    let mut client = Client::open(&server.ws_url(&format!("/myhub?id={id}")))
        .await
        .expect("opens with the id");
    client.handshake().await;
    assert_eq!(client.call_ok("ConnectionId", json!([])).await, id.as_str());
}

#[tokio::test]
async fn negotiate_with_a_bad_version() {
    let server = server().await;
    let response = server.negotiate("/myhub", "negotiateVersion=one").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({"error": "The client requested a non-integer protocol version."})
    );
    let response = server.negotiate("/myhub", "negotiateVersion=-1").await;
    assert_eq!(
        response.json(),
        json!({"error": "The client requested version '-1', but the server does not support this version."})
    );
}

#[tokio::test]
async fn negotiate_only_answers_post() {
    let server = server().await;
    for method in ["GET", "PUT", "DELETE"] {
        let response = server
            .http(method, "/myhub/negotiate?negotiateVersion=1", &[], "")
            .await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.body, "", "{method}");
    }
}

#[tokio::test]
async fn transport_requests_without_an_id() {
    let server = server().await;
    for method in ["GET", "POST"] {
        let response = server.http(method, "/myhub", &[], "").await;
        assert_eq!(response.status, 400, "{method}");
        assert_eq!(response.body, "Connection ID required");
        assert_eq!(response.header("content-type"), Some("text/plain"));
    }
    let response = server.http("GET", "/myhub?id=", &[], "").await;
    assert_eq!(
        (response.status, response.body.as_str()),
        (400, "Connection ID required")
    );
}

#[tokio::test]
async fn unknown_connection_ids() {
    let server = server().await;
    let response = server.http("GET", "/myhub?id=nope", &[], "").await;
    assert_eq!(
        (response.status, response.body.as_str()),
        (404, "No Connection with that ID")
    );
    let response = server.http("POST", "/myhub?id=nope", &[], "{}\u{1e}").await;
    assert_eq!(
        (response.status, response.body.as_str()),
        (404, "No Connection with that ID")
    );
    assert_eq!(Client::open_status(&server.ws_url("/myhub?id=nope")).await, 404);
}

#[tokio::test]
async fn only_the_token_opens_the_transport() {
    let server = server().await;
    let body = server.negotiate("/myhub", "negotiateVersion=1").await.json();
    let id = body["connectionId"].as_str().unwrap();
    let token = body["connectionToken"].as_str().unwrap();
    assert_eq!(
        Client::open_status(&server.ws_url(&format!("/myhub?id={id}"))).await,
        404
    );
    assert_eq!(
        server.http("GET", &format!("/myhub?id={id}"), &[], "").await.status,
        404
    );
    let mut client = Client::open(&server.ws_url(&format!("/myhub?id={token}")))
        .await
        .expect("the token opens it");
    client.handshake().await;
    assert_eq!(
        client.call_ok("ConnectionId", json!([])).await,
        id,
        "the hub sees the public id"
    );
}

#[tokio::test]
async fn a_second_websocket_on_a_live_connection_is_a_conflict() {
    let server = server().await;
    let mut first = server.connect("/myhub").await;
    let token = first.connection_token.clone().unwrap();
    let url = server.ws_url(&format!("/myhub?id={token}"));
    assert_eq!(Client::open_status(&url).await, 409);
    // The first one is unharmed.
    assert_eq!(first.call_ok("Add", json!([1, 2])).await, 3);
    // Other requests on a WebSocket connection.
    let post = server
        .http("POST", &format!("/myhub?id={token}"), &[], "{\"type\":6}\u{1e}")
        .await;
    assert_eq!(
        (post.status, post.body.as_str()),
        (405, "POST requests are not allowed for WebSocket connections.")
    );
    let delete = server.http("DELETE", &format!("/myhub?id={token}"), &[], "").await;
    assert_eq!(
        (delete.status, delete.body.as_str()),
        (400, "Cannot terminate this connection using the DELETE endpoint.")
    );
    let get = server.http("GET", &format!("/myhub?id={token}"), &[], "").await;
    assert_eq!(
        (get.status, get.body.as_str()),
        (400, "Cannot change transports mid-connection")
    );
    assert_eq!(first.call_ok("Add", json!([2, 2])).await, 4);
}

#[tokio::test]
async fn a_closed_connection_cannot_be_reopened() {
    let server = server().await;
    let first = server.connect("/myhub").await;
    let token = first.connection_token.clone().unwrap();
    first.close().await;
    common::eventually("the connection to be gone", || server.server.connection_count() == 0).await;
    assert_eq!(
        Client::open_status(&server.ws_url(&format!("/myhub?id={token}"))).await,
        404
    );
}

#[tokio::test]
async fn skip_negotiation() {
    let server = server().await;
    let mut client = Client::open(&server.ws_url("/myhub"))
        .await
        .expect("a WebSocket without an id");
    client.handshake().await;
    assert_eq!(client.call_ok("Add", json!([20, 22])).await, 42);
    let id = client.call_ok("ConnectionId", json!([])).await;
    assert!(is_connection_id(id.as_str().unwrap()), "{id}");
}

#[tokio::test]
async fn paths_match_case_insensitively() {
    let server = server().await;
    let body = server.negotiate("/MyHub", "negotiateVersion=1").await.json();
    let token = body["connectionToken"].as_str().unwrap();
    let mut client = Client::open(&server.ws_url(&format!("/MYHUB?id={token}")))
        .await
        .expect("opens");
    client.handshake().await;
    assert_eq!(client.call_ok("Add", json!([1, 1])).await, 2);
    // A trailing slash is the same path, too.
    let response = server
        .http("POST", "/MYHUB/Negotiate/?negotiateVersion=1", &[], "")
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["negotiateVersion"], 1);
}

#[tokio::test]
async fn unmapped_paths_are_not_found() {
    let server = server().await;
    assert_eq!(server.negotiate("/other", "negotiateVersion=1").await.status, 404);
    assert_eq!(server.http("GET", "/myhub/extra", &[], "").await.status, 404);
    assert_eq!(server.negotiate("/myhubx", "negotiateVersion=1").await.status, 404);
}

#[tokio::test]
async fn raw_connections_echo_text_and_binary() {
    let server = server().await;
    let body = server.negotiate("/raw", "negotiateVersion=1").await.json();
    let token = body["connectionToken"].as_str().unwrap();
    let mut client = Client::open(&server.ws_url(&format!("/raw?id={token}")))
        .await
        .expect("opens");
    client.send_text("hello").await;
    match client.next_frame().await {
        Ok(Message::Text(text)) => assert_eq!(text.as_str(), "hello"),
        other => panic!("expected a text frame, got {other:?}"),
    }
    client.send_binary(&[0, 1, 2, 255]).await;
    match client.next_frame().await {
        Ok(Message::Binary(data)) => assert_eq!(data.as_ref(), &[0, 1, 2, 255]),
        other => panic!("expected a binary frame, got {other:?}"),
    }
    // No hub protocol: a handshake is just text.
    client.send_text("{\"protocol\":\"json\",\"version\":1}\u{1e}").await;
    match client.next_frame().await {
        Ok(Message::Text(text)) => {
            assert_eq!(text.as_str(), "{\"protocol\":\"json\",\"version\":1}\u{1e}")
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
    // Skipping negotiation works for raw connections too.
    let mut direct = Client::open(&server.ws_url("/raw")).await.expect("opens");
    direct.send_text("direct").await;
    assert!(matches!(direct.next_frame().await, Ok(Message::Text(t)) if t.as_str() == "direct"));
}

#[tokio::test]
async fn refused_authentication_is_401() {
    let server = server().await;
    let response = server.negotiate("/locked", "negotiateVersion=1").await;
    assert_eq!(response.status, 401);
    assert_eq!(response.body, "");
    assert_eq!(Client::open_status(&server.ws_url("/locked")).await, 401);

    let response = server
        .negotiate("/locked", "negotiateVersion=1&key=open%20sesame")
        .await;
    assert_eq!(response.status, 200);
    let token = response.json()["connectionToken"].as_str().unwrap().to_string();
    // The transport request is authenticated again.
    assert_eq!(
        Client::open_status(&server.ws_url(&format!("/locked?id={token}"))).await,
        401
    );
    let mut client = Client::open(&server.ws_url(&format!("/locked?id={token}&key=open%20sesame")))
        .await
        .expect("opens");
    client.handshake().await;
    assert_eq!(client.call_ok("Add", json!([1, 2])).await, 3);
}

#[tokio::test]
async fn a_disabled_websocket_transport() {
    let server = server().await;
    let body = server.negotiate("/nows", "negotiateVersion=1").await.json();
    let offered: Vec<&str> = body["availableTransports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transport"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["ServerSentEvents", "LongPolling"]);
    let token = body["connectionToken"].as_str().unwrap();
    match Client::open(&server.ws_url(&format!("/nows?id={token}"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 404);
            let body = response.body().clone().unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&body),
                "WebSockets transport not supported by this end point type"
            );
        }
        Err(e) => panic!("refused without a response: {e}"),
        Ok(_) => panic!("the WebSocket was accepted"),
    }
    assert_eq!(Client::open_status(&server.ws_url("/nows")).await, 404);
}

#[tokio::test]
async fn a_raw_handler_reading_from_another_task_gets_every_frame_of_a_burst() {
    // More frames at once than the connection's inbox holds: the socket's task must wake the
    // reading task for each, and go on reading the socket once the inbox has room again.
    let server = server().await;
    let mut client = Client::open(&server.ws_url("/raw-elsewhere")).await.expect("opens");
    for i in 0..200 {
        client.send_text(&format!("m{i}")).await;
    }
    for i in 0..200 {
        match client.next_frame().await {
            Ok(Message::Text(text)) => assert_eq!(text.as_str(), format!("m{i}")),
            other => panic!("expected frame {i}, got {other:?}"),
        }
    }
}
