//! The fleet scenario against real servers: hub-runtime servers in this process joined
//! through a private redis-server, listeners in generators run as tasks over in-memory pipes
//! (the same code `hub-bench fleet-listen` runs), real loopback sockets throughout.

use hub_runtime::backplane::RedisBackplane;
use hub_runtime::prelude::*;

use super::*;
use crate::scaleout::tests::{redis, serve, Fanout};

fn plan(servers: usize, connections: usize) -> Plan {
    Plan {
        backplane: Backplane::Redis,
        servers,
        connections,
        per_generator: 25,
        rate: 20.0,
        payload: 32,
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        join_timeout: Duration::from_secs(3),
        proto: Proto::Json,
        open_concurrency: 8,
        sources: vec![Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)],
        gen_threads: 1,
    }
}

fn cluster<'a>(addrs: Vec<SocketAddr>, broker: &'a Broker) -> Cluster<'a> {
    Cluster {
        server_pids: vec![std::process::id(); addrs.len()],
        addrs,
        broker,
    }
}

#[test]
fn generators_cut_the_servers_blocks() {
    let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
    let shares = assign(&[a, b], 10, 3);
    let share = |server, first_index, count| Share {
        server,
        first_index,
        count,
    };
    assert_eq!(
        shares,
        vec![
            vec![share(a, 0, 4)],
            vec![share(a, 4, 1), share(b, 5, 2)],
            vec![share(b, 7, 3)],
        ]
    );
    // Every connection number once, and each server its even share.
    let all: Vec<Share> = assign(&[a, b, a], 100_000, 7).into_iter().flatten().collect();
    assert_eq!(all.iter().map(|s| s.count).sum::<usize>(), 100_000);
    assert!(all
        .windows(2)
        .all(|w| w[0].first_index + w[0].count == w[1].first_index));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_joined_through_redis_delivers_everything() {
    let Some(broker) = redis().await else { return };
    let mut addrs = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..3 {
        let backplane = RedisBackplane::connect(&broker.url).await.expect("join redis");
        let server = HubServer::builder()
            .backplane(backplane)
            .hub("/broadcast", Fanout)
            .build();
        let (addr, stop) = serve(server).await;
        addrs.push(addr);
        stops.push(stop);
    }
    let plan = plan(3, 60);
    let outcome = measure(&plan, &cluster(addrs, &broker), &Spawner::InProcess)
        .await
        .expect("measured");
    let get = |name: &str| outcome.sample.get(name).unwrap_or(f64::NAN);
    assert_eq!(outcome.error, None);
    assert_eq!(get("connections"), 60.0);
    assert!(get("sent") >= 14.0, "{:?}", outcome.sample);
    assert_eq!(get("deliveries"), get("sent") * 60.0);
    assert_eq!(get("delivered_pct"), 100.0, "{:?}", outcome.sample);
    assert_eq!((get("duplicates"), get("out_of_order"), get("errors")), (0.0, 0.0, 0.0));
    // Latencies measured across the generators' clock are positive and ordered.
    assert!(get("latency_p50_ms") > 0.0 && get("latency_p50_ms") <= get("latency_p99_ms"));
    // Each connection subscribes its own channel, and every server the hub's `all`.
    assert!(get("redis_pubsub_channels") >= 60.0, "{:?}", outcome.sample);
    // Three servers, the broker, three generators (60 / 25 each at most), the harness.
    let names: Vec<&str> = outcome.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "server 0",
            "server 1",
            "server 2",
            "redis",
            "generator 0",
            "generator 1",
            "generator 2",
            "harness (sender)"
        ]
    );
    let generator_connections: usize = outcome.processes[4..7].iter().map(|p| p.connections).sum();
    assert_eq!(generator_connections, 60);
    broker.stop(&std::env::temp_dir()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_not_joined_show_how_far_it_got() {
    let Some(broker) = redis().await else { return };
    let mut addrs = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let (addr, stop) = serve(HubServer::builder().hub("/broadcast", Fanout).build()).await;
        addrs.push(addr);
        stops.push(stop);
    }
    // Measured anyway: half the listeners never receive anything, and the report says so.
    let outcome = measure(&plan(2, 40), &cluster(addrs, &broker), &Spawner::InProcess)
        .await
        .expect("measured");
    let error = outcome.error.unwrap_or_default();
    assert!(error.contains("only 20 of 40 listeners"), "{error}");
    assert_eq!(outcome.sample.get("listeners_joined"), Some(20.0));
    assert_eq!(outcome.sample.get("delivered_pct"), Some(50.0));
    broker.stop(&std::env::temp_dir()).await;
}
