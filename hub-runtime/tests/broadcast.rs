//! Fan-out that meets a bad target or a bad group name: a message one protocol cannot encode
//! still reaches every connection of the others, and group names have a length limit.

mod common;
mod msgpack_client;

use std::collections::BTreeMap;

use common::{Client, TestServer};
use hub_runtime::prelude::*;
use msgpack_client::{message_type, MsgpackClient};
use serde_json::json;

#[hub_client]
trait Receiver {
    fn receive(&self, message: String);
    /// Points by their coordinates: a map whose keys are not strings, which MessagePack
    /// encodes and JSON cannot.
    fn points(&self, points: BTreeMap<(i32, i32), String>);
}

struct Broadcast;

#[hub(client = Receiver)]
impl Broadcast {
    fn echo(&self, message: String) -> String {
        message
    }

    async fn join(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.remove(cx.connection_id(), &group).await?)
    }

    async fn to_group(&self, cx: &HubContext<Self>, group: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.group(group).receive(message).await?)
    }

    async fn to_groups(&self, cx: &HubContext<Self>, groups: Vec<String>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.groups(groups).receive(message).await?)
    }

    async fn points_to_all(&self, cx: &HubContext<Self>) -> Result<(), HubError> {
        let points = BTreeMap::from([((1, 2), "a".to_string()), ((3, 4), "b".to_string())]);
        Ok(cx.clients.all().points(points).await?)
    }
}

fn server(options: HubOptions) -> HubServer {
    HubServer::builder()
        .options(options)
        .hub("/broadcast", Broadcast)
        .build()
}

/// Every connection that can take a message gets it, whichever connections before it could
/// not: the fan-out skips a target whose protocol cannot encode the message.
#[tokio::test]
async fn a_message_one_protocol_cannot_encode_reaches_every_connection_of_the_others() {
    let server = TestServer::start(server(HubOptions::default())).await;
    let mut json_clients = Vec::new();
    let mut msgpack_clients = Vec::new();
    // Interleaved, so that connections of both protocols come early and late in the fan-out.
    for _ in 0..6 {
        json_clients.push(server.connect("/broadcast").await);
        msgpack_clients.push(MsgpackClient::connect(server.addr, "/broadcast").await);
    }
    let completion = msgpack_clients[0].call("PointsToAll", Vec::new()).await;
    // The caller learns that some targets could not be sent the message.
    assert!(completion.as_array().is_some_and(|c| c.len() == 5), "{completion}");
    for (i, client) in msgpack_clients.iter_mut().enumerate() {
        let message = if i == 0 {
            // The caller got it before its Completion (already read past): check the others.
            continue;
        } else {
            client.recv().await
        };
        assert_eq!(message_type(&message), 1, "{message}");
        assert_eq!(message[3].as_str(), Some("Points"), "{message}");
        let points = message[4][0].as_map().expect("a map of points");
        assert_eq!(points.len(), 2, "{message}");
    }
    for client in &mut json_clients {
        // Nothing reached a JSON client, and it is still served.
        assert_eq!(client.call_ok("Echo", json!(["still here"])).await, "still here");
    }
}

/// The caller's own copy comes before its Completion.
#[tokio::test]
async fn the_caller_of_a_partly_failed_broadcast_gets_its_copy_first() {
    let server = TestServer::start(server(HubOptions::default())).await;
    let _json = server.connect("/broadcast").await;
    let mut caller = MsgpackClient::connect(server.addr, "/broadcast").await;
    let _json_too = server.connect("/broadcast").await;
    caller
        .send_binary(msgpack_client::frame(&rmpv::Value::Array(vec![
            1.into(),
            rmpv::Value::Map(Vec::new()),
            "1".into(),
            "PointsToAll".into(),
            rmpv::Value::Array(Vec::new()),
            rmpv::Value::Array(Vec::new()),
        ])))
        .await;
    let first = caller.recv().await;
    assert_eq!(first[3].as_str(), Some("Points"), "{first}");
    let completion = caller.recv().await;
    assert_eq!(message_type(&completion), 3, "{completion}");
}

async fn error_of(client: &mut Client, target: &str, arguments: serde_json::Value) -> String {
    client.call_err(target, arguments).await
}

