//! Group membership: adding and removing connections, here or (through the backplane) on
//! another server, within the group limits.

use std::sync::Arc;

use super::{remove_member, LifetimeManager};
use crate::backplane::GroupChange;
use crate::clients::GroupError;

impl LifetimeManager {
    /// Whether a group name is within `HubOptions::max_group_name_length`; if not, the limit.
    pub(super) fn check_group_name(&self, group: &str) -> Result<(), usize> {
        let max = self.options.max_group_name_length;
        if group.len() > max {
            tracing::debug!(length = group.len(), max, "refusing a group name that is too long");
            return Err(max);
        }
        Ok(())
    }

    /// Adds a connection to a group; a connection on another server goes through the backplane.
    pub(crate) async fn add_to_group(&self, connection_id: &str, group: &str) -> Result<(), GroupError> {
        self.check_group_name(group).map_err(GroupError::NameTooLong)?;
        if self.add_local(connection_id, group).await? {
            return Ok(());
        }
        self.backplane
            .change_remote_group(self.hub_name, connection_id, group, GroupChange::Add)
            .await
            .map_err(GroupError::from)
    }

    /// Removes a connection from a group.
    pub(crate) async fn remove_from_group(&self, connection_id: &str, group: &str) -> Result<(), GroupError> {
        self.check_group_name(group).map_err(GroupError::NameTooLong)?;
        if self.remove_local(connection_id, group).await {
            return Ok(());
        }
        self.backplane
            .change_remote_group(self.hub_name, connection_id, group, GroupChange::Remove)
            .await
            .map_err(GroupError::from)
    }

    /// Adds a local connection to a group; `false` if the connection does not live here. With
    /// a distributed backplane, a group's first local member waits until the group's messages
    /// from other servers reach this server.
    pub(super) async fn add_local(&self, connection_id: &str, group: &str) -> Result<bool, GroupError> {
        let Some(connection) = self.connections.get(connection_id).map(|c| c.value().clone()) else {
            return Ok(false);
        };
        let group: Arc<str> = group.into();
        let joined = {
            let mut groups = connection.groups.lock().unwrap_or_else(|p| p.into_inner());
            if !groups.contains(&group) && groups.len() >= self.options.max_groups_per_connection {
                tracing::warn!(connection = %connection.id, "group limit reached; not adding to '{group}'");
                return Err(GroupError::LimitReached(self.options.max_groups_per_connection));
            }
            groups.insert(group.clone())
        };
        let first = {
            let mut members = self.groups.entry(group.clone()).or_default();
            let first = members.is_empty();
            members.insert(connection.id.clone(), connection.clone());
            first
        };
        // The connection may have left while we were adding it: leave no stale member.
        let emptied =
            !self.connections.contains_key(connection_id) && remove_member(&self.groups, &group, connection_id);
        // Every change between empty and not empty is reported (the backplane counts them):
        // a member that joined meanwhile keeps the group even if this one left at once.
        if self.backplane.is_distributed() {
            match (first, emptied) {
                (true, false) => self.backplane.group_added(self.hub_name, &group).await,
                (false, true) => self.backplane.group_removed(self.hub_name, &group).await,
                _ => {}
            }
        }
        if joined {
            self.presence_joined(&connection, &group).await;
        }
        Ok(true)
    }

    pub(super) async fn remove_local(&self, connection_id: &str, group: &str) -> bool {
        let Some(connection) = self.connections.get(connection_id).map(|c| c.value().clone()) else {
            return false;
        };
        let was_member = connection
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(group);
        if remove_member(&self.groups, group, connection_id) && self.backplane.is_distributed() {
            self.backplane.group_removed(self.hub_name, group).await;
        }
        if was_member {
            self.presence_left(&connection, group).await;
        }
        true
    }
}
