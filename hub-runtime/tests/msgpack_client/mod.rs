//! A small SignalR MessagePack client over a real WebSocket, for the tests that need the
//! binary protocol: messages are length-prefixed MessagePack arrays (see
//! `shared/reference/signalr-protocol.md`), decoded into `rmpv::Value`s.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use rmpv::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{http, within, RS};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a socket ended, as the client saw it.
#[derive(Debug)]
pub enum Ending {
    /// A close frame (with its code and reason, if it had them).
    Close(Option<CloseFrame>),
    /// The stream ended without a close frame.
    Eof,
    /// The socket failed (a reset, for one).
    Error(String),
}

/// A MessagePack hub client.
pub struct MsgpackClient {
    pub ws: Socket,
    pending: VecDeque<Value>,
    next_id: u64,
    pub connection_id: String,
}

/// A length prefix: 7 bits a byte, least significant first.
fn write_length(out: &mut Vec<u8>, mut length: usize) {
    loop {
        let mut byte = (length & 0x7f) as u8;
        length >>= 7;
        if length != 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if length == 0 {
            break;
        }
    }
}

/// One hub message, framed.
pub fn frame(message: &Value) -> Vec<u8> {
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, message).expect("encode a MessagePack value");
    let mut out = Vec::new();
    write_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Splits a binary frame into its messages.
fn parse(mut data: &[u8]) -> Vec<Value> {
    let mut messages = Vec::new();
    while !data.is_empty() {
        let mut length = 0usize;
        let mut shift = 0;
        loop {
            let byte = data[0];
            data = &data[1..];
            length |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let (mut body, rest) = data.split_at(length);
        messages.push(rmpv::decode::read_value(&mut body).expect("a MessagePack value"));
        data = rest;
    }
    messages
}

impl MsgpackClient {
    /// Negotiates, opens the WebSocket and completes the MessagePack handshake.
    pub async fn connect(addr: SocketAddr, path: &str) -> MsgpackClient {
        let negotiated = http(addr, "POST", &format!("{path}/negotiate?negotiateVersion=1"), &[], "").await;
        assert_eq!(negotiated.status, 200, "negotiate: {negotiated:?}");
        let body = negotiated.json();
        let token = body["connectionToken"].as_str().expect("a connectionToken");
        let connection_id = body["connectionId"].as_str().expect("a connectionId").to_string();
        let url = format!("ws://{addr}{path}?id={token}");
        let (ws, _) = within("the WebSocket opens", tokio_tungstenite::connect_async(url))
            .await
            .expect("the WebSocket opens");
        let mut client = MsgpackClient {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
            connection_id,
        };
        let handshake = format!("{{\"protocol\":\"messagepack\",\"version\":1}}{RS}");
        within("send the handshake", client.ws.send(Message::text(handshake)))
            .await
            .expect("send the handshake");
        match client.next_frame().await {
            Ok(Message::Binary(data)) => assert_eq!(&data[..], format!("{{}}{RS}").as_bytes()),
            other => panic!("expected the handshake reply, got {other:?}"),
        }
        client
    }

    /// The next data frame, or how the socket ended.
    pub async fn next_frame(&mut self) -> Result<Message, Ending> {
        loop {
            match within("the next WebSocket frame", self.ws.next()).await {
                None => return Err(Ending::Eof),
                Some(Err(e)) => return Err(Ending::Error(e.to_string())),
                Some(Ok(Message::Close(close))) => return Err(Ending::Close(close)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(message)) => return Ok(message),
            }
        }
    }

    /// The next hub message that is not a Ping, or how the socket ended.
    pub async fn try_recv(&mut self) -> Result<Value, Ending> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                if message_type(&message) == 6 {
                    continue;
                }
                return Ok(message);
            }
            match self.next_frame().await? {
                Message::Binary(data) => self.pending.extend(parse(&data)),
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// The next hub message that is not a Ping.
    pub async fn recv(&mut self) -> Value {
        match self.try_recv().await {
            Ok(message) => message,
            Err(ending) => panic!("expected a message, the socket ended: {ending:?}"),
        }
    }

    /// Sends one binary frame as is.
    pub async fn send_binary(&mut self, data: Vec<u8>) {
        within("send a binary frame", self.ws.send(Message::binary(data)))
            .await
            .expect("send a binary frame");
    }

    /// Invokes `target` and returns the Completion.
    pub async fn call(&mut self, target: &str, arguments: Vec<Value>) -> Value {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let invocation = Value::Array(vec![
            1.into(),
            Value::Map(Vec::new()),
            id.as_str().into(),
            target.into(),
            Value::Array(arguments),
            Value::Array(Vec::new()),
        ]);
        self.send_binary(frame(&invocation)).await;
        loop {
            let message = self.recv().await;
            if message_type(&message) == 3 && message[2].as_str() == Some(id.as_str()) {
                return message;
            }
        }
    }
}

/// A hub message's type (its first item).
pub fn message_type(message: &Value) -> u64 {
    message[0].as_u64().expect("a message type")
}
