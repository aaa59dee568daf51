//! Long polling: a GET that waits for the server's messages (200 with them, 200 empty after
//! the server's poll timeout, 204 at the end), a POST per batch of the client's messages, a
//! DELETE to stop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{CloseReason, Error, Result};
use crate::http::HttpClient;
use crate::incoming::Incoming;

/// How long a poll may take before the client gives up on it (the official clients' 100 s;
/// servers answer after 90 s at most).
const POLL_TIMEOUT: Duration = Duration::from_secs(100);

/// A long-polling transport: the poll loop runs in its own task.
pub(crate) struct LongPolling {
    http: HttpClient,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    received: mpsc::UnboundedReceiver<Incoming>,
    polling: JoinHandle<()>,
}

impl LongPolling {
    /// Makes the first poll (which the server answers at once), then starts polling.
    /// `url` carries the connection's `id`; `headers` the user's and the bearer token.
    pub(crate) async fn connect(
        http: HttpClient,
        url: String,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Self> {
        let first = poll(&http, &url, &headers).await?;
        if first.status != StatusCode::OK {
            return Err(Error::Transport(format!(
                "the first poll failed: {}: Status code '{}'",
                first.text(),
                first.status.as_u16()
            )));
        }
        let (sink, received) = mpsc::unbounded_channel();
        let polling = tokio::spawn(poll_loop(http.clone(), url.clone(), headers.clone(), sink));
        Ok(LongPolling {
            http,
            url,
            headers,
            received,
            polling,
        })
    }

    pub(crate) async fn recv(&mut self) -> Incoming {
        self.received
            .recv()
            .await
            .unwrap_or_else(|| Incoming::Closed(CloseReason::Failed(Error::Transport("long polling stopped".into()))))
    }

    /// POSTs `bytes` (one or more framed messages).
    pub(crate) async fn send(&mut self, bytes: Bytes) -> Result<()> {
        self.http.send_messages(&self.url, &self.headers, bytes).await
    }

    /// Stops polling and DELETEs the connection (the server then ends it).
    pub(crate) async fn close(&mut self) {
        self.polling.abort();
        let _ = self
            .http
            .request(Method::DELETE, &self.url, &self.headers, Bytes::new())
            .await;
    }
}

impl Drop for LongPolling {
    fn drop(&mut self) {
        self.polling.abort();
    }
}

/// One GET with the cache-buster `_`, bounded by [`POLL_TIMEOUT`].
async fn poll(http: &HttpClient, url: &str, headers: &[(HeaderName, HeaderValue)]) -> Result<crate::http::Response> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let url = format!("{url}&_={now}");
    tokio::time::timeout(POLL_TIMEOUT, http.request(Method::GET, &url, headers, Bytes::new()))
        .await
        .map_err(|_| Error::Transport("a poll timed out".into()))?
}

async fn poll_loop(
    http: HttpClient,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    sink: mpsc::UnboundedSender<Incoming>,
) {
    loop {
        let incoming = match poll(&http, &url, &headers).await {
            Ok(response) if response.status == StatusCode::OK => {
                if response.body.is_empty() {
                    continue;
                }
                Incoming::Data(response.body)
            }
            Ok(response) if response.status == StatusCode::NO_CONTENT => Incoming::Closed(CloseReason::ByServer {
                error: None,
                allow_reconnect: false,
            }),
            Ok(response) => Incoming::Closed(CloseReason::Failed(Error::Transport(format!(
                "a poll failed: {}: Status code '{}'",
                response.text(),
                response.status.as_u16()
            )))),
            Err(error) => Incoming::Closed(CloseReason::Failed(error)),
        };
        let end = matches!(incoming, Incoming::Closed(_));
        if sink.send(incoming).is_err() || end {
            return;
        }
    }
}
