//! Presence across servers on one real PostgreSQL cluster (tests/common/brokers.rs starts one
//! per test): the shared cases (`presence_support/cases.rs`) on `PostgresPresence`.

#[path = "presence_support/cases.rs"]
mod cases;
mod common;
mod presence_support;

use std::time::Duration;

use cases::{Detached, Fleet};
use common::brokers::Postgres;
use common::{within, TestServer};
use hub_runtime::backplane::{PostgresBackplane, PostgresOptions};
use hub_runtime::presence::{PostgresPresence, PostgresPresenceOptions};
use hub_runtime::HubServer;
use presence_support::with_rooms;

struct PostgresFleet {
    postgres: Postgres,
}

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

async fn start(url: &str, presence: PostgresPresence) -> TestServer {
    let backplane = within(
        "connect the backplane",
        PostgresBackplane::connect_with(url, connection()),
    )
    .await
    .expect("a backplane");
    TestServer::start(with_rooms(HubServer::builder().backplane(backplane).presence(presence))).await
}

/// The rows psql printed (unaligned, `|` between columns), the columns one after another.
fn cells(out: &str) -> Vec<String> {
    out.lines()
        .filter(|line| !line.is_empty())
        .flat_map(|line| line.split('|').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

impl Fleet for PostgresFleet {
    type Store = PostgresPresence;

    async fn store(&self, ttl: Duration) -> PostgresPresence {
        store(&self.postgres.url, ttl).await
    }

    async fn start(&self, presence: PostgresPresence) -> TestServer {
        start(&self.postgres.url, presence).await
    }

    fn detached(&self) -> Detached {
        let url = self.postgres.url.clone();
        Box::new(move || Box::pin(async move { start(&url, store(&url, cases::TTL).await).await }))
    }

    fn server_name(store: &PostgresPresence) -> String {
        store.server_name().to_string()
    }

    async fn info_users(&self) -> Vec<String> {
        cells(
            &self
                .postgres
                .psql("SELECT user_id FROM hub_presence_counts WHERE grp = 'room' AND info IS NOT NULL ORDER BY 1"),
        )
    }

    async fn leaseholders(&self) -> Vec<String> {
        cells(&self.postgres.psql("SELECT server FROM hub_presence_servers ORDER BY 1"))
    }

    async fn end_lease(&self, server: &str) {
        self.postgres.psql(&format!(
            "UPDATE hub_presence_servers SET lease_until = now() - interval '1 second' WHERE server = '{server}'"
        ));
    }

    async fn end_lease_and_sweep(&self, server: &str) -> Vec<String> {
        // psql runs the statements of one -c in one transaction; the UPDATE's status line has no
        // `|`, the sweep's rows do.
        let out = self.postgres.psql(&format!(
            "UPDATE hub_presence_servers SET lease_until = now() - interval '1 second' \
             WHERE server = '{server}'; SELECT hub, grp, user_id FROM hub_presence_sweep(16)"
        ));
        let rows: Vec<&str> = out.lines().filter(|line| line.contains('|')).collect();
        cells(&rows.join("\n"))
    }
}

macro_rules! case {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let Some(postgres) = Postgres::start().await else {
                return;
            };
            cases::$name(&PostgresFleet { postgres }).await;
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

/// The store's backend freezes (its connection stays open, nothing is answered): the statement
/// under way times out, and the next one runs on a new connection instead of timing out too.
#[tokio::test]
async fn a_store_connection_that_stops_answering_is_replaced() {
    use hub_runtime::presence::{GroupEntry, PresenceStore};

    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let options = PostgresPresenceOptions {
        ttl: cases::TTL,
        connection: PostgresOptions {
            response_timeout: Duration::from_millis(500),
            ..connection()
        },
    };
    let presence = within(
        "connect the presence store",
        PostgresPresence::connect_with(&postgres.url, options),
    )
    .await
    .expect("a presence store");
    let entry = |connection: &str| GroupEntry {
        hub: "Rooms".into(),
        group: "room".into(),
        user: format!("user-{connection}"),
        connection: connection.into(),
        info: None,
    };
    assert!(presence.join(&entry("c1")).await.expect("a join").first);
    let pids = cells(&postgres.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'hub presence'"));
    assert_eq!(pids.len(), 1, "one store connection: {pids:?}");
    let signal = |signal: &str| {
        std::process::Command::new("kill")
            .args([signal, &pids[0]])
            .status()
            .map(|s| s.success())
    };
    assert!(matches!(signal("-STOP"), Ok(true)));
    let frozen = presence.join(&entry("c2")).await;
    let next = within("a join on a new connection", presence.join(&entry("c3"))).await;
    let _ = signal("-CONT");
    assert!(frozen.is_err(), "the frozen backend answered: {frozen:?}");
    assert!(next.expect("the join after the timeout").first);
}
