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

/// Separators after a packed header's name: its value is plain or sensitive. Header values
/// never hold these bytes, nor LF (the http crate refuses control characters but tab).
const PLAIN: u8 = 0;
const SENSITIVE: u8 = 1;

/// Visible ASCII and tab: what `HeaderValue::to_str` accepts.
fn is_visible_ascii(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (32..127).contains(&b))
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
    /// The headers, packed into one buffer (`name`, `PLAIN` or `SENSITIVE`, `value`, LF; names
    /// in lower case): every connection keeps its request's headers, and a map spends about a
    /// hundred bytes on each.
    packed_headers: Box<[u8]>,
    /// The headers as a map, made when first asked for.
    header_map: std::sync::OnceLock<HeaderMap>,
    remote_addr: Option<SocketAddr>,
    transport: Option<TransportKind>,
    /// What outer layers put into the request: only while the request is authenticated
    /// (empty under the warp filter, and in the context a connection keeps).
    extensions: http::Extensions,
}

/// One header of a [`RequestContext`]'s packed headers.
struct PackedHeader<'a> {
    /// Lower-case name.
    name: &'a [u8],
    value: &'a [u8],
    /// The value was marked sensitive (`HeaderValue::is_sensitive`).
    sensitive: bool,
}

impl RequestContext {
    /// Builds a request context from a raw query string (without `?`) and headers.
    pub fn new(raw_query: &str, headers: HeaderMap, remote_addr: Option<SocketAddr>) -> Self {
        Self::from_request(raw_query, &headers, remote_addr)
    }

    /// Builds a request context, copying what it keeps of `headers`.
    pub(crate) fn from_request(raw_query: &str, headers: &HeaderMap, remote_addr: Option<SocketAddr>) -> Self {
        let query = form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
        let size = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 2).sum();
        let mut packed = Vec::with_capacity(size);
        for (name, value) in headers {
            packed.extend_from_slice(name.as_str().as_bytes());
            packed.push(if value.is_sensitive() { SENSITIVE } else { PLAIN });
            packed.extend_from_slice(value.as_bytes());
            packed.push(b'\n');
        }
        RequestContext {
            query,
            packed_headers: packed.into_boxed_slice(),
            header_map: std::sync::OnceLock::new(),
            remote_addr,
            transport: None,
            extensions: http::Extensions::new(),
        }
    }

    /// The same context with the request's extensions (what outer layers put into it).
    pub fn with_extensions(mut self, extensions: http::Extensions) -> Self {
        self.extensions = extensions;
        self
    }

    /// The request's extensions: what an outer tower layer (an app's own authentication, for
    /// example) put into the request before it reached the hub, for the endpoint's
    /// [`Authenticator`](crate::auth::Authenticator). Filled when the server is mounted as a
    /// tower service ([`HubServer::into_service`](crate::HubServer::into_service) or
    /// [`HubServer::layer`](crate::HubServer::layer)); empty under the warp filter, which cannot
    /// hand them over.
    ///
    /// A connection does not keep them: hosts put large values there (axum's `OriginalUri`
    /// shares the HTTP read buffer, 8 KiB or more), and a connection lives for hours. So
    /// `cx.request().extensions()` in a hub method is empty; an authenticator carries what hub
    /// methods need into the [`Identity`](crate::Identity) (its user id and claims).
    ///
    /// ```
    /// use hub_runtime::RequestContext;
    ///
    /// #[derive(Clone)]
    /// struct Session { user: String }
    ///
    /// let mut extensions = http::Extensions::new();
    /// extensions.insert(Session { user: "ana".into() });
    /// let request = RequestContext::new("", http::HeaderMap::new(), None).with_extensions(extensions);
    /// assert_eq!(request.extensions().get::<Session>().map(|s| s.user.as_str()), Some("ana"));
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The same context without the request's extensions, as connections keep it.
    pub(crate) fn without_extensions(mut self) -> Self {
        self.extensions = http::Extensions::new();
        self
    }

    /// Every header, in order.
    fn packed_entries(&self) -> impl Iterator<Item = PackedHeader<'_>> {
        self.packed_headers.split(|&b| b == b'\n').filter_map(|line| {
            let at = line.iter().position(|&b| b == PLAIN || b == SENSITIVE)?;
            Some(PackedHeader {
                name: &line[..at],
                value: &line[at + 1..],
                sensitive: line[at] == SENSITIVE,
            })
        })
    }

    /// The values of the header `name` (any case), in order.
    fn header_values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.packed_entries()
            .filter(move |header| header.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|header| header.value)
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
        self.header_map.get_or_init(|| {
            let mut map = HeaderMap::new();
            for PackedHeader { name, value, sensitive } in self.packed_entries() {
                let name = http::HeaderName::from_bytes(name);
                if let (Ok(name), Ok(mut value)) = (name, http::HeaderValue::from_bytes(value)) {
                    value.set_sensitive(sensitive);
                    map.append(name, value);
                }
            }
            map
        })
    }

    /// A header's value as text (names are case-insensitive). `None` when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        // As `HeaderValue::to_str`: visible ASCII only.
        self.header_values(name)
            .next()
            .filter(|v| is_visible_ascii(v))
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.header_values("cookie")
            .filter(|v| is_visible_ascii(v))
            .filter_map(|v| std::str::from_utf8(v).ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_in_any_case_and_rebuilt_as_a_map() {
        let mut headers = HeaderMap::new();
        headers.insert("x-one", "1".parse().unwrap());
        headers.append("cookie", "a=1".parse().unwrap());
        headers.append("cookie", "b=2; c=3".parse().unwrap());
        let mut secret: http::HeaderValue = "Bearer t0k".parse().unwrap();
        secret.set_sensitive(true);
        headers.insert("authorization", secret);
        headers.append(
            "cookie",
            http::HeaderValue::from_bytes("d=caf\u{e9}".as_bytes()).unwrap(),
        );
        headers.insert("x-bin", http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        let req = RequestContext::new("", headers.clone(), None);
        assert_eq!(req.header("X-One"), Some("1"));
        assert_eq!(req.header("x-missing"), None);
        // Not visible ASCII: not text, as with `HeaderValue::to_str`.
        assert_eq!(req.header("x-bin"), None);
        assert_eq!(req.cookie("a").as_deref(), Some("1"));
        assert_eq!(req.cookie("c").as_deref(), Some("3"));
        assert_eq!(req.bearer_token(), Some("t0k"));
        // A cookie header that is not visible ASCII is not read, as with `HeaderValue::to_str`.
        assert_eq!(req.cookie("d"), None);
        assert_eq!(req.headers(), &headers);
        assert!(req.headers()["authorization"].is_sensitive());
        assert_eq!(RequestContext::default().header("x-one"), None);
    }
}
