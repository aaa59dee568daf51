//! The fleet scenario's command line (`--scenario fleet`), its figures from the generators'
//! counts, and its report: the metric table, the per-process table and one JSON line.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map};

use crate::brokers::Backplane;
use crate::fleet::{self, Outcome, Plan, Spawner};
use crate::fleet_listen::Final;
use crate::report::{human, round};
use crate::scenario::Sample;
use crate::server::Launch;
use crate::wire::Proto;

const USAGE: &str = "\
usage: hub-bench --scenario fleet [options]
  many WebSocket connections across several interop servers joined by a backplane (a
  private broker on a free loopback port, as --scenario scaleout), held by generator
  processes (`hub-bench fleet-listen`, each at most --per-generator listeners, since one
  process may hold only so many open files); one sender broadcasts to all. Reports connect
  time, share delivered, p50/p99 delivery latency, server RSS (total, per connection),
  CPU per delivery (servers, broker, generators) and per-process figures.
  --backplane B          redis | postgres | nats (default redis)
  --servers S            interop processes (default 6)
  -n, --connections N    listeners in total, spread evenly over the servers (default 100000)
  --per-generator K      listeners per generator process at most (default 15000)
  --rate R               SendToAll calls per second (default 1)
  --duration D           measured seconds (default 30), after --warmup (default 2)
  --join-timeout T       seconds every listener may take to receive a first message (60)
  --payload B            message bytes (default 32)
  --protocol P           json | messagepack (default json)
  --open-concurrency C   connections opening at once per generator (default 64)
  --gen-threads T        worker threads per generator (default 1)
  --addr-base A          first source address (default 127.0.0.1)
  --sources K            source addresses 127.0.0.x (default 1 per 10,000 connections)
  --interop PATH, --no-build, --json-out FILE   as for the other scenarios
";

/// The command: the plan and how to run it.
pub struct Command {
    pub plan: Plan,
    pub interop: Option<PathBuf>,
    pub build: bool,
    pub json_out: Option<PathBuf>,
}

/// `--scenario fleet …`, or `None` for another scenario. Defaults: Redis, 6 servers,
/// 100,000 connections (at most 15,000 per generator), 1 msg/s of 32 B for 30 s after a
/// 2 s warm-up; source addresses from 127.0.0.1, one per 10,000 connections.
pub fn parse(args: &[String]) -> Result<Option<Command>, String> {
    if !args.windows(2).any(|w| w[0] == "--scenario" && w[1] == "fleet") {
        return Ok(None);
    }
    let mut plan = Plan {
        backplane: Backplane::Redis,
        servers: 6,
        connections: 100_000,
        per_generator: 15_000,
        rate: 1.0,
        payload: 32,
        duration: Duration::from_secs(30),
        warmup: Duration::from_secs(2),
        join_timeout: Duration::from_secs(60),
        proto: Proto::Json,
        open_concurrency: 64,
        sources: Vec::new(),
        gen_threads: 1,
    };
    let mut command = Command {
        plan: plan.clone(),
        interop: None,
        build: true,
        json_out: None,
    };
    let (mut addr_base, mut sources) = (Ipv4Addr::LOCALHOST, None);
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
            "--backplane" => {
                let v = value()?;
                plan.backplane = match Backplane::parse_list(&v).as_deref() {
                    Some([one]) => *one,
                    _ => return Err(format!("--backplane: one of redis, postgres, nats (not '{v}')")),
                };
            }
            "--servers" => plan.servers = num::<usize>(arg, value()?)?.max(1),
            "--connections" | "-n" => plan.connections = num::<usize>(arg, value()?)?.max(1),
            "--per-generator" => plan.per_generator = num::<usize>(arg, value()?)?.max(1),
            "--rate" => plan.rate = num::<f64>(arg, value()?)?.max(0.001),
            "--payload" => plan.payload = num(arg, value()?)?,
            "--duration" => plan.duration = secs(arg, value()?)?.max(Duration::from_millis(100)),
            "--warmup" => plan.warmup = secs(arg, value()?)?,
            "--join-timeout" => plan.join_timeout = secs(arg, value()?)?,
            "--protocol" => {
                let v = value()?;
                plan.proto = Proto::from_name(&v).ok_or(format!("--protocol: json or messagepack (not '{v}')"))?;
            }
            "--open-concurrency" => plan.open_concurrency = num::<usize>(arg, value()?)?.max(1),
            "--gen-threads" => plan.gen_threads = num::<usize>(arg, value()?)?.max(1),
            "--addr-base" => addr_base = num(arg, value()?)?,
            "--sources" => sources = Some(num::<usize>(arg, value()?)?.max(1)),
            "--interop" => command.interop = Some(PathBuf::from(value()?)),
            "--no-build" => command.build = false,
            "--json-out" => command.json_out = Some(PathBuf::from(value()?)),
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("--scenario fleet: unknown argument '{other}' (see --help)")),
        }
    }
    let count = sources.unwrap_or_else(|| plan.connections.div_ceil(10_000)) as u32;
    plan.sources = (0..count).map(|i| Ipv4Addr::from(u32::from(addr_base) + i)).collect();
    if plan.sources.iter().any(|a| !a.is_loopback()) {
        return Err("source addresses must stay in 127.0.0.0/8".into());
    }
    command.plan = plan;
    Ok(Some(command))
}

