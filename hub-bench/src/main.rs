//! `hub-bench`: the benchmark harness of hub.
//!
//! It starts the servers itself — the `interop` example (release build), the floor (this
//! binary's `floor` subcommand, a separate process) and, when asked, the socketioxide peer
//! (the `sioxide` subcommand) — runs every scenario against each in alternating rounds, and
//! prints a table and one machine-readable JSON line. Only loopback;
//! every loop is bounded; it stops by itself.

mod attack;
mod bench_server;
mod brokers;
mod bystander;
mod client;
mod client_bench;
mod cost;
mod cost_history;
mod cost_presence;
mod cost_report;
mod fleet;
mod fleet_listen;
mod fleet_meter;
mod fleet_report;
mod floor;
mod hostile;
mod http;
mod idle;
mod report;
mod scaleout;
mod scaleout_listen;
mod scaleout_report;
mod scenario;
mod server;
mod sessions;
mod sioxide;
mod soak;
mod socketio;
mod sys;
mod typed;
mod wire;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brokers::Backplane;
use scenario::{Case, RoundSetup, Scenario};
use server::{Launch, Server, Target};
use wire::Proto;

const USAGE: &str = "\
usage: hub-bench [options]             run benchmarks (hub and floor, alternating rounds)
       hub-bench client [options]      the Rust client (hub-client, typed proxy) beside the
                                        harness's hand-written client (`hub-bench client --help`)
       hub-bench floor --addr H:P      run the floor server (started by the harness)
       hub-bench sioxide --addr H:P    run the socketioxide peer (started by the harness)

