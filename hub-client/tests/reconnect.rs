//! Automatic reconnect: a connection lost (its TCP connections cut by a proxy) comes back
//! with a new connection id; the policy decides when to give up; a Close without
//! `allowReconnect` and `stop()` do not reconnect.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{within, Events, TestServer};
use hub_client::{CloseReason, Delays, Error, HubConnectionBuilder, RetryContext, TransportKind};
use hub_runtime::prelude::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct Plain;

#[hub]
impl Plain {
    fn echo(&self, message: String) -> String {
        message
    }

    fn id(&self, cx: &HubContext<Self>) -> String {
        cx.connection_id().to_string()
    }

    fn leave(&self, cx: &HubContext<Self>) {
        cx.abort();
    }
}

/// A TCP proxy in front of `upstream` that can cut every connection open through it
/// (`cut`), and refuse new ones (`refuse`).
struct Proxy {
    url: String,
    generation: watch::Sender<u64>,
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hub", listener.local_addr().unwrap());
        let (generation, _) = watch::channel(0_u64);
        let refusing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cuts = generation.clone();
        let refuse = refusing.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            url,
            generation,
            refusing,
        }
    }

    fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn server() -> TestServer {
    TestServer::start(HubServer::builder().hub("/hub", Plain).build()).await
}

#[tokio::test]
async fn a_lost_connection_comes_back_with_a_new_id() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    for transport in [TransportKind::WebSockets, TransportKind::LongPolling] {
        let tokens = Arc::new(AtomicUsize::new(0));
        let counted = tokens.clone();
        let connection = HubConnectionBuilder::new(proxy.url.clone())
            .transports([transport])
            .access_token_factory(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, std::io::Error>("token".to_string()) }
            })
            .automatic_reconnect_with(Delays(vec![Duration::ZERO, Duration::from_millis(50)]))
            .build()
            .unwrap();
        let events = Events::default();
        let seen = events.clone();
        connection
            .on_reconnecting(move |error| seen.push(format!("reconnecting {}", matches!(error, Error::Transport(_)))));
        let seen = events.clone();
        connection.on_reconnected(move |id| seen.push(format!("reconnected {}", id.is_some())));
        within("start", connection.start()).await.unwrap();
        let first: String = within("id", connection.invoke("Id", ())).await.unwrap();
        assert_eq!(connection.connection_id().as_deref(), Some(first.as_str()));

        proxy.cut();
        events.wait_for("reconnecting true").await;
        events.wait_for("reconnected true").await;
        let second: String = within("id again", connection.invoke("Id", ())).await.unwrap();
        assert_ne!(first, second, "{transport:?}: a reconnect is a new connection");
        // The token factory was asked again for the new connection.
        assert_eq!(tokens.load(Ordering::SeqCst), 2);
        assert_eq!(connection.connection_id().as_deref(), Some(second.as_str()));
        let echoed: String = within("echo", connection.invoke("Echo", ("back",))).await.unwrap();
        assert_eq!(echoed, "back");
        connection.stop().await;
        assert_eq!(within("closed", connection.closed()).await, CloseReason::Stopped);
    }
}

#[tokio::test]
async fn the_policy_decides_when_to_give_up() {
    let server = server().await;
    let proxy = Proxy::start(server.addr).await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let connection = HubConnectionBuilder::new(proxy.url.clone())
        .transports([TransportKind::WebSockets])
        .automatic_reconnect_with(move |context: &RetryContext<'_>| {
            counted.fetch_add(1, Ordering::SeqCst);
            (context.previous_retry_count < 3).then_some(Duration::from_millis(20))
        })
        .build()
        .unwrap();
    within("start", connection.start()).await.unwrap();
    let closed = connection.closed();
    proxy.refusing.store(true, Ordering::SeqCst);
    proxy.cut();
    let reason = within("gave up", closed).await;
    assert!(matches!(reason, CloseReason::Failed(Error::Transport(_))), "{reason:?}");
    // Three attempts, then the fourth question got `None`.
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert!(!connection.is_connected());
}

#[tokio::test]
async fn a_close_without_allow_reconnect_and_stop_do_not_reconnect() {
    let server = server().await;
    let connection = HubConnectionBuilder::new(server.url("/hub"))
        .automatic_reconnect_with(Delays(vec![Duration::ZERO]))
        .build()
        .unwrap();
    let reconnecting = Arc::new(AtomicUsize::new(0));
    let counted = reconnecting.clone();
    connection.on_reconnecting(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    within("start", connection.start()).await.unwrap();
    let closed = connection.closed();
    let _ = connection.invoke::<()>("Leave", ()).await;
    let reason = within("closed", closed).await;
    assert_eq!(
        reason,
        CloseReason::ByServer {
            error: None,
            allow_reconnect: false
        }
    );

    within("start again", connection.start()).await.unwrap();
    connection.stop().await;
    assert_eq!(within("closed", connection.closed()).await, CloseReason::Stopped);
    assert_eq!(reconnecting.load(Ordering::SeqCst), 0);
}
