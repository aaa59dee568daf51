//! Medians, spreads, ratios, targets; the human table and the JSON line.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::scenario::{Case, Sample, Scenario};
use crate::server::Target;
use crate::wire::Proto;

/// One round of one target.
pub struct Round {
    pub target: Target,
    pub sample: Sample,
    /// Lines the server wrote to stderr (it logs warnings and errors only).
    pub log_lines: usize,
    pub error: Option<String>,
}

pub struct CaseResult {
    pub case: Case,
    pub rounds: Vec<Round>,
}

pub struct Meta {
    pub rounds: usize,
    pub generator_threads: usize,
    pub skip_negotiation: bool,
    pub preset: Option<String>,
    pub warmup_s: f64,
    /// Hostile and soak cases: the settle time after the load.
    pub settle_s: Option<f64>,
}

/// Median and range of one metric over the rounds of one target.
#[derive(Debug, Clone)]
pub struct Stat {
    pub median: f64,
    min: f64,
    max: f64,
    values: Vec<f64>,
}

impl Stat {
    pub fn of(values: Vec<f64>) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Some(Stat {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            values,
        })
    }

    fn spread_pct(&self) -> f64 {
        if self.median.abs() < 1e-12 {
            0.0
        } else {
            (self.max - self.min) / self.median.abs() * 100.0
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "median": round(self.median),
            "min": round(self.min),
            "max": round(self.max),
            "spread_pct": round(self.spread_pct()),
            "rounds": self.values.iter().map(|v| round(*v)).collect::<Vec<_>>(),
        })
    }
}

pub fn round(v: f64) -> f64 {
    if v.abs() >= 100.0 {
        (v * 10.0).round() / 10.0
    } else {
        (v * 1000.0).round() / 1000.0
    }
}

impl CaseResult {
    pub fn new(case: Case, rounds: Vec<Round>) -> Self {
        CaseResult { case, rounds }
    }

