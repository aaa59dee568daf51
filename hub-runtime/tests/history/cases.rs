//! History cases every store passes: each takes a fresh store and serves `Feed` on it; the
//! cases of shared stores take a factory of stores (one per server) connected to one broker.

use std::future::Future;
use std::time::Duration;

use hub_runtime::history::{HistoryStore, Position};
use serde_json::json;

use crate::support::{header, items, publish, publish_range, serve, Seen, Subscription};

const GROUP: &str = "durable-news";
const MINUTE: Duration = Duration::from_secs(60);

/// Position null: live only. A position in the epoch: exactly the missed messages, then live.
pub async fn missed_messages_then_live(store: impl HistoryStore) {
    let server = serve(store, 100, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let third = publish_range(&mut publisher, GROUP, 1, 3).await;

    let mut live = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert_eq!(live.next().await, header(true, &third));
    let mut resumed = Subscription::open(
        server.connect("/feed").await,
        GROUP,
        Some(&Position::new(third.epoch.clone(), 1)),
    )
    .await;
    assert_eq!(
        resumed.take(3).await,
        [vec![header(true, &third)], items(2, 3)].concat()
    );
    let mut current = Subscription::open(server.connect("/feed").await, GROUP, Some(&third)).await;
    assert_eq!(current.next().await, header(true, &third));

    publish_range(&mut publisher, GROUP, 4, 5).await;
    for subscription in [&mut live, &mut resumed, &mut current] {
        assert_eq!(subscription.take(2).await, items(4, 5));
    }
    live.quiet(Duration::from_millis(200)).await;
}

/// Past the maximum length: "not recovered", nothing stale, then live.
pub async fn overflow_is_not_recovered(store: impl HistoryStore) {
    let server = serve(store, 3, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let fifth = publish_range(&mut publisher, GROUP, 1, 5).await;
    let epoch = fifth.epoch.clone();

    let mut evicted = Subscription::open(server.connect("/feed").await, GROUP, Some(&Position::new(&epoch, 1))).await;
    assert_eq!(evicted.next().await, header(false, &fifth));
    evicted.quiet(Duration::from_millis(200)).await;

    let mut kept = Subscription::open(server.connect("/feed").await, GROUP, Some(&Position::new(&epoch, 2))).await;
    assert_eq!(kept.take(4).await, [vec![header(true, &fifth)], items(3, 5)].concat());

    for bad in [
        Position::new(&epoch, 6),
        Position::new(&epoch, -1),
        Position::new("no-such-epoch", 3),
    ] {
        let mut other = Subscription::open(server.connect("/feed").await, GROUP, Some(&bad)).await;
        assert_eq!(other.next().await, header(false, &fifth), "from {bad:?}");
    }

    publish_range(&mut publisher, GROUP, 6, 6).await;
    assert_eq!(evicted.next().await, items(6, 6)[0]);
    assert_eq!(kept.next().await, items(6, 6)[0]);
}

/// A message older than the TTL is gone: a position before it is not recovered, one after it
/// is. A group idle past the TTL loses its history and starts a new epoch.
pub async fn expired_messages_are_not_recovered(store: impl HistoryStore) {
    let ttl = Duration::from_secs(3);
    let server = serve(store, 100, ttl).await;
    let mut publisher = server.connect("/feed").await;
    let first = publish_range(&mut publisher, GROUP, 1, 1).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let second = publish_range(&mut publisher, GROUP, 2, 2).await;
    tokio::time::sleep(Duration::from_millis(1400)).await;
    // m1 is at least 3.4 s old (expired), m2 about 1.4 s (kept, with room for a slow machine).
    let before = Position::new(&first.epoch, 0);
    let mut expired = Subscription::open(server.connect("/feed").await, GROUP, Some(&before)).await;
    assert_eq!(expired.next().await, header(false, &second));
    let mut kept = Subscription::open(server.connect("/feed").await, GROUP, Some(&first)).await;
    assert_eq!(kept.take(2).await, [header(true, &second), items(2, 2)[0].clone()]);

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let mut lost = Subscription::open(server.connect("/feed").await, GROUP, Some(&second)).await;
    let Seen::Header { recovered, position } = lost.next().await else {
        panic!("a header first")
    };
    assert!(!recovered, "the idle history expired");
    assert_ne!(position.epoch, second.epoch, "a new epoch");
    assert_eq!(position.offset, 0);
}

/// Messages published while a client recovers reach it once each, in order, without a gap:
/// a publisher runs flat out while the client subscribes from an old position.
pub async fn live_messages_during_recovery_are_merged(store: impl HistoryStore) {
    const BEFORE: i64 = 50;
    const DURING: i64 = 400;
    let server = serve(store, 1000, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let start = publish_range(&mut publisher, GROUP, 1, BEFORE).await;
    let mut subscribers = Vec::new();
    for _ in 0..4 {
        subscribers.push(server.connect("/feed").await);
    }
    // Invocations in flight without waiting for their completions: the server runs them while
    // the subscribers' recoveries read history.
    let flood = tokio::spawn(async move {
        for offset in BEFORE + 1..=BEFORE + DURING {
            publisher
                .send_invocation("Publish", json!([GROUP, format!("m{offset}")]))
                .await;
        }
        publisher
    });
    let mut streams = Vec::new();
    for (i, client) in subscribers.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
        let from = Position::new(&start.epoch, 10 * i as i64);
        streams.push(Subscription::open(client, GROUP, Some(&from)).await);
    }
    let mut publisher = flood.await.expect("the publisher");
    let last = publish(&mut publisher, GROUP, &format!("m{}", BEFORE + DURING + 1)).await;
    assert_eq!(last.offset, BEFORE + DURING + 1, "every publish got its own offset");
    for (i, stream) in streams.iter_mut().enumerate() {
        let Seen::Header { recovered, position } = stream.next().await else {
            panic!("a header first")
        };
        assert!(recovered);
        assert_eq!(position.epoch, start.epoch);
        let from = 10 * i as i64;
        let seen = stream.take((last.offset - from) as usize).await;
        assert_eq!(seen, items(from + 1, last.offset), "subscriber {i}");
        stream.quiet(Duration::from_millis(100)).await;
    }
}

/// A group whose history is lost while a client streams (idle past the TTL): a header with
/// `recovered: false` and the new epoch, then its messages.
pub async fn an_epoch_change_while_streaming_sends_a_header(store: impl HistoryStore) {
    let ttl = Duration::from_millis(1500);
    let server = serve(store, 100, ttl).await;
    let mut publisher = server.connect("/feed").await;
    let first = publish_range(&mut publisher, GROUP, 1, 1).await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert_eq!(stream.next().await, header(true, &first));
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let fresh = publish(&mut publisher, GROUP, "m1").await;
    assert_ne!(fresh.epoch, first.epoch);
    assert_eq!(fresh.offset, 1);
    assert_eq!(
        stream.take(2).await,
        [header(false, &Position::new(&fresh.epoch, 0)), items(1, 1)[0].clone()]
    );
    publish(&mut publisher, GROUP, "m2").await;
    assert_eq!(stream.next().await, items(2, 2)[0]);
}

/// `last(n)` reads the latest kept messages; a group no rule covers has no history.
pub async fn last_and_groups_without_history(store: impl HistoryStore) {
    let server = serve(store, 3, MINUTE).await;
    let mut client = server.connect("/feed").await;
    publish_range(&mut client, GROUP, 1, 5).await;
    let last = client.call_ok("Last", json!([GROUP, 2])).await;
    assert_eq!(
        last,
        json!([{"Offset": 4, "Message": "m4"}, {"Offset": 5, "Message": "m5"}])
    );
    let all = client.call_ok("Last", json!([GROUP, 10])).await;
    assert_eq!(all.as_array().map(Vec::len), Some(3), "only 3 are kept: {all}");

    let error = client.call_err("Publish", json!(["news", "m"])).await;
    assert!(error.contains("news"), "{error}");
    let error = client.call_err("Last", json!(["news", 1])).await;
    assert!(error.contains("news"), "{error}");
    client
        .send(&json!({"type": 4, "invocationId": "x", "target": "Subscribe", "arguments": ["news", null]}))
        .await;
    let completion = client.recv_skip_pings().await;
    assert_eq!(completion["type"], 3, "{completion}");
    assert!(completion["error"].is_string(), "{completion}");
}

/// A server stops between messages; another (its own store connections, as after a restart)
/// publishes more; the client resumes there and gets exactly the missed ones, then live ones.
// Shared stores only (their history outlives a server): unused without one of their features.
#[cfg_attr(
    not(any(feature = "redis", feature = "postgres", feature = "nats")),
    allow(dead_code)
)]
pub async fn a_client_resumes_on_a_restarted_server<S, F>(store: impl Fn() -> F)
where
    S: HistoryStore,
    F: Future<Output = S>,
{
    let first = serve(store().await, 100, MINUTE).await;
    let mut publisher = first.connect("/feed").await;
    publish_range(&mut publisher, GROUP, 1, 2).await;
    let mut stream = Subscription::open(first.connect("/feed").await, GROUP, None).await;
    let Seen::Header { position: start, .. } = stream.next().await else {
        panic!("a header first")
    };
    publish_range(&mut publisher, GROUP, 3, 3).await;
    assert_eq!(stream.next().await, items(3, 3)[0]);
    let seen = Position::new(&start.epoch, 3);
    drop((stream, publisher, first));

    let second = serve(store().await, 100, MINUTE).await;
    let mut publisher = second.connect("/feed").await;
    let fifth = publish_range(&mut publisher, GROUP, 4, 5).await;
    assert_eq!(fifth.epoch, start.epoch, "the history outlived the server");
    let mut resumed = Subscription::open(second.connect("/feed").await, GROUP, Some(&seen)).await;
    assert_eq!(
        resumed.take(3).await,
        [vec![header(true, &fifth)], items(4, 5)].concat()
    );
    publish_range(&mut publisher, GROUP, 6, 6).await;
    assert_eq!(resumed.next().await, items(6, 6)[0]);
    resumed.quiet(Duration::from_millis(200)).await;
}

