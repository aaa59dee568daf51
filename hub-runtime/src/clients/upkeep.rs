//! The presence upkeep of one server: every quarter of the store's TTL it renews this server's
//! lease on its entries and sweeps the entries of servers whose lease ran out, sending `left`
//! for the users that left a group that way. It stops with the server.

use std::sync::{Arc, Weak};

use tokio_util::sync::CancellationToken;

use super::lifetime::LifetimeManager;
use crate::presence::{upkeep_interval, Expired, PresenceStore};

/// Starts the upkeep of `store` for the hubs of `managers` (those that track presence), on the
/// current tokio runtime. Nothing to do for a store without a TTL (in memory).
pub(crate) fn spawn_upkeep(
    store: Arc<dyn PresenceStore>,
    managers: Vec<Weak<LifetimeManager>>,
    stop: CancellationToken,
) {
    let Some(ttl) = store.ttl() else { return };
    let interval = upkeep_interval(ttl);
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("build the server inside a tokio runtime: presence entries of dead servers are not swept");
        return;
    };
    runtime.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let live: Vec<Arc<LifetimeManager>> = managers.iter().filter_map(Weak::upgrade).collect();
            if live.is_empty() {
                return;
            }
            match store.refresh().await {
                Ok(restored) => {
                    for back in restored {
                        if let Some(manager) = manager_of(&live, &back.hub) {
                            manager.presence_restored(&back.group, &back.user).await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "presence: could not renew this server's lease"),
            }
            match store.sweep().await {
                Ok(expired) => {
                    for gone in expired {
                        announce(&live, gone).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "presence: could not sweep expired entries"),
            }
        }
    });
}

/// This server's manager of `hub`, if it maps it with presence.
fn manager_of<'a>(managers: &'a [Arc<LifetimeManager>], hub: &str) -> Option<&'a Arc<LifetimeManager>> {
    managers
        .iter()
        .find(|m| m.presence().is_some_and(|(name, _)| name == hub))
}

/// Sends `left` for a user whose server stopped refreshing, through this server's manager of
/// the hub (a hub this server does not map gets no event from it).
async fn announce(managers: &[Arc<LifetimeManager>], gone: Expired) {
    match manager_of(managers, &gone.hub) {
        Some(manager) => {
            tracing::debug!(hub = %gone.hub, group = %gone.group, user = %gone.user, "presence: a user's server expired");
            manager.presence_expired(&gone.group, &gone.user).await;
        }
        None => {
            tracing::debug!(hub = %gone.hub, group = %gone.group, "presence: an expired entry of a hub not mapped here")
        }
    }
}
