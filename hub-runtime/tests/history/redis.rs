//! The Redis store on a private `redis-server`: every shared case, then what only a shared
//! store does: a history that outlives a server, several servers numbering one group, and a
//! Redis that restarts empty (a new epoch) under a streaming client.

use std::time::Duration;

use hub_runtime::history::{Position, RedisHistory, RedisHistoryOptions};
use serde_json::json;

use crate::cases;
use crate::common::brokers::Redis;
use crate::support::{header, items, publish, publish_range, serve, Seen, Subscription};

const GROUP: &str = "durable-news";
const MINUTE: Duration = Duration::from_secs(60);

async fn store(redis: &Redis) -> RedisHistory {
    RedisHistory::connect(&redis.url)
        .await
        .expect("connect the Redis history")
}

macro_rules! shared_case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(redis) = Redis::start().await else { return };
            cases::$name(store(&redis).await).await;
        }
    };
}

shared_case!(missed_messages_then_live);
shared_case!(overflow_is_not_recovered);
shared_case!(expired_messages_are_not_recovered);
shared_case!(live_messages_during_recovery_are_merged);
shared_case!(an_epoch_change_while_streaming_sends_a_header);
shared_case!(last_and_groups_without_history);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_a_restarted_server() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    cases::a_client_resumes_on_a_restarted_server(|| store(&redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_number_one_group_without_gaps() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    cases::two_servers_number_one_group_without_gaps(|| store(&redis)).await;
}

/// Redis restarts empty under a streaming client: the store's subscription comes back, the
/// client is told `recovered: false` with the new epoch, and gets the new epoch's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_starts_a_new_epoch_under_a_stream() {
    let Some(mut redis) = Redis::start().await else { return };
    let server = serve(store(&redis).await, 100, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let first = publish_range(&mut publisher, GROUP, 1, 2).await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert_eq!(stream.next().await, header(true, &first));
    redis.stop().await;
    redis.restart().await;
    // The command connection reconnects on use; the first publish after the restart may fail.
    let mut fresh = None;
    for _ in 0..50 {
        let reply = publisher.call("Publish", json!([GROUP, "m1"])).await;
        if let Some(result) = reply.get("result") {
            fresh = Some(serde_json::from_value::<Position>(result.clone()).expect("a position"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = fresh.expect("publishing works again after Redis restarted");
    assert_ne!(fresh.epoch, first.epoch, "Redis lost the history: a new epoch");
    assert_eq!(fresh.offset, 1);
    // The header may name offset 0 (and the message follows) or the current position.
    match stream.next().await {
        Seen::Header {
            recovered: false,
            position,
        } if position == Position::new(&fresh.epoch, 0) => {
            assert_eq!(stream.next().await, items(1, 1)[0]);
        }
        Seen::Header {
            recovered: false,
            position,
        } => assert_eq!(position.epoch, fresh.epoch),
        other => panic!("a header with recovered false, got {other:?}"),
    }
    publish(&mut publisher, GROUP, "m2").await;
    assert_eq!(stream.next().await, items(2, 2)[0]);
}

/// The channels of durable groups this Redis has subscribers on.
async fn history_channels(redis: &Redis) -> Vec<String> {
    let client = ::redis::Client::open(redis.url.as_str()).expect("a Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    ::redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("history:*")
        .query_async(&mut connection)
        .await
        .expect("PUBSUB CHANNELS")
}

/// The store listens on a group's channel while the group has subscribers on its server, and
/// stops when the last one leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_listens_only_while_a_group_has_subscribers() {
    let Some(redis) = Redis::start().await else { return };
    let server = serve(store(&redis).await, 100, MINUTE).await;
    assert_eq!(history_channels(&redis).await, Vec::<String>::new());
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
        stream.next().await;
        streams.push(stream);
    }
    let channels = history_channels(&redis).await;
    assert_eq!(channels.len(), 1, "{channels:?}");
    assert!(channels[0].ends_with("|durable-news"), "{channels:?}");
    let first = streams.remove(0);
    first.client.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(history_channels(&redis).await.len(), 1, "one subscriber is left");
    streams.remove(0).client.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !history_channels(&redis).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the channel is still subscribed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ids of Redis's pub/sub connections.
async fn pubsub_connections(redis: &Redis) -> Vec<String> {
    let client = ::redis::Client::open(redis.url.as_str()).expect("a Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let list: String = ::redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut connection)
        .await
        .expect("CLIENT LIST");
    list.lines()
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .map(str::to_string)
        .collect()
}

/// A subscription connection that stops answering PING (Redis frozen: the socket stays open)
/// is replaced once Redis answers again, and live messages flow on the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_connection_that_stops_answering_is_replaced() {
    let Some(redis) = Redis::start().await else { return };
    let options = RedisHistoryOptions {
        keepalive: Duration::from_millis(300),
        response_timeout: Duration::from_millis(500),
        ..RedisHistoryOptions::default()
    };
    let history = RedisHistory::connect_with(&redis.url, options)
        .await
        .expect("connect the Redis history");
    let server = serve(history, 100, MINUTE).await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    stream.next().await;
    let before = pubsub_connections(&redis).await;
    assert_eq!(before.len(), 1, "{before:?}");
    redis.freeze();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.thaw();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = pubsub_connections(&redis).await;
        if now.len() == 1 && now != before {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still on {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut publisher = server.connect("/feed").await;
    publish_range(&mut publisher, GROUP, 1, 1).await;
    assert_eq!(stream.next().await, items(1, 1)[0]);
}
