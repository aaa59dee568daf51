//! What the presence tests share: a hub with presence events, and a client that notes the
//! `Joined` and `Left` events it receives while it calls the hub.

#![allow(dead_code)]

use std::time::Duration;

use hub_runtime::prelude::*;
use hub_runtime::{AuthError, EndpointOptions, HubServerBuilder, Identity, RequestContext};
use serde_json::{json, Value};

use crate::common::{Client, TestServer};

#[hub_client]
pub trait RoomClient {
    fn joined(&self, group: String, user: String);
    fn left(&self, group: String, user: String);
}

/// A hub with presence and its events.
pub struct Rooms;

#[hub(client = RoomClient, presence(joined = "Joined", left = "Left"))]
impl Rooms {
    async fn join(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.remove(cx.connection_id(), &group).await?)
    }

    async fn members(
        &self,
        cx: &HubContext<Self>,
        group: String,
    ) -> Result<Vec<hub_runtime::presence::Member>, HubError> {
        Ok(cx.groups.members(&group).await?)
    }

    async fn online(&self, cx: &HubContext<Self>, user: String) -> Result<bool, HubError> {
        Ok(cx.users.online(&user).await?)
    }

    fn set_info(&self, cx: &HubContext<Self>, info: serde_json::Value) -> Result<(), HubError> {
        Ok(cx.groups.set_presence_info(cx.connection_id(), &info)?)
    }

    fn echo(&self, message: String) -> String {
        message
    }
}

/// The test identity: the `user` query parameter.
pub fn by_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    Ok(request.query("user").map(Identity::user))
}

/// `builder` with `/rooms` mapped.
pub fn with_rooms(builder: HubServerBuilder) -> HubServer {
    builder
        .hub_with("/rooms", Rooms, EndpointOptions::new().authenticator(by_query))
        .build()
}

/// An event a client received: (`Joined` or `Left`, group, user).
pub type Event = (String, String, String);

/// A client of `/rooms` that notes the events it receives.
pub struct Person {
    pub client: Client,
    pub events: Vec<Event>,
}

impl Person {
    /// Connects as `user` (or anonymously with `None`).
    pub async fn connect(server: &TestServer, user: Option<&str>) -> Person {
        let client = match user {
            Some(user) => server.connect_with_query("/rooms", &format!("user={user}")).await,
            None => server.connect("/rooms").await,
        };
        Person {
            client,
            events: Vec::new(),
        }
    }

    pub fn id(&self) -> String {
        self.client.connection_id.clone().expect("negotiated")
    }

    fn note(&mut self, message: &Value) -> bool {
        if message["type"] == 1 {
            let target = message["target"].as_str().unwrap_or_default().to_string();
            let args = &message["arguments"];
            let text = |i: usize| args[i].as_str().unwrap_or_default().to_string();
            self.events.push((target, text(0), text(1)));
            return true;
        }
        false
    }

    /// Invokes `target`, noting the events that arrive before its Completion; its result.
    pub async fn call(&mut self, target: &str, arguments: Value) -> Value {
        let id = self.client.invoke(target, arguments).await;
        loop {
            let message = self.client.recv_skip_pings().await;
            if self.note(&message) {
                continue;
            }
            assert_eq!(message["type"], 3, "expected the completion of {target}, got {message}");
            assert_eq!(message["invocationId"], id.as_str());
            assert!(message.get("error").is_none(), "{target} failed: {message}");
            return message.get("result").cloned().unwrap_or(Value::Null);
        }
    }

    pub async fn join(&mut self, group: &str) {
        self.call("Join", json!([group])).await;
    }

    pub async fn leave(&mut self, group: &str) {
        self.call("Leave", json!([group])).await;
    }

    /// The users of `group`, as this client's server answers.
    pub async fn members(&mut self, group: &str) -> Vec<(String, u64)> {
        let members = self.call("Members", json!([group])).await;
        members
            .as_array()
            .expect("an array")
            .iter()
            .map(|m| {
                (
                    m["user"].as_str().unwrap().to_string(),
                    m["connections"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    pub async fn online(&mut self, user: &str) -> bool {
        self.call("Online", json!([user])).await.as_bool().expect("a bool")
    }

    /// How many times this client got `kind(group, user)`.
    pub fn count(&self, kind: &str, group: &str, user: &str) -> usize {
        self.events
            .iter()
            .filter(|(k, g, u)| k == kind && g == group && u == user)
            .count()
    }

    /// Waits (up to `limit`) until this client got `kind(group, user)`.
    pub async fn wait_for(&mut self, kind: &str, group: &str, user: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.count(kind, group, user) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {kind}({group}, {user}) within {limit:?}; got {:?}",
                self.events
            );
            // A round trip brings whatever arrived before it.
            self.call("Echo", json!(["tick"])).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lets events from other servers arrive, then takes them in.
    pub async fn settle(&mut self) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.call("Echo", json!(["settle"])).await;
    }
}

/// `(user, connections)` pairs.
pub fn members(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(u, n)| (u.to_string(), *n)).collect()
}
