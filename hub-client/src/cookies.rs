//! [`CookieJar`]: the cookies a connection sends — the user's, and those its server sets
//! (negotiate's `Set-Cookie`, as a browser or the official Node client keeps them) — on every
//! HTTP request and the WebSocket upgrade. Server cookies are kept per host; an expired one
//! (`Max-Age=0`, an `Expires` in the past) removes the stored one, the user's of that name
//! included.

use std::sync::Mutex;

use http::{HeaderMap, HeaderValue};

/// One connection's cookies.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    cookies: Mutex<Vec<Stored>>,
}

#[derive(Debug, Clone)]
struct Stored {
    /// The host that set it; `None` for the user's own (sent to every host).
    host: Option<String>,
    name: String,
    value: String,
}

fn host_of(url: &str) -> Option<String> {
    url.parse::<http::Uri>().ok()?.host().map(str::to_ascii_lowercase)
}

impl CookieJar {
    /// A cookie of the user's, sent on every request.
    pub(crate) fn set_user(&self, name: &str, value: &str) {
        self.put(None, name, Some(value));
    }

    /// Keeps the cookies a response from `url` sets.
    pub(crate) fn store(&self, url: &str, headers: &HeaderMap) {
        let host = host_of(url);
        for header in headers.get_all(http::header::SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let Ok(cookie) = cookie::Cookie::parse(text) else {
                continue;
            };
            let expired = cookie.max_age().is_some_and(|age| age.is_zero() || age.is_negative())
                || cookie
                    .expires_datetime()
                    .is_some_and(|at| at <= time::OffsetDateTime::now_utc());
            let value = (!expired).then(|| cookie.value());
            self.put(host.clone(), cookie.name(), value);
        }
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies.
    pub(crate) fn header(&self, url: &str) -> Option<HeaderValue> {
        let host = host_of(url);
        let cookies = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        let pairs: Vec<String> = cookies
            .iter()
            .filter(|c| c.host.is_none() || c.host == host)
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        HeaderValue::try_from(pairs.join("; ")).ok()
    }

    fn put(&self, host: Option<String>, name: &str, value: Option<&str>) {
        let mut cookies = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        // A server's cookie replaces (or expires) the user's of the same name too.
        cookies.retain(|c| !(c.name == name && (c.host == host || c.host.is_none())));
        if let Some(value) = value {
            cookies.push(Stored {
                host,
                name: name.to_string(),
                value: value.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(http::header::SET_COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn server_cookies_go_back_to_their_host_and_expired_ones_are_dropped() {
        let jar = CookieJar::default();
        jar.set_user("mine", "1");
        jar.store("http://a:1/hub/negotiate", &set(&["x=2; Path=/", "gone=3"]));
        jar.store(
            "http://a:1/hub/negotiate",
            &set(&["gone=; Max-Age=0", "old=4; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]),
        );
        assert_eq!(jar.header("ws://a:1/hub?id=1").unwrap(), "mine=1; x=2");
        assert_eq!(jar.header("http://b/hub").unwrap(), "mine=1");
        assert_eq!(CookieJar::default().header("http://a/"), None);
    }
}
