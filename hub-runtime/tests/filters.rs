//! Async hub filters (`HubFilter::invoke`) over real loopback connections: a filter reads the
//! arguments and refuses, replaces a result, times a call and sees how it ended, chains with
//! others in order, costs only its call when it panics, wraps a streaming invocation, and
//! reads the caller's identity and items.

mod common;
mod msgpack_client;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Events, TestServer};
use hub_runtime::hub::filter::{
    HubFilter, InvocationContext, InvocationInfo, InvocationOutcome, InvocationResult, InvokeFuture, Next,
};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
use msgpack_client::MsgpackClient;
use serde_json::json;

#[derive(Clone, Debug)]
struct Nick(String);

/// Counts the calls its methods really ran.
struct Shop {
    ran: Arc<AtomicUsize>,
    /// Items `Count` streams have produced.
    made: Arc<AtomicUsize>,
}

#[hub]
impl Shop {
    fn add(&self, a: i32, b: i32) -> i32 {
        self.ran.fetch_add(1, Ordering::SeqCst);
        a + b
    }

    fn echo(&self, text: String) -> String {
        self.ran.fetch_add(1, Ordering::SeqCst);
        text
    }

    async fn slow(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    fn fail(&self) -> Result<i32, HubError> {
        Err(HubError::new("the secret reason"))
    }

    fn count(&self, to: u32) -> impl Stream<Item = u32> {
        self.ran.fetch_add(1, Ordering::SeqCst);
        let made = self.made.clone();
        futures_util::stream::iter(1..=to).inspect(move |_| {
            made.fetch_add(1, Ordering::SeqCst);
        })
    }

    fn checked_count(&self, to: u32) -> Result<impl Stream<Item = u32>, HubError> {
        if to > 10 {
            return Err(HubError::for_client("at most 10"));
        }
        Ok(futures_util::stream::iter(1..=to))
    }

    fn set_nick(&self, cx: &HubContext<Self>, nick: String) {
        cx.items().insert(Nick(nick));
    }

    fn whisper(&self, text: String) -> String {
        self.ran.fetch_add(1, Ordering::SeqCst);
        format!("psst: {text}")
    }
}

fn shop(ran: &Arc<AtomicUsize>) -> Shop {
    Shop {
        ran: ran.clone(),
        made: Arc::default(),
    }
}

/// Refuses `Add` with a negative first argument, and any call with more than two arguments.
struct NoNegatives;

impl HubFilter for NoNegatives {
    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        InvokeFuture::new(async move {
            if call.method() == "Add" {
                let a: i32 = match call.argument(0) {
                    Ok(a) => a,
                    Err(e) => return InvocationResult::error(HubError::for_client(format!("bad argument: {e}"))),
                };
                assert_eq!(call.argument_json(1).unwrap(), json!(call.argument::<i32>(1).unwrap()));
                assert_eq!(call.argument_count(), 2);
                assert!(call.argument::<i32>(2).is_err(), "there is no third argument");
                if a < 0 {
                    return InvocationResult::error(HubError::for_client(format!(
                        "negative numbers ({a}) are not allowed"
                    )));
                }
            }
            next.run().await
        })
    }
}

#[tokio::test]
async fn an_async_filter_sees_the_arguments_and_refuses_a_call() {
    let ran = Arc::new(AtomicUsize::new(0));
    let server = HubServer::builder()
        .hub_with("/shop", shop(&ran), EndpointOptions::new().filter(NoNegatives))
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/shop").await;
    assert_eq!(client.call_ok("Add", json!([2, 3])).await, 5);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        client.call_err("Add", json!([-2, 3])).await,
        "An unexpected error occurred invoking 'Add' on the server. HubException: negative numbers (-2) are not allowed"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the refused method did not run");
    // The filter decodes what the method would: a string where a number belongs is its error.
    let refused = client.call_err("Add", json!(["x", 3])).await;
    assert!(refused.contains("HubException: bad argument:"), "{refused}");
    assert_eq!(ran.load(Ordering::SeqCst), 1);

    // Protocol-independent: the same through MessagePack.
    let mut binary = MsgpackClient::connect(server.addr, "/shop").await;
    let completion = binary.call("Add", vec![(-7).into(), 1.into()]).await;
    assert_eq!(completion[3].as_u64(), Some(1), "an error: {completion}");
    assert_eq!(
        completion[4].as_str(),
        Some("An unexpected error occurred invoking 'Add' on the server. HubException: negative numbers (-7) are not allowed"),
        "{completion}"
    );
    let completion = binary.call("Add", vec![7.into(), 1.into()]).await;
    assert_eq!(completion[4].as_i64(), Some(8), "{completion}");
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    client.close().await;
}

