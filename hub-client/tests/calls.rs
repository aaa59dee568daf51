//! Calls through the client against a hub-runtime server on a loopback port, on every
//! transport in every protocol it carries: invoke, send, errors, streams (and their cancellation), uploads, handlers and
//! client results.

mod common;

use std::time::Duration;

use common::{within, Events, TestServer};
use futures_util::StreamExt;
use hub_client::{Error, HubConnection, HubConnectionBuilder, Protocol, TransportKind, Upload};
use hub_runtime::prelude::*;
use hub_runtime::{ClientStream, ConnectionError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Point {
    x: i32,
    label: String,
}

#[hub_client]
trait Callbacks {
    fn notify(&self, text: String, count: i32);
    fn result(&self) -> i64;
}

struct TestHub {
    events: Events,
}

#[hub(client = Callbacks)]
impl TestHub {
    fn echo(&self, message: String) -> String {
        message
    }

    fn add(&self, a: i32, b: i32) -> i32 {
        a + b
    }

    fn echo_point(&self, point: Point) -> Point {
        point
    }

    fn nothing(&self) {}

    fn transport(&self, cx: &HubContext<Self>) -> Option<&'static str> {
        cx.request().transport().map(hub_runtime::TransportKind::name)
    }

    fn record(&self, text: String) {
        self.events.push(format!("record {text}"));
    }

    fn fail(&self, message: String) -> Result<(), HubError> {
        Err(HubError::new(message).with_kind("InvalidOperationException"))
    }

    fn panicky(&self) -> i32 {
        panic!("boom")
    }

    fn counter(&self, count: i32) -> impl Stream<Item = i32> {
        futures_util::stream::iter(0..count)
    }

    fn endless(&self, token: CancellationToken) -> impl Stream<Item = i32> {
        let events = self.events.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            events.push("endless cancelled");
        });
        futures_util::stream::pending()
    }

    fn failing_stream(&self) -> impl Stream<Item = Result<i32, HubError>> {
        futures_util::stream::iter([
            Ok(1),
            Err(HubError::new("stream broke").with_kind("InvalidOperationException")),
        ])
    }

    async fn concat(&self, prefix: String, items: ClientStream<String>) -> Result<String, HubError> {
        Ok(format!("{prefix}{}", items.collect_all().await?.concat()))
    }

    async fn sum_two(&self, a: ClientStream<i32>, b: ClientStream<i32>) -> Result<i32, HubError> {
        let (a, b) = (a.collect_all().await?, b.collect_all().await?);
        Ok(a.iter().sum::<i32>() + b.iter().sum::<i32>())
    }

    #[hub(on_disconnected)]
    fn gone(&self, cx: &HubContext<Self>, _error: Option<ConnectionError>) {
        self.events.push(format!("disconnected {}", cx.connection_id()));
    }

    async fn call_me(&self, cx: &HubContext<Self>, text: String) -> Result<(), HubError> {
        cx.clients.caller().notify(text, 3).await?;
        Ok(())
    }
}

async fn server(detailed_errors: bool, events: Events) -> TestServer {
    let options = HubOptions {
        detailed_errors,
        ..Default::default()
    };
    TestServer::start(
        HubServer::builder()
            .options(options)
            .hub("/hub", TestHub { events })
            .build(),
    )
    .await
}

/// A transport and a protocol.
type Pair = (TransportKind, Protocol);

fn builder(server: &TestServer, (transport, protocol): Pair) -> HubConnectionBuilder {
    HubConnectionBuilder::new(server.url("/hub"))
        .transports([transport])
        .protocol(protocol)
}

async fn connect(server: &TestServer, pair: Pair) -> HubConnection {
    let connection = builder(server, pair).build().unwrap();
    within("start", connection.start())
        .await
        .expect("the connection starts");
    connection
}

/// Every transport with every protocol it carries (Server-Sent Events are text only).
const PAIRS: [Pair; 5] = [
    (TransportKind::WebSockets, Protocol::Json),
    (TransportKind::WebSockets, Protocol::MessagePack),
    (TransportKind::ServerSentEvents, Protocol::Json),
    (TransportKind::LongPolling, Protocol::Json),
    (TransportKind::LongPolling, Protocol::MessagePack),
];

#[tokio::test]
async fn invoke_returns_results_on_every_transport_and_protocol() {
    let server = server(false, Events::default()).await;
    for pair in PAIRS {
        let connection = connect(&server, pair).await;
        let echoed: String = within("echo", connection.invoke("Echo", ("héllo ✓",))).await.unwrap();
        assert_eq!(echoed, "héllo ✓", "{pair:?}");
        let sum: i32 = within("add", connection.invoke("add", vec![2, 3])).await.unwrap();
        assert_eq!(sum, 5);
        let point = Point {
            x: 7,
            label: "p".into(),
        };
        let back: Point = within("point", connection.invoke("EchoPoint", (point.clone(),)))
            .await
            .unwrap();
        assert_eq!(back, point);
        let () = within("nothing", connection.invoke("Nothing", ())).await.unwrap();
        let none: Option<i32> = within("nothing", connection.invoke("Nothing", ())).await.unwrap();
        assert_eq!(none, None);
        let wrong: Result<i32, Error> = within("wrong type", connection.invoke("Echo", ("x",))).await;
        assert!(matches!(wrong, Err(Error::Decode(_))), "{wrong:?}");
        assert!(connection.connection_id().is_some());
        let transport: Option<String> = within("transport", connection.invoke("Transport", ())).await.unwrap();
        assert_eq!(transport.as_deref(), Some(pair.0.name()));
        connection.stop().await;
    }
}

