//! Presence across servers on one real PostgreSQL cluster (tests/common/brokers.rs starts one
//! per test), the cases of tests/presence.rs for `PostgresPresence`: members everywhere, events
//! exactly once, simultaneous first joins, and the members of a server that died without a
//! goodbye leaving within the TTL.

mod common;
mod presence_support;

use std::net::SocketAddr;
use std::time::Duration;

use common::brokers::Postgres;
use common::{within, Client, TestServer};
use hub_runtime::backplane::{PostgresBackplane, PostgresOptions};
use hub_runtime::presence::{GroupEntry, PostgresPresence, PostgresPresenceOptions, PresenceStore};
use hub_runtime::HubServer;
use presence_support::{members, with_rooms, Person};

const TTL: Duration = Duration::from_secs(3);

fn connection() -> PostgresOptions {
    PostgresOptions {
        group_ack_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

async fn store(url: &str, ttl: Duration) -> PostgresPresence {
    let options = PostgresPresenceOptions {
        ttl,
        connection: connection(),
    };
    within(
        "connect the presence store",
        PostgresPresence::connect_with(url, options),
    )
    .await
    .expect("a presence store")
}

async fn rooms_server(url: &str) -> HubServer {
    let backplane = within(
        "connect the backplane",
        PostgresBackplane::connect_with(url, connection()),
    )
    .await
    .expect("a backplane");
    with_rooms(
        HubServer::builder()
            .backplane(backplane)
            .presence(store(url, TTL).await),
    )
}

async fn start(url: &str) -> TestServer {
    TestServer::start(rooms_server(url).await).await
}

#[tokio::test]
async fn members_and_online_users_are_seen_from_every_server() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let servers = [
        start(&postgres.url).await,
        start(&postgres.url).await,
        start(&postgres.url).await,
    ];
    let mut people = Vec::new();
    for (server, user) in servers.iter().zip(["cy", "ann", "bob"]) {
        let mut person = Person::connect(server, Some(user)).await;
        person.join("room").await;
        people.push(person);
    }
    let everyone = members(&[("ann", 1), ("bob", 1), ("cy", 1)]);
    for person in &mut people {
        assert_eq!(person.members("room").await, everyone);
        assert!(person.online("ann").await && person.online("bob").await && person.online("cy").await);
        assert!(!person.online("dan").await);
    }
    people[1].leave("room").await;
    for person in &mut people {
        assert_eq!(person.members("room").await, members(&[("bob", 1), ("cy", 1)]));
    }
    // Left the group, still connected.
    assert!(people[0].online("ann").await);
}

#[tokio::test]
async fn a_user_on_two_servers_joins_once_and_leaves_once() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let (a, b) = (start(&postgres.url).await, start(&postgres.url).await);
    let mut watcher = Person::connect(&a, Some("watcher")).await;
    watcher.join("room").await;
    let mut ann_a = Person::connect(&a, Some("ann")).await;
    let mut ann_b = Person::connect(&b, Some("ann")).await;
    ann_a.join("room").await;
    ann_b.join("room").await;
    watcher.settle().await;
    assert_eq!(watcher.count("Joined", "room", "ann"), 1, "{:?}", watcher.events);
    assert_eq!(watcher.members("room").await, members(&[("ann", 2), ("watcher", 1)]));

    // The connection on A ends: ann is still in the room through B.
    ann_a.client.close().await;
    watcher.settle().await;
    assert_eq!(watcher.count("Left", "room", "ann"), 0, "{:?}", watcher.events);
    // The one on B leaves: now she is gone, and the watcher on A hears it once.
    ann_b.leave("room").await;
    watcher.wait_for("Left", "room", "ann", common::TIMEOUT).await;
    watcher.settle().await;
    assert_eq!(watcher.count("Left", "room", "ann"), 1, "{:?}", watcher.events);
    assert_eq!(watcher.members("room").await, members(&[("watcher", 1)]));
}

