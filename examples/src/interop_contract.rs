//! The interop contract's hubs as their clients call them (`shared/reference/interop-contract.md`),
//! declared once: the `interop` server's hubs are checked against these traits
//! (`#[hub(contract = ...)]`), and `interop-client` calls the server through the proxies they
//! generate (`TestHubProxy`, `BroadcastHubProxy`, …) and answers it through their handler
//! traits (`TestHubClientHandler`, `BroadcastHubClientHandler`).

use hub_runtime::protocol::contract::{hub_client_contract, hub_contract};
use hub_runtime::types::{Binary, DateTime};
use serde::{Deserialize, Serialize};

/// `SendCustomObject`'s argument, sent back to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "PascalCase")]
pub struct CustomObject {
    pub name: String,
    pub value: i32,
}

/// `EchoComplexObject`'s argument and result: bytes and a date-time among plain values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "PascalCase")]
pub struct ComplexObject {
    pub string: String,
    pub int_array: Vec<i32>,
    pub byte_array: Binary,
    pub guid: String,
    pub date_time: DateTime,
}

/// Where a message stands in a durable group's history (BroadcastHub `Publish`, `Subscribe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "PascalCase")]
pub struct Position {
    /// One unbroken history of the group.
    pub epoch: String,
    /// From 1 within the epoch, without gaps.
    pub offset: i64,
}

/// The first item of a `Subscribe` stream, and the item sent when the group's epoch changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "PascalCase")]
pub struct RecoveryHeader {
    /// Whether every message after the asked position follows.
    pub recovered: bool,
    /// The current epoch.
    pub epoch: String,
    /// The current offset (0: no message yet).
    pub offset: i64,
}

/// A message of a `Subscribe` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "PascalCase")]
pub struct RecoveryMessage {
    /// Its offset in the current epoch.
    pub offset: i64,
    /// What was published.
    pub message: String,
}

/// An item of a `Subscribe` stream: a header or a message (untagged on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(untagged)]
pub enum RecoveryItem {
    /// `{"Recovered", "Epoch", "Offset"}`.
    Header(RecoveryHeader),
    /// `{"Offset", "Message"}`.
    Message(RecoveryMessage),
}

/// The reference server's TestHub (`/default`, `/default-nowebsockets`).
#[hub_contract(crate = "hub_runtime::protocol")]
pub trait TestHub {
    fn echo(&self, message: String) -> String;
    fn get_caller_connection_id(&self) -> String;
    fn get_num_redirects(&self) -> i32;
    /// Panics in the hub on `b == 0`: the caller gets an error, the connection stays.
    fn divide(&self, a: i32, b: i32) -> i32;
    fn throw_exception(&self, message: String);
    /// The hub calls the caller's `Message` with `message`.
    fn invoke_with_string(&self, message: String);
    /// The hub calls the caller's `CustomObject` with `value`.
    fn send_custom_object(&self, value: CustomObject);
    fn get_active_transport_name(&self) -> String;
    fn echo_complex_object(&self, value: ComplexObject) -> ComplexObject;
    fn send_complex_object(&self) -> ComplexObject;
    /// `a`, `b`, `c`.
    fn stream(&self) -> impl Stream<Item = String>;
    /// Never ends; when cancelled, the hub calls the caller's `StreamCanceled`.
    fn infinite_stream(&self) -> impl Stream<Item = String>;
    fn empty_stream(&self) -> impl Stream<Item = i32>;
    /// Fails with `message` before its first item.
    fn stream_throw_exception(&self, message: String) -> impl Stream<Item = i32>;
    /// Every uploaded item, joined.
    fn streaming_concat(&self, items: impl Stream<Item = String>) -> String;
    fn get_content_type_header(&self) -> Option<String>;
    fn get_header(&self, name: String) -> Option<String>;
    fn get_cookie(&self, name: String) -> Option<String>;
}

/// What TestHub calls on its clients.
#[hub_client_contract(crate = "hub_runtime::protocol")]
pub trait TestHubClient {
    fn message(&self, message: String);
    fn custom_object(&self, value: CustomObject);
    fn stream_canceled(&self);
    /// A client result: the client answers with an integer (`/clientresult/{id}`), or fails
    /// with a text the server reports.
    fn result(&self) -> Result<i64, String>;
}

/// Fan-out for tests and benchmarks (`/broadcast`).
#[hub_contract(crate = "hub_runtime::protocol")]
pub trait BroadcastHub {
    fn echo(&self, message: String) -> String;
    fn get_connection_id(&self) -> String;
    fn join_group(&self, group: String);
    fn leave_group(&self, group: String);
    fn send_to_all(&self, message: String);
    fn send_to_others(&self, message: String);
    fn send_to_all_except(&self, excluded: Vec<String>, message: String);
    fn send_to_connection(&self, connection_id: String, message: String);
    fn send_to_connections(&self, connection_ids: Vec<String>, message: String);
    fn send_to_group(&self, group: String, message: String);
    fn send_to_groups(&self, groups: Vec<String>, message: String);
    fn send_to_group_except(&self, group: String, excluded: Vec<String>, message: String);
    fn send_to_others_in_group(&self, group: String, message: String);
    fn send_to_user(&self, user: String, message: String);
    /// A client result: asks the caller's `Answer` and returns its answer.
    fn ask_caller(&self, question: String) -> String;
    fn send_to_users(&self, users: Vec<String>, message: String);
    /// The distinct users with a connection in the group, on every server, sorted (a user is
    /// the `user` query parameter, or the connection id without one).
    fn members(&self, group: String) -> Vec<String>;
    /// Appends to a `durable-*` group's history and delivers to its `Subscribe` streams;
    /// fails for other groups.
    fn publish(&self, group: String, message: String) -> Position;
    /// A header, the messages missed since `position` (when history still has them), then
    /// every new one.
    fn subscribe(&self, group: String, position: Option<Position>) -> impl Stream<Item = RecoveryItem>;
}

/// What BroadcastHub calls on its clients.
#[hub_client_contract(crate = "hub_runtime::protocol")]
pub trait BroadcastHubClient {
    fn receive(&self, message: String);
    /// A client result: the client answers the question.
    fn answer(&self, question: String) -> String;
    /// A user's first connection joined the group (sent once, to the group, the newcomer
    /// included).
    fn joined(&self, group: String, user: String);
    /// A user's last connection left the group (its leave, its end, or its server's death).
    fn left(&self, group: String, user: String);
}

/// A hub whose every connection fails to start (`/uncreatable`).
#[hub_contract(crate = "hub_runtime::protocol")]
pub trait Uncreatable {
    fn echo(&self, message: String) -> String;
}

/// The reference server's HubWithAuthorization (`/authorizedhub`): a bearer token from
/// `/generateJwtToken` is required.
#[hub_contract(crate = "hub_runtime::protocol")]
pub trait HubWithAuthorization {
    fn echo(&self, message: String) -> String;
    fn get_user_name_identifier(&self) -> String;
    fn get_user_claim(&self, kind: String) -> String;
}
