//! A small test client for the integration tests: a server on a loopback port, raw HTTP/1.1
//! requests, and a SignalR JSON client over a real WebSocket. Every wait is bounded by
//! [`TIMEOUT`], so a broken server fails a test instead of hanging it.

#![allow(dead_code)]

pub mod brokers;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hub_runtime::HubServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single step of a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The record separator that ends every JSON hub message.
pub const RS: char = '\u{1e}';

/// Awaits `future`, failing the test if it takes longer than [`TIMEOUT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {TIMEOUT:?}: {what}"),
    }
}

/// Polls `condition` until it holds (for state no message tells the client about).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Events recorded by a test hub, with a way to wait for one.
#[derive(Default, Clone)]
pub struct Events {
    inner: Arc<(Mutex<Vec<String>>, Notify)>,
}

impl Events {
    pub fn push(&self, event: impl Into<String>) {
        self.inner.0.lock().unwrap().push(event.into());
        self.inner.1.notify_waiters();
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.inner.0.lock().unwrap().clone()
    }

    /// Waits until some recorded event satisfies `predicate`, and returns it.
    pub async fn wait_for(&self, what: &str, predicate: impl Fn(&str) -> bool) -> String {
        within(what, async {
            loop {
                let notified = self.inner.1.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(found) = self.snapshot().into_iter().find(|e| predicate(e)) {
                    return found;
                }
                notified.await;
            }
        })
        .await
    }
}