/// Shouts `Echo`'s result, turns `Fail`'s error into -1, and answers `Add(0, 0)` itself.
struct Rewrite;

impl HubFilter for Rewrite {
    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        if call.method() == "Add" && call.argument::<i32>(0).ok() == Some(0) {
            return InvokeFuture::ready(InvocationResult::value("zero"));
        }
        InvokeFuture::new(async move {
            let result = next.run().await;
            match call.method() {
                "Echo" => match result.decode::<String>() {
                    Ok(Some(text)) => InvocationResult::value(text.to_uppercase()),
                    other => InvocationResult::error(HubError::new(format!("unexpected {other:?}"))),
                },
                "Fail" => {
                    let error = result.as_error().expect("the method failed");
                    assert_eq!(error.message(), "the secret reason");
                    assert_eq!(result.decode::<i32>().unwrap(), None);
                    InvocationResult::value(-1)
                }
                _ => result,
            }
        })
    }
}

#[tokio::test]
async fn an_async_filter_replaces_a_result_or_an_error() {
    let ran = Arc::new(AtomicUsize::new(0));
    let server = HubServer::builder()
        .hub_with("/shop", shop(&ran), EndpointOptions::new().filter(Rewrite))
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/shop").await;
    assert_eq!(client.call_ok("Echo", json!(["hello"])).await, "HELLO");
    assert_eq!(client.call_ok("Fail", json!([])).await, -1);
    assert_eq!(client.call_ok("Add", json!([0, 5])).await, "zero");
    assert_eq!(ran.load(Ordering::SeqCst), 1, "Add(0, _) was answered by the filter");
    assert_eq!(client.call_ok("Add", json!([1, 5])).await, 6);
    let mut binary = MsgpackClient::connect(server.addr, "/shop").await;
    let completion = binary.call("Echo", vec!["quiet".into()]).await;
    assert_eq!(completion[4].as_str(), Some("QUIET"), "{completion}");
    client.close().await;
}

/// Records each call's method, time and outcome (what it returned, or its error).
struct Stopwatch(Events);

impl HubFilter for Stopwatch {
    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        InvokeFuture::new(async move {
            let started = Instant::now();
            let result = next.run().await;
            let elapsed = started.elapsed();
            let outcome = match result.as_error() {
                Some(error) => format!("error {}", error.detail()),
                None => format!("ok {}", result.json().unwrap().unwrap_or(serde_json::Value::Null)),
            };
            self.0
                .push(format!("{} {outcome} in {}ms", call.method(), elapsed.as_millis()));
            result
        })
    }
}

#[tokio::test]
async fn an_async_filter_times_a_call_and_sees_how_it_ended() {
    let ran = Arc::new(AtomicUsize::new(0));
    let events = Events::default();
    let server = HubServer::builder()
        .filter(Stopwatch(events.clone()))
        .hub("/shop", shop(&ran))
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/shop").await;
    assert_eq!(client.call_ok("Slow", json!([60])).await, 60);
    let slow = events
        .wait_for("the slow call's record", |e| e.starts_with("Slow"))
        .await;
    let millis: u64 = slow
        .trim_start_matches("Slow ok 60 in ")
        .trim_end_matches("ms")
        .parse()
        .unwrap();
    assert!(millis >= 60, "{slow}");
    client.call_err("Fail", json!([])).await;
    events
        .wait_for("the failure's record", |e| {
            e.starts_with("Fail error Exception: the secret reason")
        })
        .await;
    client.call_err("Add", json!(["x", 1])).await;
    events
        .wait_for("the binding failure's record", |e| {
            e.starts_with("Add error InvalidDataException:")
        })
        .await;
    // A non-blocking invocation (no reply) is timed and read too.
    client.send_invocation("Echo", json!(["fire and forget"])).await;
    events
        .wait_for("the non-blocking call's record", |e| {
            e.starts_with("Echo ok \"fire and forget\"")
        })
        .await;
    assert_eq!(client.call_ok("Echo", json!(["still here"])).await, "still here");
    client.close().await;
}

