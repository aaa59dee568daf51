//! Following a durable group across reconnects (`HubConnection::follow`, `Following`): hub-runtime
//! servers whose hub forwards to `cx.history` (the interop contract's `Publish` and
//! `Subscribe`), sharing one history store that outlives each of them. The follower goes
//! through a TCP proxy that can cut its connections, refuse new ones and switch to another
//! server; it reconnects by itself and must get every message exactly once, in order.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::within;
use futures_util::StreamExt;
use hub_client::{
    CloseReason, Delays, Error, FollowEvent, Following, HubConnection, HubConnectionBuilder, Position, Protocol,
    RetryContext, TransportKind,
};
use hub_runtime::history::{HistoryEvent, HistoryRule, InMemoryHistory};
use hub_runtime::prelude::*;
use hub_runtime::EndpointOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// The hub as a typed client sees it.
mod contract {
    use hub_client::{Position, RecoveryItem};
    use hub_protocol::contract::hub_contract;

    #[hub_contract]
    pub trait News {
        fn publish(&self, group: String, message: String) -> Position;
        fn subscribe(&self, group: String, from: Option<Position>) -> impl Stream<Item = RecoveryItem<String>>;
    }
}

/// Durable groups as the interop contract's BroadcastHub has them.
struct News;

#[hub]
impl News {
    async fn publish(
        &self,
        cx: &HubContext<Self>,
        group: String,
        message: String,
    ) -> Result<hub_runtime::history::Position, HubError> {
        Ok(cx.history.publish(&group, &message).await?)
    }

    async fn subscribe(
        &self,
        cx: &HubContext<Self>,
        group: String,
        from: Option<hub_runtime::history::Position>,
    ) -> Result<impl Stream<Item = Result<HistoryEvent<String>, HubError>>, HubError> {
        let events = cx.history.subscribe::<String>(&group, from).await?;
        Ok(events.map(|event| event.map_err(HubError::from)))
    }
}

/// How many messages a durable group keeps in these tests.
const HISTORY_SIZE: usize = 3;

/// A server serving `News` at `/news` on `addr`, its history in `store`.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(store: &InMemoryHistory, addr: &str) -> Server {
        let rule = HistoryRule::prefix("durable-").max_len(HISTORY_SIZE);
        let server = HubServer::builder()
            .history(store.clone())
            .hub_with("/news", News, EndpointOptions::new().history(rule))
            .build();
        let (listener, addr) = hub_runtime::server::bind(addr).await.expect("bind");
        let (stop, stopped) = oneshot::channel::<()>();
        let routes = server.filter();
        let task = tokio::spawn(server.serve_with(listener, routes, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts the server down (its connections get a Close) and waits until it is gone, so its
    /// port is free again.
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = &mut self.task;
        if tokio::time::timeout(Duration::from_secs(10), task).await.is_err() {
            self.task.abort();
        }
    }

    fn url(&self) -> String {
        format!("http://{}/news", self.addr)
    }
}

