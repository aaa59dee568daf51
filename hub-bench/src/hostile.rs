//! The hostile scenarios (hub only): a bystander connection makes echo calls, quietly first,
//! then while attackers flood the server with 1 MiB frames, 1 MiB POSTs, negotiates, or
//! never-ending request headers, then while the server settles. The figures: the server's
//! resident memory (quiet, peak, after), the bystander's latency (quiet against attack), what
//! `/health` counts, and what the attackers got through.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::attack::{self, AttackContext, AttackStats};
use crate::bystander::{Bystander, Phase, PhaseFigures};
use crate::client::ConnectSpec;
use crate::http::{self, Health};
use crate::scenario::{Case, Meter, RoundSetup, Sample, Scenario};
use crate::server::Server;
use crate::sys;
use crate::wire::Proto;

/// Attackers when `--connections` is not given.
pub fn default_attackers(scenario: Scenario) -> usize {
    match scenario {
        Scenario::HostileFrames => 50,
        Scenario::HostilePosts => 20,
        Scenario::HostileNegotiate => 16,
        _ => 1000,
    }
}

/// Negotiates per second of the negotiate flood when `--rate` is not given.
pub const DEFAULT_NEGOTIATE_RATE: f64 = 2000.0;

/// The server as seen during the attack: memory and `/health` at their highest.
#[derive(Default)]
struct Watched {
    rss_peak: u64,
    health_peak: f64,
    health_failures: u64,
}

pub async fn run(case: &Case, setup: &RoundSetup, server: &Server) -> Result<(Sample, Option<String>), String> {
    let spec = ConnectSpec {
        server: server.addr,
        sources: setup.sources.clone(),
        negotiate: true,
        proto: case.proto,
        path: "/testhub".into(),
        query: String::new(),
        version: 1,
    };
    let bystander = Bystander::start(ConnectSpec {
        proto: Proto::Json,
        ..spec.clone()
    })?;
    tokio::time::sleep(setup.warmup.max(Duration::from_secs(1))).await;
    bystander.set_phase(Phase::Quiet);
    tokio::time::sleep((case.duration / 4).clamp(Duration::from_secs(2), Duration::from_secs(5))).await;
    let rss_quiet = sys::process_rss_bytes(server.pid).unwrap_or(0);
    let health_quiet = http::health(server.addr).await.ok();

    bystander.set_phase(Phase::Attack);
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctx = AttackContext {
        spec,
        stats: AttackStats::new(),
        stop: stop_rx,
    };
    let mut attackers = JoinSet::new();
    start_attackers(case, &ctx, &mut attackers);
    let meter = Meter::start(server.pid);
    let started = Instant::now();
    let watched = watch_server(server, started + case.duration).await;
    let health_end = http::health(server.addr).await.ok();
    let attack_secs = started.elapsed().as_secs_f64();
    let slowloris_held = ctx.stats.open_now.load(Ordering::Relaxed);
    let mut sample = Sample::default();
    meter.finish(&mut sample, None);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while attackers.join_next().await.is_some() {}
    })
    .await;
    attackers.abort_all();

    bystander.set_phase(Phase::Settle);
    tokio::time::sleep(setup.settle).await;
    let rss_after = sys::process_rss_bytes(server.pid).unwrap_or(0);
    let health_after = http::health(server.addr).await.ok();
    let (figures, bystander_error) = bystander.finish();

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    sample.put("attackers", case.connections as f64);
    attack_figures(&mut sample, case.scenario, &ctx.stats, attack_secs);
    if case.scenario == Scenario::Slowloris {
        sample.put("slowloris_open_at_end", slowloris_held as f64);
    }
    sample.put("rss_quiet_mib", mib(rss_quiet));
    sample.put("rss_peak_mib", mib(watched.rss_peak.max(rss_quiet)));
    sample.put("rss_after_mib", mib(rss_after));
    let connections = |h: Option<Health>| h.map_or(f64::NAN, |h| h.connections);
    sample.put("health_connections_quiet", connections(health_quiet));
    sample.put("health_connections_peak", watched.health_peak);
    sample.put("health_connections_attack_end", connections(health_end));
    sample.put("health_connections_after", connections(health_after));
    if let Some(h) = health_after {
        if let Some(groups) = h.groups {
            sample.put("health_groups_after", groups);
        }
        if let Some(users) = h.users {
            sample.put("health_users_after", users);
        }
    }
    sample.put("health_failures", watched.health_failures as f64);
    let errors = bystander_figures(&mut sample, &figures);
    sample.put("errors", errors);
    let error = bystander_error.or_else(|| ctx.stats.first_error().map(|e| format!("(attacker) {e}")));
    Ok((sample, error))
}