/// Logs its way in and out, and tags string results with its name.
struct Layer(&'static str, Events);

impl HubFilter for Layer {
    fn before_invoke(&self, call: &InvocationInfo) -> Result<(), HubError> {
        self.1.push(format!("{} before {}", self.0, call.method));
        Ok(())
    }

    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        InvokeFuture::new(async move {
            self.1.push(format!("{} in {}", self.0, call.method()));
            let result = next.run().await;
            self.1.push(format!("{} out {}", self.0, call.method()));
            match result.decode::<String>() {
                Ok(Some(text)) => InvocationResult::value(format!("{text}|{}", self.0)),
                _ => result,
            }
        })
    }

    fn after_invoke(&self, call: &InvocationInfo, outcome: &InvocationOutcome) {
        self.1
            .push(format!("{} after {} failed={}", self.0, call.method, outcome.failed));
    }
}

/// Only the synchronous hooks, between the two async layers.
struct SyncOnly(Events);

impl HubFilter for SyncOnly {
    fn before_invoke(&self, call: &InvocationInfo) -> Result<(), HubError> {
        self.0.push(format!("sync before {}", call.method));
        if call.method == "Fail" {
            return Err(HubError::for_client("sync says no"));
        }
        Ok(())
    }

    fn after_invoke(&self, call: &InvocationInfo, outcome: &InvocationOutcome) {
        self.0
            .push(format!("sync after {} failed={}", call.method, outcome.failed));
    }
}

#[tokio::test]
async fn filters_chain_global_first_each_wrapping_the_next() {
    let ran = Arc::new(AtomicUsize::new(0));
    let events = Events::default();
    let server = HubServer::builder()
        .filter(Layer("global", events.clone()))
        .hub_with(
            "/shop",
            shop(&ran),
            EndpointOptions::new()
                .filter(SyncOnly(events.clone()))
                .filter(Layer("hub", events.clone())),
        )
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/shop").await;
    // The innermost filter tags first: the method's result, then each layer outwards.
    assert_eq!(client.call_ok("Echo", json!(["x"])).await, "x|hub|global");
    events
        .wait_for("the last after", |e| e == "global after Echo failed=false")
        .await;
    assert_eq!(
        events.snapshot(),
        [
            "global before Echo",
            "global in Echo",
            "sync before Echo",
            "hub before Echo",
            "hub in Echo",
            "hub out Echo",
            "hub after Echo failed=false",
            "sync after Echo failed=false",
            "global out Echo",
            "global after Echo failed=false",
        ]
    );
    // A refusal by an inner layer: the outer one sees it fail; the inner ones never run.
    assert_eq!(
        client.call_err("Fail", json!([])).await,
        "An unexpected error occurred invoking 'Fail' on the server. HubException: sync says no"
    );
    events
        .wait_for("the refusal's after", |e| e == "global after Fail failed=true")
        .await;
    let refused: Vec<String> = events.snapshot().into_iter().skip(10).collect();
    assert_eq!(
        refused,
        [
            "global before Fail",
            "global in Fail",
            "sync before Fail",
            "global out Fail",
            "global after Fail failed=true",
        ]
    );
    client.close().await;
}

/// Panics before the call for `Add`, after it for `Echo`.
struct Clumsy;

impl HubFilter for Clumsy {
    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        if call.method() == "Whisper" {
            panic!("clumsy before even starting");
        }
        InvokeFuture::new(async move {
            if call.method() == "Add" {
                tokio::task::yield_now().await;
                panic!("clumsy before the call");
            }
            let result = next.run().await;
            if call.method() == "Echo" {
                panic!("clumsy after the call");
            }
            result
        })
    }
}

