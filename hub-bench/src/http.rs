//! A minimal HTTP/1.1 client over one TCP connection: requests with keep-alive, responses
//! with a length or chunked body, and a chunked body read piece by piece (Server-Sent Events).
//! Enough for negotiate, long polling, SSE and `/health`; every read is bounded in size.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body read.
const MAX_BODY: usize = 8 << 20;

/// A response's status line and headers (names in lower case).
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

/// One request to send: method, path with query, extra headers, body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Request {
            method,
            path,
            headers: &[],
            body: &[],
        }
    }
}

/// One client connection.
pub struct HttpConn {
    stream: TcpStream,
    host: String,
    /// Bytes read past what was consumed.
    buf: Vec<u8>,
}

impl HttpConn {
    /// Connects to `server` (loopback, from 127.0.0.1).
    pub async fn connect(server: SocketAddr) -> Result<HttpConn, String> {
        let stream = TcpStream::connect(server).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(HttpConn {
            stream,
            host: server.to_string(),
            buf: Vec::new(),
        })
    }

    /// Writes a request (the body with a Content-Length).
    pub async fn send(&mut self, request: &Request<'_>) -> Result<(), String> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            request.method,
            request.path,
            self.host,
            request.body.len()
        );
        for (name, value) in request.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        if !request.body.is_empty() {
            self.stream
                .write_all(request.body)
                .await
                .map_err(|e| format!("write body: {e}"))?;
        }
        Ok(())
    }

    /// Reads more bytes into the buffer; an error at the end of the stream.
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed by the server".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads a response's status line and headers.
    pub async fn read_head(&mut self) -> Result<Head, String> {
        let end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if self.buf.len() > MAX_HEAD {
                return Err("response head too large".into());
            }
            self.fill().await?;
        };
        let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line '{status_line}'"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(Head { status, headers })
    }

    /// Reads the body that follows `head` (length, chunked, or none for 1xx/204/304).
    pub async fn read_body(&mut self, head: &Head) -> Result<Vec<u8>, String> {
        if head.status == 204 || head.status == 304 || head.status < 200 {
            return Ok(Vec::new());
        }
        if head.chunked() {
            let mut body = Vec::new();
            while let Some(chunk) = self.next_chunk().await? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err("response body too large".into());
                }
            }
            return Ok(body);
        }
        let length: usize = match head.header("content-length") {
            Some(v) => v.parse().map_err(|_| format!("bad content-length '{v}'"))?,
            None => return Err("response without a length (not supported)".into()),
        };
        if length > MAX_BODY {
            return Err("response body too large".into());
        }
        while self.buf.len() < length {
            self.fill().await?;
        }
        Ok(self.buf.drain(..length).collect())
    }

    /// The next piece of a chunked body; `None` after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let line_end = loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                break end;
            }
            if self.buf.len() > 1024 {
                return Err("bad chunk size line".into());
            }
            self.fill().await?;
        };
        let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size '{size_text}'"))?;
        if size > MAX_BODY {
            return Err("chunk too large".into());
        }
        while self.buf.len() < line_end + 2 + size + 2 {
            self.fill().await?;
        }
        let chunk: Vec<u8> = self.buf[line_end + 2..line_end + 2 + size].to_vec();
        self.buf.drain(..line_end + 2 + size + 2);
        Ok((size > 0).then_some(chunk))
    }

    /// Sends a request and reads the whole response, within `limit`.
    pub async fn request(&mut self, request: &Request<'_>, limit: Duration) -> Result<Response, String> {
        let exchange = async {
            self.send(request).await?;
            let head = self.read_head().await?;
            let body = self.read_body(&head).await?;
            Ok(Response { head, body })
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| format!("{} {}: no response within {limit:?}", request.method, request.path))?
    }
}

/// One request on a fresh connection.
pub async fn once(server: SocketAddr, request: &Request<'_>, limit: Duration) -> Result<Response, String> {
    let mut conn = tokio::time::timeout(limit, HttpConn::connect(server))
        .await
        .map_err(|_| "connect timed out".to_string())??;
    conn.request(request, limit).await
}

/// Negotiates (version 1) on `path` with `query` appended (`&useStatefulReconnect=true`);
/// returns (connectionId, connectionToken).
pub async fn negotiate(server: SocketAddr, path: &str, query: &str) -> Result<(String, String), String> {
    let url = format!("{path}/negotiate?negotiateVersion=1{query}");
    let response = once(server, &Request::new("POST", &url), Duration::from_secs(20)).await?;
    if response.head.status != 200 {
        return Err(format!("negotiate: status {}", response.head.status));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|e| format!("negotiate body: {e}"))?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    match (text("connectionId"), text("connectionToken")) {
        (Some(id), Some(token)) => Ok((id, token)),
        _ => Err(format!("negotiate body without an id and token: {value}")),
    }
}

/// What `GET /health` says: connections, and the group and user counts when it reports them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    pub connections: f64,
    pub groups: Option<f64>,
    pub users: Option<f64>,
}

/// Reads `GET /health` (5 s at most).
pub async fn health(server: SocketAddr) -> Result<Health, String> {
    let response = once(server, &Request::new("GET", "/health"), Duration::from_secs(5)).await?;
    let value: serde_json::Value = serde_json::from_slice(&response.body).map_err(|e| format!("health body: {e}"))?;
    let number = |name: &str| value.get(name).and_then(serde_json::Value::as_f64);
    Ok(Health {
        connections: number("connections").ok_or_else(|| format!("health without connections: {value}"))?,
        groups: number("groups"),
        users: number("users"),
    })
}

/// Percent-encodes a query value.
pub fn percent_encode(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot server answering every request with `reply`.
    async fn serve(reply: &'static [u8]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            socket.write_all(reply).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn reads_chunked_and_length_bodies() {
        let limit = Duration::from_secs(20);
        let addr =
            serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").await;
        let response = once(addr, &Request::new("GET", "/"), limit).await.unwrap();
        assert_eq!(response.body, b"abcde");
        let addr =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n{\"status\":\"ok\",\"connections\":3,\"groups\":0}")
                .await;
        let h = health(addr).await.unwrap();
        assert_eq!((h.connections, h.groups, h.users), (3.0, Some(0.0), None));
        let addr = serve(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let response = once(addr, &Request::new("DELETE", "/"), limit).await.unwrap();
        assert_eq!((response.head.status, response.body.len()), (204, 0));
    }
}
