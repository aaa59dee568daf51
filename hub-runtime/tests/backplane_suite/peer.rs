//! One client of the suite, JSON or MessagePack alike: what arrives is read as JSON values, so
//! the cases compare content whatever the protocol. Invocations that arrive while a call waits
//! for its Completion, and Completions that arrive while it waits for an invocation, are kept.

use std::collections::VecDeque;
use std::net::SocketAddr;

use serde_json::{json, Value};

use crate::common::{within, Client};
use crate::msgpack_client::{self, MsgpackClient};

enum Wire {
    Json(Client),
    Msgpack(MsgpackClient),
}

/// A hub message a peer got.
#[derive(Debug)]
enum Incoming {
    Invocation(Invocation),
    Completion { id: String, result: Result<Value, String> },
}

/// An invocation of a client method.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub target: String,
    /// Set for a client result.
    pub id: Option<String>,
    pub arguments: Vec<Value>,
}

pub struct Peer {
    wire: Wire,
    /// The connection id.
    pub id: String,
    /// Invocations that arrived while a call waited for its Completion.
    invocations: VecDeque<Invocation>,
    /// Completions that arrived while the peer waited for an invocation.
    completions: Vec<(String, Result<Value, String>)>,
    next_id: u64,
}

impl Peer {
    /// A JSON client; `query` (e.g. `user=ann`) goes to negotiate and the WebSocket URL.
    pub async fn json(addr: SocketAddr, path: &str, query: &str) -> Peer {
        let client = Client::connect(addr, path, query).await;
        let id = client.connection_id.clone().expect("a connection id");
        Peer::new(Wire::Json(client), id)
    }

    /// A MessagePack client.
    pub async fn msgpack(addr: SocketAddr, path: &str) -> Peer {
        let client = MsgpackClient::connect(addr, path).await;
        let id = client.connection_id.clone();
        Peer::new(Wire::Msgpack(client), id)
    }

    fn new(wire: Wire, id: String) -> Peer {
        Peer {
            wire,
            id,
            invocations: VecDeque::new(),
            completions: Vec::new(),
            next_id: 0,
        }
    }

    /// Which protocol this peer speaks.
    pub fn protocol(&self) -> &'static str {
        match self.wire {
            Wire::Json(_) => "json",
            Wire::Msgpack(_) => "messagepack",
        }
    }

    /// The next hub message from the socket (Pings skipped).
    async fn read(&mut self) -> Incoming {
        loop {
            let message = match &mut self.wire {
                Wire::Json(client) => from_json(client.recv_skip_pings().await),
                Wire::Msgpack(client) => from_msgpack(client.recv().await),
            };
            if let Some(message) = message {
                return message;
            }
        }
    }

    /// The next invocation of a client method (a Completion that comes first is kept for
    /// [`Peer::completion`]).
    pub async fn next_invocation(&mut self) -> Invocation {
        loop {
            let message = match self.invocations.pop_front() {
                Some(invocation) => return invocation,
                None => self.read().await,
            };
            match message {
                Incoming::Invocation(invocation) => return invocation,
                Incoming::Completion { id, result } => self.completions.push((id, result)),
            }
        }
    }

    /// The text of the next `Receive`.
    pub async fn received(&mut self) -> String {
        let invocation = self.next_invocation().await;
        assert_eq!(invocation.target, "Receive", "expected a Receive, got {invocation:?}");
        invocation.arguments[0]
            .as_str()
            .unwrap_or_else(|| panic!("Receive takes a string: {invocation:?}"))
            .to_string()
    }

    /// The texts received before `marker` (which must come).
    /// Waits for `text` and checks nothing arrived before it. Used before a marker: what one
    /// sender sends to different targets may arrive in either order on NATS (it reads each
    /// subject on its own, as ASP.NET Core reads each Redis channel), so a marker to everyone
    /// follows a message only once its receivers have it.
    pub async fn expect(&mut self, text: &str) {
        let before = self.until(text).await;
        assert!(before.is_empty(), "{} got {before:?} before {text:?}", self.id);
    }

    pub async fn until(&mut self, marker: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let text = within(&format!("{marker:?} reaches {}", self.id), self.received()).await;
            if text == marker {
                return before;
            }
            before.push(text);
        }
    }

    /// Sends an invocation that expects a Completion; returns its id.
    pub async fn invoke(&mut self, target: &str, arguments: Vec<Value>) -> String {
        self.next_id += 1;
        let id = format!("p{}", self.next_id);
        match &mut self.wire {
            Wire::Json(client) => {
                let message = json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments});
                client.send(&message).await;
            }
            Wire::Msgpack(client) => {
                let arguments = arguments.iter().map(to_msgpack).collect();
                let message = rmpv::Value::Array(vec![
                    1.into(),
                    rmpv::Value::Map(Vec::new()),
                    id.as_str().into(),
                    target.into(),
                    rmpv::Value::Array(arguments),
                    rmpv::Value::Array(Vec::new()),
                ]);
                client.send_binary(msgpack_client::frame(&message)).await;
            }
        }
        id
    }

    /// The Completion of invocation `id` (invocations that arrive first are kept).
    pub async fn completion(&mut self, id: &str) -> Result<Value, String> {
        if let Some(position) = self.completions.iter().position(|(done, _)| done == id) {
            return self.completions.remove(position).1;
        }
        within(&format!("the completion of {id}"), async {
            loop {
                match self.read().await {
                    Incoming::Completion { id: done, result } if done == id => return result,
                    Incoming::Completion { id, result } => self.completions.push((id, result)),
                    Incoming::Invocation(invocation) => self.invocations.push_back(invocation),
                }
            }
        })
        .await
    }

    /// Invokes and returns the result, failing the test on an error.
    pub async fn call(&mut self, target: &str, arguments: Vec<Value>) -> Value {
        let id = self.invoke(target, arguments).await;
        self.completion(&id)
            .await
            .unwrap_or_else(|e| panic!("{target} failed: {e}"))
    }

    /// Answers a client result.
    pub async fn answer(&mut self, invocation_id: &str, result: Value) {
        match &mut self.wire {
            Wire::Json(client) => {
                client
                    .send(&json!({"type": 3, "invocationId": invocation_id, "result": result}))
                    .await
            }
            Wire::Msgpack(client) => {
                let message = rmpv::Value::Array(vec![
                    3.into(),
                    rmpv::Value::Map(Vec::new()),
                    invocation_id.into(),
                    3.into(),
                    to_msgpack(&result),
                ]);
                client.send_binary(msgpack_client::frame(&message)).await;
            }
        }
    }
}