#[tokio::test]
async fn send_reaches_the_hub_without_a_reply() {
    let events = Events::default();
    let server = server(false, events.clone()).await;
    for pair in PAIRS {
        let connection = connect(&server, pair).await;
        let text = format!("{pair:?}");
        connection.send("Record", (&text,)).await.unwrap();
        events.wait_for(&format!("record {text}")).await;
        // A failing non-blocking call gets no reply either: the next call still gets its own.
        connection.send("Fail", ("quiet",)).await.unwrap();
        let echoed: String = within("echo", connection.invoke("Echo", ("after",))).await.unwrap();
        assert_eq!(echoed, "after");
        connection.stop().await;
    }
}

#[tokio::test]
async fn hub_errors_carry_the_servers_text() {
    for detailed in [false, true] {
        let server = server(detailed, Events::default()).await;
        for pair in PAIRS {
            let connection = connect(&server, pair).await;
            let error = within("fail", connection.invoke::<()>("Fail", ("bad input",)))
                .await
                .unwrap_err();
            let base = "An unexpected error occurred invoking 'Fail' on the server.";
            let expected = if detailed {
                format!("{base} InvalidOperationException: bad input")
            } else {
                base.to_string()
            };
            assert_eq!(error, Error::Hub(expected));
            assert_eq!(error.to_string(), error_text(&error));
            let error = within("panic", connection.invoke::<i32>("Panicky", ()))
                .await
                .unwrap_err();
            let Error::Hub(text) = error else { panic!("{error:?}") };
            assert!(
                text.starts_with("An unexpected error occurred invoking 'Panicky' on the server."),
                "{text}"
            );
            assert_eq!(text.contains("boom"), detailed, "{text}");
            let error = within("unknown", connection.invoke::<i32>("NoSuchMethod", ()))
                .await
                .unwrap_err();
            let Error::Hub(text) = error else { panic!("{error:?}") };
            assert!(
                text.starts_with("Failed to invoke 'NoSuchMethod' due to an error on the server."),
                "{text}"
            );
            connection.stop().await;
        }
    }
}

fn error_text(error: &Error) -> String {
    match error {
        Error::Hub(text) => text.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn streams_yield_items_then_end_or_fail() {
    let server = server(true, Events::default()).await;
    for pair in PAIRS {
        let connection = connect(&server, pair).await;
        let items: Vec<i32> = within(
            "counter",
            connection.stream::<i32>("Counter", (4,)).map(Result::unwrap).collect(),
        )
        .await;
        assert_eq!(items, [0, 1, 2, 3]);
        let empty: Vec<_> = within("empty", connection.stream::<i32>("Counter", (0,)).collect()).await;
        assert!(empty.is_empty());
        let results: Vec<_> = within("failing", connection.stream::<i32>("FailingStream", ()).collect()).await;
        assert_eq!(results[0], Ok(1));
        let Err(Error::Hub(text)) = &results[1] else {
            panic!("{results:?}")
        };
        assert!(text.contains("stream broke"), "{text}");
        assert_eq!(results.len(), 2);
        connection.stop().await;
    }
}

#[tokio::test]
async fn dropping_a_stream_cancels_it_on_the_server() {
    for pair in PAIRS {
        let events = Events::default();
        let server = server(false, events.clone()).await;
        let connection = connect(&server, pair).await;
        let mut endless = connection.stream::<i32>("Endless", ());
        assert!(tokio::time::timeout(Duration::from_millis(100), endless.next())
            .await
            .is_err());
        drop(endless);
        events.wait_for("endless cancelled").await;
        // The connection goes on.
        let echoed: String = within("echo", connection.invoke("Echo", ("still here",)))
            .await
            .unwrap();
        assert_eq!(echoed, "still here");
        connection.stop().await;
    }
}

#[tokio::test]
async fn uploads_feed_the_methods_stream_parameters() {
    let server = server(true, Events::default()).await;
    for pair in PAIRS {
        let connection = connect(&server, pair).await;
        let words = futures_util::stream::iter(["a", "b", "c"]);
        let joined: String = within(
            "concat",
            connection.invoke_with_uploads("Concat", ("x:",), [Upload::new(words)]),
        )
        .await
        .unwrap();
        assert_eq!(joined, "x:abc");

        // Two uploads, the second one slow: each goes under its own stream id.
        let slow = futures_util::stream::iter([10, 20]).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            n
        });
        let uploads = [Upload::new(futures_util::stream::iter([1, 2])), Upload::new(slow)];
        let sum: i32 = within("sum", connection.invoke_with_uploads("SumTwo", (), uploads))
            .await
            .unwrap();
        assert_eq!(sum, 33);

        // An upload that fails ends the server's reader with its text.
        let failing = futures_util::stream::iter([Ok("a"), Err("the source broke")]);
        let error = within(
            "failing upload",
            connection.invoke_with_uploads::<String>("Concat", ("",), [Upload::fallible(failing)]),
        )
        .await
        .unwrap_err();
        let Error::Hub(text) = error else { panic!("{error:?}") };
        assert!(text.contains("the source broke"), "{text}");
        connection.stop().await;
    }
}

