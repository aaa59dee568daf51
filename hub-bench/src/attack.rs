//! The attackers of the hostile scenarios. Each runs until told to stop, reopening whatever
//! the server closes, so the pressure lasts the whole attack; each counts what it did.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, ConnectSpec};
use crate::http::{self, HttpConn, Request};
use crate::wire::Proto;

/// Largest frame or POST body of a flood: the servers' frame limit (1 MiB).
pub const FLOOD_BYTES: usize = 1 << 20;
/// Concurrent POSTs per long-polling connection in the POST flood.
pub const POSTS_PER_CONNECTION: usize = 8;
/// Time between two bytes of a slowloris request.
const SLOWLORIS_BYTE_INTERVAL: Duration = Duration::from_millis(500);

/// What the attackers did, counted together.
pub struct AttackStats {
    /// Frames, POSTs or negotiates the server took (answered 200 or accepted).
    pub ops: AtomicU64,
    pub bytes: AtomicU64,
    /// Requests answered with a status other than 200 (the server refusing: 413, 429, 503…).
    pub refused: AtomicU64,
    /// Opens and requests that failed (connect errors, timeouts, resets).
    pub failures: AtomicU64,
    /// Connections the server closed (then reopened).
    pub closed_by_server: AtomicU64,
    /// Slowloris: connections open now.
    pub open_now: AtomicI64,
    /// Slowloris: how long the server let a connection dribble before closing it (ms).
    pub close_after_ms: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

impl AttackStats {
    pub fn new() -> Arc<Self> {
        Arc::new(AttackStats {
            ops: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            closed_by_server: AtomicU64::new(0),
            open_now: AtomicI64::new(0),
            close_after_ms: Mutex::new(Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid histogram bounds")),
            first_error: Mutex::new(None),
        })
    }

    fn done(&self, bytes: usize) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn fail(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.remember(error);
    }

    fn remember(&self, error: String) {
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What every attacker gets.
#[derive(Clone)]
pub struct AttackContext {
    /// WebSocket connections of the attack (negotiated, on `/testhub`).
    pub spec: ConnectSpec,
    pub stats: Arc<AttackStats>,
    pub stop: watch::Receiver<bool>,
}

impl AttackContext {
    fn server(&self) -> SocketAddr {
        self.spec.server
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `time`, or less when told to stop; returns whether to go on.
    async fn pause(&self, time: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(time) => !self.stopped(),
            _ = until_stopped(&mut stop) => false,
        }
    }
}

/// Resolves once the attack is told to stop (or the sender is gone).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Tiny messages repeated up to one flood's size: invocations (`Echo("x")`, no id) or Pings.
pub fn flood_bytes(proto: Proto, pings: bool) -> Vec<u8> {
    let mut one = Vec::new();
    if pings {
        proto.write_ping(&mut one);
    } else {
        proto.write_invocation(&mut one, None, "Echo", "x");
    }
    let mut out = Vec::with_capacity(FLOOD_BYTES);
    while out.len() + one.len() <= FLOOD_BYTES {
        out.extend_from_slice(&one);
    }
    out
}

/// Frame flood: 1 MiB frames of tiny invocations (`pings`: of Pings), as fast as the server
/// takes them. The server's own messages are read and dropped.
pub async fn frame_flood(ctx: AttackContext, index: usize, pings: bool) {
    let frame: Message = ctx.spec.proto.frame(flood_bytes(ctx.spec.proto, pings));
    let size = client::payload(&frame).map_or(0, <[u8]>::len);
    let mut stop = ctx.stop.clone();
    while !ctx.stopped() {
        let ws = match client::open(&ctx.spec, index).await {
            Ok(ws) => ws,
            Err(e) => {
                ctx.stats.fail(format!("frame flood: open: {e}"));
                if !ctx.pause(Duration::from_millis(200)).await {
                    return;
                }
                continue;
            }
        };
        let (mut sink, mut stream) = ws.split();
        let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        let ended = loop {
            tokio::select! {
                _ = until_stopped(&mut stop) => break None,
                sent = sink.send(frame.clone()) => match sent {
                    Ok(()) => ctx.stats.done(size),
                    Err(e) => break Some(e),
                },
            }
        };
        drain.abort();
        match ended {
            None => return,
            Some(e) => {
                ctx.stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
                ctx.stats.remember(format!("frame flood: send: {e}"));
            }
        }
    }
}

/// Starts a long-polling connection on `/testhub`: negotiate, first poll, handshake POST.
/// Returns the connection token.
pub async fn long_poll_start(server: SocketAddr, path: &str, proto: Proto) -> Result<String, String> {
    let (_, token) = http::negotiate(server, path, "").await?;
    let url = format!("{path}?id={}", http::percent_encode(&token));
    let limit = Duration::from_secs(20);
    let first = http::once(server, &Request::new("GET", &url), limit).await?;
    if first.head.status != 200 {
        return Err(format!("first poll: status {}", first.head.status));
    }
    let handshake = format!("{{\"protocol\":\"{}\",\"version\":1}}\u{1e}", proto.name());
    let request = Request {
        body: handshake.as_bytes(),
        ..Request::new("POST", &url)
    };
    let posted = http::once(server, &request, limit).await?;
    if posted.head.status != 200 {
        return Err(format!("handshake POST: status {}", posted.head.status));
    }
    Ok(token)
}

/// POST flood: long-polling connections, each with one poll always waiting and
/// [`POSTS_PER_CONNECTION`] POSTs of 1 MiB of invocations in flight. At the end each
/// connection is stopped with DELETE.
pub async fn post_flood(ctx: AttackContext, _index: usize) {
    let body = Bytes::from(flood_bytes(Proto::Json, false));
    let mut stop = ctx.stop.clone();
    while !ctx.stopped() {
        let token = match long_poll_start(ctx.server(), "/testhub", Proto::Json).await {
            Ok(token) => token,
            Err(e) => {
                ctx.stats.fail(format!("post flood: start: {e}"));
                if !ctx.pause(Duration::from_millis(200)).await {
                    return;
                }
                continue;
            }
        };
        let url = format!("/testhub?id={}", http::percent_encode(&token));
        let mut tasks = JoinSet::new();
        tasks.spawn(poll_until_over(ctx.clone(), url.clone()));
        for _ in 0..POSTS_PER_CONNECTION {
            tasks.spawn(post_repeatedly(ctx.clone(), url.clone(), body.clone()));
        }
        // The first task to end means the connection is over (or the attack is).
        tokio::select! {
            _ = until_stopped(&mut stop) => {}
            _ = tasks.join_next() => {}
        }
        let _ = http::once(ctx.server(), &Request::new("DELETE", &url), Duration::from_secs(5)).await;
        tasks.abort_all();
        if !ctx.stopped() {
            ctx.stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Keeps one long poll waiting (draining the server's messages) until the connection is over.
async fn poll_until_over(ctx: AttackContext, url: String) {
    let mut conn = None;
    while !ctx.stopped() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match HttpConn::connect(ctx.server()).await {
                Ok(c) => conn.insert(c),
                Err(e) => return ctx.stats.fail(format!("post flood: poll: {e}")),
            },
        };
        match c.request(&Request::new("GET", &url), Duration::from_secs(120)).await {
            Ok(response) if response.head.status == 200 => {}
            Ok(_) => return,
            Err(e) => return ctx.stats.fail(format!("post flood: poll: {e}")),
        }
    }
}

/// POSTs `body` again and again on one keep-alive connection until the connection is over.
async fn post_repeatedly(ctx: AttackContext, url: String, body: Bytes) {
    let mut conn: Option<HttpConn> = None;
    while !ctx.stopped() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match HttpConn::connect(ctx.server()).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    ctx.stats.fail(format!("post flood: connect: {e}"));
                    return;
                }
            },
        };
        let request = Request {
            headers: &[("Content-Type", "text/plain;charset=UTF-8")],
            body: &body,
            ..Request::new("POST", &url)
        };
        match c.request(&request, Duration::from_secs(30)).await {
            Ok(response) if response.head.status == 200 => ctx.stats.done(body.len()),
            // The connection is gone.
            Ok(response) if response.head.status == 404 || response.head.status == 204 => return,
            Ok(response) => {
                ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
                ctx.stats
                    .remember(format!("post flood: POST answered {}", response.head.status));
                if response.head.header("connection") == Some("close") {
                    conn = None;
                }
            }
            Err(e) => {
                ctx.stats.fail(format!("post flood: POST: {e}"));
                conn = None;
            }
        }
    }
}

/// Negotiate flood: `rate` negotiates per second from this worker, on one keep-alive
/// connection, none ever starting a transport.
pub async fn negotiate_flood(ctx: AttackContext, rate: f64) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = ctx.stop.clone();
    let mut conn: Option<HttpConn> = None;
    loop {
        tokio::select! {
            _ = until_stopped(&mut stop) => return,
            _ = tick.tick() => {}
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match HttpConn::connect(ctx.server()).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    ctx.stats.fail(format!("negotiate flood: connect: {e}"));
                    continue;
                }
            },
        };
        let request = Request::new("POST", "/testhub/negotiate?negotiateVersion=1");
        match c.request(&request, Duration::from_secs(10)).await {
            Ok(response) => {
                if response.head.status == 200 {
                    ctx.stats.done(response.body.len());
                } else {
                    ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
                    ctx.stats
                        .remember(format!("negotiate flood: answered {}", response.head.status));
                }
                if response.head.header("connection") == Some("close") {
                    conn = None;
                }
            }
            Err(e) => {
                ctx.stats.fail(format!("negotiate flood: {e}"));
                conn = None;
            }
        }
    }
}

