//! The floor: the thinnest server that speaks enough of the hub protocol for the benchmark
//! scenarios. Raw tokio + tokio-tungstenite (the WebSocket library hub uses through warp) at
//! its leanest settings: a small read buffer, no write buffering. It accepts a WebSocket at
//! any path (no negotiate: clients use skipNegotiation), answers the JSON or MessagePack
//! handshake, replies to `Echo` with a Completion carrying the argument, and fans
//! `SendToAll` out as `Receive` to every connection. No framework, no keep-alive, no timeouts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::wire::{self, Proto, RS};

/// The connections of one protocol: each has a small outbox its own task drains.
///
/// (A `tokio::sync::broadcast` channel shared by all connections was tried first: with
/// 10,000 receivers re-registering on its one lock after every message it cost more CPU
/// per delivery than hub's per-connection outboxes, so it was no floor.)
type Registry = Mutex<HashMap<u64, mpsc::Sender<Bytes>>>;

/// A SendToAll is encoded once per protocol in use and the same bytes go to every outbox.
struct Floor {
    json: Registry,
    msgpack: Registry,
    next_id: AtomicU64,
}

impl Floor {
    fn registry(&self, proto: Proto) -> &Registry {
        match proto {
            Proto::Json => &self.json,
            Proto::MessagePack => &self.msgpack,
        }
    }
}

/// Removes a connection from its registry when its task ends.
struct Registration<'a> {
    registry: &'a Registry,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// Outbox capacity: a connection more than this many messages behind misses messages.
const OUTBOX: usize = 64;

/// `hub-bench floor --addr HOST:PORT [--read-buffer BYTES]`.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut read_buffer = 1024usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--read-buffer" => read_buffer = value()?.parse().map_err(|e| format!("--read-buffer: {e}"))?,
            other => return Err(format!("floor: unknown argument '{other}'")),
        }
    }
    // Same runtime shape as the hub's `#[tokio::main]`: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(addr, read_buffer))
}

