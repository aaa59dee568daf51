//! The `fleet` scenario: many WebSocket connections across several interop servers on one
//! box, joined through a backplane, one sender broadcasting to all of them.
//!
//! The broker and the servers start as in the scale-out scenario (`scaleout::start_servers`,
//! `brokers`); the listeners live in generator processes (`hub-bench fleet-listen`, see
//! `fleet_listen`), each holding a share, since one process may hold only so many open
//! files. The sender, in this process, calls `SendToAll` at the plan's rate; messages carry
//! their send time on the machine's monotonic clock, so each generator times its deliveries.
//! Every listener should receive a message first (all servers joined; at the join timeout the
//! run goes on and its report says how many had), then a warm-up; before the measured window
//! opens every generator is told its first message (and answers) so no
//! measured message can arrive before the generator knows it is measured.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::brokers::{Backplane, Broker};
use crate::client::{self, ConnectSpec};
use crate::fleet_listen::{self, Final, Report, Share};
use crate::fleet_meter::{CpuSnapshot, ProcessRow, Roster};
use crate::scaleout::{self, Cluster};
use crate::scaleout_listen::stamp_text_at;
use crate::scenario::{self, FirstError, Sample, SenderCounts};
use crate::server::Launch;
use crate::sys;
use crate::wire::Proto;

/// What a fleet run measures.
#[derive(Debug, Clone)]
pub struct Plan {
    pub backplane: Backplane,
    /// Interop processes.
    pub servers: usize,
    /// Listeners in total, spread evenly over the servers.
    pub connections: usize,
    /// At most this many listeners per generator process.
    pub per_generator: usize,
    /// SendToAll calls per second.
    pub rate: f64,
    pub payload: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// How long every listener may take to receive its first message.
    pub join_timeout: Duration,
    pub proto: Proto,
    /// Connections opening at once, per generator.
    pub open_concurrency: usize,
    pub sources: Vec<Ipv4Addr>,
    /// Worker threads of each generator.
    pub gen_threads: usize,
}

impl Plan {
    pub fn generators(&self) -> usize {
        self.connections.div_ceil(self.per_generator.max(1)).max(1)
    }

    pub fn title(&self) -> String {
        format!(
            "fleet · {} · {} · {} servers · {} connections in {} generators × {} msg/s · {} B · {} s",
            self.backplane.name(),
            self.proto.name(),
            self.servers,
            self.connections,
            self.generators(),
            self.rate,
            self.payload,
            self.duration.as_secs_f64()
        )
    }

    /// How long opening every listener may take (generators open in parallel).
    fn open_budget(&self) -> Duration {
        Duration::from_secs(60) + Duration::from_secs_f64(self.connections as f64 / 500.0)
    }

    /// The highest sequence number the sender can reach.
    fn max_seq(&self) -> u64 {
        let secs = (self.join_timeout + self.warmup + self.duration).as_secs_f64() + 30.0;
        (secs * self.rate.max(0.001)).ceil() as u64 + 100
    }
}

/// Where the generators run.
pub enum Spawner {
    /// `EXE fleet-listen …` processes (the real thing).
    Processes { exe: PathBuf, log_dir: PathBuf },
    /// Tasks in this process over in-memory pipes (tests).
    #[cfg(test)]
    InProcess,
}

/// A run's figures, or how far it got.
pub struct Outcome {
    pub sample: Sample,
    pub processes: Vec<ProcessRow>,
    pub error: Option<String>,
}

/// Which listeners each generator opens: the servers' blocks (`scaleout::shares`) cut into
/// the generators' consecutive ranges.
pub fn assign(servers: &[SocketAddr], connections: usize, generators: usize) -> Vec<Vec<Share>> {
    let mut blocks = Vec::new();
    let mut start = 0;
    for (server, count) in servers.iter().zip(scaleout::shares(connections, servers.len())) {
        blocks.push((*server, start, start + count));
        start += count;
    }
    let mut out = Vec::new();
    let mut from = 0;
    for count in scaleout::shares(connections, generators) {
        let to = from + count;
        let shares = blocks
            .iter()
            .filter_map(|&(server, a, b)| {
                let (lo, hi) = (a.max(from), b.min(to));
                (lo < hi).then(|| Share {
                    server,
                    first_index: lo,
                    count: hi - lo,
                })
            })
            .collect();
        out.push(shares);
        from = to;
    }
    out
}