    fn metric_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for round in &self.rounds {
            for (name, _) in &round.sample.0 {
                if !names.contains(name) {
                    names.push(name);
                }
            }
        }
        names
    }

    fn stat(&self, target: Target, metric: &str) -> Option<Stat> {
        Stat::of(
            self.rounds
                .iter()
                .filter(|r| r.target == target)
                .filter_map(|r| r.sample.get(metric))
                .collect(),
        )
    }

    fn ratio(&self, metric: &str) -> Option<f64> {
        self.ratio_to(Target::Floor, metric)
    }

    /// Hub's median over `peer`'s median.
    fn ratio_to(&self, peer: Target, metric: &str) -> Option<f64> {
        let hub = self.stat(Target::Hub, metric)?.median;
        let other = self.stat(peer, metric)?.median;
        (other.abs() > 1e-12).then(|| hub / other)
    }

    fn has(&self, target: Target) -> bool {
        self.rounds.iter().any(|r| r.target == target)
    }

    /// Issue 18's targets against socketioxide, when it ran.
    fn sioxide_targets(&self, out: &mut Vec<TargetCheck>) {
        if !self.has(Target::Sioxide) {
            return;
        }
        let checks: &[(&str, &str, bool, f64)] = match self.case.scenario {
            Scenario::Echo => &[
                ("throughput ≥ 1.1 × socketioxide", "throughput_per_s", true, 1.1),
                ("p99 ≤ 0.5 × socketioxide", "latency_p99_us", false, 0.5),
            ],
            Scenario::Broadcast => &[("p99 < socketioxide's", "latency_p99_us", false, 0.999_999)],
            Scenario::Connections => &[(
                "memory per connection ≤ 0.5 × socketioxide",
                "rss_per_conn_kib",
                false,
                0.5,
            )],
            _ => &[],
        };
        for &(name, metric, at_least, bound) in checks {
            let ratio = self.ratio_to(Target::Sioxide, metric);
            out.push(TargetCheck {
                name: name.into(),
                value: ratio,
                met: ratio.map(|r| if at_least { r >= bound } else { r <= bound }),
            });
        }
    }

    /// The targets that apply to this case.
    fn targets(&self) -> Vec<TargetCheck> {
        let mut out = Vec::new();
        let ratio_check = |out: &mut Vec<TargetCheck>, name: String, metric: &str, at_least: bool, bound: f64| {
            let ratio = self.ratio(metric);
            out.push(TargetCheck {
                name,
                value: ratio,
                met: ratio.map(|r| if at_least { r >= bound } else { r <= bound }),
            });
        };
        let hub_rounds = self.rounds.iter().filter(|r| r.target == Target::Hub).count();
        match self.case.scenario {
            Scenario::Echo => {
                ratio_check(
                    &mut out,
                    "throughput ≥ 0.85 × floor".into(),
                    "throughput_per_s",
                    true,
                    0.85,
                );
                ratio_check(&mut out, "p99 ≤ 1.5 × floor".into(), "latency_p99_us", false, 1.5);
            }
            Scenario::Broadcast => {
                let worst = self.stat(Target::Hub, "delivered_pct").map(|s| s.min);
                out.push(TargetCheck {
                    name: "100 % delivered (every hub round)".into(),
                    value: worst,
                    met: worst.map(|w| w >= 100.0 - 1e-9),
                });
                ratio_check(&mut out, "p99 ≤ 1.5 × floor".into(), "latency_p99_us", false, 1.5);
            }
            Scenario::Connections => {
                ratio_check(
                    &mut out,
                    "memory per connection ≤ 1.3 × floor".into(),
                    "rss_per_conn_kib",
                    false,
                    1.3,
                );
                let worst = self.stat(Target::Hub, "held").map(|s| s.min);
                let errors = self.stat(Target::Hub, "errors").map(|s| s.max);
                out.push(TargetCheck {
                    name: format!(
                        "{} idle connections held without errors (every hub round)",
                        self.case.connections
                    ),
                    value: worst,
                    met: match (worst, errors) {
                        (Some(w), Some(e)) if hub_rounds > 0 => Some(w >= self.case.connections as f64 && e == 0.0),
                        _ => None,
                    },
                });
            }
            Scenario::Soak => self.soak_targets(&mut out),
            _ => self.hostile_targets(&mut out),
        }
        self.sioxide_targets(&mut out);
        out
    }

    /// The worst hub round's value of `metric` (highest).
    fn worst(&self, metric: &str) -> Option<f64> {
        self.stat(Target::Hub, metric).map(|s| s.max)
    }

    /// The worst hub round's `numerator / denominator`.
    fn worst_ratio(&self, numerator: &str, denominator: &str) -> Option<f64> {
        self.rounds
            .iter()
            .filter(|r| r.target == Target::Hub)
            .filter_map(|r| Some(r.sample.get(numerator)? / r.sample.get(denominator)?))
            .max_by(|a, b| a.total_cmp(b))
    }

    fn hostile_targets(&self, out: &mut Vec<TargetCheck>) {
        let check = |name: &str, value: Option<f64>, met: fn(f64) -> bool| TargetCheck {
            name: name.into(),
            value,
            met: value.map(met),
        };
        out.push(check(
            "bystander echo p99 under attack ≤ 2 × quiet",
            self.worst("bystander_p99_ratio"),
            |r| r <= 2.0,
        ));
        out.push(check("bystander saw no errors", self.worst("errors"), |e| e == 0.0));
        out.push(check(
            "RSS after the attack + settle ≤ 1.2 × quiet",
            self.worst_ratio("rss_after_mib", "rss_quiet_mib"),
            |r| r <= 1.2,
        ));
        out.push(check(
            "/health connections after settle ≤ 1 (the bystander)",
            self.worst("health_connections_after"),
            |n| n <= 1.0,
        ));
    }

    fn soak_targets(&self, out: &mut Vec<TargetCheck>) {
        let check = |name: &str, value: Option<f64>, met: fn(f64) -> bool| TargetCheck {
            name: name.into(),
            value,
            met: value.map(met),
        };
        out.push(check(
            "/health connections 0 after settle",
            self.worst("health_connections_end"),
            |n| n == 0.0,
        ));
        for (metric, name) in [
            ("health_groups_end", "/health groups 0 after settle"),
            ("health_users_end", "/health users 0 after settle"),
        ] {
            if let Some(v) = self.worst(metric) {
                out.push(check(name, Some(v), |n| n == 0.0));
            }
        }
        out.push(check(
            "RSS after settle within 20 % of warm-up",
            self.worst_ratio("rss_settled_mib", "rss_warm_mib"),
            |r| r <= 1.2,
        ));
        out.push(check(
            "no connection lost to a panicking call (Divide)",
            self.worst("divide_lost"),
            |n| n == 0.0,
        ));
    }
}

struct TargetCheck {
    name: String,
    value: Option<f64>,
    met: Option<bool>,
}

impl TargetCheck {
    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "n/a",
        }
    }

    fn to_json(&self) -> Value {
        json!({ "target": self.name, "value": self.value.map(round), "met": self.met })
    }
}

