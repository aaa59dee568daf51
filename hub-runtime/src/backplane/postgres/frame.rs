//! What a notification carries: a small MessagePack frame around the shared envelopes of
//! `backplane::wire`, as base64 text (NOTIFY payloads are text), or a reference to a row of
//! the payload table when the text would not fit.
//!
//! Frame: `[kind, hub, origin server, sequence number, target | nil, body]`. The origin and
//! its sequence number make every payload unique, so PostgreSQL never folds two equal
//! notifications into one. A target is `[tag, [names]]` (see [`Target`]). A reference is
//! `#{row id}:{origin server}`: `#` is not in the base64 alphabet.

use base64::Engine;

use crate::backplane::SendTarget;

/// A NOTIFY payload must be shorter than 8000 bytes.
pub(super) const MAX_NOTIFY_PAYLOAD: usize = 7999;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A message for connections (`wire::encode_message`), on the hub channel.
    Message,
    /// A group command (`wire::encode_group_command`), on the hub channel.
    GroupCommand,
    /// A group command's acknowledgement (`wire::encode_ack`), on the asking server's channel.
    Ack,
    /// A client result's answer (`wire::encode_return`), on the asking server's channel.
    Return,
    /// The owner of a connection took a client-result invocation (the body is its invocation
    /// id), on the asking server's channel.
    Accepted,
}

impl Kind {
    fn code(self) -> u64 {
        match self {
            Kind::Message => 1,
            Kind::GroupCommand => 2,
            Kind::Ack => 3,
            Kind::Return => 4,
            Kind::Accepted => 5,
        }
    }

    fn from_code(code: u64) -> Option<Kind> {
        Some(match code {
            1 => Kind::Message,
            2 => Kind::GroupCommand,
            3 => Kind::Ack,
            4 => Kind::Return,
            5 => Kind::Accepted,
            _ => return None,
        })
    }
}

/// Who a message is for, as the frame carries it (the excluded connections and the group list
/// travel in the envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// Every connection but the envelope's excluded ones.
    All,
    /// A group's members but the envelope's excluded ones.
    Group(String),
    /// Members of the envelope's groups, each once.
    Groups,
    /// These connections.
    Connections(Vec<String>),
    /// These users' connections.
    Users(Vec<String>),
}

impl Target {
    /// The frame target of a send target, with each name once.
    pub(super) fn of(target: &SendTarget) -> Target {
        fn once(names: &[String]) -> Vec<String> {
            let mut seen = std::collections::HashSet::new();
            names.iter().filter(|n| seen.insert(n.as_str())).cloned().collect()
        }
        match target {
            SendTarget::All | SendTarget::AllExcept(_) => Target::All,
            SendTarget::Group(group) | SendTarget::GroupExcept(group, _) => Target::Group(group.clone()),
            SendTarget::Groups(_) => Target::Groups,
            SendTarget::Connection(id) => Target::Connections(vec![id.clone()]),
            SendTarget::Connections(ids) => Target::Connections(once(ids)),
            SendTarget::User(user) => Target::Users(vec![user.clone()]),
            SendTarget::Users(users) => Target::Users(once(users)),
        }
    }

    /// The local send target, given the envelope's exclusions and group list.
    pub(super) fn resolve(self, excluded: Vec<String>, groups: Option<Vec<String>>) -> SendTarget {
        match self {
            Target::All => SendTarget::AllExcept(excluded),
            Target::Group(group) => SendTarget::GroupExcept(group, excluded),
            Target::Groups => SendTarget::Groups(groups.unwrap_or_default()),
            Target::Connections(mut ids) if ids.len() == 1 => SendTarget::Connection(ids.remove(0)),
            Target::Connections(ids) => SendTarget::Connections(ids),
            Target::Users(mut users) if users.len() == 1 => SendTarget::User(users.remove(0)),
            Target::Users(users) => SendTarget::Users(users),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let (tag, names): (u64, &[String]) = match self {
            Target::All => (0, &[]),
            Target::Group(group) => (1, std::slice::from_ref(group)),
            Target::Groups => (2, &[]),
            Target::Connections(ids) => (3, ids),
            Target::Users(users) => (4, users),
        };
        let _ = rmp::encode::write_array_len(out, 2);
        let _ = rmp::encode::write_uint(out, tag);
        let _ = rmp::encode::write_array_len(out, names.len() as u32);
        for name in names {
            let _ = rmp::encode::write_str(out, name);
        }
    }

    fn read(value: &rmpv::Value) -> Option<Target> {
        let items = value.as_array()?;
        let mut names = crate::backplane::wire::strings(items.get(1)?)?;
        Some(match items.first()?.as_u64()? {
            0 => Target::All,
            1 => Target::Group(names.pop()?),
            2 => Target::Groups,
            3 => Target::Connections(names),
            4 => Target::Users(names),
            _ => return None,
        })
    }
}

/// A frame read from a notification.
pub(super) struct Frame {
    pub(super) kind: Kind,
    pub(super) hub: String,
    pub(super) origin: String,
    pub(super) target: Option<Target>,
    pub(super) body: Vec<u8>,
}

/// Encodes a frame.
pub(super) fn encode(
    kind: Kind,
    hub: &str,
    origin: &str,
    sequence: u64,
    target: Option<&Target>,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + hub.len() + origin.len() + body.len());
    let _ = rmp::encode::write_array_len(&mut out, 6);
    let _ = rmp::encode::write_uint(&mut out, kind.code());
    let _ = rmp::encode::write_str(&mut out, hub);
    let _ = rmp::encode::write_str(&mut out, origin);
    let _ = rmp::encode::write_uint(&mut out, sequence);
    match target {
        Some(target) => target.write(&mut out),
        None => {
            let _ = rmp::encode::write_nil(&mut out);
        }
    }
    let _ = rmp::encode::write_bin(&mut out, body);
    out
}

