//! The soak's sessions: one short life of one client each, on WebSockets, Server-Sent Events
//! or Long Polling, most of them ending in a fault (an abrupt drop, a panicking call, a
//! cancelled stream, an abandoned upload, a stateful-reconnect client that never returns, a
//! client result never given, a consumer that stops reading).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use crate::attack;
use crate::client::{self, ConnectSpec, Ws};
use crate::http::{self, HttpConn, Request};
use crate::wire::{self, Incoming, Proto};

/// How long one wait for the server may take before the session counts as an error.
const WAIT: Duration = Duration::from_secs(10);

/// The kinds of session, run in turn by every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// WebSocket: ten echo calls, then a clean close.
    Echo,
    /// WebSocket: one echo call, then the socket dropped without a close.
    Drop,
    /// WebSocket: `Divide(7, 0)` (panics in the hub method), then an echo on the same socket.
    Divide,
    /// WebSocket: `InfiniteStream` cancelled with CancelInvocation; waits for `StreamCanceled`.
    CancelStream,
    /// WebSocket: `StreamingConcat` with items sent but the stream never completed; dropped.
    AbandonUpload,
    /// WebSocket with stateful reconnect: one echo, dropped, never re-attached.
    StatefulGone,
    /// WebSocket: `GET /clientresult/{id}` asks this client for `Result`; it never answers.
    ClientResultTimeout,
    /// WebSocket: eight 1 MiB frames of echo calls with 16 KiB payloads, never reading; dropped.
    SlowConsumer,
    /// WebSocket on `/broadcast?user=…`: join a group, send to it, then leave and close, or drop.
    Groups,
    /// Long Polling: three echo calls, then DELETE.
    LongPolling,
    /// Long Polling: one echo call, then a poll dropped while it waits.
    LongPollingDrop,
    /// Server-Sent Events (JSON): one echo call, then the event stream dropped.
    Sse,
}

pub const SESSIONS: [Session; 12] = [
    Session::Echo,
    Session::Drop,
    Session::Divide,
    Session::CancelStream,
    Session::AbandonUpload,
    Session::StatefulGone,
    Session::ClientResultTimeout,
    Session::SlowConsumer,
    Session::Groups,
    Session::LongPolling,
    Session::LongPollingDrop,
    Session::Sse,
];

