//! The test hub of the history tests, servers built around a store, and a JSON client's view of
//! a recovery stream.

use std::time::Duration;

use hub_runtime::history::{HistoryEvent, HistoryItem, HistoryRule, HistoryStore, Position, Recent};
use hub_runtime::prelude::*;
use hub_runtime::EndpointOptions;
use serde_json::{json, Value};

use crate::common::{Client, TestServer};

/// A hub whose `durable-*` groups keep a history.
pub struct Feed;

#[hub]
impl Feed {
    async fn publish(&self, cx: &HubContext<Self>, group: String, message: String) -> Result<Position, HubError> {
        Ok(cx.history.publish(&group, &message).await?)
    }

    async fn subscribe(
        &self,
        cx: &HubContext<Self>,
        group: String,
        position: Option<Position>,
    ) -> Result<impl Stream<Item = Result<HistoryEvent<String>, hub_runtime::history::HistoryError>>, HubError> {
        Ok(cx.history.subscribe::<String>(&group, position).await?)
    }

    async fn last(
        &self,
        cx: &HubContext<Self>,
        group: String,
        count: usize,
    ) -> Result<Vec<HistoryItem<String>>, HubError> {
        let recent: Recent<String> = cx.history.last(&group, count).await?;
        Ok(recent.items)
    }
}

/// A server mapping [`Feed`] at `/feed`, `durable-*` groups keeping `max_len` messages for `ttl`.
pub async fn serve(store: impl HistoryStore, max_len: usize, ttl: Duration) -> TestServer {
    let rule = HistoryRule::prefix("durable-").max_len(max_len).ttl(ttl);
    let server = HubServer::builder()
        .options(HubOptions {
            detailed_errors: true,
            ..Default::default()
        })
        .history(store)
        .hub_with("/feed", Feed, EndpointOptions::new().history(rule))
        .build();
    TestServer::start(server).await
}

/// Publishes through `client`; the message's position.
pub async fn publish(client: &mut Client, group: &str, message: &str) -> Position {
    let result = client.call_ok("Publish", json!([group, message])).await;
    serde_json::from_value(result).expect("a position")
}

/// One item of a recovery stream, as the client read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// `{"Recovered","Epoch","Offset"}`.
    Header { recovered: bool, position: Position },
    /// `{"Offset","Message"}`.
    Item { offset: i64, message: String },
}

/// A recovery stream opened by a client.
pub struct Subscription {
    pub client: Client,
    id: String,
}

impl Subscription {
    /// Opens `Subscribe(group, position)` on `client`.
    pub async fn open(mut client: Client, group: &str, position: Option<&Position>) -> Subscription {
        let id = "s1".to_string();
        client
            .send(&json!({"type": 4, "invocationId": id, "target": "Subscribe", "arguments": [group, position]}))
            .await;
        Subscription { client, id }
    }

    /// The next item (pings skipped); fails on a completion.
    pub async fn next(&mut self) -> Seen {
        let message = self.client.recv_skip_pings().await;
        assert_eq!(message["type"], 2, "expected a stream item, got {message}");
        assert_eq!(message["invocationId"], self.id.as_str());
        parse(&message["item"])
    }

    /// The next `n` items.
    pub async fn take(&mut self, n: usize) -> Vec<Seen> {
        let mut seen = Vec::with_capacity(n);
        for _ in 0..n {
            seen.push(self.next().await);
        }
        seen
    }

    /// Nothing arrives within `wait`.
    pub async fn quiet(&mut self, wait: Duration) {
        if let Ok(message) = tokio::time::timeout(wait, self.client.recv_skip_pings()).await {
            panic!("expected nothing, got {message}");
        }
    }
}

fn parse(item: &Value) -> Seen {
    let object = item.as_object().unwrap_or_else(|| panic!("an object: {item}"));
    if object.contains_key("Recovered") {
        assert_eq!(object.len(), 3, "a header has exactly three fields: {item}");
        Seen::Header {
            recovered: item["Recovered"].as_bool().expect("a bool"),
            position: Position::new(
                item["Epoch"].as_str().expect("an epoch"),
                item["Offset"].as_i64().expect("an offset"),
            ),
        }
    } else {
        assert_eq!(object.len(), 2, "an item has exactly two fields: {item}");
        Seen::Item {
            offset: item["Offset"].as_i64().expect("an offset"),
            message: item["Message"].as_str().expect("a message").to_string(),
        }
    }
}

/// Items `from..=to` with messages `m{offset}`.
pub fn items(from: i64, to: i64) -> Vec<Seen> {
    (from..=to)
        .map(|offset| Seen::Item {
            offset,
            message: format!("m{offset}"),
        })
        .collect()
}

/// A header.
pub fn header(recovered: bool, position: &Position) -> Seen {
    Seen::Header {
        recovered,
        position: position.clone(),
    }
}

/// Publishes `m{from}..=m{to}` in order; the last position.
pub async fn publish_range(client: &mut Client, group: &str, from: i64, to: i64) -> Position {
    let mut last = None;
    for offset in from..=to {
        let position = publish(client, group, &format!("m{offset}")).await;
        assert_eq!(position.offset, offset, "offsets count without gaps");
        last = Some(position);
    }
    last.expect("at least one message")
}
