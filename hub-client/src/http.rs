//! The one HTTP request the client makes itself: negotiate's POST (hyper's client, HTTP/1.1;
//! `https://` with the `rustls` feature).

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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

/// POSTs an empty body to `url` with `headers`.
pub(crate) async fn post(url: &str, headers: &[(HeaderName, HeaderValue)]) -> Result<Response> {
    let client: Client<Connector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector()?);
    let mut request = Request::builder().method(Method::POST).uri(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .header(http::header::CONTENT_LENGTH, "0")
        .header("x-requested-with", "XMLHttpRequest")
        .header(
            http::header::USER_AGENT,
            concat!("hub-client/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| Error::Transport(format!("POST {url}: {}", chain(&e))))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Transport(format!("POST {url}: {e}")))?
        .to_bytes();
    Ok(Response { status, body })
}

#[cfg(not(feature = "rustls"))]
fn connector() -> Result<Connector> {
    Ok(hyper_util::client::legacy::connect::HttpConnector::new())
}

#[cfg(feature = "rustls")]
fn connector() -> Result<Connector> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build())
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
