//! The soak scenario (hub only): workers run the sessions of `sessions.rs` in turn, on every
//! transport and both protocols, for a bounded time; then the server settles. The figures:
//! resident memory after warm-up, at each tenth of the run, and after settling; what `/health`
//! counts at the end (it must be 0); calls completed, faults injected, errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::{self, Health};
use crate::scenario::{Case, Meter, RoundSetup, Sample};
use crate::server::Server;
use crate::sessions::{self, Counters, Session, SESSIONS};
use crate::sys;
use crate::wire::Proto;

/// Workers when `--connections` is not given.
pub const DEFAULT_WORKERS: usize = 16;

/// The resident size at each tenth of the run.
const RSS_AT: [&str; 10] = [
    "rss_10pct_mib",
    "rss_20pct_mib",
    "rss_30pct_mib",
    "rss_40pct_mib",
    "rss_50pct_mib",
    "rss_60pct_mib",
    "rss_70pct_mib",
    "rss_80pct_mib",
    "rss_90pct_mib",
    "rss_100pct_mib",
];

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub async fn run(case: &Case, setup: &RoundSetup, server: &Server) -> Result<(Sample, Option<String>), String> {
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let end = started + case.duration;
    // The interop example's client-result timeout: 2 s with --short-timeouts, else 30 s.
    let client_result_timeout = Duration::from_secs(if setup.short_timeouts { 2 } else { 30 });
    let short_timeouts = setup.short_timeouts;
    let mut workers = JoinSet::new();
    for worker in 0..case.connections {
        let counters = counters.clone();
        let addr = server.addr;
        workers.spawn(async move {
            let target = sessions::Target {
                server: addr,
                counters: &counters,
                worker,
                client_result_timeout,
            };
            work(&target, end, short_timeouts).await
        });
    }
    let meter = Meter::start(server.pid);
    let warmup = (case.duration / 10).max(setup.warmup).min(case.duration);
    tokio::time::sleep_until(started + warmup).await;
    let rss_warm = sys::process_rss_bytes(server.pid).unwrap_or(0);
    eprintln!("   soak: warm-up over after {warmup:?}: RSS {:.1} MiB", mib(rss_warm));
    let mut sample = Sample::default();
    let rss_max = watch(case, started, server, &counters, &mut sample).await;
    meter.finish(
        &mut sample,
        Some(counters.calls_completed.load(Ordering::Relaxed) as f64),
    );
    // Sessions end by themselves after `end`; each takes at most a minute.
    let _ = tokio::time::timeout(Duration::from_secs(70), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    workers.abort_all();
    let (health, zero_after) = settle(server, setup.settle).await;
    let rss_settled = sys::process_rss_bytes(server.pid).unwrap_or(0);
    sample.put("short_timeouts", f64::from(u8::from(setup.short_timeouts)));
    sample.put("rss_warm_mib", mib(rss_warm));
    sample.put("rss_max_mib", mib(rss_max.max(rss_warm)));
    sample.put("rss_settled_mib", mib(rss_settled));
    sample.put("health_connections_end", health.map_or(f64::NAN, |h| h.connections));
    if let Some(groups) = health.and_then(|h| h.groups) {
        sample.put("health_groups_end", groups);
    }
    if let Some(users) = health.and_then(|h| h.users) {
        sample.put("health_users_end", users);
    }
    sample.put("health_zero_after_s", zero_after.map_or(f64::NAN, |d| d.as_secs_f64()));
    counter_figures(&mut sample, &counters, case.duration);
    Ok((sample, counters.first_error()))
}

/// One worker: sessions in turn (each worker starting at its own place in the list), the
/// protocol alternating with each pass, until `end`. Without short timeouts a client-result
/// timeout takes 30 s, so only worker 0 waits for them (the others would mostly wait).
async fn work(target: &sessions::Target<'_>, end: Instant, short_timeouts: bool) {
    let mut turn = target.worker;
    while Instant::now() < end {
        let session = SESSIONS[turn % SESSIONS.len()];
        if session == Session::ClientResultTimeout && !short_timeouts && target.worker != 0 {
            turn += 1;
            continue;
        }
        let proto = if (turn / SESSIONS.len()).is_multiple_of(2) {
            Proto::Json
        } else {
            Proto::MessagePack
        };
        turn += 1;
        let outcome = tokio::time::timeout(Duration::from_secs(60), sessions::run(session, proto, target)).await;
        let counters = target.counters;
        match outcome {
            Ok(Ok(())) => {
                counters.sessions.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => counters.error(format!("{session:?} ({}): {e}", proto.name())),
            Err(_) => counters.error(format!("{session:?} ({}): not over within 60 s", proto.name())),
        }
    }
}

/// Reads the server's memory every second until the run ends, recording it at each tenth and
/// printing a progress line; returns the highest value seen.
async fn watch(case: &Case, started: Instant, server: &Server, counters: &Counters, sample: &mut Sample) -> u64 {
    let mut max = 0;
    for (tenth, name) in RSS_AT.iter().enumerate() {
        let at = started + case.duration * (tenth as u32 + 1) / 10;
        while Instant::now() < at {
            max = max.max(sys::process_rss_bytes(server.pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_secs(1).min(at.saturating_duration_since(Instant::now()))).await;
        }
        let rss = sys::process_rss_bytes(server.pid).unwrap_or(0);
        max = max.max(rss);
        sample.put(name, mib(rss));
        let connections = http::health(server.addr).await.map_or(f64::NAN, |h| h.connections);
        eprintln!(
            "   soak {:>3} %: RSS {:.1} MiB, /health {} connections, {} sessions, {} calls, {} errors",
            (tenth + 1) * 10,
            mib(rss),
            connections,
            counters.sessions.load(Ordering::Relaxed),
            counters.calls_completed.load(Ordering::Relaxed),
            counters.errors.load(Ordering::Relaxed)
        );
    }
    max
}

/// Waits (at most `limit`) for `/health` to count no connections, then two seconds more for
/// freed memory; returns the last health reading and when it reached 0.
async fn settle(server: &Server, limit: Duration) -> (Option<Health>, Option<Duration>) {
    let begin = Instant::now();
    let mut last = None;
    let mut zero_after = None;
    while begin.elapsed() < limit {
        last = http::health(server.addr).await.ok();
        if last.is_some_and(|h| h.connections == 0.0) {
            zero_after = Some(begin.elapsed());
            tokio::time::sleep(Duration::from_secs(2).min(limit.saturating_sub(begin.elapsed()))).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (http::health(server.addr).await.ok().or(last), zero_after)
}

fn counter_figures(sample: &mut Sample, c: &Counters, duration: Duration) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    sample.put("sessions", get(&c.sessions));
    sample.put("calls_completed", get(&c.calls_completed));
    sample.put(
        "calls_per_s",
        get(&c.calls_completed) / duration.as_secs_f64().max(1e-9),
    );
    sample.put("abrupt_drops", get(&c.abrupt_drops));
    sample.put("divide_completion_errors", get(&c.divide_completion_errors));
    sample.put("divide_lost", get(&c.divide_lost));
    sample.put("divide_unavailable", get(&c.divide_unavailable));
    sample.put("streams_cancelled", get(&c.streams_cancelled));
    sample.put("uploads_abandoned", get(&c.uploads_abandoned));
    sample.put("stateful_abandoned", get(&c.stateful_abandoned));
    sample.put("client_results_timed_out", get(&c.client_results_timed_out));
    sample.put("slow_consumers", get(&c.slow_consumers));
    sample.put("long_polls_dropped", get(&c.long_polls_dropped));
    sample.put("sse_dropped", get(&c.sse_dropped));
    sample.put("errors", get(&c.errors));
}