/// Runs the fleet and prints its report; the exit code (0: every listener open, nothing
/// lost, no errors).
pub async fn main(command: &Command) -> i32 {
    let fd_limit = crate::sys::raise_fd_limit();
    let plan = &command.plan;
    let launch = match (|| {
        Ok::<_, String>(Launch {
            interop: crate::interop_path(command.interop.as_deref(), command.build)?,
            interop_args: Vec::new(),
            floor_exe: std::env::current_exe().map_err(|e| e.to_string())?,
            listen: "127.0.0.1:0".into(),
            log_dir: std::env::temp_dir().join(format!("hub-bench-{}", std::process::id())),
        })
    })() {
        Ok(launch) => launch,
        Err(e) => {
            eprintln!("hub-bench: {e}");
            return 1;
        }
    };
    eprintln!(
        "hub-bench: {}; open-file limit {fd_limit} (servers and generators inherit it); logs in {}",
        plan.title(),
        launch.log_dir.display()
    );
    let spawner = Spawner::Processes {
        exe: launch.floor_exe.clone(),
        log_dir: launch.log_dir.clone(),
    };
    let outcome = fleet::run(plan, &launch, &spawner).await;
    let (table, line) = render(plan, &outcome, fd_limit);
    if let Err(e) = crate::print_results(&table, &line, command.json_out.as_deref()) {
        eprintln!("hub-bench: {e}");
    }
    match outcome {
        Ok(o) if o.sample.get("errors") == Some(0.0) && o.sample.get("delivered_pct") == Some(100.0) => 0,
        _ => 1,
    }
}

/// Delivery figures from the generators' counts: share delivered, deliveries, latency.
pub fn delivery_figures(sample: &mut Sample, end: &Final, expected: u64, sent: u64, join_s: f64) {
    sample.put("join_s", join_s);
    sample.put("sent", sent as f64);
    sample.put("deliveries", end.delivered as f64);
    sample.put(
        "delivered_pct",
        if expected == 0 {
            0.0
        } else {
            end.delivered as f64 * 100.0 / expected as f64
        },
    );
    let mut h = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds");
    for &(value, count) in &end.latencies_us {
        let _ = h.record_n(value.max(1), count);
    }
    for (name, q) in [
        ("latency_p50_ms", 0.50),
        ("latency_p99_ms", 0.99),
        ("latency_p999_ms", 0.999),
    ] {
        sample.put(name, h.value_at_quantile(q) as f64 / 1000.0);
    }
    sample.put("latency_max_ms", h.max() as f64 / 1000.0);
    sample.put("duplicates", end.duplicates as f64);
    sample.put("out_of_order", end.out_of_order as f64);
    sample.put("closed_early", end.closed_early as f64);
}

fn mib(bytes: Option<u64>) -> String {
    bytes
        .map(|b| format!("{:.1}", b as f64 / 1048576.0))
        .unwrap_or_else(|| "—".into())
}

