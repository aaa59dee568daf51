//! Cross-origin requests (CORS) for negotiate and the HTTP transports.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

/// Which browser origins may call the server's endpoints, with credentials.
///
/// ```
/// use hub_runtime::Cors;
/// let cors = Cors::origins(["https://app.example"]);
/// assert!(cors.allows("https://app.example"));
/// assert!(!cors.allows("https://evil.example"));
/// let local = Cors::predicate(|origin| origin.starts_with("http://localhost:"));
/// assert!(local.allows("http://localhost:8080"));
/// ```
#[derive(Clone)]
pub struct Cors {
    allow: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    allowed_headers: &'static str,
}

/// The headers the official clients send.
const CLIENT_HEADERS: &str = "authorization, content-type, x-requested-with, x-signalr-user-agent";

impl Cors {
    /// Allows exactly these origins (scheme, host and port, as the browser sends them).
    pub fn origins(origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let list: Vec<String> = origins.into_iter().map(Into::into).collect();
        Cors::predicate(move |origin| list.iter().any(|o| o.eq_ignore_ascii_case(origin)))
    }

    /// Allows the origins for which `allow` returns true.
    pub fn predicate(allow: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Cors {
            allow: Arc::new(allow),
            allowed_headers: CLIENT_HEADERS,
        }
    }

    /// Allows `http(s)://localhost:*` and `http(s)://127.0.0.1:*` (development setups).
    pub fn localhost() -> Self {
        Cors::predicate(|origin| {
            let rest = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            let Some(rest) = rest else { return false };
            let host = rest.split(':').next().unwrap_or("");
            let port_ok = rest[host.len()..]
                .strip_prefix(':')
                .is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            (host == "localhost" || host == "127.0.0.1") && port_ok
        })
    }

    /// Whether `origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        (self.allow)(origin)
    }

    /// Adds the response headers for a request from an allowed origin.
    pub(crate) fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let Some(origin) = request.get(http::header::ORIGIN) else {
            return;
        };
        let Ok(origin_text) = origin.to_str() else {
            return;
        };
        response.append(http::header::VARY, HeaderValue::from_static("Origin"));
        if !self.allows(origin_text) {
            return;
        }
        response.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.insert(
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }

    /// Adds the preflight headers (the request's method and headers allowed).
    pub(crate) fn apply_preflight(&self, request: &HeaderMap, response: &mut HeaderMap) {
        self.apply(request, response);
        if !response.contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            return;
        }
        response.insert(
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        let headers = request
            .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static(self.allowed_headers));
        response.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
        response.insert(http::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
}

impl std::fmt::Debug for Cors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cors").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_on_any_port() {
        let c = Cors::localhost();
        assert!(c.allows("http://localhost:1234"));
        assert!(c.allows("https://127.0.0.1:9"));
        assert!(c.allows("http://localhost"));
        assert!(!c.allows("http://localhost.evil.example:80"));
        assert!(!c.allows("http://evil.example"));
        assert!(!c.allows("ftp://localhost:1"));
    }
}
