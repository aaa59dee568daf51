//! Stateful reconnect against hub-runtime on a loopback port, through a TCP proxy that severs
//! the client's socket mid-flight: the same connection comes back (same id, no callbacks),
//! calls in flight complete, what either side sent during the gap arrives exactly once and in
//! order; without the option the same drop loses the connection; when the socket cannot be
//! opened again, automatic reconnect takes over (or the connection closes); the client
//! acknowledges what it gets, and its sends wait while its buffer is full.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{within, Events, TestServer};
use hub_client::{CloseReason, Delays, Error, HubConnection, HubConnectionBuilder, Protocol, TransportKind};
use hub_runtime::prelude::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[hub_client]
trait Receiver {
    fn receive(&self, n: u32, pad: String);
}

struct Counter {
    /// What the server got from the client.
    events: Events,
}

#[hub(client = Receiver)]
impl Counter {
    fn id(&self, cx: &HubContext<Self>) -> String {
        cx.connection_id().to_string()
    }

    /// Sends the caller `count` numbers (each with `pad` bytes of padding), `pause_ms` apart;
    /// returns the count.
    async fn countdown(&self, cx: &HubContext<Self>, count: u32, pause_ms: u64, pad: usize) -> Result<u32, HubError> {
        let pad = "p".repeat(pad);
        for n in 0..count {
            cx.clients.caller().receive(n, pad.clone()).await?;
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        Ok(count)
    }

    fn record(&self, text: String) {
        self.events.push(format!("record {text}"));
    }
}

/// What the proxy does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Connect it to the server.
    Pass,
    /// Keep it waiting (not connected to the server) until the mode changes.
    Hold,
    /// Close it at once.
    Refuse,
}

