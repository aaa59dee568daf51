//! Plain HTTP GETs for the contract's endpoints beside the hubs (`/generateJwtToken`,
//! `/clientresult/{id}`).

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// An HTTP/1.1 client (cheap to clone: clones share the connection pool).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// A response's status and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl HttpClient {
    pub fn new() -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `GET url`: the status and the body (as UTF-8, lossily).
    pub async fn get(&self, url: &str) -> Result<Response, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("GET {url}: {e}"))?;
        let response = self
            .client
            .get(uri)
            .await
            .map_err(|e| format!("GET {url}: {}", with_causes(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("GET {url}: reading the body: {}", with_causes(&e)))?
            .to_bytes();
        Ok(Response {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// `GET url`, expecting 200: the body.
    pub async fn get_ok(&self, url: &str) -> Result<String, String> {
        let response = self.get(url).await?;
        if response.status != 200 {
            return Err(format!(
                "GET {url}: status {}, body {:?}",
                response.status, response.body
            ));
        }
        Ok(response.body)
    }
}

/// An error and its causes, `outer: inner: …` (hyper's own text leaves the causes out).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