scenario (one case):
  --scenario echo|broadcast|connections
  --scenario hostile-frames|hostile-posts|hostile-negotiate|slowloris|soak   (hub only)
  --scenario scaleout   several interop servers joined through a backplane (hub only; below)
  --scenario fleet      many connections over several interop servers and generator processes
                        joined by a backplane (`hub-bench --scenario fleet --help`)
  --scenario presence|history   what presence and history cost on Redis, on vs off
                        (`hub-bench --scenario presence --help`)
  --connections N       connections (echo), listeners (broadcast, scaleout), idle sockets (connections);
                        attackers (hostile-frames 50, hostile-posts 20 long-polling connections
                        × 8 concurrent POSTs, hostile-negotiate 16 workers, slowloris 1000);
                        soak: workers (default 16)
  --payload S           payload bytes (default 32)
  --duration D          measured seconds per round (default 5; scaleout 10; connections: hold time;
                        hostile: attack time, default 20; soak: default 600)
  --rate R              SendToAll calls per second (broadcast: default 100; scaleout: 50);
                        negotiates per second (hostile-negotiate; default 2000)
  --protocol P          json | messagepack | both (default json; hostile-frames: the flood's)
  --settle S            hostile and soak: seconds the server gets after the load before its
                        memory and /health are read (hostile default 20; soak: at most, default
                        60, ending early once /health counts 0 connections)
  --backplane B         scaleout: redis | postgres | nats | all (default redis)
  --servers S           scaleout: interop servers (default 3)
presets (several cases):
  --quick               every scenario at small sizes (about 2 minutes)
  --preset issue        the figures issue 7 asks for (long: about 15 minutes)
  --preset hostile      the four hostile scenarios, hub only (about 4 minutes)
  --preset peers        hub, floor and socketioxide: JSON echo at 64 connections, broadcast to
                        1000 listeners at 100 msg/s, 5000 idle connections (about 8 minutes)
hostile scenarios: a bystander WebSocket makes an echo call every 10 ms (and opens a probe
connection every second), quiet first, then under attack, then while the server settles.
soak: workers cycle through WebSockets (JSON and MessagePack), Server-Sent Events and Long
Polling sessions with faults (abrupt drops, Divide by zero, cancelled streams, abandoned
uploads, stateful-reconnect clients that never return, client-result timeouts, slow
consumers, groups); interop runs with --short-timeouts when it has that option.
scaleout: S interop servers joined through a broker the harness starts itself on a free
loopback port (redis-server: REDIS_SERVER or PATH; PostgreSQL: PG_BIN or the newest
/usr/lib/postgresql/<v>/bin, run as the postgres user under root; nats-server: NATS_SERVER,
PATH or /usr/sbin); --connections listeners (default 3000) spread evenly over the servers, one
sender on server 0 calling SendToAll at --rate (default 50) with --payload-byte messages
carrying their sequence number and send time; every listener must receive a message before
the --warmup (default 2) and the measured --duration (default 10). One column per backplane:
deliveries/s, share delivered, p50/p99 delivery latency, CPU per delivery of the servers
(together) and of the broker, duplicates and out-of-order deliveries.
run:
  --rounds K            rounds per target (default 3; hostile, soak: 1; scaleout: 1 per backplane)
  --target T            hub | floor | sioxide | both (hub,floor) | all (hub,floor,sioxide), or a
                        comma list such as hub,sioxide (default both; --preset peers: all).
                        sioxide: socketioxide over Engine.IO v4 / Socket.IO v5 WebSockets, JSON only
  --addr-base A         first loopback source address (default 127.0.0.1)
  --sources K           source addresses to spread connections over (default: 1 per 10,000)
  --negotiate           negotiate hub connections even when comparing with the floor
                        (default: skipNegotiation when the floor runs, negotiate otherwise)
  --skip-negotiation    hub connections skip negotiation even when the floor does not run
  --warmup S            seconds before measuring (default 1; scaleout 2)
  --open-concurrency C  connections opening at once (default 64: the servers' listen
                        backlog is 128; more overflows it and costs 1 s SYN retries)
  --gen-threads T       load generator worker threads (default: number of cores)
  --interop PATH        the interop server (default: next to this binary)
  --no-build            do not run `cargo build --release --bin interop` first
  --json-out FILE       also append the JSON line to FILE
";

#[derive(Debug, Clone)]
struct Options {
    cases: Vec<Case>,
    rounds: usize,
    targets: Vec<Target>,
    addr_base: Ipv4Addr,
    sources: Option<usize>,
    /// `--negotiate` (true) or `--skip-negotiation` (false); by default hub connections skip
    /// negotiation when the floor runs too.
    negotiate: Option<bool>,
    warmup: Duration,
    open_concurrency: usize,
    gen_threads: usize,
    interop: Option<PathBuf>,
    build: bool,
    json_out: Option<PathBuf>,
    preset: Option<String>,
    settle: Duration,
    /// `--scenario scaleout`: its plan (the cases are then empty).
    scaleout: Option<scaleout::Plan>,
}

impl Options {
    /// Every option's default (some scenarios change a few after parsing).
    fn defaults() -> Options {
        Options {
            cases: Vec::new(),
            rounds: 3,
            targets: vec![Target::Hub, Target::Floor],
            addr_base: Ipv4Addr::LOCALHOST,
            sources: None,
            negotiate: None,
            warmup: Duration::from_secs(1),
            open_concurrency: 64,
            gen_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            interop: None,
            build: true,
            json_out: None,
            preset: None,
            settle: Duration::from_secs(20),
            scaleout: None,
        }
    }
}

/// What the command line says about the scale-out scenario.
#[derive(Default)]
struct ScaleoutRequest {
    chosen: bool,
    backplanes: Option<Vec<Backplane>>,
    servers: Option<usize>,
    warmup_given: bool,
    target_given: bool,
    rounds_given: bool,
}

/// The scale-out plan: the command line's sizes or the scenario's defaults (3 servers, 3000
/// listeners, 50 msg/s, 32 B, 10 s after a 2 s warm-up, one round per backplane).
fn scaleout_plan(scaleout: &ScaleoutRequest, r: &CaseRequest, opts: &mut Options) -> Result<scaleout::Plan, String> {
    if r.preset.is_some() || r.scenario.is_some() {
        return Err("--scenario scaleout runs alone (no preset, no second scenario)".into());
    }
    let [proto] = r.protocols[..] else {
        return Err("--scenario scaleout: one --protocol (json or messagepack)".into());
    };
    if scaleout.target_given && opts.targets != [Target::Hub] {
        return Err("--scenario scaleout measures hub only (--target hub)".into());
    }
    if !scaleout.warmup_given {
        opts.warmup = Duration::from_secs(2);
    }
    opts.targets = vec![Target::Hub];
    let listeners = r.connections.unwrap_or(3000).max(1);
    Ok(scaleout::Plan {
        backplanes: scaleout.backplanes.clone().unwrap_or_else(|| vec![Backplane::Redis]),
        servers: scaleout.servers.unwrap_or(3),
        listeners,
        rate: r.rate.unwrap_or(50.0),
        payload: r.payload,
        duration: Duration::from_secs_f64(r.duration.unwrap_or(10.0).max(0.1)),
        warmup: opts.warmup,
        join_timeout: scaleout::JOIN_TIMEOUT,
        proto,
        rounds: if scaleout.rounds_given { opts.rounds } else { 1 },
        negotiate: true,
        open_concurrency: opts.open_concurrency,
        sources: source_addresses(
            opts.addr_base,
            opts.sources.unwrap_or_else(|| listeners.div_ceil(10_000)),
        )?,
    })
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut scenario = None;
    let mut connections = None;
    let mut payload = 32usize;
    let mut duration = None;
    let mut rate: Option<f64> = None;
    let mut settle: Option<f64> = None;
    let mut rounds_given = false;
    let mut protocols = vec![Proto::Json];
    let mut preset: Option<String> = None;
    let mut scaleout = ScaleoutRequest::default();
    let mut opts = Options::defaults();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, text: String) -> Result<T, String> {
            text.parse().map_err(|_| format!("{name}: not a number: '{text}'"))
        }
        match arg.as_str() {
            "--scenario" => {
                let v = value()?;
                if v == "scaleout" {
                    scaleout.chosen = true;
                } else {
                    scenario = Some(Scenario::parse(&v).ok_or(format!("unknown scenario '{v}'"))?);
                }
            }
            "--backplane" => {
                let v = value()?;
                scaleout.backplanes = Some(
                    Backplane::parse_list(&v).ok_or(format!("unknown backplane '{v}' (redis, postgres, nats, all)"))?,
                );
            }
            "--servers" => scaleout.servers = Some(num::<usize>(arg, value()?)?.max(1)),
            "--connections" | "-n" => connections = Some(num::<usize>(arg, value()?)?),
            "--payload" => payload = num(arg, value()?)?,
            "--duration" => duration = Some(num::<f64>(arg, value()?)?),
            "--rate" => rate = Some(num(arg, value()?)?),
            "--settle" => settle = Some(num::<f64>(arg, value()?)?.max(0.0)),
            "--protocol" => {
                let v = value()?;
                protocols = match v.as_str() {
                    "both" => vec![Proto::Json, Proto::MessagePack],
                    other => vec![Proto::from_name(other).ok_or(format!("unknown protocol '{other}'"))?],
                };
            }
            "--quick" => preset = Some("quick".into()),
            "--preset" => preset = Some(value()?),
            "--rounds" => {
                opts.rounds = num::<usize>(arg, value()?)?.max(1);
                rounds_given = true;
            }
            "--target" => {
                scaleout.target_given = true;
                opts.targets = parse_targets(&value()?)?;
            }
            "--addr-base" => opts.addr_base = num(arg, value()?)?,
            "--sources" => opts.sources = Some(num::<usize>(arg, value()?)?.max(1)),
            "--negotiate" => opts.negotiate = Some(true),
            "--skip-negotiation" => opts.negotiate = Some(false),
            "--warmup" => {
                opts.warmup = Duration::from_secs_f64(num::<f64>(arg, value()?)?.max(0.0));
                scaleout.warmup_given = true;
            }
            "--open-concurrency" => opts.open_concurrency = num::<usize>(arg, value()?)?.max(1),
            "--gen-threads" => opts.gen_threads = num::<usize>(arg, value()?)?.max(1),
            "--interop" => opts.interop = Some(PathBuf::from(value()?)),
            "--no-build" => opts.build = false,
            "--json-out" => opts.json_out = Some(PathBuf::from(value()?)),
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}' (try --help)")),
        }
    }
    let request = CaseRequest {
        scenario,
        connections,
        payload,
        duration,
        rate,
        protocols,
        preset: preset.clone(),
    };
    if scaleout.chosen {
        scaleout.rounds_given = rounds_given;
        opts.scaleout = Some(scaleout_plan(&scaleout, &request, &mut opts)?);
        return Ok(opts);
    }
    if scaleout.backplanes.is_some() || scaleout.servers.is_some() {
        return Err("--backplane and --servers belong to --scenario scaleout".into());
    }
    if preset.as_deref() == Some("quick") {
        opts.warmup = opts.warmup.min(Duration::from_millis(500));
    }
    opts.cases = cases(&request)?;
    if preset.as_deref() == Some("peers") && !scaleout.target_given {
        opts.targets = vec![Target::Hub, Target::Floor, Target::Sioxide];
    }
    let hub_only = opts.cases.iter().all(|c| c.scenario.hub_only());
    if hub_only {
        opts.targets = vec![Target::Hub];
        if !rounds_given {
            opts.rounds = 1;
        }
    }
    let soak = opts.cases.iter().any(|c| c.scenario == Scenario::Soak);
    opts.settle = Duration::from_secs_f64(settle.unwrap_or(if soak { 60.0 } else { 20.0 }));
    opts.preset = preset;
    Ok(opts)
}

