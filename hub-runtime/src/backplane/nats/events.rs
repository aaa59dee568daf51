//! What the NATS client reports (`async_nats::Event`), counted and logged.
//!
//! - `Disconnected`: a gap. The client reconnects by itself (with backoff, without limit) and
//!   subscribes everything again; what other servers published meanwhile did not arrive.
//! - `SlowConsumer(sid)`: the client dropped a message because that subscription's queue
//!   (`NatsOptions::subscription_capacity`) was full: a lost message. The client reports each
//!   dropped message, but through a queue of 128 events that drops reports when it is full,
//!   so the count is a lower bound.
//! - `ServerError` (e.g. an authorization violation on a subject) and `ClientError` are logged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_nats::Event;

use crate::observability::BackplaneMetrics;

/// Counts and logs the client's events.
pub(super) struct Events {
    metrics: Arc<BackplaneMetrics>,
    /// Whether the first connection came (later `Connected` events are reconnects).
    connected_once: AtomicBool,
    slow: AtomicU64,
}

impl Events {
    pub(super) fn new(metrics: Arc<BackplaneMetrics>) -> Self {
        Events {
            metrics,
            connected_once: AtomicBool::new(false),
            slow: AtomicU64::new(0),
        }
    }

    pub(super) fn handle(&self, event: Event) {
        match event {
            Event::Disconnected => {
                self.metrics.gap();
                tracing::warn!("nats backplane disconnected; reconnecting (local delivery continues)");
            }
            Event::Connected => {
                if self.connected_once.swap(true, Ordering::Relaxed) {
                    tracing::info!("nats backplane reconnected; the client subscribed again");
                }
            }
            Event::SlowConsumer(sid) => {
                self.metrics.lost(1);
                let dropped = self.slow.fetch_add(1, Ordering::Relaxed) + 1;
                // 1st, 2nd, 4th, 8th…: a flood does not flood the log.
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        subscription = sid,
                        dropped,
                        "nats backplane is a slow consumer: messages from other servers were dropped \
                         (raise NatsOptions::subscription_capacity)"
                    );
                }
            }
            Event::ServerError(error) => tracing::warn!(%error, "nats server reported an error"),
            Event::ClientError(error) => tracing::debug!(%error, "nats client error"),
            Event::LameDuckMode => tracing::info!("nats server is shutting down (lame duck mode)"),
            Event::Draining | Event::Closed => tracing::debug!(%event, "nats client"),
        }
    }
}
