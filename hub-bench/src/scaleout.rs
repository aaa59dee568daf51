//! The `scaleout` scenario: several interop servers joined through a backplane (Redis,
//! PostgreSQL LISTEN/NOTIFY or NATS, each broker private to the round: `brokers.rs`),
//! listeners spread evenly over them, and one sender on server 0 calling the BroadcastHub's
//! `SendToAll` at a steady rate.
//!
//! Every message carries its sequence number and its send time (`SEQ;MICROS;xxx…`; sender
//! and listeners share this process's monotonic clock), so each listener times its
//! deliveries and counts duplicates and reordering. Before the measured window every listener
//! must have received a message (so every server has joined the backplane), then a warm-up;
//! only messages sent in the window count.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::brokers::{Backplane, Broker};
use crate::client::{self, ConnectSpec};
use crate::scaleout_listen::{listen, stamp_text, Tally};
use crate::scenario::{self, FirstError, Sample, SenderCounts};
use crate::server::{Launch, Server, Target};
use crate::sys;
use crate::wire::Proto;

/// How long, by default, every listener may take to receive its first message.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What a scale-out run measures.
#[derive(Debug, Clone)]
pub struct Plan {
    pub backplanes: Vec<Backplane>,
    /// Interop processes.
    pub servers: usize,
    /// Listeners in total, spread evenly over the servers.
    pub listeners: usize,
    /// SendToAll calls per second.
    pub rate: f64,
    /// Bytes of each message (at least its sequence number and timestamp).
    pub payload: usize,
    pub duration: Duration,
    /// After every listener received its first message, before the window.
    pub warmup: Duration,
    /// How long every listener may take to receive its first message.
    pub join_timeout: Duration,
    pub proto: Proto,
    pub rounds: usize,
    pub negotiate: bool,
    pub open_concurrency: usize,
    pub sources: Vec<Ipv4Addr>,
}

impl Plan {
    pub fn title(&self) -> String {
        format!(
            "scaleout · {} · {} servers · {} listeners × {} msg/s · {} B · {} s",
            self.proto.name(),
            self.servers,
            self.listeners,
            self.rate,
            self.payload,
            self.duration.as_secs_f64()
        )
    }
}

/// One round of one backplane: its figures, or why it has none.
pub struct BackplaneRound {
    pub backplane: Backplane,
    /// Which round (from 0).
    pub round: usize,
    pub sample: Option<Sample>,
    /// Lines the interop servers wrote to stderr (each says it joined the backplane).
    pub log_lines: usize,
    pub error: Option<String>,
}

/// The servers under test and their broker.
pub struct Cluster<'a> {
    /// Where each server listens; the sender uses the first.
    pub addrs: Vec<SocketAddr>,
    pub server_pids: Vec<u32>,
    pub broker: &'a Broker,
}

