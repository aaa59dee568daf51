//! The scenarios. Each runs once against one freshly started server and returns its figures.
//! Every loop here is bounded in time (and so in count).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, ConnectSpec, Ws};
use crate::server::{Server, Target};
use crate::socketio::Dialect;
use crate::sys;
use crate::wire::{Incoming, Proto};

/// Client Pings on otherwise idle connections, as the official clients send them.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);

/// Which scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Echo,
    Broadcast,
    Connections,
    /// 1 MiB WebSocket frames of tiny invocations or Pings (hub only).
    HostileFrames,
    /// Concurrent 1 MiB POSTs on long-polling connections (hub only).
    HostilePosts,
    /// Negotiates that never start a transport (hub only).
    HostileNegotiate,
    /// Request headers one byte at a time, never finished (hub only).
    Slowloris,
    /// A long mixed workload with faults (hub only).
    Soak,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Echo => "echo",
            Scenario::Broadcast => "broadcast",
            Scenario::Connections => "connections",
            Scenario::HostileFrames => "hostile-frames",
            Scenario::HostilePosts => "hostile-posts",
            Scenario::HostileNegotiate => "hostile-negotiate",
            Scenario::Slowloris => "slowloris",
            Scenario::Soak => "soak",
        }
    }

    /// Runs against hub only: the floor has no HTTP transports (and no faults to survive).
    pub fn hub_only(self) -> bool {
        !matches!(self, Scenario::Echo | Scenario::Broadcast | Scenario::Connections)
    }

    /// One of the four hostile scenarios.
    pub fn hostile(self) -> bool {
        self.hub_only() && self != Scenario::Soak
    }

    pub fn parse(text: &str) -> Option<Scenario> {
        match text {
            "echo" => Some(Scenario::Echo),
            "broadcast" => Some(Scenario::Broadcast),
            "connections" | "idle" => Some(Scenario::Connections),
            "hostile-frames" => Some(Scenario::HostileFrames),
            "hostile-posts" => Some(Scenario::HostilePosts),
            "hostile-negotiate" => Some(Scenario::HostileNegotiate),
            "slowloris" | "hostile-slowloris" => Some(Scenario::Slowloris),
            "soak" => Some(Scenario::Soak),
            _ => None,
        }
    }
}

/// One benchmark case: a scenario with its sizes.
#[derive(Debug, Clone)]
pub struct Case {
    pub scenario: Scenario,
    pub connections: usize,
    pub payload: usize,
    pub duration: Duration,
    pub rate: f64,
    pub proto: Proto,
}

impl Case {
    pub fn title(&self) -> String {
        let secs = self.duration.as_secs_f64();
        match self.scenario {
            Scenario::Echo => format!(
                "echo · {} · {} connections × {} B · {secs} s",
                self.proto.name(),
                self.connections,
                self.payload
            ),
            Scenario::Broadcast => format!(
                "broadcast · {} · {} listeners × {} msg/s · {} B · {secs} s",
                self.proto.name(),
                self.connections,
                self.rate,
                self.payload
            ),
            Scenario::Connections => format!(
                "connections · {} · {} idle WebSockets held {secs} s",
                self.proto.name(),
                self.connections
            ),
            Scenario::HostileFrames => format!(
                "hostile-frames · {} · {} connections sending 1 MiB frames (invocations / Pings) for {secs} s",
                self.proto.name(),
                self.connections
            ),
            Scenario::HostilePosts => format!(
                "hostile-posts · {} long-polling connections × {} concurrent 1 MiB POSTs for {secs} s",
                self.connections,
                crate::attack::POSTS_PER_CONNECTION
            ),
            Scenario::HostileNegotiate => format!(
                "hostile-negotiate · {} negotiates/s (never started) from {} workers for {secs} s",
                self.rate, self.connections
            ),
            Scenario::Slowloris => format!(
                "slowloris · {} connections sending headers one byte per 500 ms for {secs} s",
                self.connections
            ),
            Scenario::Soak => format!(
                "soak · {} workers · mixed transports, protocols and faults for {secs} s",
                self.connections
            ),
        }
    }
}

