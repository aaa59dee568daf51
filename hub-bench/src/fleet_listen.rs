//! `hub-bench fleet-listen`: one generator process of the fleet scenario. One process may hold
//! only so many open files, so the fleet's listeners are spread over several of these.
//!
//! It opens its share of listeners (each share a server and a range of connection numbers,
//! the numbers choosing the 127.0.0.x source address), each listening as soon as it is open,
//! and reads every message into a
//! scale-out [`Tally`] timed on the machine's monotonic clock (the sender is another
//! process). It talks to the harness in lines: the harness writes `first N` (messages from
//! N on are measured; answered before N is sent) and `stop`; the generator writes JSON
//! [`Report`]s. It stops by itself on `stop`, at the end of its input, or at its deadline.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{self, ConnectSpec};
use crate::scaleout_listen::{listen, Tally};
use crate::sys;
use crate::wire::Proto;

/// How often a generator reports its listeners that have joined and its deliveries.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// Listeners on one server: connections `first_index .. first_index + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub server: SocketAddr,
    pub first_index: usize,
    pub count: usize,
}

impl Share {
    fn to_arg(self) -> String {
        format!("{}/{}/{}", self.server, self.first_index, self.count)
    }

    fn parse(text: &str) -> Option<Share> {
        let mut parts = text.split('/');
        let share = Share {
            server: parts.next()?.parse().ok()?,
            first_index: parts.next()?.parse().ok()?,
            count: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(share)
    }
}

/// What one generator is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub shares: Vec<Share>,
    /// Source addresses, chosen by connection number.
    pub sources: Vec<Ipv4Addr>,
    pub proto: Proto,
    pub open_concurrency: usize,
    /// The highest sequence number the sender can reach (anything above is not ours).
    pub max_seq: u64,
    /// How long the generator may live at most.
    pub deadline: Duration,
    /// Its runtime's worker threads.
    pub threads: usize,
}

impl Request {
    /// The child's command line (after the binary).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["fleet-listen".to_string()];
        for share in &self.shares {
            args.extend(["--share".into(), share.to_arg()]);
        }
        let sources: Vec<String> = self.sources.iter().map(Ipv4Addr::to_string).collect();
        args.extend([
            "--sources".into(),
            sources.join(","),
            "--protocol".into(),
            self.proto.name().into(),
            "--open-concurrency".into(),
            self.open_concurrency.to_string(),
            "--max-seq".into(),
            self.max_seq.to_string(),
            "--deadline".into(),
            self.deadline.as_secs_f64().to_string(),
            "--threads".into(),
            self.threads.to_string(),
        ]);
        args
    }

    pub fn parse(args: &[String]) -> Result<Request, String> {
        let mut request = Request {
            shares: Vec::new(),
            sources: vec![Ipv4Addr::LOCALHOST],
            proto: Proto::Json,
            open_concurrency: 64,
            max_seq: 1000,
            deadline: Duration::from_secs(600),
            threads: 1,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let value = it.next().ok_or(format!("{arg} needs a value"))?;
            let bad = || format!("{arg}: bad value '{value}'");
            match arg.as_str() {
                "--share" => request.shares.push(Share::parse(value).ok_or_else(bad)?),
                "--sources" => {
                    request.sources = value
                        .split(',')
                        .map(|a| a.parse::<Ipv4Addr>().ok().filter(Ipv4Addr::is_loopback))
                        .collect::<Option<Vec<_>>>()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(bad)?;
                }
                "--protocol" => request.proto = Proto::from_name(value).ok_or_else(bad)?,
                "--open-concurrency" => request.open_concurrency = value.parse::<usize>().map_err(|_| bad())?.max(1),
                "--max-seq" => request.max_seq = value.parse().map_err(|_| bad())?,
                "--deadline" => {
                    request.deadline = Duration::from_secs_f64(value.parse::<f64>().map_err(|_| bad())?.max(1.0));
                }
                "--threads" => request.threads = value.parse::<usize>().map_err(|_| bad())?.max(1),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        if request.shares.is_empty() {
            return Err("at least one --share ADDR/FIRST/COUNT".into());
        }
        Ok(request)
    }

    pub fn connections(&self) -> usize {
        self.shares.iter().map(|s| s.count).sum()
    }
}

/// What the generator tells the harness, one JSON line each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// Every listener it was asked for has opened or failed to.
    Opened {
        opened: usize,
        failed: usize,
        seconds: f64,
        first_error: Option<String>,
    },
    /// Listeners that have received a message; measured deliveries so far.
    Status { ready: u64, delivered: u64 },
    /// `first N` was heard: messages from N on are measured.
    Window { first: u64 },
    /// The end: everything it counted.
    Final(Final),
}

/// A generator's counts at the end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Final {
    pub ready: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub malformed: u64,
    pub closed_early: u64,
    /// The latency histogram in µs: `(value, count)` pairs.
    pub latencies_us: Vec<(u64, u64)>,
    pub first_error: Option<String>,
}

impl Report {
    pub fn parse(line: &str) -> Option<Report> {
        serde_json::from_str(line).ok()
    }
}

async fn say<W: AsyncWrite + Unpin>(out: &mut W, report: &Report) -> bool {
    let mut line = serde_json::to_string(report).unwrap_or_default();
    line.push('\n');
    out.write_all(line.as_bytes()).await.is_ok() && out.flush().await.is_ok()
}

