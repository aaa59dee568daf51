//! Typed calls through a contract (`hub_protocol::contract`): the proxy of a `#[hub_contract]`
//! and the handler of a `#[hub_client_contract]`, against a hub-runtime server whose hub and
//! client interface are checked against the same contract, on every transport and protocol.

mod common;

use common::{within, Events, TestServer};
use futures_util::StreamExt;
use hub_client::{Error, HubConnection, HubConnectionBuilder, Protocol, TransportKind};
use hub_runtime::prelude::*;
use hub_runtime::ClientStream;
use serde::{Deserialize, Serialize};

/// The contract, as a contract crate would hold it.
mod contract {
    use hub_protocol::contract::{hub_client_contract, hub_contract};

    use super::Point;

    /// A hub to call.
    #[hub_contract]
    pub trait Shapes {
        fn echo(&self, text: String) -> String;
        fn add(&self, a: i32, b: i32) -> i32;
        fn label(&self) -> String;
        fn mirror(&self, point: Point) -> Point;
        fn maybe(&self, present: bool) -> Option<String>;
        fn nothing(&self);
        fn fail(&self, message: String);
        fn count(&self, to: i32) -> impl Stream<Item = i32>;
        fn endless(&self) -> impl Stream<Item = i32>;
        fn join(&self, separator: String, parts: impl Stream<Item = String>) -> String;
        #[hub(name = "PokeMe")]
        fn poke(&self, text: String);
        fn ask(&self, question: String) -> String;
    }

    /// What the hub calls back.
    #[hub_client_contract]
    pub trait ShapesClient {
        fn poked(&self, text: String, times: i32);
        fn answer(&self, question: String) -> String;
    }
}

use contract::{ShapesClientHandler, ShapesProxy};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Point {
    x: i32,
    label: String,
}

#[hub_client(contract = contract::ShapesClient, handler)]
trait ShapesCallbacks {
    fn poked(&self, text: &str, times: i32);
    fn answer(&self, question: &str) -> String;
}

struct ShapesHub {
    events: Events,
}

#[hub(client = ShapesCallbacks, contract = contract::Shapes, proxy)]
impl ShapesHub {
    fn echo(&self, text: String) -> String {
        text
    }

    fn label(&self) -> &'static str {
        "shapes"
    }

    async fn add(&self, a: i32, b: i32) -> Result<i32, HubError> {
        Ok(a + b)
    }

    fn mirror(&self, point: Point) -> Point {
        point
    }

    fn maybe(&self, present: bool) -> Option<&'static str> {
        present.then_some("here")
    }

    fn nothing(&self) {}

    fn fail(&self, message: String) -> Result<(), HubError> {
        Err(HubError::new(message).with_kind("InvalidOperationException"))
    }

    fn count(&self, to: i32) -> impl Stream<Item = i32> {
        futures_util::stream::iter(0..to)
    }

    fn endless(&self, token: CancellationToken) -> impl Stream<Item = i32> {
        let events = self.events.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            events.push("endless cancelled");
        });
        futures_util::stream::pending()
    }

    async fn join(&self, separator: String, parts: ClientStream<String>) -> Result<String, HubError> {
        Ok(parts.collect_all().await?.join(&separator))
    }

    #[hub(name = "PokeMe")]
    async fn poke(&self, cx: &HubContext<Self>, text: String) -> Result<(), HubError> {
        cx.clients.caller().poked(&text, 2).await?;
        Ok(())
    }

    async fn ask(&self, cx: &HubContext<Self>, question: String) -> Result<String, HubError> {
        Ok(cx.clients.caller().answer(&question).await?)
    }
}

/// The client's handler: records what the hub called.
struct Recorder {
    events: Events,
}

impl ShapesClientHandler for Recorder {
    async fn poked(&self, text: String, times: i32) {
        self.events.push(format!("poked {text} {times}"));
    }

    async fn answer(&self, question: String) -> String {
        format!("{question}? yes")
    }
}

/// Every transport with every protocol it carries (Server-Sent Events are text only).
const PAIRS: [(TransportKind, Protocol); 5] = [
    (TransportKind::WebSockets, Protocol::Json),
    (TransportKind::WebSockets, Protocol::MessagePack),
    (TransportKind::ServerSentEvents, Protocol::Json),
    (TransportKind::LongPolling, Protocol::Json),
    (TransportKind::LongPolling, Protocol::MessagePack),
];

async fn server(events: Events) -> TestServer {
    TestServer::start(HubServer::builder().hub("/shapes", ShapesHub { events }).build()).await
}

async fn connect(server: &TestServer, (transport, protocol): (TransportKind, Protocol)) -> HubConnection {
    let connection = HubConnectionBuilder::new(server.url("/shapes"))
        .transports([transport])
        .protocol(protocol)
        .build()
        .unwrap();
    within("start", connection.start())
        .await
        .expect("the connection starts");
    connection
}

