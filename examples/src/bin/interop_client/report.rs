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
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
}

impl Report {
    /// Runs `check` within [`CHECK_TIMEOUT`], prints its line and counts it; its value when it
    /// passed.
    pub async fn check<T>(
        &mut self,
        pair: Pair,
        name: &str,
        check: impl Future<Output = Result<T, Failure>>,
    ) -> Option<T> {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timed out after {} s", CHECK_TIMEOUT.as_secs())),
        };
        let label = pair.label();
        match outcome {
            Ok(value) => {
                self.passed += 1;
                println!("ok    {label:<24} {name}");
                Some(value)
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL  {label:<24} {name}: {why}");
                None
            }
        }
    }
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
