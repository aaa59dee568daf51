//! The connections' clock: cheap millisecond timestamps, and deadlines for timeouts that may
//! be "never".

use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[inline]
fn clock_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Milliseconds since the process's clock origin (a coarse, cheap timestamp).
#[inline]
pub(crate) fn now_ms() -> u64 {
    clock_origin().elapsed().as_millis() as u64
}

/// Instant of a [`now_ms`] timestamp; one more than a year from now (a deadline made of an
/// operator's "never", which may be past what an `Instant` holds) is a year from now.
pub(crate) fn instant_of(ms: u64) -> tokio::time::Instant {
    let far = now_ms().saturating_add(FAR.as_millis() as u64);
    tokio::time::Instant::from_std(clock_origin() + Duration::from_millis(ms.min(far)))
}

/// A user-set timeout, at most a year (an operator's `Duration::MAX`, "never", would
/// overflow an `Instant`).
pub(crate) fn bounded(timeout: Duration) -> Duration {
    timeout.min(FAR)
}

/// How far away "never" is: a year.
pub(crate) const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The instant `timeout` from now (at most a year away: see [`bounded`]).
pub(crate) fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + bounded(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_is_a_year_away() {
        let year = FAR.as_millis() as u64;
        let away = instant_of(u64::MAX) - tokio::time::Instant::now();
        assert!(away > FAR - Duration::from_secs(60) && away <= FAR, "{away:?}");
        let soon = instant_of(now_ms() + 1000) - tokio::time::Instant::now();
        assert!(soon <= Duration::from_secs(1), "{soon:?}");
        assert!(bounded(Duration::MAX) == FAR && bounded(Duration::from_secs(1)) == Duration::from_secs(1));
        let away = deadline_after(Duration::MAX) - tokio::time::Instant::now();
        assert!(away <= Duration::from_millis(year), "{away:?}");
    }
}
