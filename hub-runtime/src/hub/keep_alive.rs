//! Keep-alive: a Ping when the server has written nothing for `keep_alive_interval`, and the
//! end of a client that has sent nothing for `client_timeout`. Long polling keeps itself
//! alive: no pings, no client timeout.

use super::deadline;
use crate::connection::{Connection, TransportKind};
use crate::options::HubOptions;

/// The keep-alive policy of one connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeepAlive {
    /// `None` when the transport keeps itself alive (long polling).
    intervals: Option<Intervals>,
}

#[derive(Debug, Clone, Copy)]
struct Intervals {
    keep_alive: std::time::Duration,
    client_timeout: std::time::Duration,
}

/// What is due when the keep-alive timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// The client sent nothing for too long: the connection ends.
    ClientTimedOut,
    /// The server wrote nothing for a while: a Ping.
    Ping,
    /// Nothing (the timer fired early: reads and writes moved its deadline).
    Nothing,
}

impl KeepAlive {
    /// The policy for a connection on `transport`.
    pub(super) fn new(transport: Option<TransportKind>, options: &HubOptions) -> Self {
        let inherent = transport == Some(TransportKind::LongPolling);
        KeepAlive {
            intervals: (!inherent).then_some(Intervals {
                keep_alive: options.keep_alive_interval,
                client_timeout: options.client_timeout,
            }),
        }
    }

    /// The connection-clock reading at which something may be due, given when the connection
    /// last read and wrote; without keep-alive, never (a year away once an instant).
    pub(super) fn deadline_ms(&self, last_read_ms: u64, last_write_ms: u64) -> u64 {
        let Some(intervals) = self.intervals else {
            return u64::MAX;
        };
        let keep_alive_at = deadline::later(last_write_ms, intervals.keep_alive);
        let timeout_at = deadline::later(last_read_ms, intervals.client_timeout);
        keep_alive_at.min(timeout_at)
    }

    /// When the connection's keep-alive timer is to fire next. It is re-armed only when it
    /// fires: reads and writes move its deadline later, so a timer that fires early is simply
    /// set again.
    pub(super) fn deadline(&self, connection: &Connection) -> tokio::time::Instant {
        deadline::instant_within_far(self.deadline_ms(connection.last_read_ms(), connection.last_write_ms()))
    }

    /// What is due at connection-clock reading `now_ms`.
    pub(super) fn due(&self, now_ms: u64, last_read_ms: u64, last_write_ms: u64) -> Due {
        let Some(intervals) = self.intervals else {
            return Due::Nothing;
        };
        if now_ms >= deadline::later(last_read_ms, intervals.client_timeout) {
            Due::ClientTimedOut
        } else if now_ms >= deadline::later(last_write_ms, intervals.keep_alive) {
            Due::Ping
        } else {
            Due::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn options() -> HubOptions {
        HubOptions {
            keep_alive_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            ..HubOptions::default()
        }
    }

    #[test]
    fn a_ping_when_the_server_was_quiet_and_an_end_when_the_client_was() {
        let policy = KeepAlive::new(Some(TransportKind::WebSockets), &options());
        assert_eq!(policy.deadline_ms(1_000, 2_000), 17_000);
        assert_eq!(policy.deadline_ms(1_000, 20_000), 31_000);
        assert_eq!(policy.due(16_999, 1_000, 2_000), Due::Nothing);
        assert_eq!(policy.due(17_000, 1_000, 2_000), Due::Ping);
        assert_eq!(
            policy.due(31_000, 1_000, 20_000),
            Due::ClientTimedOut,
            "the timeout first"
        );
    }

    #[test]
    fn long_polling_keeps_itself_alive() {
        let policy = KeepAlive::new(Some(TransportKind::LongPolling), &options());
        assert_eq!(policy.deadline_ms(0, 0), u64::MAX);
        assert_eq!(policy.due(u64::MAX, 0, 0), Due::Nothing);
    }

    #[test]
    fn never_is_a_year_away() {
        let never = HubOptions {
            keep_alive_interval: Duration::MAX,
            client_timeout: Duration::MAX,
            ..HubOptions::default()
        };
        let policy = KeepAlive::new(None, &never);
        assert_eq!(policy.deadline_ms(5, 5), u64::MAX);
        assert_eq!(policy.due(u64::MAX - 1, 5, 5), Due::Nothing);
    }
}
