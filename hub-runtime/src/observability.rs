//! Observability: what the server counts, reported through the `metrics` facade so any
//! recorder (Prometheus, StatsD, OpenTelemetry…) can collect it. The counting needs the
//! `metrics` feature; without it the handles below are empty types and every update compiles
//! to nothing.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `hub_connections` | gauge | `hub`, `transport` | connections open now |
//! | `hub_connections_opened_total` | counter | `hub`, `transport` | connections ever started |
//! | `hub_messages_received_total` | counter | `hub`, `protocol` | messages parsed from clients |
//! | `hub_messages_sent_total` | counter | `hub`, `protocol` | frames queued to clients |
//! | `hub_invocation_errors_total` | counter | `hub` | Completion errors sent for invocations |
//! | `hub_slow_consumer_closes_total` | counter | `hub` | connections closed for not reading |
//! | `hub_panics_total` | counter | `hub`, `method` | panics caught in user code (`method` is the hub method's declared name, or `on_connected` / `on_disconnected`) |
//! | `hub_backplane_failed_publishes_total` | counter | `backplane` | messages for other servers lost |
//! | `hub_backplane_gaps_total` | counter | `backplane` | times the backplane's subscriptions were lost |
//! | `hub_backplane_failed_subscriptions_total` | counter | `backplane` | subscription changes Redis did not take (each is retried) |
//!
//! `hub` is the endpoint's path, `transport` one of `WebSockets`, `ServerSentEvents`,
//! `LongPolling`, and `protocol` one of `json`, `messagepack`, `raw` (a connection endpoint,
//! or a hub connection before its handshake) or `other` (a custom protocol).
//!
//! Counters are registered when the server is built, so install the recorder first:
//!
//! ```no_run
//! # struct Chat;
//! # #[hub_runtime::hub] impl Chat { async fn send(&self, text: String) {} }
//! // e.g. with metrics-exporter-prometheus:
//! // let prometheus = PrometheusBuilder::new().install_recorder()?;
//! let server = hub_runtime::HubServer::builder().hub("/chat", Chat).build();
//! ```
//!
//! Every update on the message path is one atomic add on a handle made at build time.

use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "metrics")]
use metrics::{counter, gauge, Counter, Gauge};

#[cfg(not(feature = "metrics"))]
use self::noop::{counter, gauge, Counter, Gauge};

use crate::request::TransportKind;

const TRANSPORTS: [&str; 3] = ["WebSockets", "ServerSentEvents", "LongPolling"];
const PROTOCOLS: [&str; 4] = ["raw", "json", "messagepack", "other"];

/// The label index of a protocol name.
pub(crate) fn protocol_index(name: &str) -> u8 {
    match name {
        "json" => 1,
        "messagepack" => 2,
        _ => 3,
    }
}

fn transport_index(transport: TransportKind) -> usize {
    match transport {
        TransportKind::WebSockets => 0,
        TransportKind::ServerSentEvents => 1,
        TransportKind::LongPolling => 2,
    }
}

/// The handles of one endpoint.
pub(crate) struct EndpointMetrics {
    connections: [Gauge; 3],
    opened: [Counter; 3],
    received: [Counter; 4],
    sent: [Counter; 4],
    invocation_errors: Counter,
    slow_consumer_closes: Counter,
    /// The `hub` label, for counters made when first needed (`hub_panics_total`).
    hub: String,
}

impl EndpointMetrics {
    pub(crate) fn new(hub: &str) -> Self {
        let hub = hub.to_string();
        let per_transport =
            |name: &'static str| TRANSPORTS.map(|t| counter!(name, "hub" => hub.clone(), "transport" => t));
        let per_protocol =
            |name: &'static str| PROTOCOLS.map(|p| counter!(name, "hub" => hub.clone(), "protocol" => p));
        EndpointMetrics {
            connections: TRANSPORTS.map(|t| gauge!("hub_connections", "hub" => hub.clone(), "transport" => t)),
            opened: per_transport("hub_connections_opened_total"),
            received: per_protocol("hub_messages_received_total"),
            sent: per_protocol("hub_messages_sent_total"),
            invocation_errors: counter!("hub_invocation_errors_total", "hub" => hub.clone()),
            slow_consumer_closes: counter!("hub_slow_consumer_closes_total", "hub" => hub.clone()),
            hub,
        }
    }

    pub(crate) fn connection_opened(&self, transport: TransportKind) {
        let i = transport_index(transport);
        self.connections[i].increment(1.0);
        self.opened[i].increment(1);
    }

    pub(crate) fn connection_closed(&self, transport: TransportKind) {
        self.connections[transport_index(transport)].decrement(1.0);
    }

    pub(crate) fn received(&self, protocol: u8, messages: usize) {
        self.received[usize::from(protocol).min(3)].increment(messages as u64);
    }

