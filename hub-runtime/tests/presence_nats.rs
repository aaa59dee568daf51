//! Presence across servers on one real `nats-server` with JetStream (tests/common/brokers.rs
//! starts one per test): the shared cases (`presence_support/cases.rs`) on `NatsPresence`, and
//! what is NATS's own: entries outlive a restart of the NATS server, a frozen NATS server
//! makes calls fail in bounded time, names that are not subject tokens, bad data.

#[path = "presence_support/cases.rs"]
mod cases;
mod common;
mod presence_support;

use std::future::IntoFuture;
use std::time::Duration;

use base64::Engine;
use cases::{Detached, Fleet, TTL};
use common::brokers::Nats;
use common::{within, TestServer};
use futures_util::StreamExt;
use hub_runtime::backplane::{NatsBackplane, NatsOptions};
use hub_runtime::presence::{GroupEntry, NatsPresence, NatsPresenceOptions, PresenceStore};
use hub_runtime::HubServer;
use presence_support::{members, with_rooms, Person};

struct NatsFleet {
    nats: Nats,
}

fn connection() -> NatsOptions {
    NatsOptions {
        group_ack_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

async fn store(url: &str, ttl: Duration) -> NatsPresence {
    let options = NatsPresenceOptions {
        ttl,
        connection: connection(),
    };
    within("connect the presence store", NatsPresence::connect_with(url, options))
        .await
        .expect("a presence store")
}

async fn start(url: &str, presence: NatsPresence) -> TestServer {
    let backplane = within("connect the backplane", NatsBackplane::connect_with(url, connection()))
        .await
        .expect("a backplane");
    TestServer::start(with_rooms(HubServer::builder().backplane(backplane).presence(presence))).await
}

/// JetStream on a client of the test's own.
async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let client = within("connect to NATS", async_nats::connect(url)).await.unwrap();
    async_nats::jetstream::new(client)
}

/// The subjects of `stream` that match `filter`.
async fn subjects(js: &async_nats::jetstream::Context, stream: &str, filter: &str) -> Vec<String> {
    let stream = within("get the stream", js.get_stream(stream)).await.unwrap();
    let mut listed = within("list subjects", stream.info_with_subjects(filter))
        .await
        .unwrap();
    let mut subjects = Vec::new();
    while let Some(next) = within("list subjects", listed.next()).await {
        subjects.push(next.unwrap().0);
    }
    subjects.sort();
    subjects
}

/// A name as a subject token, as the store encodes it (short names).
fn token(name: &str) -> String {
    format!("n{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name))
}

impl Fleet for NatsFleet {
    type Store = NatsPresence;

    async fn store(&self, ttl: Duration) -> NatsPresence {
        store(&self.nats.url, ttl).await
    }

    async fn start(&self, presence: NatsPresence) -> TestServer {
        start(&self.nats.url, presence).await
    }

    fn detached(&self) -> Detached {
        let url = self.nats.url.clone();
        Box::new(move || Box::pin(async move { start(&url, store(&url, TTL).await).await }))
    }

    fn server_name(store: &NatsPresence) -> String {
        store.server_name()
    }

    async fn info_users(&self) -> Vec<String> {
        let js = jetstream(&self.nats.url).await;
        let stream = js.get_stream("hub_presence").await.unwrap();
        let mut users = Vec::new();
        for subject in subjects(&js, "hub_presence", "hub._presence.g.>").await {
            let Ok(stored) = stream.get_last_raw_message_by_subject(&subject).await else {
                continue;
            };
            let state: serde_json::Value = serde_json::from_slice(&stored.payload).unwrap();
            let with_connections = state["connections"].as_object().is_some_and(|c| !c.is_empty());
            if state["group"] == "room" && state["info"].is_string() && with_connections {
                users.push(state["user"].as_str().unwrap().to_string());
            }
        }
        users
    }

    async fn leaseholders(&self) -> Vec<String> {
        let js = jetstream(&self.nats.url).await;
        let leases = subjects(&js, "hub_presence_leases", "hub._presence_lease.*").await;
        leases
            .iter()
            .map(|s| s.rsplit('.').next().unwrap().to_string())
            .collect()
    }

    async fn end_lease(&self, server: &str) {
        let js = jetstream(&self.nats.url).await;
        let stream = js.get_stream("hub_presence_leases").await.unwrap();
        let subject = format!("hub._presence_lease.{server}");
        within("purge the lease", stream.purge().filter(subject).into_future())
            .await
            .unwrap();
    }

    async fn end_lease_and_sweep(&self, server: &str) -> Vec<String> {
        // A claim on the server's registration (compare-and-set) and its sweep: its renewal
        // cannot undo the claim, it goes on under a new name.
        let sweeper = self.store(TTL).await;
        let expired = within("evict", sweeper.evict(server)).await.unwrap();
        expired.into_iter().flat_map(|e| [e.hub, e.group, e.user]).collect()
    }
}

macro_rules! case {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let Some(nats) = Nats::start().await else { return };
            cases::$name(&NatsFleet { nats }).await;
        }
    };
}

