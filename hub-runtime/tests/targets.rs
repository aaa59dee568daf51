//! Sending to clients: all, others, one connection, groups, users, from outside hub methods,
//! and ordering. Several real clients on one in-process server.
//!
//! "X did not receive" is checked with a barrier: a message for X is put in X's outbox before
//! the sender's Completion is sent, so once the sender has its Completion, a round trip on X
//! (an `Echo`) would bring any such message first.

mod common;

use common::{Client, TestServer};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext, SendError};
use serde_json::{json, Value};

#[hub_client]
trait Receiver {
    fn receive(&self, message: String);
    #[hub(name = "custom_name")]
    fn other(&self, a: i32, b: Vec<String>);
}

struct Fanout;

#[hub(client = Receiver)]
impl Fanout {
    fn echo(&self, message: String) -> String {
        message
    }

    fn who_am_i(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.user_id().map(str::to_owned)
    }

    async fn join(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.remove(cx.connection_id(), &group).await?)
    }

    async fn to_all(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.all().receive(message).await?)
    }

    async fn to_others(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.others().receive(message).await?)
    }

    async fn to_caller(&self, cx: &HubContext<Self>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.caller().receive(message).await?)
    }

    async fn to_connection(&self, cx: &HubContext<Self>, id: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.client(id).receive(message).await?)
    }

    async fn to_all_except(
        &self,
        cx: &HubContext<Self>,
        excluded: Vec<String>,
        message: String,
    ) -> Result<(), HubError> {
        Ok(cx.clients.all_except(excluded).receive(message).await?)
    }

    async fn to_group(&self, cx: &HubContext<Self>, group: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.group(group).receive(message).await?)
    }

    async fn to_groups(&self, cx: &HubContext<Self>, groups: Vec<String>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.groups(groups).receive(message).await?)
    }

    async fn to_others_in_group(&self, cx: &HubContext<Self>, group: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.others_in_group(group).receive(message).await?)
    }

    async fn to_user(&self, cx: &HubContext<Self>, user: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.user(user).receive(message).await?)
    }

    async fn to_users(&self, cx: &HubContext<Self>, users: Vec<String>, message: String) -> Result<(), HubError> {
        Ok(cx.clients.users(users).receive(message).await?)
    }

    async fn other_to_caller(&self, cx: &HubContext<Self>) -> Result<(), HubError> {
        Ok(cx.clients.caller().other(7, vec!["x".into(), "y".into()]).await?)
    }

    async fn burst(&self, cx: &HubContext<Self>, count: u32) -> Result<(), HubError> {
        for i in 0..count {
            cx.clients.caller().receive(i.to_string()).await?;
        }
        Ok(())
    }
}

fn user_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    Ok(request.query("user").map(Identity::user))
}

async fn server() -> TestServer {
    let endpoint = EndpointOptions::new().authenticator(user_from_query);
    TestServer::start(HubServer::builder().hub_with("/fanout", Fanout, endpoint).build()).await
}

fn receive(message: &str) -> Value {
    json!({"type": 1, "target": "Receive", "arguments": [message]})
}

/// The next message must be `Receive(message)`.
async fn expect_receive(client: &mut Client, message: &str) {
    assert_eq!(client.recv().await, receive(message));
}

/// Nothing was delivered to `client` (see the module comment).
async fn expect_nothing(client: &mut Client) {
    assert_eq!(
        client.call_ok("Echo", json!(["barrier"])).await,
        "barrier",
        "no message may come before the barrier"
    );
}

/// The caller sees its own `Receive(message)` and then the Completion.
async fn call_and_receive(client: &mut Client, target: &str, arguments: Value, message: &str) {
    let id = client.invoke(target, arguments).await;
    expect_receive(client, message).await;
    assert_eq!(client.recv().await, json!({"type": 3, "invocationId": id}));
}

async fn three(server: &TestServer) -> (Client, Client, Client) {
    (
        server.connect("/fanout").await,
        server.connect("/fanout").await,
        server.connect("/fanout").await,
    )
}

fn id(client: &Client) -> String {
    client.connection_id.clone().expect("negotiated")
}

#[tokio::test]
async fn all() {
    let server = server().await;
    let (mut a, mut b, mut c) = three(&server).await;
    call_and_receive(&mut a, "ToAll", json!(["hello all"]), "hello all").await;
    expect_receive(&mut b, "hello all").await;
    expect_receive(&mut c, "hello all").await;
}

#[tokio::test]
async fn others() {
    let server = server().await;
    let (mut a, mut b, mut c) = three(&server).await;
    a.call_ok("ToOthers", json!(["not you"])).await;
    expect_receive(&mut b, "not you").await;
    expect_receive(&mut c, "not you").await;
    expect_nothing(&mut a).await;
}