/// What the sessions did, counted together.
#[derive(Default)]
pub struct Counters {
    pub sessions: AtomicU64,
    pub calls_completed: AtomicU64,
    pub errors: AtomicU64,
    pub abrupt_drops: AtomicU64,
    pub divide_completion_errors: AtomicU64,
    pub divide_lost: AtomicU64,
    pub divide_unavailable: AtomicU64,
    pub streams_cancelled: AtomicU64,
    pub uploads_abandoned: AtomicU64,
    pub stateful_abandoned: AtomicU64,
    pub client_results_timed_out: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub long_polls_dropped: AtomicU64,
    pub sse_dropped: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    pub fn error(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where the sessions go.
pub struct Target<'a> {
    pub server: SocketAddr,
    pub counters: &'a Counters,
    /// The worker's number (user names, group names).
    pub worker: usize,
    /// The server's client-result timeout, so the timeout session knows how long to wait.
    pub client_result_timeout: Duration,
}

/// Runs one session.
pub async fn run(session: Session, proto: Proto, t: &Target<'_>) -> Result<(), String> {
    match session {
        Session::Echo => {
            let mut ws = open(t, proto, "/testhub", "").await?;
            for i in 0..10 {
                echo(&mut ws, proto, t, &format!("e{i}")).await?;
            }
            close(ws).await;
            Ok(())
        }
        Session::Drop => {
            let mut ws = open(t, proto, "/testhub", "").await?;
            echo(&mut ws, proto, t, "e").await?;
            drop(ws);
            Counters::add(&t.counters.abrupt_drops);
            Ok(())
        }
        Session::Divide => divide(proto, t).await,
        Session::CancelStream => cancel_stream(proto, t).await,
        Session::AbandonUpload => abandon_upload(proto, t).await,
        Session::StatefulGone => {
            let mut ws = open(t, proto, "/testhub", "&useStatefulReconnect=true").await?;
            echo(&mut ws, proto, t, "e").await?;
            drop(ws);
            Counters::add(&t.counters.stateful_abandoned);
            Ok(())
        }
        Session::ClientResultTimeout => client_result_timeout(proto, t).await,
        Session::SlowConsumer => slow_consumer(proto, t).await,
        Session::Groups => groups(proto, t).await,
        Session::LongPolling => long_polling(proto, t, false).await,
        Session::LongPollingDrop => long_polling(proto, t, true).await,
        Session::Sse => sse(t).await,
    }
}

/// Opens a negotiated WebSocket on `path`; `query` adds parameters (`&useStatefulReconnect=true`
/// also selects protocol version 2).
async fn open(t: &Target<'_>, proto: Proto, path: &str, query: &str) -> Result<Ws, String> {
    let spec = ConnectSpec {
        server: t.server,
        sources: vec![std::net::Ipv4Addr::LOCALHOST],
        negotiate: true,
        proto,
        path: path.into(),
        query: query.into(),
        version: if query.contains("useStatefulReconnect") { 2 } else { 1 },
    };
    client::open(&spec, t.worker).await
}

async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

/// Sends one message given in its JSON form.
async fn send(ws: &mut Ws, proto: Proto, message: Value) -> Result<(), String> {
    let mut bytes = Vec::new();
    proto.write_message(&mut bytes, &message);
    ws.send(proto.frame(bytes)).await.map_err(|e| format!("send: {e}"))
}

/// Reads messages until `pick` returns something (at most [`WAIT`]).
async fn wait_for<T>(ws: &mut Ws, proto: Proto, mut pick: impl FnMut(&Incoming<'_>) -> Option<T>) -> Result<T, String> {
    let read = async {
        loop {
            let message = match ws.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(format!("read: {e}")),
                None => return Err("connection closed".to_string()),
            };
            let Some(data) = client::payload(&message) else {
                continue;
            };
            let mut found = None;
            let mut closed = None;
            proto.parse(data, |m| {
                if found.is_none() {
                    found = pick(&m);
                }
                if let Incoming::Close { error } = m {
                    closed = Some(format!("server sent Close {error:?}"));
                }
            })?;
            if let Some(found) = found {
                return Ok(found);
            }
            if let Some(closed) = closed {
                return Err(closed);
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .map_err(|_| format!("nothing within {WAIT:?}"))?
}

/// A call's outcome: the completion's result (a string result, if any) or its error.
type Completion = Result<Option<String>, String>;

/// Invokes `target(arguments)` with id `id` and waits for its completion.
async fn call(ws: &mut Ws, proto: Proto, id: &str, target: &str, arguments: Value) -> Result<Completion, String> {
    let message = json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments});
    send(ws, proto, message).await?;
    wait_for(ws, proto, |m| match m {
        Incoming::Completion { invocation_id, result } if invocation_id == id => Some(
            result
                .as_ref()
                .map(|r| r.as_ref().map(|s| s.to_string()))
                .map_err(String::clone),
        ),
        _ => None,
    })
    .await
}

/// One echo call that must come back unchanged.
async fn echo(ws: &mut Ws, proto: Proto, t: &Target<'_>, id: &str) -> Result<(), String> {
    let text = format!("soak {id}");
    match call(ws, proto, id, "Echo", json!([text])).await? {
        Ok(Some(back)) if back == text => {
            Counters::add(&t.counters.calls_completed);
            Ok(())
        }
        other => Err(format!("Echo answered {other:?}")),
    }
}

async fn divide(proto: Proto, t: &Target<'_>) -> Result<(), String> {
    let mut ws = open(t, proto, "/testhub", "").await?;
    let c = t.counters;
    match call(&mut ws, proto, "d", "Divide", json!([7, 0])).await {
        Ok(Err(error)) if error.contains("Method does not exist") => Counters::add(&c.divide_unavailable),
        Ok(Err(error)) if error.contains("An unexpected error occurred invoking 'Divide'") => {
            Counters::add(&c.divide_completion_errors)
        }
        Ok(other) => return Err(format!("Divide(7, 0) answered {other:?}")),
        Err(_) => {
            // The socket died: the panic got through.
            Counters::add(&c.divide_lost);
            return Ok(());
        }
    }
    echo(&mut ws, proto, t, "after").await?;
    close(ws).await;
    Ok(())
}

async fn cancel_stream(proto: Proto, t: &Target<'_>) -> Result<(), String> {
    let mut ws = open(t, proto, "/testhub", "").await?;
    let start = json!({"type": 4, "invocationId": "s", "target": "InfiniteStream", "arguments": [], "streamIds": []});
    send(&mut ws, proto, start).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(&mut ws, proto, json!({"type": 5, "invocationId": "s"})).await?;
    wait_for(&mut ws, proto, |m| match m {
        Incoming::Invocation { target, .. } if target == "StreamCanceled" => Some(()),
        _ => None,
    })
    .await
    .map_err(|e| format!("waiting for StreamCanceled: {e}"))?;
    Counters::add(&t.counters.streams_cancelled);
    echo(&mut ws, proto, t, "after").await?;
    close(ws).await;
    Ok(())
}

async fn abandon_upload(proto: Proto, t: &Target<'_>) -> Result<(), String> {
    let mut ws = open(t, proto, "/testhub", "").await?;
    let start =
        json!({"type": 1, "invocationId": "u", "target": "StreamingConcat", "arguments": [], "streamIds": ["7"]});
    send(&mut ws, proto, start).await?;
    for item in ["a", "b", "c"] {
        send(&mut ws, proto, json!({"type": 2, "invocationId": "7", "item": item})).await?;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(ws);
    Counters::add(&t.counters.uploads_abandoned);
    Ok(())
}

async fn client_result_timeout(proto: Proto, t: &Target<'_>) -> Result<(), String> {
    let mut ws = open(t, proto, "/testhub", "").await?;
    let id = match call(&mut ws, proto, "c", "GetCallerConnectionId", json!([])).await? {
        Ok(Some(id)) => id,
        other => return Err(format!("GetCallerConnectionId answered {other:?}")),
    };
    let url = format!("/clientresult/{}", http::percent_encode(&id));
    let limit = t.client_result_timeout + Duration::from_secs(15);
    let request = Request::new("GET", &url);
    let asked = http::once(t.server, &request, limit);
    tokio::pin!(asked);
    // Keep reading (and ignoring the `Result` invocation) while the server waits for us, and
    // keep the connection alive with Pings as the official clients do.
    let mut ping = tokio::time::interval(Duration::from_secs(1));
    let answer = loop {
        tokio::select! {
            answer = &mut asked => break answer?,
            message = ws.next() => if !matches!(message, Some(Ok(_))) {
                return Err("connection closed while a client result was pending".into());
            },
            _ = ping.tick() => send(&mut ws, proto, json!({"type": 6})).await?,
        }
    };
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    if body.parse::<i64>().is_ok() {
        return Err(format!(
            "client result answered a value ({body}) though the client gave none"
        ));
    }
    Counters::add(&t.counters.client_results_timed_out);
    close(ws).await;
    Ok(())
}

async fn slow_consumer(proto: Proto, t: &Target<'_>) -> Result<(), String> {
    let mut ws = open(t, proto, "/testhub", "").await?;
    let payload = "s".repeat(16 * 1024);
    let mut n = 0;
    let flood = async {
        for _ in 0..8 {
            let mut frame = Vec::with_capacity(1 << 20);
            while frame.len() + payload.len() + 100 < attack::FLOOD_BYTES {
                n += 1;
                proto.write_invocation(&mut frame, Some(&n.to_string()), "Echo", &payload);
            }
            if ws.send(proto.frame(frame)).await.is_err() {
                break;
            }
        }
    };
    // The server stops reading once enough calls wait: the sends may never finish.
    let _ = tokio::time::timeout(Duration::from_secs(5), flood).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(ws);
    Counters::add(&t.counters.slow_consumers);
    Ok(())
}

async fn groups(proto: Proto, t: &Target<'_>) -> Result<(), String> {
    let query = format!("&user=soak{}", t.worker);
    let mut ws = open(t, proto, "/broadcast", &query).await?;
    let group = format!("soak-{}", t.worker % 8);
    let expect_void = |what: &str, c: Completion| match c {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{what}: {e}")),
    };
    expect_void(
        "JoinGroup",
        call(&mut ws, proto, "j", "JoinGroup", json!([group])).await?,
    )?;
    expect_void(
        "SendToGroup",
        call(&mut ws, proto, "g", "SendToGroup", json!([group, "hello"])).await?,
    )?;
    Counters::add(&t.counters.calls_completed);
    if t.worker.is_multiple_of(2) {
        expect_void(
            "LeaveGroup",
            call(&mut ws, proto, "l", "LeaveGroup", json!([group])).await?,
        )?;
        close(ws).await;
    } else {
        drop(ws);
        Counters::add(&t.counters.abrupt_drops);
    }
    Ok(())
}

/// Polls until a message `pick` wants arrives (at most five polls).
async fn poll_for<T>(
    t: &Target<'_>,
    url: &str,
    proto: Proto,
    handshake_pending: &mut bool,
    mut pick: impl FnMut(&Incoming<'_>) -> Option<T>,
) -> Result<T, String> {
    for _ in 0..5 {
        let response = http::once(t.server, &Request::new("GET", url), WAIT + Duration::from_secs(90)).await?;
        if response.head.status != 200 {
            return Err(format!("poll: status {}", response.head.status));
        }
        let mut data: &[u8] = &response.body;
        if *handshake_pending && !data.is_empty() {
            data = wire::handshake_reply(data)?;
            *handshake_pending = false;
        }
        let mut found = None;
        proto.parse(data, |m| {
            if found.is_none() {
                found = pick(&m);
            }
        })?;
        if let Some(found) = found {
            return Ok(found);
        }
    }
    Err("five polls without the awaited message".into())
}

async fn long_polling(proto: Proto, t: &Target<'_>, drop_mid_poll: bool) -> Result<(), String> {
    let token = attack::long_poll_start(t.server, "/testhub", proto).await?;
    let url = format!("/testhub?id={}", http::percent_encode(&token));
    let content_type = match proto {
        Proto::Json => "text/plain;charset=UTF-8",
        Proto::MessagePack => "application/octet-stream",
    };
    let mut handshake_pending = true;
    for i in 0..if drop_mid_poll { 1 } else { 3 } {
        let id = format!("p{i}");
        let mut body = Vec::new();
        proto.write_invocation(&mut body, Some(&id), "Echo", "soak lp");
        let request = Request {
            headers: &[("Content-Type", content_type)],
            body: &body,
            ..Request::new("POST", &url)
        };
        let posted = http::once(t.server, &request, WAIT).await?;
        if posted.head.status != 200 {
            return Err(format!("POST: status {}", posted.head.status));
        }
        let result = poll_for(t, &url, proto, &mut handshake_pending, |m| match m {
            Incoming::Completion { invocation_id, result } if invocation_id == id.as_str() => {
                Some(result.as_ref().map(|r| r.is_some()).map_err(String::clone))
            }
            _ => None,
        })
        .await?;
        if result != Ok(true) {
            return Err(format!("long-polling Echo answered {result:?}"));
        }
        Counters::add(&t.counters.calls_completed);
    }
    if drop_mid_poll {
        let mut conn = HttpConn::connect(t.server).await?;
        conn.send(&Request::new("GET", &url)).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(conn);
        Counters::add(&t.counters.long_polls_dropped);
    } else {
        let deleted = http::once(t.server, &Request::new("DELETE", &url), WAIT).await?;
        if deleted.head.status != 202 {
            return Err(format!("DELETE: status {}", deleted.head.status));
        }
    }
    Ok(())
}

/// Reads Server-Sent Events until a message `pick` wants arrives.
async fn sse_wait<T>(
    conn: &mut HttpConn,
    pending: &mut String,
    handshake_pending: &mut bool,
    mut pick: impl FnMut(&Incoming<'_>) -> Option<T>,
) -> Result<T, String> {
    let read = async {
        loop {
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|l| l.strip_prefix(' ').unwrap_or(l))
                    .collect();
                let text = data.join("\n");
                let mut bytes = text.as_bytes();
                if *handshake_pending && !bytes.is_empty() {
                    bytes = wire::handshake_reply(bytes)?;
                    *handshake_pending = false;
                }
                let mut found = None;
                Proto::Json.parse(bytes, |m| {
                    if found.is_none() {
                        found = pick(&m);
                    }
                })?;
                if let Some(found) = found {
                    return Ok(found);
                }
            }
            match conn.next_chunk().await? {
                Some(chunk) => pending.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                None => return Err("event stream ended".to_string()),
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .map_err(|_| format!("no event within {WAIT:?}"))?
}

async fn sse(t: &Target<'_>) -> Result<(), String> {
    let (_, token) = http::negotiate(t.server, "/testhub", "").await?;
    let url = format!("/testhub?id={}", http::percent_encode(&token));
    let mut stream = HttpConn::connect(t.server).await?;
    stream
        .send(&Request {
            headers: &[("Accept", "text/event-stream")],
            ..Request::new("GET", &url)
        })
        .await?;
    let head = tokio::time::timeout(WAIT, stream.read_head())
        .await
        .map_err(|_| "no event-stream response".to_string())??;
    if head.status != 200 {
        return Err(format!("event stream: status {}", head.status));
    }
    let post = |body: Vec<u8>| {
        let url = url.clone();
        async move {
            let request = Request {
                headers: &[("Content-Type", "text/plain;charset=UTF-8")],
                body: &body,
                ..Request::new("POST", &url)
            };
            match http::once(t.server, &request, WAIT).await {
                Ok(r) if r.head.status == 200 => Ok(()),
                Ok(r) => Err(format!("POST: status {}", r.head.status)),
                Err(e) => Err(e),
            }
        }
    };
    post(b"{\"protocol\":\"json\",\"version\":1}\x1e".to_vec()).await?;
    let mut body = Vec::new();
    Proto::Json.write_invocation(&mut body, Some("1"), "Echo", "soak sse");
    post(body).await?;
    let mut pending = String::new();
    let mut handshake_pending = true;
    let result = sse_wait(&mut stream, &mut pending, &mut handshake_pending, |m| match m {
        Incoming::Completion { invocation_id, result } if invocation_id == "1" => {
            Some(result.as_ref().map(|r| r.is_some()).map_err(String::clone))
        }
        _ => None,
    })
    .await?;
    if result != Ok(true) {
        return Err(format!("SSE Echo answered {result:?}"));
    }
    Counters::add(&t.counters.calls_completed);
    drop(stream);
    Counters::add(&t.counters.sse_dropped);
    Ok(())
}