#[tokio::test]
async fn a_panicking_async_filter_costs_only_its_call() {
    let ran = Arc::new(AtomicUsize::new(0));
    let server = HubServer::builder()
        .options(HubOptions {
            detailed_errors: true,
            ..Default::default()
        })
        .hub_with("/shop", shop(&ran), EndpointOptions::new().filter(Clumsy))
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/shop").await;
    assert_eq!(
        client.call_err("Add", json!([1, 2])).await,
        "An unexpected error occurred invoking 'Add' on the server. clumsy before the call"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(
        client.call_err("Echo", json!(["x"])).await,
        "An unexpected error occurred invoking 'Echo' on the server. clumsy after the call"
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the method ran; the filter failed after it"
    );
    assert_eq!(
        client.call_err("Whisper", json!(["x"])).await,
        "An unexpected error occurred invoking 'Whisper' on the server. clumsy before even starting"
    );
    // The connection keeps working, and a later panic of the method itself is its own.
    assert_eq!(client.call_ok("Slow", json!([1])).await, 1);
    for _ in 0..5 {
        client.call_err("Add", json!([1, 2])).await;
    }
    assert_eq!(client.call_ok("Slow", json!([2])).await, 2);
    client.close().await;
}

/// Refuses `Count` streams of more than 5 items, answers `Count(0)` with one item, and records what
/// it saw of each streaming call (and how many items were made by then).
struct StreamGate(Events, Arc<AtomicUsize>);

impl HubFilter for StreamGate {
    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        InvokeFuture::new(async move {
            let to: u32 = call.argument(0).unwrap_or(0);
            if call.method() == "Count" && to > 5 {
                return InvocationResult::error(HubError::for_client("streams are short here"));
            }
            if call.method() == "Count" && to == 0 {
                return InvocationResult::value(42);
            }
            let result = next.run().await;
            self.0.push(format!(
                "{} streaming={} stream={} error={:?} made={}",
                call.method(),
                call.is_streaming(),
                result.is_stream(),
                result.as_error().map(|e| e.message().to_string()),
                self.1.load(Ordering::SeqCst)
            ));
            result
        })
    }
}

/// Reads a stream's items and its completion.
async fn stream(
    client: &mut Client,
    id: &str,
    target: &str,
    arguments: serde_json::Value,
) -> (Vec<serde_json::Value>, serde_json::Value) {
    client
        .send(&json!({"type": 4, "invocationId": id, "target": target, "arguments": arguments}))
        .await;
    let mut items = Vec::new();
    loop {
        let message = client.recv_skip_pings().await;
        assert_eq!(message["invocationId"], id, "{message}");
        match message["type"].as_u64() {
            Some(2) => items.push(message["item"].clone()),
            Some(3) => return (items, message),
            _ => panic!("unexpected {message}"),
        }
    }
}

#[tokio::test]
async fn an_async_filter_wraps_the_call_that_returns_a_stream() {
    let ran = Arc::new(AtomicUsize::new(0));
    let events = Events::default();
    let shop = shop(&ran);
    let gate = StreamGate(events.clone(), shop.made.clone());
    let server = HubServer::builder()
        .options(HubOptions {
            max_streams_per_connection: 2,
            ..Default::default()
        })
        .hub_with("/shop", shop, EndpointOptions::new().filter(gate))
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/shop").await;
    let (items, done) = stream(&mut client, "s1", "Count", json!([3])).await;
    assert_eq!(items, [json!(1), json!(2), json!(3)]);
    assert!(done.get("error").is_none(), "{done}");
    // The filter had the stream before its first item was made.
    assert_eq!(
        events.snapshot(),
        ["Count streaming=true stream=true error=None made=0"]
    );
    // Refused: the method never runs, and the stream's id and slot are free again.
    for round in 0..4 {
        let (items, done) = stream(&mut client, &format!("r{round}"), "Count", json!([9])).await;
        assert!(items.is_empty());
        assert_eq!(
            done["error"],
            "An unexpected error occurred invoking 'Count' on the server. HubException: streams are short here"
        );
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // A value in place of the stream is its only item.
    let (items, done) = stream(&mut client, "s2", "Count", json!([0])).await;
    assert_eq!(items, [json!(42)]);
    assert!(done.get("error").is_none(), "{done}");
    // The method's refusal to stream reaches the filter as an error.
    let (items, done) = stream(&mut client, "s3", "CheckedCount", json!([5])).await;
    assert_eq!(items.len(), 5);
    assert!(done.get("error").is_none(), "{done}");
    let (items, done) = stream(&mut client, "s4", "CheckedCount", json!([11])).await;
    assert!(items.is_empty());
    assert_eq!(
        done["error"],
        "An unexpected error occurred invoking 'CheckedCount' on the server. HubException: at most 10"
    );
    events
        .wait_for("the method's own refusal", |e| {
            e == "CheckedCount streaming=true stream=false error=Some(\"at most 10\") made=3"
        })
        .await;
    assert_eq!(client.call_ok("Echo", json!(["after streams"])).await, "after streams");
    client.close().await;
}

/// Lets only admins whisper, and only once they chose a nickname (an item).
struct WhisperPolicy(Events);

impl HubFilter for WhisperPolicy {
    fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        InvokeFuture::new(async move {
            if call.method() == "Whisper" {
                let admin = call.identity().is_some_and(|identity| identity.is_in_role("admin"));
                let Some(Nick(nick)) = call.items().get::<Nick>() else {
                    return InvocationResult::error(HubError::for_client("choose a nickname first"));
                };
                self.0.push(format!(
                    "{} ({nick}, admin={admin}) on {}",
                    call.user_id().unwrap_or("anonymous"),
                    call.connection_id()
                ));
                if !admin {
                    return InvocationResult::error(HubError::for_client(format!("{nick} is no admin")));
                }
            }
            next.run().await
        })
    }
}

