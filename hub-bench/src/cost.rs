//! The feature-cost scenarios on Redis: what presence costs (`--scenario presence`: connect and
//! join with presence on vs off) and what history costs (`--scenario history`: publishing to a
//! durable group vs fanning out to a plain group).
//!
//! Each measurement gets a fresh private redis-server (`brokers.rs`) and a fresh bench hub
//! server (`hub-bench hub-server`, `bench_server.rs`) joined to it as backplane, presence and
//! history store; the two modes alternate from round to round. The table shows each mode's
//! medians and their ratio.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::brokers::{Backplane, Broker};
use crate::client::ConnectSpec;
use crate::scenario::Sample;
use crate::server::{Launch, Server, Target};
use crate::wire::Proto;
use crate::{cost_history, cost_presence, cost_report, sys};

pub const USAGE: &str = "\
usage: hub-bench --scenario presence|history [options]

The cost of a feature on Redis: a private redis-server and one bench hub server
(`hub-bench hub-server`: Redis backplane, RedisPresence, RedisHistory) per measurement, the two
modes alternating over the rounds; a table of medians with the ratio of the modes.

presence: the same hub with `#[hub(presence(joined, left))]` (on) and without (off). N
  WebSocket clients, users of P connections each, each user in one of G groups, connect
  (negotiate, upgrade, handshake) and call JoinGroup, C at a time: joins/s and the p50/p99 of
  connect+join; then each calls LeaveGroup: leaves/s and their p50/p99.
  --connections N       clients (default 1000)
  --per-user P          connections per user (default 4)
  --groups G            groups (default 10)
  --no-events           presence without join and leave events: `#[hub(presence)]` (members
                        and online users only) against no presence
history: L listeners of one group, and S senders each keeping W calls in flight: durable
  (`Publish` to a `durable-*` group kept in RedisHistory, listeners on `Subscribe` streams)
  vs plain (`SendToGroup`, listeners joined with JoinGroup). Messages/s published and
  delivered, p50/p99 delivery latency.
  --connections L       listeners (default 100)
  --senders S           sender connections (default 4)
  --window W            calls in flight per sender (default 8)
  --rate R              publishes per second in all (default 0: as fast as the window allows)
  --payload B           message bytes (default 32)
  --duration D          measured seconds (default 5)
  --warmup S            seconds between every listener's first message and the window (default 1)
both:
  --rounds K            rounds, each measuring both modes (default 3)
  --protocol P          json | messagepack (default json)
  --open-concurrency C  connections opening at once (default 64)
  --gen-threads T       load generator worker threads (default: number of cores)
  --json-out FILE       also append the JSON line to FILE
";

/// Which feature is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Presence,
    History,
}

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::Presence => "presence",
            Feature::History => "history",
        }
    }
}

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The hub with presence (`/presence`).
    PresenceOn,
    /// The hub with presence but without join and leave events (`/presence-quiet`).
    PresenceQuiet,
    /// The same hub without (`/plain`).
    PresenceOff,
    /// `Publish` to a durable group, listeners on `Subscribe`.
    Durable,
    /// `SendToGroup`, listeners in the group.
    Plain,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::PresenceOn => "presence on",
            Mode::PresenceQuiet => "quiet presence on",
            Mode::PresenceOff => "presence off",
            Mode::Durable => "durable",
            Mode::Plain => "plain",
        }
    }

    /// The bench hub's path.
    pub fn path(self) -> &'static str {
        match self {
            Mode::PresenceOn => "/presence",
            Mode::PresenceQuiet => "/presence-quiet",
            _ => "/plain",
        }
    }
}

/// What a feature-cost run measures.
#[derive(Debug, Clone)]
pub struct Plan {
    pub feature: Feature,
    /// Presence: clients; history: listeners.
    pub connections: usize,
    pub per_user: usize,
    /// Presence without join and leave events (`#[hub(presence)]`).
    pub quiet: bool,
    pub groups: usize,
    pub senders: usize,
    pub window: usize,
    /// Publishes per second in all; 0: closed loop.
    pub rate: f64,
    pub payload: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: usize,
    pub proto: Proto,
    pub open_concurrency: usize,
    pub gen_threads: usize,
    pub json_out: Option<PathBuf>,
}

impl Plan {
    /// The two modes, the feature's first: (on, off) or (durable, plain).
    pub fn modes(&self) -> [Mode; 2] {
        match self.feature {
            Feature::Presence if self.quiet => [Mode::PresenceQuiet, Mode::PresenceOff],
            Feature::Presence => [Mode::PresenceOn, Mode::PresenceOff],
            Feature::History => [Mode::Durable, Mode::Plain],
        }
    }

