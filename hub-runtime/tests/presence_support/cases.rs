//! The presence cases every shared store passes (tests/presence.rs runs them on Redis,
//! tests/presence_postgres.rs on PostgreSQL, tests/presence_nats.rs on NATS): members seen from
//! three servers, events exactly once,
//! simultaneous first joins, and the members of a server that died without a goodbye leaving
//! within the TTL.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hub_runtime::presence::{GroupEntry, PresenceStore};

use crate::common::{self, Client, TestServer};
use crate::presence_support::{members, Person, Rooms};

pub const TTL: Duration = Duration::from_secs(3);

/// Starts a server of the fleet on the runtime it is called on.
pub type Detached = Box<dyn FnOnce() -> BoxFuture<'static, TestServer> + Send>;

/// One broker shared by the servers of a test, and what the cases ask of it.
pub trait Fleet: Sync {
    type Store: PresenceStore + Clone;

    /// A presence store on the broker with `ttl`.
    fn store(&self, ttl: Duration) -> impl Future<Output = Self::Store> + Send;

    /// A server with the broker's backplane, `presence`, and `/rooms`.
    fn start(&self, presence: Self::Store) -> impl Future<Output = TestServer> + Send;

    /// A server with a store of [`TTL`].
    fn server(&self) -> impl Future<Output = TestServer> + Send {
        async { self.start(self.store(TTL).await).await }
    }

    /// Starts a server later, on another runtime.
    fn detached(&self) -> Detached;

    /// The name of the store's server among the leaseholders.
    fn server_name(store: &Self::Store) -> String;

    /// The users with info in group `room`, as the broker has them.
    fn info_users(&self) -> impl Future<Output = Vec<String>> + Send;

    /// The servers holding a lease, as the broker has them.
    fn leaseholders(&self) -> impl Future<Output = Vec<String>> + Send;

    /// Ends `server`'s lease at once, as if it had been cut off from the broker that long.
    fn end_lease(&self, server: &str) -> impl Future<Output = ()> + Send;

    /// Ends `server`'s lease and sweeps, in one transaction; (hub, group, user…) swept.
    fn end_lease_and_sweep(&self, server: &str) -> impl Future<Output = Vec<String>> + Send;
}

pub async fn members_and_online_users_are_seen_from_every_server<F: Fleet>(fleet: &F) {
    let servers = [fleet.server().await, fleet.server().await, fleet.server().await];
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

pub async fn a_user_on_two_servers_joins_once_and_leaves_once<F: Fleet>(fleet: &F) {
    let (a, b) = (fleet.server().await, fleet.server().await);
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

pub async fn first_connections_joining_on_two_servers_at_once_make_one_joined<F: Fleet>(fleet: &F) {
    let (a, b) = (fleet.server().await, fleet.server().await);
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

pub async fn the_store_decides_first_and_last_atomically<F: Fleet>(fleet: &F) {
    let stores = [F::store(fleet, TTL).await, F::store(fleet, TTL).await];
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

pub async fn presence_info_is_seen_from_every_server<F: Fleet>(fleet: &F) {
    let (a, b) = (fleet.server().await, fleet.server().await);
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
/// with every task, socket and broker connection of the server, so nothing says goodbye.
struct Doomed {
    addr: SocketAddr,
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Doomed {
    fn start(server: Detached) -> Doomed {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            let server = runtime.block_on(server());
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

pub async fn the_members_of_a_dead_server_leave_within_the_ttl_once<F: Fleet>(fleet: &F) {
    let (a, b) = (fleet.server().await, fleet.server().await);
    let doomed = Doomed::start(fleet.detached());
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
    assert_eq!(fleet.info_users().await, vec!["carl".to_string()]);
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
    assert!(fleet.info_users().await.is_empty(), "the sweep removes carl's info too");
    // The living keep theirs: their servers renew their leases.
    tokio::time::sleep(TTL).await;
    assert_eq!(on_b.members("room").await, members(&[("amy", 1), ("ben", 1)]));
}

pub async fn a_stopped_server_stops_renewing_its_lease<F: Fleet>(fleet: &F) {
    let _live = fleet.server().await;
    let presence = F::store(fleet, TTL).await;
    let name = F::server_name(&presence);
    let stopping = fleet.start(presence).await;
    // Renewed while it runs: past its first lease (TTL / 2), it still holds one.
    tokio::time::sleep(TTL).await;
    assert!(fleet.leaseholders().await.contains(&name));
    stopping.server.shutdown();
    // Its lease runs out and the live server sweeps it away.
    let deadline = tokio::time::Instant::now() + TTL * 2;
    while fleet.leaseholders().await.contains(&name) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stopped server still renews its lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn a_server_swept_while_alive_writes_its_entries_again<F: Fleet>(fleet: &F) {
    let (alive, sweeper) = (F::store(fleet, TTL).await, F::store(fleet, TTL).await);
    let entry = GroupEntry {
        hub: "H".into(),
        group: "g".into(),
        user: "ann".into(),
        connection: "c1".into(),
        info: Some("\"hi\"".into()),
    };
    assert!(alive.join(&entry).await.unwrap().first);
    assert!(alive.refresh().await.unwrap().is_empty(), "nothing was lost");
    fleet.end_lease(&F::server_name(&alive)).await;
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
    fleet.end_lease(&F::server_name(&alive)).await;
    assert!(sweeper.sweep().await.unwrap().is_empty());
    assert!(alive.refresh().await.unwrap().is_empty());
    assert!(sweeper.members("H", "g").await.unwrap().is_empty());
}

pub async fn the_users_of_a_server_swept_while_alive_leave_and_come_back<F: Fleet>(fleet: &F) {
    let _sweeper = fleet.server().await;
    let presence = F::store(fleet, TTL).await;
    let name = F::server_name(&presence);
    let server = fleet.start(presence).await;
    let mut watcher = Person::connect(&_sweeper, Some("watcher")).await;
    watcher.join("room").await;
    let mut ann = Person::connect(&server, Some("ann")).await;
    ann.join("room").await;
    // Swept now (in one transaction: the server's own renewal cannot come in between).
    let expired = fleet.end_lease_and_sweep(&name).await;
    assert_eq!(expired, vec![std::any::type_name::<Rooms>(), "room", "ann"]);
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
