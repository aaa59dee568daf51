//! The client's HTTP requests: negotiate, long polling's polls, sends and DELETE, the
//! Server-Sent Events stream
//! (hyper's client, HTTP/1.1; `https://` with the `rustls` feature).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::cookies::CookieJar;
use crate::error::{Error, Result};

#[cfg(feature = "rustls")]
type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;
#[cfg(not(feature = "rustls"))]
type Connector = hyper_util::client::legacy::connect::HttpConnector;

/// A response: status and body.
pub(crate) struct Response {
    pub(crate) status: http::StatusCode,
    pub(crate) body: Bytes,
}

impl Response {
    /// The body as text, or the status' reason phrase when the body is empty.
    pub(crate) fn text(&self) -> String {
        let body = String::from_utf8_lossy(&self.body).into_owned();
        if body.is_empty() {
            self.status.canonical_reason().unwrap_or_default().to_string()
        } else {
            body
        }
    }
}

/// One connection's HTTP client (pooled connections; cheap to clone).
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    /// The cookies every request carries and every response may set.
    pub(crate) cookies: Arc<CookieJar>,
}

impl HttpClient {
    pub(crate) fn new(cookies: CookieJar) -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector()),
            cookies: Arc::new(cookies),
        }
    }

    /// Adds the `Cookie` header, if any cookie applies to `url`.
    fn with_cookies(&self, url: &str, request: http::request::Builder) -> http::request::Builder {
        match self.cookies.header(url) {
            Some(cookies) => request.header(http::header::COOKIE, cookies),
            None => request,
        }
    }

    /// Sends a GET and returns the status and the body as it streams in (Server-Sent Events).
    pub(crate) async fn get_stream(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(http::StatusCode, hyper::body::Incoming)> {
        let mut request = Request::builder().method(Method::GET).uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = self
            .with_cookies(url, request)
            .header(http::header::ACCEPT, "text/event-stream")
            .header(
                http::header::USER_AGENT,
                concat!("hub-client/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Error::Transport(format!("GET {url}: {}", chain(&e))))?;
        self.cookies.store(url, response.headers());
        Ok((response.status(), response.into_body()))
    }

    /// POSTs messages to an HTTP transport (long polling, Server-Sent Events); anything but
    /// 200 is an error.
    pub(crate) async fn send_messages(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        bytes: Bytes,
    ) -> Result<()> {
        let response = self.request(Method::POST, url, headers, bytes).await?;
        if response.status != http::StatusCode::OK {
            return Err(Error::Transport(format!(
                "sending failed: {}: Status code '{}'",
                response.text(),
                response.status.as_u16()
            )));
        }
        Ok(())
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Response> {
        let mut request = Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = self
            .with_cookies(url, request)
            .header(http::header::CONTENT_LENGTH, body.len())
            .header("x-requested-with", "XMLHttpRequest")
            .header(
                http::header::USER_AGENT,
                concat!("hub-client/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Error::Transport(format!("{method} {url}: {}", chain(&e))))?;
        self.cookies.store(url, response.headers());
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Transport(format!("{method} {url}: {e}")))?
            .to_bytes();
        Ok(Response { status, body })
    }
}

#[cfg(not(feature = "rustls"))]
fn connector() -> Connector {
    hyper_util::client::legacy::connect::HttpConnector::new()
}

#[cfg(feature = "rustls")]
fn connector() -> Connector {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build()
}

/// An error with its causes, `: `-separated (hyper's own text says little).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
