//! The scale-out scenario against real servers: hub-runtime servers in this process joined
//! through a private redis-server (the broker the scenario starts), or not joined at all.

use std::net::SocketAddr;

use hub_runtime::backplane::RedisBackplane;
use hub_runtime::prelude::*;
use tokio::sync::oneshot;

use super::*;
use crate::scaleout_listen::{Arrival, Seen, Stamp};

#[hub_client]
pub(crate) trait Receiver {
    fn receive(&self, message: String);
}

/// `SendToAll` as the interop example's BroadcastHub has it.
pub(crate) struct Fanout;

#[hub(client = Receiver)]
impl Fanout {
    async fn send_to_all(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.all().receive(message).await?)
    }
}

/// A broken fan-out: every message twice.
struct Twice;

#[hub(client = Receiver)]
impl Twice {
    async fn send_to_all(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        cx.clients.all().receive(message.clone()).await?;
        Ok(cx.clients.all().receive(message).await?)
    }
}

pub(crate) async fn serve(server: HubServer) -> (SocketAddr, oneshot::Sender<()>) {
    let (listener, addr) = hub_runtime::server::bind("127.0.0.1:0").await.expect("bind");
    let routes = server.filter();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve_with(listener, routes, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A private redis-server, or `None` (the test is skipped) when it is not installed — except
/// under `CI=true`, where a missing broker fails the test.
pub(crate) async fn redis() -> Option<Broker> {
    let dir = std::env::temp_dir().join(format!("hub-bench-test-{}", std::process::id()));
    match Broker::start(Backplane::Redis, &dir, "test").await {
        Ok(broker) => Some(broker),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!("{e}"),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

fn plan(servers: usize) -> Plan {
    Plan {
        backplanes: vec![Backplane::Redis],
        servers,
        listeners: 20,
        rate: 50.0,
        payload: 32,
        duration: Duration::from_millis(600),
        warmup: Duration::from_millis(200),
        join_timeout: Duration::from_secs(3),
        proto: Proto::Json,
        rounds: 1,
        negotiate: true,
        open_concurrency: 8,
        sources: vec![Ipv4Addr::LOCALHOST],
    }
}

fn cluster<'a>(addrs: Vec<SocketAddr>, broker: &'a Broker) -> Cluster<'a> {
    Cluster {
        server_pids: vec![std::process::id(); addrs.len()],
        addrs,
        broker,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_joined_through_redis_deliver_every_message_once_in_order() {
    let Some(broker) = redis().await else { return };
    let mut addrs = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let backplane = RedisBackplane::connect(&broker.url).await.expect("join redis");
        let (addr, stop) = serve(
            HubServer::builder()
                .backplane(backplane)
                .hub("/broadcast", Fanout)
                .build(),
        )
        .await;
        addrs.push(addr);
        stops.push(stop);
    }
    let (sample, error) = measure(&plan(2), &cluster(addrs, &broker)).await.expect("measured");
    assert_eq!(error, None);
    let get = |name: &str| sample.get(name).unwrap_or(f64::NAN);
    assert!(get("sent") >= 25.0, "{sample:?}");
    assert_eq!(get("delivered_pct"), 100.0, "{sample:?}");
    assert_eq!((get("duplicates"), get("out_of_order"), get("errors")), (0.0, 0.0, 0.0));
    assert!(get("latency_p99_ms") > 0.0 && get("latency_p50_ms") <= get("latency_p99_ms"));
    // The broker did some work for the deliveries, and the figure is per delivery.
    assert!(get("broker_cpu_us_per_delivery") >= 0.0, "{sample:?}");
    assert!(get("server_cpu_us_per_delivery") > 0.0, "{sample:?}");
    broker.stop(&std::env::temp_dir()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_not_joined_fail_before_the_window() {
    let Some(broker) = redis().await else { return };
    let mut addrs = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let (addr, stop) = serve(HubServer::builder().hub("/broadcast", Fanout).build()).await;
        addrs.push(addr);
        stops.push(stop);
    }
    let error = measure(&plan(2), &cluster(addrs, &broker))
        .await
        .expect_err("half the listeners never receive anything");
    assert!(error.contains("only 10 of 20 listeners"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_counted_and_not_delivered_twice() {
    let Some(broker) = redis().await else { return };
    let (addr, _stop) = serve(HubServer::builder().hub("/broadcast", Twice).build()).await;
    let (sample, _) = measure(&plan(1), &cluster(vec![addr], &broker))
        .await
        .expect("measured");
    let get = |name: &str| sample.get(name).unwrap_or(f64::NAN);
    assert_eq!(get("delivered_pct"), 100.0, "{sample:?}");
    assert!(get("duplicates") >= get("sent") * 20.0, "{sample:?}");
}

#[test]
fn listeners_spread_evenly() {
    assert_eq!(shares(3000, 3), vec![1000, 1000, 1000]);
    assert_eq!(shares(10, 3), vec![4, 3, 3]);
    assert_eq!(shares(2, 3), vec![1, 1, 0]);
}

#[test]
fn stamps_fill_the_payload_and_read_back() {
    let text = stamp_text(7, 32);
    assert_eq!(text.len(), 32);
    assert_eq!(Stamp::parse(&text).map(|s| s.seq), Some(7));
    assert!(stamp_text(123_456, 4).starts_with("123456;"));
    assert_eq!(Stamp::parse("hello"), None);
    assert_eq!(Stamp::parse("1;x"), None);
}

#[test]
fn seen_tells_in_order_late_and_duplicate() {
    let mut seen = Seen::default();
    assert!(seen.is_empty());
    assert_eq!(seen.note(1), Arrival::InOrder);
    assert_eq!(seen.note(3), Arrival::InOrder);
    assert_eq!(seen.note(2), Arrival::Late);
    assert_eq!(seen.note(3), Arrival::Duplicate);
    assert_eq!(seen.note(200), Arrival::InOrder);
    assert_eq!(seen.note(2), Arrival::Duplicate);
    assert!(!seen.is_empty());
}

fn receive(argument: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Proto::Json.write_invocation(&mut out, None, "Receive", argument);
    out
}

#[test]
fn the_tally_counts_only_measured_messages_and_bounds_sequence_numbers() {
    let tally = Tally::new(Proto::Json);
    tally.last_sent.store(5, Ordering::Relaxed);
    let mut seen = Seen::default();
    // Before the window: counted as joined, not as delivered.
    tally.take(&receive("1;0;x"), 0, &mut seen);
    assert_eq!(tally.ready.load(Ordering::Relaxed), 1);
    assert_eq!(tally.delivered.load(Ordering::Relaxed), 0);
    tally.first_measured.store(2, Ordering::Relaxed);
    let mut frame = receive("2;0;x");
    frame.extend(receive("4;0;x"));
    frame.extend(receive("3;0;x"));
    frame.extend(receive("4;0;x"));
    // Not sent (yet): not ours.
    frame.extend(receive("6;0;x"));
    frame.extend(receive("no stamp"));
    tally.take(&frame, 0, &mut seen);
    assert_eq!(tally.ready.load(Ordering::Relaxed), 1, "one listener");
    assert_eq!(tally.delivered.load(Ordering::Relaxed), 3);
    assert_eq!(tally.out_of_order.load(Ordering::Relaxed), 1);
    assert_eq!(tally.duplicates.load(Ordering::Relaxed), 1);
    assert_eq!(tally.malformed.load(Ordering::Relaxed), 2);
    assert_eq!(tally.latencies.merged().len(), 3);
}
