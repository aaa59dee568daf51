//! How a hub connection says goodbye: the Close message (with or without leave to reconnect),
//! the texts of its errors, and the Close a slow consumer is sent (encoded once per protocol).

use std::sync::OnceLock;

use bytes::Bytes;

use crate::connection::{ConnectionSender, Frame};
use crate::options::HubOptions;
use crate::protocol::{error_texts, HubProtocol, OutMessage, TransferFormat};

/// Whether a Close message lets the client reconnect (its `allowReconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reconnect {
    /// The client should not come back (the hub or a limit refused it).
    Refused,
    /// The client may reconnect (the server shuts down, or an error ended the connection).
    Allowed,
}

/// A message's bytes as a frame of the protocol's transfer format.
#[inline]
pub(super) fn frame_for(format: TransferFormat, bytes: Bytes) -> Frame {
    match format {
        TransferFormat::Text => Frame::Text(bytes),
        TransferFormat::Binary => Frame::Binary(bytes),
    }
}

/// Ends a connection with a Close message (best effort) and closes the transport.
pub(super) fn close_with(
    sender: &ConnectionSender,
    protocol: &dyn HubProtocol,
    error: Option<&str>,
    reconnect: Reconnect,
) {
    let allow_reconnect = reconnect == Reconnect::Allowed;
    if let Ok(bytes) = protocol.encode(&OutMessage::Close { error, allow_reconnect }) {
        let _ = sender.try_send(frame_for(protocol.transfer_format(), bytes));
    }
    sender.close();
}

/// The Close message's text for an error: the detail only with `options.detailed_errors`.
pub(super) fn closed_with_error(detail: &str, kind: &str, options: &HubOptions) -> String {
    if options.detailed_errors {
        error_texts::with_detail(error_texts::CONNECTION_CLOSED_WITH_ERROR, kind, detail)
    } else {
        error_texts::CONNECTION_CLOSED_WITH_ERROR.to_string()
    }
}

/// Per protocol of an endpoint, the Close message a slow consumer is sent (encoded when first
/// needed).
pub(super) struct Goodbyes(Vec<OnceLock<Option<Frame>>>);

impl Goodbyes {
    /// Room for `protocols` protocols, nothing encoded yet.
    pub(super) fn new(protocols: usize) -> Self {
        Goodbyes((0..protocols).map(|_| OnceLock::new()).collect())
    }

    /// The goodbye in protocol number `index`: the same for every connection of the endpoint
    /// that speaks this protocol, encoded once, shared by all.
    pub(super) fn get(&self, index: usize, protocol: &dyn HubProtocol, options: &HubOptions) -> Option<Frame> {
        self.0.get(index).and_then(|cell| {
            cell.get_or_init(|| {
                let slow = closed_with_error(
                    "The client is not reading: its outbox is full.",
                    "InvalidOperationException",
                    options,
                );
                let message = OutMessage::Close {
                    error: Some(&slow),
                    allow_reconnect: true,
                };
                let bytes = protocol.encode(&message).ok()?;
                Some(frame_for(protocol.transfer_format(), bytes))
            })
            .clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_carry_their_detail_only_when_detailed() {
        let detailed = HubOptions {
            detailed_errors: true,
            ..HubOptions::default()
        };
        assert_eq!(
            closed_with_error("gone", "InvalidDataException", &detailed),
            "Connection closed with an error. InvalidDataException: gone"
        );
        assert_eq!(
            closed_with_error("gone", "InvalidDataException", &HubOptions::default()),
            "Connection closed with an error."
        );
    }

    #[cfg(feature = "json")]
    #[test]
    fn a_goodbye_is_encoded_once_per_protocol() {
        let goodbyes = Goodbyes::new(1);
        let protocol = crate::protocol::json::JsonProtocol;
        let options = HubOptions::default();
        let first = goodbyes.get(0, &protocol, &options);
        let Some(Frame::Text(bytes)) = &first else {
            panic!("a text frame: {first:?}");
        };
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        assert!(text.contains("\"allowReconnect\":true"), "{text}");
        let detailed = HubOptions {
            detailed_errors: true,
            ..HubOptions::default()
        };
        let again = goodbyes.get(0, &protocol, &detailed);
        assert!(
            matches!(&again, Some(Frame::Text(b)) if b == bytes),
            "shared, not encoded again"
        );
        assert!(goodbyes.get(1, &protocol, &options).is_none(), "no such protocol");
    }
}
