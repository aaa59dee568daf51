//! Hubs: the `#[hub]` trait, the context a hub method sees, and the per-connection dispatcher.

pub(crate) mod dispatcher;
mod error;
mod items;

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

pub use error::{ConnectionError, HubError};
pub use items::Items;

use crate::auth::Identity;
use crate::clients::lifetime::LifetimeManager;
use crate::clients::{CallerClients, ClientInterface, Groups, HubClients};
use crate::connection::{BoxFuture, ConnectionSender, RequestContext};
use crate::protocol::{HubProtocol, OutMessage, OutResult, RawValue};

/// A hub: what `#[hub]` implements for the type of an impl block. Its methods are the
/// router the macro generates; you never implement or call them yourself.
pub trait Hub: Send + Sync + Sized + 'static {
    /// The client interface (from `#[hub_client]`) this hub calls, or
    /// [`DynamicClient`](crate::clients::DynamicClient).
    type Client: ClientInterface;

    #[doc(hidden)]
    const __METHODS: &'static [MethodDef];

    #[doc(hidden)]
    fn __invoke(
        self: Arc<Self>,
        cx: Arc<HubContext<Self>>,
        method: usize,
        call: Call,
    ) -> BoxFuture<Outcome>;

    #[doc(hidden)]
    fn __on_connected(
        self: Arc<Self>,
        cx: Arc<HubContext<Self>>,
    ) -> BoxFuture<Result<(), HubError>> {
        let _ = cx;
        Box::pin(async { Ok(()) })
    }

    #[doc(hidden)]
    fn __on_disconnected(
        self: Arc<Self>,
        cx: Arc<HubContext<Self>>,
        error: Option<ConnectionError>,
    ) -> BoxFuture<()> {
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
}

/// One hub method, as the dispatcher sees it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct MethodDef {
    /// The wire name (matched case-insensitively).
    pub name: &'static str,
    /// How many arguments the client sends.
    pub arguments: usize,
    /// How it is called.
    pub kind: MethodKind,
}

/// Everything a hub method knows about the connection that invoked it.
///
/// ```ignore
/// async fn join(&self, cx: &HubContext<Self>, room: String) -> Result<(), HubError> {
///     cx.groups.add(cx.connection_id(), &room).await?;
///     cx.clients.group(&room).user_joined(cx.user_id().unwrap_or("anonymous").to_string()).await?;
///     Ok(())
/// }
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
/// ```ignore
/// let handle = server.handle::<Chat>().unwrap();
/// tokio::spawn(async move {
///     handle.clients.all().receive_message("bot".into(), "tick".into()).await.ok();
/// });
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

/// One invocation on its way through the generated router.
#[doc(hidden)]
pub struct Call {
    pub(crate) method: &'static str,
    pub(crate) invocation_id: Option<String>,
    pub(crate) arguments: Vec<RawValue>,
    pub(crate) protocol: Arc<dyn HubProtocol>,
    pub(crate) detailed_errors: bool,
    pub(crate) cancel: CancellationToken,
}

/// The completion an invocation produced (nothing for a non-blocking invocation).
#[doc(hidden)]
pub struct Outcome {
    pub(crate) completion: Option<Bytes>,
}

const BINDING_FAILED: &str = "due to an error on the server.";

impl Call {
    /// Decodes argument `index` into the parameter type, or produces the binding-failure
    /// completion.
    pub fn arg<T: crate::__private::HubArgument>(&self, index: usize) -> Result<T, Outcome> {
        let raw = self
            .arguments
            .get(index)
            .ok_or_else(|| self.binding_failure("Error binding arguments."))?;
        raw.decode::<T>().map_err(|e| {
            tracing::debug!(method = self.method, argument = index, error = %e, "argument binding failed");
            self.binding_failure(
                "Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
            )
        })
    }

    /// The invocation's cancellation token (cancelled when the connection ends).
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub(crate) fn binding_failure(&self, detail: &str) -> Outcome {
        let base = format!("Failed to invoke '{}' {BINDING_FAILED}", self.method);
        let text = if self.detailed_errors {
            format!("{base} InvalidDataException: {detail}")
        } else {
            base
        };
        self.error_text(&text)
    }

    fn complete(&self, result: OutResult<'_>) -> Outcome {
        let Some(id) = self.invocation_id.as_deref() else {
            return Outcome { completion: None };
        };
        match self.protocol.encode(&OutMessage::Completion {
            invocation_id: id,
            result,
        }) {
            Ok(bytes) => Outcome {
                completion: Some(bytes),
            },
            Err(e) => {
                tracing::warn!(method = self.method, error = %e, "could not encode a hub method's result");
                let error = HubError::new(e.0).with_kind("SerializationException");
                self.finish_error(error)
            }
        }
    }

    pub(crate) fn error_text(&self, text: &str) -> Outcome {
        self.complete(OutResult::Error(text))
    }

    /// The method returned nothing.
    pub fn finish_void(self) -> Outcome {
        self.complete(OutResult::Void)
    }

    /// The method returned a value.
    pub fn finish_value<T: crate::__private::HubReturn>(self, value: &T) -> Outcome {
        self.complete(OutResult::Value(value))
    }

    /// The method failed.
    pub fn finish_error(&self, error: HubError) -> Outcome {
        tracing::debug!(method = self.method, error = %error, "hub method failed");
        let base = format!(
            "An unexpected error occurred invoking '{}' on the server.",
            self.method
        );
        self.error_text(&error.client_text(&base, self.detailed_errors))
    }
}
