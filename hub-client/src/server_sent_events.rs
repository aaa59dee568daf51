//! Server-Sent Events: a GET whose response streams the server's messages as events, a POST
//! per batch of the client's messages. Text (JSON) only.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{CloseReason, Error, Result};
use crate::http::HttpClient;
use crate::incoming::Incoming;

/// A Server-Sent Events transport: the event stream is read in its own task.
pub(crate) struct ServerSentEvents {
    http: HttpClient,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    received: mpsc::UnboundedReceiver<Incoming>,
    reading: JoinHandle<()>,
}

impl ServerSentEvents {
    /// Opens the event stream at `url` (which carries the connection's `id`); `headers` carry
    /// the user's and the bearer token.
    pub(crate) async fn connect(
        http: HttpClient,
        url: String,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Self> {
        let (status, body) = http.get_stream(&url, &headers).await?;
        if status != StatusCode::OK {
            let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(Error::Transport(format!(
                "the event stream failed: {}: Status code '{}'",
                String::from_utf8_lossy(&text),
                status.as_u16()
            )));
        }
        let (sink, received) = mpsc::unbounded_channel();
        let reading = tokio::spawn(read_events(body, sink));
        Ok(ServerSentEvents {
            http,
            url,
            headers,
            received,
            reading,
        })
    }

    pub(crate) async fn recv(&mut self) -> Incoming {
        self.received.recv().await.unwrap_or_else(|| {
            Incoming::Closed(CloseReason::Failed(Error::Transport("the event stream stopped".into())))
        })
    }

    /// POSTs `bytes` (one or more framed messages).
    pub(crate) async fn send(&mut self, bytes: Bytes) -> Result<()> {
        self.http.send_messages(&self.url, &self.headers, bytes).await
    }

    /// Closes the event stream (the server sees the request end).
    pub(crate) fn close(&mut self) {
        self.reading.abort();
    }
}

impl Drop for ServerSentEvents {
    fn drop(&mut self) {
        self.reading.abort();
    }
}

async fn read_events(mut body: hyper::body::Incoming, sink: mpsc::UnboundedSender<Incoming>) {
    let mut parser = EventParser::default();
    loop {
        let incoming = match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else { continue };
                for event in parser.push(&data) {
                    if sink.send(Incoming::Data(event)).is_err() {
                        return;
                    }
                }
                continue;
            }
            Some(Err(e)) => Incoming::Closed(CloseReason::Failed(Error::Transport(format!(
                "reading the event stream: {e}"
            )))),
            None => Incoming::Closed(CloseReason::ByServer {
                error: None,
                allow_reconnect: false,
            }),
        };
        let _ = sink.send(incoming);
        return;
    }
}

/// Splits an event stream into the data of its events: `data:` lines joined by `\n`, an
/// event ended by an empty line; other fields and comments are ignored.
#[derive(Default)]
struct EventParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl EventParser {
    fn push(&mut self, bytes: &[u8]) -> Vec<Bytes> {
        let mut events = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            if line.is_empty() {
                if self.has_data {
                    events.push(Bytes::from(std::mem::take(&mut self.data)));
                    self.has_data = false;
                }
            } else if let Some(value) = line.strip_prefix(b"data:") {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
                self.has_data = true;
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_data_lines_ended_by_an_empty_line_in_any_split() {
        let stream = b":comment\r\ndata: {\"type\":6}\x1e\r\n\r\ndata: a\r\ndata:b\n\nevent: x\n\n";
        for split in 0..stream.len() {
            let mut parser = EventParser::default();
            let mut events = parser.push(&stream[..split]);
            events.extend(parser.push(&stream[split..]));
            assert_eq!(
                events,
                [Bytes::from_static(b"{\"type\":6}\x1e"), Bytes::from_static(b"a\nb")],
                "split at {split}"
            );
        }
    }
}
