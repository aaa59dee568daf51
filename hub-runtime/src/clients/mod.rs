//! Clients, groups and users: who a hub can send to, through typed proxies.
//!
//! `cx.clients.group("ops").alert(level, text).await` picks a target ([`HubClients`]), wraps it
//! in the hub's generated client proxy (from `#[hub_client]`), and calls a client method on
//! every connection of the target. The call returns once the message is in every local
//! target's outbox (and handed to the backplane); it never waits for a client to read.

pub(crate) mod lifetime;
mod upkeep;

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;

use crate::backplane::BackplaneError;
pub use crate::backplane::{GroupError, SendTarget};
use crate::presence::{Member, PresenceError};
use lifetime::LifetimeManager;
pub(crate) use upkeep::spawn_upkeep;

/// A sending failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// An argument could not be serialized for some targets (every other target got the
    /// message).
    Encode(String),
    /// The backplane could not take the message for other servers.
    Backplane(BackplaneError),
    /// A group name is longer than `HubOptions::max_group_name_length` (the limit, in bytes):
    /// the message went nowhere.
    GroupNameTooLong(usize),
    /// No connection has that id, so nothing was sent. Only a one-connection target
    /// (`client(id)`) on a server without a distributed backplane says so: with one (Redis),
    /// the connection may live on another server and the message is published regardless.
    UnknownConnection(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Encode(e) => write!(f, "could not encode the message: {e}"),
            SendError::Backplane(e) => write!(f, "{e}"),
            SendError::GroupNameTooLong(max) => write!(f, "a group name may be at most {max} bytes long"),
            SendError::UnknownConnection(id) => write!(f, "no connection has the id '{id}': nothing was sent"),
        }
    }
}

impl std::error::Error for SendError {}

/// A client result could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientResultError {
    /// No connection has that id.
    NoConnection(String),
    /// The connection closed before it answered.
    Disconnected(String),
    /// The client answered with an error (its text).
    Client(String),
    /// The client did not answer in time (`HubOptions::client_result_timeout`).
    Timeout,
    /// The client's answer is not of the expected type.
    Decode(String),
    /// An argument could not be encoded.
    Encode(String),
}