/// Decodes a frame; `None` if it is not one.
pub(super) fn decode(bytes: &[u8]) -> Option<Frame> {
    let value = rmpv::decode::read_value(&mut &bytes[..]).ok()?;
    let mut items = match value {
        rmpv::Value::Array(items) if items.len() >= 6 => items,
        _ => return None,
    };
    let body = match std::mem::replace(&mut items[5], rmpv::Value::Nil) {
        rmpv::Value::Binary(body) => body,
        _ => return None,
    };
    Some(Frame {
        kind: Kind::from_code(items[0].as_u64()?)?,
        hub: items[1].as_str()?.to_string(),
        origin: items[2].as_str()?.to_string(),
        target: match &items[4] {
            rmpv::Value::Nil => None,
            target => Some(Target::read(target)?),
        },
        body,
    })
}

/// What a notification's text says.
pub(super) enum Payload {
    /// The frame itself.
    Inline(Vec<u8>),
    /// The frame is in the payload table under this id; `origin` sent it.
    Stored { id: i64, origin: String },
}

/// The notification text for a frame, if it fits in a notification.
pub(super) fn inline_text(frame: &[u8]) -> Option<String> {
    // Base64 makes 4 bytes of every 3 (rounded up).
    (frame.len().div_ceil(3) * 4 <= MAX_NOTIFY_PAYLOAD).then(|| base64::engine::general_purpose::STANDARD.encode(frame))
}

/// Reads a notification's text; `None` if it is neither base64 nor a reference.
pub(super) fn read_payload(text: &str) -> Option<Payload> {
    match text.strip_prefix('#') {
        Some(reference) => {
            let (id, origin) = reference.split_once(':')?;
            Some(Payload::Stored {
                id: id.parse().ok()?,
                origin: origin.to_string(),
            })
        }
        None => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .map(Payload::Inline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let target = Target::Connections(vec!["a".into(), "b".into()]);
        let bytes = encode(Kind::Message, "Hub", "me", 7, Some(&target), b"body");
        let frame = decode(&bytes).unwrap();
        assert_eq!(
            (frame.kind, frame.hub.as_str(), frame.origin.as_str()),
            (Kind::Message, "Hub", "me")
        );
        assert_eq!(frame.target, Some(target));
        assert_eq!(frame.body, b"body");
        assert!(decode(b"\x93\x01").is_none());
        assert!(decode(&encode(Kind::Ack, "", "me", 1, None, b""))
            .unwrap()
            .target
            .is_none());
    }

    #[test]
    fn targets_come_back_as_sent() {
        let sent = SendTarget::Users(vec!["u".into(), "v".into(), "u".into()]);
        assert_eq!(
            Target::of(&sent).resolve(vec![], None),
            SendTarget::Users(vec!["u".into(), "v".into()])
        );
        let sent = SendTarget::GroupExcept("g".into(), vec!["c".into()]);
        assert_eq!(
            Target::of(&sent).resolve(vec!["c".into()], None),
            SendTarget::GroupExcept("g".into(), vec!["c".into()])
        );
        assert_eq!(
            Target::of(&SendTarget::Connection("c".into())).resolve(vec![], None),
            SendTarget::Connection("c".into())
        );
    }

    #[test]
    fn payload_text_is_inline_until_it_would_not_fit() {
        let small = vec![0u8; 5997];
        let text = inline_text(&small).unwrap();
        assert!(text.len() <= MAX_NOTIFY_PAYLOAD);
        assert!(matches!(read_payload(&text), Some(Payload::Inline(b)) if b == small));
        assert!(inline_text(&vec![0u8; 5998]).is_none());
        assert!(matches!(
            read_payload("#42:srv_1"),
            Some(Payload::Stored { id: 42, ref origin }) if origin == "srv_1"
        ));
        assert!(read_payload("#x:srv").is_none());
        assert!(read_payload("not base64!").is_none());
    }
}
