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

use std::marker::PhantomData;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use call::{Call, Outcome};
pub use error::{ConnectionError, HubError};
pub use items::Items;

use futures_util::future::BoxFuture;

use crate::auth::{Identity, Requirement};
use crate::clients::lifetime::LifetimeManager;
use crate::clients::{CallerClients, ClientInterface, Groups, HubClients};
use crate::connection::{ConnectionSender, RequestContext};

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
    /// Group membership.
    pub groups: Groups,
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
    ) -> Self {
        HubContext {
            clients: CallerClients::new(HubClients::new(manager.clone()), connection_id.clone()),
            groups: Groups::new(manager),
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
    /// Group membership.
    pub groups: Groups,
}

impl<H: Hub> Clone for HubHandle<H> {
    fn clone(&self) -> Self {
        HubHandle {
            clients: self.clients.clone(),
            groups: self.groups.clone(),
        }
    }
}

impl<H: Hub> HubHandle<H> {
    pub(crate) fn new(manager: Arc<LifetimeManager>) -> Self {
        HubHandle {
            clients: HubClients::new(manager.clone()),
            groups: Groups::new(manager),
        }
    }
}