#[tokio::test]
async fn typed_calls_on_every_transport_and_protocol() {
    let events = Events::default();
    let server = server(events.clone()).await;
    for pair in PAIRS {
        let connection = connect(&server, pair).await;
        let hub = ShapesProxy::new(&connection);
        assert_eq!(
            within("echo", hub.echo("héllo ✓".into())).await.unwrap(),
            "héllo ✓",
            "{pair:?}"
        );
        assert_eq!(within("add", hub.add(2, 3)).await.unwrap(), 5);
        assert_eq!(within("label", hub.label()).await.unwrap(), "shapes");
        let point = Point {
            x: 7,
            label: "p".into(),
        };
        assert_eq!(within("mirror", hub.mirror(point.clone())).await.unwrap(), point);
        assert_eq!(within("maybe", hub.maybe(true)).await.unwrap().as_deref(), Some("here"));
        assert_eq!(within("maybe", hub.maybe(false)).await.unwrap(), None);
        within("nothing", hub.nothing()).await.unwrap();
        let error = within("fail", hub.fail("bad".into())).await.unwrap_err();
        assert!(
            matches!(&error, Error::Hub(text) if text.contains("'Fail'")),
            "{error:?}"
        );
        let counted: Vec<i32> = within("count", hub.count(4).map(Result::unwrap).collect()).await;
        assert_eq!(counted, [0, 1, 2, 3]);
        let parts = futures_util::stream::iter(["a", "b", "c"].map(String::from));
        assert_eq!(within("join", hub.join("-".into(), parts)).await.unwrap(), "a-b-c");
        connection.stop().await;
    }
}

#[tokio::test]
async fn dropping_a_typed_stream_cancels_it_on_the_server() {
    let events = Events::default();
    let server = server(events.clone()).await;
    let connection = connect(&server, PAIRS[0]).await;
    let hub = ShapesProxy::new(connection.clone());
    let stream = hub.endless();
    // The call reaches the server before it is dropped: a later call on the same connection
    // completes after it.
    within("echo", hub.echo("after".into())).await.unwrap();
    drop(stream);
    events.wait_for("endless cancelled").await;
    connection.stop().await;
}

#[tokio::test]
async fn the_handler_receives_calls_and_answers_client_results() {
    for pair in PAIRS {
        let events = Events::default();
        let server = server(Events::default()).await;
        let connection = HubConnectionBuilder::new(server.url("/shapes"))
            .transports([pair.0])
            .protocol(pair.1)
            .build()
            .unwrap();
        Recorder { events: events.clone() }.register(&connection);
        within("start", connection.start()).await.unwrap();
        let hub = ShapesProxy::new(&connection);
        within("poke", hub.poke("hi".into())).await.unwrap();
        events.wait_for("poked hi 2").await;
        assert_eq!(
            within("ask", hub.ask("ready".into())).await.unwrap(),
            "ready? yes",
            "{pair:?}"
        );
        connection.stop().await;
    }
}

/// A handler that cannot take the hub's arguments: the call is dropped (logged), the
/// connection keeps working, and a client result gets the decode error back.
#[tokio::test]
async fn arguments_that_do_not_decode_are_dropped_not_fatal() {
    #[hub_protocol::contract::hub_client_contract]
    pub trait Mismatched {
        fn poked(&self, text: i32, times: String);
        fn answer(&self, question: i32) -> String;
    }
    struct Wrong(Events);
    impl MismatchedHandler for Wrong {
        async fn poked(&self, _text: i32, _times: String) {
            self.0.push("decoded a mismatch");
        }
        async fn answer(&self, _question: i32) -> String {
            "never".into()
        }
    }
    let events = Events::default();
    let server = server(Events::default()).await;
    let connection = HubConnectionBuilder::new(server.url("/shapes")).build().unwrap();
    Wrong(events.clone()).register(&connection);
    within("start", connection.start()).await.unwrap();
    let hub = ShapesProxy::new(&connection);
    within("poke", hub.poke("hi".into())).await.unwrap();
    let error = within("ask", hub.ask("ready".into())).await.unwrap_err();
    assert!(
        matches!(&error, Error::Hub(text) if text.contains("argument 0")),
        "{error:?}"
    );
    assert_eq!(within("echo", hub.echo("still".into())).await.unwrap(), "still");
    assert!(events.snapshot().is_empty(), "{:?}", events.snapshot());
    connection.stop().await;
}

/// Without a contract: `#[hub(proxy)]` and `#[hub_client(handler)]` generate the same proxy
/// and handler for the server crate's own use (`ShapesHubProxy`, `ShapesCallbacksHandler`),
/// borrowed types owned.
#[tokio::test]
async fn hub_and_hub_client_generate_a_proxy_and_a_handler_in_their_own_crate() {
    struct Local(Events);
    impl ShapesCallbacksHandler for Local {
        async fn poked(&self, text: String, times: i32) {
            self.0.push(format!("local {text} {times}"));
        }
        async fn answer(&self, question: String) -> String {
            format!("{question}!")
        }
    }
    let events = Events::default();
    let server = server(Events::default()).await;
    for pair in PAIRS {
        let connection = HubConnectionBuilder::new(server.url("/shapes"))
            .transports([pair.0])
            .protocol(pair.1)
            .build()
            .unwrap();
        Local(events.clone()).register(&connection);
        within("start", connection.start()).await.unwrap();
        let hub = ShapesHubProxy::new(&connection);
        let label: String = within("label", hub.label()).await.unwrap();
        assert_eq!(label, "shapes", "{pair:?}");
        let maybe: Option<String> = within("maybe", hub.maybe(true)).await.unwrap();
        assert_eq!(maybe.as_deref(), Some("here"));
        let counted: Vec<i32> = within("count", hub.count(3).map(Result::unwrap).collect()).await;
        assert_eq!(counted, [0, 1, 2]);
        let parts = futures_util::stream::iter(["x", "y"].map(String::from));
        assert_eq!(within("join", hub.join("+".into(), parts)).await.unwrap(), "x+y");
        within("poke", hub.poke("yo".into())).await.unwrap();
        events.wait_for("local yo 2").await;
        assert_eq!(within("ask", hub.ask("sure".into())).await.unwrap(), "sure!");
        connection.stop().await;
    }
}