/// MessagePack echo throughput ≥ JSON's (hub), for each echo size measured in both.
fn cross_targets(results: &[CaseResult]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    for mp in results
        .iter()
        .filter(|r| r.case.scenario == Scenario::Echo && r.case.proto == Proto::MessagePack)
    {
        let Some(js) = results.iter().find(|r| {
            r.case.scenario == Scenario::Echo
                && r.case.proto == Proto::Json
                && r.case.connections == mp.case.connections
                && r.case.payload == mp.case.payload
        }) else {
            continue;
        };
        for target in [Target::Hub, Target::Floor] {
            let mp_t = mp.stat(target, "throughput_per_s").map(|s| s.median);
            let js_t = js.stat(target, "throughput_per_s").map(|s| s.median);
            if let (Some(m), Some(j)) = (mp_t, js_t) {
                let ratio = if j > 0.0 { m / j } else { 0.0 };
                out.push(TargetCheck {
                    name: format!(
                        "{}: MessagePack echo throughput ≥ JSON's ({} connections × {} B; value = msgpack/json)",
                        target.name(),
                        mp.case.connections,
                        mp.case.payload
                    ),
                    value: Some(ratio),
                    met: if target == Target::Hub {
                        Some(ratio >= 1.0)
                    } else {
                        None
                    },
                });
            }
            // Server CPU per call does not depend on how much of the machine the run got.
            let mp_c = mp.stat(target, "server_cpu_us_per_op").map(|s| s.median);
            let js_c = js.stat(target, "server_cpu_us_per_op").map(|s| s.median);
            if let (Some(m), Some(j)) = (mp_c, js_c) {
                out.push(TargetCheck {
                    name: format!(
                        "{}: server CPU per echo, MessagePack/JSON ({} connections; informative)",
                        target.name(),
                        mp.case.connections
                    ),
                    value: (j > 0.0).then(|| m / j),
                    met: None,
                });
            }
        }
    }
    out
}

pub fn human(v: f64) -> String {
    let abs = v.abs();
    if abs >= 10_000.0 {
        let int = v.round() as i64;
        let s = int.abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if int < 0 {
            format!("-{out}")
        } else {
            out
        }
    } else if abs >= 100.0 {
        format!("{v:.0}")
    } else if abs >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One line about one round, for progress output.
pub fn brief(scenario: Scenario, s: &Sample) -> String {
    let g = |n: &str| s.get(n).unwrap_or(f64::NAN);
    match scenario {
        Scenario::Echo => format!(
            "{} ops/s  p50 {} µs  p99 {} µs  p999 {} µs  server {:.2} cores  generator {:.2} cores",
            human(g("throughput_per_s")),
            human(g("latency_p50_us")),
            human(g("latency_p99_us")),
            human(g("latency_p999_us")),
            g("server_cpu_cores"),
            g("generator_cpu_cores")
        ),
        Scenario::Broadcast => format!(
            "sent {}  {} deliveries/s  delivered {:.3} %  p50 {} µs  p99 {} µs  server {:.2} cores",
            human(g("sent")),
            human(g("deliveries_per_s")),
            g("delivered_pct"),
            human(g("latency_p50_us")),
            human(g("latency_p99_us")),
            g("server_cpu_cores")
        ),
        Scenario::Connections => format!(
            "held {}  opened in {:.1} s  {:.2} KiB/connection  RSS {:.1} → {:.1} MiB",
            human(g("held")),
            g("open_s"),
            g("rss_per_conn_kib"),
            g("rss_before_mib"),
            g("rss_held_mib")
        ),
        Scenario::Soak => format!(
            "calls {}  errors {}  Divide errors {} / lost {}  RSS warm {:.1} → max {:.1} → settled {:.1} MiB  /health {} at the end",
            human(g("calls_completed")),
            human(g("errors")),
            human(g("divide_completion_errors")),
            human(g("divide_lost")),
            g("rss_warm_mib"),
            g("rss_max_mib"),
            g("rss_settled_mib"),
            g("health_connections_end")
        ),
        _ => format!(
            "bystander p99 {} → {} µs (×{:.2}, {} errors)  RSS {:.1} → peak {:.1} → after {:.1} MiB  /health peak {} after {}  attack {}/s",
            human(g("bystander_quiet_p99_us")),
            human(g("bystander_attack_p99_us")),
            g("bystander_p99_ratio"),
            human(g("errors")),
            g("rss_quiet_mib"),
            g("rss_peak_mib"),
            g("rss_after_mib"),
            human(g("health_connections_peak")),
            human(g("health_connections_after")),
            human(g("attack_ops_per_s"))
        ),
    }
}

pub fn cell(stat: Option<&Stat>) -> String {
    match stat {
        Some(s) if s.values.len() > 1 => format!("{} [{} – {}]", human(s.median), human(s.min), human(s.max)),
        Some(s) => human(s.median),
        None => "—".into(),
    }
}

/// The case's heading lines and its metric rows (hub, floor, and socketioxide when it ran);
/// returns the metrics for the JSON line.
fn metrics_table(result: &CaseResult, table: &mut String) -> Map<String, Value> {
    let peer = result.has(Target::Sioxide);
    if let Some(note) = peer
        .then(|| crate::socketio::wire_note(result.case.scenario, result.case.payload))
        .flatten()
    {
        let _ = writeln!(table, "  wire: {note}");
    }
    // One row: metric, hub, floor, hub/floor, and socketioxide's two columns when it ran.
    let row = |table: &mut String, [name, hub, floor, ratio, other, other_ratio]: [String; 6]| {
        let _ = write!(table, "  {name:<30} {hub:>34} {floor:>34} {ratio:>9}");
        if peer {
            let _ = write!(table, " {other:>34} {other_ratio:>11}");
        }
        table.push('\n');
    };
    let head = ["metric", "hub", "floor", "hub/floor", "sioxide", "hub/sioxide"];
    row(table, head.map(String::from));
    let mut metrics = Map::new();
    let show = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into());
    for name in result.metric_names() {
        let hub = result.stat(Target::Hub, name);
        let floor = result.stat(Target::Floor, name);
        let sioxide = result.stat(Target::Sioxide, name);
        let ratio = result.ratio(name);
        let ratio_sioxide = result.ratio_to(Target::Sioxide, name);
        let cells = [
            name.to_string(),
            cell(hub.as_ref()),
            cell(floor.as_ref()),
            show(ratio),
            cell(sioxide.as_ref()),
            show(ratio_sioxide),
        ];
        row(table, cells);
        let mut m = Map::new();
        if let Some(h) = &hub {
            m.insert("hub".into(), h.to_json());
        }
        if let Some(f) = &floor {
            m.insert("floor".into(), f.to_json());
        }
        m.insert("ratio".into(), json!(ratio.map(round)));
        if let Some(x) = &sioxide {
            m.insert("sioxide".into(), x.to_json());
            m.insert("ratio_sioxide".into(), json!(ratio_sioxide.map(round)));
        }
        metrics.insert(name.to_string(), Value::Object(m));
    }
    metrics
}

