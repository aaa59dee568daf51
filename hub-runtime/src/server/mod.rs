//! Server assembly: hubs and raw connection handlers mapped to paths, options, and serving.
//! The server is a warp [`Filter`], so it composes with your own routes.

mod access;
mod cors;
mod head_deadline;
mod options;
mod routes;
mod tls;
mod write_timeout;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use warp::Filter;

pub use cors::Cors;
pub use options::HubOptions;
#[cfg(feature = "tls")]
pub use tls::TlsConfig;

use crate::auth::{self, Authenticator, Requirement};
use crate::backplane::{self, Backplane};
use crate::clients::lifetime::LifetimeManager;
use crate::connection::capacity::Capacity;
use crate::connection::{ConnectionHandler, ConnectionManager, SweepTimeouts, TransportKind};
use crate::hub::dispatcher::{HubEndpoint, HubHandler};
use crate::hub::filter::{Filters, HubFilter};
use crate::hub::{Hub, HubHandle};
use crate::observability::EndpointMetrics;
use crate::protocol::HubProtocol;

/// How one path is served: which transports it offers and who may connect.
///
/// ```
/// use hub_runtime::{EndpointOptions, TransportKind};
/// let options = EndpointOptions::new().disable(TransportKind::WebSockets);
/// assert!(!options.enabled(TransportKind::WebSockets));
/// ```
#[derive(Clone)]
pub struct EndpointOptions {
    transports: Vec<TransportKind>,
    authenticator: Option<Arc<dyn Authenticator>>,
    filters: Vec<Arc<dyn HubFilter>>,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions::new()
    }
}

impl EndpointOptions {
    /// Every transport this server implements, anonymous access.
    pub fn new() -> Self {
        EndpointOptions {
            transports: vec![
                TransportKind::WebSockets,
                TransportKind::ServerSentEvents,
                TransportKind::LongPolling,
            ],
            authenticator: None,
            filters: Vec::new(),
        }
    }

    /// Stops offering a transport on this endpoint.
    pub fn disable(mut self, transport: TransportKind) -> Self {
        self.transports.retain(|t| *t != transport);
        self
    }

    /// Whether a transport is offered.
    pub fn enabled(&self, transport: TransportKind) -> bool {
        self.transports.contains(&transport)
    }

    /// Decides who each request belongs to (negotiate and every transport request). The
    /// identity's user id is what `clients.user(..)` targets.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Adds a filter for the hub of this endpoint (after the server's global filters).
    pub fn filter(mut self, filter: impl HubFilter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }
}

/// One mapped path.
pub(crate) struct Endpoint {
    pub(crate) path: String,
    pub(crate) transports: Vec<TransportKind>,
    pub(crate) handler: Arc<dyn ConnectionHandler>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    /// What the hub's `#[hub(authorize ...)]` requires of every request (nothing: anyone).
    pub(crate) authorize: &'static [Requirement],
    pub(crate) connections: Arc<ConnectionManager>,
}

pub(crate) struct ServerInner {
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    pub(crate) options: Arc<HubOptions>,
    pub(crate) cors: Option<Cors>,
    pub(crate) shutdown: CancellationToken,
    managers: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
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
            tokio::spawn(sweep(Arc::downgrade(self)));
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
    cors: Option<Cors>,
    mappings: Vec<Mapping>,
}

