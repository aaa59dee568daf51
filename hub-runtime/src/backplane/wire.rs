//! The payloads servers exchange through any broker (Redis, PostgreSQL, NATS), MessagePack:
//! messages, group commands and their acks, and client results.
//!
//! A message: `[excluded ids, {protocol name: framed bytes}, invocation id | nil, reply
//! address | nil, origin server, group list | nil]` — the first two elements as in ASP.NET Core,
//! the bytes forwarded verbatim to connections speaking that protocol; the invocation id and
//! reply address are set for a client result another server awaits. A group command: `[id,
//! server, 1 = add | 2 = remove, group, connection id]`; its ack: `[id]` or `[id, error]`. A
//! client result's answer: `[invocation id, protocol, result]`.

use super::{BackplaneError, EncodedMessage};
use crate::backplane::{GroupChange, GroupError};
use crate::protocol::{CompletionResult, RawValue};

fn write_strs(out: &mut Vec<u8>, items: &[String]) {
    let _ = rmp::encode::write_array_len(out, items.len() as u32);
    for item in items {
        let _ = rmp::encode::write_str(out, item);
    }
}

pub(super) fn encode_message(
    excluded: &[String],
    message: &EncodedMessage,
    origin: &str,
    groups: Option<&[String]>,
) -> Vec<u8> {
    encode_message_with(excluded, message, origin, groups, None)
}

pub(super) fn encode_message_with(
    excluded: &[String],
    message: &EncodedMessage,
    origin: &str,
    groups: Option<&[String]>,
    reply: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.encodings.iter().map(|(_, b)| b.len()).sum::<usize>());
    let _ = rmp::encode::write_array_len(&mut out, 6);
    write_strs(&mut out, excluded);
    let _ = rmp::encode::write_map_len(&mut out, message.encodings.len() as u32);
    for (name, bytes) in &message.encodings {
        let _ = rmp::encode::write_str(&mut out, name);
        let _ = rmp::encode::write_bin(&mut out, bytes);
    }
    match reply {
        Some((invocation_id, return_channel)) => {
            let _ = rmp::encode::write_str(&mut out, invocation_id);
            let _ = rmp::encode::write_str(&mut out, return_channel);
        }
        None => {
            let _ = rmp::encode::write_nil(&mut out);
            let _ = rmp::encode::write_nil(&mut out);
        }
    }
    let _ = rmp::encode::write_str(&mut out, origin);
    match groups {
        Some(groups) => write_strs(&mut out, groups),
        None => {
            let _ = rmp::encode::write_nil(&mut out);
        }
    }
    out
}

pub(super) struct Message {
    /// A client result's invocation id and the channel for the answer.
    pub(super) reply: Option<(String, String)>,
    pub(super) excluded: Vec<String>,
    pub(super) encoded: EncodedMessage,
    pub(super) origin: String,
    pub(super) groups: Option<Vec<String>>,
}

pub(super) fn strings(value: &rmpv::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

pub(super) fn decode_message(payload: &[u8]) -> Option<Message> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    let excluded = strings(items.first()?)?;
    let encodings = items
        .get(1)?
        .as_map()?
        .iter()
        .map(|(k, v)| Some((k.as_str()?.to_string(), bytes::Bytes::copy_from_slice(v.as_slice()?))))
        .collect::<Option<Vec<_>>>()?;
    let origin = items.get(4).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let groups = items.get(5).and_then(strings);
    let reply = match (
        items.get(2).and_then(|v| v.as_str()),
        items.get(3).and_then(|v| v.as_str()),
    ) {
        (Some(id), Some(channel)) => Some((id.to_string(), channel.to_string())),
        _ => None,
    };
    Some(Message {
        reply,
        excluded,
        encoded: EncodedMessage { encodings },
        origin,
        groups,
    })
}

/// A group change on the wire: 1 adds, 2 removes.
impl GroupChange {
    fn code(self) -> u64 {
        match self {
            GroupChange::Add => 1,
            GroupChange::Remove => 2,
        }
    }

    /// Anything but 1 removes, as before.
    fn from_code(code: u64) -> Self {
        if code == 1 {
            GroupChange::Add
        } else {
            GroupChange::Remove
        }
    }
}

pub(super) struct GroupCommand {
    pub(super) id: u64,
    pub(super) server: String,
    pub(super) change: GroupChange,
    pub(super) group: String,
    pub(super) connection: String,
}

pub(super) fn encode_group_command(
    id: u64,
    server: &str,
    change: GroupChange,
    group: &str,
    connection: &str,
) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rmp::encode::write_array_len(&mut out, 5);
    let _ = rmp::encode::write_uint(&mut out, id);
    let _ = rmp::encode::write_str(&mut out, server);
    let _ = rmp::encode::write_uint(&mut out, change.code());
    let _ = rmp::encode::write_str(&mut out, group);
    let _ = rmp::encode::write_str(&mut out, connection);
    out
}

