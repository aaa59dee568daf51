//! Several servers through a real `redis-server` (started by the test on a free port; the
//! binary comes from `REDIS_SERVER` or `PATH` — `scripts/test-all` installs it).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{within, TestServer};
use hub_runtime::backplane::{RedisBackplane, RedisOptions};
use hub_runtime::prelude::*;
use hub_runtime::GroupError;
use serde_json::json;

struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let child = Command::new(&binary)
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
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary} (install redis-server; scripts/test-all does): {e}"));
    let url = format!("redis://127.0.0.1:{port}");
    common::eventually("redis-server accepts connections", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    Redis { child, url }
}

#[hub_client]
trait FleetClient {
    fn receive(&self, message: String);
}

struct Fleet;

#[hub(client = FleetClient)]
impl Fleet {
    fn echo(&self, message: String) -> String {
        message
    }
}

async fn backplane(url: &str) -> RedisBackplane {
    let options = RedisOptions {
        group_ack_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    within("connect to Redis", RedisBackplane::connect_with(url, options))
        .await
        .expect("redis backplane")
}

async fn fleet_server(url: &str) -> TestServer {
    let server = HubServer::builder()
        .backplane(backplane(url).await)
        .hub("/fleet", Fleet)
        .build();
    TestServer::start(server).await
}

/// Waits for the next `Receive` message.
async fn received(client: &mut common::Client) -> String {
    loop {
        let message = client.recv_skip_pings().await;
        if message["type"] == 1 && message["target"] == "Receive" {
            return message["arguments"][0].as_str().unwrap().to_string();
        }
    }
}

#[tokio::test]
async fn groups_change_across_servers_and_a_worker_publishes_to_all() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let b = fleet_server(&redis.url).await;
    let mut on_a = a.connect("/fleet").await;
    let mut on_b = b.connect("/fleet").await;
    let b_id = on_b.connection_id.clone().unwrap();

    // Server A adds a connection that lives on server B; once acknowledged, A's group
    // messages reach it.
    let a_handle = a.server.handle::<Fleet>().unwrap();
    within("remote add", a_handle.groups.add(&b_id, "ops"))
        .await
        .expect("acknowledged by server B");
    a_handle.clients.group("ops").receive("to ops".into()).await.unwrap();
    assert_eq!(received(&mut on_b).await, "to ops");

    // A connection no server owns: a clear error after the timeout.
    let missing = within(
        "remote add of a missing connection",
        a_handle.groups.add("nobody", "ops"),
    )
    .await;
    assert_eq!(missing, Err(GroupError::UnknownConnection("nobody".into())));

    // Removal across servers.
    within("remote remove", a_handle.groups.remove(&b_id, "ops"))
        .await
        .unwrap();
    a_handle.clients.group("ops").receive("ops again".into()).await.unwrap();
    a_handle
        .clients
        .client(b_id.clone())
        .receive("direct".into())
        .await
        .unwrap();
    assert_eq!(
        received(&mut on_b).await,
        "direct",
        "the removed member got nothing before the direct message"
    );

    // A worker that serves nothing sends to every server's clients.
    let worker = HubServer::builder()
        .backplane(backplane(&redis.url).await)
        .publish_to::<Fleet>()
        .build();
    let fleet = worker.handle::<Fleet>().expect("publish_to registers the hub");
    fleet.clients.all().receive("from the worker".into()).await.unwrap();
    assert_eq!(received(&mut on_a).await, "from the worker");
    assert_eq!(received(&mut on_b).await, "from the worker");
    assert_eq!(on_a.call_ok("Echo", json!(["ok"])).await, "ok");
}

#[tokio::test]
async fn a_client_result_comes_back_from_another_server() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let b = fleet_server(&redis.url).await;
    let mut on_b = b.connect("/fleet").await;
    let b_id = on_b.connection_id.clone().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let asking = tokio::spawn(async move { a_handle.clients.client(b_id).invoke::<_, i64>("Result", &(1,)).await });
    let invocation = on_b.recv_skip_pings().await;
    assert_eq!(invocation["target"], "Result");
    let id = invocation["invocationId"]
        .as_str()
        .expect("a client result has an id")
        .to_string();
    on_b.send(&json!({"type": 3, "invocationId": id, "result": 42})).await;
    assert_eq!(within("the result", asking).await.unwrap(), Ok(42));
}
