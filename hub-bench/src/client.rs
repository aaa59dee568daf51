//! Opening hub connections: TCP from a chosen loopback source address, optional negotiate
//! (a raw HTTP POST), the WebSocket upgrade, and the hub handshake.

// libc calls (setsockopt (IP_BIND_ADDRESS_NO_PORT) on a socket this module owns); each block says why it is sound.
#![allow(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::wire::{self, Proto};

/// One client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// How long opening one connection (negotiate + upgrade + handshake) may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub server: SocketAddr,
    /// Source addresses, used round-robin (127.0.0.1, 127.0.0.2, …).
    pub sources: Vec<Ipv4Addr>,
    /// Negotiate first (`POST {path}/negotiate?negotiateVersion=1`), or skipNegotiation.
    pub negotiate: bool,
    pub proto: Proto,
    /// The hub path (`/broadcast`).
    pub path: String,
    /// Extra query parameters for negotiate and the WebSocket (`&user=a`), or empty.
    pub query: String,
    /// The hub protocol version of the handshake (1; 2 for stateful reconnect).
    pub version: u8,
}

/// The generator's own WebSocket settings: small buffers, so 19,000 of them stay cheap.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        // A limit, not a reservation: room for one whole 1 MiB frame (hostile scenarios).
        .max_write_buffer_size(4 << 20)
}

/// A TCP connection from `source` (port chosen at connect time, so the 4-tuple, not the
/// source port alone, has to be unique).
pub async fn tcp(server: SocketAddr, source: Ipv4Addr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let one: libc::c_int = 1;
    // SAFETY: a plain setsockopt on a socket we own, with a correctly sized int option.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Negotiates (version 1) and returns the connection token.
pub async fn negotiate(server: SocketAddr, source: Ipv4Addr, path: &str, query: &str) -> Result<String, String> {
    let mut stream = tcp(server, source)
        .await
        .map_err(|e| format!("negotiate connect: {e}"))?;
    let request = format!(
        "POST {path}/negotiate?negotiateVersion=1{query} HTTP/1.1\r\nHost: {server}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("negotiate write: {e}"))?;
    let mut response = Vec::with_capacity(1024);
    // Bounded: the server closes after one response; at most 64 KiB are read.
    let mut limited = (&mut stream).take(64 * 1024);
    limited
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("negotiate read: {e}"))?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("negotiate: no end of headers")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!("negotiate failed: {}", head.lines().next().unwrap_or("")));
    }
    let mut body = response[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body).ok_or("negotiate: bad chunked body")?;
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("negotiate body: {e}"))?;
    value
        .get("connectionToken")
        .or_else(|| value.get("connectionId"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("negotiate body without a token: {value}"))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
    None
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Opens connection number `index`: negotiate (if asked), upgrade, handshake.
pub async fn open(spec: &ConnectSpec, index: usize) -> Result<Ws, String> {
    match tokio::time::timeout(OPEN_TIMEOUT, open_inner(spec, index)).await {
        Ok(result) => result,
        Err(_) => Err("opening timed out".into()),
    }
}

async fn open_inner(spec: &ConnectSpec, index: usize) -> Result<Ws, String> {
    let source = spec.sources[index % spec.sources.len()];
    let query = if spec.negotiate {
        let token = negotiate(spec.server, source, &spec.path, &spec.query).await?;
        format!("?id={}{}", percent_encode(&token), spec.query)
    } else if let Some(rest) = spec.query.strip_prefix('&') {
        format!("?{rest}")
    } else {
        String::new()
    };
    let stream = tcp(spec.server, source)
        .await
        .map_err(|e| format!("connect from {source}: {e}"))?;
    let url = format!("ws://{}{}{}", spec.server, spec.path, query);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(client_config()))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    ws.send(spec.proto.handshake(spec.version))
        .await
        .map_err(|e| format!("handshake send: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                wire::handshake_reply(text.as_bytes())?;
                break;
            }
            Some(Ok(Message::Binary(bytes))) => {
                wire::handshake_reply(&bytes)?;
                break;
            }
            Some(Ok(Message::Close(_))) | None => return Err("closed during the handshake".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("handshake read: {e}")),
        }
    }
    Ok(ws)
}

/// The payload of a message: its bytes, whatever the frame kind.
pub fn payload(message: &Message) -> Option<&[u8]> {
    match message {
        Message::Text(text) => Some(text.as_bytes()),
        Message::Binary(bytes) => Some(bytes),
        _ => None,
    }
}
