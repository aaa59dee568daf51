//! `hub-bench client`: the Rust client (`hub-client`, calling through a typed contract proxy)
//! beside the harness's hand-written client, against the `interop` server. Echo calls/s and
//! latency in alternating rounds (same connections, payload and protocol for both), then the
//! resident memory of 1,000 idle connections of each, measured in a child process.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::idle::{ClientKind, IdleReport, IdleRequest};
use crate::report::{cell, round, Stat};
use crate::scenario::{self, Case, RoundSetup, Sample, Scenario};
use crate::server::{Launch, Server, Target};
use crate::typed::{EchoPlan, TypedSpec};
use crate::wire::Proto;

/// The target: typed client throughput ≥ 0.9 × the hand-written client's.
pub const THROUGHPUT_TARGET: f64 = 0.9;

const USAGE: &str = "\
usage: hub-bench client [options]   the Rust client (hub-client through a typed contract proxy)
                                     beside the harness's hand-written client, against interop
  --connections N       echo connections, each with one call in flight (default 64)
  --payload S           echo payload bytes (default 32)
  --duration D          measured seconds per round (default 5)
  --warmup S            seconds before measuring (default 1)
  --rounds K            rounds per client, alternating (default 3)
  --protocol P          json | messagepack (default json)
  --idle N              idle connections per client for the memory figure (default 1000; 0 skips)
  --open-concurrency C  connections opening at once (default 64)
  --gen-threads T       load generator worker threads (default: number of cores)
  --interop PATH        the interop server (default: next to this binary)
  --no-build            do not run `cargo build --release --bin interop` first
  --json-out FILE       also append the JSON line to FILE
Both clients negotiate and use WebSockets; every round starts a fresh interop server.
";

/// The `client` subcommand's options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connections: usize,
    pub payload: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: usize,
    pub proto: Proto,
    pub idle: usize,
    pub open_concurrency: usize,
    pub gen_threads: usize,
    pub interop: Option<PathBuf>,
    pub build: bool,
    pub json_out: Option<PathBuf>,
}

impl ClientOptions {
    pub fn parse(args: &[String]) -> Result<ClientOptions, String> {
        let mut o = ClientOptions {
            connections: 64,
            payload: 32,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            rounds: 3,
            proto: Proto::Json,
            idle: 1000,
            open_concurrency: 64,
            gen_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            interop: None,
            build: true,
            json_out: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
            fn num<T: std::str::FromStr>(name: &str, text: String) -> Result<T, String> {
                text.parse().map_err(|_| format!("{name}: not a number: '{text}'"))
            }
            let secs = |v: f64| Duration::from_secs_f64(v.max(0.0));
            match arg.as_str() {
                "--connections" | "-n" => o.connections = num::<usize>(arg, value()?)?.max(1),
                "--payload" => o.payload = num(arg, value()?)?,
                "--duration" => o.duration = secs(num::<f64>(arg, value()?)?.max(0.1)),
                "--warmup" => o.warmup = secs(num(arg, value()?)?),
                "--rounds" => o.rounds = num::<usize>(arg, value()?)?.max(1),
                "--protocol" => {
                    let v = value()?;
                    o.proto = Proto::from_name(&v).ok_or(format!("unknown protocol '{v}'"))?;
                }
                "--idle" => o.idle = num(arg, value()?)?,
                "--open-concurrency" => o.open_concurrency = num::<usize>(arg, value()?)?.max(1),
                "--gen-threads" => o.gen_threads = num::<usize>(arg, value()?)?.max(1),
                "--interop" => o.interop = Some(PathBuf::from(value()?)),
                "--no-build" => o.build = false,
                "--json-out" => o.json_out = Some(PathBuf::from(value()?)),
                "--help" | "-h" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument '{other}' (try --help)")),
            }
        }
        Ok(o)
    }
}

