//! One message on its way out: encoded lazily, at most once per protocol in use, and the same
//! bytes pushed to every local target's outbox.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;

use super::{LocalConnection, Members};
use crate::backplane::EncodedMessage;
use crate::connection::{Frame, OutboxError};
use crate::protocol::{EncodeError, HubProtocol, OutMessage, TransferFormat};

/// Most protocols one server speaks at once.
pub(crate) const MAX_PROTOCOLS: usize = 4;

/// One message, encoded lazily per protocol and shared by every receiver.
pub(crate) struct Serialized<'a> {
    protocols: &'a [Arc<dyn HubProtocol>],
    /// `None` for a message that arrived already encoded (from the backplane).
    message: Option<OutMessage<'a>>,
    frames: RefCell<[Option<Frame>; MAX_PROTOCOLS]>,
}

impl<'a> Serialized<'a> {
    pub(crate) fn new(protocols: &'a [Arc<dyn HubProtocol>], message: OutMessage<'a>) -> Self {
        Serialized {
            protocols,
            message: Some(message),
            frames: RefCell::new(Default::default()),
        }
    }

    /// A message another server encoded: each protocol's bytes are used as they are.
    pub(crate) fn from_encoded(protocols: &'a [Arc<dyn HubProtocol>], encoded: &EncodedMessage) -> Self {
        let mut frames: [Option<Frame>; MAX_PROTOCOLS] = Default::default();
        for (i, protocol) in protocols.iter().enumerate().take(MAX_PROTOCOLS) {
            if let Some((_, bytes)) = encoded
                .encodings
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(protocol.name()))
            {
                frames[i] = Some(match protocol.transfer_format() {
                    TransferFormat::Text => Frame::Text(bytes.clone()),
                    TransferFormat::Binary => Frame::Binary(bytes.clone()),
                });
            }
        }
        Serialized {
            protocols,
            message: None,
            frames: RefCell::new(frames),
        }
    }

    /// The frame for protocol `index`, encoding it on first use.
    pub(crate) fn frame(&self, index: usize) -> Result<Frame, EncodeError> {
        if let Some(frame) = &self.frames.borrow()[index] {
            return Ok(frame.clone());
        }
        let protocol = &self.protocols[index];
        let Some(message) = &self.message else {
            return Err(EncodeError(format!(
                "no '{}' encoding of this message",
                protocol.name()
            )));
        };
        let bytes = protocol.encode(message)?;
        let frame = match protocol.transfer_format() {
            TransferFormat::Text => Frame::Text(bytes),
            TransferFormat::Binary => Frame::Binary(bytes),
        };
        self.frames.borrow_mut()[index] = Some(frame.clone());
        Ok(frame)
    }

    /// The message in every protocol, for the backplane.
    pub(super) fn encode_all(&self) -> Result<EncodedMessage, EncodeError> {
        let mut encodings = Vec::with_capacity(self.protocols.len());
        for (i, p) in self.protocols.iter().enumerate() {
            encodings.push((p.name().to_string(), self.frame(i)?.data().clone()));
        }
        Ok(EncodedMessage { encodings })
    }

    /// The message in every protocol that can encode it, for the backplane to fan out (each
    /// server skips its connections of the others), and the first encoding error.
    pub(super) fn encode_each(&self) -> (EncodedMessage, Option<EncodeError>) {
        let mut encodings = Vec::with_capacity(self.protocols.len());
        let mut failed = None;
        for (i, p) in self.protocols.iter().enumerate() {
            match self.frame(i) {
                Ok(frame) => encodings.push((p.name().to_string(), frame.data().clone())),
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        (EncodedMessage { encodings }, failed)
    }
}

/// One message on its way to local connections: what failed is remembered, and the fan-out
/// goes on.
pub(super) struct Fanout<'m, 'a> {
    pub(super) message: &'m Serialized<'a>,
    /// The first encoding error met.
    pub(super) failed: Option<EncodeError>,
}

impl Fanout<'_, '_> {
    /// Puts the message in one connection's outbox; a client that does not read is closed as a
    /// slow consumer, and one whose protocol cannot encode the message is skipped.
    pub(super) fn push(&mut self, connection: &LocalConnection) {
        let frame = match self.message.frame(connection.protocol) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(connection = %connection.id, %error, "could not encode a message for a connection; skipping it");
                self.failed.get_or_insert(error);
                return;
            }
        };
        match connection.sender.try_send_message(frame) {
            Ok(()) | Err(OutboxError::Closed) => {}
            Err(OutboxError::Full) => {
                tracing::warn!(connection = %connection.id, "closing a connection whose outbox is full (the client is not reading)");
                connection.sender.abort_slow();
            }
        }
    }
}

/// Pushes to the members of the sets `keys` names in `map`, each connection once, but the
/// `excluded` ones.
pub(super) fn push_members(
    map: &DashMap<Arc<str>, Members>,
    keys: &[String],
    excluded: &[String],
    fanout: &mut Fanout<'_, '_>,
) {
    if let [key] = keys {
        if let Some(members) = map.get(key.as_str()) {
            for (id, c) in members.iter() {
                if !excluded.iter().any(|x| x.as_str() == &**id) {
                    fanout.push(c);
                }
            }
        }
        return;
    }
    // Several sets: each connection once.
    let mut seen: HashMap<Arc<str>, Arc<LocalConnection>> = HashMap::new();
    for key in keys {
        if let Some(members) = map.get(key.as_str()) {
            for (id, c) in members.iter() {
                seen.entry(id.clone()).or_insert_with(|| c.clone());
            }
        }
    }
    for c in seen.values() {
        if !excluded.iter().any(|x| x.as_str() == &*c.id) {
            fanout.push(c);
        }
    }
}
