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
    /// Whether `access_token` came from the access-token factory (not from a redirect).
    pub(crate) access_token_from_factory: bool,
    /// The transports to try, in the server's order.
    pub(crate) transports: Vec<TransportKind>,
    /// The server agreed to stateful reconnect (for WebSockets).
    pub(crate) stateful_reconnect: bool,
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
    #[serde(default)]
    use_stateful_reconnect: bool,
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
            .request(
                http::Method::POST,
                &url.negotiate(config.stateful_reconnect.is_some()),
                &headers,
                bytes::Bytes::new(),
            )
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
        let asked = Asked {
            format: config.protocol.transfer_format().as_str(),
            transports: &config.transports,
            stateful_reconnect: config.stateful_reconnect.is_some(),
        };
        match read_answer(&response.body, &asked)? {
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
                stateful_reconnect,
            } => {
                return Ok(Negotiated {
                    url,
                    connection_id,
                    token: Some(token),
                    access_token,
                    access_token_from_factory: token_from_factory,
                    transports,
                    stateful_reconnect,
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
        stateful_reconnect: bool,
    },
}

/// What the client asked negotiate for.
struct Asked<'a> {
    /// The protocol's transfer format (`Text` or `Binary`).
    format: &'a str,
    /// The transports the client may use.
    transports: &'a [TransportKind],
    /// Whether it asked for stateful reconnect.
    stateful_reconnect: bool,
}

/// Reads a negotiate answer (200) for what was `asked`: the transports allowed that the
/// server offers for the protocol's transfer format, in the server's order.
fn read_answer(body: &[u8], asked: &Asked<'_>) -> Result<Step> {
    let (format, allowed) = (asked.format, asked.transports);
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| Error::Negotiate(format!("Failed to complete negotiation with the server: {e}")))?;
    if let Some(error) = answer.error {
        return Err(Error::Negotiate(error));
    }
    if answer.use_stateful_reconnect && !asked.stateful_reconnect {
        return Err(Error::Negotiate(
            "Client didn't negotiate Stateful Reconnect but the server did.".into(),
        ));
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
        stateful_reconnect: answer.use_stateful_reconnect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[TransportKind] = &[TransportKind::WebSockets, TransportKind::LongPolling];
    const WS: &str = r#"[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]"#;

    /// Reads an answer for a client that did not ask for stateful reconnect.
    fn answer(body: &[u8], format: &str, transports: &[TransportKind]) -> Result<Step> {
        read_answer(
            body,
            &Asked {
                format,
                transports,
                stateful_reconnect: false,
            },
        )
    }

    #[test]
    fn stateful_reconnect_is_taken_only_when_asked_for() {
        let body = format!(
            r#"{{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":{WS},"useStatefulReconnect":true}}"#
        );
        let asked = Asked {
            format: "Text",
            transports: ALL,
            stateful_reconnect: true,
        };
        assert!(matches!(
            read_answer(body.as_bytes(), &asked),
            Ok(Step::Connect {
                stateful_reconnect: true,
                ..
            })
        ));
        assert_eq!(
            answer(body.as_bytes(), "Text", ALL),
            Err(Error::Negotiate(
                "Client didn't negotiate Stateful Reconnect but the server did.".into()
            ))
        );
        let without =
            format!(r#"{{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":{WS}}}"#);
        assert!(matches!(
            read_answer(without.as_bytes(), &asked),
            Ok(Step::Connect {
                stateful_reconnect: false,
                ..
            })
        ));
    }

    #[test]
    fn version_1_connects_with_the_token_and_version_0_with_the_id() {
        let v1 = format!(
            r#"{{"negotiateVersion":1,"connectionId":"pub","connectionToken":"secret","availableTransports":{WS}}}"#
        );
        assert_eq!(
            answer(v1.as_bytes(), "Text", ALL).unwrap(),
            Step::Connect {
                connection_id: Some("pub".into()),
                token: "secret".into(),
                transports: vec![TransportKind::WebSockets],
                stateful_reconnect: false,
            }
        );
        let v0 = format!(r#"{{"connectionId":"pub","availableTransports":{WS}}}"#);
        assert_eq!(
            answer(v0.as_bytes(), "Binary", ALL).unwrap(),
            Step::Connect {
                connection_id: Some("pub".into()),
                token: "pub".into(),
                transports: vec![TransportKind::WebSockets],
                stateful_reconnect: false,
            }
        );
    }

    #[test]
    fn redirects_errors_and_missing_transports() {
        assert_eq!(
            answer(br#"{"url":"http://b/hub","accessToken":"t"}"#, "Text", ALL).unwrap(),
            Step::Redirect {
                url: "http://b/hub".into(),
                access_token: Some("t".into())
            }
        );
        assert_eq!(
            answer(br#"{"error":"go away"}"#, "Text", ALL),
            Err(Error::Negotiate("go away".into()))
        );
        assert!(matches!(
            answer(br#"{"ProtocolVersion":"1.5"}"#, "Text", ALL),
            Err(Error::Negotiate(_))
        ));
        let sse_only = r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"ServerSentEvents","transferFormats":["Text"]}]}"#;
        assert!(matches!(
            answer(sse_only.as_bytes(), "Text", ALL),
            Err(Error::NoTransport(_))
        ));
        let text_only = String::from(
            r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"WebSockets","transferFormats":["Text"]}]}"#,
        );
        assert!(matches!(
            answer(text_only.as_bytes(), "Binary", ALL),
            Err(Error::NoTransport(_))
        ));
        assert!(matches!(answer(b"not json", "Text", ALL), Err(Error::Negotiate(_))));
    }

    #[test]
    fn transports_keep_the_servers_order_among_those_allowed() {
        let offers = r#"{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[
            {"transport":"WebSockets","transferFormats":["Text","Binary"]},
            {"transport":"ServerSentEvents","transferFormats":["Text"]},
            {"transport":"LongPolling","transferFormats":["Text","Binary"]}]}"#;
        let transports = |allowed: &[TransportKind]| match answer(offers.as_bytes(), "Binary", allowed).unwrap() {
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
        let text = match answer(offers.as_bytes(), "Text", &every).unwrap() {
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
