//! Writing JSON messages: fields in the order the reference server writes them, straight
//! into the output buffer.

use super::RECORD_SEPARATOR;
use crate::{EncodeError, OutMessage, OutResult};

fn write_str(out: &mut Vec<u8>, value: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn write_value(out: &mut Vec<u8>, value: &(dyn erased_serde::Serialize + Sync + '_)) -> Result<(), EncodeError> {
    serde_json::to_writer(&mut *out, value).map_err(|e| EncodeError(e.to_string()))
}

fn write_stream_ids(out: &mut Vec<u8>, ids: &[String]) {
    if !ids.is_empty() {
        out.extend_from_slice(b",\"streamIds\":");
        let _ = serde_json::to_writer(&mut *out, ids);
    }
}

/// Appends `message` and its record separator to `out` (a failed value leaves part of it:
/// the caller truncates).
pub(super) fn write_json(message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match *message {
        OutMessage::Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            out.extend_from_slice(b"{\"type\":1,");
            if let Some(id) = invocation_id {
                out.extend_from_slice(b"\"invocationId\":");
                write_str(out, id);
                out.push(b',');
            }
            out.extend_from_slice(b"\"target\":");
            write_str(out, target);
            out.extend_from_slice(b",\"arguments\":");
            write_value(out, arguments)?;
            write_stream_ids(out, stream_ids);
        }
        OutMessage::StreamInvocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            out.extend_from_slice(b"{\"type\":4,\"invocationId\":");
            write_str(out, invocation_id);
            out.extend_from_slice(b",\"target\":");
            write_str(out, target);
            out.extend_from_slice(b",\"arguments\":");
            write_value(out, arguments)?;
            write_stream_ids(out, stream_ids);
        }
        OutMessage::StreamItem { invocation_id, item } => {
            out.extend_from_slice(b"{\"type\":2,\"invocationId\":");
            write_str(out, invocation_id);
            out.extend_from_slice(b",\"item\":");
            write_value(out, item)?;
        }
        OutMessage::Completion { invocation_id, result } => {
            out.extend_from_slice(b"{\"type\":3,\"invocationId\":");
            write_str(out, invocation_id);
            match result {
                OutResult::Void => {}
                OutResult::Value(value) => {
                    out.extend_from_slice(b",\"result\":");
                    write_value(out, value)?;
                }
                OutResult::Error(error) => {
                    out.extend_from_slice(b",\"error\":");
                    write_str(out, error);
                }
            }
        }
        OutMessage::CancelInvocation { invocation_id } => {
            out.extend_from_slice(b"{\"type\":5,\"invocationId\":");
            write_str(out, invocation_id);
        }
        OutMessage::Ping => out.extend_from_slice(b"{\"type\":6"),
        OutMessage::Close { error, allow_reconnect } => {
            out.extend_from_slice(b"{\"type\":7");
            if let Some(error) = error {
                out.extend_from_slice(b",\"error\":");
                write_str(out, error);
            }
            if allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":true");
            }
        }
        OutMessage::Ack { sequence_id } => {
            out.extend_from_slice(b"{\"type\":8,\"sequenceId\":");
            out.extend_from_slice(sequence_id.to_string().as_bytes());
        }
        OutMessage::Sequence { sequence_id } => {
            out.extend_from_slice(b"{\"type\":9,\"sequenceId\":");
            out.extend_from_slice(sequence_id.to_string().as_bytes());
        }
    }
    out.push(b'}');
    out.push(RECORD_SEPARATOR);
    Ok(())
}