#[tokio::test]
async fn first_connections_joining_on_two_servers_at_once_make_one_joined() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let (a, b) = (start(&postgres.url).await, start(&postgres.url).await);
    let mut watcher = Person::connect(&a, Some("watcher")).await;
    let rounds = 10;
    for round in 0..rounds {
        watcher.join(&format!("room-{round}")).await;
    }
    for round in 0..rounds {
        let group = format!("room-{round}");
        let mut on_a = Person::connect(&a, Some("ann")).await;
        let mut on_b = Person::connect(&b, Some("ann")).await;
        tokio::join!(on_a.join(&group), on_b.join(&group));
    }
    watcher.settle().await;
    for round in 0..rounds {
        let group = format!("room-{round}");
        assert_eq!(
            watcher.count("Joined", &group, "ann"),
            1,
            "{group}: {:?}",
            watcher.events
        );
    }
}

#[tokio::test]
async fn the_store_decides_first_and_last_atomically() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let stores = [store(&postgres.url, TTL).await, store(&postgres.url, TTL).await];
    let entry = |connection: usize| GroupEntry {
        hub: "H".into(),
        group: "g".into(),
        user: "ann".into(),
        connection: format!("c{connection}"),
        info: None,
    };
    let joins = (0..40).map(|i| stores[i % 2].join(&entry(i)));
    let firsts = futures_util::future::join_all(joins).await;
    assert_eq!(firsts.iter().filter(|o| o.as_ref().unwrap().first).count(), 1);
    assert_eq!(stores[0].members("H", "g").await.unwrap()[0].connections, 40);
    let leaves = (0..40).map(|i| stores[(i + 1) % 2].leave(&entry(i)));
    let lasts = futures_util::future::join_all(leaves).await;
    assert_eq!(lasts.iter().filter(|o| o.as_ref().unwrap().last).count(), 1);
    assert!(stores[1].members("H", "g").await.unwrap().is_empty());

    // Info: the latest join with some wins, until the user's last connection leaves.
    let with = |connection: usize, info: &str| GroupEntry {
        info: Some(info.into()),
        ..entry(connection)
    };
    let info = |members: Vec<hub_runtime::presence::Member>| members[0].info.clone();
    stores[0].join(&with(1, r#"{"name":"Ann"}"#)).await.unwrap();
    stores[1].join(&entry(2)).await.unwrap();
    let ann = Some(serde_json::json!({"name": "Ann"}));
    assert_eq!(info(stores[1].members("H", "g").await.unwrap()), ann);
    stores[0].leave(&entry(1)).await.unwrap();
    assert_eq!(info(stores[1].members("H", "g").await.unwrap()), ann);
    stores[1].leave(&entry(2)).await.unwrap();
    stores[1].join(&entry(3)).await.unwrap();
    assert_eq!(info(stores[0].members("H", "g").await.unwrap()), None);
}

#[tokio::test]
async fn presence_info_is_seen_from_every_server() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let (a, b) = (start(&postgres.url).await, start(&postgres.url).await);
    let mut ann = Person::connect(&a, Some("ann")).await;
    ann.call("SetInfo", serde_json::json!([{"name": "Ann"}])).await;
    ann.join("room").await;
    let mut bob = Person::connect(&b, Some("bob")).await;
    bob.join("room").await;
    let members = bob.call("Members", serde_json::json!(["room"])).await;
    assert_eq!(
        members,
        serde_json::json!([
            {"user": "ann", "connections": 1, "info": {"name": "Ann"}},
            {"user": "bob", "connections": 1, "info": null}
        ])
    );
}

