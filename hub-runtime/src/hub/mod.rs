//! Hubs: the `#[hub]` trait, the context a hub method sees, and the per-connection dispatcher.

mod acks;
mod binding;
mod call;
mod close;
mod deadline;
pub(crate) mod dispatcher;
mod endpoint;
mod error;
pub mod filter;
mod handshake;
mod hooks;
mod items;
mod keep_alive;
mod panic;
mod read_loop;
mod route;
mod scheduling;
mod sequence;
pub mod stream;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use call::{Call, Outcome};
pub use error::{ConnectionError, HubError};
pub use items::Items;

use futures_util::future::BoxFuture;

use crate::auth::{Identity, Requirement};
use crate::clients::lifetime::LifetimeManager;
use crate::clients::{CallerClients, ClientInterface, Groups, HubClients, Users};
use crate::connection::{ConnectionSender, RequestContext};
use crate::history::History;
use crate::presence::PresenceEvents;

/// A hub: what `#[hub]` implements for the type of an impl block. Its methods are the
/// router the macro generates; you never implement or call them yourself.
pub trait Hub: Send + Sync + Sized + 'static {
    /// The client interface (from `#[hub_client]`) this hub calls, or
    /// [`DynamicClient`](crate::clients::DynamicClient).
    type Client: ClientInterface;

    #[doc(hidden)]
    const __METHODS: &'static [MethodDef];

    /// What `#[hub(authorize ...)]` on the impl block requires of every connection (nothing:
    /// anyone may connect). The endpoint refuses requests that do not meet it.
    #[doc(hidden)]
    const __AUTHORIZE: &'static [Requirement] = &[];

    /// What `#[hub(presence ...)]` on the impl block declares: `None` (the default) tracks no
    /// presence; `Some` tracks it, with the client methods that announce joins and leaves.
    #[doc(hidden)]
    const __PRESENCE: Option<PresenceEvents> = None;

    #[doc(hidden)]
    fn __invoke(self: Arc<Self>, cx: Arc<HubContext<Self>>, method: usize, call: Call) -> BoxFuture<'static, Outcome>;

    #[doc(hidden)]
    fn __on_connected(self: Arc<Self>, cx: Arc<HubContext<Self>>) -> BoxFuture<'static, Result<(), HubError>> {
        let _ = cx;
        Box::pin(async { Ok(()) })
    }

    #[doc(hidden)]
    fn __on_disconnected(
        self: Arc<Self>,
        cx: Arc<HubContext<Self>>,
        error: Option<ConnectionError>,
    ) -> BoxFuture<'static, ()> {
        let _ = (cx, error);
        Box::pin(async {})
    }
}

/// How a hub method is called.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// Invocation → Completion.
    Plain,
    /// StreamInvocation → StreamItems → Completion.
    Stream,
}

/// One hub method, as the dispatcher sees it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct MethodDef {
    /// The wire name (matched case-insensitively).
    pub name: &'static str,
    /// How many arguments the client sends.
    pub arguments: usize,
    /// How many client-to-server streams it takes.
    pub streams: usize,
    /// How it is called.
    pub kind: MethodKind,
    /// What `#[hub(authorize ...)]` on the method requires of the caller (nothing: anyone).
    pub authorize: &'static [Requirement],
}

/// Everything a hub method knows about the connection that invoked it.
///
/// ```
/// # use hub_runtime::prelude::*;
/// # #[hub_client]
/// # trait RoomClient {
/// #     fn user_joined(&self, user: String);
/// # }
/// # struct Rooms;
/// # #[hub(client = RoomClient)]
/// # impl Rooms {
/// async fn join(&self, cx: &HubContext<Self>, room: String) -> Result<(), HubError> {
///     cx.groups.add(cx.connection_id(), &room).await?;
///     cx.clients.group(&room).user_joined(cx.user_id().unwrap_or("anonymous").to_string()).await?;
///     Ok(())
/// }
/// # }
/// ```
pub struct HubContext<H: Hub> {
    /// Who to send to: everyone, the caller, groups, users…
    pub clients: CallerClients<H::Client>,
    /// Group membership (and, for a hub with presence, who is in a group).
    pub groups: Groups,
    /// Users: whether one is online (a hub with presence).
    pub users: Users,
    /// The hub's durable groups: publishing with a position, the last messages, resuming
    /// (see [`crate::history`]).
    pub history: History,
    connection_id: Arc<str>,
    identity: Option<Arc<Identity>>,
    items: Items,
    sender: ConnectionSender,
    close_requested: CancellationToken,
    hub: PhantomData<fn() -> H>,
}

