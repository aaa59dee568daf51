//! Reading JSON messages: each record becomes a [`WireMessage`] (by the quick reader in
//! `scan`, else by serde), and one set of checks turns that into a [`HubMessage`].

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue as JsonRaw;

use super::scan;
use crate::error_texts;
use crate::raw::{JsonText, SharedText};
use crate::{CompletionResult, Headers, HubMessage, Invocation, ProtocolError, RawValue};

/// Every field any message type may carry; unknown fields are ignored.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireMessage {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<i64>,
    #[serde(default)]
    pub(super) invocation_id: Option<String>,
    #[serde(default)]
    pub(super) target: Option<String>,
    #[serde(default)]
    pub(super) arguments: Option<Arguments>,
    #[serde(default)]
    pub(super) stream_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(super) item: Option<RawValue>,
    #[serde(default, deserialize_with = "present")]
    pub(super) result: Option<RawValue>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) allow_reconnect: Option<bool>,
    #[serde(default)]
    pub(super) sequence_id: Option<u64>,
    #[serde(default)]
    pub(super) headers: Option<Headers>,
}

/// An invocation's arguments, each kept as its JSON text.
pub(super) struct Arguments(pub(super) Vec<RawValue>);

impl<'de> Deserialize<'de> for Arguments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Arguments;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arguments, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element::<Box<JsonRaw>>()? {
                    values.push(RawValue::Json(JsonText::from(value)));
                }
                Ok(Arguments(values))
            }
        }
        d.deserialize_seq(Each)
    }
}

/// Keeps a present `null` as a raw `null` (absent stays `None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawValue>, D::Error> {
    Box::<JsonRaw>::deserialize(d).map(|value| Some(RawValue::Json(JsonText::from(value))))
}

fn missing(field: &str) -> ProtocolError {
    ProtocolError::InvalidData(error_texts::missing_property(field))
}

impl WireMessage {
    pub(super) fn into_message(self) -> Result<Option<HubMessage>, ProtocolError> {
        let kind = self.kind.ok_or_else(|| missing("type"))?;
        let headers = self.headers.unwrap_or_default();
        let message = match kind {
            1 | 4 => {
                let target = self.target.ok_or_else(|| missing("target"))?;
                let arguments = self.arguments.ok_or_else(|| missing("arguments"))?;
                let invocation = Invocation {
                    invocation_id: self.invocation_id,
                    target,
                    arguments: arguments.0,
                    stream_ids: self.stream_ids.unwrap_or_default(),
                    headers,
                };
                if kind == 1 {
                    HubMessage::Invocation(invocation)
                } else {
                    if invocation.invocation_id.is_none() {
                        return Err(missing("invocationId"));
                    }
                    HubMessage::StreamInvocation(invocation)
                }
            }
            2 => HubMessage::StreamItem {
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
                item: self.item.ok_or_else(|| missing("item"))?,
                headers,
            },
            3 => {
                let invocation_id = self.invocation_id.ok_or_else(|| missing("invocationId"))?;
                let result = match (self.result, self.error) {
                    (Some(_), Some(_)) => return Err(ProtocolError::InvalidData(error_texts::ERROR_AND_RESULT.into())),
                    (Some(value), None) => CompletionResult::Value(value),
                    (None, Some(error)) => CompletionResult::Error(error),
                    (None, None) => CompletionResult::Void,
                };
                HubMessage::Completion {
                    invocation_id,
                    result,
                    headers,
                }
            }
            5 => HubMessage::CancelInvocation {
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
                headers,
            },
            6 => HubMessage::Ping,
            7 => HubMessage::Close {
                error: self.error,
                allow_reconnect: self.allow_reconnect.unwrap_or(false),
            },
            8 => HubMessage::Ack {
                sequence_id: self.sequence_id.ok_or_else(|| missing("sequenceId"))?,
            },
            9 => HubMessage::Sequence {
                sequence_id: self.sequence_id.ok_or_else(|| missing("sequenceId"))?,
            },
            other => {
                tracing::debug!(message_type = other, "ignoring a hub message of unknown type");
                return Ok(None);
            }
        };
        Ok(Some(message))
    }
}

/// Parses one JSON message (without its record separator): the common shapes quickly, the
/// rest (and every error) through serde. The quick reader keeps values as slices of `shared`.
pub(super) fn parse_one(record: &[u8], shared: SharedText<'_>) -> Result<Option<HubMessage>, ProtocolError> {
    match scan::wire_message(record, shared) {
        Some(wire) => wire.into_message(),
        None => parse_with_serde(record),
    }
}

/// Parses one record through serde (what the quick reader leaves, and every error).
pub(super) fn parse_with_serde(record: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    let wire: WireMessage = serde_json::from_slice(record).map_err(|e| {
        let text = match e.classify() {
            serde_json::error::Category::Data => format!("Invalid message: {e}"),
            _ => format!("Error reading JSON. {e}"),
        };
        ProtocolError::InvalidData(text)
    })?;
    wire.into_message()
}
