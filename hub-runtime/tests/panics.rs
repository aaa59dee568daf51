//! A panic in user code costs one call, never a connection: hub methods (sync and async),
//! streams while polled, client-stream consumers, filters, `on_connected` and
//! `on_disconnected`. The caller gets the standard Completion error (with the panic's message
//! when detailed errors are on), the connection and every other one keep working, and a
//! closed connection is counted out.

mod common;

use common::{eventually, Client, Events, TestServer};
use hub_runtime::hub::filter::{ConnectionInfo, HubFilter, InvocationInfo, InvocationOutcome};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
use serde_json::{json, Value};

struct Fragile;

#[hub]
impl Fragile {
    #[hub(on_connected)]
    fn connected(&self, cx: &HubContext<Self>) {
        if cx.request().query("boom") == Some("connect") {
            panic!("no connecting today");
        }
    }

    #[hub(on_disconnected)]
    fn disconnected(&self, cx: &HubContext<Self>) {
        if cx.request().query("boom") == Some("disconnect") {
            panic!("no leaving today");
        }
    }

    fn echo(&self, message: String) -> String {
        message
    }

    fn divide(&self, a: i32, b: i32) -> i32 {
        a / b
    }

    async fn divide_later(&self, a: i32, b: i32) -> i32 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        a / b
    }

    /// Panics with a formatted message (a `String` payload).
    fn explode(&self, what: String) {
        panic!("boom: {what}");
    }

    /// Panics with a payload that is not text.
    fn explode_quietly(&self) {
        std::panic::panic_any(42_u32);
    }

    /// Counts down from `from`, and panics instead of yielding 0.
    fn countdown(&self, from: u32) -> impl Stream<Item = u32> {
        futures_util::stream::iter((0..=from).rev()).map(|n| {
            assert!(n > 0, "the countdown reached zero");
            n
        })
    }

    /// Panics before it has a stream to return.
    fn no_stream(&self) -> impl Stream<Item = u32> {
        panic!("no stream for you");
        #[allow(unreachable_code)]
        futures_util::stream::empty()
    }

    /// Adds what the client streams; panics on 13.
    async fn sum(&self, numbers: ClientStream<i32>) -> i32 {
        let mut numbers = numbers;
        let mut total = 0;
        while let Some(n) = numbers.next().await {
            let n = n.unwrap_or(0);
            assert!(n != 13, "unlucky number");
            total += n;
        }
        total
    }

    /// Asks the caller for a number (a client result), read by a `Deserialize` that panics
    /// on 13.
    async fn ask(&self, cx: &HubContext<Self>) -> Result<u32, HubError> {
        let picked: Touchy = cx
            .clients
            .caller()
            .invoke("Pick", &hub_runtime::protocol::NoArgs)
            .await
            .map_err(|e| HubError::new(e.to_string()))?;
        Ok(picked.0)
    }

    /// Its filter panics before it runs.
    fn guarded(&self) -> u32 {
        1
    }

    /// Its filter panics after it ran.
    fn audited(&self) -> u32 {
        2
    }
}

/// A number whose reading panics on 13.
struct Touchy(u32);

impl<'de> serde::Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(deserializer)?;
        assert!(n != 13, "unlucky result");
        Ok(Touchy(n))
    }
}

/// Panics in the hooks named by the request or the method.
struct PanickyFilter;

impl HubFilter for PanickyFilter {
    fn before_invoke(&self, call: &InvocationInfo) -> Result<(), HubError> {
        assert!(call.method != "Guarded", "the filter refuses by panicking");
        Ok(())
    }

    fn after_invoke(&self, call: &InvocationInfo, _: &InvocationOutcome) {
        assert!(call.method != "Audited", "the filter panics afterwards");
    }

    fn on_connected(&self, connection: &ConnectionInfo) -> Result<(), HubError> {
        assert!(!connection.connection_id.is_empty(), "a connection has an id");
        Ok(())
    }
}

/// Panics when any connection connects or disconnects (for its own endpoint).
struct ExplosiveConnectFilter;

impl HubFilter for ExplosiveConnectFilter {
    fn on_connected(&self, _: &ConnectionInfo) -> Result<(), HubError> {
        panic!("the filter refuses the connection by panicking");
    }
}

struct ExplosiveDisconnectFilter;

impl HubFilter for ExplosiveDisconnectFilter {
    fn on_disconnected(&self, _: &ConnectionInfo, _: Option<&ConnectionError>) {
        panic!("the filter panics on the way out");
    }
}

