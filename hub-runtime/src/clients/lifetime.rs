//! The lifetime manager: which connections of a hub live here, their groups and users, and
//! fan-out. A message is encoded at most once per protocol in use, and the same bytes go to
//! every target's outbox.

mod groups;
mod presence;
mod results;
mod serialized;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use futures_util::future::BoxFuture;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub(crate) use self::presence::HubPresence;
use self::serialized::{push_members, Fanout, Serialized};
use super::{GroupError, SendError, SendTarget};
use crate::backplane::{Backplane, EncodedMessage, GroupChange, LocalHub};
use crate::connection::ConnectionSender;
use crate::options::HubOptions;
use crate::protocol::{CompletionResult, EncodeError, HubProtocol, OutMessage};

/// A connection of this hub on this server.
pub(crate) struct LocalConnection {
    pub(crate) id: Arc<str>,
    pub(crate) sender: ConnectionSender,
    pub(crate) protocol: usize,
    pub(crate) user_id: Option<Arc<str>>,
    /// Asks the connection's read loop to close it (`HubContext::abort` cancels the same token).
    close_requested: CancellationToken,
    groups: Mutex<HashSet<Arc<str>>>,
    /// What the connection shows beside its user in the groups it joins (JSON text).
    presence_info: Mutex<Option<String>>,
    /// Client results this server awaits from the connection, by invocation id.
    results: Mutex<HashMap<String, oneshot::Sender<CompletionResult>>>,
}

impl LocalConnection {
    pub(crate) fn new(id: Arc<str>, sender: ConnectionSender, protocol: usize, user_id: Option<Arc<str>>) -> Self {
        LocalConnection {
            id,
            sender,
            protocol,
            user_id,
            close_requested: CancellationToken::new(),
            groups: Mutex::new(HashSet::new()),
            presence_info: Mutex::new(None),
            results: Mutex::new(HashMap::new()),
        }
    }

    /// Closing the connection from outside cancels `token` (the hub context's own).
    pub(crate) fn with_close_requested(mut self, token: CancellationToken) -> Self {
        self.close_requested = token;
        self
    }

    /// A Completion from the client for a client result.
    pub(crate) fn complete(&self, invocation_id: &str, result: CompletionResult) {
        let waiting = self
            .results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(invocation_id);
        match waiting {
            Some(waiting) => {
                let _ = waiting.send(result);
            }
            None => {
                tracing::debug!(connection = %self.id, invocation = invocation_id, "ignoring an unexpected completion")
            }
        }
    }
}

type Members = HashMap<Arc<str>, Arc<LocalConnection>>;

/// Connections, groups and users of one hub type on this server.
pub(crate) struct LifetimeManager {
    /// Itself, for futures handed to the backplane.
    this: std::sync::Weak<LifetimeManager>,
    hub_name: &'static str,
    /// A random mark of this server's manager (in client-result ids sent to other servers).
    instance: String,
    options: Arc<HubOptions>,
    next_result_id: AtomicU64,
    protocols: Arc<[Arc<dyn HubProtocol>]>,
    connections: DashMap<Arc<str>, Arc<LocalConnection>>,
    groups: DashMap<Arc<str>, Members>,
    users: DashMap<Arc<str>, Members>,
    /// Connections of each user admitted and not added yet (see
    /// [`LifetimeManager::reserve_user_connection`]), by id.
    reserving: DashMap<Arc<str>, HashSet<Arc<str>>>,
    backplane: Arc<dyn Backplane>,
    /// Where the hub's presence is kept, if the hub tracks it (`#[hub(presence)]`).
    presence: Option<HubPresence>,
}

/// Room for one connection of a user, held from its admission until it is added (or gives
/// up): dropping it gives the room back.
pub(crate) struct UserReservation {
    manager: Arc<LifetimeManager>,
    user: Arc<str>,
    connection_id: Arc<str>,
}

