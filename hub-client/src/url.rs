//! The URLs a connection uses: negotiate's, and the transport's with its `id` and token.

use crate::error::{Error, Result};

/// A hub URL split into the part before the query and the query (without `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HubUrl {
    base: String,
    query: String,
}

impl HubUrl {
    /// Parses an absolute `http(s)://` or `ws(s)://` URL; a fragment is dropped.
    pub(crate) fn parse(url: &str) -> Result<HubUrl> {
        let url = url.split('#').next().unwrap_or_default();
        let scheme_ok = ["http://", "https://", "ws://", "wss://"]
            .iter()
            .any(|s| url.len() > s.len() && url[..s.len()].eq_ignore_ascii_case(s));
        if !scheme_ok || url.parse::<http::Uri>().is_err() {
            return Err(Error::InvalidUrl(url.to_string()));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        Ok(HubUrl {
            base: base.to_string(),
            query: query.to_string(),
        })
    }

    /// `{base}/negotiate?{query}&negotiateVersion=1`, over HTTP, with
    /// `&useStatefulReconnect=true` when the client asks for stateful reconnect.
    pub(crate) fn negotiate(&self, stateful_reconnect: bool) -> String {
        let slash = if self.base.ends_with('/') { "" } else { "/" };
        let base = format!("{}{slash}negotiate", http_scheme(&self.base));
        let mut extra = vec![("negotiateVersion", "1")];
        if stateful_reconnect {
            extra.push(("useStatefulReconnect", "true"));
        }
        with_query(&base, &self.query, &extra)
    }

    /// The HTTP URL of the HTTP transports: `http(s)://{base}?{query}&id=..`.
    pub(crate) fn http(&self, id: &str) -> String {
        with_query(&http_scheme(&self.base), &self.query, &[("id", id)])
    }

    /// The WebSocket URL: `ws(s)://{base}?{query}&id=..&access_token=..`.
    pub(crate) fn websocket(&self, id: Option<&str>, access_token: Option<&str>) -> String {
        let mut extra = Vec::new();
        if let Some(id) = id {
            extra.push(("id", id));
        }
        if let Some(token) = access_token {
            extra.push(("access_token", token));
        }
        with_query(&ws_scheme(&self.base), &self.query, &extra)
    }
}

fn with_query(base: &str, query: &str, extra: &[(&str, &str)]) -> String {
    let mut url = base.to_string();
    let mut separator = '?';
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
        separator = '&';
    }
    for (name, value) in extra {
        url.push(separator);
        url.push_str(name);
        url.push('=');
        url.extend(form_urlencoded::byte_serialize(value.as_bytes()));
        separator = '&';
    }
    url
}

fn replace_scheme(url: &str, from: &str, to: &str) -> Option<String> {
    (url.len() >= from.len() && url[..from.len()].eq_ignore_ascii_case(from))
        .then(|| format!("{to}{}", &url[from.len()..]))
}

fn http_scheme(url: &str) -> String {
    replace_scheme(url, "ws://", "http://")
        .or_else(|| replace_scheme(url, "wss://", "https://"))
        .unwrap_or_else(|| url.to_string())
}

fn ws_scheme(url: &str) -> String {
    replace_scheme(url, "http://", "ws://")
        .or_else(|| replace_scheme(url, "https://", "wss://"))
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_keeps_the_query_and_appends_the_version() {
        let url = HubUrl::parse("http://h:1/hub?a=1#frag").unwrap();
        assert_eq!(url.negotiate(false), "http://h:1/hub/negotiate?a=1&negotiateVersion=1");
        let url = HubUrl::parse("ws://h/hub/").unwrap();
        assert_eq!(url.negotiate(false), "http://h/hub/negotiate?negotiateVersion=1");
        assert_eq!(
            url.negotiate(true),
            "http://h/hub/negotiate?negotiateVersion=1&useStatefulReconnect=true"
        );
    }

    #[test]
    fn websocket_url_carries_the_id_and_the_encoded_token() {
        let url = HubUrl::parse("https://h/hub?a=1").unwrap();
        assert_eq!(
            url.websocket(Some("x y"), Some("t+/=")),
            "wss://h/hub?a=1&id=x+y&access_token=t%2B%2F%3D"
        );
        assert_eq!(
            HubUrl::parse("http://h/hub").unwrap().websocket(None, None),
            "ws://h/hub"
        );
    }

    #[test]
    fn relative_and_foreign_urls_are_refused() {
        assert!(HubUrl::parse("/hub").is_err());
        assert!(HubUrl::parse("ftp://h/hub").is_err());
    }
}