/// Runs every round of every backplane (the order rotating from round to round).
pub async fn run(plan: &Plan, launch: &Launch) -> Vec<BackplaneRound> {
    let mut out = Vec::new();
    for round in 0..plan.rounds {
        let mut order = plan.backplanes.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        for backplane in order {
            eprintln!(
                "   round {} {:<8} starting   (load average {})",
                round + 1,
                backplane.name(),
                sys::load_average()
            );
            let result = run_round(plan, launch, backplane, round).await;
            match (&result.sample, &result.error) {
                (Some(sample), error) => eprintln!(
                    "   round {} {:<8} {}{}",
                    round + 1,
                    backplane.name(),
                    brief(sample),
                    error
                        .as_ref()
                        .map(|e| format!("  [first error: {e}]"))
                        .unwrap_or_default()
                ),
                (None, error) => eprintln!(
                    "   round {} {:<8} FAILED: {}",
                    round + 1,
                    backplane.name(),
                    error.as_deref().unwrap_or("?")
                ),
            }
            out.push(result);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    out
}

/// One line about one round, for progress output.
fn brief(s: &Sample) -> String {
    let g = |n: &str| s.get(n).unwrap_or(f64::NAN);
    format!(
        "{} deliveries/s  delivered {:.3} %  p50 {:.2} ms  p99 {:.2} ms  servers {:.1} µs + broker {:.1} µs per delivery  dup {} ooo {}  errors {}",
        crate::report::human(g("deliveries_per_s")),
        g("delivered_pct"),
        g("latency_p50_ms"),
        g("latency_p99_ms"),
        g("server_cpu_us_per_delivery"),
        g("broker_cpu_us_per_delivery"),
        g("duplicates"),
        g("out_of_order"),
        g("errors")
    )
}

/// Broker, servers, measurement, teardown.
async fn run_round(plan: &Plan, launch: &Launch, backplane: Backplane, round: usize) -> BackplaneRound {
    let tag = format!("scaleout-{}-r{round}", backplane.name());
    let failed = |error: String| BackplaneRound {
        backplane,
        round,
        sample: None,
        log_lines: 0,
        error: Some(error),
    };
    // Before anything of this round runs: the load other work puts on the machine.
    let load_before = load_1m();
    let broker = match Broker::start(backplane, &launch.log_dir, &tag).await {
        Ok(broker) => broker,
        Err(e) => return failed(format!("starting {}: {e}", backplane.name())),
    };
    eprintln!(
        "   {} broker on 127.0.0.1:{} (pid {})",
        backplane.name(),
        broker.port,
        broker.pid
    );
    let mut servers = Vec::new();
    let outcome = match start_servers(plan.servers, launch, &broker, &tag, &mut servers).await {
        Ok(()) => {
            // Let the servers settle (runtime threads, backplane subscriptions).
            tokio::time::sleep(Duration::from_millis(300)).await;
            let cluster = Cluster {
                addrs: servers.iter().map(|s| s.addr).collect(),
                server_pids: servers.iter().map(|s| s.pid).collect(),
                broker: &broker,
            };
            measure(plan, &cluster).await
        }
        Err(e) => Err(e),
    };
    let mut log_lines = 0;
    for server in servers {
        log_lines += server.stop().await;
    }
    broker.stop(&launch.log_dir).await;
    match outcome {
        Ok((mut sample, error)) => {
            sample.put("load_1m_at_start", load_before);
            BackplaneRound {
                backplane,
                round,
                sample: Some(sample),
                log_lines,
                error,
            }
        }
        Err(e) => failed(e),
    }
}

/// Starts `count` interop servers joined to `broker`, pushing each onto `servers` as it starts.
pub async fn start_servers(
    count: usize,
    launch: &Launch,
    broker: &Broker,
    tag: &str,
    servers: &mut Vec<Server>,
) -> Result<(), String> {
    let launch = Launch {
        interop_args: broker.interop_args(),
        ..launch.clone()
    };
    for i in 0..count {
        let server_tag = format!("{tag}-s{i}");
        match Server::start(Target::Hub, &launch, &server_tag).await {
            Ok(server) => servers.push(server),
            Err(e) => {
                let log = launch.log_dir.join(format!("hub-{server_tag}.stderr.log"));
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "interop server {i} ({}): {e}; it said: {}",
                    broker.interop_args().join(" "),
                    said.lines()
                        .filter(|l| !l.trim().is_empty())
                        .take(3)
                        .collect::<Vec<_>>()
                        .join(" / ")
                ));
            }
        }
    }
    Ok(())
}

/// How many of `total` listeners go to each of `servers` servers: as even as it gets, the
/// first servers taking one more when it does not divide.
pub fn shares(total: usize, servers: usize) -> Vec<usize> {
    let servers = servers.max(1);
    (0..servers)
        .map(|i| total / servers + usize::from(i < total % servers))
        .collect()
}