/// The `client` subcommand; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match ClientOptions::parse(args) {
        Ok(opts) => opts,
        Err(e) if e == USAGE => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("hub-bench client: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.gen_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hub-bench client: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(async {
        match run(&opts).await {
            Ok(ok) => i32::from(!ok),
            Err(e) => {
                eprintln!("hub-bench client: {e}");
                1
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    code
}

/// One echo round of one client.
pub struct ClientRound {
    pub kind: ClientKind,
    pub sample: Sample,
    pub error: Option<String>,
}

/// Everything one `hub-bench client` run measured.
pub struct ClientResults {
    pub rounds: Vec<ClientRound>,
    pub idle: Vec<(ClientKind, Result<IdleReport, String>)>,
}

async fn run(opts: &ClientOptions) -> Result<bool, String> {
    let fd_limit = crate::sys::raise_fd_limit();
    let launch = Launch {
        interop: crate::interop_path(opts.interop.as_deref(), opts.build)?,
        interop_args: Vec::new(),
        floor_exe: std::env::current_exe().map_err(|e| e.to_string())?,
        listen: "127.0.0.1:0".into(),
        log_dir: std::env::temp_dir().join(format!("hub-bench-{}", std::process::id())),
    };
    eprintln!(
        "hub-bench client: echo · {} · {} connections × {} B · {} s, {} round(s) per client; idle {}; generator threads {}, open-file limit {fd_limit}; server logs in {}",
        opts.proto.name(),
        opts.connections,
        opts.payload,
        opts.duration.as_secs_f64(),
        opts.rounds,
        opts.idle,
        opts.gen_threads,
        launch.log_dir.display()
    );
    let results = measure(opts, &launch).await?;
    let clean = results.rounds.iter().all(|r| r.sample.get("errors") == Some(0.0))
        && results
            .idle
            .iter()
            .all(|(_, r)| matches!(r, Ok(report) if report.errors == 0));
    let (table, line) = render(opts, &results);
    println!("{table}");
    println!("{line}");
    if let Some(path) = &opts.json_out {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(file, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(clean)
}

/// Runs the echo rounds (alternating which client goes first) and the idle children.
pub async fn measure(opts: &ClientOptions, launch: &Launch) -> Result<ClientResults, String> {
    let mut rounds = Vec::new();
    for round in 0..opts.rounds {
        let mut order = [ClientKind::HandWritten, ClientKind::Typed];
        if round % 2 == 1 {
            order.reverse();
        }
        for kind in order {
            let tag = format!("client-{}-{}-r{round}", kind.name(), opts.proto.name());
            let server = Server::start(Target::Hub, launch, &tag).await?;
            // Let the server settle (its runtime threads start, its memory stabilises).
            tokio::time::sleep(Duration::from_millis(300)).await;
            let outcome = echo_round(opts, kind, &server).await;
            server.stop().await;
            match outcome {
                Ok((sample, error)) => {
                    eprintln!(
                        "   round {} {:<12} {}{}",
                        round + 1,
                        kind.name(),
                        crate::report::brief(Scenario::Echo, &sample),
                        error
                            .as_ref()
                            .map(|e| format!("  [first error: {e}]"))
                            .unwrap_or_default()
                    );
                    rounds.push(ClientRound { kind, sample, error });
                }
                Err(e) => {
                    eprintln!("   round {} {:<12} FAILED: {e}", round + 1, kind.name());
                    let mut sample = Sample::default();
                    sample.put("errors", 1.0);
                    rounds.push(ClientRound {
                        kind,
                        sample,
                        error: Some(e),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let mut idle = Vec::new();
    if opts.idle > 0 {
        for kind in [ClientKind::HandWritten, ClientKind::Typed] {
            let server = Server::start(Target::Hub, launch, &format!("client-idle-{}", kind.name())).await?;
            let request = IdleRequest {
                server: server.addr,
                kind,
                connections: opts.idle,
                proto: opts.proto,
                open_concurrency: opts.open_concurrency,
                hold: Duration::from_secs(2),
            };
            let report = idle_child(&launch.floor_exe, &request).await;
            server.stop().await;
            match &report {
                Ok(r) => eprintln!(
                    "   idle {:<12} {} connections: RSS {:.1} → {:.1} MiB = {:.2} MiB per 1,000{}",
                    kind.name(),
                    r.opened,
                    r.rss_before_bytes as f64 / 1048576.0,
                    r.rss_after_bytes as f64 / 1048576.0,
                    r.mib_per_1000().unwrap_or(f64::NAN),
                    if r.errors > 0 {
                        format!("  [{} failed to open]", r.errors)
                    } else {
                        String::new()
                    }
                ),
                Err(e) => eprintln!("   idle {:<12} FAILED: {e}", kind.name()),
            }
            idle.push((kind, report));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(ClientResults { rounds, idle })
}

async fn echo_round(
    opts: &ClientOptions,
    kind: ClientKind,
    server: &Server,
) -> Result<(Sample, Option<String>), String> {
    match kind {
        ClientKind::HandWritten => {
            let case = Case {
                scenario: Scenario::Echo,
                connections: opts.connections,
                payload: opts.payload,
                duration: opts.duration,
                rate: 0.0,
                proto: opts.proto,
            };
            let setup = RoundSetup {
                negotiate: true,
                sources: vec![std::net::Ipv4Addr::LOCALHOST],
                open_concurrency: opts.open_concurrency,
                warmup: opts.warmup,
                settle: Duration::ZERO,
                short_timeouts: false,
            };
            scenario::run(&case, &setup, server).await
        }
        ClientKind::Typed => {
            let spec = TypedSpec {
                url: format!("http://{}/broadcast", server.addr),
                proto: opts.proto,
            };
            let plan = EchoPlan {
                connections: opts.connections,
                payload: opts.payload,
                warmup: opts.warmup,
                duration: opts.duration,
                open_concurrency: opts.open_concurrency,
            };
            crate::typed::echo(&spec, &plan, server.pid).await
        }
    }
}

/// Runs `hub-bench client-idle` as a child (bounded: 120 s) and reads its JSON line.
async fn idle_child(exe: &std::path::Path, request: &IdleRequest) -> Result<IdleReport, String> {
    let child = tokio::process::Command::new(exe)
        .args(request.to_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .map_err(|_| "the idle child did not finish within 120 s".to_string())?
        .map_err(|e| format!("starting the idle child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find_map(IdleReport::from_json)
        .ok_or_else(|| format!("the idle child ({}) printed no report", output.status))
}

fn stat(results: &ClientResults, kind: ClientKind, metric: &str) -> Option<Stat> {
    Stat::of(
        results
            .rounds
            .iter()
            .filter(|r| r.kind == kind)
            .filter_map(|r| r.sample.get(metric))
            .collect(),
    )
}

/// typed median / hand-written median of `metric`.
pub fn ratio(results: &ClientResults, metric: &str) -> Option<f64> {
    let typed = stat(results, ClientKind::Typed, metric)?.median;
    let hand = stat(results, ClientKind::HandWritten, metric)?.median;
    (hand.abs() > 1e-12).then(|| typed / hand)
}

/// The human table and the JSON line.
pub fn render(opts: &ClientOptions, results: &ClientResults) -> (String, String) {
    const METRICS: [&str; 8] = [
        "throughput_per_s",
        "latency_p50_us",
        "latency_p99_us",
        "latency_p999_us",
        "generator_cpu_cores",
        "server_cpu_cores",
        "server_rss_mib",
        "errors",
    ];
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nhub-bench client — median [min – max] over {} round(s) per client; ratio = typed / hand-written",
        opts.rounds
    );
    let _ = writeln!(
        t,
        "\necho · {} · {} connections × {} B · {} s · against interop (negotiated WebSockets)",
        opts.proto.name(),
        opts.connections,
        opts.payload,
        opts.duration.as_secs_f64()
    );
    let _ = writeln!(
        t,
        "  {:<24} {:>34} {:>34} {:>9}",
        "metric", "hand-written", "typed", "ratio"
    );
    let mut metrics = Map::new();
    for name in METRICS {
        let hand = stat(results, ClientKind::HandWritten, name);
        let typed = stat(results, ClientKind::Typed, name);
        let r = ratio(results, name);
        let _ = writeln!(
            t,
            "  {:<24} {:>34} {:>34} {:>9}",
            name,
            cell(hand.as_ref()),
            cell(typed.as_ref()),
            r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into())
        );
        metrics.insert(
            name.into(),
            json!({
                "hand_written": hand.as_ref().map(Stat::to_json),
                "typed": typed.as_ref().map(Stat::to_json),
                "ratio": r.map(round),
            }),
        );
    }
    let throughput = ratio(results, "throughput_per_s");
    let met = throughput.map(|r| r >= THROUGHPUT_TARGET);
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "NOT MET",
        None => "not measured",
    };
    let _ = writeln!(
        t,
        "  typed client / hand-written = {}   (throughput; target ≥ {THROUGHPUT_TARGET}: {verdict})",
        throughput.map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into())
    );
    for r in results.rounds.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(
            t,
            "  note: {} round: {} errors; first error: {}",
            r.kind.name(),
            r.sample.get("errors").unwrap_or(0.0),
            r.error.as_deref().unwrap_or("")
        );
    }
    let idle_json = render_idle(&mut t, opts, results);
    let line = json!({
        "hub_bench_client": 1,
        "machine": crate::sys::machine(),
        "meta": {
            "rounds": opts.rounds,
            "generator_threads": opts.gen_threads,
            "warmup_s": opts.warmup.as_secs_f64(),
            "protocol": opts.proto.name(),
            "connections": opts.connections,
            "payload_bytes": opts.payload,
            "duration_s": opts.duration.as_secs_f64(),
            "idle_connections": opts.idle,
        },
        "echo": metrics,
        "target": {
            "name": "typed client throughput ≥ 0.9 × hand-written",
            "value": throughput.map(round),
            "met": met,
        },
        "idle": Value::Object(idle_json),
    });
    (t, line.to_string())
}

/// The idle section of the table; returns its JSON.
fn render_idle(t: &mut String, opts: &ClientOptions, results: &ClientResults) -> Map<String, Value> {
    let mut idle_json = Map::new();
    if results.idle.is_empty() {
        return idle_json;
    }
    let _ = writeln!(
        *t,
        "\nidle · {} · {} connections per client, held in a child process",
        opts.proto.name(),
        opts.idle
    );
    let mut per_1000 = Vec::new();
    for (kind, report) in &results.idle {
        match report {
            Ok(r) => {
                let mib = r.mib_per_1000();
                per_1000.push((*kind, mib));
                let _ = writeln!(
                    t,
                    "  {:<12} client RSS growth: {:>8} MiB per 1,000 connections  ({} opened, {} failed)",
                    kind.name(),
                    mib.map(|m| format!("{m:.2}")).unwrap_or_else(|| "—".into()),
                    r.opened,
                    r.errors
                );
                idle_json.insert(
                    kind.name().into(),
                    json!({
                        "opened": r.opened,
                        "failed": r.errors,
                        "rss_before_bytes": r.rss_before_bytes,
                        "rss_after_bytes": r.rss_after_bytes,
                        "mib_per_1000": mib.map(round),
                    }),
                );
            }
            Err(e) => {
                let _ = writeln!(*t, "  {:<12} FAILED: {e}", kind.name());
                idle_json.insert(kind.name().into(), json!({ "error": e }));
            }
        }
    }
    let find = |k: ClientKind| per_1000.iter().find(|(kind, _)| *kind == k).and_then(|(_, m)| *m);
    if let (Some(typed), Some(hand)) = (find(ClientKind::Typed), find(ClientKind::HandWritten)) {
        if hand > 1e-9 {
            let _ = writeln!(
                *t,
                "  typed client / hand-written = {:.2}   (memory per connection)",
                typed / hand
            );
        }
    }
    idle_json
}