/// What a generator's reader passes on (status lines go straight into [`Counters`]).
enum Event {
    Report(usize, Report),
    /// Its output ended (it exited).
    Gone(usize),
}

/// The fleet's listeners that have joined, and its measured deliveries (from status lines).
#[derive(Default)]
struct Counters {
    ready: AtomicU64,
    delivered: AtomicU64,
}

/// A running generator.
struct Generator {
    pid: Option<u32>,
    connections: usize,
    input: Box<dyn AsyncWrite + Send + Unpin>,
    child: Option<Child>,
}

impl Generator {
    async fn tell(&mut self, line: &str) -> bool {
        let line = format!("{line}\n");
        self.input.write_all(line.as_bytes()).await.is_ok() && self.input.flush().await.is_ok()
    }
}

/// Starts generator `index` and its reader.
fn spawn_generator(
    spawner: &Spawner,
    index: usize,
    request: fleet_listen::Request,
    events: mpsc::UnboundedSender<Event>,
    counters: Arc<Counters>,
) -> Result<Generator, String> {
    let connections = request.connections();
    let (pid, input, output, child): (
        _,
        Box<dyn AsyncWrite + Send + Unpin>,
        Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        _,
    ) = match spawner {
        Spawner::Processes { exe, log_dir } => {
            let log = log_dir.join(format!("fleet-listen-{index}.stderr.log"));
            let log = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let mut child = Command::new(exe)
                .args(request.to_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("starting generator {index}: {e}"))?;
            let stdin = child.stdin.take().ok_or("no stdin")?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            (child.id(), Box::new(stdin), Box::new(stdout), Some(child))
        }
        #[cfg(test)]
        Spawner::InProcess => {
            let (control_tx, control_rx) = tokio::io::duplex(64 * 1024);
            let (out_tx, out_rx) = tokio::io::duplex(1 << 20);
            tokio::spawn(async move { fleet_listen::serve(&request, BufReader::new(control_rx), out_tx).await });
            (None, Box::new(control_tx), Box::new(out_rx), None)
        }
    };
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        let (mut ready, mut delivered) = (0u64, 0u64);
        while let Ok(Some(line)) = lines.next_line().await {
            match Report::parse(&line) {
                Some(Report::Status { ready: r, delivered: d }) => {
                    counters.ready.fetch_add(r.saturating_sub(ready), Ordering::Relaxed);
                    counters
                        .delivered
                        .fetch_add(d.saturating_sub(delivered), Ordering::Relaxed);
                    (ready, delivered) = (r.max(ready), d.max(delivered));
                }
                Some(report) => {
                    let _ = events.send(Event::Report(index, report));
                }
                None => {}
            }
        }
        let _ = events.send(Event::Gone(index));
    });
    Ok(Generator {
        pid,
        connections,
        input,
        child,
    })
}

/// Broker, servers, measurement, teardown.
pub async fn run(plan: &Plan, launch: &Launch, spawner: &Spawner) -> Result<Outcome, String> {
    let load_before = scaleout::load_1m();
    let tag = format!("fleet-{}", plan.backplane.name());
    let broker = Broker::start(plan.backplane, &launch.log_dir, &tag)
        .await
        .map_err(|e| format!("starting {}: {e}", plan.backplane.name()))?;
    eprintln!(
        "   {} broker on 127.0.0.1:{} (pid {})",
        plan.backplane.name(),
        broker.port,
        broker.pid
    );
    let mut servers = Vec::new();
    let outcome = match scaleout::start_servers(plan.servers, launch, &broker, &tag, &mut servers).await {
        Ok(()) => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let cluster = Cluster {
                addrs: servers.iter().map(|s| s.addr).collect(),
                server_pids: servers.iter().map(|s| s.pid).collect(),
                broker: &broker,
            };
            measure(plan, &cluster, spawner).await
        }
        Err(e) => Err(e),
    };
    for server in servers {
        server.stop().await;
    }
    broker.stop(&launch.log_dir).await;
    let mut outcome = outcome?;
    outcome.sample.put("load_1m_at_start", load_before);
    outcome.sample.put("load_1m_at_end", scaleout::load_1m());
    Ok(outcome)
}