    pub fn title(&self) -> String {
        match self.feature {
            Feature::Presence => format!(
                "presence{} · {} · Redis · {} connections ({} users × {}, {} groups) · {} round(s)",
                if self.quiet { " without events" } else { "" },
                self.proto.name(),
                self.connections,
                self.connections.div_ceil(self.per_user),
                self.per_user,
                self.groups,
                self.rounds
            ),
            Feature::History => format!(
                "history · {} · Redis · {} listeners · {} senders × {} in flight{} · {} B · {} s · {} round(s)",
                self.proto.name(),
                self.connections,
                self.senders,
                self.window,
                if self.rate > 0.0 {
                    format!(" at {} msg/s", self.rate)
                } else {
                    String::new()
                },
                self.payload,
                self.duration.as_secs_f64(),
                self.rounds
            ),
        }
    }

    /// How a client reaches the bench hub of `mode` (negotiating, as real clients do).
    pub fn spec(&self, server: SocketAddr, mode: Mode, query: String) -> ConnectSpec {
        ConnectSpec {
            server,
            sources: vec![Ipv4Addr::LOCALHOST],
            negotiate: true,
            proto: self.proto,
            path: mode.path().into(),
            query,
            version: 1,
        }
    }
}

/// The plan when the command line asks for `--scenario presence` or `history`, else `None`.
pub fn parse(args: &[String]) -> Result<Option<Plan>, String> {
    let feature = args.windows(2).find_map(|w| match (w[0].as_str(), w[1].as_str()) {
        ("--scenario", "presence") => Some(Feature::Presence),
        ("--scenario", "history") => Some(Feature::History),
        _ => None,
    });
    let Some(feature) = feature else { return Ok(None) };
    let presence = feature == Feature::Presence;
    let mut plan = Plan {
        feature,
        connections: if presence { 1000 } else { 100 },
        per_user: 4,
        quiet: false,
        groups: 10,
        senders: 4,
        window: 8,
        rate: 0.0,
        payload: 32,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        rounds: 3,
        proto: Proto::Json,
        open_concurrency: 64,
        gen_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        json_out: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, text: String) -> Result<T, String> {
            text.parse().map_err(|_| format!("{name}: not a number: '{text}'"))
        }
        let secs = |name: &str, text: String| -> Result<Duration, String> {
            Ok(Duration::from_secs_f64(num::<f64>(name, text)?.max(0.0)))
        };
        match arg.as_str() {
            "--scenario" => {
                value()?;
            }
            "--connections" | "-n" => plan.connections = num::<usize>(arg, value()?)?.max(1),
            "--per-user" if presence => plan.per_user = num::<usize>(arg, value()?)?.max(1),
            "--no-events" if presence => plan.quiet = true,
            "--groups" if presence => plan.groups = num::<usize>(arg, value()?)?.max(1),
            "--senders" if !presence => plan.senders = num::<usize>(arg, value()?)?.max(1),
            "--window" if !presence => plan.window = num::<usize>(arg, value()?)?.max(1),
            "--rate" if !presence => plan.rate = num::<f64>(arg, value()?)?.max(0.0),
            "--payload" if !presence => plan.payload = num(arg, value()?)?,
            "--duration" if !presence => plan.duration = secs(arg, value()?)?.max(Duration::from_millis(100)),
            "--warmup" if !presence => plan.warmup = secs(arg, value()?)?,
            "--rounds" => plan.rounds = num::<usize>(arg, value()?)?.max(1),
            "--protocol" => {
                let v = value()?;
                plan.proto = Proto::from_name(&v).ok_or(format!("--protocol: json or messagepack, not '{v}'"))?;
            }
            "--open-concurrency" => plan.open_concurrency = num::<usize>(arg, value()?)?.max(1),
            "--gen-threads" => plan.gen_threads = num::<usize>(arg, value()?)?.max(1),
            "--json-out" => plan.json_out = Some(PathBuf::from(value()?)),
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => {
                return Err(format!(
                    "--scenario {}: unknown or foreign argument '{other}'",
                    feature.name()
                ))
            }
        }
    }
    Ok(Some(plan))
}

