//! The feature-cost scenarios' table (the two modes side by side, with their ratio) and JSON
//! line.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::cost::{Feature, ModeRound, Plan};
use crate::report::{cell, human, round, Stat};
use crate::scenario::Sample;

/// The rows of a feature's table: metric, label.
fn rows(feature: Feature) -> &'static [(&'static str, &'static str)] {
    match feature {
        Feature::Presence => &[
            ("joins_per_s", "connect+join /s"),
            ("join_p50_ms", "connect+join p50 ms"),
            ("join_p99_ms", "connect+join p99 ms"),
            ("leaves_per_s", "leave /s"),
            ("leave_p50_ms", "leave p50 ms"),
            ("leave_p99_ms", "leave p99 ms"),
            ("server_cpu_us_per_join", "server CPU µs / join"),
            ("broker_cpu_us_per_join", "redis CPU µs / join"),
            ("server_cpu_us_per_leave", "server CPU µs / leave"),
            ("broker_cpu_us_per_leave", "redis CPU µs / leave"),
            ("joined_events", "Joined events received"),
            ("left_events", "Left events received"),
            ("errors", "errors"),
            ("load_1m_at_start", "load (1 min) at start"),
        ],
        Feature::History => &[
            ("published_per_s", "published msg/s"),
            ("deliveries_per_s", "delivered msg/s"),
            ("delivered_pct", "delivered %"),
            ("latency_p50_ms", "delivery p50 ms"),
            ("latency_p99_ms", "delivery p99 ms"),
            ("server_cpu_us_per_delivery", "server CPU µs / delivery"),
            ("broker_cpu_us_per_delivery", "redis CPU µs / delivery"),
            ("errors", "errors"),
            ("load_1m_at_start", "load (1 min) at start"),
        ],
    }
}

/// The metrics whose ratio (feature mode / other mode) the run is about.
fn headline(feature: Feature) -> &'static [&'static str] {
    match feature {
        Feature::Presence => &["joins_per_s", "join_p50_ms", "join_p99_ms", "leaves_per_s"],
        Feature::History => &[
            "published_per_s",
            "deliveries_per_s",
            "latency_p50_ms",
            "latency_p99_ms",
        ],
    }
}

fn values(rounds: &[ModeRound], mode: crate::cost::Mode, metric: &str) -> Vec<f64> {
    rounds
        .iter()
        .filter(|r| r.mode == mode)
        .filter_map(|r| r.sample.as_ref()?.get(metric))
        .filter(|v| v.is_finite())
        .collect()
}

/// The ratio of two medians, when both exist and the divisor is not 0.
fn ratio(a: Option<&Stat>, b: Option<&Stat>) -> Option<f64> {
    let (a, b) = (a?.median, b?.median);
    (b.abs() > 1e-12).then(|| a / b)
}

/// One line about one measurement, for progress output.
pub fn brief(feature: Feature, s: &Sample) -> String {
    let g = |n: &str| s.get(n).unwrap_or(f64::NAN);
    match feature {
        Feature::Presence => format!(
            "{} joins/s  p50 {:.2} ms  p99 {:.2} ms  {} leaves/s  events {}+{}  errors {}",
            human(g("joins_per_s")),
            g("join_p50_ms"),
            g("join_p99_ms"),
            human(g("leaves_per_s")),
            g("joined_events"),
            g("left_events"),
            g("errors")
        ),
        Feature::History => format!(
            "{} published/s  {} delivered/s  {:.3} %  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            human(g("published_per_s")),
            human(g("deliveries_per_s")),
            g("delivered_pct"),
            g("latency_p50_ms"),
            g("latency_p99_ms"),
            g("errors")
        ),
    }
}

/// The human table and the JSON line.
pub fn render(plan: &Plan, rounds: &[ModeRound]) -> (String, String) {
    let [feature_mode, other_mode] = plan.modes();
    let mut table = String::new();
    let _ = writeln!(table, "\n{}  (medians [min – max] over the rounds)", plan.title());
    let ratio_label = format!("{}/{}", short(feature_mode.name()), short(other_mode.name()));
    let _ = writeln!(
        table,
        "{:<26} {:>26} {:>26} {:>10}",
        "",
        feature_mode.name(),
        other_mode.name(),
        ratio_label
    );
    let mut metrics = Map::new();
    for &(metric, label) in rows(plan.feature) {
        let on = Stat::of(values(rounds, feature_mode, metric));
        let off = Stat::of(values(rounds, other_mode, metric));
        let r = ratio(on.as_ref(), off.as_ref());
        let _ = writeln!(
            table,
            "{label:<26} {:>26} {:>26} {:>10}",
            cell(on.as_ref()),
            cell(off.as_ref()),
            r.map(|r| format!("{r:.3}")).unwrap_or_else(|| "—".into())
        );
        metrics.insert(
            metric.into(),
            json!({
                feature_mode.name(): on.as_ref().map(Stat::to_json),
                other_mode.name(): off.as_ref().map(Stat::to_json),
                "ratio": r.map(round),
            }),
        );
    }
    for r in rounds.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(
            table,
            "round {} {}: {}",
            r.round + 1,
            r.mode.name(),
            r.error.as_deref().unwrap_or("")
        );
    }
    let headline: Map<String, Value> = headline(plan.feature)
        .iter()
        .map(|&m| {
            let on = Stat::of(values(rounds, feature_mode, m));
            let off = Stat::of(values(rounds, other_mode, m));
            (m.to_string(), json!(ratio(on.as_ref(), off.as_ref()).map(round)))
        })
        .collect();
    let line = json!({
        "bench": "hub-bench",
        "scenario": plan.feature.name(),
        "title": plan.title(),
        "protocol": plan.proto.name(),
        "connections": plan.connections,
        "rounds": plan.rounds,
        "generator_threads": plan.gen_threads,
        "machine": crate::sys::machine(),
        "ratios": headline,
        "metrics": metrics,
    });
    (table, line.to_string())
}

/// "presence on" → "on".
fn short(name: &str) -> &str {
    name.rsplit(' ').next().unwrap_or(name)
}