/// Starts the attackers of `case`'s scenario.
fn start_attackers(case: &Case, ctx: &AttackContext, set: &mut JoinSet<()>) {
    let k = case.connections;
    for index in 0..k {
        let ctx = ctx.clone();
        match case.scenario {
            // Half the connections send invocations, half Pings.
            Scenario::HostileFrames => set.spawn(attack::frame_flood(ctx, index, index % 2 == 1)),
            Scenario::HostilePosts => set.spawn(attack::post_flood(ctx, index)),
            Scenario::HostileNegotiate => set.spawn(attack::negotiate_flood(ctx, case.rate / k.max(1) as f64)),
            _ => set.spawn(async move {
                // Spread the opening over about two seconds (the listen backlog is 128).
                tokio::time::sleep(Duration::from_micros(index as u64 * 2_000_000 / k.max(1) as u64)).await;
                attack::slowloris(ctx, index).await
            }),
        };
    }
}

/// Samples the server's memory every 100 ms and `/health` every second until `until`.
async fn watch_server(server: &Server, until: Instant) -> Watched {
    let mut watched = Watched::default();
    let mut next_health = Instant::now();
    let addr: SocketAddr = server.addr;
    while Instant::now() < until {
        watched.rss_peak = watched.rss_peak.max(sys::process_rss_bytes(server.pid).unwrap_or(0));
        if Instant::now() >= next_health {
            next_health += Duration::from_secs(1);
            match tokio::time::timeout(Duration::from_secs(2), http::health(addr)).await {
                Ok(Ok(h)) => watched.health_peak = watched.health_peak.max(h.connections),
                _ => watched.health_failures += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now()))).await;
    }
    watched
}

fn attack_figures(sample: &mut Sample, scenario: Scenario, stats: &AttackStats, secs: f64) {
    let ops = stats.ops.load(Ordering::Relaxed) as f64;
    let bytes = stats.bytes.load(Ordering::Relaxed) as f64;
    let name = match scenario {
        Scenario::HostileFrames => "attack_frames",
        Scenario::HostilePosts => "attack_posts",
        Scenario::HostileNegotiate => "attack_negotiates",
        _ => "attack_bytes_dribbled",
    };
    sample.put(name, ops);
    sample.put("attack_ops_per_s", ops / secs.max(1e-9));
    if matches!(scenario, Scenario::HostileFrames | Scenario::HostilePosts) {
        sample.put("attack_mib_per_s", bytes / (1024.0 * 1024.0) / secs.max(1e-9));
    }
    sample.put("attack_refused", stats.refused.load(Ordering::Relaxed) as f64);
    sample.put("attack_failures", stats.failures.load(Ordering::Relaxed) as f64);
    sample.put(
        "attack_closed_by_server",
        stats.closed_by_server.load(Ordering::Relaxed) as f64,
    );
    if scenario == Scenario::Slowloris {
        let h = stats.close_after_ms.lock().unwrap_or_else(|p| p.into_inner());
        let p50 = if h.is_empty() {
            f64::NAN
        } else {
            h.value_at_quantile(0.5) as f64 / 1000.0
        };
        sample.put("slowloris_closed_after_p50_s", p50);
    }
}

/// The bystander's figures; returns its error count (every phase).
fn bystander_figures(sample: &mut Sample, figures: &[PhaseFigures]) -> f64 {
    let quantile = |h: &Histogram<u64>, q: f64| {
        if h.is_empty() {
            f64::NAN
        } else {
            h.value_at_quantile(q) as f64
        }
    };
    let quiet = &figures[Phase::Quiet as usize];
    let attack = &figures[Phase::Attack as usize];
    let settle = &figures[Phase::Settle as usize];
    sample.put("bystander_calls_quiet", quiet.echo.len() as f64);
    sample.put("bystander_calls_attack", attack.echo.len() as f64);
    sample.put("bystander_quiet_p50_us", quantile(&quiet.echo, 0.5));
    sample.put("bystander_quiet_p99_us", quantile(&quiet.echo, 0.99));
    sample.put("bystander_attack_p50_us", quantile(&attack.echo, 0.5));
    sample.put("bystander_attack_p99_us", quantile(&attack.echo, 0.99));
    sample.put("bystander_attack_max_us", attack.echo.max() as f64);
    sample.put(
        "bystander_p99_ratio",
        quantile(&attack.echo, 0.99) / quantile(&quiet.echo, 0.99),
    );
    sample.put("bystander_settle_p99_us", quantile(&settle.echo, 0.99));
    sample.put("probe_open_quiet_p99_us", quantile(&quiet.probe_open, 0.99));
    sample.put("probe_open_attack_p99_us", quantile(&attack.probe_open, 0.99));
    sample.put(
        "probe_failures",
        (quiet.probe_failures + attack.probe_failures + settle.probe_failures) as f64,
    );
    let errors = figures.iter().map(|f| f.errors).sum::<u64>() as f64;
    sample.put("bystander_errors_attack", attack.errors as f64);
    errors
}
