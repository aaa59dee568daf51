//! Limits, filters and slow consumers, over real loopback sockets.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{within, Client, TestServer};
use hub_runtime::hub::filter::{ConnectionInfo, HubFilter, InvocationInfo, InvocationOutcome};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, Cors, EndpointOptions, Identity, RequestContext};
use serde_json::{json, Value};

/// Invokes and waits for the completion, skipping any other message (broadcasts, items).
async fn call_skipping(client: &mut Client, target: &str, arguments: Value) -> Value {
    let id = client.invoke(target, arguments).await;
    loop {
        let message = client.recv_skip_pings().await;
        if message["type"] == 3 && message["invocationId"] == id.as_str() {
            return message;
        }
    }
}

#[hub_client]
trait LimitClient {
    fn receive(&self, message: String);
}

struct Limited;

#[hub(client = LimitClient)]
impl Limited {
    fn echo(&self, message: String) -> String {
        message
    }

    async fn join(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    fn numbers(&self, to: u32) -> impl Stream<Item = u32> {
        futures_util::stream::iter(0..to).chain(futures_util::stream::pending())
    }

    async fn broadcast(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.others().receive(message).await?)
    }

    fn delete_everything(&self) -> bool {
        true
    }
}

fn server(options: HubOptions) -> HubServer {
    HubServer::builder().options(options).hub("/limited", Limited).build()
}

#[tokio::test]
async fn group_memberships_are_limited() {
    let server = TestServer::start(server(HubOptions {
        max_groups_per_connection: 2,
        ..Default::default()
    }))
    .await;
    let mut client = server.connect("/limited").await;
    client.call_ok("Join", json!(["a"])).await;
    client.call_ok("Join", json!(["b"])).await;
    client.call_ok("Join", json!(["a"])).await;
    let error = client.call_err("Join", json!(["c"])).await;
    assert!(
        error.starts_with("An unexpected error occurred invoking 'Join' on the server."),
        "{error}"
    );
    assert_eq!(client.call_ok("Echo", json!(["still here"])).await, "still here");
}

#[tokio::test]
async fn open_streams_are_limited() {
    let options = HubOptions {
        max_streams_per_connection: 2,
        detailed_errors: true,
        ..Default::default()
    };
    let server = TestServer::start(server(options)).await;
    let mut client = server.connect("/limited").await;
    for id in ["s1", "s2", "s3"] {
        client
            .send(&json!({"type": 4, "invocationId": id, "target": "Numbers", "arguments": [1]}))
            .await;
    }
    let mut refused = None;
    for _ in 0..10 {
        let message = client.recv_skip_pings().await;
        if message["type"] == 3 && message["invocationId"] == "s3" {
            refused = Some(message);
            break;
        }
    }
    let refused = refused.expect("the third stream is refused");
    assert!(
        refused["error"].as_str().unwrap().contains("Too many streams"),
        "{refused}"
    );
    assert_eq!(call_skipping(&mut client, "Echo", json!(["ok"])).await["result"], "ok");
}

#[tokio::test]
async fn invocations_are_rate_limited() {
    let server = TestServer::start(server(HubOptions {
        max_invocations_per_second: Some(5),
        ..Default::default()
    }))
    .await;
    let mut client = server.connect("/limited").await;
    let mut refused = 0;
    for i in 0..20 {
        let reply = client.call("Echo", json!([format!("{i}")])).await;
        if reply.get("error").is_some() {
            assert!(
                reply["error"].as_str().unwrap().contains("Too many invocations"),
                "{reply}"
            );
            refused += 1;
        }
    }
    assert!(
        refused >= 10,
        "most of a burst of 20 over a limit of 5/s is refused ({refused})"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        client.call_ok("Echo", json!(["later"])).await,
        "later",
        "the bucket refills"
    );
}

#[tokio::test]
async fn the_server_refuses_connections_beyond_its_maximum() {
    let server = TestServer::start(server(HubOptions {
        max_connections: Some(2),
        ..Default::default()
    }))
    .await;
    let _a = server.connect("/limited").await;
    let _b = server.connect("/limited").await;
    let refused = server.negotiate("/limited", "negotiateVersion=1").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(
        Client::open_status(&server.ws_url("/limited")).await,
        503,
        "skipNegotiation too"
    );
}

#[tokio::test]
async fn connections_per_user_are_limited() {
    let by_query =
        |req: &RequestContext| -> Result<Option<Identity>, AuthError> { Ok(req.query("user").map(Identity::user)) };
    let server = HubServer::builder()
        .options(HubOptions {
            max_connections_per_user: Some(1),
            ..Default::default()
        })
        .hub_with("/limited", Limited, EndpointOptions::new().authenticator(by_query))
        .build();
    let server = TestServer::start(server).await;
    let mut first = server.connect_with_query("/limited", "user=ann").await;
    let mut second = server.connect_with_query("/limited", "user=ann").await;
    let close = second.expect_close_message().await;
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .starts_with("Connection closed with an error."),
        "{close}"
    );
    let mut other = server.connect_with_query("/limited", "user=bob").await;
    assert_eq!(first.call_ok("Echo", json!(["a"])).await, "a");
    assert_eq!(other.call_ok("Echo", json!(["b"])).await, "b");
}