/// Runs the plan; the process's exit status (0: every measurement without errors).
pub fn main(plan: &Plan) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.gen_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hub-bench: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(async {
        match run(plan).await {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                eprintln!("hub-bench: {e}");
                1
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    code
}

/// One measurement of one mode.
pub struct ModeRound {
    pub mode: Mode,
    pub round: usize,
    pub sample: Option<Sample>,
    pub error: Option<String>,
}

async fn run(plan: &Plan) -> Result<bool, String> {
    let fd_limit = sys::raise_fd_limit();
    let launch = Launch {
        interop: PathBuf::new(),
        interop_args: Vec::new(),
        floor_exe: std::env::current_exe().map_err(|e| e.to_string())?,
        listen: "127.0.0.1:0".into(),
        log_dir: std::env::temp_dir().join(format!("hub-bench-{}", std::process::id())),
    };
    eprintln!(
        "hub-bench: {}, generator threads {}, open-file limit {fd_limit}; logs in {}",
        plan.title(),
        plan.gen_threads,
        launch.log_dir.display()
    );
    let mut rounds = Vec::new();
    for round in 0..plan.rounds {
        let mut order = plan.modes();
        if round % 2 == 1 {
            order.reverse();
        }
        for mode in order {
            let load = sys::load_average();
            let result = run_mode(plan, &launch, mode, round).await;
            match (&result.sample, &result.error) {
                (Some(sample), error) => eprintln!(
                    "   round {} {:<12} {}  (load {load}){}",
                    round + 1,
                    mode.name(),
                    cost_report::brief(plan.feature, sample),
                    error
                        .as_ref()
                        .map(|e| format!("  [first error: {e}]"))
                        .unwrap_or_default()
                ),
                (None, error) => eprintln!(
                    "   round {} {:<12} FAILED: {}",
                    round + 1,
                    mode.name(),
                    error.as_deref().unwrap_or("?")
                ),
            }
            rounds.push(result);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let clean = rounds
        .iter()
        .all(|r| r.sample.as_ref().and_then(|s| s.get("errors")) == Some(0.0));
    let (table, json) = cost_report::render(plan, &rounds);
    println!("{table}");
    println!("{json}");
    if let Some(path) = &plan.json_out {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(file, "{json}").map_err(|e| e.to_string())?;
    }
    Ok(clean)
}

/// Broker, server, measurement, teardown.
async fn run_mode(plan: &Plan, launch: &Launch, mode: Mode, round: usize) -> ModeRound {
    let tag = format!(
        "{}-{}-r{round}",
        plan.feature.name(),
        mode.path().trim_start_matches('/')
    );
    let failed = |error: String| ModeRound {
        mode,
        round,
        sample: None,
        error: Some(error),
    };
    let load_before = sys::load_average()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let broker = match Broker::start(Backplane::Redis, &launch.log_dir, &tag).await {
        Ok(broker) => broker,
        Err(e) => return failed(format!("starting redis-server: {e}")),
    };
    let server_launch = Launch {
        interop_args: vec!["--redis".into(), broker.url.clone()],
        ..launch.clone()
    };
    let outcome = match Server::start(Target::BenchHub, &server_launch, &tag).await {
        Ok(server) => {
            // Let the server settle (runtime threads, backplane subscriptions).
            tokio::time::sleep(Duration::from_millis(300)).await;
            let target = Measured {
                addr: server.addr,
                server_pid: server.pid,
                broker: &broker,
            };
            let outcome = match plan.feature {
                Feature::Presence => cost_presence::measure(plan, mode, &target).await,
                Feature::History => cost_history::measure(plan, mode, &target).await,
            };
            let log_lines = server.stop().await;
            outcome.map(|(mut sample, error)| {
                sample.put("server_log_lines", log_lines as f64);
                (sample, error)
            })
        }
        Err(e) => Err(format!("bench hub server: {e}")),
    };
    broker.stop(&launch.log_dir).await;
    match outcome {
        Ok((mut sample, error)) => {
            sample.put("load_1m_at_start", load_before);
            ModeRound {
                mode,
                round,
                sample: Some(sample),
                error,
            }
        }
        Err(e) => failed(e),
    }
}

/// The server under measurement and its broker.
pub struct Measured<'a> {
    pub addr: SocketAddr,
    pub server_pid: u32,
    pub broker: &'a Broker,
}

/// CPU time of the server and of the broker over a phase.
pub struct CpuMeter {
    server: f64,
    broker: f64,
}

impl CpuMeter {
    pub fn start(target: &Measured<'_>) -> CpuMeter {
        CpuMeter {
            server: sys::process_cpu_seconds(target.server_pid).unwrap_or(0.0),
            broker: target.broker.cpu_seconds().unwrap_or(0.0),
        }
    }

    /// Puts the server's and the broker's CPU µs per operation (`ops` of them) as `server`
    /// and `broker`.
    pub fn finish(&self, target: &Measured<'_>, ops: u64, sample: &mut Sample, names: [&'static str; 2]) {
        let server = sys::process_cpu_seconds(target.server_pid).unwrap_or(0.0) - self.server;
        let broker = target.broker.cpu_seconds().unwrap_or(0.0) - self.broker;
        let per_op = |seconds: f64| {
            if ops == 0 {
                f64::NAN
            } else {
                seconds * 1e6 / ops as f64
            }
        };
        sample.put(names[0], per_op(server));
        sample.put(names[1], per_op(broker));
    }
}

#[cfg(test)]
mod tests;
