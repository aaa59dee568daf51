//! Server assembly: hubs and raw connection handlers mapped to paths, options, and serving.
//! The server serves itself ([`HubServer::serve`]), or mounts in another: as a warp
//! [`Filter`](warp::Filter) ([`HubServer::filter`]) or a tower [`Service`](tower_service::Service)
//! and [`Layer`](tower_layer::Layer) ([`HubServer::into_service`], [`HubServer::layer`]) for
//! axum, hyper and tower middleware.

mod access;
mod cors;
mod endpoint;
mod head_deadline;
mod request;
mod routes;
mod serve;
mod service;
mod tls;
mod warp_filter;
mod write_timeout;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use self::cors::Cors;
pub(crate) use self::endpoint::Endpoint;
pub use self::endpoint::EndpointOptions;
pub use self::request::PeerAddr;
pub use self::serve::{bind, shutdown_signal};
pub use self::service::{EitherBody, HubBody, HubLayer, HubMiddleware, HubService};
#[cfg(feature = "tls")]
pub use self::tls::TlsConfig;
use crate::auth::{self, Requirement};
use crate::backplane::{self, Backplane};
use crate::clients::lifetime::{HubPresence, LifetimeManager};
use crate::connection::capacity::Capacity;
use crate::connection::{ConnectionHandler, ConnectionManager};
use crate::history::{self, History, HistoryStore};
use crate::hub::dispatcher::{HubEndpoint, HubHandler};
use crate::hub::filter::{Filters, HubFilter};
use crate::hub::{Hub, HubHandle};
use crate::observability::EndpointMetrics;
pub use crate::options::HubOptions;
use crate::presence::{InMemoryPresence, PresenceStore};
use crate::protocol::HubProtocol;

pub(crate) struct ServerInner {
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    pub(crate) options: Arc<HubOptions>,
    pub(crate) cors: Option<Cors>,
    pub(crate) shutdown: CancellationToken,
    managers: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    /// Each hub type's durable groups, for its handle.
    histories: HashMap<TypeId, History>,
    /// The sweeper runs (started by the first request or the built-in accept loop).
    housekeeping: AtomicBool,
    /// Started connections across the endpoints, against `max_connections`.
    pub(crate) capacity: Arc<Capacity>,
}

impl ServerInner {
    /// Starts the sweeper once, however the server is served (the built-in accept loop, the
    /// warp filter in another server, a tower service): connections without a transport are
    /// forgotten in time whoever accepts the sockets. It stops when the server is dropped.
    pub(crate) fn start_housekeeping(self: &Arc<Self>) {
        if !self.housekeeping.load(Ordering::Relaxed) && !self.housekeeping.swap(true, Ordering::AcqRel) {
            tokio::spawn(serve::sweep(Arc::downgrade(self)));
        }
    }
}

/// Builds a [`HubServer`].
pub struct HubServerBuilder {
    remote: Vec<Register>,
    filters: Vec<Arc<dyn HubFilter>>,
    options: HubOptions,
    protocols: Vec<Arc<dyn HubProtocol>>,
    backplane: Arc<dyn Backplane>,
    /// `None`: the in-memory default.
    presence: Option<Arc<dyn PresenceStore>>,
    history: Option<Arc<dyn HistoryStore>>,
    cors: Option<Cors>,
    mappings: Vec<Mapping>,
}