    pub(crate) fn sent(&self, protocol: u8) {
        self.sent[usize::from(protocol).min(3)].increment(1);
    }

    pub(crate) fn invocation_error(&self) {
        self.invocation_errors.increment(1);
    }

    pub(crate) fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.increment(1);
    }

    /// A panic was caught in user code. Its handle is made here: panics are rare, and the
    /// method names are fixed at compile time (the label set stays small).
    pub(crate) fn panicked(&self, method: &'static str) {
        counter!("hub_panics_total", "hub" => self.hub.clone(), "method" => method).increment(1);
    }
}

/// The handles of a backplane (only the backplanes behind features use them), and the same
/// counts kept here for [`Backplane::stats`](crate::backplane::Backplane::stats).
#[cfg_attr(
    not(any(feature = "redis", feature = "postgres", feature = "nats")),
    allow(dead_code)
)]
pub(crate) struct BackplaneMetrics {
    failed_publishes: Counter,
    failed_subscriptions: Counter,
    gaps: Counter,
    lost_messages: Counter,
    counts: BackplaneCounts,
}

/// The counts behind [`BackplaneStats`](crate::backplane::BackplaneStats).
#[derive(Default)]
struct BackplaneCounts {
    failed_publishes: AtomicU64,
    failed_subscriptions: AtomicU64,
    gaps: AtomicU64,
    lost_messages: AtomicU64,
}

#[cfg_attr(
    not(any(feature = "redis", feature = "postgres", feature = "nats")),
    allow(dead_code)
)]
impl BackplaneMetrics {
    pub(crate) fn new(backplane: &'static str) -> Self {
        BackplaneMetrics {
            failed_publishes: counter!("hub_backplane_failed_publishes_total", "backplane" => backplane),
            failed_subscriptions: counter!("hub_backplane_failed_subscriptions_total", "backplane" => backplane),
            gaps: counter!("hub_backplane_gaps_total", "backplane" => backplane),
            lost_messages: counter!("hub_backplane_lost_messages_total", "backplane" => backplane),
            counts: BackplaneCounts::default(),
        }
    }

    /// Counts a message for other servers that could not be published; returns how many failed
    /// so far (callers log the 1st, 2nd, 4th, 8th… so an outage does not flood the log).
    pub(crate) fn failed_publish(&self) -> u64 {
        self.failed_publishes.increment(1);
        self.counts.failed_publishes.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a subscribe (or unsubscribe) that failed; returns how many failed so far.
    pub(crate) fn failed_subscription(&self) -> u64 {
        self.failed_subscriptions.increment(1);
        self.counts.failed_subscriptions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a lost listening connection: what other servers sent until it was back is lost.
    pub(crate) fn gap(&self) {
        self.gaps.increment(1);
        self.counts.gaps.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts messages from other servers known to be lost (the broker dropped them).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))] // only NATS reports its losses
    pub(crate) fn lost(&self, messages: u64) {
        self.lost_messages.increment(messages);
        self.counts.lost_messages.fetch_add(messages, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> crate::backplane::BackplaneStats {
        let c = &self.counts;
        crate::backplane::BackplaneStats {
            failed_publishes: c.failed_publishes.load(Ordering::Relaxed),
            failed_subscriptions: c.failed_subscriptions.load(Ordering::Relaxed),
            gaps: c.gaps.load(Ordering::Relaxed),
            lost_messages: c.lost_messages.load(Ordering::Relaxed),
        }
    }
}

/// Without the `metrics` feature: handles with the facade's shape that count nothing, so the
/// call sites read the same with the feature on or off.
#[cfg(not(feature = "metrics"))]
mod noop {
    /// A counter that counts nothing.
    pub(super) struct Counter;

    impl Counter {
        pub(super) fn increment(&self, _value: u64) {}
    }

    /// A gauge that records nothing.
    pub(super) struct Gauge;

    impl Gauge {
        pub(super) fn increment(&self, _value: f64) {}
        pub(super) fn decrement(&self, _value: f64) {}
    }

    /// `metrics::counter!` with nothing behind it (the name and labels are still evaluated, so
    /// they are type-checked and used as with the feature on).
    macro_rules! counter {
        ($name:expr $(, $key:expr => $value:expr)* $(,)?) => {{
            let _ = ($name, $(($key, $value)),*);
            $crate::observability::noop::Counter
        }};
    }

    /// `metrics::gauge!` with nothing behind it.
    macro_rules! gauge {
        ($name:expr $(, $key:expr => $value:expr)* $(,)?) => {{
            let _ = ($name, $(($key, $value)),*);
            $crate::observability::noop::Gauge
        }};
    }

    pub(super) use {counter, gauge};
}
