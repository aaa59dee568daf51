//! The negotiate response.

use serde::Serialize;

use super::TransportKind;
use crate::protocol::{error_texts, TransferFormat};

/// The newest negotiate version this server speaks.
pub(crate) const MAX_NEGOTIATE_VERSION: i32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NegotiateResponse<'a> {
    negotiate_version: i32,
    connection_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_token: Option<&'a str>,
    available_transports: Vec<AvailableTransport>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    use_stateful_reconnect: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AvailableTransport {
    transport: &'static str,
    transfer_formats: Vec<&'static str>,
}

/// The formats a transport can carry.
pub(crate) fn transfer_formats(transport: TransportKind) -> &'static [TransferFormat] {
    match transport {
        TransportKind::WebSockets | TransportKind::LongPolling => TransferFormat::ALL,
        TransportKind::ServerSentEvents => &[TransferFormat::Text],
    }
}

/// Reads the requested negotiate version from the query (`negotiateVersion`, any case).
/// Missing means 0; the error is the text of the `{"error": …}` body.
pub(crate) fn requested_version(query: &[(String, String)]) -> Result<i32, String> {
    let Some((_, value)) = query.iter().find(|(k, _)| k.eq_ignore_ascii_case("negotiateVersion")) else {
        return Ok(0);
    };
    let version: i32 = value
        .parse()
        .map_err(|_| error_texts::NEGOTIATE_VERSION_NOT_INTEGER.to_string())?;
    if version < 0 {
        return Err(error_texts::negotiate_version_not_supported(&version.to_string()));
    }
    Ok(version.min(MAX_NEGOTIATE_VERSION))
}

/// What a successful negotiate tells the client.
pub(crate) struct Negotiated<'a> {
    /// The negotiate version agreed on.
    pub(crate) version: i32,
    pub(crate) connection_id: &'a str,
    /// Sent from version 1 on.
    pub(crate) connection_token: &'a str,
    pub(crate) transports: &'a [TransportKind],
    /// The client asked for stateful reconnect and the server allows it.
    pub(crate) stateful_reconnect: bool,
}

/// The JSON body of a successful negotiate.
pub(crate) fn response_body(negotiated: &Negotiated<'_>) -> String {
    let &Negotiated {
        version,
        connection_id,
        connection_token,
        transports,
        stateful_reconnect,
    } = negotiated;
    let available_transports = transports
        .iter()
        .map(|&t| AvailableTransport {
            transport: t.name(),
            transfer_formats: transfer_formats(t).iter().map(|f| f.as_str()).collect(),
        })
        .collect();
    let body = NegotiateResponse {
        negotiate_version: version,
        connection_id,
        connection_token: (version > 0).then_some(connection_token),
        available_transports,
        use_stateful_reconnect: stateful_reconnect,
    };
    serde_json::to_string(&body).unwrap_or_else(|_| "{}".into())
}

/// The body of a negotiate that failed.
pub(crate) fn error_body(error: &str) -> String {
    serde_json::json!({ "error": error }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: &str) -> Vec<(String, String)> {
        vec![("NegotiateVersion".into(), v.into())]
    }

    #[test]
    fn versions() {
        assert_eq!(requested_version(&[]), Ok(0));
        assert_eq!(requested_version(&q("1")), Ok(1));
        assert_eq!(requested_version(&q("7")), Ok(1));
        assert_eq!(
            requested_version(&q("x")).unwrap_err(),
            "The client requested a non-integer protocol version."
        );
        assert!(requested_version(&q("-1")).unwrap_err().contains("'-1'"));
    }

    #[test]
    fn stateful_reconnect_is_said_only_when_agreed() {
        let body = response_body(&Negotiated {
            version: 1,
            connection_id: "i",
            connection_token: "t",
            transports: &[TransportKind::WebSockets],
            stateful_reconnect: true,
        });
        assert!(body.ends_with(r#","useStatefulReconnect":true}"#), "{body}");
    }

    #[test]
    fn bodies() {
        let all = [
            TransportKind::WebSockets,
            TransportKind::ServerSentEvents,
            TransportKind::LongPolling,
        ];
        let body = response_body(&Negotiated {
            version: 1,
            connection_id: "id",
            connection_token: "tok",
            transports: &all,
            stateful_reconnect: false,
        });
        assert_eq!(
            body,
            r#"{"negotiateVersion":1,"connectionId":"id","connectionToken":"tok","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}"#
        );
        let v0 = response_body(&Negotiated {
            version: 0,
            connection_id: "id",
            connection_token: "id",
            transports: &all[..1],
            stateful_reconnect: false,
        });
        assert_eq!(
            v0,
            r#"{"negotiateVersion":0,"connectionId":"id","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}"#
        );
    }
}
