//! The PostgreSQL backplane's own behaviours, through private PostgreSQL clusters
//! (`common::brokers`): few channels whatever the hubs and names, payloads too large for a
//! notification, equal payloads kept apart, TLS, and losing the listening connection or the
//! whole server. (Every target, ordering and client results across backplanes are the
//! conformance suite's; here one smoke test.)

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::brokers::Postgres;
use common::{eventually, within, TestServer};
use hub_runtime::backplane::{Backplane, PostgresBackplane, PostgresOptions};
use hub_runtime::prelude::*;
use hub_runtime::{ClientResultError, GroupError, HubOptions};
use serde_json::json;

#[hub_client]
pub trait FleetClient {
    fn receive(&self, message: String);
}

struct Fleet;

#[hub(client = FleetClient)]
impl Fleet {
    fn echo(&self, message: String) -> String {
        message
    }
}

/// The same hub but for the case of its name.
#[allow(clippy::upper_case_acronyms)]
struct FLEET;

#[hub(client = FleetClient)]
impl FLEET {}

mod a_module_with_a_rather_long_name_to_make_the_hub_name_long {
    use super::*;

    /// A hub whose name is far longer than a PostgreSQL channel name may be.
    pub struct AHubWhoseTypeNameAloneIsLongerThanSixtyThreeBytesWhenQualified;

    #[hub(client = FleetClient)]
    impl AHubWhoseTypeNameAloneIsLongerThanSixtyThreeBytesWhenQualified {}
}
use a_module_with_a_rather_long_name_to_make_the_hub_name_long::AHubWhoseTypeNameAloneIsLongerThanSixtyThreeBytesWhenQualified as LongHub;

fn test_options() -> PostgresOptions {
    PostgresOptions {
        group_ack_timeout: Duration::from_millis(500),
        owner_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(1000),
        connect_timeout: Duration::from_millis(1000),
        ..Default::default()
    }
}

async fn backplane_with(url: &str, options: PostgresOptions) -> PostgresBackplane {
    within("connect to PostgreSQL", PostgresBackplane::connect_with(url, options))
        .await
        .expect("postgres backplane")
}

/// A server of the three hubs on its own backplane.
async fn server_with(url: &str, options: PostgresOptions, hub_options: HubOptions) -> (TestServer, PostgresBackplane) {
    let backplane = backplane_with(url, options).await;
    let server = HubServer::builder()
        .options(hub_options)
        .backplane(backplane.clone())
        .hub("/fleet", Fleet)
        .hub("/upper", FLEET)
        .hub("/long", LongHub)
        .build();
    let server = TestServer::start(server).await;
    let listening = backplane.clone();
    // Its own channel and one per hub.
    eventually("the server listens on its hubs", || {
        listening.listening_channels().len() == 4
    })
    .await;
    (server, backplane)
}

async fn server(url: &str) -> (TestServer, PostgresBackplane) {
    server_with(url, test_options(), HubOptions::default()).await
}

/// The next `Receive` message's text.
async fn received(client: &mut common::Client) -> String {
    within("a Receive message", async {
        loop {
            let message = client.recv_skip_pings().await;
            if message["type"] == 1 && message["target"] == "Receive" {
                return message["arguments"][0].as_str().unwrap_or_default().to_string();
            }
        }
    })
    .await
}

/// Fails if a `Receive` message arrives within a short while.
async fn nothing_more(client: &mut common::Client) {
    let more = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            let message = client.recv_skip_pings().await;
            if message["type"] == 1 {
                return message;
            }
        }
    })
    .await;
    assert!(more.is_err(), "unexpected message: {more:?}");
}

