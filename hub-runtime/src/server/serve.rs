//! The built-in server: the accept loop (HTTP/1.1 with upgrades and HTTP/2, optionally over
//! TLS), the shutdown that says goodbye to every connection, and the sweeper of connections
//! without a transport.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use warp::Filter;

#[cfg(feature = "tls")]
use super::TlsConfig;
use super::{head_deadline, tls, write_timeout, HubServer, PeerAddr, ServerInner};
use crate::connection::SweepTimeouts;

impl HubServer {
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

    /// Shuts down however the server is served (the built-in server, [`HubServer::filter`] in
    /// warp, [`HubServer::into_service`] in axum or hyper): every connection gets a Close
    /// message (reconnect allowed), connections without a transport end at once, and what is
    /// still open after [`HubOptions::shutdown_drain`](crate::HubOptions::shutdown_drain) is
    /// aborted. Resolves once every connection ended or the drain time passed (the rest are
    /// aborted then). A host's own graceful shutdown waits for open requests only (axum and
    /// hyper do not track upgraded WebSockets), so call this first: see the example at
    /// [`HubServer::into_service`]. New connections are refused (503) from the start.
    pub async fn graceful_shutdown(&self) {
        self.inner.close_all().await;
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
            let (tcp, peer) = tokio::select! {
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
            let service = hyper_util::service::TowerToHyperService::new(with_peer(service.clone(), peer));
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
    tokio::select! {
        _ = signal => {}
        _ = inner.shutdown.cancelled() => {}
    }
    inner.close_all().await;
}

impl ServerInner {
    /// Says goodbye to every connection (a Close message, reconnect allowed), waits until
    /// they ended or the drain time passed, and aborts what is left.
    pub(super) async fn close_all(&self) {
        tracing::info!("shutting down: closing every connection");
        self.shutdown.cancel();
        let deadline = crate::connection::deadline_after(self.options.shutdown_drain);
        while tokio::time::Instant::now() < deadline && self.endpoints.iter().any(|e| e.connections.len() > 0) {
            // Connections without a transport right now (never started, between long polls,
            // detached) cannot be told goodbye: they end at once.
            for endpoint in &self.endpoints {
                endpoint.connections.sweep(SweepTimeouts::NOW);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for endpoint in &self.endpoints {
            endpoint.connections.abort_all();
        }
    }
}

/// Drops connections without a transport that outlived their timeout (see
/// [`ConnectionManager::sweep`]), once a second while the server exists.
pub(super) async fn sweep(server: Weak<ServerInner>) {
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

/// `service` with the peer's address inserted into every request (as a [`PeerAddr`]).
fn with_peer<S, B>(
    service: S,
    peer: SocketAddr,
) -> impl tower_service::Service<http::Request<B>, Response = S::Response, Error = S::Error, Future = S::Future> + Clone
where
    S: tower_service::Service<http::Request<B>> + Clone,
{
    struct WithPeer<S> {
        service: S,
        peer: PeerAddr,
    }
    impl<S: Clone> Clone for WithPeer<S> {
        fn clone(&self) -> Self {
            WithPeer {
                service: self.service.clone(),
                peer: self.peer,
            }
        }
    }
    impl<S, B> tower_service::Service<http::Request<B>> for WithPeer<S>
    where
        S: tower_service::Service<http::Request<B>>,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
            self.service.poll_ready(cx)
        }

        fn call(&mut self, mut request: http::Request<B>) -> S::Future {
            request.extensions_mut().insert(self.peer);
            self.service.call(request)
        }
    }
    WithPeer {
        service,
        peer: PeerAddr(peer),
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
