//! The scale-out scenario's table (one column per backplane, side by side) and its JSON line.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::brokers::Backplane;
use crate::report::{cell, round, Stat};
use crate::scaleout::{BackplaneRound, Plan};

/// How the run was made, for the JSON line.
pub struct Meta {
    pub generator_threads: usize,
}

/// An issue target checked on the figures.
struct Check {
    name: String,
    value: Option<f64>,
    met: Option<bool>,
}

impl Check {
    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "as measured",
        }
    }

    fn to_json(&self) -> Value {
        json!({ "target": self.name, "value": self.value.map(round), "met": self.met })
    }
}

/// The backplanes in the plan's order, each with its rounds.
fn by_backplane<'a>(plan: &Plan, rounds: &'a [BackplaneRound]) -> Vec<(Backplane, Vec<&'a BackplaneRound>)> {
    plan.backplanes
        .iter()
        .map(|&b| (b, rounds.iter().filter(|r| r.backplane == b).collect()))
        .collect()
}

fn values(rounds: &[&BackplaneRound], metric: &str) -> Vec<f64> {
    rounds
        .iter()
        .filter_map(|r| r.sample.as_ref()?.get(metric))
        .filter(|v| v.is_finite())
        .collect()
}

fn metric_names(rounds: &[BackplaneRound]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for sample in rounds.iter().filter_map(|r| r.sample.as_ref()) {
        for (name, _) in &sample.0 {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    names
}

/// The targets: 100 % delivered and nothing twice or out of order on every backplane
/// (every round); NATS p99 within 1.5 × Redis's; PostgreSQL's p99 as measured.
fn checks(columns: &[(Backplane, Vec<&BackplaneRound>)]) -> Vec<Check> {
    let mut out = Vec::new();
    for (backplane, rounds) in columns {
        let measured = rounds.iter().all(|r| r.sample.is_some()) && !rounds.is_empty();
        let worst = values(rounds, "delivered_pct").into_iter().reduce(f64::min);
        out.push(Check {
            name: format!("{}: 100 % delivered (every round)", backplane.name()),
            value: worst,
            met: Some(measured && worst.is_some_and(|w| w >= 100.0 - 1e-9)),
        });
        let anomalies = rounds
            .iter()
            .filter_map(|r| {
                let s = r.sample.as_ref()?;
                Some(s.get("duplicates")? + s.get("out_of_order")?)
            })
            .reduce(f64::max);
        out.push(Check {
            name: format!("{}: no duplicates, nothing out of order", backplane.name()),
            value: anomalies,
            met: Some(measured && anomalies == Some(0.0)),
        });
    }
    let p99 = |wanted: Backplane| {
        let rounds = &columns.iter().find(|(b, _)| *b == wanted)?.1;
        Stat::of(values(rounds, "latency_p99_ms")).map(|s| s.median)
    };
    let redis = p99(Backplane::Redis).filter(|r| *r > 0.0);
    if let (Some(nats), Some(redis)) = (p99(Backplane::Nats), redis) {
        out.push(Check {
            name: "nats p99 ≤ 1.5 × redis p99 (value = nats/redis)".into(),
            value: Some(nats / redis),
            met: Some(nats / redis <= 1.5),
        });
    }
    if let (Some(pg), Some(redis)) = (p99(Backplane::Postgres), redis) {
        out.push(Check {
            name: "postgres p99 / redis p99".into(),
            value: Some(pg / redis),
            met: None,
        });
    }
    out
}

/// The human table and the JSON line.
pub fn render(plan: &Plan, rounds: &[BackplaneRound], meta: &Meta) -> (String, String) {
    let columns = by_backplane(plan, rounds);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\nhub-bench scaleout — median [min – max] over {} round(s) per backplane; CPU per delivery = CPU time over the window and its drain ÷ deliveries",
        plan.rounds
    );
    let _ = writeln!(table, "\n{}", plan.title());
    let _ = write!(table, "  {:<28}", "metric");
    for (backplane, _) in &columns {
        let _ = write!(table, " {:>32}", backplane.name());
    }
    table.push('\n');
    let mut per_backplane: Vec<Map<String, Value>> = vec![Map::new(); columns.len()];
    for name in metric_names(rounds) {
        let _ = write!(table, "  {name:<28}");
        for (i, (_, rs)) in columns.iter().enumerate() {
            let stat = Stat::of(values(rs, name));
            let _ = write!(table, " {:>32}", cell(stat.as_ref()));
            if let Some(stat) = stat {
                per_backplane[i].insert(name.to_string(), stat.to_json());
            }
        }
        table.push('\n');
    }
    let checks = checks(&columns);
    for check in &checks {
        let _ = writeln!(
            table,
            "  target: {:<52} {:>10}  {}",
            check.name,
            check.value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into()),
            check.verdict()
        );
    }
    notes(&mut table, rounds);
    let backplanes: Map<String, Value> = columns
        .iter()
        .zip(per_backplane)
        .map(|((backplane, rs), metrics)| {
            let failed = rs.iter().filter(|r| r.sample.is_none()).count();
            let first_error = rs.iter().find_map(|r| r.error.clone());
            (
                backplane.name().to_string(),
                json!({ "metrics": metrics, "rounds_failed": failed, "first_error": first_error }),
            )
        })
        .collect();
    let line = json!({
        "hub_bench": 1,
        "machine": crate::sys::machine(),
        "meta": {
            "rounds": plan.rounds,
            "generator_threads": meta.generator_threads,
            "warmup_s": plan.warmup.as_secs_f64(),
            "negotiate": plan.negotiate,
        },
        "cases": [{
            "scenario": "scaleout",
            "protocol": plan.proto.name(),
            "servers": plan.servers,
            "connections": plan.listeners,
            "payload_bytes": plan.payload,
            "duration_s": plan.duration.as_secs_f64(),
            "rate_per_s": plan.rate,
            "backplanes": backplanes,
            "targets": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        }],
    });
    (table, line.to_string())
}

/// A line per round that failed, saw errors, or whose servers logged more than joining.
fn notes(table: &mut String, rounds: &[BackplaneRound]) {
    for r in rounds {
        let errors = r.sample.as_ref().and_then(|s| s.get("errors")).unwrap_or(0.0);
        let what = match &r.sample {
            None => "FAILED".to_string(),
            Some(_) if errors > 0.0 => format!("{errors} errors"),
            Some(_) => continue,
        };
        let _ = writeln!(
            table,
            "  note: {} round {}: {what}, {} server log lines{}",
            r.backplane.name(),
            r.round + 1,
            r.log_lines,
            r.error
                .as_ref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        );
    }
}