impl<H: Hub> HubContext<H> {
    pub(crate) fn new(
        manager: Arc<LifetimeManager>,
        connection_id: Arc<str>,
        identity: Option<Arc<Identity>>,
        sender: ConnectionSender,
        history: History,
    ) -> Self {
        HubContext {
            clients: CallerClients::new(HubClients::new(manager.clone()), connection_id.clone()),
            groups: Groups::new(manager.clone()),
            users: Users::new(manager),
            history,
            connection_id,
            identity,
            items: Items::default(),
            sender,
            close_requested: CancellationToken::new(),
            hub: PhantomData,
        }
    }

    /// The caller's public connection id.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// The caller's user id (from the endpoint's authenticator), if any.
    pub fn user_id(&self) -> Option<&str> {
        self.identity.as_ref().and_then(|i| i.user_id())
    }

    /// The caller's identity, if the authenticator gave one.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// The HTTP request that carried the connection's transport (for long polling, the
    /// latest poll).
    pub fn request(&self) -> Arc<RequestContext> {
        self.sender.request()
    }

    /// Per-connection state: typed values that live as long as the connection.
    pub fn items(&self) -> &Items {
        &self.items
    }

    /// Closes the caller's connection (after a Close message).
    pub fn abort(&self) {
        self.close_requested.cancel();
    }

    pub(crate) fn close_requested(&self) -> &CancellationToken {
        &self.close_requested
    }

    pub(crate) fn sender(&self) -> &ConnectionSender {
        &self.sender
    }
}

/// Sends to a hub's clients and manages its groups from outside hub methods (a background
/// task, a web handler): what ASP.NET Core calls `IHubContext`.
///
/// ```no_run
/// # use hub_runtime::prelude::*;
/// # #[hub_client]
/// # trait ChatClient {
/// #     fn receive_message(&self, user: String, text: String);
/// # }
/// # struct Chat;
/// # #[hub(client = ChatClient)]
/// # impl Chat {}
/// # #[tokio::main]
/// # async fn main() {
/// let server = HubServer::builder().hub("/chat", Chat).build();
/// let handle = server.handle::<Chat>().unwrap();
/// tokio::spawn(async move {
///     handle.clients.all().receive_message("bot".into(), "tick".into()).await.ok();
/// });
/// # }
/// ```
pub struct HubHandle<H: Hub> {
    /// Who to send to.
    pub clients: HubClients<H::Client>,
    /// Group membership (and, for a hub with presence, who is in a group).
    pub groups: Groups,
    /// Users: whether one is online (a hub with presence).
    pub users: Users,
    /// The hub's durable groups, with the rules of its first mapped endpoint (none for a hub
    /// registered with `publish_to`).
    pub history: History,
    manager: Arc<LifetimeManager>,
}

impl<H: Hub> Clone for HubHandle<H> {
    fn clone(&self) -> Self {
        HubHandle {
            clients: self.clients.clone(),
            groups: self.groups.clone(),
            users: self.users.clone(),
            history: self.history.clone(),
            manager: self.manager.clone(),
        }
    }
}

impl<H: Hub> fmt::Debug for HubHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle")
            .field("hub", &std::any::type_name::<H>())
            .finish_non_exhaustive()
    }
}

impl<H: Hub> HubHandle<H> {
    pub(crate) fn new(manager: Arc<LifetimeManager>, history: History) -> Self {
        HubHandle {
            clients: HubClients::new(manager.clone()),
            groups: Groups::new(manager.clone()),
            users: Users::new(manager.clone()),
            history,
            manager,
        }
    }