/// A TCP proxy in front of the server: `cut` severs every connection open through it (both
/// sockets closed, as a network failure would leave them), `set` decides what happens to new
/// ones.
struct Proxy {
    url: String,
    cuts: watch::Sender<u64>,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hub", listener.local_addr().unwrap());
        let (cuts, _) = watch::channel(0_u64);
        let (mode, _) = watch::channel(Mode::Pass);
        let (all_cuts, modes) = (cuts.clone(), mode.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = all_cuts.subscribe();
                let mut mode = modes.subscribe();
                tokio::spawn(async move {
                    loop {
                        let now = *mode.borrow_and_update();
                        match now {
                            Mode::Pass => break,
                            Mode::Refuse => return,
                            Mode::Hold => {
                                if mode.changed().await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
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
        Proxy { url, cuts, mode }
    }

    fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn server(buffer: usize) -> (TestServer, Events) {
    let events = Events::default();
    let options = HubOptions {
        stateful_reconnect: true,
        stateful_reconnect_buffer: buffer,
        ..Default::default()
    };
    let hub = Counter { events: events.clone() };
    let server = TestServer::start(HubServer::builder().options(options).hub("/hub", hub).build()).await;
    (server, events)
}

/// A WebSockets connection through `proxy`, recording what the server sends it and the
/// reconnect callbacks in `events`.
fn client(proxy: &Proxy, protocol: Protocol, stateful: bool, events: &Events) -> HubConnection {
    let connection = HubConnectionBuilder::new(proxy.url.clone())
        .protocol(protocol)
        .transports([TransportKind::WebSockets])
        .stateful_reconnect(stateful)
        .build()
        .unwrap();
    record_callbacks(&connection, events);
    connection
}

fn record_callbacks(connection: &HubConnection, events: &Events) {
    let seen = events.clone();
    connection.on("Receive", move |args| {
        let seen = seen.clone();
        async move {
            let n: u32 = args.get(0).unwrap();
            seen.push(format!("receive {n}"));
        }
    });
    let seen = events.clone();
    connection.on_reconnecting(move |_| seen.push("reconnecting"));
    let seen = events.clone();
    connection.on_reconnected(move |_| seen.push("reconnected"));
}

fn received(events: &Events) -> Vec<String> {
    events
        .snapshot()
        .into_iter()
        .filter(|e| e.starts_with("receive "))
        .collect()
}

fn numbered(what: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("{what} {n}")).collect()
}

#[tokio::test]
async fn a_dropped_socket_comes_back_to_the_same_connection_and_nothing_is_lost() {
    for protocol in [Protocol::Json, Protocol::MessagePack] {
        let (server, recorded) = server(100_000).await;
        let proxy = Proxy::start(server.addr).await;
        let tokens = Arc::new(AtomicUsize::new(0));
        let counted = tokens.clone();
        let events = Events::default();
        let connection = HubConnectionBuilder::new(proxy.url.clone())
            .protocol(protocol)
            .transports([TransportKind::WebSockets])
            .stateful_reconnect(true)
            .access_token_factory(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, std::io::Error>("token".to_string()) }
            })
            // Automatic reconnect is on, and must not be what brings the connection back.
            .automatic_reconnect_with(Delays(vec![Duration::ZERO]))
            .build()
            .unwrap();
        record_callbacks(&connection, &events);
        within("start", connection.start()).await.unwrap();
        let id: String = within("id", connection.invoke("Id", ())).await.unwrap();
        assert_eq!(connection.connection_id().as_deref(), Some(id.as_str()));

        // 20 numbers, 25 ms apart: in flight when the socket drops.
        let counting = connection.clone();
        let countdown = tokio::spawn(async move { counting.invoke::<u32>("Countdown", (20, 25, 0)).await });
        events.wait_for("receive 3").await;
        // The next socket waits at the proxy while the server goes on sending.
        proxy.set(Mode::Hold);
        proxy.cut();
        for n in 0..5 {
            within("a send during the gap", connection.send("Record", (n.to_string(),)))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(connection.is_connected(), "{protocol:?}: the gap is not a disconnect");
        proxy.set(Mode::Pass);

        let count = within("the countdown", countdown).await.unwrap();
        assert_eq!(count, Ok(20), "{protocol:?}: the call in flight completes");
        events.wait_for("receive 19").await;
        assert_eq!(
            received(&events),
            numbered("receive", 0..20),
            "{protocol:?}: exactly once, in order"
        );
        recorded.wait_for("record 4").await;
        assert_eq!(
            recorded.snapshot(),
            numbered("record", 0..5),
            "{protocol:?}: exactly once, in order"
        );

        let again: String = within("id again", connection.invoke("Id", ())).await.unwrap();
        assert_eq!(again, id, "{protocol:?}: the same connection on the server");
        assert_eq!(connection.connection_id().as_deref(), Some(id.as_str()));
        assert!(
            !events.snapshot().iter().any(|e| e.starts_with("reconnect")),
            "{protocol:?}: no reconnect callbacks, as the official clients: {:?}",
            events.snapshot()
        );
        // The socket was opened again with a fresh token from the factory.
        assert_eq!(tokens.load(Ordering::SeqCst), 2, "{protocol:?}");
        connection.stop().await;
        assert_eq!(within("closed", connection.closed()).await, CloseReason::Stopped);
    }
}

#[tokio::test]
async fn without_the_option_the_same_drop_loses_the_connection() {
    let (server, _) = server(100_000).await;
    let proxy = Proxy::start(server.addr).await;
    let events = Events::default();
    let connection = client(&proxy, Protocol::Json, false, &events);
    within("start", connection.start()).await.unwrap();
    let closed = connection.closed();
    let counting = connection.clone();
    let countdown = tokio::spawn(async move { counting.invoke::<u32>("Countdown", (20, 25, 0)).await });
    events.wait_for("receive 3").await;
    proxy.cut();
    let result = within("the countdown", countdown).await.unwrap();
    assert!(matches!(result, Err(Error::ConnectionClosed(_))), "{result:?}");
    let reason = within("closed", closed).await;
    assert!(matches!(reason, CloseReason::Failed(Error::Transport(_))), "{reason:?}");
}

#[tokio::test]
async fn when_the_socket_cannot_come_back_automatic_reconnect_takes_over() {
    let (server, _) = server(100_000).await;
    let proxy = Proxy::start(server.addr).await;
    let events = Events::default();
    let connection = HubConnectionBuilder::new(proxy.url.clone())
        .transports([TransportKind::WebSockets])
        .stateful_reconnect(true)
        .automatic_reconnect_with(Delays(vec![Duration::from_millis(300)]))
        .build()
        .unwrap();
    record_callbacks(&connection, &events);
    within("start", connection.start()).await.unwrap();
    let first: String = within("id", connection.invoke("Id", ())).await.unwrap();
    proxy.set(Mode::Refuse);
    proxy.cut();
    events.wait_for("reconnecting").await;
    proxy.set(Mode::Pass);
    events.wait_for("reconnected").await;
    let second: String = within("id again", connection.invoke("Id", ())).await.unwrap();
    assert_ne!(first, second, "automatic reconnect is a new connection");

    // The new connection is stateful too: it survives a drop.
    proxy.cut();
    let third: String = within("id after a drop", connection.invoke("Id", ())).await.unwrap();
    assert_eq!(third, second);
    assert_eq!(
        events.snapshot().iter().filter(|e| e.starts_with("reconnect")).count(),
        2,
        "{:?}",
        events.snapshot()
    );
    connection.stop().await;
}

#[tokio::test]
async fn without_automatic_reconnect_a_socket_that_cannot_come_back_closes_the_connection() {
    let (server, _) = server(100_000).await;
    let proxy = Proxy::start(server.addr).await;
    let events = Events::default();
    let connection = client(&proxy, Protocol::Json, true, &events);
    within("start", connection.start()).await.unwrap();
    let closed = connection.closed();
    proxy.set(Mode::Refuse);
    proxy.cut();
    let reason = within("closed", closed).await;
    assert!(matches!(reason, CloseReason::Failed(Error::Transport(_))), "{reason:?}");
    assert!(!connection.is_connected());
}

#[tokio::test]
async fn stop_while_the_socket_is_coming_back_stops() {
    let (server, _) = server(100_000).await;
    let proxy = Proxy::start(server.addr).await;
    let events = Events::default();
    let connection = client(&proxy, Protocol::Json, true, &events);
    within("start", connection.start()).await.unwrap();
    let _: String = within("id", connection.invoke("Id", ())).await.unwrap();
    proxy.set(Mode::Hold);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    within("stop", connection.stop()).await;
    assert_eq!(within("closed", connection.closed()).await, CloseReason::Stopped);
}

/// The server closes a connection whose unacknowledged messages pass its buffer (3,000 bytes
/// here); 3,000-odd bytes over 3 seconds pass only if the client acknowledges as it goes.
#[tokio::test]
async fn the_client_acknowledges_what_it_receives() {
    let (server, _) = server(3_000).await;
    let proxy = Proxy::start(server.addr).await;
    let events = Events::default();
    let connection = client(&proxy, Protocol::Json, true, &events);
    within("start", connection.start()).await.unwrap();
    let closed = connection.closed();
    let count: u32 = tokio::time::timeout(Duration::from_secs(10), connection.invoke("Countdown", (30, 100, 100)))
        .await
        .expect("the countdown")
        .unwrap();
    assert_eq!(count, 30);
    assert_eq!(received(&events), numbered("receive", 0..30));
    assert!(connection.is_connected());
    connection.stop().await;
    assert_eq!(within("closed", closed).await, CloseReason::Stopped);
}

/// As the official clients, a send that brings the unacknowledged bytes to the buffer size
/// waits for the server's Ack; one under it does not.
#[tokio::test]
async fn sends_wait_while_the_buffer_is_full() {
    let (server, recorded) = server(100_000).await;
    let proxy = Proxy::start(server.addr).await;
    let connection = HubConnectionBuilder::new(proxy.url.clone())
        .transports([TransportKind::WebSockets])
        .stateful_reconnect(true)
        .stateful_reconnect_buffer_size(400)
        .build()
        .unwrap();
    within("start", connection.start()).await.unwrap();
    // No Acks come while the socket is held at the proxy.
    proxy.set(Mode::Hold);
    proxy.cut();
    let text = |c: char| c.to_string().repeat(200);
    // About 250 bytes each: the first stays under 400, the second reaches it.
    within("under the limit", connection.send("Record", (text('a'),)))
        .await
        .unwrap();
    let second = connection.send("Record", (text('b'),));
    tokio::pin!(second);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.as_mut())
            .await
            .is_err(),
        "a send at the limit waits for an Ack"
    );
    proxy.set(Mode::Pass);
    within("released by the Ack", second).await.unwrap();
    recorded.wait_for(&format!("record {}", text('b'))).await;
    assert_eq!(
        recorded.snapshot(),
        [format!("record {}", text('a')), format!("record {}", text('b'))]
    );
    connection.stop().await;
}
