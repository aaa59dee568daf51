//! The NATS backplane's own behaviours, with several servers on a real `nats-server` of the
//! test's own (`common::brokers::Nats`; skipped when nats-server is missing, a failure under
//! `CI=true`): subject encoding of awkward names, requests that fail at once when no server
//! owns the connection, joins heard at once, broker restarts, slow consumers, authentication
//! and TLS. The behaviours every backplane shares are in the conformance suite.

mod common;

use std::time::{Duration, Instant};

use common::brokers::Nats;
use common::{within, TestServer};
use futures_util::StreamExt;
use hub_runtime::backplane::{Backplane, ClientCertificate, NatsAuth, NatsBackplane, NatsOptions, NatsTls};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, ClientResultError, EndpointOptions, GroupError, HubOptions, Identity, RequestContext};
use serde_json::json;

#[hub_client]
trait FleetClient {
    fn receive(&self, message: String);
}

struct Fleet;

#[hub(client = FleetClient)]
impl Fleet {
    fn echo(&self, message: String) -> String {
        message
    }
}

fn test_options() -> NatsOptions {
    NatsOptions {
        group_ack_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

async fn backplane_with(url: &str, options: NatsOptions) -> NatsBackplane {
    within("connect to NATS", NatsBackplane::connect_with(url, options))
        .await
        .expect("nats backplane")
}

/// A server of `Fleet` (users from `?user=`) on its own backplane.
async fn fleet_server_with(backplane: NatsBackplane, options: HubOptions) -> TestServer {
    let by_query =
        |req: &RequestContext| -> Result<Option<Identity>, AuthError> { Ok(req.query("user").map(Identity::user)) };
    let server = HubServer::builder()
        .options(options)
        .backplane(backplane)
        .hub_with("/fleet", Fleet, EndpointOptions::new().authenticator(by_query))
        .build();
    TestServer::start(server).await
}

async fn fleet_server(url: &str) -> (TestServer, NatsBackplane) {
    let backplane = backplane_with(url, test_options()).await;
    (
        fleet_server_with(backplane.clone(), HubOptions::default()).await,
        backplane,
    )
}

/// Waits for the next `Receive` message.
async fn received(client: &mut common::Client) -> String {
    loop {
        let message = client.recv_skip_pings().await;
        if message["type"] == 1 && message["target"] == "Receive" {
            return message["arguments"][0].as_str().unwrap().to_string();
        }
    }
}

async fn expect_received(client: &mut common::Client, text: &str) {
    assert_eq!(within("a message from the other server", received(client)).await, text);
}

/// Expects nothing for a moment.
async fn expect_nothing(client: &mut common::Client) {
    let next = tokio::time::timeout(Duration::from_millis(300), received(client)).await;
    assert!(next.is_err(), "unexpected message: {next:?}");
}

/// Names that a naive subject would break (or make too long).
fn awkward_names() -> Vec<String> {
    let mut names: Vec<String> = ["a.b", "*", ">", "g.*.>", "two words", "", "ünï cødé ✓", "tab\there"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.push("long.".repeat(200));
    names.push(format!("{}!", "long.".repeat(200)));
    names
}

#[tokio::test]
async fn awkward_group_and_user_names_cross_servers() {
    let Some(nats) = Nats::start().await else { return };
    let (a, _) = fleet_server(&nats.url).await;
    let (b, _) = fleet_server(&nats.url).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let b_handle = b.server.handle::<Fleet>().unwrap();
    let names = awkward_names();
    let mut members = Vec::new();
    for name in &names {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("user", name)
            .finish();
        let client = b.connect_with_query("/fleet", &query).await;
        let id = client.connection_id.clone().unwrap();
        within("join", b_handle.groups.add(&id, name)).await.unwrap();
        members.push(client);
    }
    for (name, member) in names.iter().zip(&mut members) {
        a_handle
            .clients
            .group(name.clone())
            .receive(format!("group {name}"))
            .await
            .unwrap();
        expect_received(member, &format!("group {name}")).await;
        a_handle
            .clients
            .user(name.clone())
            .receive(format!("user {name}"))
            .await
            .unwrap();
        expect_received(member, &format!("user {name}")).await;
    }
    // Each got exactly its own: the two long names (hashed) did not mix either.
    for member in &mut members {
        expect_nothing(member).await;
    }
}

#[tokio::test]
async fn a_payload_naming_another_group_is_dropped() {
    let Some(nats) = Nats::start().await else { return };
    let (a, _) = fleet_server(&nats.url).await;
    let (b, _) = fleet_server(&nats.url).await;
    let mut member = b.connect("/fleet").await;
    let id = member.connection_id.clone().unwrap();
    let b_handle = b.server.handle::<Fleet>().unwrap();
    b_handle.groups.add(&id, "mine").await.unwrap();
    // Capture what A publishes for the group, as a third NATS client.
    let spy = async_nats::connect(nats.url.as_str()).await.unwrap();
    let mut captured = spy.subscribe("hub.>").await.unwrap();
    round_trip(&spy).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    a_handle.clients.group("mine").receive("real".into()).await.unwrap();
    expect_received(&mut member, "real").await;
    let original = within("the captured message", captured.next()).await.unwrap();
    // The same payload, claiming another name (as a hash collision would), on the same subject.
    let renamed = rename(&original.payload, "mine", "mint");
    assert_ne!(renamed, original.payload.to_vec());
    spy.publish(original.subject.clone(), renamed.into()).await.unwrap();
    spy.publish(original.subject.clone(), original.payload.clone())
        .await
        .unwrap();
    round_trip(&spy).await;
    // Only the copy with the right name arrives.
    expect_received(&mut member, "real").await;
    expect_nothing(&mut member).await;
}

/// Waits until nats-server processed what `client` sent so far (`flush` only writes to the
/// socket): a request nobody answers comes back "no responders" after the rest.
async fn round_trip(client: &async_nats::Client) {
    let answer = within("a round trip", client.request("nobody.listens", "".into())).await;
    assert!(answer.is_err_and(|e| e.kind() == async_nats::RequestErrorKind::NoResponders));
}

/// `payload` with its MessagePack string `from` (the frame's name) replaced by `to`, same length.
fn rename(payload: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = payload.to_vec();
    let at = out
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("the frame names its group");
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

#[tokio::test]
async fn requests_for_a_connection_nobody_owns_fail_at_once() {
    let Some(nats) = Nats::start().await else { return };
    let options = NatsOptions {
        group_ack_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let a = fleet_server_with(backplane_with(&nats.url, options).await, HubOptions::default()).await;
    let (_b, _) = fleet_server(&nats.url).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let started = Instant::now();
    let missing = within("remote add of a missing connection", a_handle.groups.add("nobody", "g")).await;
    assert_eq!(missing, Err(GroupError::UnknownConnection("nobody".into())));
    let result = within(
        "client result from a missing connection",
        a_handle.clients.client("nobody").invoke::<_, i64>("Result", &(1,)),
    )
    .await;
    assert_eq!(result, Err(ClientResultError::NoConnection("nobody".into())));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}: no responders must be known at once",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_is_heard_at_once_by_other_servers() {
    let Some(nats) = Nats::start().await else { return };
    let (a, _) = fleet_server(&nats.url).await;
    let (b, _) = fleet_server(&nats.url).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let b_handle = b.server.handle::<Fleet>().unwrap();
    let mut member = b.connect("/fleet").await;
    let id = member.connection_id.clone().unwrap();
    for i in 0..100 {
        let group = format!("fresh {i}");
        // No sleep: once the join resolved, B's server has the interest.
        b_handle.groups.add(&id, &group).await.unwrap();
        a_handle
            .clients
            .group(group.clone())
            .receive(group.clone())
            .await
            .unwrap();
        expect_received(&mut member, &group).await;
    }
}

#[tokio::test]
async fn groups_refusals_and_client_results_cross_servers() {
    let Some(nats) = Nats::start().await else { return };
    let (a, a_backplane) = fleet_server(&nats.url).await;
    let b_backplane = backplane_with(&nats.url, test_options()).await;
    let limited = HubOptions {
        max_groups_per_connection: 1,
        ..Default::default()
    };
    let b = fleet_server_with(b_backplane.clone(), limited).await;
    let mut on_b = b.connect("/fleet").await;
    let b_id = on_b.connection_id.clone().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    within("remote add", a_handle.groups.add(&b_id, "one")).await.unwrap();
    assert_eq!(
        within("remote add past the limit", a_handle.groups.add(&b_id, "two")).await,
        Err(GroupError::LimitReached(1))
    );
    a_handle.clients.group("one").receive("to one".into()).await.unwrap();
    expect_received(&mut on_b, "to one").await;
    within("remote remove", a_handle.groups.remove(&b_id, "one"))
        .await
        .unwrap();
    a_handle.clients.group("one").receive("gone".into()).await.unwrap();
    expect_nothing(&mut on_b).await;

    let asking = {
        let (a_handle, b_id) = (a_handle.clone(), b_id.clone());
        tokio::spawn(async move { a_handle.clients.client(b_id).invoke::<_, i64>("Result", &(1,)).await })
    };
    let invocation = on_b.recv_skip_pings().await;
    assert_eq!(invocation["target"], "Result");
    common::eventually("the result is pending on both servers", || {
        a_backplane.pending_client_results() == 1 && b_backplane.pending_client_results() == 1
    })
    .await;
    let id = invocation["invocationId"].as_str().unwrap().to_string();
    on_b.send(&json!({"type": 3, "invocationId": id, "result": 42})).await;
    assert_eq!(within("the result", asking).await.unwrap(), Ok(42));
    common::eventually("nothing pending", || {
        a_backplane.pending_client_results() == 0 && b_backplane.pending_client_results() == 0
    })
    .await;
}

#[tokio::test]
async fn a_message_larger_than_max_payload_arrives_whole() {
    let Some(nats) = Nats::start().await else { return };
    let (a, a_backplane) = fleet_server(&nats.url).await;
    let (b, _) = fleet_server(&nats.url).await;
    let mut on_b = b.connect("/fleet").await;
    let id = on_b.connection_id.clone().unwrap();
    b.server
        .handle::<Fleet>()
        .unwrap()
        .groups
        .add(&id, "big")
        .await
        .unwrap();
    assert_eq!(a_backplane.max_payload(), 1024 * 1024, "a default nats-server");
    let large: String = (0..3 * 1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    a_handle.clients.group("big").receive(large.clone()).await.unwrap();
    a_handle.clients.client(id).receive("after".into()).await.unwrap();
    assert!(within("the large message", received(&mut on_b)).await == large);
    expect_received(&mut on_b, "after").await;
    assert_eq!(a_backplane.stats().failed_publishes, 0);
}

#[tokio::test]
async fn a_broker_restart_is_a_gap_and_delivery_resumes() {
    let Some(mut nats) = Nats::start().await else { return };
    let (a, a_backplane) = fleet_server(&nats.url).await;
    let (b, b_backplane) = fleet_server(&nats.url).await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    let b_handle = b.server.handle::<Fleet>().unwrap();
    let mut on_b = b.connect("/fleet").await;
    let id = on_b.connection_id.clone().unwrap();
    b_handle.groups.add(&id, "before").await.unwrap();
    nats.stop().await;
    common::eventually("the disconnect is counted as a gap", || {
        b_backplane.stats().gaps >= 1 && a_backplane.stats().gaps >= 1
    })
    .await;
    // Local delivery goes on, and a publish for the fleet fails at once (counted).
    let started = Instant::now();
    let sent = b_handle.clients.all().receive("local".into()).await;
    assert!(sent.is_err(), "the backplane part failed");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    expect_received(&mut on_b, "local").await;
    assert!(b_backplane.stats().failed_publishes >= 1);
    assert_eq!(
        within("a call while NATS is down", on_b.call_ok("Echo", json!(["still here"]))).await,
        "still here"
    );
    // A join meanwhile resolves without waiting for NATS.
    within("join while NATS is down", b_handle.groups.add(&id, "meanwhile"))
        .await
        .unwrap();
    nats.restart().await;
    // The clients reconnect by themselves and subscribe again.
    let deadline = Instant::now() + Duration::from_secs(20);
    for group in ["before", "meanwhile"] {
        loop {
            let _ = a_handle.clients.group(group).receive(group.into()).await;
            if let Ok(text) = tokio::time::timeout(Duration::from_millis(300), received(&mut on_b)).await {
                assert_eq!(text, group);
                break;
            }
            assert!(Instant::now() < deadline, "group '{group}' was never heard again");
        }
    }
    a_handle.clients.client(id).receive("direct".into()).await.unwrap();
    expect_received(&mut on_b, "direct").await;
}

#[tokio::test]
async fn a_slow_consumer_drop_is_counted() {
    let Some(nats) = Nats::start().await else { return };
    let (a, _) = fleet_server(&nats.url).await;
    let tiny = NatsOptions {
        subscription_capacity: 1,
        ..test_options()
    };
    let b_backplane = backplane_with(&nats.url, tiny).await;
    let b = fleet_server_with(b_backplane.clone(), HubOptions::default()).await;
    let _on_b = b.connect("/fleet").await;
    let a_handle = a.server.handle::<Fleet>().unwrap();
    within("a flood", async {
        for i in 0..5_000 {
            a_handle.clients.all().receive(format!("flood {i}")).await.unwrap();
        }
    })
    .await;
    common::eventually("dropped messages are counted", || b_backplane.stats().lost_messages > 0).await;
}

#[tokio::test]
async fn a_user_and_password_are_checked() {
    let Some(nats) = Nats::start_with(&["--user", "hub", "--pass", "s3cret"]).await else {
        return;
    };
    let with = |password: &str| NatsOptions {
        auth: NatsAuth::UserPassword {
            user: "hub".into(),
            password: password.into(),
        },
        ..test_options()
    };
    let refused = within(
        "a wrong password",
        NatsBackplane::connect_with(&nats.url, with("wrong")),
    )
    .await;
    assert!(refused.is_err(), "a wrong password is refused");
    let refused = within("no password", NatsBackplane::connect_with(&nats.url, test_options())).await;
    assert!(refused.is_err(), "no credentials are refused");
    let a = fleet_server_with(backplane_with(&nats.url, with("s3cret")).await, HubOptions::default()).await;
    let b = fleet_server_with(backplane_with(&nats.url, with("s3cret")).await, HubOptions::default()).await;
    smoke(&a, &b).await;
}

/// A message from `a` reaches a connection of `b`.
async fn smoke(a: &TestServer, b: &TestServer) {
    let mut on_b = b.connect("/fleet").await;
    let id = on_b.connection_id.clone().unwrap();
    let a_handle = a.server.handle::<Fleet>().unwrap();
    a_handle.clients.client(id).receive("across".into()).await.unwrap();
    expect_received(&mut on_b, "across").await;
}

/// A self-signed certificate for 127.0.0.1 in a fresh directory: (cert.pem, key.pem).
fn self_signed() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("hub-nats-tls-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn tls_with_a_trusted_certificate() {
    let (cert, key) = self_signed();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let Some(nats) = Nats::start_with(&["--tls", "--tlscert", &cert_arg, "--tlskey", &key_arg]).await else {
        return;
    };
    let trusting = || NatsOptions {
        tls: NatsTls {
            required: true,
            root_certificates: vec![cert.clone()],
            client_certificate: None,
        },
        ..test_options()
    };
    let untrusted = within(
        "an untrusted certificate",
        NatsBackplane::connect_with(&nats.url, test_options()),
    )
    .await;
    assert!(untrusted.is_err(), "a certificate no root vouches for is refused");
    let a = fleet_server_with(backplane_with(&nats.url, trusting()).await, HubOptions::default()).await;
    let b = fleet_server_with(backplane_with(&nats.url, trusting()).await, HubOptions::default()).await;
    smoke(&a, &b).await;
    // A plain server is refused when TLS is required.
    let Some(plain) = Nats::start().await else { return };
    let required = within("TLS required", NatsBackplane::connect_with(&plain.url, trusting())).await;
    assert!(
        required.is_err(),
        "a server without TLS is refused when TLS is required"
    );
    let _ = std::fs::remove_dir_all(cert.parent().unwrap());
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_a_verifying_server() {
    let (cert, key) = self_signed();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let args = [
        "--tlsverify",
        "--tlscert",
        &cert_arg,
        "--tlskey",
        &key_arg,
        "--tlscacert",
        &cert_arg,
    ];
    let Some(nats) = Nats::start_with(&args).await else {
        return;
    };
    let tls = |client_certificate: Option<ClientCertificate>| NatsOptions {
        tls: NatsTls {
            required: true,
            root_certificates: vec![cert.clone()],
            client_certificate,
        },
        ..test_options()
    };
    let anonymous = within(
        "no client certificate",
        NatsBackplane::connect_with(&nats.url, tls(None)),
    )
    .await;
    assert!(anonymous.is_err(), "the server wants a client certificate");
    let mine = || {
        Some(ClientCertificate {
            certificate: cert.clone(),
            key: key.clone(),
        })
    };
    let a = fleet_server_with(backplane_with(&nats.url, tls(mine())).await, HubOptions::default()).await;
    let b = fleet_server_with(backplane_with(&nats.url, tls(mine())).await, HubOptions::default()).await;
    smoke(&a, &b).await;
    let _ = std::fs::remove_dir_all(cert.parent().unwrap());
}

#[tokio::test]
async fn a_bad_prefix_is_refused_and_a_custom_one_is_used() {
    let Some(nats) = Nats::start().await else { return };
    let bad = NatsOptions {
        prefix: "a.*".into(),
        ..test_options()
    };
    assert!(NatsBackplane::connect_with(&nats.url, bad).await.is_err());
    let custom = || NatsOptions {
        prefix: "app.realtime".into(),
        ..test_options()
    };
    let spy = async_nats::connect(nats.url.as_str()).await.unwrap();
    let mut captured = spy.subscribe("app.realtime.>").await.unwrap();
    round_trip(&spy).await;
    let a = fleet_server_with(backplane_with(&nats.url, custom()).await, HubOptions::default()).await;
    let b = fleet_server_with(backplane_with(&nats.url, custom()).await, HubOptions::default()).await;
    smoke(&a, &b).await;
    let message = within("a message under the prefix", captured.next()).await.unwrap();
    assert!(message.subject.starts_with("app.realtime."), "{}", message.subject);
}
