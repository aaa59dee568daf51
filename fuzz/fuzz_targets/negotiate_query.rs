//! Request parsing for negotiate and transports (`RequestContext`): query string, cookies,
//! bearer token. Never panics; the query re-serialized parses to the same pairs; `query`
//! returns the first value; the bearer token comes from the header, else `access_token`.
//!
//! Input (lossy UTF-8), split on `\n`: query, Cookie header, Authorization header, a name.
#![no_main]

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};
use hub_runtime::RequestContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let query = parts.next().unwrap_or("");
    let cookie = parts.next().and_then(|c| HeaderValue::from_str(c).ok());
    let authorization = parts.next().and_then(|a| HeaderValue::from_str(a).ok());
    let name = parts.next().unwrap_or("access_token");

    let mut headers = HeaderMap::new();
    if let Some(cookie) = &cookie {
        headers.insert(COOKIE, cookie.clone());
        headers.append(COOKIE, HeaderValue::from_static("extra=1"));
    }
    if let Some(authorization) = &authorization {
        headers.insert(AUTHORIZATION, authorization.clone());
    }
    let request = RequestContext::new(query, headers, None);

    let pairs = request.query_pairs();
    for (key, _) in pairs {
        let first = pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(request.query(key), first);
    }
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    serializer.extend_pairs(pairs);
    let again = RequestContext::new(&serializer.finish(), HeaderMap::new(), None);
    assert_eq!(again.query_pairs(), pairs, "the query re-serialized parses the same");

    // What negotiate and the transports read.
    for key in ["negotiateVersion", "useStatefulReconnect", "id", "access_token", name] {
        let _ = request.query(key);
    }

    let from_header = authorization
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let token = request.bearer_token();
    match from_header {
        Some(t) => assert_eq!(token, Some(t)),
        None => assert_eq!(token, request.query("access_token")),
    }

    if cookie.is_some() {
        assert!(request.cookie("extra").is_some(), "a second Cookie header is read too");
    }
    let _ = request.cookie(name);
    if let Some(cookie) = cookie.as_ref().and_then(|c| c.to_str().ok()) {
        for piece in cookie.split(';') {
            if let Some((n, _)) = piece.split_once('=') {
                let n = n.trim();
                assert!(n.is_empty() || request.cookie(n).is_some(), "cookie {n:?} not found");
            }
        }
    }
});