/// How one round connects.
#[derive(Debug, Clone)]
pub struct RoundSetup {
    pub negotiate: bool,
    pub sources: Vec<Ipv4Addr>,
    pub open_concurrency: usize,
    pub warmup: Duration,
    /// After a hostile attack or the soak: how long the server gets to settle.
    pub settle: Duration,
    /// The interop server runs with `--short-timeouts` (soak).
    pub short_timeouts: bool,
}

/// The figures of one round, in display order.
#[derive(Debug, Clone, Default)]
pub struct Sample(pub Vec<(&'static str, f64)>);

impl Sample {
    pub fn put(&mut self, name: &'static str, value: f64) {
        self.0.push((name, value));
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// Microseconds since the harness started (the clock of broadcast timestamps).
pub fn now_us() -> u64 {
    static BASE: OnceLock<std::time::Instant> = OnceLock::new();
    BASE.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64
}

/// Latencies in µs, in a few histograms behind separate locks so recording rarely contends.
pub struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latencies {
    pub fn new() -> Self {
        let shards = (0..16)
            .map(|_| Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")))
            .collect();
        Latencies { shards }
    }

    pub fn record(&self, key: usize, micros: u64) {
        let mut h = self.shards[key % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        h.saturating_record(micros.max(1));
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds");
        for shard in &self.shards {
            let _ = all.add(&*shard.lock().unwrap_or_else(|p| p.into_inner()));
        }
        all
    }
}

/// CPU time of the server and of this process (the load generator) over a period.
pub struct Meter {
    pid: u32,
    server: f64,
    generator: f64,
    at: Instant,
}

impl Meter {
    pub fn start(pid: u32) -> Meter {
        Meter {
            pid,
            server: sys::process_cpu_seconds(pid).unwrap_or(0.0),
            generator: sys::own_cpu_seconds(),
            at: Instant::now(),
        }
    }

    pub fn finish(self, sample: &mut Sample, ops: Option<f64>) {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let server = sys::process_cpu_seconds(self.pid).unwrap_or(0.0) - self.server;
        let generator = sys::own_cpu_seconds() - self.generator;
        sample.put("server_cpu_cores", server / wall);
        sample.put("generator_cpu_cores", generator / wall);
        if let Some(ops) = ops.filter(|&n| n > 0.0) {
            sample.put("server_cpu_us_per_op", server * 1e6 / ops);
        }
    }
}

/// The first error seen, for the report.
#[derive(Default)]
pub struct FirstError(Mutex<Option<String>>);

impl FirstError {
    pub fn set(&self, error: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Opens `count` hub connections with at most `concurrency` opening at once.
pub async fn open_many(
    spec: &ConnectSpec,
    first_index: usize,
    count: usize,
    concurrency: usize,
    errors: &FirstError,
) -> Vec<Ws> {
    open_many_in(
        Dialect::SignalR(spec.proto),
        spec,
        first_index,
        count,
        concurrency,
        errors,
    )
    .await
}

/// Opens `count` connections speaking `dialect`, with at most `concurrency` opening at once.
pub async fn open_many_in(
    dialect: Dialect,
    spec: &ConnectSpec,
    first_index: usize,
    count: usize,
    concurrency: usize,
    errors: &FirstError,
) -> Vec<Ws> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..count {
        let spec = spec.clone();
        let semaphore = semaphore.clone();
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            dialect.open(&spec, first_index + i).await
        });
    }
    let mut out = Vec::with_capacity(count);
    while let Some(result) = set.join_next().await {
        match result {
            Ok(Ok(ws)) => out.push(ws),
            Ok(Err(e)) => errors.set(e),
            Err(e) => errors.set(format!("open task failed: {e}")),
        }
    }
    out
}

pub async fn run(case: &Case, setup: &RoundSetup, server: &Server) -> Result<(Sample, Option<String>), String> {
    let spec = ConnectSpec {
        server: server.addr,
        sources: setup.sources.clone(),
        negotiate: setup.negotiate,
        proto: case.proto,
        path: "/broadcast".into(),
        query: String::new(),
        version: 1,
    };
    // The Socket.IO peer has no MessagePack counterpart here (its default JSON parser).
    let dialect = match server.target {
        Target::Sioxide if case.proto != Proto::Json => {
            return Err("the Socket.IO peer is measured in JSON only".into());
        }
        Target::Sioxide => Dialect::SocketIo,
        _ => Dialect::SignalR(case.proto),
    };
    match case.scenario {
        Scenario::Echo => echo(case, setup, &spec, server, dialect).await,
        Scenario::Broadcast => broadcast(case, setup, &spec, server, dialect).await,
        Scenario::Connections => connections(case, setup, &spec, server, dialect).await,
        Scenario::Soak => crate::soak::run(case, setup, server).await,
        _ => crate::hostile::run(case, setup, server).await,
    }
}

// ---------------------------------------------------------------------------------------
// echo

struct EchoShared {
    dialect: Dialect,
    payload: String,
    begin: Instant,
    measure_from: Instant,
    end: Instant,
    latencies: Latencies,
    completed: AtomicU64,
    errors: AtomicU64,
    first_error: FirstError,
}

async fn echo(
    case: &Case,
    setup: &RoundSetup,
    spec: &ConnectSpec,
    server: &Server,
    dialect: Dialect,
) -> Result<(Sample, Option<String>), String> {
    let open_errors = FirstError::default();
    let sockets = open_many_in(dialect, spec, 0, case.connections, setup.open_concurrency, &open_errors).await;
    let failed_opens = case.connections - sockets.len();
    if sockets.is_empty() {
        return Err(open_errors.take().unwrap_or_else(|| "no connection opened".into()));
    }
    let begin = Instant::now() + Duration::from_millis(200);
    let measure_from = begin + setup.warmup;
    let shared = Arc::new(EchoShared {
        dialect,
        payload: "x".repeat(case.payload),
        begin,
        measure_from,
        end: measure_from + case.duration,
        latencies: Latencies::new(),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: FirstError::default(),
    });
    let mut set = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        set.spawn(echo_worker(ws, i, shared.clone()));
    }
    tokio::time::sleep_until(measure_from).await;
    let meter = Meter::start(server.pid);
    tokio::time::sleep_until(shared.end).await;
    let completed = shared.completed.load(Ordering::Relaxed) as f64;
    let mut sample = Sample::default();
    let secs = case.duration.as_secs_f64();
    sample.put("throughput_per_s", completed / secs);
    let h = shared.latencies.merged();
    sample.put("latency_p50_us", h.value_at_quantile(0.50) as f64);
    sample.put("latency_p99_us", h.value_at_quantile(0.99) as f64);
    sample.put("latency_p999_us", h.value_at_quantile(0.999) as f64);
    meter.finish(&mut sample, Some(completed));
    sample.put("server_rss_mib", rss_mib(server.pid));
    // Workers stop at `end`; each waits at most 10 s for its last reply.
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    let errors = shared.errors.load(Ordering::Relaxed) as f64 + failed_opens as f64;
    sample.put("errors", errors);
    let error = open_errors.take().or_else(|| shared.first_error.take());
    Ok((sample, error))
}

async fn echo_worker(mut ws: Ws, index: usize, shared: Arc<EchoShared>) {
    tokio::time::sleep_until(shared.begin).await;
    let dialect = shared.dialect;
    let mut buf = Vec::with_capacity(64 + shared.payload.len());
    let mut n: u64 = 0;
    'calls: while Instant::now() < shared.end {
        n += 1;
        let id = n.to_string();
        buf.clear();
        dialect.write_call(&mut buf, Some(&id), "Echo", &shared.payload);
        let sent_at = Instant::now();
        if let Err(e) = ws.send(dialect.frame(buf.clone())).await {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            shared.first_error.set(format!("echo send: {e}"));
            break;
        }
        let deadline = sent_at + Duration::from_secs(10);
        let outcome = loop {
            let message = match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => break Err(format!("echo read: {e}")),
                Ok(None) => break Err("echo: connection closed".into()),
                Err(_) => break Err("echo: no completion within 10 s".into()),
            };
            let Some(data) = client::payload(&message) else {
                if let Message::Close(frame) = &message {
                    break Err(format!("echo: server closed: {frame:?}"));
                }
                continue;
            };
            let mut done: Option<Result<(), String>> = None;
            let mut pinged = false;
            let parsed = dialect.parse(data, |m| match m {
                Incoming::Completion { invocation_id, result } if invocation_id == id.as_str() => {
                    done = Some(match result {
                        Ok(Some(text)) if text.len() == shared.payload.len() => Ok(()),
                        Ok(other) => Err(format!("echo: unexpected result {other:?}")),
                        Err(e) => Err(format!("echo: error completion: {e}")),
                    });
                }
                Incoming::Close { error } => done = Some(Err(format!("echo: server sent Close {error:?}"))),
                Incoming::Ping => pinged = true,
                _ => {}
            });
            if let Err(e) = parsed {
                break Err(e);
            }
            if let Some(pong) = dialect.pong().filter(|_| pinged) {
                if let Err(e) = ws.send(pong).await {
                    break Err(format!("echo: pong send: {e}"));
                }
            }
            if let Some(done) = done {
                break done;
            }
        };
        match outcome {
            Ok(()) => {
                let now = Instant::now();
                if sent_at >= shared.measure_from && now <= shared.end {
                    shared
                        .latencies
                        .record(index, now.duration_since(sent_at).as_micros() as u64);
                    shared.completed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared.first_error.set(e);
                break 'calls;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

fn rss_mib(pid: u32) -> f64 {
    sys::process_rss_bytes(pid).unwrap_or(0) as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------
// listeners (broadcast) and idle holders (connections)

struct ListenShared {
    dialect: Dialect,
    /// Receives carrying a timestamp at or after this (µs, `now_us` clock) are timed.
    time_from_us: AtomicU64,
    latencies: Latencies,
    delivered: AtomicU64,
    closed_early: AtomicU64,
    pings_sent: AtomicU64,
    first_error: FirstError,
}

impl ListenShared {
    fn new(dialect: Dialect) -> Arc<Self> {
        Arc::new(ListenShared {
            dialect,
            time_from_us: AtomicU64::new(u64::MAX),
            latencies: Latencies::new(),
            delivered: AtomicU64::new(0),
            closed_early: AtomicU64::new(0),
            pings_sent: AtomicU64::new(0),
            first_error: FirstError::default(),
        })
    }
}

/// Reads everything the server sends, counts and times `Receive` invocations, and sends a
/// Ping every 15 s (hub) or answers the server's pings (Socket.IO), until `stop` says so.
async fn listen(mut ws: Ws, index: usize, shared: Arc<ListenShared>, mut stop: watch::Receiver<bool>) {
    let dialect = shared.dialect;
    // The first Ping 12–15 s after opening (spread, so thousands of connections do not ping
    // in the same instant), then every 15 s, as the official clients do.
    let jitter = Duration::from_millis((index as u64 * 7919) % 3000);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL - jitter, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ping_bytes = dialect.client_ping();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ping.tick() => {
                let Some(bytes) = &ping_bytes else { continue };
                match tokio::time::timeout(Duration::from_secs(10), ws.send(dialect.frame(bytes.clone()))).await {
                    Ok(Ok(())) => { shared.pings_sent.fetch_add(1, Ordering::Relaxed); }
                    _ => {
                        shared.closed_early.fetch_add(1, Ordering::Relaxed);
                        shared.first_error.set("ping send failed".into());
                        return;
                    }
                }
            }
            incoming = ws.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    other => {
                        if !*stop.borrow() {
                            shared.closed_early.fetch_add(1, Ordering::Relaxed);
                            shared.first_error.set(format!("listener closed: {:?}", other.map(|r| r.map(|_| ()))));
                        }
                        return;
                    }
                };
                let Some(data) = client::payload(&message) else {
                    if let Message::Close(frame) = &message {
                        if !*stop.borrow() {
                            shared.closed_early.fetch_add(1, Ordering::Relaxed);
                            shared.first_error.set(format!("server closed a listener: {frame:?}"));
                        }
                        return;
                    }
                    continue;
                };
                let now = now_us();
                let time_from = shared.time_from_us.load(Ordering::Relaxed);
                let mut received = 0u64;
                let mut pinged = false;
                let parsed = dialect.parse(data, |m| {
                    if matches!(m, Incoming::Ping) {
                        pinged = true;
                    }
                    if let Incoming::Invocation { target, argument } = m {
                        if target.eq_ignore_ascii_case("receive") {
                            received += 1;
                            let sent = argument
                                .as_deref()
                                .and_then(|a| a.split(';').next())
                                .and_then(|ts| ts.parse::<u64>().ok());
                            if let Some(sent) = sent.filter(|&s| s >= time_from) {
                                shared.latencies.record(index, now.saturating_sub(sent));
                            }
                        }
                    }
                });
                shared.delivered.fetch_add(received, Ordering::Relaxed);
                if let Err(e) = parsed {
                    shared.first_error.set(e);
                }
                // Socket.IO: the server's ping wants a pong (counted with the client pings).
                if let Some(pong) = dialect.pong().filter(|_| pinged) {
                    match tokio::time::timeout(Duration::from_secs(10), ws.send(pong)).await {
                        Ok(Ok(())) => { shared.pings_sent.fetch_add(1, Ordering::Relaxed); }
                        _ => {
                            shared.closed_early.fetch_add(1, Ordering::Relaxed);
                            shared.first_error.set("pong send failed".into());
                            return;
                        }
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
}

// ---------------------------------------------------------------------------------------
// broadcast

async fn broadcast(
    case: &Case,
    setup: &RoundSetup,
    spec: &ConnectSpec,
    server: &Server,
    dialect: Dialect,
) -> Result<(Sample, Option<String>), String> {
    let open_errors = FirstError::default();
    let sockets = open_many_in(dialect, spec, 1, case.connections, setup.open_concurrency, &open_errors).await;
    let listeners = sockets.len();
    if listeners == 0 {
        return Err(open_errors.take().unwrap_or_else(|| "no listener opened".into()));
    }
    let shared = ListenShared::new(dialect);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut set = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        set.spawn(listen(ws, i, shared.clone(), stop_rx.clone()));
    }
    let sender = dialect.open(spec, 0).await.map_err(|e| format!("sender: {e}"))?;
    let (mut sink, stream) = sender.split();
    let completions = Arc::new(AtomicU64::new(0));
    let send_errors = Arc::new(AtomicU64::new(0));
    let sender_error = Arc::new(FirstError::default());
    let pings_owed = Arc::new(AtomicU64::new(0));
    let reader = spawn_sender_reader(
        stream,
        dialect,
        SenderCounts {
            completions: completions.clone(),
            send_errors: send_errors.clone(),
            first_error: sender_error.clone(),
            pings_owed: pings_owed.clone(),
        },
        stop_rx.clone(),
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let begin = Instant::now();
    let measure_from = begin + setup.warmup;
    let end = measure_from + case.duration;
    let warmup_us = setup.warmup.as_micros() as u64;
    shared.time_from_us.store(now_us() + warmup_us, Ordering::Relaxed);
    let meter = Meter::start(server.pid);
    let period = Duration::from_secs_f64(1.0 / case.rate.max(0.001));
    let mut tick = tokio::time::interval_at(begin, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent: u64 = 0;
    let mut buf = Vec::new();
    let mut send_failed = None;
    while Instant::now() < end {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        sent += 1;
        let mut message = format!("{};", now_us());
        while message.len() < case.payload {
            message.push('x');
        }
        buf.clear();
        dialect.write_call(&mut buf, Some(&sent.to_string()), "SendToAll", &message);
        let call = dialect.frame(buf.clone());
        match tokio::time::timeout(
            Duration::from_secs(10),
            send_with_pong(&mut sink, dialect, &pings_owed, call),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                send_failed = Some(e);
                break;
            }
            Err(_) => {
                send_failed = Some("sender: a send took over 10 s".into());
                break;
            }
        }
    }
    let send_secs = begin.elapsed().as_secs_f64();
    let expected = sent * listeners as u64;
    wait_for_deliveries(&shared.delivered, expected).await;
    let delivered = shared.delivered.load(Ordering::Relaxed);
    // Deliveries per second over the time they took: sending, and the drain after it when
    // the server (or the machine) fell behind.
    let deliver_secs = if delivered >= expected {
        begin.elapsed().as_secs_f64().max(send_secs)
    } else {
        send_secs
    };
    let mut sample = Sample::default();
    sample.put("sent", sent as f64);
    sample.put("deliveries_per_s", delivered as f64 / deliver_secs.max(1e-9));
    sample.put("drain_s", (deliver_secs - send_secs).max(0.0));
    sample.put(
        "delivered_pct",
        if expected == 0 {
            0.0
        } else {
            delivered as f64 * 100.0 / expected as f64
        },
    );
    let h = shared.latencies.merged();
    sample.put("latency_p50_us", h.value_at_quantile(0.50) as f64);
    sample.put("latency_p99_us", h.value_at_quantile(0.99) as f64);
    meter.finish(&mut sample, Some(delivered as f64));
    sample.put("server_rss_mib", rss_mib(server.pid));
    let closed = shared.closed_early.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    reader.abort();
    let errors = (case.connections - listeners) as u64
        + closed
        + send_errors.load(Ordering::Relaxed)
        + u64::from(send_failed.is_some());
    sample.put("errors", errors as f64);
    let error = send_failed
        .or_else(|| open_errors.take())
        .or_else(|| sender_error.take())
        .or_else(|| shared.first_error.take());
    Ok((sample, error))
}

/// Sends the broadcast sender's call, after a pong when its reader saw a Socket.IO ping.
async fn send_with_pong<S>(sink: &mut S, dialect: Dialect, pings_owed: &AtomicU64, call: Message) -> Result<(), String>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    if let Some(pong) = dialect.pong().filter(|_| pings_owed.swap(0, Ordering::Relaxed) > 0) {
        sink.send(pong).await.map_err(|e| format!("sender: pong: {e}"))?;
    }
    sink.send(call).await.map_err(|e| format!("sender: {e}"))
}

/// What the broadcast sender's reader counts.
pub struct SenderCounts {
    pub completions: Arc<AtomicU64>,
    pub send_errors: Arc<AtomicU64>,
    pub first_error: Arc<FirstError>,
    /// Socket.IO pings the reader saw and the send loop still has to answer (it owns the sink).
    pub pings_owed: Arc<AtomicU64>,
}

/// The sender's own reader: completions (acks) of its SendToAll calls (and its own copies of
/// the broadcast, which it ignores). Socket.IO pings are counted in `pings_owed` for the send
/// loop to answer.
pub fn spawn_sender_reader<S>(
    mut stream: S,
    dialect: Dialect,
    counts: SenderCounts,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                incoming = stream.next() => {
                    let Some(Ok(message)) = incoming else { break };
                    if let Some(data) = client::payload(&message) {
                        let _ = dialect.parse(data, |m| {
                            if matches!(m, Incoming::Ping) && dialect.pong().is_some() {
                                counts.pings_owed.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Incoming::Completion { result, .. } = m {
                                match result {
                                    Ok(_) => { counts.completions.fetch_add(1, Ordering::Relaxed); }
                                    Err(e) => {
                                        counts.send_errors.fetch_add(1, Ordering::Relaxed);
                                        counts.first_error.set(format!("SendToAll failed: {e}"));
                                    }
                                }
                            }
                        });
                    }
                }
            }
        }
    })
}

/// Waits for the last deliveries: until `expected` arrived, or nothing moved for 3 s (at most
/// 30 s).
pub async fn wait_for_deliveries(delivered: &AtomicU64, expected: u64) {
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    let mut last = delivered.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while Instant::now() < drain_deadline {
        let now_delivered = delivered.load(Ordering::Relaxed);
        if now_delivered >= expected {
            break;
        }
        if now_delivered != last {
            last = now_delivered;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// connections

struct HoldShared {
    opened: AtomicU64,
    failed: AtomicU64,
    open_latencies: Latencies,
    first_error: FirstError,
}

async fn connections(
    case: &Case,
    setup: &RoundSetup,
    spec: &ConnectSpec,
    server: &Server,
    dialect: Dialect,
) -> Result<(Sample, Option<String>), String> {
    let n = case.connections;
    let fd_limit = sys::raise_fd_limit() as usize;
    let needed = n + sys::open_fds() + 32;
    if needed > fd_limit {
        return Err(format!(
            "{n} connections need about {needed} file descriptors in this process; its limit is {fd_limit}"
        ));
    }
    let listen_shared = ListenShared::new(dialect);
    let hold = Arc::new(HoldShared {
        opened: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        open_latencies: Latencies::new(),
        first_error: FirstError::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let semaphore = Arc::new(Semaphore::new(setup.open_concurrency.max(1)));
    let mut set = JoinSet::new();
    let spawn_range = |set: &mut JoinSet<()>, range: std::ops::Range<usize>| {
        for i in range {
            let (spec, hold, listen_shared, semaphore, stop) = (
                spec.clone(),
                hold.clone(),
                listen_shared.clone(),
                semaphore.clone(),
                stop_rx.clone(),
            );
            set.spawn(async move {
                let permit = semaphore.acquire_owned().await;
                let started = Instant::now();
                let ws = dialect.open(&spec, i).await;
                drop(permit);
                match ws {
                    Ok(ws) => {
                        hold.open_latencies.record(i, started.elapsed().as_micros() as u64);
                        hold.opened.fetch_add(1, Ordering::Relaxed);
                        listen(ws, i, listen_shared, stop).await;
                    }
                    Err(e) => {
                        hold.failed.fetch_add(1, Ordering::Relaxed);
                        hold.first_error.set(e);
                    }
                }
            });
        }
    };
    let wait_opened = |target: u64, limit: Duration| {
        let hold = hold.clone();
        async move {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if hold.opened.load(Ordering::Relaxed) + hold.failed.load(Ordering::Relaxed) >= target {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        }
    };
    // A few connections first, so one-time costs (first allocations, lazily built tables)
    // are in the baseline and the figure is the marginal cost of one more connection.
    let warm = (n / 20).clamp(1, 100).min(n);
    spawn_range(&mut set, 0..warm);
    wait_opened(warm as u64, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = sys::process_rss_bytes(server.pid).unwrap_or(0);
    let meter = Meter::start(server.pid);
    let open_start = Instant::now();
    spawn_range(&mut set, warm..n);
    let open_limit = Duration::from_secs(60 + n as u64 / 100);
    let all_tried = wait_opened(n as u64, open_limit).await;
    let open_secs = open_start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_open = sys::process_rss_bytes(server.pid).unwrap_or(0);
    tokio::time::sleep(case.duration).await;
    let rss_held = sys::process_rss_bytes(server.pid).unwrap_or(0);
    let opened = hold.opened.load(Ordering::Relaxed);
    let closed = listen_shared.closed_early.load(Ordering::Relaxed);
    let failed = hold.failed.load(Ordering::Relaxed) + if all_tried { 0 } else { n as u64 - opened };
    let measured = opened.saturating_sub(warm as u64).max(1) as f64;
    let mut sample = Sample::default();
    sample.put("held", opened.saturating_sub(closed) as f64);
    sample.put("open_s", open_secs);
    sample.put(
        "open_per_s",
        (opened as f64 - warm as f64).max(0.0) / open_secs.max(1e-9),
    );
    let h = hold.open_latencies.merged();
    sample.put("open_p50_us", h.value_at_quantile(0.50) as f64);
    sample.put("open_p99_us", h.value_at_quantile(0.99) as f64);
    sample.put("rss_before_mib", rss_before as f64 / (1024.0 * 1024.0));
    sample.put("rss_held_mib", rss_held as f64 / (1024.0 * 1024.0));
    let per_conn_open = (rss_open as f64 - rss_before as f64) / measured;
    let per_conn = (rss_held as f64 - rss_before as f64) / measured;
    sample.put("rss_per_conn_open_kib", per_conn_open / 1024.0);
    sample.put("rss_per_conn_kib", per_conn / 1024.0);
    sample.put(
        "fit_in_24gib",
        if per_conn > 0.0 {
            (24.0 * 1024.0 * 1024.0 * 1024.0 / per_conn).floor()
        } else {
            0.0
        },
    );
    sample.put("pings_sent", listen_shared.pings_sent.load(Ordering::Relaxed) as f64);
    meter.finish(&mut sample, None);
    sample.put("errors", (failed + closed) as f64);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    let error = hold.first_error.take().or_else(|| listen_shared.first_error.take());
    Ok((sample, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broadcast sender's reader counts Socket.IO pings (and acks); the send loop answers
    /// them before its next call (hub Pings are not answered).
    #[tokio::test]
    async fn the_sender_answers_socketio_pings() {
        let counts = SenderCounts {
            completions: Arc::new(AtomicU64::new(0)),
            send_errors: Arc::new(AtomicU64::new(0)),
            first_error: Arc::new(FirstError::default()),
            pings_owed: Arc::new(AtomicU64::new(0)),
        };
        let (pings_owed, completions) = (counts.pings_owed.clone(), counts.completions.clone());
        let frames = ["2", "431[null]", "42[\"receive\",\"1;x\"]", "2"]
            .map(|t| Ok::<_, tokio_tungstenite::tungstenite::Error>(Message::text(t)));
        let (_stop_tx, stop_rx) = watch::channel(false);
        let reader = spawn_sender_reader(futures_util::stream::iter(frames), Dialect::SocketIo, counts, stop_rx);
        reader.await.expect("reader ends with its stream");
        assert_eq!(
            (pings_owed.load(Ordering::Relaxed), completions.load(Ordering::Relaxed)),
            (2, 1)
        );
        let mut sent: Vec<Message> = Vec::new();
        let call = || Message::text("42[]");
        send_with_pong(&mut sent, Dialect::SocketIo, &pings_owed, call())
            .await
            .expect("sent");
        send_with_pong(&mut sent, Dialect::SocketIo, &pings_owed, call())
            .await
            .expect("sent");
        assert_eq!(sent, vec![Message::text("3"), call(), call()]);
        let hub_owed = AtomicU64::new(1);
        let mut hub_sent: Vec<Message> = Vec::new();
        send_with_pong(&mut hub_sent, Dialect::SignalR(Proto::Json), &hub_owed, call())
            .await
            .expect("sent");
        assert_eq!(hub_sent, vec![call()]);
    }
}