/// What `build` needs to turn a mapping into an endpoint.
struct Assembly {
    filters: Vec<Arc<dyn HubFilter>>,
    options: Arc<HubOptions>,
    protocols: Arc<[Arc<dyn HubProtocol>]>,
    backplane: Arc<dyn Backplane>,
    presence: Arc<dyn PresenceStore>,
    /// The managers of the hubs that track presence.
    presence_hubs: Vec<std::sync::Weak<LifetimeManager>>,
    history: Arc<dyn HistoryStore>,
    histories: HashMap<TypeId, History>,
    shutdown: CancellationToken,
    managers: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Assembly {
    /// The lifetime manager of hub type `H` (one per type, shared by all its paths).
    fn manager<H: Hub>(&mut self) -> Arc<LifetimeManager> {
        let (protocols, backplane, options) = (self.protocols.clone(), self.backplane.clone(), self.options.clone());
        let presence = H::__PRESENCE.map(|events| HubPresence {
            store: self.presence.clone(),
            events,
        });
        let presence_hubs = &mut self.presence_hubs;
        let entry = self.managers.entry(TypeId::of::<H>()).or_insert_with(|| {
            let tracked = presence.is_some();
            let manager = LifetimeManager::new(std::any::type_name::<H>(), protocols, backplane, options, presence);
            if tracked {
                presence_hubs.push(Arc::downgrade(&manager));
            }
            Arc::new(manager)
        });
        entry
            .downcast_ref::<Arc<LifetimeManager>>()
            .cloned()
            .unwrap_or_else(|| unreachable!("keyed by type"))
    }
}

/// Registers a hub type that is not served (see `publish_to`).
type Register = Box<dyn FnOnce(&mut Assembly)>;

type MakeHandler = Box<dyn FnOnce(&mut Assembly) -> Arc<dyn ConnectionHandler>>;

/// A path and what serves it, made into an endpoint by `build` (once the options are final).
struct Mapping {
    path: String,
    endpoint: EndpointOptions,
    authorize: &'static [Requirement],
    make: MakeHandler,
}

/// A hub server: hubs and raw connection handlers mapped to paths.
///
/// ```no_run
/// use hub_runtime::prelude::*;
///
/// struct Echo;
///
/// #[hub]
/// impl Echo {
///     fn echo(&self, message: String) -> String {
///         message
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let server = HubServer::builder().hub("/echo", Echo).build();
/// server.serve("127.0.0.1:5000").await
/// # }
/// ```
#[derive(Clone)]
pub struct HubServer {
    inner: Arc<ServerInner>,
}

fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let with_slash = if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    };
    with_slash.to_lowercase()
}

