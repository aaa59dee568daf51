//! Sweeping: the manager lets go of connections that no transport carries any more.

use std::time::Duration;

use super::manager::ConnectionManager;
use crate::request::TransportKind;

/// How long connections without a transport are kept, by kind (see
/// [`ConnectionManager::sweep`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepTimeouts {
    /// Negotiated, never started.
    pub(crate) unstarted: Duration,
    /// Long polling, no poll waiting.
    pub(crate) disconnect: Duration,
    /// Stateful WebSocket whose socket dropped.
    pub(crate) reconnect_grace: Duration,
}

impl SweepTimeouts {
    /// Every connection without a transport goes now (shutdown).
    pub(crate) const NOW: SweepTimeouts = SweepTimeouts {
        unstarted: Duration::ZERO,
        disconnect: Duration::ZERO,
        reconnect_grace: Duration::ZERO,
    };
}

impl ConnectionManager {
    /// Drops connections that were negotiated but never started within
    /// `timeouts.unstarted`, long polling connections whose client stopped polling
    /// `timeouts.disconnect` ago, WebSocket connections whose socket dropped
    /// `timeouts.reconnect_grace` ago without being re-attached, and (a backstop) any other
    /// connection that was ended. An ended long polling connection stays until its client
    /// stops polling (its next poll learns the end), as the disconnect timeout says.
    pub(crate) fn sweep(&self, timeouts: SweepTimeouts) {
        self.connections.retain(|_, c| {
            let mut state = c.lock();
            let keep = if c.is_aborted() && state.transport != Some(TransportKind::LongPolling) {
                false
            } else if !state.started {
                c.created.elapsed() < timeouts.unstarted
            } else if state.transport == Some(TransportKind::LongPolling) && state.poll.is_none() {
                state.last_poll_end.elapsed() < timeouts.disconnect
            } else if let Some(since) = state.detached_at {
                since.elapsed() < timeouts.reconnect_grace
            } else {
                true
            };
            if !keep {
                tracing::debug!(connection = %c.id, "connection timed out without a transport");
                state.inbox_tx = None;
                state.ws_inbox = None;
                drop(state);
                c.end();
                self.forget(c);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connection::capacity::Capacity;
    use crate::connection::{Connection, ConnectionHandler, RequestContext, TokenKind};
    use crate::observability::EndpointMetrics;

    /// A handler that never ends by itself.
    async fn forever(connection: Connection) {
        connection.aborted().await;
        std::future::pending::<()>().await
    }

    #[tokio::test]
    async fn the_sweeper_forgets_an_ended_connection_whatever_its_state() {
        let capacity = Arc::new(Capacity::new(Some(1)));
        let manager = Arc::new(ConnectionManager::with_capacity(
            EndpointMetrics::new("/sweep"),
            capacity.clone(),
        ));
        let handler: Arc<dyn ConnectionHandler> = Arc::new(forever);
        let shared = manager.create(8, TokenKind::Own);
        // Started over a WebSocket whose task (holding the handler) is stuck.
        let attached = manager
            .attach(
                &shared,
                TransportKind::WebSockets,
                RequestContext::default(),
                None,
                &handler,
            )
            .expect("attach");
        assert!(capacity.is_full());
        shared.end();
        let long = Duration::from_secs(3600);
        manager.sweep(SweepTimeouts {
            unstarted: long,
            disconnect: long,
            reconnect_grace: long,
        });
        assert_eq!(manager.len(), 0);
        assert!(!capacity.is_full(), "its place is free");
        drop(attached);
    }
}
