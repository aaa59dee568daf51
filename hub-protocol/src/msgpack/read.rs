//! Reading one MessagePack message body: a positional array, checked element by element.

use rmp::decode as dec;

use crate::error_texts;
use crate::raw::SharedBytes;
use crate::{CompletionResult, Headers, HubMessage, Invocation, ProtocolError, RawValue};

/// An `InvalidData` error with this text.
pub(super) fn invalid(text: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidData(text.into())
}

/// A cursor over one message body.
struct Reader<'a> {
    input: &'a [u8],
    /// What values are kept from.
    shared: SharedBytes<'a>,
}

impl<'a> Reader<'a> {
    fn array_len(&mut self, what: &str) -> Result<u32, ProtocolError> {
        dec::read_array_len(&mut self.input).map_err(|_| invalid(error_texts::reading_array_length_failed(what)))
    }

    fn int(&mut self, what: &str) -> Result<i64, ProtocolError> {
        dec::read_int(&mut self.input).map_err(|_| invalid(error_texts::reading_int32_failed(what)))
    }

    fn nil_or_string(&mut self, what: &str) -> Result<Option<String>, ProtocolError> {
        if self.input.first() == Some(&0xc0) {
            self.input = &self.input[1..];
            return Ok(None);
        }
        self.string(what).map(Some)
    }

    fn string(&mut self, what: &str) -> Result<String, ProtocolError> {
        let len =
            dec::read_str_len(&mut self.input).map_err(|_| invalid(error_texts::reading_string_failed(what)))? as usize;
        if self.input.len() < len {
            return Err(invalid(error_texts::reading_string_failed(what)));
        }
        let (text, rest) = self.input.split_at(len);
        self.input = rest;
        std::str::from_utf8(text)
            .map(str::to_owned)
            .map_err(|_| invalid(error_texts::reading_string_failed(what)))
    }

    fn boolean(&mut self, what: &str) -> Result<bool, ProtocolError> {
        dec::read_bool(&mut self.input).map_err(|_| invalid(error_texts::reading_boolean_failed(what)))
    }

    /// One whole value, kept as its bytes.
    fn raw(&mut self, what: &str) -> Result<RawValue, ProtocolError> {
        let before = self.input;
        rmpv::decode::read_value_ref_with_max_depth(&mut self.input, 64)
            .map_err(|e| invalid(format!("Reading '{what}' failed: {e}.")))?;
        let used = before.len() - self.input.len();
        Ok(RawValue::MessagePack(self.shared.keep(&before[..used])))
    }

    fn headers(&mut self) -> Result<Headers, ProtocolError> {
        let len = dec::read_map_len(&mut self.input)
            .map_err(|_| invalid(error_texts::reading_map_length_failed("headers")))?;
        let mut headers = Headers::new();
        for _ in 0..len {
            let key = self.string("headers")?;
            let value = self.string("headers")?;
            headers.insert(key, value);
        }
        Ok(headers)
    }

    fn string_array(&mut self, what: &str) -> Result<Vec<String>, ProtocolError> {
        let len = self.array_len(what)?;
        (0..len).map(|_| self.string(what)).collect()
    }

    fn arguments(&mut self) -> Result<Vec<RawValue>, ProtocolError> {
        let len = self.array_len("arguments")?;
        if len as usize > self.input.len() {
            return Err(invalid(error_texts::reading_array_length_failed("arguments")));
        }
        (0..len).map(|_| self.raw("arguments")).collect()
    }

    fn sequence_id(&mut self) -> Result<u64, ProtocolError> {
        dec::read_int(&mut self.input).map_err(|_| invalid("Reading 'sequenceId' as Int64 failed."))
    }
}

/// Parses one message body (without its length prefix); `None` for a message of unknown type.
/// Values are slices of `shared` when `body` lies inside it.
pub(super) fn parse_body(body: &[u8], shared: SharedBytes<'_>) -> Result<Option<HubMessage>, ProtocolError> {
    let mut r = Reader { input: body, shared };
    let len = r.array_len("elements")?;
    if len == 0 {
        return Err(invalid("Unexpected empty message."));
    }
    let kind = r.int("messageType")?;
    let need = |n: u32| -> Result<(), ProtocolError> {
        if len < n {
            Err(invalid(format!(
                "Invalid message: expected at least {n} elements, got {len}."
            )))
        } else {
            Ok(())
        }
    };
    let message = match kind {
        1 | 4 => {
            need(5)?;
            let headers = r.headers()?;
            let invocation_id = r.nil_or_string("invocationId")?;
            let target = r.string("target")?;
            let arguments = r.arguments()?;
            let stream_ids = if len > 5 {
                r.string_array("streamIds")?
            } else {
                Vec::new()
            };
            let invocation = Invocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
                headers,
            };
            if kind == 1 {
                HubMessage::Invocation(invocation)
            } else {
                if invocation.invocation_id.is_none() {
                    return Err(invalid(error_texts::reading_string_failed("invocationId")));
                }
                HubMessage::StreamInvocation(invocation)
            }
        }
        2 => {
            need(4)?;
            let headers = r.headers()?;
            let invocation_id = r.string("invocationId")?;
            let item = r.raw("item")?;
            HubMessage::StreamItem {
                invocation_id,
                item,
                headers,
            }
        }
        3 => {
            need(4)?;
            let headers = r.headers()?;
            let invocation_id = r.string("invocationId")?;
            let result_kind = r.int("resultKind")?;
            let result = match result_kind {
                1 => {
                    need(5)?;
                    CompletionResult::Error(r.string("error")?)
                }
                2 => CompletionResult::Void,
                3 => {
                    need(5)?;
                    CompletionResult::Value(r.raw("argument")?)
                }
                _ => return Err(invalid(error_texts::INVALID_RESULT_KIND)),
            };
            HubMessage::Completion {
                invocation_id,
                result,
                headers,
            }
        }
        5 => {
            need(3)?;
            let headers = r.headers()?;
            HubMessage::CancelInvocation {
                invocation_id: r.string("invocationId")?,
                headers,
            }
        }
        6 => HubMessage::Ping,
        7 => {
            need(2)?;
            let error = r.nil_or_string("error")?;
            let allow_reconnect = if len > 2 { r.boolean("allowReconnect")? } else { false };
            HubMessage::Close { error, allow_reconnect }
        }
        8 => {
            need(2)?;
            HubMessage::Ack {
                sequence_id: r.sequence_id()?,
            }
        }
        9 => {
            need(2)?;
            HubMessage::Sequence {
                sequence_id: r.sequence_id()?,
            }
        }
        other => {
            tracing::debug!(message_type = other, "ignoring a hub message of unknown type");
            return Ok(None);
        }
    };
    Ok(Some(message))
}