/// A server on a runtime of its own, on a thread of its own: killing it drops the runtime
/// with every task, socket and PostgreSQL session of the server, so nothing says goodbye.
struct Doomed {
    addr: SocketAddr,
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Doomed {
    fn start(url: String) -> Doomed {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            let server = runtime.block_on(async { start(&url).await });
            let _ = addr_tx.send(server.addr);
            let _ = killed.recv();
            // Not `server`'s Drop first (it stops serving gracefully): the runtime goes at once.
            std::mem::forget(server);
            runtime.shutdown_background();
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the doomed server starts");
        Doomed { addr, kill, thread }
    }

    fn kill(self) {
        let _ = self.kill.send(());
        self.thread.join().expect("the doomed server's thread");
    }
}

#[tokio::test]
async fn the_members_of_a_dead_server_leave_within_the_ttl_once() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let (a, b) = (start(&postgres.url).await, start(&postgres.url).await);
    let doomed = Doomed::start(postgres.url.clone());
    let mut on_a = Person::connect(&a, Some("amy")).await;
    let mut on_b = Person::connect(&b, Some("ben")).await;
    on_a.join("room").await;
    on_b.join("room").await;
    let mut carl = Person {
        client: Client::connect(doomed.addr, "/rooms", "user=carl").await,
        events: Vec::new(),
    };
    carl.call("SetInfo", serde_json::json!(["carl's info"])).await;
    carl.join("room").await;
    assert_eq!(info_users(&postgres), vec!["carl".to_string()]);
    assert_eq!(
        on_b.members("room").await,
        members(&[("amy", 1), ("ben", 1), ("carl", 1)])
    );
    assert!(on_a.online("carl").await);

    let killed = tokio::time::Instant::now();
    doomed.kill();
    on_a.wait_for("Left", "room", "carl", TTL + Duration::from_secs(2))
        .await;
    on_b.wait_for("Left", "room", "carl", TTL + Duration::from_secs(2))
        .await;
    let took = killed.elapsed();
    assert!(
        took <= TTL + Duration::from_millis(500),
        "carl left {took:?} after his server died"
    );
    // Once, however many servers sweep.
    tokio::time::sleep(TTL / 2).await;
    on_a.settle().await;
    on_b.settle().await;
    assert_eq!(on_a.count("Left", "room", "carl"), 1, "{:?}", on_a.events);
    assert_eq!(on_b.count("Left", "room", "carl"), 1, "{:?}", on_b.events);
    assert_eq!(on_a.members("room").await, members(&[("amy", 1), ("ben", 1)]));
    assert!(!on_b.online("carl").await);
    assert!(info_users(&postgres).is_empty(), "the sweep removes carl's info too");
    // The living keep theirs: their servers renew their leases.
    tokio::time::sleep(TTL).await;
    assert_eq!(on_b.members("room").await, members(&[("amy", 1), ("ben", 1)]));
}

/// The users with info in group `room`, as PostgreSQL has them.
fn info_users(postgres: &Postgres) -> Vec<String> {
    let out =
        postgres.psql("SELECT user_id FROM hub_presence_counts WHERE grp = 'room' AND info IS NOT NULL ORDER BY 1");
    out.lines().map(str::to_string).collect()
}

