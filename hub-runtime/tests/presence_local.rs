//! Presence on one server, in memory: members, online users, and the `Joined`/`Left` events.

mod common;
mod presence_support;

use std::time::Duration;

use common::{http, within, TestServer, RS};
use futures_util::{SinkExt, StreamExt};
use hub_runtime::prelude::*;
use hub_runtime::EndpointOptions;
use presence_support::{by_query, members, with_rooms, Person};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_newcomer_gets_its_joined_before_its_join_completes() {
    let server = TestServer::start(with_rooms(HubServer::builder())).await;
    let mut anonymous = Person::connect(&server, None).await;
    anonymous.join("room").await;
    // Without a user id the user is the connection id.
    let me = anonymous.id();
    assert_eq!(
        anonymous.events,
        vec![("Joined".to_string(), "room".to_string(), me.clone())]
    );
    assert_eq!(anonymous.members("room").await, members(&[(&me, 1)]));
    assert!(anonymous.online(&me).await);
}

#[tokio::test]
async fn a_user_with_two_connections_joins_and_leaves_once() {
    let server = TestServer::start(with_rooms(HubServer::builder())).await;
    let mut bob = Person::connect(&server, Some("bob")).await;
    bob.join("room").await;
    let mut ann1 = Person::connect(&server, Some("ann")).await;
    let mut ann2 = Person::connect(&server, Some("ann")).await;
    ann1.join("room").await;
    ann2.join("room").await;
    // Joining again changes nothing.
    ann2.join("room").await;
    bob.settle().await;
    assert_eq!(bob.count("Joined", "room", "ann"), 1, "{:?}", bob.events);
    assert_eq!(
        ann2.count("Joined", "room", "ann"),
        0,
        "ann's second connection is no news"
    );
    assert_eq!(bob.members("room").await, members(&[("ann", 2), ("bob", 1)]));

    ann1.leave("room").await;
    bob.settle().await;
    assert_eq!(
        bob.count("Left", "room", "ann"),
        0,
        "ann is still there: {:?}",
        bob.events
    );
    assert_eq!(bob.members("room").await, members(&[("ann", 1), ("bob", 1)]));

    // The end of ann's last connection in the room is her leave.
    ann2.client.close().await;
    bob.wait_for("Left", "room", "ann", common::TIMEOUT).await;
    bob.settle().await;
    assert_eq!(bob.count("Left", "room", "ann"), 1, "{:?}", bob.events);
    assert_eq!(bob.members("room").await, members(&[("bob", 1)]));
    assert!(bob.online("ann").await, "ann1 is still connected");
    ann1.client.close().await;
    let mut offline = false;
    for _ in 0..100 {
        if !bob.online("ann").await {
            offline = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(offline, "ann has no connection left");
}

#[tokio::test]
async fn groups_and_hubs_are_kept_apart() {
    let server = TestServer::start(with_rooms(HubServer::builder())).await;
    let mut ann = Person::connect(&server, Some("ann")).await;
    ann.join("a").await;
    ann.join("b").await;
    assert_eq!(ann.count("Joined", "a", "ann"), 1);
    assert_eq!(ann.count("Joined", "b", "ann"), 1);
    ann.leave("a").await;
    assert_eq!(ann.members("a").await, members(&[]));
    assert_eq!(ann.members("b").await, members(&[("ann", 1)]));
    // ann left "a" herself: she is no longer a member, so she does not get its Left.
    assert_eq!(ann.count("Left", "a", "ann"), 0);
}

struct Quiet;

/// Presence without events.
#[hub(presence)]
impl Quiet {
    async fn join(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn members(&self, cx: &HubContext<Self>, group: String) -> Result<Vec<String>, HubError> {
        Ok(cx.groups.members(&group).await?.into_iter().map(|m| m.user).collect())
    }
}

struct Untracked;

/// No presence at all.
#[hub]
impl Untracked {
    async fn members(&self, cx: &HubContext<Self>, group: String) -> Result<Vec<String>, HubError> {
        Ok(cx.groups.members(&group).await?.into_iter().map(|m| m.user).collect())
    }

    async fn online(&self, cx: &HubContext<Self>, user: String) -> Result<bool, HubError> {
        Ok(cx.users.online(&user).await?)
    }
}

#[tokio::test]
async fn presence_without_events_and_without_presence() {
    let server = TestServer::start(
        HubServer::builder()
            .options(HubOptions {
                detailed_errors: true,
                ..Default::default()
            })
            .hub_with("/quiet", Quiet, EndpointOptions::new().authenticator(by_query))
            .hub("/untracked", Untracked)
            .build(),
    )
    .await;
    let mut quiet = server.connect_with_query("/quiet", "user=ann").await;
    // No event: the Completion is the next message.
    quiet.call_ok("Join", json!(["room"])).await;
    assert_eq!(quiet.call_ok("Members", json!(["room"])).await, json!(["ann"]));

    let mut untracked = server.connect("/untracked").await;
    let error = untracked.call_err("Members", json!(["room"])).await;
    assert!(error.contains("does not track presence"), "{error}");
    let error = untracked.call_err("Online", json!(["ann"])).await;
    assert!(error.contains("does not track presence"), "{error}");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket of a stateful-reconnect connection (handshake version 2).
async fn attach(url: &str) -> Socket {
    let (mut socket, _) = within("open", tokio_tungstenite::connect_async(url)).await.unwrap();
    socket
        .send(Message::text(format!("{{\"protocol\":\"json\",\"version\":2}}{RS}")))
        .await
        .unwrap();
    socket
}

/// Reads until the Completion of invocation `id`.
async fn completion(socket: &mut Socket, id: &str) {
    loop {
        let Some(Ok(Message::Text(text))) = within("a completion", socket.next()).await else {
            panic!("the socket ended early");
        };
        for record in text.as_str().split(RS).filter(|r| !r.is_empty()) {
            let message: Value = serde_json::from_str(record).unwrap();
            if message["type"] == 3 && message["invocationId"] == id {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_socket_that_stateful_reconnect_survives_is_no_leave() {
    let options = HubOptions {
        stateful_reconnect: true,
        reconnect_grace: Duration::from_secs(1),
        ..Default::default()
    };
    let server = TestServer::start(with_rooms(HubServer::builder().options(options))).await;
    let mut watcher = Person::connect(&server, Some("watcher")).await;
    watcher.join("room").await;

    let negotiated = http(
        server.addr,
        "POST",
        "/rooms/negotiate?negotiateVersion=1&useStatefulReconnect=true&user=sam",
        &[],
        "",
    )
    .await;
    let body = negotiated.json();
    assert_eq!(body["useStatefulReconnect"], true, "{body}");
    let token = body["connectionToken"].as_str().unwrap();
    let url = format!("ws://{}/rooms?id={token}&user=sam", server.addr);
    let mut first = attach(&url).await;
    first
        .send(Message::text(format!(
            "{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Join\",\"arguments\":[\"room\"]}}{RS}"
        )))
        .await
        .unwrap();
    completion(&mut first, "1").await;
    watcher.wait_for("Joined", "room", "sam", common::TIMEOUT).await;

    // The socket drops; the client comes back within the grace, and stays past it.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A re-attaching socket sends no handshake: the server starts it with a Sequence message.
    let (second, _) = within("re-attach", tokio_tungstenite::connect_async(url.as_str()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    watcher.settle().await;
    assert_eq!(watcher.count("Left", "room", "sam"), 0, "{:?}", watcher.events);
    assert_eq!(watcher.members("room").await, members(&[("sam", 1), ("watcher", 1)]));

    // Gone for good: the connection ends after the grace, and that is sam's leave.
    drop(second);
    watcher.wait_for("Left", "room", "sam", Duration::from_secs(5)).await;
    watcher.settle().await;
    assert_eq!(watcher.count("Left", "room", "sam"), 1);
    assert_eq!(watcher.count("Joined", "room", "sam"), 1);
}