/// The human table and the JSON line.
pub fn render(plan: &Plan, outcome: &Result<Outcome, String>, fd_limit: u64) -> (String, String) {
    let mut table = String::new();
    let _ = writeln!(table, "\nhub-bench fleet — {}", plan.title());
    let _ = writeln!(
        table,
        "  open-file limit {fd_limit} per process; sources {} × 127.0.0.x; CPU over the window and its drain",
        plan.sources.len()
    );
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = writeln!(table, "  FAILED: {e}");
            let line = json!({ "hub_bench": 1, "machine": crate::sys::machine(),
                "cases": [{ "scenario": "fleet", "backplane": plan.backplane.name(), "error": e }] });
            return (table, line.to_string());
        }
    };
    let mut metrics = Map::new();
    for (name, value) in &outcome.sample.0 {
        let _ = writeln!(table, "  {name:<32} {:>14}", human(*value));
        metrics.insert(name.to_string(), json!(round(*value)));
    }
    let _ = writeln!(
        table,
        "\n  {:<18} {:>8} {:>12} {:>10} {:>11} {:>9}",
        "process", "pid", "connections", "RSS MiB", "KiB/conn", "CPU cores"
    );
    let mut processes = Vec::new();
    for row in &outcome.processes {
        let per_conn = row
            .rss_bytes
            .filter(|_| row.connections > 1)
            .map(|b| b as f64 / 1024.0 / row.connections as f64);
        let _ = writeln!(
            table,
            "  {:<18} {:>8} {:>12} {:>10} {:>11} {:>9.2}",
            row.name,
            row.pid.map(|p| p.to_string()).unwrap_or_else(|| "—".into()),
            row.connections,
            mib(row.rss_bytes),
            per_conn.map(|k| format!("{k:.1}")).unwrap_or_else(|| "—".into()),
            row.cpu_cores
        );
        processes.push(json!({
            "name": row.name, "pid": row.pid, "connections": row.connections,
            "rss_bytes": row.rss_bytes, "cpu_cores": round(row.cpu_cores),
        }));
    }
    let delivered = outcome.sample.get("delivered_pct");
    let _ = writeln!(
        table,
        "  target: 100 % delivered {:>10}  {}",
        delivered.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into()),
        if delivered == Some(100.0) { "met" } else { "NOT met" }
    );
    if let Some(e) = &outcome.error {
        let _ = writeln!(table, "  note: first error: {e}");
    }
    let line = json!({
        "hub_bench": 1,
        "machine": crate::sys::machine(),
        "cases": [{
            "scenario": "fleet",
            "backplane": plan.backplane.name(),
            "protocol": plan.proto.name(),
            "servers": plan.servers,
            "connections": plan.connections,
            "generators": plan.generators(),
            "rate_per_s": plan.rate,
            "payload_bytes": plan.payload,
            "duration_s": plan.duration.as_secs_f64(),
            "open_file_limit": fd_limit,
            "metrics": metrics,
            "processes": processes,
            "first_error": outcome.error,
        }],
    });
    (table, line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Option<Command>, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_fleet_takes_its_defaults_and_options() {
        assert!(parse_args(&["--scenario", "echo"]).expect("parsed").is_none());
        let plan = parse_args(&["--scenario", "fleet"])
            .expect("parsed")
            .expect("fleet")
            .plan;
        assert_eq!((plan.servers, plan.connections, plan.generators()), (6, 100_000, 7));
        assert_eq!((plan.rate, plan.duration), (1.0, Duration::from_secs(30)));
        assert_eq!(plan.backplane, Backplane::Redis);
        assert_eq!(plan.sources.len(), 10);
        assert_eq!(plan.sources[9], Ipv4Addr::new(127, 0, 0, 10));
        let args = [
            "--scenario",
            "fleet",
            "--backplane",
            "nats",
            "-n",
            "6000",
            "--servers",
            "3",
            "--per-generator",
            "2500",
            "--duration",
            "4",
            "--sources",
            "3",
            "--addr-base",
            "127.0.0.5",
        ];
        let plan = parse_args(&args).expect("parsed").expect("fleet").plan;
        assert_eq!((plan.servers, plan.connections, plan.generators()), (3, 6000, 3));
        assert_eq!(plan.backplane, Backplane::Nats);
        assert_eq!(plan.duration, Duration::from_secs(4));
        assert_eq!(
            plan.sources,
            (5..8).map(|d| Ipv4Addr::new(127, 0, 0, d)).collect::<Vec<_>>()
        );
        assert!(parse_args(&["--scenario", "fleet", "--backplane", "all"]).is_err());
        assert!(parse_args(&["--scenario", "fleet", "--addr-base", "10.0.0.1"]).is_err());
        assert!(parse_args(&["--scenario", "fleet", "--frobnicate"]).is_err());
    }

    #[test]
    fn figures_come_from_the_merged_counts() {
        let end = Final {
            delivered: 90,
            latencies_us: vec![(1000, 89), (50_000, 1)],
            ..Final::default()
        };
        let mut sample = Sample::default();
        delivery_figures(&mut sample, &end, 100, 10, 0.5);
        assert_eq!(sample.get("delivered_pct"), Some(90.0));
        assert_eq!(sample.get("latency_p50_ms"), Some(1.0));
        assert!(sample.get("latency_max_ms").is_some_and(|m| (49.0..51.0).contains(&m)));
    }
}