/// Waits for the next report of each generator matching `want`, or fails on one that exits.
async fn gather<T>(
    events: &mut mpsc::UnboundedReceiver<Event>,
    generators: usize,
    within: Duration,
    mut want: impl FnMut(usize, Report) -> Option<T>,
) -> Result<Vec<Option<T>>, String> {
    let mut out: Vec<Option<T>> = (0..generators).map(|_| None).collect();
    let deadline = Instant::now() + within;
    while out.iter().any(Option::is_none) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Report(i, report))) => {
                if let (Some(slot), Some(v)) = (out.get_mut(i), want(i, report)) {
                    *slot = Some(v);
                }
            }
            Ok(Some(Event::Gone(i))) if out.get(i).is_some_and(Option::is_none) => {
                return Err(format!("generator {i} exited early (see its stderr log)"))
            }
            Ok(Some(Event::Gone(_))) => {}
            Ok(None) | Err(_) => return Ok(out),
        }
    }
    Ok(out)
}

/// Opens, joins, measures, stops the generators; the figures.
pub async fn measure(plan: &Plan, cluster: &Cluster<'_>, spawner: &Spawner) -> Result<Outcome, String> {
    let idle_rss: Vec<u64> = cluster
        .server_pids
        .iter()
        .map(|&p| sys::process_rss_bytes(p).unwrap_or(0))
        .collect();
    let assignments = assign(&cluster.addrs, plan.connections, plan.generators());
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let counters = Arc::new(Counters::default());
    let deadline = plan.open_budget() + plan.join_timeout + plan.warmup + plan.duration + Duration::from_secs(120);
    let started = Instant::now();
    let mut generators = Vec::new();
    for (i, shares) in assignments.into_iter().enumerate() {
        let request = fleet_listen::Request {
            shares,
            sources: plan.sources.clone(),
            proto: plan.proto,
            open_concurrency: plan.open_concurrency,
            max_seq: plan.max_seq(),
            deadline,
            threads: plan.gen_threads,
        };
        generators.push(spawn_generator(
            spawner,
            i,
            request,
            events_tx.clone(),
            counters.clone(),
        )?);
    }
    let open_errors = FirstError::default();
    let opened = gather(&mut events, generators.len(), plan.open_budget(), |_, r| match r {
        Report::Opened {
            opened,
            failed,
            first_error,
            ..
        } => {
            if let Some(e) = first_error {
                open_errors.set(e);
            }
            Some((opened, failed))
        }
        _ => None,
    })
    .await?;
    let connect_s = started.elapsed().as_secs_f64();
    let listeners: usize = opened.iter().flatten().map(|(o, _)| o).sum();
    eprintln!(
        "   {listeners} of {} listeners open in {connect_s:.1} s (load average {})",
        plan.connections,
        sys::load_average()
    );
    if opened.iter().any(Option::is_none) || listeners == 0 {
        return Err(format!(
            "{listeners} of {} listeners open after {connect_s:.0} s; first error: {}",
            plan.connections,
            open_errors
                .take()
                .unwrap_or_else(|| "none (a generator did not answer)".into())
        ));
    }
    let roster = Roster {
        cluster,
        server_connections: scaleout::shares(plan.connections, cluster.addrs.len()),
        generators: generators.iter().map(|g| (g.pid, g.connections)).collect(),
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open_rss = roster.server_rss();
    let channels = cluster.broker.pubsub_channels().await;
    let mut sample = Sample::default();
    sample.put("connections", listeners as f64);
    sample.put("connect_s", connect_s);
    sample.put("connects_per_s", listeners as f64 / connect_s.max(1e-9));
    let idle: u64 = idle_rss.iter().sum();
    sample.put("server_rss_mib", open_rss as f64 / 1048576.0);
    sample.put(
        "server_kib_per_connection",
        open_rss.saturating_sub(idle) as f64 / 1024.0 / listeners as f64,
    );
    if let Some(channels) = channels {
        sample.put("redis_pubsub_channels", channels as f64);
    }
    let (window, rows, sender_error) = broadcast(
        plan,
        cluster,
        &roster,
        &mut generators,
        &mut events,
        &counters,
        listeners,
        &mut sample,
    )
    .await?;
    let (end, answered) = stop_generators(&mut generators, &mut events).await?;
    let expected = window.sent * listeners as u64;
    crate::fleet_report::delivery_figures(&mut sample, &end, expected, window.sent, window.join_s);
    let unanswered = (generators.len() - answered) as u64;
    let send_errors = sample.get("send_errors").unwrap_or(0.0) as u64;
    let errors = (plan.connections - listeners) as u64 + end.closed_early + end.malformed + unanswered + send_errors;
    sample.put("errors", errors as f64);
    let error = open_errors.take().or(sender_error).or(end.first_error.clone());
    Ok(Outcome {
        sample,
        processes: rows,
        error,
    })
}

/// Tells every generator to stop and reads their counts: the sum, and how many answered.
async fn stop_generators(
    generators: &mut [Generator],
    events: &mut mpsc::UnboundedReceiver<Event>,
) -> Result<(Final, usize), String> {
    for generator in generators.iter_mut() {
        generator.tell("stop").await;
    }
    let finals = gather(events, generators.len(), Duration::from_secs(30), |_, r| match r {
        Report::Final(f) => Some(f),
        _ => None,
    })
    .await?;
    for generator in generators.iter_mut() {
        if let Some(child) = generator.child.as_mut() {
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
            }
        }
    }
    let answered = finals.iter().flatten().count();
    Ok((merge(finals.into_iter().flatten()), answered))
}

