//! Automatic reconnect: the [`RetryPolicy`] that decides when to try again, and the
//! callbacks told about it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;

/// What a [`RetryPolicy`] knows when it decides on the next attempt.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryContext<'a> {
    /// How many reconnect attempts failed so far (0 before the first).
    pub previous_retry_count: u32,
    /// How long the client has been reconnecting.
    pub elapsed: Duration,
    /// Why the connection was lost, or why the last attempt failed.
    pub retry_reason: &'a Error,
}

/// Decides whether, and after how long, a lost connection is tried again.
///
/// Any `Fn(&RetryContext) -> Option<Duration>` is a policy:
///
/// ```
/// use std::time::Duration;
/// use hub_client::{HubConnectionBuilder, RetryContext};
///
/// // Doubling delays from 100 ms, for at most a minute.
/// let connection = HubConnectionBuilder::new("http://localhost:5000/chat")
///     .automatic_reconnect_with(|context: &RetryContext<'_>| {
///         (context.elapsed < Duration::from_secs(60))
///             .then(|| Duration::from_millis(100) * 2u32.saturating_pow(context.previous_retry_count.min(10)))
///     })
///     .build()
///     .unwrap();
/// # drop(connection);
/// ```
pub trait RetryPolicy: Send + Sync + 'static {
    /// The delay before the next attempt, or `None` to give up (the connection then closes
    /// with the reason it was lost).
    fn next_retry_delay(&self, context: &RetryContext<'_>) -> Option<Duration>;
}

impl<F> RetryPolicy for F
where
    F: Fn(&RetryContext<'_>) -> Option<Duration> + Send + Sync + 'static,
{
    fn next_retry_delay(&self, context: &RetryContext<'_>) -> Option<Duration> {
        self(context)
    }
}

/// A fixed list of delays, one per attempt, then give up. The default is the official
/// clients': 0, 2, 10 and 30 seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delays(pub Vec<Duration>);

impl Default for Delays {
    fn default() -> Self {
        Delays([0, 2, 10, 30].into_iter().map(Duration::from_secs).collect())
    }
}

impl RetryPolicy for Delays {
    fn next_retry_delay(&self, context: &RetryContext<'_>) -> Option<Duration> {
        usize::try_from(context.previous_retry_count)
            .ok()
            .and_then(|n| self.0.get(n))
            .copied()
    }
}

type Reconnecting = Arc<dyn Fn(&Error) + Send + Sync>;
type Reconnected = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// The reconnecting and reconnected callbacks of a connection.
#[derive(Default)]
pub(crate) struct Callbacks {
    reconnecting: Mutex<Vec<Reconnecting>>,
    reconnected: Mutex<Vec<Reconnected>>,
}

impl Callbacks {
    pub(crate) fn add_reconnecting(&self, callback: Reconnecting) {
        self.reconnecting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(callback);
    }

    pub(crate) fn add_reconnected(&self, callback: Reconnected) {
        self.reconnected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(callback);
    }

    pub(crate) fn reconnecting(&self, error: &Error) {
        let callbacks = self.reconnecting.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for callback in callbacks {
            callback(error);
        }
    }

    pub(crate) fn reconnected(&self, connection_id: Option<&str>) {
        let callbacks = self.reconnected.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for callback in callbacks {
            callback(connection_id);
        }
    }
}