/// Opens, joins and measures; the figures of one round.
pub async fn measure(plan: &Plan, cluster: &Cluster<'_>) -> Result<(Sample, Option<String>), String> {
    let open_start = Instant::now();
    let open_errors = FirstError::default();
    let mut sockets = Vec::with_capacity(plan.listeners);
    let mut first_index = 0;
    for (addr, count) in cluster.addrs.iter().zip(shares(plan.listeners, cluster.addrs.len())) {
        let spec = spec(plan, *addr);
        sockets.extend(scenario::open_many(&spec, first_index, count, plan.open_concurrency, &open_errors).await);
        first_index += count;
    }
    let open_s = open_start.elapsed().as_secs_f64();
    let listeners = sockets.len();
    if listeners == 0 {
        return Err(open_errors.take().unwrap_or_else(|| "no listener opened".into()));
    }
    let tally = Arc::new(Tally::new(plan.proto));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut set = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        set.spawn(listen(ws, i, tally.clone(), stop_rx.clone()));
    }
    let sender = client::open(&spec(plan, cluster.addrs[0]), first_index)
        .await
        .map_err(|e| format!("sender: {e}"))?;
    let (mut sink, stream) = sender.split();
    let counts = SenderCounts {
        completions: Arc::new(AtomicU64::new(0)),
        send_errors: Arc::new(AtomicU64::new(0)),
        first_error: Arc::new(FirstError::default()),
        pings_owed: Arc::new(AtomicU64::new(0)),
    };
    let send_errors = counts.send_errors.clone();
    let sender_error = counts.first_error.clone();
    let reader = scenario::spawn_sender_reader(
        stream,
        crate::socketio::Dialect::SignalR(plan.proto),
        counts,
        stop_rx.clone(),
    );
    let window = drive(&mut sink, plan, &tally, listeners, cluster).await?;
    let expected = window.sent * listeners as u64;
    scenario::wait_for_deliveries(&tally.delivered, expected).await;
    let mut sample = figures(&window, &tally, expected, cluster);
    sample.put("open_s", open_s);
    let closed = tally.closed_early.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    reader.abort();
    let errors = (plan.listeners - listeners) as u64
        + closed
        + tally.malformed.load(Ordering::Relaxed)
        + send_errors.load(Ordering::Relaxed);
    sample.put("errors", errors as f64);
    let error = open_errors
        .take()
        .or_else(|| sender_error.take())
        .or_else(|| tally.first_error.take());
    Ok((sample, error))
}