fn from_json(message: Value) -> Option<Incoming> {
    match message["type"].as_u64() {
        Some(1) => Some(Incoming::Invocation(Invocation {
            target: message["target"].as_str().expect("a target").to_string(),
            id: message["invocationId"].as_str().map(str::to_owned),
            arguments: message["arguments"].as_array().cloned().unwrap_or_default(),
        })),
        Some(3) => {
            let id = message["invocationId"].as_str().expect("an invocation id").to_string();
            let result = match message.get("error") {
                Some(error) => Err(error.as_str().unwrap_or_default().to_string()),
                None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
            };
            Some(Incoming::Completion { id, result })
        }
        _ => panic!("unexpected message {message}"),
    }
}

fn from_msgpack(message: rmpv::Value) -> Option<Incoming> {
    let items = message.as_array().expect("a message is an array");
    match msgpack_client::message_type(&message) {
        1 => Some(Incoming::Invocation(Invocation {
            target: items[3].as_str().expect("a target").to_string(),
            id: items[2].as_str().map(str::to_owned),
            arguments: items[4].as_array().expect("arguments").iter().map(to_json).collect(),
        })),
        3 => {
            let id = items[2].as_str().expect("an invocation id").to_string();
            let result = match items[3].as_u64() {
                Some(1) => Err(items[4].as_str().unwrap_or_default().to_string()),
                Some(2) => Ok(Value::Null),
                _ => Ok(to_json(&items[4])),
            };
            Some(Incoming::Completion { id, result })
        }
        _ => panic!("unexpected message {message}"),
    }
}

/// A MessagePack value as JSON (map keys must be strings).
pub fn to_json(value: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match value {
        M::Nil => Value::Null,
        M::Boolean(b) => json!(b),
        M::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => json!(u),
            (_, Some(i)) => json!(i),
            _ => panic!("an integer out of range: {i}"),
        },
        M::F32(f) => json!(f),
        M::F64(f) => json!(f),
        M::String(s) => json!(s.as_str().expect("a UTF-8 string")),
        M::Binary(b) => json!(b),
        M::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        M::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().expect("a string key").to_string(), to_json(v)))
                .collect(),
        ),
        M::Ext(..) => panic!("an extension type: {value}"),
    }
}

/// A JSON value as MessagePack.
pub fn to_msgpack(value: &Value) -> rmpv::Value {
    use rmpv::Value as M;
    match value {
        Value::Null => M::Nil,
        Value::Bool(b) => M::Boolean(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => M::from(u),
            (_, Some(i), _) => M::from(i),
            (_, _, Some(f)) => M::F64(f),
            _ => M::Nil,
        },
        Value::String(s) => M::from(s.as_str()),
        Value::Array(items) => M::Array(items.iter().map(to_msgpack).collect()),
        Value::Object(entries) => M::Map(
            entries
                .iter()
                .map(|(k, v)| (M::from(k.as_str()), to_msgpack(v)))
                .collect(),
        ),
    }
}