#[tokio::test]
async fn an_async_filter_reads_the_callers_identity_and_items() {
    let by_query = |request: &RequestContext| -> Result<Option<Identity>, AuthError> {
        let Some(user) = request.query("user") else {
            return Ok(None);
        };
        let mut identity = Identity::user(user);
        if let Some(role) = request.query("role") {
            identity = identity.with_claim("role", role);
        }
        Ok(Some(identity))
    };
    let ran = Arc::new(AtomicUsize::new(0));
    let events = Events::default();
    let server = HubServer::builder()
        .hub_with(
            "/shop",
            shop(&ran),
            EndpointOptions::new()
                .authenticator(by_query)
                .filter(WhisperPolicy(events.clone())),
        )
        .build();
    let server = TestServer::start(server).await;
    let mut admin = server.connect_with_query("/shop", "user=ada&role=admin").await;
    let mut guest = server.connect_with_query("/shop", "user=bob").await;
    assert_eq!(
        admin.call_err("Whisper", json!(["hi"])).await,
        "An unexpected error occurred invoking 'Whisper' on the server. HubException: choose a nickname first"
    );
    admin.call_ok("SetNick", json!(["countess"])).await;
    assert_eq!(admin.call_ok("Whisper", json!(["hi"])).await, "psst: hi");
    guest.call_ok("SetNick", json!(["bobby"])).await;
    assert_eq!(
        guest.call_err("Whisper", json!(["hi"])).await,
        "An unexpected error occurred invoking 'Whisper' on the server. HubException: bobby is no admin"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    let seen = events.snapshot();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].starts_with("ada (countess, admin=true) on "), "{seen:?}");
    assert!(seen[1].starts_with("bob (bobby, admin=false) on "), "{seen:?}");
    assert_ne!(
        seen[0].rsplit(' ').next(),
        seen[1].rsplit(' ').next(),
        "each sees its own connection id"
    );
    admin.close().await;
    guest.close().await;
}

/// A filter shared by value: `Arc<Mutex<..>>` state is how filters count.
#[derive(Clone, Default)]
struct Counting(Arc<Mutex<u32>>);

impl HubFilter for Counting {
    fn invoke<'a>(&'a self, _: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        *self.0.lock().unwrap() += 1;
        InvokeFuture::pass(next)
    }
}

#[tokio::test]
async fn a_passing_filter_sees_every_call_and_changes_nothing() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counting = Counting::default();
    let server = HubServer::builder()
        .filter(counting.clone())
        .hub("/shop", shop(&ran))
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/shop").await;
    assert_eq!(client.call_ok("Add", json!([1, 2])).await, 3);
    assert_eq!(
        client.call_err("Fail", json!([])).await,
        "An unexpected error occurred invoking 'Fail' on the server."
    );
    let (items, _) = stream(&mut client, "s", "Count", json!([2])).await;
    assert_eq!(items.len(), 2);
    assert_eq!(*counting.0.lock().unwrap(), 3);
    client.close().await;
}