fn spec(plan: &Plan, server: SocketAddr) -> ConnectSpec {
    ConnectSpec {
        server,
        sources: plan.sources.clone(),
        negotiate: plan.negotiate,
        proto: plan.proto,
        path: "/broadcast".into(),
        query: String::new(),
        version: 1,
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_1m() -> f64 {
    sys::load_average()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// What the sender did in the measured window.
struct Window {
    meter: ClusterMeter,
    /// Messages sent in the window.
    sent: u64,
    /// The window's length (the send loop's).
    send_secs: f64,
    /// From the first message until every listener had received one.
    join_secs: f64,
}

/// Where the send loop is.
enum Phase {
    /// Until every listener received a message, or the join timeout.
    Joining,
    /// The warm-up, until the instant given.
    Warming(Instant),
    /// The measured window, until the instant given.
    Measuring(Instant, ClusterMeter),
}

/// Sends `SendToAll` at the plan's rate: until every listener received one, through the
/// warm-up, and through the measured window.
async fn drive<S>(
    sink: &mut S,
    plan: &Plan,
    tally: &Tally,
    listeners: usize,
    cluster: &Cluster<'_>,
) -> Result<Window, String>
where
    S: Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let begin = Instant::now();
    let period = Duration::from_secs_f64(1.0 / plan.rate.max(0.001));
    let mut tick = tokio::time::interval_at(begin, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut phase = Phase::Joining;
    let mut join_secs = 0.0;
    let mut seq: u64 = 0;
    let mut buf = Vec::new();
    loop {
        // The schedule's instant, not the wake-up's: the window holds exactly duration × rate.
        let now = tick.tick().await;
        phase = match phase {
            Phase::Joining if tally.ready.load(Ordering::Relaxed) >= listeners as u64 => {
                join_secs = begin.elapsed().as_secs_f64();
                Phase::Warming(now + plan.warmup)
            }
            Phase::Joining if now >= begin + plan.join_timeout => {
                return Err(format!(
                    "only {} of {listeners} listeners received a message within {} s: not every server joined the backplane",
                    tally.ready.load(Ordering::Relaxed),
                    plan.join_timeout.as_secs_f64()
                ))
            }
            Phase::Warming(until) if now >= until => {
                // Messages from the next one on are measured.
                tally.first_measured.store(seq + 1, Ordering::Release);
                Phase::Measuring(now + plan.duration, ClusterMeter::start(cluster))
            }
            Phase::Measuring(end, meter) if now >= end => {
                let first = tally.first_measured.load(Ordering::Relaxed);
                return Ok(Window {
                    send_secs: meter.at.elapsed().as_secs_f64(),
                    meter,
                    sent: seq + 1 - first,
                    join_secs,
                });
            }
            same => same,
        };
        seq += 1;
        tally.last_sent.store(seq, Ordering::Release);
        buf.clear();
        plan.proto.write_invocation(
            &mut buf,
            Some(&seq.to_string()),
            "SendToAll",
            &stamp_text(seq, plan.payload),
        );
        match tokio::time::timeout(Duration::from_secs(10), sink.send(plan.proto.frame(buf.clone()))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("sender: {e}")),
            Err(_) => return Err("sender: a send took over 10 s".into()),
        }
    }
}

/// The round's figures once the deliveries are in.
fn figures(window: &Window, tally: &Tally, expected: u64, cluster: &Cluster<'_>) -> Sample {
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let elapsed = window.meter.at.elapsed().as_secs_f64();
    // Deliveries per second over the time they took: the window, and the drain after it
    // when the servers (or the machine) fell behind.
    let deliver_secs = if delivered >= expected {
        elapsed.max(window.send_secs)
    } else {
        window.send_secs
    };
    let mut sample = Sample::default();
    sample.put("sent", window.sent as f64);
    sample.put("deliveries_per_s", delivered as f64 / deliver_secs.max(1e-9));
    sample.put(
        "delivered_pct",
        if expected == 0 {
            0.0
        } else {
            delivered as f64 * 100.0 / expected as f64
        },
    );
    let h = tally.latencies.merged();
    for (name, q) in [
        ("latency_p50_ms", 0.50),
        ("latency_p99_ms", 0.99),
        ("latency_p999_ms", 0.999),
    ] {
        sample.put(name, h.value_at_quantile(q) as f64 / 1000.0);
    }
    sample.put("latency_max_ms", h.max() as f64 / 1000.0);
    window.meter.finish(cluster, delivered, &mut sample);
    sample.put("duplicates", tally.duplicates.load(Ordering::Relaxed) as f64);
    sample.put("out_of_order", tally.out_of_order.load(Ordering::Relaxed) as f64);
    sample.put("drain_s", (deliver_secs - window.send_secs).max(0.0));
    sample.put("join_s", window.join_secs);
    sample
}

/// CPU time of the servers (together), of the broker and of this process over the window.
struct ClusterMeter {
    machine: f64,
    servers: f64,
    broker: f64,
    generator: f64,
    at: Instant,
}

fn servers_cpu_seconds(cluster: &Cluster<'_>) -> f64 {
    cluster
        .server_pids
        .iter()
        .filter_map(|&pid| sys::process_cpu_seconds(pid))
        .sum()
}

impl ClusterMeter {
    fn start(cluster: &Cluster<'_>) -> ClusterMeter {
        ClusterMeter {
            machine: sys::machine_busy_seconds().unwrap_or(0.0),
            servers: servers_cpu_seconds(cluster),
            broker: cluster.broker.cpu_seconds().unwrap_or(0.0),
            generator: sys::own_cpu_seconds(),
            at: Instant::now(),
        }
    }

    fn finish(&self, cluster: &Cluster<'_>, deliveries: u64, sample: &mut Sample) {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let servers = servers_cpu_seconds(cluster) - self.servers;
        let broker = cluster.broker.cpu_seconds().unwrap_or(0.0) - self.broker;
        let generator = sys::own_cpu_seconds() - self.generator;
        let machine = sys::machine_busy_seconds().unwrap_or(0.0) - self.machine;
        let per_delivery = |seconds: f64| {
            if deliveries == 0 {
                f64::NAN
            } else {
                seconds * 1e6 / deliveries as f64
            }
        };
        sample.put("server_cpu_us_per_delivery", per_delivery(servers));
        sample.put("broker_cpu_us_per_delivery", per_delivery(broker));
        sample.put("server_cpu_cores", servers / wall);
        sample.put("broker_cpu_cores", broker / wall);
        sample.put("generator_cpu_cores", generator / wall);
        // What else kept the cores busy: other work on the machine (and interrupt time).
        sample.put(
            "other_cpu_cores",
            (machine - servers - broker - generator).max(0.0) / wall,
        );
    }
}

#[cfg(test)]
pub(crate) mod tests;