async fn serve(addr: SocketAddr, read_buffer: usize) -> Result<(), String> {
    let listener = TcpListener::bind(addr).await.map_err(|e| format!("bind {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    let config = WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(32 * 1024))
        .max_frame_size(Some(32 * 1024));
    let floor = Arc::new(Floor {
        json: Mutex::new(HashMap::new()),
        msgpack: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
    });
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, floor.clone(), config));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                eprintln!("floor: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

#[derive(Deserialize)]
struct Handshake<'a> {
    #[serde(borrow)]
    protocol: Cow<'a, str>,
}

async fn connection(stream: TcpStream, floor: Arc<Floor>, config: WebSocketConfig) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    // The handshake.
    let first = match tokio::time::timeout(std::time::Duration::from_secs(15), ws.next()).await {
        Ok(Some(Ok(message))) => message.into_data(),
        _ => return,
    };
    let Some(end) = first.iter().position(|&b| b == RS) else {
        return;
    };
    let Some(proto) = serde_json::from_slice::<Handshake<'_>>(&first[..end])
        .ok()
        .and_then(|h| Proto::from_name(&h.protocol))
    else {
        let _ = ws
            .send(Message::text("{\"error\":\"The protocol is not supported.\"}\u{1e}"))
            .await;
        return;
    };
    let reply = match proto {
        Proto::Json => Message::text("{}\u{1e}"),
        Proto::MessagePack => Message::binary(&b"{}\x1e"[..]),
    };
    if ws.send(reply).await.is_err() {
        return;
    }
    let (tx, mut fanout) = mpsc::channel::<Bytes>(OUTBOX);
    let registration = Registration {
        registry: floor.registry(proto),
        id: floor.next_id.fetch_add(1, Ordering::Relaxed),
    };
    registration
        .registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(registration.id, tx);
    let mut out = Vec::new();
    if handle(proto, &first[end + 1..], &floor, &mut out).is_err() {
        return;
    }
    loop {
        if !out.is_empty() {
            let frame = proto.frame(std::mem::take(&mut out));
            if ws.send(frame).await.is_err() {
                return;
            }
        }
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(message)) => match &message {
                    Message::Text(_) | Message::Binary(_)
                        if handle(proto, crate::client::payload(&message).unwrap_or_default(), &floor, &mut out).is_err() =>
                    {
                        return;
                    }
                    Message::Close(_) => return,
                    _ => {}
                },
                _ => return,
            },
            item = fanout.recv() => match item {
                Some(bytes) => {
                    // Messages that queued up while this client was behind go out together,
                    // as several hub messages in one frame (the protocol allows it): one
                    // write instead of many.
                    let bytes = match fanout.try_recv() {
                        Err(_) => bytes,
                        Ok(next) => {
                            let mut batch = Vec::with_capacity(bytes.len() * 4);
                            batch.extend_from_slice(&bytes);
                            batch.extend_from_slice(&next);
                            while batch.len() < 16 * 1024 {
                                match fanout.try_recv() {
                                    Ok(more) => batch.extend_from_slice(&more),
                                    Err(_) => break,
                                }
                            }
                            Bytes::from(batch)
                        }
                    };
                    let frame = match proto {
                        Proto::Json => match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(bytes) {
                            Ok(text) => Message::Text(text),
                            Err(_) => return,
                        },
                        Proto::MessagePack => Message::Binary(bytes),
                    };
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}

/// Close requested by the client (or a malformed message).
struct Stop;

/// Handles every message in one frame, appending replies to `out`.
fn handle(proto: Proto, data: &[u8], floor: &Floor, out: &mut Vec<u8>) -> Result<(), Stop> {
    match proto {
        Proto::Json => {
            for part in data.split(|&b| b == RS) {
                if !part.is_empty() {
                    json_message(part, floor, out)?;
                }
            }
        }
        Proto::MessagePack => {
            let mut rest = data;
            while !rest.is_empty() {
                let (len, used) = wire::read_varint(rest).ok_or(Stop)?;
                let end = used.checked_add(len).filter(|&e| e <= rest.len()).ok_or(Stop)?;
                msgpack_message(&rest[used..end], floor, out)?;
                rest = &rest[end..];
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct JsonInvocation<'a> {
    #[serde(rename = "type")]
    ty: u64,
    #[serde(rename = "invocationId", borrow, default)]
    invocation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Vec<&'a RawValue>,
}

fn json_message(part: &[u8], floor: &Floor, out: &mut Vec<u8>) -> Result<(), Stop> {
    let message: JsonInvocation<'_> = serde_json::from_slice(part).map_err(|_| Stop)?;
    match message.ty {
        1 => {}
        7 => return Err(Stop),
        _ => return Ok(()),
    }
    let target = message.target.as_deref().unwrap_or("");
    let argument = message.arguments.first().copied();
    let id = message.invocation_id.as_deref();
    if target.eq_ignore_ascii_case("echo") {
        if let (Some(id), Some(arg)) = (id, argument) {
            out.extend_from_slice(b"{\"type\":3,\"invocationId\":");
            wire::write_json_str(out, id);
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(arg.get().as_bytes());
            out.extend_from_slice(b"}\x1e");
        }
    } else if target.eq_ignore_ascii_case("sendtoall") {
        if let Some(arg) = argument {
            let text = serde_json::from_str::<Cow<'_, str>>(arg.get()).ok();
            send_to_all(floor, Some(arg.get()), text.as_deref());
        }
        if let Some(id) = id {
            write_void_completion(Proto::Json, id, out);
        }
    } else if let Some(id) = id {
        out.extend_from_slice(b"{\"type\":3,\"invocationId\":");
        wire::write_json_str(out, id);
        out.extend_from_slice(b",\"error\":\"Unknown hub method\"}\x1e");
    }
    Ok(())
}

fn msgpack_message(body: &[u8], floor: &Floor, out: &mut Vec<u8>) -> Result<(), Stop> {
    use rmpv::ValueRef;
    let mut cursor = body;
    let Ok(ValueRef::Array(items)) = rmpv::decode::read_value_ref(&mut cursor) else {
        return Err(Stop);
    };
    match items.first().and_then(ValueRef::as_u64) {
        Some(1) => {}
        Some(7) => return Err(Stop),
        _ => return Ok(()),
    }
    let str_at = |i: usize| match items.get(i) {
        Some(ValueRef::String(s)) => s.as_str(),
        _ => None,
    };
    let id = str_at(2);
    let target = str_at(3).unwrap_or("");
    let argument = match items.get(4) {
        Some(ValueRef::Array(args)) => args.first(),
        _ => None,
    };
    if target.eq_ignore_ascii_case("echo") {
        if let (Some(id), Some(arg)) = (id, argument) {
            let mut body = Vec::with_capacity(16 + id.len() + 8);
            let _ = rmp::encode::write_array_len(&mut body, 5);
            let _ = rmp::encode::write_uint(&mut body, 3);
            let _ = rmp::encode::write_map_len(&mut body, 0);
            let _ = rmp::encode::write_str(&mut body, id);
            let _ = rmp::encode::write_uint(&mut body, 3);
            let _ = rmpv::encode::write_value_ref(&mut body, arg);
            wire::write_varint(out, body.len());
            out.extend_from_slice(&body);
        }
    } else if target.eq_ignore_ascii_case("sendtoall") {
        let text = match argument {
            Some(ValueRef::String(s)) => s.as_str(),
            _ => None,
        };
        send_to_all(floor, None, text);
        if let Some(id) = id {
            write_void_completion(Proto::MessagePack, id, out);
        }
    } else if let Some(id) = id {
        let mut body = Vec::new();
        let _ = rmp::encode::write_array_len(&mut body, 5);
        let _ = rmp::encode::write_uint(&mut body, 3);
        let _ = rmp::encode::write_map_len(&mut body, 0);
        let _ = rmp::encode::write_str(&mut body, id);
        let _ = rmp::encode::write_uint(&mut body, 1);
        let _ = rmp::encode::write_str(&mut body, "Unknown hub method");
        wire::write_varint(out, body.len());
        out.extend_from_slice(&body);
    }
    Ok(())
}

fn write_void_completion(proto: Proto, id: &str, out: &mut Vec<u8>) {
    match proto {
        Proto::Json => {
            out.extend_from_slice(b"{\"type\":3,\"invocationId\":");
            wire::write_json_str(out, id);
            out.extend_from_slice(b"}\x1e");
        }
        Proto::MessagePack => {
            let mut body = Vec::with_capacity(8 + id.len());
            let _ = rmp::encode::write_array_len(&mut body, 4);
            let _ = rmp::encode::write_uint(&mut body, 3);
            let _ = rmp::encode::write_map_len(&mut body, 0);
            let _ = rmp::encode::write_str(&mut body, id);
            let _ = rmp::encode::write_uint(&mut body, 2);
            wire::write_varint(out, body.len());
            out.extend_from_slice(&body);
        }
    }
}

/// `Receive(message)` to every connection, encoded once per protocol that has connections.
/// `json_raw` is the argument's JSON text when it came in JSON; `text` is the argument as a
/// string (the only kind of argument the floor converts between protocols).
fn send_to_all(floor: &Floor, json_raw: Option<&str>, text: Option<&str>) {
    let deliver = |registry: &Registry, frame: Bytes| {
        for outbox in registry.lock().unwrap_or_else(|p| p.into_inner()).values() {
            // A full outbox: that slow client misses this message (the harness counts it).
            let _ = outbox.try_send(frame.clone());
        }
    };
    let in_use = |registry: &Registry| !registry.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
    if in_use(&floor.json) {
        let mut frame = Vec::with_capacity(48 + json_raw.map_or(0, str::len));
        frame.extend_from_slice(b"{\"type\":1,\"target\":\"Receive\",\"arguments\":[");
        match (json_raw, text) {
            (Some(raw), _) => frame.extend_from_slice(raw.as_bytes()),
            (None, Some(text)) => wire::write_json_str(&mut frame, text),
            (None, None) => frame.extend_from_slice(b"null"),
        }
        frame.extend_from_slice(b"]}\x1e");
        deliver(&floor.json, Bytes::from(frame));
    }
    if in_use(&floor.msgpack) {
        let mut frame = Vec::new();
        Proto::MessagePack.write_invocation(&mut frame, None, "Receive", text.unwrap_or(""));
        deliver(&floor.msgpack, Bytes::from(frame));
    }
}
