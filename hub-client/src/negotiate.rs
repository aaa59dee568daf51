//! Negotiate: versions 0 and 1, redirects (at most 100), the server's `error`.

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::{Config, TransportKind};
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
    /// The transports to try, in the server's order.
    pub(crate) transports: Vec<TransportKind>,
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
        let response = config
            .http
            .request(http::Method::POST, &url.negotiate(), &headers, bytes::Bytes::new())
            .await?;
        if response.status == http::StatusCode::UNAUTHORIZED && token_from_factory && !retried {
            retried = true;
            access_token = factory_token(config).await?;
            continue;
        }
        if response.status != http::StatusCode::OK {
            return Err(Error::NegotiateStatus {
                status: response.status.as_u16(),
                body: response.text(),
            });
        }
        match read_answer(
            &response.body,
            config.protocol.transfer_format().as_str(),
            &config.transports,
        )? {
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
            Step::Connect {
                connection_id,
                token,
                transports,
            } => {
                return Ok(Negotiated {
                    url,
                    connection_id,
                    token: Some(token),
                    access_token,
                    transports,
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
        transports: Vec<TransportKind>,
    },
}

/// Reads a negotiate answer (200) for a protocol of transfer format `format`, keeping the
/// `allowed` transports the server offers for that format, in the server's order.
fn read_answer(body: &[u8], format: &str, allowed: &[TransportKind]) -> Result<Step> {
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
    let transports: Vec<TransportKind> = answer
        .available_transports
        .iter()
        .filter(|t| t.transfer_formats.iter().any(|f| f == format))
        .filter_map(|t| allowed.iter().copied().find(|k| k.name() == t.transport))
        .collect();
    if transports.is_empty() {
        let offered: Vec<&str> = answer
            .available_transports
            .iter()
            .map(|t| t.transport.as_str())
            .collect();
        let allowed: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
        return Err(Error::NoTransport(format!(
            "the server offers [{}], none of them for the {format} transfer format among [{}]",
            offered.join(", "),
            allowed.join(", ")
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
        transports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[TransportKind] = &[TransportKind::WebSockets, TransportKind::LongPolling];
    const WS: &str = r#"[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]"#;

    #[test]
    fn version_1_connects_with_the_token_and_version_0_with_the_id() {
        let v1 = format!(
            r#"{{"negotiateVersion":1,"connectionId":"pub","connectionToken":"secret","availableTransports":{WS}}}"#
        );
        assert_eq!(
            read_answer(v1.as_bytes(), "Text", ALL).unwrap(),
            Step::Connect {
                connection_id: Some("pub".into()),
                token: "secret".into(),
                transports: vec![TransportKind::WebSockets],
            }
        );
        let v0 = format!(r#"{{"connectionId":"pub","availableTransports":{WS}}}"#);
        assert_eq!(
            read_answer(v0.as_bytes(), "Binary", ALL).unwrap(),
            Step::Connect {
                connection_id: Some("pub".into()),
                token: "pub".into(),
                transports: vec![TransportKind::WebSockets],
            }
        );
    }

    #[test]
    fn redirects_errors_and_missing_transports() {
        assert_eq!(
            read_answer(br#"{"url":"http://b/hub","accessToken":"t"}"#, "Text", ALL).unwrap(),
            Step::Redirect {
                url: "http://b/hub".into(),
                access_token: Some("t".into())
            }
        );
        assert_eq!(
            read_answer(br#"{"error":"go away"}"#, "Text", ALL),
            Err(Error::Negotiate("go away".into()))
        );
        assert!(matches!(
            read_answer(br#"{"ProtocolVersion":"1.5"}"#, "Text", ALL),
            Err(Error::Negotiate(_))
        ));
        let sse_only = r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"ServerSentEvents","transferFormats":["Text"]}]}"#;
        assert!(matches!(
            read_answer(sse_only.as_bytes(), "Text", ALL),
            Err(Error::NoTransport(_))
        ));
        let text_only = String::from(
            r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}"#,
        );
        assert!(matches!(
            read_answer(text_only.as_bytes(), "Binary", ALL),
            Err(Error::NoTransport(_))
        ));
        assert!(matches!(
            read_answer(b"not json", "Text", ALL),
            Err(Error::Negotiate(_))
        ));
    }

    #[test]
    fn transports_keep_the_servers_order_among_those_allowed() {
        let offers = r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[
            {"transport":"WebSockets","transferFormats":["Text","Binary"]},
            {"transport":"ServerSentEvents","transferFormats":["Text"]},
            {"transport":"LongPolling","transferFormats":["Text","Binary"]}]}"#;
        let transports = |allowed: &[TransportKind]| match read_answer(offers.as_bytes(), "Binary", allowed).unwrap() {
            Step::Connect { transports, .. } => transports,
            other => panic!("{other:?}"),
        };
        assert_eq!(transports(ALL), [TransportKind::WebSockets, TransportKind::LongPolling]);
        assert_eq!(
            transports(&[TransportKind::LongPolling, TransportKind::WebSockets]),
            [TransportKind::WebSockets, TransportKind::LongPolling]
        );
        assert_eq!(transports(&[TransportKind::LongPolling]), [TransportKind::LongPolling]);
        let every = [
            TransportKind::LongPolling,
            TransportKind::ServerSentEvents,
            TransportKind::WebSockets,
        ];
        let text = match read_answer(offers.as_bytes(), "Text", &every).unwrap() {
            Step::Connect { transports, .. } => transports,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            text,
            [
                TransportKind::WebSockets,
                TransportKind::ServerSentEvents,
                TransportKind::LongPolling
            ]
        );
    }
}