/// The generator: opens its listeners, reports, counts, stops. `control` carries the
/// harness's lines, `out` the reports.
pub async fn serve<R, W>(request: &Request, control: R, mut out: W)
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let deadline = Instant::now() + request.deadline;
    let started = Instant::now();
    let tally = Arc::new(Tally::with_clock(request.proto, sys::monotonic_us));
    tally.last_sent.store(request.max_seq, Ordering::Release);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each listener starts listening (and pinging) as soon as it is open: the server drops a
    // client it has not heard from in 30 s, and opening a whole share takes a while.
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let permits = Arc::new(Semaphore::new(request.open_concurrency));
    let mut set = JoinSet::new();
    for share in &request.shares {
        let spec = ConnectSpec {
            server: share.server,
            sources: request.sources.clone(),
            negotiate: true,
            proto: request.proto,
            path: "/broadcast".into(),
            query: String::new(),
            version: 1,
        };
        for index in share.first_index..share.first_index + share.count {
            let (spec, permits, opened) = (spec.clone(), permits.clone(), opened_tx.clone());
            let (tally, stop) = (tally.clone(), stop_rx.clone());
            set.spawn(async move {
                let ws = {
                    let _permit = permits.acquire_owned().await;
                    client::open(&spec, index).await
                };
                match ws {
                    Ok(ws) => {
                        let _ = opened.send(Ok(()));
                        drop(opened);
                        listen(ws, index, tally, stop).await;
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                    }
                }
            });
        }
    }
    drop(opened_tx);
    let (mut opened, mut failed, mut first_error) = (0, 0, None);
    while opened + failed < request.connections() {
        let Some(result) = opened_rx.recv().await else { break };
        match result {
            Ok(()) => opened += 1,
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let report = Report::Opened {
        opened,
        failed,
        seconds: started.elapsed().as_secs_f64(),
        first_error,
    };
    if !say(&mut out, &report).await {
        return;
    }
    let mut lines = control.lines();
    let mut status = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = status.tick() => {
                let report = Report::Status {
                    ready: tally.ready.load(Ordering::Relaxed),
                    delivered: tally.delivered.load(Ordering::Relaxed),
                };
                if !say(&mut out, &report).await {
                    break;
                }
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if let Some(first) = line.strip_prefix("first ").and_then(|n| n.trim().parse::<u64>().ok()) {
                        tally.first_measured.store(first, Ordering::Release);
                        if !say(&mut out, &Report::Window { first }).await {
                            break;
                        }
                    } else if line.trim() == "stop" {
                        break;
                    }
                }
                _ => break,
            },
        }
    }
    let closed_early = tally.closed_early.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    set.abort_all();
    let histogram = tally.latencies.merged();
    let end = Final {
        ready: tally.ready.load(Ordering::Relaxed),
        delivered: tally.delivered.load(Ordering::Relaxed),
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        out_of_order: tally.out_of_order.load(Ordering::Relaxed),
        malformed: tally.malformed.load(Ordering::Relaxed),
        closed_early,
        latencies_us: histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
        first_error: tally.first_error.take(),
    };
    let _ = say(&mut out, &Report::Final(end)).await;
}

/// The `fleet-listen` subcommand: stdin carries the harness's lines, stdout the reports.
pub fn main(args: &[String]) -> Result<(), String> {
    let request = Request::parse(args)?;
    sys::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(request.threads)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(
        &request,
        tokio::io::BufReader::new(tokio::io::stdin()),
        tokio::io::stdout(),
    ));
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_its_command_line() {
        let request = Request {
            shares: vec![
                Share {
                    server: "127.0.0.1:4000".parse().expect("addr"),
                    first_index: 0,
                    count: 10,
                },
                Share {
                    server: "127.0.0.1:4001".parse().expect("addr"),
                    first_index: 10,
                    count: 5,
                },
            ],
            sources: vec![Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)],
            proto: Proto::MessagePack,
            open_concurrency: 16,
            max_seq: 77,
            deadline: Duration::from_secs(90),
            threads: 2,
        };
        let args = request.to_args();
        assert_eq!(args[0], "fleet-listen");
        assert_eq!(Request::parse(&args[1..]), Ok(request.clone()));
        assert_eq!(request.connections(), 15);
        let bad = |args: &[&str]| Request::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).is_err();
        assert!(bad(&[]), "no share");
        assert!(bad(&["--share", "127.0.0.1:1/2"]));
        assert!(
            bad(&["--share", "127.0.0.1:1/0/2", "--sources", "10.0.0.1"]),
            "loopback only"
        );
    }

    #[test]
    fn reports_read_back() {
        let reports = [
            Report::Opened {
                opened: 3,
                failed: 1,
                seconds: 0.5,
                first_error: Some("refused".into()),
            },
            Report::Status { ready: 2, delivered: 9 },
            Report::Window { first: 4 },
            Report::Final(Final {
                delivered: 5,
                latencies_us: vec![(100, 2), (250, 3)],
                ..Final::default()
            }),
        ];
        for report in reports {
            let line = serde_json::to_string(&report).expect("json");
            assert_eq!(Report::parse(&line), Some(report));
        }
        assert_eq!(Report::parse("{\"kind\":\"nonsense\"}"), None);
    }
}