/// Records how each invocation ended, as `after_invoke` sees it.
#[derive(Clone, Default)]
struct Outcomes(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl HubFilter for Outcomes {
    fn after_invoke(&self, call: &InvocationInfo, outcome: &InvocationOutcome) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} failed={}", call.method, outcome.failed));
    }
}

async fn server(detailed_errors: bool) -> TestServer {
    let server = HubServer::builder()
        .options(HubOptions {
            detailed_errors,
            ..Default::default()
        })
        .hub_with("/fragile", Fragile, EndpointOptions::new().filter(PanickyFilter))
        .hub_with(
            "/refusing",
            Fragile,
            EndpointOptions::new().filter(ExplosiveConnectFilter),
        )
        .hub_with(
            "/leaving",
            Fragile,
            EndpointOptions::new().filter(ExplosiveDisconnectFilter),
        )
        .build();
    TestServer::start(server).await
}

const DIVIDE_FAILED: &str = "An unexpected error occurred invoking 'Divide' on the server.";

async fn all_closed(server: &TestServer) {
    eventually("every connection is counted out", || {
        server.server.connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn twenty_panicking_calls_cost_twenty_calls_and_not_the_connection() {
    let server = server(false).await;
    let mut client = server.connect("/fragile").await;
    let mut bystander = server.connect("/fragile").await;
    for i in 0..20 {
        let method = if i % 2 == 0 { "Divide" } else { "DivideLater" };
        let error = client.call_err(method, json!([i, 0])).await;
        assert_eq!(
            error,
            format!("An unexpected error occurred invoking '{method}' on the server.")
        );
    }
    assert_eq!(client.call_ok("Divide", json!([7, 2])).await, 3);
    assert_eq!(client.call_ok("Echo", json!(["still here"])).await, "still here");
    assert_eq!(bystander.call_ok("Echo", json!(["me too"])).await, "me too");
    assert_eq!(server.server.connection_count(), 2);
    client.close().await;
    drop(bystander);
    all_closed(&server).await;
}

#[tokio::test]
async fn a_non_blocking_panicking_invocation_is_answered_by_nothing_and_costs_nothing() {
    let server = server(false).await;
    let mut client = server.connect("/fragile").await;
    client.send_invocation("Divide", json!([1, 0])).await;
    assert_eq!(client.call_ok("Echo", json!(["next"])).await, "next");
    client.close().await;
    all_closed(&server).await;
}

#[tokio::test]
async fn detailed_errors_carry_the_panic_message() {
    let server = server(true).await;
    let mut client = server.connect("/fragile").await;
    assert_eq!(
        client.call_err("Divide", json!([1, 0])).await,
        format!("{DIVIDE_FAILED} attempt to divide by zero")
    );
    assert_eq!(
        client.call_err("divide", json!([1, 0])).await,
        "An unexpected error occurred invoking 'divide' on the server. attempt to divide by zero",
        "the target is quoted as the client sent it"
    );
    assert_eq!(
        client.call_err("Explode", json!(["x"])).await,
        "An unexpected error occurred invoking 'Explode' on the server. boom: x"
    );
    assert_eq!(
        client.call_err("ExplodeQuietly", json!([])).await,
        "An unexpected error occurred invoking 'ExplodeQuietly' on the server. The panic carried no message."
    );
    assert_eq!(client.call_ok("Echo", json!(["ok"])).await, "ok");
    client.close().await;
    all_closed(&server).await;
}

/// Starts stream `id` of `target` and reads its items up to its Completion.
async fn stream(client: &mut Client, id: &str, target: &str, arguments: Value) -> (Vec<Value>, Value) {
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
async fn a_stream_that_panics_ends_with_a_completion_error() {
    for detailed in [false, true] {
        let server = server(detailed).await;
        let mut client = server.connect("/fragile").await;
        let (items, end) = stream(&mut client, "s1", "Countdown", json!([3])).await;
        assert_eq!(items, vec![json!(3), json!(2), json!(1)]);
        let expected = if detailed {
            "An error occurred on the server while streaming results. the countdown reached zero"
        } else {
            "An error occurred on the server while streaming results."
        };
        assert_eq!(end["error"], expected, "{end}");

        let (items, end) = stream(&mut client, "s2", "NoStream", json!([])).await;
        assert!(items.is_empty());
        let expected = if detailed {
            "An unexpected error occurred invoking 'NoStream' on the server. no stream for you"
        } else {
            "An unexpected error occurred invoking 'NoStream' on the server."
        };
        assert_eq!(end["error"], expected, "{end}");

        // The streams are forgotten: the ids may be used again.
        let (items, _) = stream(&mut client, "s1", "Countdown", json!([1])).await;
        assert_eq!(items, vec![json!(1)]);
        assert_eq!(client.call_ok("Echo", json!(["after streams"])).await, "after streams");
        client.close().await;
        all_closed(&server).await;
    }
}

#[tokio::test]
async fn a_client_stream_consumer_that_panics_fails_its_call_only() {
    let server = server(false).await;
    let mut client = server.connect("/fragile").await;
    client
        .send(&json!({"type": 1, "invocationId": "u1", "target": "Sum", "arguments": [], "streamIds": ["up"]}))
        .await;
    for n in [1, 2, 13] {
        client.send(&json!({"type": 2, "invocationId": "up", "item": n})).await;
    }
    let reply = client.recv_skip_pings().await;
    assert_eq!(reply["invocationId"], "u1", "{reply}");
    assert_eq!(
        reply["error"],
        "An unexpected error occurred invoking 'Sum' on the server."
    );
    // Items for the dead stream are ignored; the connection carries on.
    client.send(&json!({"type": 2, "invocationId": "up", "item": 4})).await;
    client.send(&json!({"type": 3, "invocationId": "up"})).await;
    assert_eq!(client.call_ok("Echo", json!(["fine"])).await, "fine");
    client.close().await;
    all_closed(&server).await;
}

#[tokio::test]
async fn a_panicking_filter_fails_the_call_it_guards() {
    let server = server(true).await;
    let mut client = server.connect("/fragile").await;
    assert_eq!(
        client.call_err("Guarded", json!([])).await,
        "An unexpected error occurred invoking 'Guarded' on the server. the filter refuses by panicking"
    );
    // A panic after the method ran loses nothing: the result was already there.
    assert_eq!(client.call_ok("Audited", json!([])).await, 2);
    assert_eq!(client.call_ok("Echo", json!(["on"])).await, "on");
    client.close().await;
    all_closed(&server).await;
}

#[tokio::test]
async fn a_panic_in_on_connected_fails_the_connection_like_a_refusal() {
    for detailed in [false, true] {
        let server = server(detailed).await;
        let mut refused = Client::connect(server.addr, "/fragile", "boom=connect").await;
        let close = refused.expect_close_message().await;
        let expected = if detailed {
            "Connection closed with an error. no connecting today"
        } else {
            "Connection closed with an error."
        };
        assert_eq!(close["error"], expected, "{close}");
        let mut by_filter = server.connect("/refusing").await;
        let close = by_filter.expect_close_message().await;
        assert!(
            close["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Connection closed with an error.")),
            "{close}"
        );
        let mut fine = server.connect("/fragile").await;
        assert_eq!(fine.call_ok("Echo", json!(["hi"])).await, "hi");
        fine.close().await;
        all_closed(&server).await;
    }
}

#[tokio::test]
async fn a_panic_in_on_disconnected_still_counts_the_connection_out() {
    let server = server(false).await;
    for _ in 0..5 {
        let mut leaving = Client::connect(server.addr, "/fragile", "boom=disconnect").await;
        assert_eq!(leaving.call_ok("Echo", json!(["bye"])).await, "bye");
        leaving.close().await;
        let mut by_filter = server.connect("/leaving").await;
        assert_eq!(by_filter.call_ok("Echo", json!(["bye"])).await, "bye");
        drop(by_filter);
    }
    all_closed(&server).await;
    let mut fine = server.connect("/fragile").await;
    assert_eq!(fine.call_ok("Echo", json!(["hi"])).await, "hi");
}

/// A connection handler that panics once it read a frame (no hub around it to catch that).
async fn crashing(mut connection: hub_runtime::Connection) {
    let _ = connection.recv().await;
    panic!("the raw handler crashed");
}

#[tokio::test]
async fn a_connection_whose_handler_task_panics_is_counted_out() {
    let server = TestServer::start(HubServer::builder().connection("/crash", crashing).build()).await;
    for _ in 0..3 {
        let negotiated = server.negotiate("/crash", "negotiateVersion=1").await;
        let token = negotiated.json()["connectionToken"]
            .as_str()
            .expect("a connectionToken")
            .to_string();
        let mut client = Client::open(&server.ws_url(&format!("/crash?id={token}")))
            .await
            .expect("the WebSocket opens");
        eventually("the connection is counted", || server.server.connection_count() == 1).await;
        client.send_text("anything").await;
        all_closed(&server).await;
    }
}

#[tokio::test]
async fn a_panic_while_reading_a_client_result_fails_the_call_that_asked() {
    let server = server(false).await;
    let mut client = server.connect("/fragile").await;
    for (picked, expected) in [(13, None), (7, Some(7))] {
        let asked = client.invoke("Ask", json!([])).await;
        let question = client.recv_skip_pings().await;
        assert_eq!(question["target"], "Pick", "{question}");
        client
            .send(&json!({"type": 3, "invocationId": question["invocationId"], "result": picked}))
            .await;
        let reply = client.recv_skip_pings().await;
        assert_eq!(reply["invocationId"], asked.as_str(), "{reply}");
        match expected {
            Some(n) => assert_eq!(reply["result"], n, "{reply}"),
            None => assert_eq!(
                reply["error"], "An unexpected error occurred invoking 'Ask' on the server.",
                "{reply}"
            ),
        }
    }
    assert_eq!(client.call_ok("Echo", json!(["after"])).await, "after");
    client.close().await;
    all_closed(&server).await;
}

#[tokio::test]
async fn filters_see_a_panicked_or_failed_call_as_failed() {
    let outcomes = Outcomes::default();
    let server = HubServer::builder()
        .hub_with("/watched", Fragile, EndpointOptions::new().filter(outcomes.clone()))
        .build();
    let server = TestServer::start(server).await;
    let mut client = server.connect("/watched").await;
    client.call_err("Divide", json!([1, 0])).await;
    client.call_err("Divide", json!(["not a number", 0])).await;
    assert_eq!(client.call_ok("Echo", json!(["x"])).await, "x");
    assert_eq!(
        *outcomes.0.lock().unwrap(),
        vec!["Divide failed=true", "Divide failed=true", "Echo failed=false"]
    );
}

/// A policy that assumes every caller has a `tenant` claim.
fn same_tenant(identity: &Identity) -> bool {
    identity.claim("tenant").unwrap() == "acme"
}

/// `?user=..&tenant=..`: a user, with a `tenant` claim when one is given.
fn tenant_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    let Some(user) = request.query("user") else {
        return Ok(None);
    };
    let identity = Identity::user(user);
    Ok(Some(match request.query("tenant") {
        Some(tenant) => identity.with_claim("tenant", tenant),
        None => identity,
    }))
}

struct Tenanted {
    events: Events,
}

#[hub]
impl Tenanted {
    #[hub(on_disconnected)]
    fn disconnected(&self, cx: &HubContext<Self>) {
        self.events
            .push(format!("disconnected {}", cx.user_id().unwrap_or("?")));
    }

    #[hub(authorize(policy = same_tenant))]
    fn tenant_only(&self) -> &'static str {
        "tenant data"
    }

    #[hub(authorize(policy = same_tenant))]
    fn tenant_stream(&self) -> impl Stream<Item = u32> {
        futures_util::stream::iter([1, 2])
    }

    fn echo(&self, message: String) -> String {
        message
    }
}

/// An authorization policy is user code too: its panic fails the invocation it guards with the
/// standard error, and the connection (and its `on_disconnected`) carries on.
#[tokio::test]
async fn a_panicking_authorization_policy_fails_the_call_not_the_connection() {
    for detailed in [false, true] {
        let events = Events::default();
        let server = HubServer::builder()
            .options(HubOptions {
                detailed_errors: detailed,
                ..Default::default()
            })
            .hub_with(
                "/tenanted",
                Tenanted { events: events.clone() },
                EndpointOptions::new().authenticator(tenant_from_query),
            )
            .build();
        let server = TestServer::start(server).await;
        let mut member = server.connect_with_query("/tenanted", "user=ann&tenant=acme").await;
        assert_eq!(member.call_ok("TenantOnly", json!([])).await, "tenant data");
        let mut stranger = server.connect_with_query("/tenanted", "user=bob").await;
        let suffix = if detailed {
            " called `Option::unwrap()` on a `None` value"
        } else {
            ""
        };
        for _ in 0..3 {
            assert_eq!(
                stranger.call_err("TenantOnly", json!([])).await,
                format!("An unexpected error occurred invoking 'TenantOnly' on the server.{suffix}")
            );
        }
        let (items, end) = stream(&mut stranger, "s1", "TenantStream", json!([])).await;
        assert!(items.is_empty());
        assert_eq!(
            end["error"],
            format!("An unexpected error occurred invoking 'TenantStream' on the server.{suffix}"),
            "{end}"
        );
        // The refused stream never started: its id is free.
        let (items, _) = stream(&mut stranger, "s1", "TenantStream", json!([])).await;
        assert!(items.is_empty());
        assert_eq!(stranger.call_ok("Echo", json!(["still here"])).await, "still here");
        assert_eq!(member.call_ok("Echo", json!(["me too"])).await, "me too");
        stranger.close().await;
        events
            .wait_for("on_disconnected ran", |e| e == "disconnected bob")
            .await;
        member.close().await;
        all_closed(&server).await;
    }
}