#[tokio::test]
async fn handlers_receive_the_servers_invocations() {
    let server = server(false, Events::default()).await;
    for pair in PAIRS {
        let connection = builder(&server, pair).build().unwrap();
        let received = Events::default();
        let seen = received.clone();
        // Handler names are case-insensitive, as in the official clients.
        connection.on("notify", move |args| {
            let seen = seen.clone();
            async move {
                let text: String = args.get(0).unwrap();
                let count: i32 = args.get(1).unwrap();
                assert!(args.get::<String>(2).is_err());
                seen.push(format!("{text} {count}"));
            }
        });
        within("start", connection.start()).await.unwrap();
        let () = within("call me", connection.invoke("CallMe", ("hi",))).await.unwrap();
        received.wait_for("hi 3").await;
        connection.stop().await;
    }
}

#[tokio::test]
async fn client_results_answer_the_servers_invocation() {
    let server = server(false, Events::default()).await;
    let handle = server.server.handle::<TestHub>().expect("mapped");
    for pair in PAIRS {
        // No handler: the server hears that the client gave no result.
        let connection = connect(&server, pair).await;
        let id = connection.connection_id().unwrap();
        let error = within("no handler", handle.clients.client(id.clone()).result())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("Client didn't provide a result."), "{error}");

        // A plain handler gives no result either.
        connection.on("Result", |_| async {});
        let error = within("plain handler", handle.clients.client(id.clone()).result())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("Client didn't provide a result."), "{error}");
        connection.remove("result");

        connection.on_result("result", |args| async move {
            assert!(args.is_empty());
            Ok::<_, String>(42_i64)
        });
        let value = within("value", handle.clients.client(id.clone()).result())
            .await
            .unwrap();
        assert_eq!(value, 42);

        connection.remove("Result");
        connection.on_result("Result", |_| async { Err::<i64, _>("Error: from callback") });
        let error = within("error", handle.clients.client(id.clone()).result())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("Error: from callback"), "{error}");
        connection.stop().await;
    }
}

#[tokio::test]
async fn calls_fail_when_not_connected() {
    let server = server(false, Events::default()).await;
    let connection = HubConnectionBuilder::new(server.url("/hub")).build().unwrap();
    assert_eq!(
        connection.invoke::<String>("Echo", ("x",)).await,
        Err(Error::NotConnected)
    );
    assert_eq!(connection.send("Echo", ("x",)).await, Err(Error::NotConnected));
    let items: Vec<_> = connection.stream::<i32>("Counter", (1,)).collect().await;
    assert_eq!(items, [Err(Error::NotConnected)]);
    within("start", connection.start()).await.unwrap();
    assert!(matches!(connection.start().await, Err(Error::InvalidState(_))));
    connection.stop().await;
    assert_eq!(
        connection.invoke::<String>("Echo", ("x",)).await,
        Err(Error::NotConnected)
    );
    // A stopped connection starts again.
    within("restart", connection.start()).await.unwrap();
    let echoed: String = within("echo", connection.invoke("Echo", ("again",))).await.unwrap();
    assert_eq!(echoed, "again");
    connection.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_fails_its_result_and_later_ones_still_run() {
    let server = server(false, Events::default()).await;
    let handle = server.server.handle::<TestHub>().expect("mapped");
    let connection = connect(&server, PAIRS[0]).await;
    let id = connection.connection_id().unwrap();
    connection.on_result("Result", |_| async {
        if true {
            panic!("handler bug")
        }
        Ok::<i64, String>(1)
    });
    let error = within("panicked", handle.clients.client(id.clone()).result())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("the client's handler panicked"), "{error}");
    connection.remove("Result");
    connection.on_result("Result", |_| async { Ok::<i64, String>(7) });
    assert_eq!(within("after", handle.clients.client(id).result()).await.unwrap(), 7);
    connection.stop().await;
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let events = Events::default();
    let server = server(false, events.clone()).await;
    let connection = connect(&server, PAIRS[0]).await;
    // Handlers (and the task that runs them) do not keep the connection open.
    connection.on_result("Result", |_| async { Ok::<i64, String>(1) });
    let id = connection.connection_id().unwrap();
    let clone = connection.clone();
    drop(connection);
    let echoed: String = within("echo", clone.invoke("Echo", ("one left",))).await.unwrap();
    assert_eq!(echoed, "one left");
    drop(clone);
    events.wait_for(&format!("disconnected {id}")).await;
}
