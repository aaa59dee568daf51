//! The NATS store on a private `nats-server` with JetStream: every shared case, then what only
//! this store does: a broker restart (the stream is on disk), a deleted stream (a new epoch)
//! under a streaming client, a subscription only while a group has subscribers, and data on
//! the group's subject that is not ours.

use std::time::Duration;

use hub_runtime::backplane::NatsOptions;
use hub_runtime::history::{NatsHistory, NatsHistoryOptions, Position};
use serde_json::json;

use crate::cases;
use crate::common::brokers::Nats;
use crate::support::{header, items, publish, publish_range, serve, Seen, Subscription};

const GROUP: &str = "durable-news";
const MINUTE: Duration = Duration::from_secs(60);

async fn store(nats: &Nats) -> NatsHistory {
    let options = NatsHistoryOptions {
        connection: NatsOptions {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    };
    NatsHistory::connect_with(&nats.url, options)
        .await
        .expect("connect the NATS history")
}

macro_rules! shared_case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(nats) = Nats::start().await else { return };
            cases::$name(store(&nats).await).await;
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
    let Some(nats) = Nats::start().await else { return };
    cases::a_client_resumes_on_a_restarted_server(|| store(&nats)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_number_one_group_without_gaps() {
    let Some(nats) = Nats::start().await else { return };
    cases::two_servers_number_one_group_without_gaps(|| store(&nats)).await;
}

/// Publishes `message` through `publisher` until the store answers (the broker restarts).
async fn publish_when_back(publisher: &mut crate::common::Client, message: &str) -> Position {
    for _ in 0..100 {
        let reply = publisher.call("Publish", json!([GROUP, message])).await;
        if let Some(result) = reply.get("result") {
            return serde_json::from_value(result.clone()).expect("a position");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("publishing never worked again")
}

/// nats-server restarts under a streaming client: the stream is on disk, so the epoch stays;
/// the stream goes on with nothing lost or repeated, and a client that saw only the first
/// message resumes with exactly the missed ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_keeps_the_epoch() {
    let Some(mut nats) = Nats::start().await else { return };
    let server = serve(store(&nats).await, 100, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let first = publish_range(&mut publisher, GROUP, 1, 1).await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert_eq!(stream.next().await, header(true, &first));
    nats.stop().await;
    nats.restart().await;
    let second = publish_when_back(&mut publisher, "m2").await;
    assert_eq!(
        second,
        Position::new(&first.epoch, 2),
        "the history survived the restart"
    );
    assert_eq!(stream.next().await, items(2, 2)[0]);
    publish_range(&mut publisher, GROUP, 3, 3).await;
    assert_eq!(stream.next().await, items(3, 3)[0]);
    stream.quiet(Duration::from_millis(300)).await;

    let mut resumed = Subscription::open(server.connect("/feed").await, GROUP, Some(&first)).await;
    assert_eq!(
        resumed.take(3).await,
        [vec![header(true, &Position::new(&first.epoch, 3))], items(2, 3)].concat()
    );
}

/// The stream is deleted under a streaming client (its storage lost): the next publish starts
/// a new epoch; the client is told `recovered: false` and gets the new epoch's messages, and a
/// resume from the old epoch is not recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_starts_a_new_epoch() {
    let Some(nats) = Nats::start().await else { return };
    let server = serve(store(&nats).await, 100, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let first = publish_range(&mut publisher, GROUP, 1, 2).await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert_eq!(stream.next().await, header(true, &first));

    let client = async_nats::connect(&nats.url).await.expect("connect to NATS");
    let jetstream = async_nats::jetstream::new(client);
    let names: Vec<String> = futures_util::TryStreamExt::try_collect(jetstream.stream_names())
        .await
        .expect("the stream names");
    assert_eq!(names, ["hub_history_100_60000"], "one stream for the rule's limits");
    jetstream.delete_stream(&names[0]).await.expect("delete the stream");

    let fresh = publish(&mut publisher, GROUP, "m1").await;
    assert_ne!(fresh.epoch, first.epoch, "the history was lost: a new epoch");
    assert_eq!(fresh.offset, 1);
    assert_eq!(
        stream.take(2).await,
        [header(false, &Position::new(&fresh.epoch, 0)), items(1, 1)[0].clone()]
    );
    let mut resumed = Subscription::open(server.connect("/feed").await, GROUP, Some(&first)).await;
    assert_eq!(resumed.next().await, header(false, &fresh));
    publish(&mut publisher, GROUP, "m2").await;
    assert_eq!(stream.next().await, items(2, 2)[0]);
    assert_eq!(resumed.next().await, items(2, 2)[0]);
}

/// The store subscribes a group's live subject while the group has subscribers on its server,
/// and stops when the last one leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_listens_only_while_a_group_has_subscribers() {
    let Some(nats) = Nats::start().await else { return };
    let history = store(&nats).await;
    let server = serve(history.clone(), 100, MINUTE).await;
    assert_eq!(history.live_subjects().await, Vec::<String>::new());
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
        stream.next().await;
        streams.push(stream);
    }
    let subjects = history.live_subjects().await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].starts_with("hub._history_live."), "{subjects:?}");
    streams.remove(0).client.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(history.live_subjects().await.len(), 1, "one subscriber is left");
    streams.remove(0).client.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !history.live_subjects().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subject is still subscribed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message without our headers on a group's subject (another program published there) does
/// not break the group: the store starts a new epoch after it, and a stream is told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_data_on_a_group_subject_starts_a_new_epoch() {
    let Some(nats) = Nats::start().await else { return };
    let history = store(&nats).await;
    let server = serve(history.clone(), 100, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let first = publish_range(&mut publisher, GROUP, 1, 1).await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert_eq!(stream.next().await, header(true, &first));

    // The group's subject, from its live subject (same hub and group tokens).
    let live = history.live_subjects().await;
    let subject = live[0].replace("._history_live.", "._history.100_60000.");
    let client = async_nats::connect(&nats.url).await.expect("connect to NATS");
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .publish(subject, "\u{0}not json".into())
        .await
        .expect("published")
        .await
        .expect("stored");
    let fresh = publish(&mut publisher, GROUP, "m1").await;
    assert_ne!(fresh.epoch, first.epoch);
    assert_eq!(fresh.offset, 1);
    // The foreign message is a gap for the stream: it reads history and finds the new epoch.
    match stream.next().await {
        Seen::Header {
            recovered: false,
            position,
        } if position.offset == 0 => assert_eq!(stream.next().await, items(1, 1)[0]),
        Seen::Header {
            recovered: false,
            position,
        } => assert_eq!(position, fresh),
        other => panic!("a header with recovered false, got {other:?}"),
    }
    publish(&mut publisher, GROUP, "m2").await;
    assert_eq!(stream.next().await, items(2, 2)[0]);
}