    /// Closes connection `id` of this hub if it lives on this server, as
    /// [`HubContext::abort`] does from inside: the client gets a Close message (without
    /// reconnect) and `on_disconnected` runs. A connection on another server of the fleet is
    /// not reached: the answer is then [`Abort::NotLocal`]. A connection without a transport
    /// at that moment (between long polls, or a stateful WebSocket waiting to re-attach) ends
    /// at once: a long polling client reads the Close message on its next poll, a detached
    /// WebSocket client gets none (its re-attach is refused).
    ///
    /// ```no_run
    /// # use hub_runtime::prelude::*;
    /// # use hub_runtime::hub::Abort;
    /// # struct Chat;
    /// # #[hub] impl Chat { fn ping(&self) {} }
    /// let server = HubServer::builder().hub("/chat", Chat).build();
    /// let chat = server.handle::<Chat>().expect("Chat is mapped");
    /// // Sign a user out everywhere on this server.
    /// for id in chat.local_user_connections("ann") {
    ///     assert_eq!(chat.abort(&id), Abort::Closing);
    /// }
    /// assert_eq!(chat.abort("no-such-connection"), Abort::NotLocal);
    /// ```
    pub fn abort(&self, connection_id: &str) -> Abort {
        if self.manager.abort_local(connection_id) {
            Abort::Closing
        } else {
            Abort::NotLocal
        }
    }

    /// The ids of the connections of `user` (the user id the authenticator gave) to this hub
    /// on this server, sorted. Connections on other servers of the fleet are not listed.
    ///
    /// ```no_run
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// # #[hub] impl Chat { fn ping(&self) {} }
    /// let server = HubServer::builder().hub("/chat", Chat).build();
    /// let chat = server.handle::<Chat>().expect("Chat is mapped");
    /// let tabs = chat.local_user_connections("ann").len();
    /// println!("ann has {tabs} tabs open here");
    /// ```
    pub fn local_user_connections(&self, user_id: &str) -> Vec<String> {
        self.manager.local_user_connections(user_id)
    }

    /// Whether connection `id` of this hub lives on this server (it is connected and its
    /// handshake is done).
    ///
    /// ```no_run
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// # #[hub] impl Chat { fn ping(&self) {} }
    /// let server = HubServer::builder().hub("/chat", Chat).build();
    /// let chat = server.handle::<Chat>().expect("Chat is mapped");
    /// assert!(!chat.is_local("no-such-connection"));
    /// ```
    pub fn is_local(&self, connection_id: &str) -> bool {
        self.manager.is_local(connection_id)
    }
}

/// What [`HubHandle::abort`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a connection that is not local was not closed"]
pub enum Abort {
    /// A connection of the hub on this server has that id: it is closing.
    Closing,
    /// No connection of the hub on this server has that id (it is gone, or lives on another
    /// server of the fleet): nothing happened.
    NotLocal,
}

/// [`HubServer::handle`](crate::HubServer::handle) was asked for a hub the server neither maps
/// nor publishes to.
///
/// ```
/// # use hub_runtime::prelude::*;
/// struct Chat;
/// #[hub]
/// impl Chat { fn ping(&self) {} }
/// struct Forgotten;
/// #[hub]
/// impl Forgotten { fn ping(&self) {} }
///
/// let server = HubServer::builder().hub("/chat", Chat).build();
/// let error = server.handle::<Forgotten>().unwrap_err();
/// assert!(error.to_string().contains("Forgotten"));
/// assert!(server.handle::<Chat>().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotMapped {
    hub: &'static str,
}

impl NotMapped {
    pub(crate) fn of<H: Hub>() -> Self {
        NotMapped {
            hub: std::any::type_name::<H>(),
        }
    }

    /// The hub type's full name.
    pub fn hub_type(&self) -> &'static str {
        self.hub
    }
}

impl fmt::Display for NotMapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.hub.rsplit("::").next().unwrap_or(self.hub);
        write!(
            f,
            "hub `{}` is not mapped on this server: map it with `HubServer::builder().hub(\"/path\", {short})`, \
             or, to send to its clients served elsewhere, register it with `.publish_to::<{short}>()`",
            self.hub
        )
    }
}

impl std::error::Error for NotMapped {}