impl HubServerBuilder {
    /// Replaces the options.
    pub fn options(mut self, options: HubOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds a filter for every hub of the server (run before the hubs' own filters). See
    /// [`HubFilter`] for the order.
    pub fn filter(mut self, filter: impl HubFilter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Answers cross-origin requests from these origins.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Uses another backplane (the default is in-memory: one process).
    pub fn backplane(mut self, backplane: impl Backplane) -> Self {
        self.backplane = Arc::new(backplane);
        self
    }

    /// Keeps presence (`cx.groups.members`, `cx.users.online`, the `joined` and `left` events of
    /// hubs marked `#[hub(presence ...)]`) in `store` instead of in this process. Servers that
    /// share a backplane share presence through a store they all reach, such as
    /// [`RedisPresence`](crate::presence::RedisPresence) (feature `redis`).
    ///
    /// ```
    /// use hub_runtime::presence::InMemoryPresence;
    /// use hub_runtime::HubServer;
    /// let server = HubServer::builder().presence(InMemoryPresence::new()).build();
    /// ```
    pub fn presence(mut self, store: impl PresenceStore) -> Self {
        self.presence = Some(Arc::new(store));
        self
    }

    /// Keeps the histories of durable groups in `store` (the default is in memory: one
    /// process). Which groups are durable is set per endpoint
    /// ([`EndpointOptions::history`]); see [`crate::history`].
    pub fn history(mut self, store: impl HistoryStore) -> Self {
        self.history = Some(Arc::new(store));
        self
    }

    /// Maps a hub at `path` (matched case-insensitively), offering every transport.
    pub fn hub<H: Hub>(self, path: &str, hub: H) -> Self {
        self.hub_with(path, hub, EndpointOptions::new())
    }

    /// Maps a hub at `path` with endpoint options. Mapping the same hub type at several paths
    /// makes one hub: its clients, groups and users are shared.
    ///
    /// A hub marked `#[hub(authorize ...)]` on its impl block admits only requests whose
    /// identity (from the endpoint's authenticator) meets its requirements: negotiate and
    /// every transport request without an identity get 401, those whose identity falls short
    /// get 403. Give such a hub an authenticator (for example a `JwtAuthenticator`, feature
    /// `jwt`).
    pub fn hub_with<H: Hub>(mut self, path: &str, hub: H, endpoint: EndpointOptions) -> Self {
        let own_filters = endpoint.filters.clone();
        let rules = endpoint.history.clone();
        let make: MakeHandler = Box::new(move |assembly: &mut Assembly| {
            let manager = assembly.manager::<H>();
            let history = History::new(assembly.history.clone(), std::any::type_name::<H>(), rules);
            assembly
                .histories
                .entry(TypeId::of::<H>())
                .or_insert_with(|| history.clone());
            let filters = Filters(assembly.filters.iter().chain(own_filters.iter()).cloned().collect());
            let endpoint = HubEndpoint::new(
                Arc::new(hub),
                manager,
                assembly.options.clone(),
                assembly.shutdown.clone(),
                filters,
                history,
            );
            Arc::new(HubHandler(Arc::new(endpoint)))
        });
        self.mappings.push(Mapping {
            path: normalize_path(path),
            endpoint,
            authorize: H::__AUTHORIZE,
            make,
        });
        self
    }

    /// Registers hub type `H` without serving it, so that [`HubServer::handle`] works for it.
    /// A process that is not a hub server (a worker, a cron job) builds a server this way with
    /// the same backplane, and sends to `H`'s clients on every server through the same typed
    /// proxies. `H`'s type name is its name on the backplane, so define the hub type in a
    /// crate both processes share.
    ///
    /// ```no_run
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// # #[hub] impl Chat { fn ping(&self) {} }
    /// # #[cfg(feature = "redis")] // RedisBackplane needs the `redis` feature
    /// # async fn worker() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = hub_runtime::backplane::RedisBackplane::connect("redis://127.0.0.1:6379").await?;
    /// let server = HubServer::builder().backplane(redis).publish_to::<Chat>().build();
    /// let chat = server.handle::<Chat>().unwrap();
    /// chat.clients.all().send("Tick", &(1,)).await?;
    /// # Ok(()) }
    /// ```
    pub fn publish_to<H: Hub>(mut self) -> Self {
        self.remote.push(Box::new(|assembly: &mut Assembly| {
            assembly.manager::<H>();
        }));
        self
    }

    /// Maps a raw connection handler at `path`: no hub protocol, just frames in and out.
    ///
    /// ```no_run
    /// use hub_runtime::{HubServer, Connection};
    /// let server = HubServer::builder()
    ///     .connection("/echo", |mut connection: Connection| async move {
    ///         let sender = connection.sender();
    ///         while let Some(frame) = connection.recv().await {
    ///             if sender.send(frame).await.is_err() { break; }
    ///         }
    ///     })
    ///     .build();
    /// ```
    pub fn connection(self, path: &str, handler: impl ConnectionHandler) -> Self {
        self.connection_with(path, handler, EndpointOptions::new())
    }

    /// Maps a raw connection handler with endpoint options.
    pub fn connection_with(mut self, path: &str, handler: impl ConnectionHandler, endpoint: EndpointOptions) -> Self {
        let handler: Arc<dyn ConnectionHandler> = Arc::new(handler);
        self.mappings.push(Mapping {
            path: normalize_path(path),
            endpoint,
            authorize: &[],
            make: Box::new(move |_| handler),
        });
        self
    }

    /// Builds the server.
    ///
    /// # Panics
    /// When two endpoints are mapped at the same path (a programming error).
    pub fn build(self) -> HubServer {
        let default_presence = self.presence.is_none();
        if self.history.is_none()
            && self.backplane.is_distributed()
            && self.mappings.iter().any(|m| !m.endpoint.history.is_empty())
        {
            tracing::warn!(
                "durable groups keep their history in memory while the backplane is distributed: \
                 each server has its own; use `.history(..)` with a shared store"
            );
        }
        let mut assembly = Assembly {
            filters: self.filters,
            options: Arc::new(self.options),
            protocols: self.protocols.into(),
            backplane: self.backplane,
            presence: self.presence.unwrap_or_else(|| Arc::new(InMemoryPresence::new())),
            presence_hubs: Vec::new(),
            history: self.history.unwrap_or_else(history::in_memory),
            histories: HashMap::new(),
            shutdown: CancellationToken::new(),
            managers: HashMap::new(),
        };
        for register in self.remote {
            register(&mut assembly);
        }
        let capacity = Arc::new(Capacity::new(assembly.options.max_connections));
        let mut endpoints: Vec<Arc<Endpoint>> = Vec::new();
        for mapping in self.mappings {
            if endpoints.iter().any(|e| e.path == mapping.path) {
                panic!("invalid hub server: the path '{}' is mapped twice", mapping.path);
            }
            if !mapping.authorize.is_empty() && mapping.endpoint.authenticator.is_none() {
                tracing::warn!(
                    path = %mapping.path,
                    "the hub requires authorization but its endpoint has no authenticator: every request will be refused"
                );
            }
            let handler = (mapping.make)(&mut assembly);
            let metrics = EndpointMetrics::new(&mapping.path);
            endpoints.push(Arc::new(Endpoint {
                path: mapping.path,
                transports: mapping.endpoint.transports,
                handler,
                authenticator: mapping.endpoint.authenticator.unwrap_or_else(auth::anonymous),
                authorize: mapping.authorize,
                connections: Arc::new(ConnectionManager::with_capacity(metrics, capacity.clone())),
            }));
        }
        if !assembly.presence_hubs.is_empty() {
            if default_presence && assembly.backplane.is_distributed() {
                tracing::warn!("hubs track presence in this process while the backplane is distributed: each server sees only its own members (give the builder a shared presence store)");
            }
            crate::clients::spawn_upkeep(
                assembly.presence.clone(),
                std::mem::take(&mut assembly.presence_hubs),
                assembly.shutdown.clone(),
            );
        }
        HubServer {
            inner: Arc::new(ServerInner {
                endpoints,
                options: assembly.options,
                cors: self.cors,
                shutdown: assembly.shutdown,
                managers: assembly.managers,
                histories: assembly.histories,
                housekeeping: AtomicBool::new(false),
                capacity,
            }),
        }
    }
}

impl HubServer {
    /// Starts building a server.
    pub fn builder() -> HubServerBuilder {
        HubServerBuilder {
            options: HubOptions::default(),
            protocols: crate::protocol::default_protocols(),
            backplane: backplane::in_memory(),
            presence: None,
            history: None,
            cors: None,
            mappings: Vec::new(),
            filters: Vec::new(),
            remote: Vec::new(),
        }
    }

    /// A handle for sending to hub `H`'s clients from outside hub methods. Fails with
    /// [`NotMapped`](crate::hub::NotMapped) (naming the hub) if the server neither maps `H`
    /// (`.hub(path, h)`) nor publishes to it (`.publish_to::<H>()`).
    pub fn handle<H: Hub>(&self) -> Result<HubHandle<H>, crate::hub::NotMapped> {
        let history = self.inner.histories.get(&TypeId::of::<H>()).cloned();
        let history =
            history.unwrap_or_else(|| History::new(history::in_memory(), std::any::type_name::<H>(), Vec::new()));
        self.inner
            .managers
            .get(&TypeId::of::<H>())
            .and_then(|manager| manager.downcast_ref::<Arc<LifetimeManager>>())
            .map(|m| HubHandle::new(m.clone(), history))
            .ok_or_else(crate::hub::NotMapped::of::<H>)
    }

    /// The server's routes, as a warp filter (rejects paths it does not serve, so it composes
    /// with `.or(...)`). Paths are relative to the filters before it:
    /// `warp::path("api").and(server.filter())` serves a hub mapped at `/chat` at `/api/chat`.
    /// Served by another server than the built-in one, see [`HubServer::graceful_shutdown`]
    /// for the goodbye at shutdown.
    pub fn filter(&self) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
        warp_filter::filter(self.inner.clone())
    }

    /// Starts shutting down: every connection gets a Close message (reconnect allowed).
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Whether the server is shutting down (a health check should then report it unready).
    pub fn is_stopping(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// How many connections are open across all endpoints.
    pub fn connection_count(&self) -> usize {
        self.inner.endpoints.iter().map(|e| e.connections.len()).sum()
    }

    /// How many groups have at least one member on this server, summed over hub types (a
    /// read-only figure for health checks and leak tests; members on other servers of a
    /// backplane are not counted).
    pub fn group_count(&self) -> usize {
        self.lifetime_managers().map(|m| m.group_count()).sum()
    }

    /// How many users have at least one connection on this server, summed over hub types
    /// (a user connected to two hubs counts twice). Read-only, like [`HubServer::group_count`].
    pub fn user_count(&self) -> usize {
        self.lifetime_managers().map(|m| m.user_count()).sum()
    }

    /// The lifetime manager of every registered hub type.
    fn lifetime_managers(&self) -> impl Iterator<Item = &Arc<LifetimeManager>> {
        self.inner
            .managers
            .values()
            .filter_map(|m| m.downcast_ref::<Arc<LifetimeManager>>())
    }
}
