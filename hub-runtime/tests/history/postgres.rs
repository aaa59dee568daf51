//! The PostgreSQL store on a private PostgreSQL cluster: every shared case, then what only a
//! shared store does: a history that outlives a server, several servers numbering one group,
//! messages too large for a notification, and a lost listening session under a streaming
//! client.

use std::time::Duration;

use hub_runtime::backplane::PostgresOptions;
use hub_runtime::history::{Position, PostgresHistory, PostgresHistoryOptions};

use crate::cases;
use crate::common::brokers::Postgres;
use crate::support::{header, items, publish, publish_range, serve, Seen, Subscription};

const GROUP: &str = "durable-news";
const MINUTE: Duration = Duration::from_secs(60);

async fn store(postgres: &Postgres) -> PostgresHistory {
    let options = PostgresHistoryOptions {
        connection: PostgresOptions {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            keepalive: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    };
    PostgresHistory::connect_with(&postgres.url, options)
        .await
        .expect("connect the PostgreSQL history")
}

macro_rules! shared_case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(postgres) = Postgres::start().await else {
                return;
            };
            cases::$name(store(&postgres).await).await;
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
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    cases::a_client_resumes_on_a_restarted_server(|| store(&postgres)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_number_one_group_without_gaps() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    cases::two_servers_number_one_group_without_gaps(|| store(&postgres)).await;
}

/// A message far larger than the 8,000 bytes a notification carries reaches live subscribers
/// on another server (the notification names its position; the row is read) and is recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_a_notification_arrives() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let (a, b) = (
        serve(store(&postgres).await, 100, MINUTE).await,
        serve(store(&postgres).await, 100, MINUTE).await,
    );
    let mut stream = Subscription::open(b.connect("/feed").await, GROUP, None).await;
    let Seen::Header { position: start, .. } = stream.next().await else {
        panic!("a header first")
    };
    let large = "x".repeat(20_000);
    let mut publisher = a.connect("/feed").await;
    let position = publish(&mut publisher, GROUP, &large).await;
    assert_eq!(position, Position::new(&start.epoch, 1));
    assert_eq!(
        stream.next().await,
        Seen::Item {
            offset: 1,
            message: large.clone()
        }
    );
    let mut resumed = Subscription::open(a.connect("/feed").await, GROUP, Some(&start)).await;
    assert_eq!(resumed.next().await, header(true, &position));
    assert_eq!(
        resumed.next().await,
        Seen::Item {
            offset: 1,
            message: large
        }
    );
}

/// The listening session is killed under a streaming client: the store listens again, tells
/// the stream of a possible gap, and the stream reads what was published meanwhile from history
/// (in order, nothing twice), then live messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listening_session_is_recovered_from_history() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let server = serve(store(&postgres).await, 100, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert!(matches!(stream.next().await, Seen::Header { recovered: true, .. }));
    publish_range(&mut publisher, GROUP, 1, 1).await;
    assert_eq!(stream.next().await, items(1, 1)[0]);
    let killed = postgres.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'hub history listener'",
    );
    assert_eq!(killed, "1");
    // Published while nobody listens: only history has them.
    publish_range(&mut publisher, GROUP, 2, 4).await;
    assert_eq!(stream.take(3).await, items(2, 4));
    // Listening again: live messages arrive.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hub history listener'") != "1"
    {
        assert!(tokio::time::Instant::now() < deadline, "the store never listened again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publish_range(&mut publisher, GROUP, 5, 6).await;
    assert_eq!(stream.take(2).await, items(5, 6));
    stream.quiet(Duration::from_millis(300)).await;
}

/// Expired messages and groups are deleted by the servers' cleanup, though nobody touches the
/// group again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_are_deleted() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let options = PostgresHistoryOptions {
        cleanup_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let store = PostgresHistory::connect_with(&postgres.url, options)
        .await
        .expect("connect the PostgreSQL history");
    let server = serve(store, 100, Duration::from_millis(300)).await;
    let mut publisher = server.connect("/feed").await;
    publish_range(&mut publisher, GROUP, 1, 2).await;
    let count = |table: &str| postgres.psql(&format!("SELECT count(*) FROM {table}"));
    assert_eq!(count("hub_history_messages"), "2");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while count("hub_history_messages") != "0" || count("hub_history_groups") != "0" {
        assert!(tokio::time::Instant::now() < deadline, "expired rows are still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The store listens on a group's channel while the group has subscribers on its server, and
/// stops when the last one leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_listens_only_while_a_group_has_subscribers() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let history = store(&postgres).await;
    let server = serve(history.clone(), 100, MINUTE).await;
    assert_eq!(history.listening_channels().await, Vec::<String>::new());
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
        stream.next().await;
        streams.push(stream);
    }
    let channels = history.listening_channels().await;
    assert_eq!(channels.len(), 1, "{channels:?}");
    assert!(
        channels[0].starts_with("hub_h_") && channels[0].len() <= 63,
        "{channels:?}"
    );
    streams.remove(0).client.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(history.listening_channels().await.len(), 1, "one subscriber is left");
    streams.remove(0).client.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !history.listening_channels().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the channel is still listened on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL restarts under a streaming client: the command session is opened again on the
/// next publish, the listening one reconnects, and the stream goes on in the same epoch (the
/// history is on disk) with nothing lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_keeps_the_epoch_under_a_stream() {
    let Some(mut postgres) = Postgres::start().await else {
        return;
    };
    let server = serve(store(&postgres).await, 100, MINUTE).await;
    let mut publisher = server.connect("/feed").await;
    let first = publish_range(&mut publisher, GROUP, 1, 1).await;
    let mut stream = Subscription::open(server.connect("/feed").await, GROUP, None).await;
    assert_eq!(stream.next().await, header(true, &first));
    postgres.stop().await;
    postgres.restart().await;
    let mut second = None;
    for _ in 0..50 {
        let reply = publisher.call("Publish", serde_json::json!([GROUP, "m2"])).await;
        if let Some(result) = reply.get("result") {
            second = Some(serde_json::from_value::<Position>(result.clone()).expect("a position"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = second.expect("publishing works again after PostgreSQL restarted");
    assert_eq!(
        second,
        Position::new(&first.epoch, 2),
        "the history survived the restart"
    );
    assert_eq!(stream.next().await, items(2, 2)[0]);
    publish_range(&mut publisher, GROUP, 3, 3).await;
    assert_eq!(stream.next().await, items(3, 3)[0]);
    stream.quiet(Duration::from_millis(300)).await;
}