/// A join, a leave or a send naming a group longer than `max_group_name_length` fails with an
/// error saying so, and changes nothing.
#[tokio::test]
async fn group_names_longer_than_the_limit_are_refused() {
    let server = TestServer::start(server(HubOptions {
        detailed_errors: true,
        max_groups_per_connection: 1,
        ..Default::default()
    }))
    .await;
    let mut member = server.connect("/broadcast").await;
    let mut other = server.connect("/broadcast").await;
    let longest = "g".repeat(1024);
    let too_long = "g".repeat(1025);
    for (target, arguments) in [
        ("Join", json!([too_long])),
        ("Leave", json!([too_long])),
        ("ToGroup", json!([too_long, "hello"])),
        ("ToGroups", json!([["ok", too_long], "hello"])),
    ] {
        let error = error_of(&mut member, target, arguments).await;
        assert!(
            error.contains("group name") && error.contains("1024"),
            "{target}: {error}"
        );
    }
    // The refused join took no membership: the one group allowed is still free.
    member.call_ok("Join", json!([longest])).await;
    other.call_ok("ToGroup", json!([longest, "hello"])).await;
    assert_eq!(
        member.recv().await,
        json!({"type": 1, "target": "Receive", "arguments": ["hello"]})
    );
    // A send that names one long group among good ones reaches nobody.
    other.call_err("ToGroups", json!([[longest, too_long], "lost"])).await;
    assert_eq!(member.call_ok("Echo", json!(["barrier"])).await, "barrier");
    member.call_ok("Leave", json!([longest])).await;
}

/// The limit is an option; handles outside hub methods are held to it too.
#[tokio::test]
async fn the_group_name_limit_is_configurable() {
    let server = TestServer::start(server(HubOptions {
        max_group_name_length: 8,
        ..Default::default()
    }))
    .await;
    let mut client = server.connect("/broadcast").await;
    client.call_ok("Join", json!(["12345678"])).await;
    client.call_err("Join", json!(["123456789"])).await;
    let handle = server.server.handle::<Broadcast>().expect("Broadcast is mapped");
    let id = client.connection_id.clone().unwrap();
    assert!(handle.groups.add(&id, "123456789").await.is_err());
    assert!(handle.clients.group("123456789").receive("x".into()).await.is_err());
    handle.clients.group("12345678").receive("in".into()).await.unwrap();
    assert_eq!(
        client.recv().await,
        json!({"type": 1, "target": "Receive", "arguments": ["in"]})
    );
}

/// A `redis-server` on a free port, stopped when dropped (the binary comes from
/// `REDIS_SERVER` or `PATH`, as in `scaleout.rs`). The tests across servers need the `redis`
/// feature.
#[cfg(feature = "redis")]
struct Redis {
    child: std::process::Child,
    url: String,
}

#[cfg(feature = "redis")]
impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "redis")]
async fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let child = std::process::Command::new(&binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary} (install redis-server; scripts/test-all does): {e}"));
    common::eventually("redis-server accepts connections", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    Redis {
        child,
        url: format!("redis://127.0.0.1:{port}"),
    }
}

#[cfg(feature = "redis")]
async fn scaled_server(url: &str) -> TestServer {
    let backplane = common::within("connect to Redis", hub_runtime::backplane::RedisBackplane::connect(url))
        .await
        .expect("redis backplane");
    TestServer::start(
        HubServer::builder()
            .backplane(backplane)
            .hub("/broadcast", Broadcast)
            .build(),
    )
    .await
}

/// Across servers too: the protocols that can encode the message are published, and another
/// server's connections of those protocols get it.
#[cfg(feature = "redis")]
#[tokio::test]
async fn other_servers_get_a_message_one_protocol_cannot_encode() {
    let redis = start_redis().await;
    let a = scaled_server(&redis.url).await;
    let b = scaled_server(&redis.url).await;
    let mut caller = a.connect("/broadcast").await;
    let mut on_b = MsgpackClient::connect(b.addr, "/broadcast").await;
    let mut json_on_b = b.connect("/broadcast").await;
    let error = caller.call_err("PointsToAll", json!([])).await;
    assert!(error.contains("PointsToAll"), "{error}");
    let message = on_b.recv().await;
    assert_eq!(message[3].as_str(), Some("Points"), "{message}");
    assert_eq!(json_on_b.call_ok("Echo", json!(["still here"])).await, "still here");
}