pub(super) fn decode_group_command(payload: &[u8]) -> Option<GroupCommand> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    Some(GroupCommand {
        id: items.first()?.as_u64()?,
        server: items.get(1)?.as_str()?.to_string(),
        change: GroupChange::from_code(items.get(2)?.as_u64()?),
        group: items.get(3)?.as_str()?.to_string(),
        connection: items.get(4)?.as_str()?.to_string(),
    })
}

/// `[invocation id, protocol, 1 = error | 2 = void | 3 = value, error text | value bytes]`.
pub(super) fn encode_return(invocation_id: &str, protocol: &str, result: &CompletionResult) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rmp::encode::write_array_len(&mut out, 4);
    let _ = rmp::encode::write_str(&mut out, invocation_id);
    let _ = rmp::encode::write_str(&mut out, protocol);
    match result {
        CompletionResult::Error(error) => {
            let _ = rmp::encode::write_uint(&mut out, 1);
            let _ = rmp::encode::write_str(&mut out, error);
        }
        CompletionResult::Void => {
            let _ = rmp::encode::write_uint(&mut out, 2);
            let _ = rmp::encode::write_nil(&mut out);
        }
        CompletionResult::Value(raw) => {
            let _ = rmp::encode::write_uint(&mut out, 3);
            let _ = rmp::encode::write_bin(&mut out, raw.as_bytes());
        }
    }
    out
}

pub(super) fn decode_return(payload: &[u8]) -> Option<(String, CompletionResult)> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    let id = items.first()?.as_str()?.to_string();
    let protocol = items.get(1)?.as_str()?;
    let result = match items.get(2)?.as_u64()? {
        1 => CompletionResult::Error(items.get(3)?.as_str()?.to_string()),
        2 => CompletionResult::Void,
        3 => CompletionResult::Value(RawValue::from_protocol_bytes(protocol, items.get(3)?.as_slice()?).ok()?),
        _ => return None,
    };
    Some((id, result))
}

/// `[id]` when the group command was applied; `[id, 1, limit]` when the connection is in the
/// most groups allowed; `[id, 2, reason]` when it was refused for another reason.
pub(super) fn encode_ack(id: u64, outcome: &Result<(), GroupError>) -> Vec<u8> {
    let mut out = Vec::new();
    match outcome {
        Ok(()) => {
            let _ = rmp::encode::write_array_len(&mut out, 1);
            let _ = rmp::encode::write_uint(&mut out, id);
        }
        Err(GroupError::LimitReached(limit)) => {
            let _ = rmp::encode::write_array_len(&mut out, 3);
            let _ = rmp::encode::write_uint(&mut out, id);
            let _ = rmp::encode::write_uint(&mut out, 1);
            let _ = rmp::encode::write_uint(&mut out, *limit as u64);
        }
        Err(other) => {
            let _ = rmp::encode::write_array_len(&mut out, 3);
            let _ = rmp::encode::write_uint(&mut out, id);
            let _ = rmp::encode::write_uint(&mut out, 2);
            let _ = rmp::encode::write_str(&mut out, &other.to_string());
        }
    }
    out
}

pub(super) fn decode_ack(payload: &[u8]) -> Option<(u64, Result<(), BackplaneError>)> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    let id = items.first()?.as_u64()?;
    let outcome = match items.get(1).and_then(|v| v.as_u64()) {
        None => Ok(()),
        Some(1) => {
            let limit = items.get(2)?.as_u64()?;
            Err(BackplaneError::GroupLimitReached(
                usize::try_from(limit).unwrap_or(usize::MAX),
            ))
        }
        Some(_) => Err(BackplaneError::Refused(
            items.get(2).and_then(|v| v.as_str()).unwrap_or_default().to_string(),
        )),
    };
    Some((id, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let message = EncodedMessage {
            encodings: vec![("json".into(), bytes::Bytes::from_static(b"{}\x1e"))],
        };
        let bytes = encode_message(&["a".into()], &message, "me", Some(&["g1".into(), "g2".into()]));
        let back = decode_message(&bytes).unwrap();
        assert_eq!(back.excluded, vec!["a".to_string()]);
        assert_eq!(back.origin, "me");
        assert_eq!(back.groups, Some(vec!["g1".to_string(), "g2".to_string()]));
        assert_eq!(back.encoded.encodings[0].1.as_ref(), b"{}\x1e");
        let command = decode_group_command(&encode_group_command(7, "s", GroupChange::Remove, "g", "c")).unwrap();
        assert_eq!(
            (
                command.id,
                command.change,
                command.group.as_str(),
                command.connection.as_str()
            ),
            (7, GroupChange::Remove, "g", "c")
        );
        assert_eq!(decode_ack(&encode_ack(9, &Ok(()))), Some((9, Ok(()))));
        assert_eq!(
            decode_ack(&encode_ack(9, &Err(GroupError::LimitReached(3)))),
            Some((9, Err(BackplaneError::GroupLimitReached(3))))
        );
        assert!(decode_message(b"\xc1").is_none());
    }
}