/// The human table and the JSON line.
pub fn render(results: &[CaseResult], meta: &Meta) -> (String, String) {
    let mut table = String::new();
    let mut cases_json = Vec::new();
    let _ = writeln!(
        table,
        "\nhub-bench — median [min – max] over {} round(s) per target; ratio = hub median / floor (or socketioxide) median",
        meta.rounds
    );
    for result in results {
        let _ = writeln!(table, "\n{}", result.case.title());
        let metrics = metrics_table(result, &mut table);
        let targets = result.targets();
        for t in &targets {
            let _ = writeln!(
                table,
                "  target: {:<60} {:>10}  {}",
                t.name,
                t.value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into()),
                t.verdict()
            );
        }
        let mut errors = Map::new();
        for round in &result.rounds {
            if round.sample.get("errors").unwrap_or(0.0) > 0.0 || round.log_lines > 0 {
                let _ = writeln!(
                    table,
                    "  note: {} round: {} errors, {} server log lines{}",
                    round.target.name(),
                    round.sample.get("errors").unwrap_or(0.0),
                    round.log_lines,
                    round
                        .error
                        .as_ref()
                        .map(|e| format!("; first error: {e}"))
                        .unwrap_or_default()
                );
            }
            if let Some(e) = &round.error {
                errors.entry(round.target.name()).or_insert_with(|| json!(e));
            }
        }
        let c = &result.case;
        cases_json.push(json!({
            "scenario": c.scenario.name(),
            "protocol": c.proto.name(),
            "connections": c.connections,
            "payload_bytes": c.payload,
            "duration_s": c.duration.as_secs_f64(),
            "rate_per_s": if matches!(c.scenario, Scenario::Broadcast | Scenario::HostileNegotiate) { json!(c.rate) } else { Value::Null },
            "metrics": metrics,
            "targets": targets.iter().map(TargetCheck::to_json).collect::<Vec<_>>(),
            "first_errors": errors,
        }));
    }
    let cross = cross_targets(results);
    if !cross.is_empty() {
        let _ = writeln!(table, "\nacross cases");
        for t in &cross {
            let _ = writeln!(
                table,
                "  target: {:<84} {:>8}  {}",
                t.name,
                t.value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into()),
                t.verdict()
            );
        }
    }
    let line = json!({
        "hub_bench": 1,
        "machine": crate::sys::machine(),
        "meta": {
            "rounds": meta.rounds,
            "generator_threads": meta.generator_threads,
            "skip_negotiation": meta.skip_negotiation,
            "preset": meta.preset,
            "warmup_s": meta.warmup_s,
            "settle_s": meta.settle_s,
        },
        "cases": cases_json,
        "cross_targets": cross.iter().map(TargetCheck::to_json).collect::<Vec<_>>(),
    });
    (table, line.to_string())
}