#[tokio::test]
async fn caller_and_one_connection() {
    let server = server().await;
    let (mut a, mut b, mut c) = three(&server).await;
    call_and_receive(&mut a, "ToCaller", json!(["me"]), "me").await;
    a.call_ok("ToConnection", json!([id(&b), "just b"])).await;
    expect_receive(&mut b, "just b").await;
    expect_nothing(&mut c).await;
    expect_nothing(&mut a).await;
    // With the in-memory backplane an unknown connection id is known to be unknown: the
    // method's `?` fails it, and nobody receives.
    let unknown = "An unexpected error occurred invoking 'ToConnection' on the server.";
    assert_eq!(a.call_err("ToConnection", json!(["nobody", "lost"])).await, unknown);
    // The secret token is not a connection id.
    let token = b.connection_token.clone().unwrap();
    assert_eq!(a.call_err("ToConnection", json!([token, "lost"])).await, unknown);
    expect_nothing(&mut b).await;
    expect_nothing(&mut c).await;
}

#[tokio::test]
async fn sending_to_an_unknown_connection_says_so() {
    let server = server().await;
    let (mut a, b, _c) = three(&server).await;
    let handle = server.server.handle::<Fanout>().unwrap();
    let sent = handle.clients.client("nobody").receive("lost".into()).await;
    assert_eq!(sent, Err(SendError::UnknownConnection("nobody".into())));
    assert_eq!(
        sent.unwrap_err().to_string(),
        "no connection has the id 'nobody': nothing was sent"
    );
    // A connection that left is unknown too, once it is gone.
    let gone = id(&b);
    handle.clients.client(gone.clone()).receive("hi".into()).await.unwrap();
    b.close().await;
    common::eventually("b leaves", || !handle.is_local(&gone)).await;
    let sent = handle.clients.client(gone.clone()).receive("late".into()).await;
    assert_eq!(sent, Err(SendError::UnknownConnection(gone)));
    // Targets of many connections still ignore unknown ids.
    handle
        .clients
        .clients(vec!["nobody".into(), id(&a)])
        .receive("many".into())
        .await
        .unwrap();
    expect_receive(&mut a, "many").await;
}

#[tokio::test]
async fn with_detailed_errors_the_caller_sees_which_connection_is_unknown() {
    let options = HubOptions {
        detailed_errors: true,
        ..HubOptions::default()
    };
    let endpoint = EndpointOptions::new().authenticator(user_from_query);
    let server = TestServer::start(
        HubServer::builder()
            .options(options)
            .hub_with("/fanout", Fanout, endpoint)
            .build(),
    )
    .await;
    let mut a = server.connect("/fanout").await;
    assert_eq!(
        a.call_err("ToConnection", json!(["nobody", "lost"])).await,
        "An unexpected error occurred invoking 'ToConnection' on the server. \
         SendError: no connection has the id 'nobody': nothing was sent"
    );
}

#[tokio::test]
async fn all_except() {
    let server = server().await;
    let (mut a, mut b, mut c) = three(&server).await;
    a.call_ok("ToAllExcept", json!([[id(&a), id(&c)], "only b"])).await;
    expect_receive(&mut b, "only b").await;
    expect_nothing(&mut a).await;
    expect_nothing(&mut c).await;
}

#[tokio::test]
async fn groups_add_and_remove() {
    let server = server().await;
    let (mut a, mut b, mut c) = three(&server).await;
    a.call_ok("Join", json!(["g"])).await;
    b.call_ok("Join", json!(["g"])).await;
    c.call_ok("ToGroup", json!(["g", "to g"])).await;
    expect_receive(&mut a, "to g").await;
    expect_receive(&mut b, "to g").await;
    expect_nothing(&mut c).await;

    a.call_ok("Leave", json!(["g"])).await;
    c.call_ok("ToGroup", json!(["g", "again"])).await;
    expect_receive(&mut b, "again").await;
    expect_nothing(&mut a).await;

    // Group names are case-sensitive; an empty group is nobody.
    c.call_ok("ToGroup", json!(["G", "wrong case"])).await;
    c.call_ok("ToGroup", json!(["empty", "nobody"])).await;
    expect_nothing(&mut b).await;

    // Others in the group: the caller is left out.
    a.call_ok("Join", json!(["g"])).await;
    b.call_ok("ToOthersInGroup", json!(["g", "not b"])).await;
    expect_receive(&mut a, "not b").await;
    expect_nothing(&mut b).await;
}

#[tokio::test]
async fn a_connection_in_several_groups_receives_once() {
    let server = server().await;
    let (mut a, mut b, mut c) = three(&server).await;
    for group in ["g1", "g2"] {
        a.call_ok("Join", json!([group])).await;
    }
    a.call_ok("Join", json!(["g1"])).await; // joining twice is one membership
    b.call_ok("Join", json!(["g2"])).await;
    c.call_ok("ToGroups", json!([["g1", "g2", "g1"], "once"])).await;
    expect_receive(&mut a, "once").await;
    expect_nothing(&mut a).await;
    expect_receive(&mut b, "once").await;
    expect_nothing(&mut b).await;
    expect_nothing(&mut c).await;
}