/// The generators' counts added up.
fn merge(finals: impl Iterator<Item = Final>) -> Final {
    let mut all = Final::default();
    for f in finals {
        all.ready += f.ready;
        all.delivered += f.delivered;
        all.duplicates += f.duplicates;
        all.out_of_order += f.out_of_order;
        all.malformed += f.malformed;
        all.closed_early += f.closed_early;
        all.latencies_us.extend(f.latencies_us);
        all.first_error = all.first_error.or(f.first_error);
    }
    all
}

/// What the sender did.
struct Window {
    sent: u64,
    join_s: f64,
}

/// The sender: until every listener received a message (or the join timeout: then the
/// first error says how many had), through the warm-up, and through the measured window
/// (announced to the generators first); then the drain. Returns the window, the
/// per-process rows, and the first error.
#[allow(clippy::too_many_arguments)]
async fn broadcast(
    plan: &Plan,
    cluster: &Cluster<'_>,
    roster: &Roster<'_>,
    generators: &mut [Generator],
    events: &mut mpsc::UnboundedReceiver<Event>,
    counters: &Counters,
    listeners: usize,
    sample: &mut Sample,
) -> Result<(Window, Vec<ProcessRow>, Option<String>), String> {
    let spec = ConnectSpec {
        server: cluster.addrs[0],
        sources: plan.sources.clone(),
        negotiate: true,
        proto: plan.proto,
        path: "/broadcast".into(),
        query: String::new(),
        version: 1,
    };
    let sender = client::open(&spec, plan.connections)
        .await
        .map_err(|e| format!("sender: {e}"))?;
    let (mut sink, stream) = sender.split();
    let (stop_tx, stop_rx) = watch::channel(false);
    let counts = SenderCounts {
        completions: Arc::new(AtomicU64::new(0)),
        send_errors: Arc::new(AtomicU64::new(0)),
        first_error: Arc::new(FirstError::default()),
        pings_owed: Arc::new(AtomicU64::new(0)),
    };
    let sender_error = counts.first_error.clone();
    let send_errors = counts.send_errors.clone();
    let reader = scenario::spawn_sender_reader(stream, crate::socketio::Dialect::SignalR(plan.proto), counts, stop_rx);
    let begin = Instant::now();
    let period = Duration::from_secs_f64(1.0 / plan.rate.max(0.001));
    let mut tick = tokio::time::interval_at(begin, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut seq, mut join_s) = (0u64, None::<f64>);
    let mut warm_until = None;
    let (mut join_error, mut progress) = (None, Instant::now());
    let mut window: Option<(u64, Instant, CpuSnapshot)> = None;
    let mut buf = Vec::new();
    loop {
        let now = tick.tick().await;
        let ready = counters.ready.load(Ordering::Relaxed);
        if join_s.is_none() && (ready >= listeners as u64 || now >= begin + plan.join_timeout) {
            // Not every listener joined: measure anyway, so the report shows how far it got.
            if ready < listeners as u64 {
                join_error = Some(format!(
                    "only {ready} of {listeners} listeners received a message within {} s",
                    plan.join_timeout.as_secs_f64()
                ));
            }
            sample.put("listeners_joined", ready as f64);
            join_s = Some(begin.elapsed().as_secs_f64());
            warm_until = Some(now + plan.warmup);
        }
        if progress.elapsed() >= Duration::from_secs(5) {
            progress = Instant::now();
            eprintln!(
                "   {:>4.0} s: sent {seq}, joined {ready} of {listeners}, measured deliveries {} (load average {})",
                begin.elapsed().as_secs_f64(),
                counters.delivered.load(Ordering::Relaxed),
                sys::load_average()
            );
        }
        if window.is_none() && warm_until.is_some_and(|w| now >= w) {
            let first = seq + 1;
            for g in generators.iter_mut() {
                g.tell(&format!("first {first}")).await;
            }
            let heard = gather(events, generators.len(), Duration::from_secs(10), |_, r| {
                matches!(r, Report::Window { first: f } if f == first).then_some(())
            })
            .await?;
            if heard.iter().any(Option::is_none) {
                return Err("a generator did not acknowledge the window".into());
            }
            window = Some((first, now + plan.duration, roster.cpu()));
        }
        if window.as_ref().is_some_and(|(_, end, _)| now >= *end) {
            if let Some((first, _, cpu)) = window.take() {
                let sent = seq + 1 - first;
                let expected = sent * listeners as u64;
                let drain_from = Instant::now();
                scenario::wait_for_deliveries(&counters.delivered, expected).await;
                sample.put("drain_s", drain_from.elapsed().as_secs_f64());
                let delivered = counters.delivered.load(Ordering::Relaxed);
                let rows = roster.finish(&cpu, delivered, sample);
                let _ = stop_tx.send(true);
                let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                reader.abort();
                let failed = send_errors.load(Ordering::Relaxed);
                sample.put("send_errors", failed as f64);
                let join_s = join_s.unwrap_or(f64::NAN);
                return Ok((
                    Window { sent, join_s },
                    rows,
                    join_error.or_else(|| sender_error.take()),
                ));
            }
        }
        seq += 1;
        buf.clear();
        let text = stamp_text_at(seq, sys::monotonic_us(), plan.payload);
        plan.proto
            .write_invocation(&mut buf, Some(&seq.to_string()), "SendToAll", &text);
        match tokio::time::timeout(Duration::from_secs(10), sink.send(plan.proto.frame(buf.clone()))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("sender: {e}")),
            Err(_) => return Err("sender: a send took over 10 s".into()),
        }
    }
}

#[cfg(test)]
mod tests;