/// The bytes of a request that never ends: a request line and headers, then ever more headers.
fn slowloris_byte(position: usize) -> u8 {
    const HEAD: &[u8] = b"GET /testhub HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: hub-bench-slowloris\r\n";
    if let Some(&b) = HEAD.get(position) {
        return b;
    }
    const MORE: &[u8] = b"X-Slow: 1\r\n";
    MORE[(position - HEAD.len()) % MORE.len()]
}

/// Slowloris: one connection sending its request one byte every 500 ms, never finishing;
/// when the server closes it, another one starts.
pub async fn slowloris(ctx: AttackContext, index: usize) {
    let mut stop = ctx.stop.clone();
    while !ctx.stopped() {
        let source = ctx.spec.sources[index % ctx.spec.sources.len()];
        let mut stream = match client::tcp(ctx.server(), source).await {
            Ok(stream) => stream,
            Err(e) => {
                ctx.stats.fail(format!("slowloris: connect: {e}"));
                if !ctx.pause(Duration::from_millis(200)).await {
                    return;
                }
                continue;
            }
        };
        ctx.stats.open_now.fetch_add(1, Ordering::Relaxed);
        let opened = Instant::now();
        let mut position = 0;
        let mut scratch = [0u8; 512];
        let closed = loop {
            tokio::select! {
                _ = until_stopped(&mut stop) => break false,
                read = stream.read(&mut scratch) => match read {
                    // An answer (408, 400) or the end: the server gave up on us.
                    Ok(_) | Err(_) => break true,
                },
                _ = tokio::time::sleep(SLOWLORIS_BYTE_INTERVAL) => {
                    if stream.write_all(&[slowloris_byte(position)]).await.is_err() {
                        break true;
                    }
                    position += 1;
                    ctx.stats.done(1);
                }
            }
        };
        ctx.stats.open_now.fetch_sub(1, Ordering::Relaxed);
        if !closed {
            return;
        }
        ctx.stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
        let ms = opened.elapsed().as_millis() as u64;
        ctx.stats
            .close_after_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .saturating_record(ms.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_are_whole_messages_within_one_frame() {
        for proto in [Proto::Json, Proto::MessagePack] {
            for pings in [false, true] {
                let bytes = flood_bytes(proto, pings);
                assert!(bytes.len() <= FLOOD_BYTES && bytes.len() > FLOOD_BYTES - 64);
                let mut count = 0;
                proto.parse(&bytes, |_| count += 1).unwrap();
                assert!(count > 20_000, "{count} messages");
            }
        }
    }

    #[test]
    fn slowloris_never_ends_its_headers() {
        let sent: Vec<u8> = (0..10_000).map(slowloris_byte).collect();
        assert!(sent.starts_with(b"GET /testhub HTTP/1.1\r\n"));
        assert!(!sent.windows(4).any(|w| w == b"\r\n\r\n"));
    }
}