#[tokio::test]
async fn group_membership_ends_with_the_connection() {
    let server = server().await;
    let (mut a, b, mut c) = three(&server).await;
    let mut b = b;
    b.call_ok("Join", json!(["g"])).await;
    a.call_ok("Join", json!(["g"])).await;
    b.close().await;
    common::eventually("b to be gone", || server.server.connection_count() == 2).await;
    c.call_ok("ToGroup", json!(["g", "after b left"])).await;
    expect_receive(&mut a, "after b left").await;
}

#[tokio::test]
async fn users() {
    let server = server().await;
    let mut alice1 = server.connect_with_query("/fanout", "user=alice").await;
    let mut alice2 = server.connect_with_query("/fanout", "user=alice").await;
    let mut bob = server.connect_with_query("/fanout", "user=bob").await;
    let mut anonymous = server.connect("/fanout").await;
    assert_eq!(alice1.call_ok("WhoAmI", json!([])).await, "alice");
    assert_eq!(anonymous.call_ok("WhoAmI", json!([])).await, Value::Null);

    anonymous.call_ok("ToUser", json!(["alice", "for alice"])).await;
    expect_receive(&mut alice1, "for alice").await;
    expect_receive(&mut alice2, "for alice").await;
    expect_nothing(&mut bob).await;

    anonymous
        .call_ok("ToUsers", json!([["alice", "bob", "carol"], "for both"]))
        .await;
    expect_receive(&mut alice1, "for both").await;
    expect_receive(&mut alice2, "for both").await;
    expect_receive(&mut bob, "for both").await;
    expect_nothing(&mut anonymous).await;

    // A user with a connection gone still reaches the others.
    alice1.close().await;
    common::eventually("alice1 to be gone", || server.server.connection_count() == 3).await;
    bob.call_ok("ToUser", json!(["alice", "still"])).await;
    expect_receive(&mut alice2, "still").await;
}

#[tokio::test]
async fn sending_from_outside_a_hub_method() {
    let server = server().await;
    let (mut a, mut b, mut c) = three(&server).await;
    let handle = server.server.handle::<Fanout>().expect("Fanout is mapped");
    handle.clients.all().receive("from outside".into()).await.unwrap();
    for client in [&mut a, &mut b, &mut c] {
        expect_receive(client, "from outside").await;
    }
    handle.clients.client(id(&b)).receive("b only".into()).await.unwrap();
    expect_receive(&mut b, "b only").await;

    handle.groups.add(&id(&c), "outside").await.unwrap();
    handle
        .clients
        .group("outside")
        .receive("c's group".into())
        .await
        .unwrap();
    expect_receive(&mut c, "c's group").await;
    handle.groups.remove(&id(&c), "outside").await.unwrap();
    handle.clients.group("outside").receive("nobody".into()).await.unwrap();
    // The same barrier holds: the send returned before Echo was invoked.
    expect_nothing(&mut a).await;
    expect_nothing(&mut b).await;
    expect_nothing(&mut c).await;

    // Untyped sends and renamed client methods.
    handle.clients.all().send("Untyped", &(1, "two")).await.unwrap();
    assert_eq!(
        a.recv().await,
        json!({"type": 1, "target": "Untyped", "arguments": [1, "two"]})
    );
    let id = a.invoke("OtherToCaller", json!([])).await;
    assert_eq!(
        a.recv().await,
        json!({"type": 1, "target": "custom_name", "arguments": [7, ["x", "y"]]})
    );
    assert_eq!(a.recv().await, json!({"type": 3, "invocationId": id}));
}

#[tokio::test]
async fn a_hub_that_is_not_mapped_has_no_handle() {
    struct Unmapped;
    #[hub]
    impl Unmapped {
        fn nothing(&self) {}
    }
    let server = server().await;
    let error = server.server.handle::<Unmapped>().expect_err("Unmapped is not mapped");
    assert!(error.hub_type().ends_with("Unmapped"), "{error}");
    let text = error.to_string();
    assert!(text.contains("Unmapped` is not mapped on this server"), "{text}");
    assert!(
        text.contains(".hub(\"/path\", Unmapped)") && text.contains(".publish_to::<Unmapped>()"),
        "{text}"
    );
}

#[tokio::test]
async fn messages_to_one_connection_keep_their_order() {
    let server = server().await;
    let (mut a, mut b, _c) = three(&server).await;
    let id = a.invoke("Burst", json!([100])).await;
    for i in 0..100 {
        expect_receive(&mut a, &i.to_string()).await;
    }
    assert_eq!(a.recv().await, json!({"type": 3, "invocationId": id}));

    // From outside, interleaved with a hub method sending to the same connection.
    let handle = server.server.handle::<Fanout>().unwrap();
    let target = self::id(&b);
    for i in 0..100 {
        handle
            .clients
            .client(target.clone())
            .receive(format!("o{i}"))
            .await
            .unwrap();
    }
    for i in 0..100 {
        expect_receive(&mut b, &format!("o{i}")).await;
    }
}