/// A server serving on its own loopback port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub server: HubServer,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `server` on `127.0.0.1:0`.
    pub async fn start(server: HubServer) -> TestServer {
        init_logging();
        let (listener, addr) = hub_runtime::server::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.clone();
        let routes = serving.filter();
        let task = tokio::spawn(serving.serve_with(listener, routes, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            server,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `ws://ADDR/path`.
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.addr, path_and_query)
    }

    /// Negotiates (version 1) and connects a hub client, with the handshake done.
    pub async fn connect(&self, path: &str) -> Client {
        Client::connect(self.addr, path, "").await
    }

    /// Like [`TestServer::connect`], adding `query` to negotiate and the WebSocket URL.
    pub async fn connect_with_query(&self, path: &str, query: &str) -> Client {
        Client::connect(self.addr, path, query).await
    }

    /// Sends an HTTP request and reads the whole response.
    pub async fn http(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        http(self.addr, method, path_and_query, headers, body).await
    }

    /// POSTs `path/negotiate?query`.
    pub async fn negotiate(&self, path: &str, query: &str) -> HttpResponse {
        let target = if query.is_empty() {
            format!("{path}/negotiate")
        } else {
            format!("{path}/negotiate?{query}")
        };
        self.http("POST", &target, &[], "").await
    }

    /// Waits for the serving task to finish (after a shutdown), returning how long it took.
    pub async fn join(&mut self) -> Duration {
        let started = Instant::now();
        let task = self.task.take().expect("joined once");
        within("serve_with to return", task)
            .await
            .expect("the serving task does not panic");
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A response read by [`http`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// A header's value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the response until the server closes.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    within(&format!("{method} {path_and_query}"), async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut request = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        parse_response(&raw)
    })
    .await
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    HttpResponse { status, headers, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server did instead of sending a message.
#[derive(Debug)]
pub enum Ended {
    /// A WebSocket close frame (or the end of the stream).
    Closed,
    /// The socket failed.
    Error(String),
}

/// A SignalR JSON hub client (or a raw WebSocket client) over a real WebSocket.
pub struct Client {
    ws: Socket,
    pending: VecDeque<Value>,
    next_id: u64,
    /// From negotiate, when the client negotiated.
    pub connection_id: Option<String>,
    /// From negotiate, when the client negotiated.
    pub connection_token: Option<String>,
}

impl Client {
    /// Opens a WebSocket to `url` (no negotiate, no handshake). The error is what the upgrade
    /// got instead (an HTTP response for a refused upgrade).
    pub async fn open(url: &str) -> Result<Client, tungstenite::Error> {
        let (ws, _) = within(&format!("WebSocket to {url}"), tokio_tungstenite::connect_async(url)).await?;
        Ok(Client {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
            connection_id: None,
            connection_token: None,
        })
    }

    /// The HTTP status of a refused upgrade.
    pub async fn open_status(url: &str) -> u16 {
        match Client::open(url).await {
            Ok(_) => panic!("the upgrade to {url} was accepted"),
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(e) => panic!("the upgrade to {url} failed without a response: {e}"),
        }
    }

    /// Negotiates (version 1), opens the WebSocket with the token, and completes the handshake.
    pub async fn connect(addr: SocketAddr, path: &str, query: &str) -> Client {
        let extra = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        let negotiated = http(
            addr,
            "POST",
            &format!("{path}/negotiate?negotiateVersion=1{extra}"),
            &[],
            "",
        )
        .await;
        assert_eq!(negotiated.status, 200, "negotiate: {negotiated:?}");
        let body = negotiated.json();
        let token = body["connectionToken"].as_str().expect("a connectionToken").to_string();
        let id = body["connectionId"].as_str().expect("a connectionId").to_string();
        let url = format!("ws://{addr}{path}?id={token}{extra}");
        let mut client = Client::open(&url).await.expect("the WebSocket opens");
        client.connection_id = Some(id);
        client.connection_token = Some(token);
        client.handshake().await;
        client
    }

    /// Sends the JSON handshake and expects the success reply `{}`.
    pub async fn handshake(&mut self) {
        self.send_text(&format!("{{\"protocol\":\"json\",\"version\":1}}{RS}"))
            .await;
        let reply = self.recv().await;
        assert_eq!(reply, json!({}), "handshake reply");
    }

    /// Sends one text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        within("send a text frame", self.ws.send(Message::text(text.to_string())))
            .await
            .expect("send a text frame");
    }

    /// Sends one binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        within("send a binary frame", self.ws.send(Message::binary(data.to_vec())))
            .await
            .expect("send a binary frame");
    }

    /// Sends one hub message (adds the record separator).
    pub async fn send(&mut self, message: &Value) {
        self.send_text(&format!("{message}{RS}")).await;
    }

    /// Sends a blocking invocation with a fresh id; returns the id.
    pub async fn invoke(&mut self, target: &str, arguments: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(&json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments}))
            .await;
        id
    }

    /// Sends a non-blocking invocation (no invocationId: no reply expected).
    pub async fn send_invocation(&mut self, target: &str, arguments: Value) {
        self.send(&json!({"type": 1, "target": target, "arguments": arguments}))
            .await;
    }

    /// Invokes and waits for the Completion, which must be the next message apart from pings.
    pub async fn call(&mut self, target: &str, arguments: Value) -> Value {
        let id = self.invoke(target, arguments).await;
        let reply = self.recv_skip_pings().await;
        assert_eq!(reply["type"], 3, "expected the completion of {target}, got {reply}");
        assert_eq!(reply["invocationId"], id.as_str(), "completion of {target}");
        reply
    }

    /// Invokes and returns the Completion's `result` (failing on an error).
    pub async fn call_ok(&mut self, target: &str, arguments: Value) -> Value {
        let reply = self.call(target, arguments).await;
        assert!(reply.get("error").is_none(), "{target} failed: {reply}");
        reply.get("result").cloned().unwrap_or(Value::Null)
    }

    /// Invokes and returns the Completion's `error` text (failing on success).
    pub async fn call_err(&mut self, target: &str, arguments: Value) -> String {
        let reply = self.call(target, arguments).await;
        assert!(reply.get("result").is_none(), "{target} should fail: {reply}");
        reply["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{target} should fail: {reply}"))
            .to_string()
    }

    /// The next WebSocket frame, or how the socket ended.
    pub async fn next_frame(&mut self) -> Result<Message, Ended> {
        loop {
            match within("the next WebSocket frame", self.ws.next()).await {
                None => return Err(Ended::Closed),
                Some(Err(e)) => return Err(Ended::Error(e.to_string())),
                Some(Ok(Message::Close(_))) => return Err(Ended::Closed),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(message)) => return Ok(message),
            }
        }
    }

    /// The next hub message (of any type), or how the socket ended.
    pub async fn try_recv(&mut self) -> Result<Value, Ended> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                return Ok(message);
            }
            let frame = self.next_frame().await?;
            let text = match &frame {
                Message::Text(text) => text.as_str().to_string(),
                other => panic!("expected a text frame, got {other:?}"),
            };
            assert!(
                text.ends_with(RS),
                "a text frame must end with the record separator: {text:?}"
            );
            for record in text.split(RS).filter(|r| !r.is_empty()) {
                let value = serde_json::from_str(record).unwrap_or_else(|e| panic!("not JSON ({e}): {record:?}"));
                self.pending.push_back(value);
            }
        }
    }

    /// The next hub message (of any type).
    pub async fn recv(&mut self) -> Value {
        match self.try_recv().await {
            Ok(message) => message,
            Err(ended) => panic!("expected a message, the socket ended: {ended:?}"),
        }
    }

    /// The next hub message that is not a Ping.
    pub async fn recv_skip_pings(&mut self) -> Value {
        loop {
            let message = self.recv().await;
            if message["type"] != 6 {
                return message;
            }
        }
    }

    /// Expects the socket to end (a close frame or the end of the stream), with no message first.
    pub async fn expect_closed(&mut self) {
        match self.try_recv().await {
            Err(_) => {}
            Ok(message) => panic!("expected the socket to close, got {message}"),
        }
    }

    /// Expects a Close hub message (Pings before it are skipped), then the socket to end;
    /// returns the Close message.
    pub async fn expect_close_message(&mut self) -> Value {
        let message = self.recv_skip_pings().await;
        assert_eq!(message["type"], 7, "expected a Close message, got {message}");
        self.expect_closed().await;
        message
    }

    /// Closes the WebSocket cleanly (a close frame), and waits for the server's close.
    pub async fn close(mut self) {
        let _ = within("close the WebSocket", self.ws.close(None)).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(TIMEOUT, self.ws.next()).await {}
    }
}
