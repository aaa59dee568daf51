//! Negotiate: versions 0 and 1, redirects (at most 100), the server's `error`.

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::url::HubUrl;

/// At most this many redirects, as the official clients allow.
pub(crate) const MAX_REDIRECTS: usize = 100;

/// What a connection needs from negotiate.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    /// The URL the transport connects to (the last redirect's).
    pub(crate) url: HubUrl,
    /// The public connection id.
    pub(crate) connection_id: Option<String>,
    /// What the transport sends as `id` (the token in version 1, the id in version 0).
    pub(crate) token: Option<String>,
    /// The bearer token for the transport: from a redirect, or the factory's.
    pub(crate) access_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(default)]
    negotiate_version: u32,
    connection_id: Option<String>,
    connection_token: Option<String>,
    #[serde(default)]
    available_transports: Vec<TransportOffer>,
    url: Option<String>,
    access_token: Option<String>,
    error: Option<String>,
    #[serde(rename = "ProtocolVersion")]
    legacy_protocol_version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransportOffer {
    transport: String,
    #[serde(default)]
    transfer_formats: Vec<String>,
}

/// Calls the access-token factory, if there is one.
pub(crate) async fn factory_token(config: &Config) -> Result<Option<String>> {
    match &config.access_token {
        Some(factory) => Ok(Some(factory().await.map_err(|e| Error::AccessToken(e.to_string()))?)),
        None => Ok(None),
    }
}

/// Negotiates, following redirects, with `access_token` (the factory's) as the first bearer.
/// A 401 to the factory's token is retried once with a fresh token from the factory, as the
/// official clients do.
pub(crate) async fn negotiate(config: &Config, access_token: Option<String>) -> Result<Negotiated> {
    let mut url = config.url.clone();
    let mut access_token = access_token;
    let mut token_from_factory = config.access_token.is_some();
    let mut retried = false;
    for _ in 0..=MAX_REDIRECTS {
        let mut headers: Vec<(HeaderName, HeaderValue)> = config.headers.clone();
        if let Some(token) = &access_token {
            let value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|e| Error::AccessToken(format!("the token cannot be sent in a header: {e}")))?;
            headers.push((http::header::AUTHORIZATION, value));
        }
        let response = crate::http::post(&url.negotiate(), &headers).await?;
        if response.status == http::StatusCode::UNAUTHORIZED && token_from_factory && !retried {
            retried = true;
            access_token = factory_token(config).await?;
            continue;
        }
        if response.status != http::StatusCode::OK {
            let mut body = String::from_utf8_lossy(&response.body).into_owned();
            if body.is_empty() {
                body = response.status.canonical_reason().unwrap_or_default().to_string();
            }
            return Err(Error::NegotiateStatus {
                status: response.status.as_u16(),
                body,
            });
        }
        match read_answer(&response.body, config.protocol.transfer_format().as_str())? {
            Step::Redirect {
                url: next,
                access_token: token,
            } => {
                url = HubUrl::parse(&next)?;
                if token.is_some() {
                    access_token = token;
                    token_from_factory = false;
                }
            }
            Step::Connect { connection_id, token } => {
                return Ok(Negotiated {
                    url,
                    connection_id,
                    token: Some(token),
                    access_token,
                });
            }
        }
    }
    Err(Error::Negotiate("Negotiate redirection limit exceeded.".into()))
}

/// What one negotiate answer says to do next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Negotiate again at `url`, with this bearer token if one is given.
    Redirect { url: String, access_token: Option<String> },
    /// Connect the transport with `token` as its `id`.
    Connect {
        connection_id: Option<String>,
        token: String,
    },
}

/// Reads a negotiate answer (200) for a protocol of transfer format `format`.
fn read_answer(body: &[u8], format: &str) -> Result<Step> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| Error::Negotiate(format!("Failed to complete negotiation with the server: {e}")))?;
    if let Some(error) = answer.error {
        return Err(Error::Negotiate(error));
    }
    if answer.legacy_protocol_version.is_some() {
        return Err(Error::Negotiate(
            "Detected a connection attempt to an ASP.NET SignalR Server. This client only supports connecting to an ASP.NET Core SignalR Server.".into(),
        ));
    }
    if let Some(url) = answer.url {
        return Ok(Step::Redirect {
            url,
            access_token: answer.access_token,
        });
    }
    let websockets = answer
        .available_transports
        .iter()
        .any(|t| t.transport == "WebSockets" && t.transfer_formats.iter().any(|f| f == format));
    if !websockets {
        let offered: Vec<&str> = answer
            .available_transports
            .iter()
            .map(|t| t.transport.as_str())
            .collect();
        return Err(Error::NoTransport(format!(
            "the server offers [{}] for the {format} transfer format; this client speaks WebSockets",
            offered.join(", ")
        )));
    }
    // Version 1 sends a secret token for the transport; version 0 only the connection id.
    let token = if answer.negotiate_version >= 1 {
        answer.connection_token
    } else {
        answer.connection_id.clone()
    };
    let token = token.ok_or_else(|| Error::Negotiate("the negotiate answer has no connection id".into()))?;
    Ok(Step::Connect {
        connection_id: answer.connection_id,
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = r#"[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]"#;

    #[test]
    fn version_1_connects_with_the_token_and_version_0_with_the_id() {
        let v1 = format!(
            r#"{{"negotiateVersion":1,"connectionId":"pub","connectionToken":"secret","availableTransports":{WS}}}"#
        );
        assert_eq!(
            read_answer(v1.as_bytes(), "Text").unwrap(),
            Step::Connect {
                connection_id: Some("pub".into()),
                token: "secret".into()
            }
        );
        let v0 = format!(r#"{{"connectionId":"pub","availableTransports":{WS}}}"#);
        assert_eq!(
            read_answer(v0.as_bytes(), "Binary").unwrap(),
            Step::Connect {
                connection_id: Some("pub".into()),
                token: "pub".into()
            }
        );
    }

    #[test]
    fn redirects_errors_and_missing_transports() {
        assert_eq!(
            read_answer(br#"{"url":"http://b/hub","accessToken":"t"}"#, "Text").unwrap(),
            Step::Redirect {
                url: "http://b/hub".into(),
                access_token: Some("t".into())
            }
        );
        assert_eq!(
            read_answer(br#"{"error":"go away"}"#, "Text"),
            Err(Error::Negotiate("go away".into()))
        );
        assert!(matches!(
            read_answer(br#"{"ProtocolVersion":"1.5"}"#, "Text"),
            Err(Error::Negotiate(_))
        ));
        let sse_only = r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"ServerSentEvents","transferFormats":["Text"]}]}"#;
        assert!(matches!(
            read_answer(sse_only.as_bytes(), "Text"),
            Err(Error::NoTransport(_))
        ));
        let text_only = String::from(
            r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}"#,
        );
        assert!(matches!(
            read_answer(text_only.as_bytes(), "Binary"),
            Err(Error::NoTransport(_))
        ));
        assert!(matches!(read_answer(b"not json", "Text"), Err(Error::Negotiate(_))));
    }
}