case!(members_and_online_users_are_seen_from_every_server);
case!(a_user_on_two_servers_joins_once_and_leaves_once);
case!(first_connections_joining_on_two_servers_at_once_make_one_joined);
case!(the_store_decides_first_and_last_atomically);
case!(presence_info_is_seen_from_every_server);
case!(the_members_of_a_dead_server_leave_within_the_ttl_once);
case!(a_stopped_server_stops_renewing_its_lease);
case!(a_server_swept_while_alive_writes_its_entries_again);
case!(the_users_of_a_server_swept_while_alive_leave_and_come_back);

fn entry(group: &str, user: &str, connection: &str) -> GroupEntry {
    GroupEntry {
        hub: "H".into(),
        group: group.into(),
        user: user.into(),
        connection: connection.into(),
        info: None,
    }
}

#[tokio::test]
async fn entries_outlive_a_restart_of_the_nats_server() {
    let Some(nats) = Nats::start().await else { return };
    let mut fleet = NatsFleet { nats };
    // A lease longer than the restart: nobody is swept meanwhile.
    let ttl = Duration::from_secs(12);
    let (a, b) = (
        fleet.start(fleet.store(ttl).await).await,
        fleet.start(fleet.store(ttl).await).await,
    );
    let mut ann = Person::connect(&a, Some("ann")).await;
    let mut bob = Person::connect(&b, Some("bob")).await;
    ann.join("room").await;
    bob.join("room").await;
    let both = members(&[("ann", 1), ("bob", 1)]);
    assert_eq!(ann.members("room").await, both);

    fleet.nats.stop().await;
    fleet.nats.restart().await;
    // The stores reconnect by themselves; the entries were on disk.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = ann.call("Members", serde_json::json!(["room"])).await;
        if seen.as_array().is_some_and(|m| m.len() == 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "members after the restart: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(bob.members("room").await, both);
    assert!(bob.online("ann").await);
    // And they stay: the servers renew their leases on the restarted NATS server.
    tokio::time::sleep(ttl / 2 + Duration::from_secs(1)).await;
    assert_eq!(ann.members("room").await, both);
    ann.settle().await;
    assert_eq!(ann.count("Left", "room", "bob"), 0, "{:?}", ann.events);
    // And the store still decides: bob's last connection leaves once.
    bob.leave("room").await;
    ann.wait_for("Left", "room", "bob", common::TIMEOUT).await;
    assert_eq!(ann.members("room").await, members(&[("ann", 1)]));
}

#[tokio::test]
async fn a_frozen_nats_server_makes_calls_fail_in_bounded_time() {
    let Some(nats) = Nats::start().await else { return };
    let presence = store(&nats.url, TTL).await;
    assert!(presence.join(&entry("g", "ann", "c1")).await.unwrap().first);
    nats.freeze();
    let started = tokio::time::Instant::now();
    let members = tokio::time::timeout(Duration::from_secs(6), presence.members("H", "g")).await;
    assert!(matches!(members, Ok(Err(_))), "{members:?}");
    let joined = tokio::time::timeout(Duration::from_secs(6), presence.join(&entry("g", "bob", "c2"))).await;
    assert!(matches!(joined, Ok(Err(_))), "{joined:?}");
    let refreshed = tokio::time::timeout(Duration::from_secs(6), presence.refresh()).await;
    assert!(matches!(refreshed, Ok(Err(_))), "{refreshed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    nats.thaw();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(found) = presence.members("H", "g").await {
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].user, "ann");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no answer after the thaw");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn names_that_are_no_subject_tokens_are_kept_apart() {
    let Some(nats) = Nats::start().await else { return };
    let presence = store(&nats.url, TTL).await;
    let long = "g".repeat(300);
    let groups = [
        "a.b",
        "a",
        "*",
        ">",
        "",
        "room with spaces",
        "ünï ✓",
        long.as_str(),
        "a.>",
    ];
    for (i, group) in groups.iter().enumerate() {
        for user in ["x.y", "*", "", "ü"] {
            let joined = presence
                .join(&entry(group, user, &format!("c{i}{user}")))
                .await
                .unwrap();
            assert!(joined.first, "{group:?} {user:?}");
        }
    }
    for group in groups {
        let found = presence.members("H", group).await.unwrap();
        let users: Vec<&str> = found.iter().map(|m| m.user.as_str()).collect();
        assert_eq!(users, ["", "*", "x.y", "ü"], "{group:?}");
    }
    assert!(presence.members("H", "a.b.c").await.unwrap().is_empty());
    assert!(presence.members(&long[1..], "a").await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_data_on_the_broker_is_no_member_and_is_overwritten() {
    let Some(nats) = Nats::start().await else { return };
    let presence = store(&nats.url, TTL).await;
    let js = jetstream(&nats.url).await;
    let subject = format!("hub._presence.g.{}.{}.{}", token("H"), token("g"), token("ann"));
    for garbage in [&b"\xff\x00 not json"[..], b"[1,2,3]", b"{\"hub\":5}"] {
        let ack = js.publish(subject.clone(), garbage.to_vec().into()).await.unwrap();
        within("store the garbage", ack.into_future()).await.unwrap();
        assert!(presence.members("H", "g").await.unwrap().is_empty());
        assert!(!presence.online("H", "ann").await.unwrap());
    }
    // A registration and a lease that are not the store's own do not break a sweep either.
    let ack = js.publish("hub._presence.r.ghost", "not json".into()).await.unwrap();
    within("store a bad registration", ack.into_future()).await.unwrap();
    let swept = within("sweep", presence.sweep()).await.unwrap();
    assert!(swept.is_empty(), "{swept:?}");
    assert!(presence.join(&entry("g", "ann", "c1")).await.unwrap().first);
    assert_eq!(presence.members("H", "g").await.unwrap()[0].connections, 1);
    assert!(presence.leave(&entry("g", "ann", "c1")).await.unwrap().last);
}

#[tokio::test]
async fn the_empty_entries_of_users_who_left_are_purged() {
    let Some(nats) = Nats::start().await else { return };
    let presence = store(&nats.url, TTL).await;
    for i in 0..5 {
        presence.join(&entry("g", &format!("u{i}"), "c")).await.unwrap();
    }
    let js = jetstream(&nats.url).await;
    assert_eq!(subjects(&js, "hub_presence", "hub._presence.g.>").await.len(), 5);
    for i in 0..5 {
        assert!(presence.leave(&entry("g", &format!("u{i}"), "c")).await.unwrap().last);
    }
    // Nothing stays behind of a user who left: no tombstone per user ever seen.
    assert!(subjects(&js, "hub_presence", "hub._presence.g.>").await.is_empty());
}

#[tokio::test]
async fn a_large_group_is_read_whole() {
    let Some(nats) = Nats::start().await else { return };
    let presence = store(&nats.url, TTL).await;
    // Enough entries, with info, for the scan to pass the consumer's flow-control window.
    let info = format!("\"{}\"", "i".repeat(2_000));
    let users = 3_000;
    let joins = (0..users).map(|i| {
        let entry = GroupEntry {
            info: Some(info.clone()),
            ..entry("big", &format!("user-{i:05}"), &format!("c{i}"))
        };
        let presence = presence.clone();
        async move { presence.join(&entry).await.unwrap() }
    });
    futures_util::stream::iter(joins)
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let found = within("read the members", presence.members("H", "big")).await.unwrap();
    assert_eq!(found.len(), users);
    assert!(found.windows(2).all(|w| w[0].user < w[1].user));
    assert!(found.iter().all(|m| m.connections == 1 && m.info.is_some()));
}