/// A TCP proxy in front of one server at a time: `cut` closes every connection through it,
/// `refuse` drops new ones, `switch` sends the next ones to another server.
struct Proxy {
    url: String,
    cuts: watch::Sender<u64>,
    refusing: Arc<AtomicBool>,
    upstream: Arc<Mutex<SocketAddr>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/news", listener.local_addr().unwrap());
        let (cuts, _) = watch::channel(0_u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let upstream = Arc::new(Mutex::new(upstream));
        let (all_cuts, refuse, target) = (cuts.clone(), refusing.clone(), upstream.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut = all_cuts.subscribe();
                let to = *target.lock().unwrap();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(to).await else {
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
            cuts,
            refusing,
            upstream,
        }
    }

    /// Cuts every connection and refuses new ones until `admit`.
    fn cut_and_refuse(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn admit(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }

    fn switch(&self, to: SocketAddr) {
        *self.upstream.lock().unwrap() = to;
    }
}

/// A started connection; `reconnect` makes it come back every 50 ms for as long as it takes.
async fn connect(url: &str, transport: TransportKind, protocol: Protocol, reconnect: bool) -> HubConnection {
    let mut builder = HubConnectionBuilder::new(url)
        .transports([transport])
        .protocol(protocol);
    if reconnect {
        builder = builder.automatic_reconnect_with(|_: &RetryContext<'_>| Some(Duration::from_millis(50)));
    }
    let connection = builder.build().unwrap();
    within("start", connection.start()).await.unwrap();
    connection
}

async fn publish(connection: &HubConnection, group: &str, message: &str) -> Position {
    within("Publish", connection.invoke("Publish", (group, message)))
        .await
        .unwrap()
}

/// The next event, which must come in time and not be an error.
async fn next(following: &mut Following<String>) -> FollowEvent<String> {
    match within("the next event", following.next()).await {
        Some(Ok(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn message(epoch: &str, offset: i64, text: &str) -> FollowEvent<String> {
    FollowEvent::Message {
        position: Position::new(epoch, offset),
        message: text.to_string(),
    }
}

/// Nothing more arrives for a while (no duplicate).
async fn nothing_more(following: &mut Following<String>) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), following.next()).await {
        panic!("expected nothing more, got {item:?}");
    }
}

/// The first event of a fresh following: recovered, at the group's current position.
async fn subscribed(following: &mut Following<String>, offset: i64) -> String {
    match next(following).await {
        FollowEvent::Subscribed {
            recovered: true,
            position,
        } if position.offset == offset => position.epoch,
        other => panic!("expected the first header at offset {offset}, got {other:?}"),
    }
}

/// The server restarts on the same port; what was published while the follower was away
/// arrives once, in order, after its automatic reconnect, then live messages.
#[tokio::test]
async fn messages_published_while_away_arrive_once_after_a_server_restart() {
    for (transport, protocol) in [
        (TransportKind::WebSockets, Protocol::Json),
        (TransportKind::LongPolling, Protocol::MessagePack),
    ] {
        let store = InMemoryHistory::new();
        let first = Server::start(&store, "127.0.0.1:0").await;
        let addr = first.addr.to_string();
        let proxy = Proxy::start(first.addr).await;
        let follower = connect(&proxy.url, transport, protocol, true).await;
        let publisher = connect(&first.url(), transport, protocol, false).await;
        let group = "durable-restart";

        let mut following = follower.follow::<String>("Subscribe", group);
        let epoch = subscribed(&mut following, 0).await;
        publish(&publisher, group, "m1").await;
        publish(&publisher, group, "m2").await;
        assert_eq!(next(&mut following).await, message(&epoch, 1, "m1"));
        assert_eq!(next(&mut following).await, message(&epoch, 2, "m2"));

        proxy.cut_and_refuse();
        publisher.stop().await;
        first.shut_down().await;
        let second = Server::start(&store, &addr).await;
        let publisher = connect(&second.url(), transport, protocol, false).await;
        for text in ["m3", "m4", "m5"] {
            publish(&publisher, group, text).await;
        }
        proxy.admit();

        assert_eq!(
            next(&mut following).await,
            FollowEvent::Subscribed {
                recovered: true,
                position: Position::new(&epoch, 5)
            },
            "{transport:?}"
        );
        for (offset, text) in [(3, "m3"), (4, "m4"), (5, "m5")] {
            assert_eq!(next(&mut following).await, message(&epoch, offset, text));
        }
        publish(&publisher, group, "m6").await;
        assert_eq!(next(&mut following).await, message(&epoch, 6, "m6"));
        nothing_more(&mut following).await;

        drop(following);
        follower.stop().await;
        publisher.stop().await;
        second.shut_down().await;
    }
}

/// More was published while away than history keeps: the follower is told it did not
/// recover, gets none of the stale messages, then the live ones.
#[tokio::test]
async fn an_overflowed_history_says_not_recovered_and_sends_nothing_stale() {
    let store = InMemoryHistory::new();
    let server = Server::start(&store, "127.0.0.1:0").await;
    let proxy = Proxy::start(server.addr).await;
    let follower = connect(&proxy.url, TransportKind::WebSockets, Protocol::Json, true).await;
    let publisher = connect(&server.url(), TransportKind::WebSockets, Protocol::Json, false).await;
    let group = "durable-overflow";

    let mut following = follower.follow::<String>("Subscribe", group);
    let epoch = subscribed(&mut following, 0).await;
    publish(&publisher, group, "m1").await;
    assert_eq!(next(&mut following).await, message(&epoch, 1, "m1"));

    proxy.cut_and_refuse();
    // m2 … m6: five missed, three kept (m4 … m6), so m2 is gone.
    for offset in 2..=6 {
        publish(&publisher, group, &format!("m{offset}")).await;
    }
    proxy.admit();

    assert_eq!(
        next(&mut following).await,
        FollowEvent::Subscribed {
            recovered: false,
            position: Position::new(&epoch, 6)
        }
    );
    publish(&publisher, group, "m7").await;
    assert_eq!(next(&mut following).await, message(&epoch, 7, "m7"));
    nothing_more(&mut following).await;
    follower.stop().await;
    publisher.stop().await;
}

/// Two servers on one history store; the follower's server dies and its URL now leads to the
/// other one: it resumes there, through a typed proxy, with nothing lost or doubled.
#[tokio::test]
async fn a_typed_following_resumes_on_another_server() {
    let store = InMemoryHistory::new();
    let one = Server::start(&store, "127.0.0.1:0").await;
    let two = Server::start(&store, "127.0.0.1:0").await;
    let proxy = Proxy::start(one.addr).await;
    let follower = connect(&proxy.url, TransportKind::WebSockets, Protocol::MessagePack, true).await;
    let publisher = connect(&two.url(), TransportKind::WebSockets, Protocol::MessagePack, false).await;
    let group = "durable-fleet";

    let calls = follower.clone();
    let mut following = Following::new(&follower, move |from| {
        contract::NewsProxy::new(&calls).subscribe(group.to_string(), from)
    });
    let epoch = subscribed(&mut following, 0).await;
    let hub = contract::NewsProxy::new(&publisher);
    let position = within("Publish", hub.publish(group.into(), "m1".into())).await.unwrap();
    assert_eq!(position, Position::new(&epoch, 1));
    assert_eq!(next(&mut following).await, message(&epoch, 1, "m1"));

    proxy.cut_and_refuse();
    one.shut_down().await;
    for text in ["m2", "m3"] {
        within("Publish", hub.publish(group.into(), text.into())).await.unwrap();
    }
    proxy.switch(two.addr);
    proxy.admit();

    assert_eq!(
        next(&mut following).await,
        FollowEvent::Subscribed {
            recovered: true,
            position: Position::new(&epoch, 3)
        }
    );
    assert_eq!(next(&mut following).await, message(&epoch, 2, "m2"));
    assert_eq!(next(&mut following).await, message(&epoch, 3, "m3"));
    within("Publish", hub.publish(group.into(), "m4".into())).await.unwrap();
    assert_eq!(next(&mut following).await, message(&epoch, 4, "m4"));
    nothing_more(&mut following).await;
    follower.stop().await;
    publisher.stop().await;
}

/// A position saved by an earlier run resumes there; one from a history that is gone says
/// not recovered.
#[tokio::test]
async fn resume_from_a_saved_position() {
    let store = InMemoryHistory::new();
    let server = Server::start(&store, "127.0.0.1:0").await;
    let connection = connect(&server.url(), TransportKind::WebSockets, Protocol::Json, false).await;
    let group = "durable-saved";
    let first = publish(&connection, group, "m1").await;
    publish(&connection, group, "m2").await;

    let mut following = connection
        .follow::<String>("Subscribe", group)
        .resume_from(first.clone());
    assert_eq!(
        next(&mut following).await,
        FollowEvent::Subscribed {
            recovered: true,
            position: Position::new(&first.epoch, 2)
        }
    );
    assert_eq!(next(&mut following).await, message(&first.epoch, 2, "m2"));

    let mut gone = connection
        .follow::<String>("Subscribe", group)
        .resume_from(Position::new("an epoch long gone", 1));
    assert_eq!(
        next(&mut gone).await,
        FollowEvent::Subscribed {
            recovered: false,
            position: Position::new(&first.epoch, 2)
        }
    );
    publish(&connection, group, "m3").await;
    assert_eq!(next(&mut gone).await, message(&first.epoch, 3, "m3"));
    assert_eq!(next(&mut following).await, message(&first.epoch, 3, "m3"));
    connection.stop().await;
}

/// The connection's end for good is the last item; a server error goes to the retry policy,
/// whose giving up ends the stream.
#[tokio::test]
async fn the_end_of_the_connection_and_a_refusing_server_end_it() {
    let store = InMemoryHistory::new();
    let server = Server::start(&store, "127.0.0.1:0").await;
    let connection = connect(&server.url(), TransportKind::WebSockets, Protocol::Json, false).await;

    // Not a durable group: the server fails the stream each time; one retry, then the end.
    let mut refused = connection
        .follow::<String>("Subscribe", "plain")
        .retry(Delays(vec![Duration::from_millis(10)]));
    for _ in 0..2 {
        match within("an error", refused.next()).await {
            Some(Err(Error::Hub(text))) => assert!(text.contains("error"), "{text}"),
            other => panic!("expected the server's error, got {other:?}"),
        }
    }
    assert!(within("the end", refused.next()).await.is_none());

    let mut following = connection.follow::<String>("Subscribe", "durable-end");
    subscribed(&mut following, 0).await;
    connection.stop().await;
    match within("the last item", following.next()).await {
        Some(Err(Error::ConnectionClosed(reason))) => assert_eq!(*reason, CloseReason::Stopped),
        other => panic!("expected the connection's end, got {other:?}"),
    }
    assert!(within("the end", following.next()).await.is_none());
}

/// A stream lost after its header but before the recovered messages resumes from the last
/// message yielded, not from the header's position (which is past the missed messages).
#[tokio::test]
async fn a_stream_lost_during_recovery_resumes_from_the_last_message() {
    let store = InMemoryHistory::new();
    let server = Server::start(&store, "127.0.0.1:0").await;
    let connection = connect(&server.url(), TransportKind::WebSockets, Protocol::Json, false).await;
    let calls: Arc<Mutex<Vec<Option<Position>>>> = Arc::default();
    let asked = calls.clone();
    let mut following = Following::<String>::new(&connection, move |from: Option<Position>| {
        let mut asked = asked.lock().unwrap();
        asked.push(from);
        let items = if asked.len() == 1 {
            // The header of a recovery from offset 1 (messages 2 and 3 would follow), then the
            // connection's end.
            vec![
                Ok(hub_client::RecoveryItem::Header(hub_client::RecoveryHeader {
                    recovered: true,
                    epoch: "e".into(),
                    offset: 3,
                })),
                Err(Error::ConnectionClosed(Box::new(CloseReason::Stopped))),
            ]
        } else {
            Vec::new()
        };
        futures_util::stream::iter(items).chain(futures_util::stream::pending())
    })
    .resume_from(Position::new("e", 1));
    assert_eq!(
        next(&mut following).await,
        FollowEvent::Subscribed {
            recovered: true,
            position: Position::new("e", 3)
        }
    );
    nothing_more(&mut following).await;
    assert_eq!(
        *calls.lock().unwrap(),
        [Some(Position::new("e", 1)), Some(Position::new("e", 1))]
    );
    connection.stop().await;
}

/// A stream the server completes ends the following; a message before any header is a
/// protocol error, handed to the retry policy (here: give up at once).
#[tokio::test]
async fn a_completed_stream_ends_it_and_a_headless_message_is_an_error() {
    let store = InMemoryHistory::new();
    let server = Server::start(&store, "127.0.0.1:0").await;
    let connection = connect(&server.url(), TransportKind::WebSockets, Protocol::Json, false).await;

    let mut completed = Following::<String>::new(&connection, |_from: Option<Position>| {
        futures_util::stream::iter([Ok(hub_client::RecoveryItem::Header(hub_client::RecoveryHeader {
            recovered: true,
            epoch: "e".into(),
            offset: 0,
        }))])
    });
    assert_eq!(
        next(&mut completed).await,
        FollowEvent::Subscribed {
            recovered: true,
            position: Position::new("e", 0)
        }
    );
    assert!(within("the end", completed.next()).await.is_none());

    let mut headless = Following::<String>::new(&connection, |_from: Option<Position>| {
        let item = hub_client::RecoveryMessage {
            offset: 1,
            message: "m1".to_string(),
        };
        futures_util::stream::iter([Ok(hub_client::RecoveryItem::Message(item))]).chain(futures_util::stream::pending())
    })
    .retry(Delays(Vec::new()));
    match within("an error", headless.next()).await {
        Some(Err(Error::Protocol(_))) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(within("the end", headless.next()).await.is_none());
    connection.stop().await;
}
