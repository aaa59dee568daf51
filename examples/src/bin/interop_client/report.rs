//! Running one check: its timeout, its line (`ok` or `FAIL` with why), and the tally.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::Pair;

/// How long one check may take before it counts as a hang.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a check waits for one call from the server (a handler) before it gives up.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a check failed: one line of text.
pub type Failure = String;

/// The checks run so far.
#[derive(Debug)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    /// How long one check may take ([`CHECK_TIMEOUT`]).
    timeout: Duration,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            passed: 0,
            failed: 0,
            timeout: CHECK_TIMEOUT,
        }
    }
}

impl Report {
    /// Runs `check` within the check timeout, prints its line and counts it; its value when it
    /// passed.
    pub async fn check<T>(
        &mut self,
        pair: Pair,
        name: &str,
        check: impl Future<Output = Result<T, Failure>>,
    ) -> Option<T> {
        let outcome = match tokio::time::timeout(self.timeout, check).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timed out after {} s", self.timeout.as_secs_f64())),
        };
        let label = pair.label();
        match outcome {
            Ok(value) => {
                self.passed += 1;
                say(format_args!("ok    {label:<24} {name}"));
                Some(value)
            }
            Err(why) => {
                self.failed += 1;
                say(format_args!("FAIL  {label:<24} {name}: {why}"));
                None
            }
        }
    }
}

/// Prints a line on stdout. A closed stdout (`interop-client … | head`) loses the line but
/// does not stop the checks: the exit status still tells how they went.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// `Ok` when `actual == expected`, else a failure naming both.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, actual: T, expected: T) -> Result<(), Failure> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {actual:?}"))
    }
}

/// Adds what failed to an error: `Echo: transport error: …`.
pub trait Context<T> {
    fn context(self, what: &str) -> Result<T, Failure>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// `future`'s output, or a failure saying what did not come within `timeout`.
pub async fn within<T>(timeout: Duration, what: &str, future: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| format!("{what}: nothing within {} s", timeout.as_secs()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hub_client::{Protocol, TransportKind};

    use super::{expect_eq, Report};
    use crate::Pair;

    const PAIR: Pair = Pair {
        transport: TransportKind::LongPolling,
        protocol: Protocol::Json,
    };

    #[tokio::test]
    async fn a_check_passes_fails_or_hangs() {
        let mut report = Report {
            timeout: Duration::from_millis(50),
            ..Report::default()
        };
        assert_eq!(report.check(PAIR, "passes", async { Ok(7) }).await, Some(7));
        let failed = report.check(PAIR, "fails", async { expect_eq("x", 1, 2) }).await;
        assert_eq!(failed, None);
        let hung = report
            .check(PAIR, "hangs", std::future::pending::<Result<(), String>>())
            .await;
        assert_eq!(hung, None);
        assert_eq!((report.passed, report.failed), (1, 2));
    }

    #[test]
    fn a_mismatch_names_both_values() {
        assert_eq!(expect_eq("Echo", "a", "a"), Ok(()));
        assert_eq!(
            expect_eq("Echo", "got", "wanted"),
            Err("Echo: expected \"wanted\", got \"got\"".to_string())
        );
    }
}
