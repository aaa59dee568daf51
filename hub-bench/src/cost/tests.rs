//! The feature-cost scenarios against the real bench hub server (in this process) on a
//! private redis-server.

use tokio::sync::oneshot;

use super::*;
use crate::bench_server;

fn parse_args(args: &[&str]) -> Result<Option<Plan>, String> {
    parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn parses_each_scenario_with_its_defaults_and_options() {
    assert!(parse_args(&["--scenario", "echo"]).expect("parsed").is_none());
    let plan = parse_args(&["--scenario", "presence"])
        .expect("parsed")
        .expect("a plan");
    assert_eq!(plan.feature, Feature::Presence);
    assert_eq!(
        (plan.connections, plan.per_user, plan.groups, plan.rounds),
        (1000, 4, 10, 3)
    );
    let plan = parse_args(&["--scenario", "presence", "-n", "40", "--per-user", "2", "--groups", "3"])
        .expect("parsed")
        .expect("a plan");
    assert_eq!((plan.connections, plan.per_user, plan.groups), (40, 2, 3));
    assert_eq!(plan.modes(), [Mode::PresenceOn, Mode::PresenceOff]);
    let plan = parse_args(&["--scenario", "presence", "--no-events"])
        .expect("parsed")
        .expect("a plan");
    assert_eq!(plan.modes(), [Mode::PresenceQuiet, Mode::PresenceOff]);
    let plan = parse_args(&["--scenario", "history"]).expect("parsed").expect("a plan");
    assert_eq!(plan.feature, Feature::History);
    assert_eq!(
        (plan.connections, plan.senders, plan.window, plan.rate),
        (100, 4, 8, 0.0)
    );
    let plan = parse_args(&[
        "--scenario",
        "history",
        "--senders",
        "2",
        "--window",
        "3",
        "--rate",
        "500",
        "--duration",
        "2",
        "--protocol",
        "messagepack",
    ])
    .expect("parsed")
    .expect("a plan");
    assert_eq!((plan.senders, plan.window, plan.rate), (2, 3, 500.0));
    assert_eq!(
        (plan.duration, plan.proto),
        (Duration::from_secs(2), Proto::MessagePack)
    );
    // Options of the other scenario, or of none, are refused.
    assert!(parse_args(&["--scenario", "presence", "--senders", "2"]).is_err());
    assert!(parse_args(&["--scenario", "history", "--groups", "2"]).is_err());
    assert!(parse_args(&["--scenario", "history", "--no-events"]).is_err());
    assert!(parse_args(&["--scenario", "history", "--backplane", "nats"]).is_err());
}

/// A private redis-server, or `None` (the test is skipped) when it is not installed — except
/// under `CI=true`, where a missing broker fails the test.
async fn redis() -> Option<Broker> {
    let dir = std::env::temp_dir().join(format!("hub-bench-cost-test-{}", std::process::id()));
    match Broker::start(Backplane::Redis, &dir, "cost-test").await {
        Ok(broker) => Some(broker),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!("{e}"),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

/// Serves the bench hubs on `broker` in this process until the sender is dropped.
async fn bench_server(broker: &Broker) -> (SocketAddr, oneshot::Sender<()>) {
    let server = bench_server::build(&broker.url).await.expect("the bench server");
    let (listener, addr) = hub_runtime::server::bind("127.0.0.1:0").await.expect("bind");
    let routes = server.filter();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve_with(listener, routes, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn small(feature: Feature) -> Plan {
    let mut plan = parse_args(&["--scenario", feature.name()])
        .expect("parsed")
        .expect("a plan");
    plan.connections = 12;
    plan.per_user = 3;
    plan.groups = 2;
    plan.senders = 2;
    plan.window = 2;
    plan.duration = Duration::from_millis(500);
    plan.warmup = Duration::from_millis(100);
    plan.open_concurrency = 8;
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_on_sends_join_events_and_off_sends_none() {
    let Some(broker) = redis().await else { return };
    let (addr, _stop) = bench_server(&broker).await;
    let plan = small(Feature::Presence);
    let target = Measured {
        addr,
        server_pid: std::process::id(),
        broker: &broker,
    };
    let g = |s: &Sample, n: &str| s.get(n).unwrap_or_else(|| panic!("{n} measured"));
    let (on, error) = cost_presence::measure(&plan, Mode::PresenceOn, &target)
        .await
        .expect("measured");
    assert_eq!(g(&on, "errors"), 0.0, "{error:?}");
    assert!(g(&on, "joins_per_s") > 0.0 && g(&on, "leaves_per_s") > 0.0);
    assert!(g(&on, "join_p99_ms") >= g(&on, "join_p50_ms"));
    // Each of the 4 users' first connection gets its own Joined at least.
    assert!(g(&on, "joined_events") >= 4.0, "{on:?}");
    let (off, error) = cost_presence::measure(&plan, Mode::PresenceOff, &target)
        .await
        .expect("measured");
    assert_eq!(g(&off, "errors"), 0.0, "{error:?}");
    assert_eq!((g(&off, "joined_events"), g(&off, "left_events")), (0.0, 0.0));
    assert!(g(&off, "joins_per_s") > 0.0 && g(&off, "leaves_per_s") > 0.0);
    // Presence without events: joins and leaves go through the store, nobody is told.
    let (quiet, error) = cost_presence::measure(&plan, Mode::PresenceQuiet, &target)
        .await
        .expect("measured");
    assert_eq!(g(&quiet, "errors"), 0.0, "{error:?}");
    assert_eq!((g(&quiet, "joined_events"), g(&quiet, "left_events")), (0.0, 0.0));
    broker.stop(&std::env::temp_dir()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_delivers_every_message_durable_and_plain() {
    let Some(broker) = redis().await else { return };
    let (addr, _stop) = bench_server(&broker).await;
    let target = Measured {
        addr,
        server_pid: std::process::id(),
        broker: &broker,
    };
    for proto in [Proto::Json, Proto::MessagePack] {
        let plan = Plan {
            proto,
            ..small(Feature::History)
        };
        for mode in [Mode::Durable, Mode::Plain] {
            let (s, error) = cost_history::measure(&plan, mode, &target).await.expect("measured");
            let g = |n: &str| s.get(n).unwrap_or_else(|| panic!("{n} measured"));
            assert_eq!(g("errors"), 0.0, "{} {}: {error:?} {s:?}", proto.name(), mode.name());
            assert_eq!(g("delivered_pct"), 100.0, "{s:?}");
            assert!(g("published_per_s") > 0.0 && g("sent") > 0.0, "{s:?}");
            assert!(g("deliveries_per_s") > 0.0 && g("latency_p99_ms") > 0.0, "{s:?}");
        }
    }
    // Paced: the deliveries' rate is the window's (the senders' wind-down is not counted).
    let plan = Plan {
        rate: 200.0,
        duration: Duration::from_secs(1),
        ..small(Feature::History)
    };
    let (s, error) = cost_history::measure(&plan, Mode::Durable, &target)
        .await
        .expect("measured");
    let g = |n: &str| s.get(n).unwrap_or_else(|| panic!("{n} measured"));
    assert_eq!(g("errors"), 0.0, "{error:?} {s:?}");
    assert!((150.0..=250.0).contains(&g("published_per_s")), "{s:?}");
    let per_s = g("sent") * 12.0 / 1.0;
    assert!(g("deliveries_per_s") > 0.8 * per_s, "{s:?}");
    broker.stop(&std::env::temp_dir()).await;
}

#[test]
fn the_table_shows_both_modes_and_their_ratio() {
    let plan = small(Feature::History);
    let sample = |published: f64| {
        let mut s = Sample::default();
        s.put("published_per_s", published);
        s.put("errors", 0.0);
        Some(s)
    };
    let rounds = [
        ModeRound {
            mode: Mode::Durable,
            round: 0,
            sample: sample(500.0),
            error: None,
        },
        ModeRound {
            mode: Mode::Plain,
            round: 0,
            sample: sample(2000.0),
            error: None,
        },
    ];
    let (table, json) = cost_report::render(&plan, &rounds);
    let row = table.lines().find(|l| l.starts_with("published msg/s")).expect("a row");
    assert!(
        row.contains("500") && row.contains("2000") && row.contains("0.250"),
        "{row}"
    );
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["ratios"]["published_per_s"], 0.25);
}