impl std::fmt::Display for ClientResultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientResultError::NoConnection(id) => write!(f, "Connection '{id}' does not exist."),
            ClientResultError::Disconnected(id) => write!(f, "Connection '{id}' disconnected."),
            ClientResultError::Client(error) => f.write_str(error),
            ClientResultError::Timeout => f.write_str("The client did not return a result in time."),
            ClientResultError::Decode(e) | ClientResultError::Encode(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ClientResultError {}

/// A client's own error reaches the hub method's caller like a `HubException` (as the
/// reference server does); the others are internal (`IOException`).
impl From<ClientResultError> for crate::HubError {
    fn from(error: ClientResultError) -> Self {
        match error {
            ClientResultError::Client(text) => crate::HubError::for_client(text),
            other => crate::HubError::new(other.to_string()).with_kind("IOException"),
        }
    }
}

/// A target of exactly one connection (`caller()`, `client(id)`): client results are allowed.
#[derive(Debug, Clone, Copy)]
pub enum One {}

/// A target of any number of connections (`all()`, `group(..)`, `user(..)` …).
#[derive(Debug, Clone, Copy)]
pub enum Many {}

/// Marks [`One`] and [`Many`].
pub trait TargetKind: Send + Sync + 'static {}
impl TargetKind for One {}
impl TargetKind for Many {}

/// A resolved send target; typed proxies wrap it. Its [`ClientTarget::send`] is the untyped
/// way to call a client method.
pub struct ClientTarget<K> {
    manager: Arc<LifetimeManager>,
    target: SendTarget,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for ClientTarget<K> {
    fn clone(&self) -> Self {
        ClientTarget {
            manager: self.manager.clone(),
            target: self.target.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: TargetKind> ClientTarget<K> {
    /// Which connections this targets.
    pub fn target(&self) -> &SendTarget {
        &self.target
    }

    /// Calls client method `method` with `args` (a tuple: `(a, b)`, `(a,)`, or
    /// [`NoArgs`](crate::protocol::NoArgs)) on every connection of the target.
    pub async fn send<A: Serialize + Sync>(&self, method: &str, args: &A) -> Result<(), SendError> {
        self.manager.send(&self.target, method, args).await
    }
}

impl ClientTarget<One> {
    /// Calls client method `method` on this one connection and awaits its result (a client
    /// result). Fails on a client error, a disconnect, or after
    /// `HubOptions::client_result_timeout`.
    pub async fn invoke<A: Serialize + Sync, R: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, ClientResultError> {
        let SendTarget::Connection(id) = &self.target else {
            return Err(ClientResultError::NoConnection(String::new()));
        };
        self.manager.invoke(id, method, args).await
    }
}

/// What `#[hub_client]` implements: the family of typed proxies of one client interface.
pub trait ClientInterface: Send + Sync + 'static {
    /// The proxy for a target of kind `K`.
    type Proxy<K: TargetKind>: From<ClientTarget<K>>;
}

/// The client interface of a hub declared without `client = …`: only untyped
/// [`ClientTarget::send`] calls.
pub struct DynamicClient<K = Many>(ClientTarget<K>);

impl<K> From<ClientTarget<K>> for DynamicClient<K> {
    fn from(target: ClientTarget<K>) -> Self {
        DynamicClient(target)
    }
}

impl<K> Deref for DynamicClient<K> {
    type Target = ClientTarget<K>;
    fn deref(&self) -> &ClientTarget<K> {
        &self.0
    }
}

impl<K: TargetKind> ClientInterface for DynamicClient<K> {
    type Proxy<K2: TargetKind> = DynamicClient<K2>;
}

/// The proxy type of client interface `C` for targets of kind `K`.
pub type Proxy<C, K> = <C as ClientInterface>::Proxy<K>;

/// Picks who to send to. Available in hub methods as `cx.clients` (with the caller-relative
/// targets of [`CallerClients`]) and outside them through a [`HubHandle`](crate::HubHandle).
pub struct HubClients<C: ClientInterface> {
    manager: Arc<LifetimeManager>,
    client: PhantomData<fn() -> C>,
}

impl<C: ClientInterface> Clone for HubClients<C> {
    fn clone(&self) -> Self {
        HubClients {
            manager: self.manager.clone(),
            client: PhantomData,
        }
    }
}

fn owned(ids: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    ids.into_iter().map(Into::into).collect()
}

impl<C: ClientInterface> HubClients<C> {
    pub(crate) fn new(manager: Arc<LifetimeManager>) -> Self {
        HubClients {
            manager,
            client: PhantomData,
        }
    }

    fn many(&self, target: SendTarget) -> Proxy<C, Many> {
        ClientTarget {
            manager: self.manager.clone(),
            target,
            kind: PhantomData,
        }
        .into()
    }

    /// Every connection of the hub.
    pub fn all(&self) -> Proxy<C, Many> {
        self.many(SendTarget::All)
    }

    /// Every connection but these.
    pub fn all_except(&self, excluded: impl IntoIterator<Item = impl Into<String>>) -> Proxy<C, Many> {
        self.many(SendTarget::AllExcept(owned(excluded)))
    }

    /// One connection, by its public id.
    pub fn client(&self, connection_id: impl Into<String>) -> Proxy<C, One> {
        ClientTarget {
            manager: self.manager.clone(),
            target: SendTarget::Connection(connection_id.into()),
            kind: PhantomData,
        }
        .into()
    }

    /// These connections.
    pub fn clients(&self, connection_ids: impl IntoIterator<Item = impl Into<String>>) -> Proxy<C, Many> {
        self.many(SendTarget::Connections(owned(connection_ids)))
    }

    /// The members of a group.
    pub fn group(&self, group: impl Into<String>) -> Proxy<C, Many> {
        self.many(SendTarget::Group(group.into()))
    }

    /// The members of any of these groups, each once.
    pub fn groups(&self, groups: impl IntoIterator<Item = impl Into<String>>) -> Proxy<C, Many> {
        self.many(SendTarget::Groups(owned(groups)))
    }

    /// The members of a group but these connections.
    pub fn group_except(
        &self,
        group: impl Into<String>,
        excluded: impl IntoIterator<Item = impl Into<String>>,
    ) -> Proxy<C, Many> {
        self.many(SendTarget::GroupExcept(group.into(), owned(excluded)))
    }

    /// Every connection of a user.
    pub fn user(&self, user_id: impl Into<String>) -> Proxy<C, Many> {
        self.many(SendTarget::User(user_id.into()))
    }

    /// Every connection of these users.
    pub fn users(&self, user_ids: impl IntoIterator<Item = impl Into<String>>) -> Proxy<C, Many> {
        self.many(SendTarget::Users(owned(user_ids)))
    }
}

/// [`HubClients`] plus the targets relative to the connection that invoked the hub method.
pub struct CallerClients<C: ClientInterface> {
    clients: HubClients<C>,
    caller: Arc<str>,
}

impl<C: ClientInterface> CallerClients<C> {
    pub(crate) fn new(clients: HubClients<C>, caller: Arc<str>) -> Self {
        CallerClients { clients, caller }
    }

    /// The connection that invoked the method.
    pub fn caller(&self) -> Proxy<C, One> {
        self.clients.client(&*self.caller)
    }

    /// Every connection but the caller.
    pub fn others(&self) -> Proxy<C, Many> {
        self.clients.all_except([&*self.caller])
    }

    /// The members of a group but the caller.
    pub fn others_in_group(&self, group: impl Into<String>) -> Proxy<C, Many> {
        self.clients.group_except(group, [&*self.caller])
    }
}

impl<C: ClientInterface> Deref for CallerClients<C> {
    type Target = HubClients<C>;
    fn deref(&self) -> &HubClients<C> {
        &self.clients
    }
}

/// Adds connections to groups and removes them, from inside or outside hub methods.
///
/// Group names are case-sensitive; membership lasts until removal or disconnect.
#[derive(Clone)]
pub struct Groups {
    manager: Arc<LifetimeManager>,
}

impl Groups {
    pub(crate) fn new(manager: Arc<LifetimeManager>) -> Self {
        Groups { manager }
    }

    /// Adds a connection to a group. On return, the group's messages reach the connection
    /// (with the Redis backplane: unless Redis did not answer in time; the subscription is then
    /// retried in the background). Fails with [`GroupError::LimitReached`] when the connection,
    /// here or on another server, is in the most groups allowed.
    pub async fn add(&self, connection_id: &str, group: &str) -> Result<(), GroupError> {
        self.manager.add_to_group(connection_id, group).await
    }

    /// Removes a connection from a group.
    pub async fn remove(&self, connection_id: &str, group: &str) -> Result<(), GroupError> {
        self.manager.remove_from_group(connection_id, group).await
    }

    /// The users with at least one connection in `group`, on every server that shares the
    /// presence store, with how many connections each has there; sorted by user. A user is a
    /// connection's user id, or its connection id when it has none. Needs a hub marked
    /// `#[hub(presence)]` (else [`PresenceError::NotEnabled`]).
    ///
    /// ```
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// #[hub(presence)]
    /// impl Chat {
    ///     async fn who(&self, cx: &HubContext<Self>, room: String) -> Result<Vec<String>, HubError> {
    ///         let members = cx.groups.members(&room).await?;
    ///         Ok(members.into_iter().map(|m| m.user).collect())
    ///     }
    /// }
    /// ```
    pub async fn members(&self, group: &str) -> Result<Vec<Member>, PresenceError> {
        self.manager.members(group).await
    }

    /// Sets what connection `connection_id` (of this server) shows beside its user in
    /// [`Member::info`] for the groups it joins from now on: the latest join with info wins
    /// for the user, until the user's last connection leaves the group.
    ///
    /// ```
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// #[hub(presence)]
    /// impl Chat {
    ///     async fn enter(&self, cx: &HubContext<Self>, room: String, name: String) -> Result<(), HubError> {
    ///         cx.groups.set_presence_info(cx.connection_id(), &serde_json::json!({ "name": name }))?;
    ///         cx.groups.add(cx.connection_id(), &room).await?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn set_presence_info(&self, connection_id: &str, info: &impl Serialize) -> Result<(), PresenceError> {
        let info = serde_json::to_string(info).map_err(|e| PresenceError::Encode(e.to_string()))?;
        self.manager.set_presence_info(connection_id, info)
    }
}

/// Users of a hub, across servers: whether one is online.
#[derive(Clone)]
pub struct Users {
    manager: Arc<LifetimeManager>,
}

impl Users {
    pub(crate) fn new(manager: Arc<LifetimeManager>) -> Self {
        Users { manager }
    }

    /// Whether `user` (a user id, or the connection id of a connection without one) has a
    /// connection to this hub on any server that shares the presence store. Needs a hub marked
    /// `#[hub(presence)]` (else [`PresenceError::NotEnabled`]).
    ///
    /// ```
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// #[hub(presence)]
    /// impl Chat {
    ///     async fn is_online(&self, cx: &HubContext<Self>, user: String) -> Result<bool, HubError> {
    ///         Ok(cx.users.online(&user).await?)
    ///     }
    /// }
    /// ```
    pub async fn online(&self, user: &str) -> Result<bool, PresenceError> {
        self.manager.online(user).await
    }
}