/// Two servers publish to one group at once: one epoch, offsets 1..=N without gaps or repeats,
/// and a subscriber on either server gets all N in order.
// Shared stores only (their history outlives a server): unused without one of their features.
#[cfg_attr(
    not(any(feature = "redis", feature = "postgres", feature = "nats")),
    allow(dead_code)
)]
pub async fn two_servers_number_one_group_without_gaps<S, F>(store: impl Fn() -> F)
where
    S: HistoryStore,
    F: Future<Output = S>,
{
    const EACH: usize = 60;
    let servers = [
        serve(store().await, 1000, MINUTE).await,
        serve(store().await, 1000, MINUTE).await,
    ];
    let mut streams = Vec::new();
    for server in &servers {
        let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
        assert!(matches!(stream.next().await, Seen::Header { recovered: true, .. }));
        streams.push(stream);
    }
    let mut tasks = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        let mut client = server.connect("/feed").await;
        tasks.push(tokio::spawn(async move {
            let mut positions = Vec::new();
            for i in 0..EACH {
                positions.push(publish(&mut client, GROUP, &format!("s{s}-{i}")).await);
            }
            positions
        }));
    }
    let mut positions = Vec::new();
    for task in tasks {
        positions.extend(task.await.expect("a publisher"));
    }
    let epoch = &positions[0].epoch;
    assert!(positions.iter().all(|p| &p.epoch == epoch), "one epoch");
    let mut offsets: Vec<i64> = positions.iter().map(|p| p.offset).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=(2 * EACH) as i64).collect::<Vec<_>>());
    for stream in &mut streams {
        let seen = stream.take(2 * EACH).await;
        let offsets: Vec<i64> = seen
            .iter()
            .map(|s| match s {
                Seen::Item { offset, .. } => *offset,
                other => panic!("an item, got {other:?}"),
            })
            .collect();
        assert_eq!(offsets, (1..=(2 * EACH) as i64).collect::<Vec<_>>());
    }
}
