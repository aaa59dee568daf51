//! Durable groups (`cx.history`) through real servers and JSON clients: recovery from a
//! position, overflow and expiry, live messages merged during recovery, epochs; on the
//! in-memory store, and (feature `redis`) on a private `redis-server` shared by several servers,
//! one of which restarts (`history/redis.rs`), and the same (feature `postgres`) on a private
//! PostgreSQL cluster (`history/postgres.rs`) and (feature `nats`) on a private nats-server
//! with JetStream (`history/nats.rs`).

mod common;

#[path = "history/cases.rs"]
mod cases;
#[cfg(feature = "nats")]
#[path = "history/nats.rs"]
mod nats_cases;
#[cfg(feature = "postgres")]
#[path = "history/postgres.rs"]
mod postgres_cases;
#[cfg(feature = "redis")]
#[path = "history/redis.rs"]
mod redis_cases;
#[path = "history/support.rs"]
mod support;

use std::time::Duration;

use hub_runtime::history::{InMemoryHistory, Position};
use support::{items, publish, publish_range, serve, Seen, Subscription};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_missed_messages_then_live() {
    cases::missed_messages_then_live(InMemoryHistory::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_overflow_is_not_recovered() {
    cases::overflow_is_not_recovered(InMemoryHistory::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_expired_messages_are_not_recovered() {
    cases::expired_messages_are_not_recovered(InMemoryHistory::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_live_messages_during_recovery_are_merged() {
    cases::live_messages_during_recovery_are_merged(InMemoryHistory::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_an_epoch_change_while_streaming_sends_a_header() {
    cases::an_epoch_change_while_streaming_sends_a_header(InMemoryHistory::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_last_and_groups_without_history() {
    cases::last_and_groups_without_history(InMemoryHistory::new()).await;
}

/// A server that restarts with the in-memory store loses the history: the client's epoch is
/// unknown, so it is told "not recovered" and gets nothing stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_restarted_server_starts_a_new_epoch() {
    let first = serve(InMemoryHistory::new(), 100, Duration::from_secs(60)).await;
    let mut publisher = first.connect("/feed").await;
    let last = publish_range(&mut publisher, "durable-news", 1, 3).await;
    drop(publisher);
    drop(first);

    let second = serve(InMemoryHistory::new(), 100, Duration::from_secs(60)).await;
    let mut publisher = second.connect("/feed").await;
    let mut resumed = Subscription::open(second.connect("/feed").await, "durable-news", Some(&last)).await;
    let Seen::Header { recovered, position } = resumed.next().await else {
        panic!("a header first")
    };
    assert!(!recovered, "the history was lost with the server");
    assert_ne!(position.epoch, last.epoch);
    assert_eq!(position.offset, 0);
    let fresh = publish(&mut publisher, "durable-news", "m1").await;
    assert_eq!(fresh, Position::new(position.epoch.clone(), 1));
    assert_eq!(resumed.next().await, items(1, 1)[0]);
}

/// `HubHandle::history` publishes from outside hub methods (a background job) with the
/// endpoint's rules; subscribers get it like any other message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_handle_publishes_from_outside_hub_methods() {
    let server = serve(InMemoryHistory::new(), 100, Duration::from_secs(60)).await;
    let feed = server.server.handle::<support::Feed>().expect("Feed is mapped");
    let mut stream = Subscription::open(server.connect("/feed").await, "durable-news", None).await;
    let Seen::Header { position: start, .. } = stream.next().await else {
        panic!("a header first")
    };
    let position = feed.history.publish("durable-news", "m1").await.expect("published");
    assert_eq!(position, Position::new(&start.epoch, 1));
    assert_eq!(stream.next().await, items(1, 1)[0]);
    let recent = feed
        .history
        .last::<String>("durable-news", 5)
        .await
        .expect("the last messages");
    assert_eq!(recent.position, position);
    assert_eq!(recent.items.len(), 1);
    assert!(
        feed.history.publish("news", "m").await.is_err(),
        "no rule covers `news`"
    );
}
