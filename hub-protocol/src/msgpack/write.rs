//! Writing one MessagePack message body, as the reference server lays it out.

use rmp::encode as enc;

use crate::{EncodeError, OutMessage, OutResult};

fn io(e: impl std::fmt::Display) -> EncodeError {
    EncodeError(e.to_string())
}

fn write_value(out: &mut Vec<u8>, value: &(dyn erased_serde::Serialize + Sync + '_)) -> Result<(), EncodeError> {
    rmp_serde::encode::write_named(out, value).map_err(io)
}

fn write_str(out: &mut Vec<u8>, value: &str) {
    // Writing into a Vec cannot fail.
    let _ = enc::write_str(out, value);
}

/// Writes the body of `message` (without its length prefix).
pub(super) fn write_body(message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match *message {
        OutMessage::Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            let _ = enc::write_array_len(out, 6);
            let _ = enc::write_uint(out, 1);
            let _ = enc::write_map_len(out, 0);
            match invocation_id {
                Some(id) => write_str(out, id),
                None => {
                    let _ = enc::write_nil(out);
                }
            }
            write_str(out, target);
            write_value(out, arguments)?;
            write_string_array(out, stream_ids);
        }
        OutMessage::StreamInvocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            let _ = enc::write_array_len(out, 6);
            let _ = enc::write_uint(out, 4);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
            write_str(out, target);
            write_value(out, arguments)?;
            write_string_array(out, stream_ids);
        }
        OutMessage::StreamItem { invocation_id, item } => {
            let _ = enc::write_array_len(out, 4);
            let _ = enc::write_uint(out, 2);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
            write_value(out, item)?;
        }
        OutMessage::Completion { invocation_id, result } => {
            let len = if matches!(result, OutResult::Void) { 4 } else { 5 };
            let _ = enc::write_array_len(out, len);
            let _ = enc::write_uint(out, 3);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
            match result {
                OutResult::Error(error) => {
                    let _ = enc::write_uint(out, 1);
                    write_str(out, error);
                }
                OutResult::Void => {
                    let _ = enc::write_uint(out, 2);
                }
                OutResult::Value(value) => {
                    let _ = enc::write_uint(out, 3);
                    write_value(out, value)?;
                }
            }
        }
        OutMessage::CancelInvocation { invocation_id } => {
            let _ = enc::write_array_len(out, 3);
            let _ = enc::write_uint(out, 5);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
        }
        OutMessage::Ping => {
            let _ = enc::write_array_len(out, 1);
            let _ = enc::write_uint(out, 6);
        }
        OutMessage::Close { error, allow_reconnect } => {
            let _ = enc::write_array_len(out, 3);
            let _ = enc::write_uint(out, 7);
            match error {
                Some(e) => write_str(out, e),
                None => {
                    let _ = enc::write_nil(out);
                }
            }
            let _ = enc::write_bool(out, allow_reconnect);
        }
        OutMessage::Ack { sequence_id } => {
            let _ = enc::write_array_len(out, 2);
            let _ = enc::write_uint(out, 8);
            let _ = enc::write_uint(out, sequence_id);
        }
        OutMessage::Sequence { sequence_id } => {
            let _ = enc::write_array_len(out, 2);
            let _ = enc::write_uint(out, 9);
            let _ = enc::write_uint(out, sequence_id);
        }
    }
    Ok(())
}

fn write_string_array(out: &mut Vec<u8>, values: &[String]) {
    let _ = enc::write_array_len(out, values.len() as u32);
    for v in values {
        write_str(out, v);
    }
}
