//! Deadlines from user-set durations on the connection clock ([`now_ms`]): a timeout of
//! `Duration::MAX` (an operator's "never") saturates instead of overflowing, and becomes a
//! deadline a year away.

use std::time::Duration;

use crate::connection::{instant_of, now_ms};

/// The connection-clock reading `duration` after `at_ms`; past what a `u64` holds, its
/// largest value.
pub(crate) fn later(at_ms: u64, duration: Duration) -> u64 {
    let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    at_ms.saturating_add(millis)
}

/// The instant of connection-clock reading `ms`, no earlier than now and no later than a year
/// from now ([`instant_of`] caps it: anything later means never, and may be past what an
/// `Instant` holds).
pub(crate) fn instant_within_far(ms: u64) -> tokio::time::Instant {
    instant_of(ms.max(now_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::FAR;

    #[test]
    fn later_saturates() {
        assert_eq!(later(5, Duration::from_millis(7)), 12);
        assert_eq!(later(5, Duration::from_micros(2_999)), 7, "whole milliseconds");
        assert_eq!(later(5, Duration::MAX), u64::MAX);
        assert_eq!(later(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(later(0, Duration::from_secs(u64::MAX / 1000)), u64::MAX / 1000 * 1000);
    }

    #[tokio::test]
    async fn an_instant_is_between_now_and_a_year_away() {
        let far = instant_within_far(u64::MAX);
        let away = far - tokio::time::Instant::now();
        assert!(away > FAR - Duration::from_secs(60), "{away:?}");
        assert!(away <= FAR + Duration::from_millis(1), "{away:?}");
        let past = instant_within_far(0);
        assert!(past <= tokio::time::Instant::now() + Duration::from_millis(1));
        let soon = instant_within_far(later(now_ms(), Duration::from_secs(60)));
        let away = soon - tokio::time::Instant::now();
        assert!(
            away > Duration::from_secs(50) && away <= Duration::from_secs(61),
            "{away:?}"
        );
    }
}