/// The servers holding a lease, as PostgreSQL has them.
fn leaseholders(postgres: &Postgres) -> Vec<String> {
    let out = postgres.psql("SELECT server FROM hub_presence_servers ORDER BY 1");
    out.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn a_stopped_server_stops_renewing_its_lease() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let _live = start(&postgres.url).await;
    let presence = store(&postgres.url, TTL).await;
    let name = presence.server_name().to_string();
    let backplane = within(
        "connect the backplane",
        PostgresBackplane::connect_with(&postgres.url, connection()),
    )
    .await
    .expect("a backplane");
    let stopping = TestServer::start(with_rooms(HubServer::builder().backplane(backplane).presence(presence))).await;
    // Renewed while it runs: past its first lease (TTL / 2), it still holds one.
    tokio::time::sleep(TTL).await;
    assert!(leaseholders(&postgres).contains(&name));
    stopping.server.shutdown();
    // Its lease runs out and the live server sweeps it away.
    let deadline = tokio::time::Instant::now() + TTL * 2;
    while leaseholders(&postgres).contains(&name) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stopped server still renews its lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ends `server`'s lease at once, as if it had been cut off from PostgreSQL that long.
fn end_lease(postgres: &Postgres, server: &str) {
    postgres.psql(&format!(
        "UPDATE hub_presence_servers SET lease_until = now() - interval '1 second' WHERE server = '{server}'"
    ));
}

#[tokio::test]
async fn a_server_swept_while_alive_writes_its_entries_again() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let (alive, sweeper) = (store(&postgres.url, TTL).await, store(&postgres.url, TTL).await);
    let entry = GroupEntry {
        hub: "H".into(),
        group: "g".into(),
        user: "ann".into(),
        connection: "c1".into(),
        info: Some("\"hi\"".into()),
    };
    assert!(alive.join(&entry).await.unwrap().first);
    assert!(alive.refresh().await.unwrap().is_empty(), "nothing was lost");
    end_lease(&postgres, alive.server_name());
    let expired = sweeper.sweep().await.unwrap();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert!(sweeper.members("H", "g").await.unwrap().is_empty());
    let restored = alive.refresh().await.unwrap();
    assert_eq!(
        restored,
        vec![hub_runtime::presence::Restored {
            hub: "H".into(),
            group: "g".into(),
            user: "ann".into()
        }]
    );
    let members = sweeper.members("H", "g").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].info, Some(serde_json::json!("hi")));
    assert!(alive.refresh().await.unwrap().is_empty());
    // What left meanwhile is not written again.
    assert!(alive.leave(&entry).await.unwrap().last);
    end_lease(&postgres, alive.server_name());
    assert!(sweeper.sweep().await.unwrap().is_empty());
    assert!(alive.refresh().await.unwrap().is_empty());
    assert!(sweeper.members("H", "g").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_users_of_a_server_swept_while_alive_leave_and_come_back() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let _sweeper = start(&postgres.url).await;
    let presence = store(&postgres.url, TTL).await;
    let name = presence.server_name().to_string();
    let backplane = within(
        "connect the backplane",
        PostgresBackplane::connect_with(&postgres.url, connection()),
    )
    .await
    .expect("a backplane");
    let server = TestServer::start(with_rooms(HubServer::builder().backplane(backplane).presence(presence))).await;
    let mut watcher = Person::connect(&_sweeper, Some("watcher")).await;
    watcher.join("room").await;
    let mut ann = Person::connect(&server, Some("ann")).await;
    ann.join("room").await;
    // Swept now (in one transaction: the server's own renewal cannot come in between).
    let expired = end_lease_and_sweep(&postgres, &name);
    assert_eq!(
        expired,
        vec!["presence_postgres::presence_support::Rooms", "room", "ann"]
    );
    // Its next renewal writes ann's entry again: she is back, and announced (a second Joined).
    let deadline = tokio::time::Instant::now() + TTL;
    while watcher.count("Joined", "room", "ann") < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ann never came back: {:?}",
            watcher.events
        );
        watcher.call("Echo", serde_json::json!(["tick"])).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(watcher.members("room").await, members(&[("ann", 1), ("watcher", 1)]));
    watcher.settle().await;
    assert_eq!(watcher.count("Joined", "room", "ann"), 2, "{:?}", watcher.events);
}

/// Ends `server`'s lease and sweeps, in one transaction; what the sweep returned.
fn end_lease_and_sweep(postgres: &Postgres, server: &str) -> Vec<String> {
    let out = postgres.psql(&format!(
        "BEGIN; UPDATE hub_presence_servers SET lease_until = now() - interval '1 second' \
         WHERE server = '{server}'; SELECT hub, grp, user_id FROM hub_presence_sweep(16); COMMIT;"
    ));
    out.lines()
        .filter(|line| line.contains('|'))
        .flat_map(|line| line.split('|').map(str::to_string).collect::<Vec<_>>())
        .collect()
}