impl Drop for UserReservation {
    fn drop(&mut self) {
        if let Some(mut ids) = self.manager.reserving.get_mut(&self.user) {
            ids.remove(&self.connection_id);
        }
        self.manager.reserving.remove_if(&self.user, |_, ids| ids.is_empty());
    }
}

impl LifetimeManager {
    pub(crate) fn new(
        hub_name: &'static str,
        protocols: Arc<[Arc<dyn HubProtocol>]>,
        backplane: Arc<dyn Backplane>,
        options: Arc<HubOptions>,
        presence: Option<HubPresence>,
    ) -> Arc<Self> {
        let manager = Arc::new_cyclic(|this| LifetimeManager {
            this: this.clone(),
            instance: crate::connection::random_id()[..8].to_string(),
            hub_name,
            options,
            next_result_id: AtomicU64::new(0),
            protocols,
            connections: DashMap::new(),
            groups: DashMap::new(),
            users: DashMap::new(),
            reserving: DashMap::new(),
            backplane: backplane.clone(),
            presence,
        });
        backplane.attach_hub(hub_name, manager.clone());
        manager
    }

    fn self_ref(&self) -> Option<Arc<LifetimeManager>> {
        self.this.upgrade()
    }

    pub(crate) fn protocols(&self) -> &Arc<[Arc<dyn HubProtocol>]> {
        &self.protocols
    }

    /// Admits connection `connection_id` of `user` if the user has fewer than `max`
    /// connections here, counting those admitted and not added yet: the check and the
    /// reservation happen under one lock, so connections that start together cannot all pass.
    /// `None`: refused. Keep the reservation until [`LifetimeManager::add_connection`] returned.
    pub(crate) fn reserve_user_connection(
        self: &Arc<Self>,
        user: &Arc<str>,
        connection_id: &Arc<str>,
        max: usize,
    ) -> Option<UserReservation> {
        let mut reserved = self.reserving.entry(user.clone()).or_default();
        let present = self.users.get(user);
        let added = present.as_ref().map_or(0, |m| m.len());
        let coming = reserved
            .iter()
            .filter(|id| present.as_ref().is_none_or(|m| !m.contains_key(*id)))
            .count();
        drop(present);
        let admitted = added + coming < max;
        if admitted {
            reserved.insert(connection_id.clone());
        }
        drop(reserved);
        if !admitted {
            self.reserving.remove_if(user, |_, ids| ids.is_empty());
            return None;
        }
        Some(UserReservation {
            manager: self.clone(),
            user: user.clone(),
            connection_id: connection_id.clone(),
        })
    }

    /// Asks the local connection `id` to close, as `HubContext::abort` does; whether this
    /// server has a connection of the hub with that id.
    pub(crate) fn abort_local(&self, id: &str) -> bool {
        match self.connections.get(id) {
            Some(connection) => {
                connection.close_requested.cancel();
                true
            }
            None => false,
        }
    }

    /// Whether connection `id` of this hub lives on this server.
    pub(crate) fn is_local(&self, id: &str) -> bool {
        self.connections.contains_key(id)
    }