/// `--target`: one name, `both`, `all`, or a comma list (each target once, in the given order).
fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for name in text.split(',') {
        let more: &[Target] = match name.trim() {
            "hub" => &[Target::Hub],
            "floor" => &[Target::Floor],
            "sioxide" | "socketioxide" => &[Target::Sioxide],
            "both" => &[Target::Hub, Target::Floor],
            "all" => &[Target::Hub, Target::Floor, Target::Sioxide],
            other => return Err(format!("unknown target '{other}' (hub, floor, sioxide, both, all)")),
        };
        for t in more {
            if !targets.contains(t) {
                targets.push(*t);
            }
        }
    }
    Ok(targets)
}

/// What the command line asks for: one scenario or a preset.
struct CaseRequest {
    scenario: Option<Scenario>,
    connections: Option<usize>,
    payload: usize,
    duration: Option<f64>,
    rate: Option<f64>,
    protocols: Vec<Proto>,
    preset: Option<String>,
}

/// The cases of one scenario (one per protocol) or of a preset, with each scenario's defaults.
fn cases(r: &CaseRequest) -> Result<Vec<Case>, String> {
    let secs = |default: f64| Duration::from_secs_f64(r.duration.unwrap_or(default).max(0.1));
    let case = |scenario, connections, payload, duration, rate, proto| Case {
        scenario,
        connections,
        payload,
        duration,
        rate,
        proto,
    };
    let negotiate_rate = r.rate.unwrap_or(hostile::DEFAULT_NEGOTIATE_RATE);
    let rate = r.rate.unwrap_or(100.0);
    let payload = r.payload;
    let mut cases = Vec::new();
    match r.preset.as_deref() {
        None => {
            let scenario = r.scenario.unwrap_or(Scenario::Echo);
            let n = r.connections.unwrap_or(match scenario {
                Scenario::Echo => 64,
                Scenario::Broadcast | Scenario::Connections => 1000,
                Scenario::Soak => soak::DEFAULT_WORKERS,
                hostile => hostile::default_attackers(hostile),
            });
            let (d, per_s) = match scenario {
                Scenario::Soak => (secs(600.0), rate),
                Scenario::HostileNegotiate => (secs(20.0), negotiate_rate),
                s if s.hostile() => (secs(20.0), rate),
                _ => (secs(5.0), rate),
            };
            for &proto in &r.protocols {
                cases.push(case(scenario, n, payload, d, per_s, proto));
            }
        }
        Some("hostile") => {
            let d = secs(20.0);
            cases = [
                Scenario::HostileFrames,
                Scenario::HostilePosts,
                Scenario::HostileNegotiate,
                Scenario::Slowloris,
            ]
            .into_iter()
            .map(|s| {
                let n = r.connections.unwrap_or(hostile::default_attackers(s));
                case(s, n, payload, d, negotiate_rate, Proto::Json)
            })
            .collect();
        }
        Some("quick") => {
            let d = secs(2.0);
            cases = vec![
                case(Scenario::Echo, 64, 32, d, 0.0, Proto::Json),
                case(Scenario::Echo, 64, 32, d, 0.0, Proto::MessagePack),
                case(Scenario::Broadcast, 200, 32, d, 50.0, Proto::Json),
                case(Scenario::Connections, 2000, 0, d, 0.0, Proto::Json),
            ];
        }
        Some("issue") => {
            let d = secs(5.0);
            cases = vec![
                case(Scenario::Echo, 64, 32, d, 0.0, Proto::Json),
                case(Scenario::Echo, 1000, 32, d, 0.0, Proto::Json),
                case(Scenario::Echo, 64, 32, d, 0.0, Proto::MessagePack),
                case(Scenario::Echo, 1000, 32, d, 0.0, Proto::MessagePack),
                case(Scenario::Broadcast, 1000, 32, d, 100.0, Proto::Json),
                case(Scenario::Broadcast, 10_000, 32, d, 10.0, Proto::Json),
                case(Scenario::Connections, 19_000, 0, secs(35.0), 0.0, Proto::Json),
            ];
        }
        Some("peers") => {
            let d = secs(5.0);
            cases = vec![
                case(Scenario::Echo, 64, 32, d, 0.0, Proto::Json),
                case(Scenario::Broadcast, 1000, 32, d, 100.0, Proto::Json),
                case(Scenario::Connections, 5000, 0, secs(30.0), 0.0, Proto::Json),
            ];
        }
        Some(other) => return Err(format!("unknown preset '{other}' (quick, issue, hostile, peers)")),
    }
    Ok(cases)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("floor") {
        if let Err(e) = floor::main(&args[1..]) {
            eprintln!("hub-bench floor: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("sioxide") {
        if let Err(e) = sioxide::main(&args[1..]) {
            eprintln!("hub-bench sioxide: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("hub-server") {
        if let Err(e) = bench_server::main(&args[1..]) {
            eprintln!("hub-bench hub-server: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("client-idle") {
        if let Err(e) = idle::main(&args[1..]) {
            eprintln!("hub-bench client-idle: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("fleet-listen") {
        if let Err(e) = fleet_listen::main(&args[1..]) {
            eprintln!("hub-bench fleet-listen: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("client") {
        std::process::exit(client_bench::main(&args[1..]));
    }
    match fleet_report::parse(&args) {
        Ok(Some(command)) => std::process::exit(run_fleet(&command)),
        Ok(None) => {}
        Err(e) => {
            eprintln!("hub-bench: {e}");
            std::process::exit(2);
        }
    }
    match cost::parse(&args) {
        Ok(Some(plan)) => std::process::exit(cost::main(&plan)),
        Ok(None) => {}
        Err(e) => {
            eprintln!("hub-bench: {e}");
            std::process::exit(2);
        }
    }
    let opts = match parse_options(&args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("hub-bench: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.gen_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hub-bench: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match run(&opts).await {
            Ok(ok) => i32::from(!ok),
            Err(e) => {
                eprintln!("hub-bench: {e}");
                1
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    std::process::exit(code);
}

/// The fleet scenario on a runtime of its own (the sender and the harness's readers).
fn run_fleet(command: &fleet_report::Command) -> i32 {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => {
            let code = runtime.block_on(fleet_report::main(command));
            runtime.shutdown_timeout(Duration::from_secs(5));
            code
        }
        Err(e) => {
            eprintln!("hub-bench: {e}");
            1
        }
    }
}

/// Finds (and unless told otherwise, builds) the interop server.
fn interop_path(interop: Option<&Path>, build: bool) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = match interop {
        Some(path) => path.to_path_buf(),
        None => exe.with_file_name("interop"),
    };
    if build && interop.is_none() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        eprintln!("hub-bench: cargo build --release -p hub-examples --bin interop (skip with --no-build)");
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "-p", "hub-examples", "--bin", "interop"])
            .current_dir(&workspace)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("building interop failed ({s})")),
            Err(e) if path.exists() => eprintln!("hub-bench: cannot run cargo ({e}); using {}", path.display()),
            Err(e) => return Err(format!("cannot run cargo: {e}")),
        }
    }
    if !path.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p hub-examples --bin interop` or pass --interop",
            path.display()
        ));
    }
    Ok(path)
}

/// Starts the server of one round. The soak asks interop for `--short-timeouts` and starts it
/// without when this build does not know the option; returns whether it runs with them.
async fn start_server(
    target: Target,
    scenario: Scenario,
    launch: &Launch,
    tag: &str,
) -> Result<(Server, bool), String> {
    if target == Target::Hub && scenario == Scenario::Soak {
        let short = Launch {
            interop_args: vec!["--short-timeouts".into()],
            ..launch.clone()
        };
        match Server::start(target, &short, tag).await {
            Ok(server) => return Ok((server, true)),
            Err(e) => eprintln!("hub-bench: interop without --short-timeouts ({e}); soak with the default timeouts"),
        }
    }
    Ok((Server::start(target, launch, tag).await?, false))
}

/// `count` (at least one) loopback source addresses from `base` on.
fn source_addresses(base: Ipv4Addr, count: usize) -> Result<Vec<Ipv4Addr>, String> {
    let base = u32::from(base);
    let sources: Vec<Ipv4Addr> = (0..count.max(1) as u32).map(|i| Ipv4Addr::from(base + i)).collect();
    if sources.iter().any(|a| !a.is_loopback()) {
        return Err("source addresses must stay in 127.0.0.0/8".into());
    }
    Ok(sources)
}

/// Runs the scale-out scenario; returns whether every round measured without errors.
async fn run_scaleout(opts: &Options, plan: &scaleout::Plan) -> Result<bool, String> {
    let fd_limit = sys::raise_fd_limit();
    let launch = Launch {
        interop: interop_path(opts.interop.as_deref(), opts.build)?,
        interop_args: Vec::new(),
        floor_exe: std::env::current_exe().map_err(|e| e.to_string())?,
        listen: "127.0.0.1:0".into(),
        log_dir: std::env::temp_dir().join(format!("hub-bench-{}", std::process::id())),
    };
    eprintln!(
        "hub-bench: {}, {} round(s), generator threads {}, open-file limit {fd_limit}; logs in {}",
        plan.title(),
        plan.rounds,
        opts.gen_threads,
        launch.log_dir.display()
    );
    let rounds = scaleout::run(plan, &launch).await;
    let meta = scaleout_report::Meta {
        generator_threads: opts.gen_threads,
    };
    let (table, json) = scaleout_report::render(plan, &rounds, &meta);
    let clean = rounds
        .iter()
        .all(|r| r.sample.as_ref().and_then(|s| s.get("errors")) == Some(0.0));
    print_results(&table, &json, opts.json_out.as_deref())?;
    Ok(clean)
}

/// Prints the table and the JSON line, and appends the line to `json_out`.
fn print_results(table: &str, json: &str, json_out: Option<&Path>) -> Result<(), String> {
    println!("{table}");
    println!("{json}");
    if let Some(path) = json_out {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(file, "{json}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs every case; returns whether every round ran without errors.
async fn run(opts: &Options) -> Result<bool, String> {
    if let Some(plan) = &opts.scaleout {
        return run_scaleout(opts, plan).await;
    }
    let fd_limit = sys::raise_fd_limit();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let interop = if opts.targets.contains(&Target::Hub) {
        interop_path(opts.interop.as_deref(), opts.build)?
    } else {
        PathBuf::new()
    };
    let launch = Launch {
        interop,
        interop_args: Vec::new(),
        floor_exe: exe.clone(),
        listen: "127.0.0.1:0".into(),
        log_dir: std::env::temp_dir().join(format!("hub-bench-{}", std::process::id())),
    };
    // Several targets: hub skips negotiation like the floor and the Socket.IO peer.
    let both = opts.targets.len() > 1;
    eprintln!(
        "hub-bench: {} case(s), {} round(s) per target, generator threads {}, open-file limit {fd_limit}; server logs in {}",
        opts.cases.len(),
        opts.rounds,
        opts.gen_threads,
        launch.log_dir.display()
    );
    let mut results = Vec::new();
    let mut clean = true;
    for case in &opts.cases {
        let sources = source_addresses(
            opts.addr_base,
            opts.sources.unwrap_or_else(|| case.connections.div_ceil(10_000)),
        )?;
        eprintln!("\n== {}   (load average {})", case.title(), sys::load_average());
        let mut rounds: Vec<report::Round> = Vec::new();
        for round in 0..opts.rounds {
            let mut order = opts.targets.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for &target in &order {
                if case.scenario.hub_only() && target != Target::Hub {
                    continue;
                }
                // The Socket.IO peer speaks JSON only (socketioxide's default parser).
                if target == Target::Sioxide && case.proto != Proto::Json {
                    continue;
                }
                let tag = format!("{}-{}-r{round}", case.scenario.name(), case.proto.name());
                let (server, short_timeouts) = start_server(target, case.scenario, &launch, &tag).await?;
                let setup = RoundSetup {
                    negotiate: target == Target::Hub && opts.negotiate.unwrap_or(!both),
                    sources: sources.clone(),
                    open_concurrency: opts.open_concurrency,
                    warmup: opts.warmup,
                    settle: opts.settle,
                    short_timeouts,
                };
                // Let the server settle (its runtime threads start, its memory stabilises).
                tokio::time::sleep(Duration::from_millis(300)).await;
                let outcome = scenario::run(case, &setup, &server).await;
                let log_lines = server.stop().await;
                match outcome {
                    Ok((sample, error)) => {
                        let errors = sample.get("errors").unwrap_or(0.0);
                        eprintln!(
                            "   round {} {:<5} {}{}",
                            round + 1,
                            target.name(),
                            report::brief(case.scenario, &sample),
                            match (&error, errors > 0.0) {
                                (Some(e), true) => format!("  [{errors} errors; first: {e}]"),
                                _ => String::new(),
                            }
                        );
                        if errors > 0.0 {
                            clean = false;
                        }
                        rounds.push(report::Round {
                            target,
                            sample,
                            log_lines,
                            error,
                        });
                    }
                    Err(e) => {
                        clean = false;
                        eprintln!("   round {} {:<5} FAILED: {e}", round + 1, target.name());
                    }
                }
                // Give the kernel a moment (sockets in TIME_WAIT, freed memory) between rounds.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        results.push(report::CaseResult::new(case.clone(), rounds));
    }
    let meta = report::Meta {
        rounds: opts.rounds,
        generator_threads: opts.gen_threads,
        skip_negotiation: !opts.negotiate.unwrap_or(!both),
        preset: opts.preset.clone(),
        warmup_s: opts.warmup.as_secs_f64(),
        settle_s: results
            .iter()
            .any(|r| r.case.scenario.hub_only())
            .then_some(opts.settle.as_secs_f64()),
    };
    let (table, json) = report::render(&results, &meta);
    print_results(&table, &json, opts.json_out.as_deref())?;
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_options(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn scaleout_takes_its_defaults_and_options() {
        let opts = parse(&["--scenario", "scaleout"]).expect("parsed");
        let plan = opts.scaleout.expect("a scale-out plan");
        assert!(opts.cases.is_empty());
        assert_eq!(plan.backplanes, vec![Backplane::Redis]);
        assert_eq!(
            (plan.servers, plan.listeners, plan.payload, plan.rounds),
            (3, 3000, 32, 1)
        );
        assert_eq!(
            (plan.rate, plan.duration, plan.warmup),
            (50.0, Duration::from_secs(10), Duration::from_secs(2))
        );
        let args = [
            "--scenario",
            "scaleout",
            "--backplane",
            "all",
            "--servers",
            "2",
            "-n",
            "90",
            "--rate",
            "20",
            "--payload",
            "64",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--rounds",
            "2",
        ];
        let plan = parse(&args).expect("parsed").scaleout.expect("a scale-out plan");
        assert_eq!(plan.backplanes, Backplane::ALL.to_vec());
        assert_eq!(
            (plan.servers, plan.listeners, plan.payload, plan.rounds),
            (2, 90, 64, 2)
        );
        assert_eq!(
            (plan.rate, plan.duration, plan.warmup),
            (20.0, Duration::from_secs(3), Duration::from_secs(1))
        );
    }

    #[test]
    fn targets_and_the_peers_preset() {
        let t = |args: &[&str]| parse(args).expect("parsed").targets;
        assert_eq!(t(&[]), vec![Target::Hub, Target::Floor]);
        assert_eq!(t(&["--target", "sioxide"]), vec![Target::Sioxide]);
        assert_eq!(t(&["--target", "hub,sioxide,hub"]), vec![Target::Hub, Target::Sioxide]);
        assert_eq!(
            t(&["--target", "all"]),
            vec![Target::Hub, Target::Floor, Target::Sioxide]
        );
        assert_eq!(
            t(&["--preset", "peers"]),
            vec![Target::Hub, Target::Floor, Target::Sioxide]
        );
        assert_eq!(
            t(&["--preset", "peers", "--target", "hub,sioxide"]),
            vec![Target::Hub, Target::Sioxide]
        );
        assert!(parse(&["--target", "nodejs"]).is_err());
        let peers = parse(&["--preset", "peers"]).expect("parsed");
        let kinds: Vec<_> = peers.cases.iter().map(|c| (c.scenario, c.connections)).collect();
        assert_eq!(
            kinds,
            vec![
                (Scenario::Echo, 64),
                (Scenario::Broadcast, 1000),
                (Scenario::Connections, 5000)
            ]
        );
    }

    #[test]
    fn scaleout_options_are_refused_elsewhere() {
        assert!(parse(&["--scenario", "echo", "--backplane", "nats"]).is_err());
        assert!(parse(&["--servers", "2"]).is_err());
        assert!(parse(&["--scenario", "scaleout", "--backplane", "kafka"]).is_err());
        assert!(parse(&["--scenario", "scaleout", "--protocol", "both"]).is_err());
        assert!(parse(&["--scenario", "scaleout", "--target", "floor"]).is_err());
        assert!(parse(&["--scenario", "scaleout", "--quick"]).is_err());
    }
}