/// What `build` needs to turn a mapping into an endpoint.
struct Assembly {
    filters: Vec<Arc<dyn HubFilter>>,
    options: Arc<HubOptions>,
    protocols: Arc<[Arc<dyn HubProtocol>]>,
    backplane: Arc<dyn Backplane>,
    shutdown: CancellationToken,
    managers: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Assembly {
    /// The lifetime manager of hub type `H` (one per type, shared by all its paths).
    fn manager<H: Hub>(&mut self) -> Arc<LifetimeManager> {
        let (protocols, backplane, options) = (self.protocols.clone(), self.backplane.clone(), self.options.clone());
        let entry = self.managers.entry(TypeId::of::<H>()).or_insert_with(|| {
            Arc::new(LifetimeManager::new(
                std::any::type_name::<H>(),
                protocols,
                backplane,
                options,
            ))
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
        let make: MakeHandler = Box::new(move |assembly: &mut Assembly| {
            let manager = assembly.manager::<H>();
            let filters = Filters(assembly.filters.iter().chain(own_filters.iter()).cloned().collect());
            let endpoint = HubEndpoint::new(
                Arc::new(hub),
                manager,
                assembly.options.clone(),
                assembly.shutdown.clone(),
                filters,
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
    #[cfg_attr(feature = "redis", doc = "```no_run")]
    #[cfg_attr(not(feature = "redis"), doc = "```ignore")]
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// # #[hub] impl Chat { fn ping(&self) {} }
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
        let mut assembly = Assembly {
            filters: self.filters,
            options: Arc::new(self.options),
            protocols: self.protocols.into(),
            backplane: self.backplane,
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
        HubServer {
            inner: Arc::new(ServerInner {
                endpoints,
                options: assembly.options,
                cors: self.cors,
                shutdown: assembly.shutdown,
                managers: assembly.managers,
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
            cors: None,
            mappings: Vec::new(),
            filters: Vec::new(),
            remote: Vec::new(),
        }
    }

    /// A handle for sending to hub `H`'s clients from outside hub methods; `None` if `H` is
    /// not mapped.
    pub fn handle<H: Hub>(&self) -> Option<HubHandle<H>> {
        let manager = self.inner.managers.get(&TypeId::of::<H>())?;
        manager
            .downcast_ref::<Arc<LifetimeManager>>()
            .map(|m| HubHandle::new(m.clone()))
    }

    /// The server's routes, as a warp filter (rejects paths it does not serve, so it composes
    /// with `.or(...)`).
    pub fn filter(&self) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
        routes::filter(self.inner.clone())
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

    /// Serves `routes` over TLS (HTTPS and WSS) on `listener` until `signal` resolves, then
    /// stops like [`HubServer::serve_with`].
    ///
    /// ```no_run
    /// # async fn run(server: hub_runtime::HubServer) -> std::io::Result<()> {
    /// use hub_runtime::server::{bind, shutdown_signal, TlsConfig};
    /// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
    /// let (listener, _) = bind("0.0.0.0:443").await?;
    /// let routes = server.filter();
    /// server.serve_tls_with(listener, tls, routes, shutdown_signal()).await;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub async fn serve_tls_with<F, R>(
        self,
        listener: TcpListener,
        tls: TlsConfig,
        routes: F,
        signal: impl Future<Output = ()> + Send + 'static,
    ) where
        F: Filter<Extract = (R,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
        R: warp::Reply,
    {
        self.accept_loop(listener, Some(tls.acceptor), routes, signal).await
    }

    /// Binds `addr` and serves until Ctrl-C or SIGTERM.
    pub async fn serve(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        let routes = self.filter();
        self.serve_with(listener, routes, shutdown_signal()).await;
        Ok(())
    }

    /// Serves `routes` (usually `server.filter()` combined with your own) on `listener` until
    /// `signal` resolves; then closes every connection and stops within the drain time.
    pub async fn serve_with<F, R>(
        self,
        listener: TcpListener,
        routes: F,
        signal: impl Future<Output = ()> + Send + 'static,
    ) where
        F: Filter<Extract = (R,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
        R: warp::Reply,
    {
        self.accept_loop(listener, None, routes, signal).await
    }

    /// Accepts connections (through TLS when `tls` is set) and serves HTTP/1.1 with upgrades
    /// and HTTP/2 on each; on `signal`, closes every hub connection, then lets open requests
    /// finish within the drain time. A request head must arrive within
    /// `http_header_read_timeout`, and a socket whose client takes nothing of what is written
    /// for `http_write_timeout` is dropped.
    async fn accept_loop<F, R>(
        self,
        listener: TcpListener,
        tls: Option<tls::Acceptor>,
        routes: F,
        signal: impl Future<Output = ()> + Send + 'static,
    ) where
        F: Filter<Extract = (R,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
        R: warp::Reply,
    {
        let inner = self.inner.clone();
        inner.start_housekeeping();
        let drain = inner.options.shutdown_drain;
        let stopping = stopping(inner, signal);
        tokio::pin!(stopping);
        let service = warp::service(routes);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let header_timeout = crate::connection::bounded(self.inner.options.http_header_read_timeout);
        let write_timeout = self.inner.options.http_write_timeout;
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Usually out of file descriptors: wait for some to be freed.
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = &mut stopping => break,
            };
            // Hub messages are small and latency matters more than packet count.
            let _ = tcp.set_nodelay(true);
            let tcp = write_timeout::WriteTimeout::new(tcp, write_timeout);
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                builder
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout);
                // An idle HTTP/2 connection whose client no longer answers pings is dropped.
                builder
                    .http2()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .keep_alive_interval(header_timeout)
                    .keep_alive_timeout(header_timeout);
                let served = match tls {
                    None => {
                        let io = hyper_util::rt::TokioIo::new(head_deadline::HeadDeadline::new(tcp, header_timeout));
                        watcher.watch(builder.serve_connection_with_upgrades(io, service)).await
                    }
                    Some(acceptor) => {
                        let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                        let io = hyper_util::rt::TokioIo::new(head_deadline::HeadDeadline::new(stream, header_timeout));
                        watcher.watch(builder.serve_connection_with_upgrades(io, service)).await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
            });
        }
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(drain) => {
                tracing::warn!("requests still open after the drain time; stopping anyway");
            }
        }
    }
}

/// Resolves once the server should stop: after `signal` (or [`HubServer::shutdown`]), every
/// connection got its Close message, and the drain time passed or every connection ended.
async fn stopping(inner: Arc<ServerInner>, signal: impl Future<Output = ()> + Send + 'static) {
    let drain = inner.options.shutdown_drain;
    tokio::select! {
        _ = signal => {}
        _ = inner.shutdown.cancelled() => {}
    }
    tracing::info!("shutting down: closing every connection");
    inner.shutdown.cancel();
    let deadline = crate::connection::deadline_after(drain);
    while tokio::time::Instant::now() < deadline && inner.endpoints.iter().any(|e| e.connections.len() > 0) {
        // Connections without a transport right now (never started, between long polls,
        // detached) cannot be told goodbye: they end at once.
        for endpoint in &inner.endpoints {
            endpoint.connections.sweep(SweepTimeouts::NOW);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for endpoint in &inner.endpoints {
        endpoint.connections.abort_all();
    }
}

/// Drops connections without a transport that outlived their timeout (see
/// [`ConnectionManager::sweep`]), once a second while the server exists.
async fn sweep(server: Weak<ServerInner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(inner) = server.upgrade() else {
            return;
        };
        let timeouts = SweepTimeouts {
            unstarted: inner.options.unstarted_timeout,
            disconnect: inner.options.disconnect_timeout,
            reconnect_grace: inner.options.reconnect_grace,
        };
        for endpoint in &inner.endpoints {
            endpoint.connections.sweep(timeouts);
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Binds a listener and returns it with its actual address (useful with port 0).
pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
