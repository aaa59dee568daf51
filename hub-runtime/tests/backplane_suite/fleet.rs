//! The generic harness: a backplane kind ([`Kind`]) and a [`Fleet`] of servers on one broker,
//! each serving the suite's hub on its own loopback port with a backplane of its own, plus a
//! worker (a server that serves nothing and only sends) and clients on real sockets.

use std::future::Future;
use std::sync::Arc;

use hub_runtime::backplane::{Backplane, BackplaneStats};
use hub_runtime::{EndpointOptions, HubHandle, HubOptions, HubServer};

use crate::common::TestServer;
use crate::hub::{user_from_query, Suite};
use crate::peer::Peer;

/// How many servers a distributed backplane's fleet has.
pub const SERVERS: usize = 3;

/// Where the suite's hub is served.
pub const PATH: &str = "/suite";

/// A backplane under test: its broker, and a backplane for one server.
pub trait Kind: 'static {
    /// Whether servers on one broker form a fleet (false: a fleet of one server).
    const DISTRIBUTED: bool;
    /// The broker process (`()` without one).
    type Broker;
    /// The backplane type.
    type Backplane: Backplane;

    /// Starts a broker of the test's own; `None`: not installed, the case is skipped.
    fn start_broker() -> impl Future<Output = Option<Self::Broker>>;

    /// A backplane for one server, with short timeouts where it has options.
    fn backplane(broker: &Self::Broker) -> impl Future<Output = Self::Backplane>;

    /// Client results in flight through this backplane, if it tells.
    fn pending_client_results(backplane: &Self::Backplane) -> Option<usize> {
        let _ = backplane;
        None
    }

    /// Stops the broker: every connection to it drops (distributed kinds only).
    fn stop_broker(broker: &mut Self::Broker) -> impl Future<Output = ()> {
        let _ = broker;
        async { panic!("this backplane has no broker to stop") }
    }

    /// Starts the broker again on the same address (distributed kinds only).
    fn restart_broker(broker: &mut Self::Broker) -> impl Future<Output = ()> {
        let _ = broker;
        async { panic!("this backplane has no broker to restart") }
    }
}

/// One server of the fleet.
pub struct Server<K: Kind> {
    pub test: TestServer,
    /// The server's own backplane (its stats).
    pub backplane: Arc<K::Backplane>,
    pub handle: HubHandle<Suite>,
}

/// Servers on one broker.
pub struct Fleet<K: Kind> {
    broker: K::Broker,
    servers: Vec<Server<K>>,
    /// Sends from outside hub methods: a server of its own that serves nothing (the first
    /// server's handle for a fleet of one).
    pub worker: HubHandle<Suite>,
    worker_backplane: Option<Arc<K::Backplane>>,
    _worker_server: Option<HubServer>,
}

impl<K: Kind> Fleet<K> {
    /// A fleet with default options; `None` if the broker is not installed.
    pub async fn start() -> Option<Self> {
        Fleet::start_with(HubOptions::default()).await
    }

    /// A fleet whose servers have `options`.
    pub async fn start_with(options: HubOptions) -> Option<Self> {
        let broker = K::start_broker().await?;
        let count = if K::DISTRIBUTED { SERVERS } else { 1 };
        let mut servers = Vec::with_capacity(count);
        for _ in 0..count {
            let backplane = Arc::new(K::backplane(&broker).await);
            let server = HubServer::builder()
                .options(options.clone())
                .backplane(backplane.clone())
                .hub_with(PATH, Suite, EndpointOptions::new().authenticator(user_from_query))
                .build();
            let handle = server.handle::<Suite>().expect("the suite's hub is mapped");
            servers.push(Server {
                test: TestServer::start(server).await,
                backplane,
                handle,
            });
        }
        let (worker, worker_backplane, worker_server) = if K::DISTRIBUTED {
            let backplane = Arc::new(K::backplane(&broker).await);
            let server = HubServer::builder()
                .options(options)
                .backplane(backplane.clone())
                .publish_to::<Suite>()
                .build();
            let handle = server.handle::<Suite>().expect("publish_to registers the hub");
            (handle, Some(backplane), Some(server))
        } else {
            (servers[0].handle.clone(), None, None)
        };
        Some(Fleet {
            broker,
            servers,
            worker,
            worker_backplane,
            _worker_server: worker_server,
        })
    }

    /// Server `index` (A = 0, B = 1, C = 2); in a fleet of one, always the one server.
    pub fn server(&self, index: usize) -> &Server<K> {
        &self.servers[index % self.servers.len()]
    }

    /// A JSON client on server `index`, of `user` if given.
    pub async fn json(&self, index: usize, user: Option<&str>) -> Peer {
        let query = user.map(|u| format!("user={u}")).unwrap_or_default();
        Peer::json(self.server(index).test.addr, PATH, &query).await
    }

    /// A MessagePack client on server `index`.
    pub async fn msgpack(&self, index: usize) -> Peer {
        Peer::msgpack(self.server(index).test.addr, PATH).await
    }

    /// Every backplane's counts (the servers', then the worker's).
    pub fn stats(&self) -> Vec<BackplaneStats> {
        self.servers
            .iter()
            .map(|s| &s.backplane)
            .chain(&self.worker_backplane)
            .map(|b| b.stats())
            .collect()
    }

    /// Client results in flight through any backplane of the fleet, if the kind tells.
    pub fn pending_client_results(&self) -> Option<usize> {
        self.servers
            .iter()
            .map(|s| &s.backplane)
            .chain(&self.worker_backplane)
            .map(|b| K::pending_client_results(b))
            .sum()
    }

    pub async fn stop_broker(&mut self) {
        K::stop_broker(&mut self.broker).await
    }

    pub async fn restart_broker(&mut self) {
        K::restart_broker(&mut self.broker).await
    }
}
