//! The lifetime manager's side of presence: it tells the hub's presence store about joins,
//! leaves and connections, and sends the hub's `joined` and `left` client methods when the
//! store says a user's first connection joined a group or its last one left.

use std::sync::Arc;

use super::{LifetimeManager, LocalConnection};
use crate::clients::SendTarget;
use crate::presence::{GroupEntry, Member, PresenceError, PresenceEvents, PresenceStore, UserEntry};

/// A hub's presence: where it is kept and which client methods announce it.
#[derive(Clone)]
pub(crate) struct HubPresence {
    pub(crate) store: Arc<dyn PresenceStore>,
    pub(crate) events: PresenceEvents,
}

/// A connection's presence user: its user id, or its connection id when it has none.
fn user_of(connection: &LocalConnection) -> &str {
    connection.user_id.as_deref().unwrap_or(&connection.id)
}

impl LifetimeManager {
    fn group_entry(&self, connection: &LocalConnection, group: &str) -> GroupEntry {
        GroupEntry {
            hub: self.hub_name.to_string(),
            group: group.to_string(),
            user: user_of(connection).to_string(),
            connection: connection.id.to_string(),
            info: connection
                .presence_info
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Sets what a local connection shows beside its user in the groups it joins from now on.
    pub(crate) fn set_presence_info(&self, connection_id: &str, info: String) -> Result<(), PresenceError> {
        let connection = self
            .connections
            .get(connection_id)
            .ok_or_else(|| PresenceError::NotLocal(connection_id.to_string()))?;
        *connection.presence_info.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        Ok(())
    }

    fn user_entry(&self, connection: &LocalConnection) -> UserEntry {
        UserEntry {
            hub: self.hub_name.to_string(),
            user: user_of(connection).to_string(),
            connection: connection.id.to_string(),
        }
    }

    /// A local connection joined `group`: records it, and announces the user's first
    /// connection in the group to the group (the newcomer included).
    pub(super) async fn presence_joined(&self, connection: &LocalConnection, group: &str) {
        let Some(presence) = &self.presence else { return };
        let entry = self.group_entry(connection, group);
        match presence.store.join(&entry).await {
            Ok(outcome) if outcome.first => {
                if let Some(joined) = presence.events.joined {
                    self.announce(joined, &entry.group, &entry.user).await;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(connection = %connection.id, group, error = %e, "presence: could not record a join")
            }
        }
        // The connection may have ended meanwhile, its leave already done: leave no entry behind.
        if !self.connections.contains_key(&connection.id) {
            self.presence_left(connection, group).await;
        }
    }

    /// A local connection left `group` (or ended): announces the user's last connection
    /// leaving it to the group's remaining members.
    pub(super) async fn presence_left(&self, connection: &LocalConnection, group: &str) {
        let Some(presence) = &self.presence else { return };
        let entry = self.group_entry(connection, group);
        match presence.store.leave(&entry).await {
            Ok(outcome) if outcome.last => {
                if let Some(left) = presence.events.left {
                    self.announce(left, &entry.group, &entry.user).await;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(connection = %connection.id, group, error = %e, "presence: could not record a leave")
            }
        }
    }

    pub(super) async fn presence_connected(&self, connection: &LocalConnection) {
        let Some(presence) = &self.presence else { return };
        if let Err(e) = presence.store.connect(&self.user_entry(connection)).await {
            tracing::warn!(connection = %connection.id, error = %e, "presence: could not record a connection");
        }
    }

    pub(super) async fn presence_disconnected(&self, connection: &LocalConnection) {
        let Some(presence) = &self.presence else { return };
        if let Err(e) = presence.store.disconnect(&self.user_entry(connection)).await {
            tracing::warn!(connection = %connection.id, error = %e, "presence: could not record a disconnection");
        }
    }

    /// `method(group, user)` to the members of `group`.
    async fn announce(&self, method: &str, group: &str, user: &str) {
        let target = SendTarget::Group(group.to_string());
        if let Err(e) = self.send(&target, method, &(group, user)).await {
            tracing::warn!(group, user, method, error = %e, "presence: could not send an event");
        }
    }

    /// A user left `group` because its server stopped refreshing (a sweep found it).
    pub(crate) async fn presence_expired(&self, group: &str, user: &str) {
        if let Some(left) = self.presence.as_ref().and_then(|p| p.events.left) {
            self.announce(left, group, user).await;
        }
    }

    /// A user's connection here is in `group` again after this server's entries were swept
    /// while it was alive: the user is back.
    pub(crate) async fn presence_restored(&self, group: &str, user: &str) {
        if let Some(joined) = self.presence.as_ref().and_then(|p| p.events.joined) {
            self.announce(joined, group, user).await;
        }
    }

    /// The users in `group`, on every server.
    pub(crate) async fn members(&self, group: &str) -> Result<Vec<Member>, PresenceError> {
        let presence = self.presence.as_ref().ok_or(PresenceError::NotEnabled)?;
        presence.store.members(self.hub_name, group).await
    }

    /// Whether `user` has a connection to the hub on any server.
    pub(crate) async fn online(&self, user: &str) -> Result<bool, PresenceError> {
        let presence = self.presence.as_ref().ok_or(PresenceError::NotEnabled)?;
        presence.store.online(self.hub_name, user).await
    }

    /// The hub's name and store, for the server's upkeep task.
    pub(crate) fn presence(&self) -> Option<(&'static str, &HubPresence)> {
        self.presence.as_ref().map(|p| (self.hub_name, p))
    }
}
