//! Serving a hub-runtime server on a loopback port for the client's tests (a copy of the
//! small serving helper of hub-runtime's tests), with every wait bounded.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hub_runtime::HubServer;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use warp::filters::BoxedFilter;
use warp::Filter;

/// The longest any single step of a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test if it takes longer than [`TIMEOUT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {TIMEOUT:?}: {what}"),
    }
}

/// Events recorded by a test hub or handler, with a way to wait for one.
#[derive(Default, Clone)]
pub struct Events {
    inner: Arc<(Mutex<Vec<String>>, Notify)>,
}

impl Events {
    pub fn push(&self, event: impl Into<String>) {
        self.inner.0.lock().unwrap().push(event.into());
        self.inner.1.notify_waiters();
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.inner.0.lock().unwrap().clone()
    }

    /// Waits until some recorded event equals `event`.
    pub async fn wait_for(&self, event: &str) {
        within(event, async {
            loop {
                let notified = self.inner.1.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.snapshot().iter().any(|e| e == event) {
                    return;
                }
                notified.await;
            }
        })
        .await
    }
}

/// A server serving on its own loopback port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub server: HubServer,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `server` on `127.0.0.1:0`.
    pub async fn start(server: HubServer) -> TestServer {
        let routes = server.filter();
        Self::start_with(server, routes).await
    }

    /// Serves `extra` routes in front of `server`'s hubs.
    pub async fn start_with_routes(server: HubServer, extra: BoxedFilter<(warp::reply::Response,)>) -> TestServer {
        let routes = extra.or(server.filter()).unify().boxed();
        Self::start_with(server, routes).await
    }

    /// Serves `server`'s hubs through `wrap` (which may change their responses).
    pub async fn start_wrapped(
        server: HubServer,
        wrap: impl FnOnce(BoxedFilter<(warp::reply::Response,)>) -> BoxedFilter<(warp::reply::Response,)>,
    ) -> TestServer {
        let routes = wrap(server.filter());
        Self::start_with(server, routes).await
    }

    async fn start_with(server: HubServer, routes: BoxedFilter<(warp::reply::Response,)>) -> TestServer {
        let (listener, addr) = hub_runtime::server::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().serve_with(listener, routes, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            server,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
