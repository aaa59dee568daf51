//! Several servers through a real `redis-server` (started by the test on a free port; the
//! binary comes from `REDIS_SERVER` or `PATH` — `scripts/test-all` installs it).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{within, TestServer};
use hub_runtime::backplane::{RedisBackplane, RedisOptions};
use hub_runtime::prelude::*;
use hub_runtime::HubHandle;
use hub_runtime::{AuthError, EndpointOptions, GroupError, HubOptions, Identity, RequestContext};
use serde_json::json;

struct Redis {
    child: Child,
    port: u16,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_redis(port: u16) -> Child {
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    Command::new(&binary)
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
        .unwrap_or_else(|e| panic!("start {binary} (install redis-server; scripts/test-all does): {e}"))
}

async fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = spawn_redis(port);
    let url = format!("redis://127.0.0.1:{port}");
    common::eventually("redis-server accepts connections", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    Redis { child, port, url }
}

impl Redis {
    /// Stops redis-server (every connection to it drops).
    async fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        common::eventually("redis-server stopped", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        })
        .await;
    }

    /// Starts redis-server again on the same port (empty: no subscriptions survive).
    async fn restart(&mut self) {
        self.child = spawn_redis(self.port);
        let port = self.port;
        common::eventually("redis-server accepts connections again", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
    }

    /// Freezes redis-server (SIGSTOP): connections stay open, nothing is answered.
    fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen redis-server run again.
    fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }

    /// The ids of the connections in subscriber mode.
    async fn pubsub_clients(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut connection = within("connect to redis", client.get_multiplexed_async_connection())
            .await
            .unwrap();
        let list: String = within(
            "CLIENT LIST",
            redis::cmd("CLIENT")
                .arg("LIST")
                .arg("TYPE")
                .arg("pubsub")
                .query_async(&mut connection),
        )
        .await
        .unwrap();
        list.lines()
            .filter_map(|line| line.split(' ').next()?.strip_prefix("id=").map(str::to_owned))
            .collect()
    }

    /// How many connections listen on `channel`.
    async fn subscribers(&self, channel: &str) -> i64 {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut connection = within("connect to redis", client.get_multiplexed_async_connection())
            .await
            .unwrap();
        let reply: (String, i64) = within(
            "PUBSUB NUMSUB",
            redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(channel)
                .query_async(&mut connection),
        )
        .await
        .unwrap();
        reply.1
    }

    /// Waits until a server has given up a connection's channel: it left, and its server is
    /// done with everything it had.
    async fn wait_until_gone(&self, connection_id: &str) {
        let channel = format!("scaleout::Fleet:connection:{connection_id}");
        within("the connection's channel is given up", async {
            while self.subscribers(&channel).await > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        // Its user's channel goes right after.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Runs one command on a connection of its own.
    async fn command(&self, args: &[&str]) {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut connection = within("connect to redis", client.get_multiplexed_async_connection())
            .await
            .unwrap();
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        let () = within("a redis command", command.query_async(&mut connection))
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
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

fn test_options() -> RedisOptions {
    RedisOptions {
        group_ack_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

async fn backplane(url: &str) -> RedisBackplane {
    within("connect to Redis", RedisBackplane::connect_with(url, test_options()))
        .await
        .expect("redis backplane")
}

async fn fleet_server(url: &str) -> TestServer {
    fleet_server_with(url, HubOptions::default()).await.0
}

/// A server of `Fleet` (users from `?user=`), and its backplane.
async fn fleet_server_with(url: &str, options: HubOptions) -> (TestServer, RedisBackplane) {
    let by_query =
        |req: &RequestContext| -> Result<Option<Identity>, AuthError> { Ok(req.query("user").map(Identity::user)) };
    let backplane = backplane(url).await;
    let server = HubServer::builder()
        .options(options)
        .backplane(backplane.clone())
        .hub_with("/fleet", Fleet, EndpointOptions::new().authenticator(by_query))
        .build();
    (TestServer::start(server).await, backplane)
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
    // With Redis, A cannot know which ids live elsewhere: sending to one that no server has
    // is published, not refused; and B's connection is local to B only.
    a_handle.clients.client("nobody").receive("lost".into()).await.unwrap();
    assert!(!a_handle.is_local(&b_id));
    assert!(b.server.handle::<Fleet>().unwrap().is_local(&b_id));
    assert_eq!(a_handle.abort(&b_id), hub_runtime::hub::Abort::NotLocal);

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

/// Expects `client` to get `text` as its next `Receive` message.
async fn expect_received(client: &mut common::Client, text: &str) {
    assert_eq!(within("a message from the other server", received(client)).await, text);
}

/// Puts a connection in many groups, so that its server takes a while to give them up when
/// it leaves (one UNSUBSCRIBE after another).
async fn join_many(handle: &HubHandle<Fleet>, id: &str, prefix: &str, count: usize) {
    for i in 0..count {
        handle.groups.add(id, &format!("{prefix}.{i}")).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reconnecting_while_its_last_connection_leaves_stays_reachable() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let (b, _) = fleet_server_with(&redis.url, HubOptions::default()).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let b_handle = b.server.handle::<Fleet>().unwrap();
    for round in 0..8 {
        let (user, query) = (format!("u{round}"), format!("user=u{round}"));
        let old = b.connect_with_query("/fleet", &query).await;
        let old_id = old.connection_id.clone().unwrap();
        join_many(&b_handle, &old_id, &user, 300).await;
        // The old connection leaves (its user's last here) while a new one of the user comes.
        let leaving = tokio::spawn(old.close());
        tokio::time::sleep(Duration::from_millis(round * 2)).await;
        let mut new = b.connect_with_query("/fleet", &query).await;
        within("the old connection closes", leaving).await.unwrap();
        redis.wait_until_gone(&old_id).await;
        a_handle.clients.user(user.clone()).receive(user.clone()).await.unwrap();
        expect_received(&mut new, &user).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_joined_while_its_last_member_leaves_stays_subscribed() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let (b, _) = fleet_server_with(&redis.url, HubOptions::default()).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let b_handle = b.server.handle::<Fleet>().unwrap();
    let mut stays = b.connect("/fleet").await;
    let stays_id = stays.connection_id.clone().unwrap();
    for round in 0..8 {
        // A connection in many groups leaves, and the server gives them up one by one, while
        // the connection that stays joins each of them.
        let prefix = format!("g{round}");
        let leaving = b.connect("/fleet").await;
        let leaving_id = leaving.connection_id.clone().unwrap();
        join_many(&b_handle, &leaving_id, &prefix, 150).await;
        let closing = tokio::spawn(leaving.close());
        tokio::time::sleep(Duration::from_millis(round)).await;
        for i in 0..150 {
            b_handle.groups.add(&stays_id, &format!("{prefix}.{i}")).await.unwrap();
        }
        within("the leaving connection closes", closing).await.unwrap();
        redis.wait_until_gone(&leaving_id).await;
        let groups: Vec<String> = (0..150).map(|i| format!("{prefix}.{i}")).collect();
        for group in &groups {
            a_handle
                .clients
                .group(group.clone())
                .receive(group.clone())
                .await
                .unwrap();
        }
        for group in &groups {
            expect_received(&mut stays, group).await;
        }
        for group in &groups {
            b_handle.groups.remove(&stays_id, group).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_join_leave_cycles_end_with_the_members_subscribed() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let (b, _) = fleet_server_with(&redis.url, HubOptions::default()).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let b_handle = b.server.handle::<Fleet>().unwrap();
    let mut members = Vec::new();
    for _ in 0..4 {
        members.push(b.connect("/fleet").await);
    }
    let mut cycles = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let (a_handle, b_handle) = (a_handle.clone(), b_handle.clone());
        let id = member.connection_id.clone().unwrap();
        cycles.push(tokio::spawn(async move {
            for cycle in 0..40 {
                // Half of the changes come from the other server (group commands).
                let (join, leave) = match (cycle + i) % 4 {
                    0 => (&a_handle, &b_handle),
                    1 => (&b_handle, &a_handle),
                    _ => (&b_handle, &b_handle),
                };
                join.groups.add(&id, "churn").await.unwrap();
                if (cycle + i) % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                leave.groups.remove(&id, "churn").await.unwrap();
            }
            b_handle.groups.add(&id, "churn").await.unwrap();
        }));
    }
    for cycle in cycles {
        within("the join/leave cycles", cycle).await.unwrap();
    }
    a_handle
        .clients
        .group("churn")
        .receive("after the churn".into())
        .await
        .unwrap();
    for member in &mut members {
        expect_received(member, "after the churn").await;
    }
}

#[tokio::test]
async fn a_refused_subscribe_is_retried_until_it_succeeds() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let (b, b_backplane) = fleet_server_with(&redis.url, HubOptions::default()).await;
    let b_handle = b.server.handle::<Fleet>().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let mut on_b = b.connect("/fleet").await;
    let id = on_b.connection_id.clone().unwrap();
    // Redis refuses subscriptions to group channels (ACL): every channel already in use
    // stays allowed, so no connection is dropped.
    redis
        .command(&[
            "ACL",
            "SETUSER",
            "default",
            "resetchannels",
            "&*:all",
            "&*:internal:*",
            "&*:connection:*",
        ])
        .await;
    within("join while subscriptions are refused", b_handle.groups.add(&id, "late"))
        .await
        .unwrap();
    common::eventually("the refused SUBSCRIBE is counted", || {
        b_backplane.failed_subscriptions() > 0
    })
    .await;
    redis.command(&["ACL", "SETUSER", "default", "allchannels"]).await;
    // The retry subscribes: a message sent from A reaches the member.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        a_handle.clients.group("late").receive("late".into()).await.unwrap();
        if let Ok(text) = tokio::time::timeout(Duration::from_millis(500), received(&mut on_b)).await {
            assert_eq!(text, "late");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the group was never subscribed");
    }
}

#[tokio::test]
async fn a_group_joined_while_redis_is_down_receives_after_the_restart() {
    let mut redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let (b, _) = fleet_server_with(&redis.url, HubOptions::default()).await;
    let b_handle = b.server.handle::<Fleet>().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let mut on_b = b.connect("/fleet").await;
    let id = on_b.connection_id.clone().unwrap();
    b_handle.groups.add(&id, "before").await.unwrap();
    redis.stop().await;
    within("join while Redis is down", b_handle.groups.add(&id, "meanwhile"))
        .await
        .unwrap();
    redis.restart().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for group in ["meanwhile", "before"] {
        loop {
            // Publishing fails until A's publisher reconnects; the message is then sent again.
            let _ = a_handle.clients.group(group).receive(group.into()).await;
            if let Ok(text) = tokio::time::timeout(Duration::from_millis(500), received(&mut on_b)).await {
                assert_eq!(text, group);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "group '{group}' was never subscribed again"
            );
        }
    }
}

#[tokio::test]
async fn a_frozen_redis_does_not_hold_up_connects() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let (b, _) = fleet_server_with(&redis.url, HubOptions::default()).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let mut first = b.connect("/fleet").await;
    redis.freeze();
    // Subscribing for these waits on Redis, but only as long as the response timeout.
    let mut second = within("connect while Redis is frozen", b.connect("/fleet")).await;
    assert_eq!(
        within(
            "a call while Redis is frozen",
            second.call_ok("Echo", json!(["still here"]))
        )
        .await,
        "still here"
    );
    redis.thaw();
    // Once Redis answers again, messages from A reach both (the second's channel is
    // subscribed by the retry or the reconnect).
    let second_id = second.connection_id.clone().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for (client, id) in [(&mut first, None), (&mut second, Some(second_id))] {
        loop {
            let _ = match &id {
                Some(id) => a_handle.clients.client(id.clone()).receive("hello".into()).await,
                None => a_handle.clients.all().receive("hello".into()).await,
            };
            if let Ok(text) = tokio::time::timeout(Duration::from_millis(500), received(client)).await {
                assert_eq!(text, "hello");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no message after Redis thawed");
        }
    }
}

#[tokio::test]
async fn a_client_result_that_times_out_leaves_nothing_pending_on_either_server() {
    let redis = start_redis().await;
    let options = HubOptions {
        client_result_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let (a, a_backplane) = fleet_server_with(&redis.url, options.clone()).await;
    let (b, b_backplane) = fleet_server_with(&redis.url, options).await;
    let mut on_b = b.connect("/fleet").await;
    let b_id = on_b.connection_id.clone().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let asking = {
        let (a_handle, b_id) = (a_handle.clone(), b_id.clone());
        tokio::spawn(async move { a_handle.clients.client(b_id).invoke::<_, i64>("Result", &(1,)).await })
    };
    let invocation = on_b.recv_skip_pings().await;
    assert_eq!(invocation["target"], "Result");
    // The client never answers.
    assert_eq!(
        within("the timeout", asking).await.unwrap(),
        Err(hub_runtime::ClientResultError::Timeout)
    );
    common::eventually("nothing pending on either server", || {
        a_backplane.pending_client_results() == 0 && b_backplane.pending_client_results() == 0
    })
    .await;
    // A late answer is ignored, and the next call works.
    let late = invocation["invocationId"].as_str().unwrap().to_string();
    on_b.send(&json!({"type": 3, "invocationId": late, "result": 1})).await;
    let asking = tokio::spawn(async move { a_handle.clients.client(b_id).invoke::<_, i64>("Result", &(2,)).await });
    let invocation = on_b.recv_skip_pings().await;
    let id = invocation["invocationId"].as_str().unwrap().to_string();
    on_b.send(&json!({"type": 3, "invocationId": id, "result": 2})).await;
    assert_eq!(within("the second result", asking).await.unwrap(), Ok(2));
    common::eventually("nothing pending after an answer", || {
        a_backplane.pending_client_results() == 0 && b_backplane.pending_client_results() == 0
    })
    .await;
}

#[tokio::test]
async fn a_remote_group_add_past_the_limit_fails() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let options = HubOptions {
        max_groups_per_connection: 1,
        ..Default::default()
    };
    let (b, _) = fleet_server_with(&redis.url, options).await;
    let on_b = b.connect("/fleet").await;
    let b_id = on_b.connection_id.clone().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    within("the first remote add", a_handle.groups.add(&b_id, "one"))
        .await
        .unwrap();
    assert_eq!(
        within("a remote add past the limit", a_handle.groups.add(&b_id, "two")).await,
        Err(GroupError::LimitReached(1))
    );
}

#[tokio::test]
async fn a_subscription_connection_that_stops_answering_is_replaced() {
    let redis = start_redis().await;
    let a = fleet_server(&redis.url).await;
    let options = RedisOptions {
        keepalive: Duration::from_millis(300),
        ..test_options()
    };
    let b_backplane = within("connect to Redis", RedisBackplane::connect_with(&redis.url, options))
        .await
        .unwrap();
    let b = TestServer::start(HubServer::builder().backplane(b_backplane).hub("/fleet", Fleet).build()).await;
    let mut on_b = b.connect("/fleet").await;
    let before = redis.pubsub_clients().await;
    assert_eq!(before.len(), 2, "one subscription connection per server");
    // Frozen, Redis answers no PING: B gives its connection up and connects again once
    // Redis runs (A, PINGing every 15 s, keeps its own).
    redis.freeze();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.thaw();
    within("B connects again", async {
        loop {
            let now = redis.pubsub_clients().await;
            if now.len() == 2 && now.iter().filter(|id| before.contains(id)).count() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let id = on_b.connection_id.clone().unwrap();
    a_handle.clients.client(id).receive("after".into()).await.unwrap();
    expect_received(&mut on_b, "after").await;
}

/// A TCP proxy to Redis that holds back Redis's first answer after a connection's first
/// SUBSCRIBE for `delay`; `closed` counts those subscribing connections that their client
/// closed.
struct SlowSubscribeProxy {
    port: u16,
    closed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn slow_subscribe_proxy(redis_port: u16, delay: Duration) -> SlowSubscribeProxy {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let closed = Arc::new(AtomicUsize::new(0));
    let closed_count = closed.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await else {
                continue;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            let subscribed = Arc::new(AtomicBool::new(false));
            let (seen, closed) = (subscribed.clone(), closed_count.clone());
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                loop {
                    let n = client_read.read(&mut buffer).await.unwrap_or(0);
                    if n == 0 {
                        if seen.load(Ordering::SeqCst) {
                            closed.fetch_add(1, Ordering::SeqCst);
                        }
                        let _ = upstream_write.shutdown().await;
                        return;
                    }
                    if buffer[..n].windows(9).any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE")) {
                        seen.store(true, Ordering::SeqCst);
                    }
                    if upstream_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                let mut held = false;
                loop {
                    let n = upstream_read.read(&mut buffer).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    if !held && subscribed.load(Ordering::SeqCst) {
                        held = true;
                        tokio::time::sleep(delay).await;
                    }
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    SlowSubscribeProxy { port, closed }
}

/// `connect_with` gives up while the subscription connection is still subscribing; when that
/// connection then comes up, nobody holds the backplane: it stops and closes its connection
/// instead of listening forever.
#[tokio::test]
async fn a_subscriber_that_comes_up_after_connect_gave_up_stops() {
    let redis = start_redis().await;
    // connect_with waits connect_timeout + response_timeout (1.5 s); the SUBSCRIBE's answer
    // comes after 2.5 s (or the subscriber stops waiting for it after 2 s).
    let proxy = slow_subscribe_proxy(redis.port, Duration::from_millis(2500)).await;
    let options = RedisOptions {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_secs(1),
        ..test_options()
    };
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let attempt = within("connect_with gives up", RedisBackplane::connect_with(&url, options)).await;
    assert!(attempt.is_err(), "the subscription was not ready in time");
    let closed = async {
        while proxy.closed.load(std::sync::atomic::Ordering::SeqCst) == 0 || !redis.pubsub_clients().await.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(20), closed).await;
    assert!(closed.is_ok(), "the orphaned subscription connection is still open");
}

/// `Duration::MAX` for every Redis timeout means "never", not an overflow.
#[tokio::test]
async fn redis_timeouts_of_duration_max_mean_never() {
    let redis = start_redis().await;
    let forever = Duration::MAX;
    let options = RedisOptions {
        group_ack_timeout: forever,
        connect_timeout: forever,
        response_timeout: forever,
        keepalive: forever,
        ..Default::default()
    };
    let backplane = within("connect to Redis", RedisBackplane::connect_with(&redis.url, options))
        .await
        .expect("redis backplane");
    let a = fleet_server(&redis.url).await;
    let b = TestServer::start(HubServer::builder().backplane(backplane).hub("/fleet", Fleet).build()).await;
    let mut on_b = b.connect("/fleet").await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let id = on_b.connection_id.clone().unwrap();
    a_handle.clients.client(id).receive("across".into()).await.unwrap();
    expect_received(&mut on_b, "across").await;
}