#[tokio::test]
async fn smoke_every_kind_of_traffic_crosses_servers() {
    let Some(pg) = Postgres::start().await else { return };
    let (a, a_backplane) = server(&pg.url).await;
    let limited = HubOptions {
        max_groups_per_connection: 1,
        ..Default::default()
    };
    let (b, b_backplane) = server_with(&pg.url, test_options(), limited).await;
    let mut on_a = a.connect("/fleet").await;
    let mut on_b = b.connect_with_query("/fleet", "").await;
    let mut other_b = b.connect("/fleet").await;
    let b_id = on_b.connection_id.clone().unwrap();
    let other_id = other_b.connection_id.clone().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();

    // Group commands are applied by the owner; its refusal comes back.
    within("remote add", a_handle.groups.add(&b_id, "ops")).await.unwrap();
    assert_eq!(
        within("a remote add over the limit", a_handle.groups.add(&b_id, "more")).await,
        Err(GroupError::LimitReached(1))
    );
    let started = Instant::now();
    assert_eq!(
        within("a remote add for nobody", a_handle.groups.add("nobody", "ops")).await,
        Err(GroupError::UnknownConnection("nobody".into()))
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    a_handle.clients.group("ops").receive("group".into()).await.unwrap();
    assert_eq!(received(&mut on_b).await, "group");
    a_handle
        .clients
        .groups(["ops", "ops", "none"])
        .receive("groups".into())
        .await
        .unwrap();
    assert_eq!(received(&mut on_b).await, "groups");
    a_handle
        .clients
        .all_except(vec![b_id.clone()])
        .receive("all but b".into())
        .await
        .unwrap();
    assert_eq!(received(&mut on_a).await, "all but b");
    assert_eq!(received(&mut other_b).await, "all but b");
    a_handle
        .clients
        .clients(vec![b_id.clone(), b_id.clone()])
        .receive("direct".into())
        .await
        .unwrap();
    assert_eq!(received(&mut on_b).await, "direct", "each connection once");
    nothing_more(&mut on_b).await;
    nothing_more(&mut other_b).await;

    // A client result: invoked on B, the answer comes back to A.
    let asking = {
        let (handle, id) = (a_handle.clone(), other_id.clone());
        tokio::spawn(async move { handle.clients.client(id).invoke::<_, i64>("Result", &(1,)).await })
    };
    let invocation = other_b.recv_skip_pings().await;
    assert_eq!(invocation["target"], "Result");
    eventually("both servers count the result in flight", || {
        a_backplane.pending_client_results() == 1 && b_backplane.pending_client_results() == 1
    })
    .await;
    let id = invocation["invocationId"].as_str().unwrap().to_string();
    other_b
        .send(&json!({"type": 3, "invocationId": id, "result": 42}))
        .await;
    assert_eq!(within("the result", asking).await.unwrap(), Ok(42));
    eventually("nothing in flight", || {
        a_backplane.pending_client_results() == 0 && b_backplane.pending_client_results() == 0
    })
    .await;
    // Nobody owns the connection: known after the owner timeout, not the client-result one.
    let started = Instant::now();
    let missing = within(
        "a client result for nobody",
        a_handle.clients.client("nobody").invoke::<_, i64>("Result", &(1,)),
    )
    .await;
    assert!(
        matches!(missing, Err(ClientResultError::NoConnection(_))),
        "{missing:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(a_backplane.stats().failed_publishes, 0);
}

#[tokio::test]
async fn a_few_channels_per_server_whatever_the_hubs_and_their_names() {
    let Some(pg) = Postgres::start().await else { return };
    let options = PostgresOptions {
        prefix: "My_App.".into(),
        ..test_options()
    };
    let (a, a_backplane) = server_with(&pg.url, options.clone(), HubOptions::default()).await;
    let (b, b_backplane) = server_with(&pg.url, options, HubOptions::default()).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let client = b.connect_with_query("/fleet", &format!("n={i}")).await;
        let id = client.connection_id.clone().unwrap();
        b.server
            .handle::<Fleet>()
            .unwrap()
            .groups
            .add(&id, &format!("g{i}"))
            .await
            .unwrap();
        clients.push(client);
    }
    // Still the server's own channel and one per hub, the prefix's case kept.
    for backplane in [&a_backplane, &b_backplane] {
        let channels = backplane.listening_channels();
        assert_eq!(channels.len(), 4, "{channels:?}");
        assert!(channels.iter().all(|c| c.starts_with("My_App.hub_") && c.len() <= 63));
    }
    assert_ne!(a_backplane.listening_channels(), b_backplane.listening_channels());
    // Two sessions per server, however many connections.
    let sessions = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'hub backplane%'");
    assert_eq!(sessions, "4");

    // Hubs whose names differ only in case, or are long, stay apart.
    let mut upper = b.connect("/upper").await;
    let mut long = b.connect("/long").await;
    a.server
        .handle::<FLEET>()
        .unwrap()
        .clients
        .all()
        .receive("upper".into())
        .await
        .unwrap();
    a.server
        .handle::<LongHub>()
        .unwrap()
        .clients
        .all()
        .receive("long".into())
        .await
        .unwrap();
    a.server
        .handle::<Fleet>()
        .unwrap()
        .clients
        .group("g7")
        .receive("g7".into())
        .await
        .unwrap();
    assert_eq!(received(&mut upper).await, "upper");
    assert_eq!(received(&mut long).await, "long");
    assert_eq!(received(&mut clients[7]).await, "g7");
    nothing_more(&mut upper).await;
    nothing_more(&mut long).await;
    nothing_more(&mut clients[8]).await;
}

#[tokio::test]
async fn dropping_the_backplane_closes_its_sessions() {
    let Some(pg) = Postgres::start().await else { return };
    let sessions = || pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'hub backplane%'");
    let backplane = backplane_with(&pg.url, test_options()).await;
    let clone = backplane.clone();
    assert_eq!(sessions(), "2", "a listening and a publishing session");
    drop(backplane);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sessions(), "2", "a clone keeps them");
    drop(clone);
    within("the sessions close", async {
        while sessions() != "0" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn large_messages_go_through_the_table_in_order_and_old_rows_are_deleted() {
    let Some(pg) = Postgres::start().await else { return };
    let options = PostgresOptions {
        payload_retention: Duration::from_secs(3),
        ..test_options()
    };
    let (a, _) = server_with(&pg.url, options.clone(), HubOptions::default()).await;
    let (b, b_backplane) = server_with(&pg.url, options, HubOptions::default()).await;
    let mut on_b = b.connect("/fleet").await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let over_a_notification = "x".repeat(9_000);
    let over_a_megabyte: String = (0..1_200_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    for text in ["before", &over_a_notification, "between", &over_a_megabyte, "after"] {
        a_handle.clients.all().receive(text.to_string()).await.unwrap();
    }
    for text in ["before", &over_a_notification, "between", &over_a_megabyte, "after"] {
        let got = received(&mut on_b).await;
        assert!(got == text, "expected {} bytes, got {} bytes", text.len(), got.len());
    }
    let rows = || pg.psql("SELECT count(*) FROM \"hub_backplane_payloads\"");
    assert_eq!(rows(), "2", "the two large ones are stored");
    // Deleted once older than the retention, by a cleaner that runs every half of it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while rows() != "0" {
        assert!(Instant::now() < deadline, "old rows are still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b_backplane.stats().lost_messages, 0);
}

#[tokio::test]
async fn equal_messages_sent_together_both_arrive() {
    let Some(pg) = Postgres::start().await else { return };
    let (a, _) = server(&pg.url).await;
    let (b, _) = server(&pg.url).await;
    let mut on_b = b.connect("/fleet").await;
    let handle = a.server.handle::<Fleet>().unwrap();
    for _ in 0..3 {
        let (first, second) = (handle.clients.all(), handle.clients.all());
        let (one, two) = tokio::join!(first.receive("same".into()), second.receive("same".into()));
        one.unwrap();
        two.unwrap();
    }
    for _ in 0..6 {
        assert_eq!(received(&mut on_b).await, "same");
    }
    nothing_more(&mut on_b).await;
}

#[tokio::test]
async fn a_killed_listening_connection_counts_a_gap_and_listens_again() {
    let Some(pg) = Postgres::start().await else { return };
    let (a, _) = server(&pg.url).await;
    let (b, b_backplane) = server(&pg.url).await;
    let mut on_b = b.connect("/fleet").await;
    let pid = b_backplane.listener_pid().expect("listening");
    assert_eq!(pg.psql(&format!("SELECT pg_terminate_backend({pid})")), "t");
    eventually("the gap is counted", || b_backplane.stats().gaps == 1).await;
    eventually("listening again", || {
        b_backplane.listener_pid().is_some_and(|p| p != pid) && b_backplane.listening_channels().len() == 4
    })
    .await;
    a.server
        .handle::<Fleet>()
        .unwrap()
        .clients
        .all()
        .receive("again".into())
        .await
        .unwrap();
    assert_eq!(received(&mut on_b).await, "again");
    assert_eq!(b_backplane.stats().failed_publishes, 0);
}

#[tokio::test]
async fn a_listening_backend_that_stops_answering_is_replaced() {
    let Some(pg) = Postgres::start().await else { return };
    let (a, _) = server(&pg.url).await;
    let checked = PostgresOptions {
        keepalive: Duration::from_millis(200),
        response_timeout: Duration::from_millis(300),
        ..test_options()
    };
    let (b, b_backplane) = server_with(&pg.url, checked, HubOptions::default()).await;
    let mut on_b = b.connect("/fleet").await;
    let pid = b_backplane.listener_pid().expect("listening").to_string();
    // The backend process freezes: its connection stays open, nothing is answered.
    let signal = |signal: &str| Command::new("kill").args([signal, &pid]).status().map(|s| s.success());
    assert!(matches!(signal("-STOP"), Ok(true)));
    eventually("the silence is noticed", || b_backplane.stats().gaps == 1).await;
    let _ = signal("-CONT");
    eventually("listening on a new backend", || {
        b_backplane.listener_pid().is_some_and(|p| p.to_string() != pid) && b_backplane.listening_channels().len() == 4
    })
    .await;
    a.server
        .handle::<Fleet>()
        .unwrap()
        .clients
        .all()
        .receive("awake".into())
        .await
        .unwrap();
    assert_eq!(received(&mut on_b).await, "awake");
}

#[tokio::test]
async fn while_postgres_is_down_publishing_fails_fast_and_is_counted_then_resumes() {
    let Some(mut pg) = Postgres::start().await else { return };
    let (a, a_backplane) = server(&pg.url).await;
    let (b, b_backplane) = server(&pg.url).await;
    let mut on_a = a.connect("/fleet").await;
    let mut on_b = b.connect("/fleet").await;
    let handle = a.server.handle::<Fleet>().unwrap();
    pg.stop().await;
    let started = Instant::now();
    let sent = within(
        "a send while PostgreSQL is down",
        handle.clients.all().receive("local".into()),
    )
    .await;
    assert!(sent.is_err(), "the publish failed");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        received(&mut on_a).await,
        "local",
        "local delivery does not need PostgreSQL"
    );
    assert_eq!(a_backplane.stats().failed_publishes, 1);
    let started = Instant::now();
    let refused = within(
        "connect while PostgreSQL is down",
        PostgresBackplane::connect_with(&pg.url, test_options()),
    )
    .await;
    assert!(refused.is_err());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    pg.restart().await;
    eventually("B listens again", || {
        b_backplane.stats().gaps >= 1 && b_backplane.listening_channels().len() == 4
    })
    .await;
    handle.clients.all().receive("back".into()).await.unwrap();
    assert_eq!(received(&mut on_b).await, "back");
    assert_eq!(received(&mut on_a).await, "back");
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A certificate authority and a server certificate it signed for `db.example` only (rcgen), in
/// a directory the postgres user can read.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn make(name: &str) -> Certificates {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!("hub-pg-{}-tls-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("hub test CA {name}"));
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["db.example".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        // The server reads its key as the postgres user, and insists on 0600.
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        let _ = Command::new("chmod").arg("600").arg(dir.join("server.key")).status();
        Certificates { dir }
    }

    fn settings(&self) -> Vec<String> {
        vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", self.dir.join("server.crt").display()),
            format!("ssl_key_file={}", self.dir.join("server.key").display()),
        ]
    }

    fn ca(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).unwrap()
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn tls_require_encrypts_and_verify_full_checks_the_roots_and_the_name() {
    let certificates = Certificates::make("server");
    let settings = certificates.settings();
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let Some(pg) = Postgres::start_with(&settings).await else {
        return;
    };
    let port = pg.port;
    let trusted = test_options().with_tls_roots_pem(&certificates.ca()).unwrap();
    let stranger = Certificates::make("stranger");
    let untrusted = test_options().with_tls_roots_pem(&stranger.ca()).unwrap();
    let by_ip = |mode: &str| format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode={mode}");
    // The certificate names db.example: connect to that name at 127.0.0.1.
    let by_name = format!("postgres://postgres@db.example:{port}/postgres?hostaddr=127.0.0.1&sslmode=verify-full");

    // `require` encrypts without checking; the sessions are encrypted.
    let (a, _) = server_with(&by_ip("require"), test_options(), HubOptions::default()).await;
    let (b, _) = server_with(&by_name, trusted.clone(), HubOptions::default()).await;
    let encrypted = pg.psql(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.application_name LIKE 'hub backplane%'",
    );
    assert_eq!(encrypted, "4|4");
    let mut on_b = b.connect("/fleet").await;
    a.server
        .handle::<Fleet>()
        .unwrap()
        .clients
        .all()
        .receive("sealed".into())
        .await
        .unwrap();
    assert_eq!(received(&mut on_b).await, "sealed");

    // `verify-ca` checks the issuer only; `verify-full` the name too; either refuses another CA.
    let connect = |url: String, options: PostgresOptions| async move {
        within("connect", PostgresBackplane::connect_with(&url, options))
            .await
            .map(|_| ())
    };
    assert!(connect(by_ip("verify-ca"), trusted.clone()).await.is_ok());
    let wrong_name = connect(by_ip("verify-full"), trusted.clone()).await;
    assert!(wrong_name.is_err(), "127.0.0.1 is not in the certificate");
    assert!(connect(by_ip("verify-ca"), untrusted.clone()).await.is_err());
    assert!(connect(by_name.clone(), untrusted).await.is_err());
    let no_roots = connect(by_name, test_options()).await;
    assert!(
        matches!(&no_roots, Err(e) if e.to_string().contains("tls_roots")),
        "{no_roots:?}"
    );
}
