//! What a handler may know about the HTTP request that carried the transport.

use std::net::SocketAddr;

use http::HeaderMap;

/// The transports a connection can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// A full-duplex WebSocket.
    WebSockets,
    /// Server-Sent Events down, HTTP POST up.
    ServerSentEvents,
    /// Long polling down, HTTP POST up.
    LongPolling,
}

impl TransportKind {
    /// The name negotiate and the official clients use.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::WebSockets => "WebSockets",
            TransportKind::ServerSentEvents => "ServerSentEvents",
            TransportKind::LongPolling => "LongPolling",
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The HTTP request that carried a transport (the WebSocket upgrade, for example): its query
/// string, headers and cookies.
///
/// ```
/// use hub_runtime::RequestContext;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("cookie", "a=1; b=two".parse().unwrap());
/// let req = RequestContext::new("x=1&name=J%C3%BCrgen", headers, None);
/// assert_eq!(req.query("name"), Some("Jürgen"));
/// assert_eq!(req.cookie("b").as_deref(), Some("two"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    query: Vec<(String, String)>,
    headers: HeaderMap,
    remote_addr: Option<SocketAddr>,
    transport: Option<TransportKind>,
}

impl RequestContext {
    /// Builds a request context from a raw query string (without `?`) and headers.
    pub fn new(raw_query: &str, headers: HeaderMap, remote_addr: Option<SocketAddr>) -> Self {
        let query = form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
        RequestContext {
            query,
            headers,
            remote_addr,
            transport: None,
        }
    }

    pub(crate) fn with_transport(mut self, transport: TransportKind) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every query parameter, in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value as text (names are case-insensitive). `None` when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// The peer's socket address, when known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The transport this request carried (`None` for negotiate).
    pub fn transport(&self) -> Option<TransportKind> {
        self.transport
    }

    /// The bearer token of the request: the `Authorization: Bearer …` header or, as browsers
    /// must send it on WebSockets and Server-Sent Events, the `access_token` query parameter.
    pub fn bearer_token(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .or_else(|| self.query("access_token"))
    }
}