    /// The ids of `user`'s connections of this hub on this server, sorted.
    pub(crate) fn local_user_connections(&self, user: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .users
            .get(user)
            .map(|members| members.keys().map(|id| id.to_string()).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// How many groups have at least one member on this server.
    pub(crate) fn group_count(&self) -> usize {
        self.groups.iter().filter(|members| !members.is_empty()).count()
    }

    /// How many users have at least one connection on this server.
    pub(crate) fn user_count(&self) -> usize {
        self.users.iter().filter(|members| !members.is_empty()).count()
    }

    /// Registers a connection. With a distributed backplane, other servers' messages for it
    /// (and its user) reach this server first (or the backplane gave up waiting for Redis and
    /// keeps trying); then `ready` runs (the handshake reply is sent) and the connection
    /// becomes a target.
    pub(crate) async fn add_connection(&self, connection: Arc<LocalConnection>, ready: impl FnOnce()) {
        if self.backplane.is_distributed() {
            // The backplane counts the user's connections (whether this is the user's first
            // here cannot be decided before the connection is a member).
            self.backplane
                .connection_added(self.hub_name, &connection.id, connection.user_id.as_deref())
                .await;
        }
        self.presence_connected(&connection).await;
        ready();
        if let Some(user) = &connection.user_id {
            self.users
                .entry(user.clone())
                .or_default()
                .insert(connection.id.clone(), connection.clone());
        }
        self.connections.insert(connection.id.clone(), connection);
    }

    pub(crate) async fn remove_connection(&self, id: &str) {
        let Some((_, connection)) = self.connections.remove(id) else {
            return;
        };
        if let Some(user) = &connection.user_id {
            remove_member(&self.users, user, id);
        }
        // Pending client results fail: their senders are dropped.
        connection.results.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let groups = std::mem::take(&mut *connection.groups.lock().unwrap_or_else(|p| p.into_inner()));
        let mut emptied = Vec::new();
        for group in &groups {
            if remove_member(&self.groups, group, id) {
                emptied.push(group.clone());
            }
        }
        for group in &groups {
            self.presence_left(&connection, group).await;
        }
        self.presence_disconnected(&connection).await;
        if self.backplane.is_distributed() {
            for group in emptied {
                self.backplane.group_removed(self.hub_name, &group).await;
            }
            self.backplane
                .connection_removed(self.hub_name, id, connection.user_id.as_deref())
                .await;
        }
    }

    /// Sends an invocation of client method `method` to every connection of `target`. A
    /// connection whose protocol cannot encode the arguments is skipped; every other one gets
    /// the message, and then the encoding error is returned.
    pub(crate) async fn send<A: Serialize + Sync>(
        &self,
        target: &SendTarget,
        method: &str,
        args: &A,
    ) -> Result<(), SendError> {
        let groups = match target {
            SendTarget::Group(group) | SendTarget::GroupExcept(group, _) => std::slice::from_ref(group),
            SendTarget::Groups(groups) => groups.as_slice(),
            _ => &[],
        };
        for group in groups {
            self.check_group_name(group).map_err(SendError::GroupNameTooLong)?;
        }
        // With the in-memory backplane every connection of the hub lives here, so an unknown
        // id is knowable (with a distributed one the connection may live on another server).
        if let SendTarget::Connection(id) = target {
            if !self.backplane.is_distributed() && !self.connections.contains_key(id.as_str()) {
                return Err(SendError::UnknownConnection(id.clone()));
            }
        }
        let (encoded, failed) = {
            let message = Serialized::new(
                &self.protocols,
                OutMessage::Invocation {
                    invocation_id: None,
                    target: method,
                    arguments: args,
                    stream_ids: &[],
                },
            );
            // A protocol that cannot encode the message costs only its own connections.
            let mut failed = self.deliver_local(target, &message).err();
            let encoded = self.backplane.is_distributed().then(|| {
                let (encoded, error) = message.encode_each();
                failed = failed.take().or(error);
                encoded
            });
            (encoded.filter(|e| !e.encodings.is_empty()), failed)
        };
        if let Some(encoded) = encoded {
            // A connection that lives here already has its copy.
            let remote = match target {
                SendTarget::Connection(id) if self.connections.contains_key(id.as_str()) => None,
                SendTarget::Connections(ids) => {
                    let remote: Vec<String> = ids
                        .iter()
                        .filter(|id| !self.connections.contains_key(id.as_str()))
                        .cloned()
                        .collect();
                    (!remote.is_empty()).then_some(SendTarget::Connections(remote))
                }
                other => Some(other.clone()),
            };
            if let Some(remote) = remote {
                self.backplane
                    .publish(self.hub_name, &remote, encoded)
                    .await
                    .map_err(SendError::Backplane)?;
            }
        }
        match failed {
            Some(error) => Err(SendError::Encode(error.0)),
            None => Ok(()),
        }
    }

    /// Puts the message in the outbox of every local connection of `target`, each once. A
    /// target whose protocol cannot encode the message is skipped (and logged): every other
    /// target still gets it, and the first such error is returned afterwards.
    pub(crate) fn deliver_local(&self, target: &SendTarget, message: &Serialized<'_>) -> Result<(), EncodeError> {
        let mut fanout = Fanout { message, failed: None };
        match target {
            SendTarget::All => {
                for c in self.connections.iter() {
                    fanout.push(c.value());
                }
            }
            SendTarget::AllExcept(excluded) => {
                for c in self.connections.iter() {
                    if !excluded.iter().any(|x| x.as_str() == &**c.key()) {
                        fanout.push(c.value());
                    }
                }
            }
            SendTarget::Connection(id) => {
                if let Some(c) = self.connections.get(id.as_str()) {
                    fanout.push(c.value());
                }
            }
            SendTarget::Connections(ids) => {
                let unique: HashSet<&str> = ids.iter().map(String::as_str).collect();
                for id in unique {
                    if let Some(c) = self.connections.get(id) {
                        fanout.push(c.value());
                    }
                }
            }
            SendTarget::Group(group) => push_members(&self.groups, std::slice::from_ref(group), &[], &mut fanout),
            SendTarget::Groups(groups) => push_members(&self.groups, groups, &[], &mut fanout),
            SendTarget::GroupExcept(group, excluded) => {
                push_members(&self.groups, std::slice::from_ref(group), excluded, &mut fanout)
            }
            SendTarget::User(user) => push_members(&self.users, std::slice::from_ref(user), &[], &mut fanout),
            SendTarget::Users(users) => push_members(&self.users, users, &[], &mut fanout),
        }
        match fanout.failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl LocalHub for LifetimeManager {
    fn invoke_local(
        &self,
        connection_id: &str,
        invocation_id: &str,
        message: &EncodedMessage,
    ) -> Option<(&'static str, BoxFuture<'static, CompletionResult>)> {
        let connection = self.connections.get(connection_id).map(|c| c.value().clone())?;
        let frame = Serialized::from_encoded(&self.protocols, message)
            .frame(connection.protocol)
            .ok()?;
        let protocol = self.protocols[connection.protocol].name();
        let mut pending = self.await_local(&connection, invocation_id.to_string(), frame).ok()?;
        let timeout = self.options.client_result_timeout;
        let answer = async move {
            match pending.wait(timeout).await {
                Ok(result) => result,
                Err(e) => CompletionResult::Error(e.to_string()),
            }
        };
        Some((protocol, Box::pin(answer)))
    }

    fn deliver(&self, target: &SendTarget, message: &EncodedMessage) {
        let message = Serialized::from_encoded(&self.protocols, message);
        if let Err(e) = self.deliver_local(target, &message) {
            tracing::warn!(error = %e, "could not deliver a message from another server");
        }
    }

    fn apply_group(
        &self,
        connection_id: &str,
        group: &str,
        change: GroupChange,
    ) -> BoxFuture<'static, Result<bool, GroupError>> {
        // The future owns what it needs.
        let manager = self.self_ref();
        let (connection_id, group) = (connection_id.to_string(), group.to_string());
        Box::pin(async move {
            let Some(manager) = manager else { return Ok(false) };
            match change {
                // A refusal (the group limit) goes back to the server that asked.
                GroupChange::Add => manager.add_local(&connection_id, &group).await,
                GroupChange::Remove => Ok(manager.remove_local(&connection_id, &group).await),
            }
        })
    }
}

/// Removes a member; returns whether the set became empty (and was removed).
fn remove_member(map: &DashMap<Arc<str>, Members>, key: &str, id: &str) -> bool {
    if let dashmap::Entry::Occupied(mut entry) = map.entry(Arc::from(key)) {
        entry.get_mut().remove(id);
        if entry.get().is_empty() {
            entry.remove();
            return true;
        }
    }
    false
}