#[tokio::test]
async fn websockets_from_a_disallowed_origin_are_refused() {
    let server = HubServer::builder()
        .cors(Cors::origins(["http://good.example"]))
        .hub("/limited", Limited)
        .build();
    let server = TestServer::start(server).await;
    let url = server.ws_url("/limited");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match within("upgrade", tokio_tungstenite::connect_async(request)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!(
            "the upgrade from a disallowed origin must be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
    request
        .headers_mut()
        .insert("origin", "http://good.example".parse().unwrap());
    assert!(
        within("upgrade", tokio_tungstenite::connect_async(request))
            .await
            .is_ok(),
        "an allowed origin connects"
    );
}

/// Records every hook, tagged with the filter's name.
struct Recorder(&'static str, Arc<Mutex<Vec<String>>>);

impl HubFilter for Recorder {
    fn before_invoke(&self, call: &InvocationInfo) -> Result<(), HubError> {
        self.1
            .lock()
            .unwrap()
            .push(format!("{} before {}", self.0, call.method));
        if call.method == "DeleteEverything" {
            return Err(HubError::for_client("not today"));
        }
        Ok(())
    }

    fn after_invoke(&self, call: &InvocationInfo, outcome: &InvocationOutcome) {
        self.1
            .lock()
            .unwrap()
            .push(format!("{} after {} failed={}", self.0, call.method, outcome.failed));
    }

    fn on_connected(&self, _: &ConnectionInfo) -> Result<(), HubError> {
        self.1.lock().unwrap().push(format!("{} connected", self.0));
        Ok(())
    }
}

#[tokio::test]
async fn filters_run_in_order_and_can_refuse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = HubServer::builder()
        .filter(Recorder("global", log.clone()))
        .hub_with(
            "/limited",
            Limited,
            EndpointOptions::new().filter(Recorder("hub", log.clone())),
        )
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/limited").await;
    assert_eq!(client.call_ok("Echo", json!(["x"])).await, "x");
    let refused = client.call_err("DeleteEverything", json!([])).await;
    assert_eq!(
        refused,
        "An unexpected error occurred invoking 'DeleteEverything' on the server. HubException: not today"
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            "global connected",
            "hub connected",
            "global before Echo",
            "hub before Echo",
            "hub after Echo failed=false",
            "global after Echo failed=false",
            "global before DeleteEverything",
        ]
    );
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_and_the_others_get_everything() {
    let options = HubOptions {
        outbox_max_bytes: 64 * 30_100,
        ..Default::default()
    };
    let server = TestServer::start(server(options)).await;
    // A raw socket that completes the handshake and then never reads again.
    let url = server.ws_url("/limited");
    let (mut stuck, _) = within("connect", tokio_tungstenite::connect_async(url.as_str()))
        .await
        .unwrap();
    use futures_util::SinkExt;
    stuck
        .send(tokio_tungstenite::tungstenite::Message::text(
            "{\"protocol\":\"json\",\"version\":1}\u{1e}",
        ))
        .await
        .unwrap();
    let mut readers = Vec::new();
    for _ in 0..5 {
        readers.push(server.connect("/limited").await);
    }
    let rounds = 600;
    // Well-behaved readers read all the time, each on its own task.
    let reading: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            tokio::spawn(async move {
                let mut got = 0;
                while got < rounds {
                    let message = reader.recv_skip_pings().await;
                    if message["type"] == 1 && message["target"] == "Receive" {
                        got += 1;
                    }
                }
                reader
            })
        })
        .collect();
    let mut sender = server.connect("/limited").await;
    // Far more than the socket buffers between the server and the stuck client can absorb.
    let payload = "x".repeat(30_000);
    for round in 0..rounds {
        sender.send_invocation("Broadcast", json!([payload])).await;
        if round % 16 == 15 {
            // Pace the burst so that readers which do read keep up with an outbox of 64.
            call_skipping(&mut sender, "Echo", json!(["pace"])).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        call_skipping(&mut sender, "Echo", json!(["done"])).await["result"],
        "done"
    );
    let mut readers = Vec::new();
    for task in reading {
        readers.push(within("a reader gets every message", task).await.expect("reader task"));
    }
    // The stuck client was dropped by policy; the server counts only the others.
    common::eventually("the slow consumer is closed", || {
        server.server.connection_count() == readers.len() + 1
    })
    .await;
    drop(stuck);
}
