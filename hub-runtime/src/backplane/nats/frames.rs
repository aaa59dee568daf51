//! What one NATS message carries: a frame around a `backplane::wire` payload, split in chunks
//! when the payload is larger than the server's `max_payload`.
//!
//! A frame is MessagePack: `[kind, name | nil, chunk | nil, body]` — `kind` 1 for a message,
//! 2 for a group command, 3 for a client-result invocation; `name` the group, user or
//! connection the subject stands for (the receiver checks it, so two names hashed to one
//! subject never mix, see `subjects`), nil on `.all`; `chunk` `[origin server, message id,
//! index, count]` when the body was split; `body` the wire payload (or this chunk of it).
//!
//! nats-server refuses messages over its `max_payload` (1 MB by default; the client learns it
//! from the server's INFO), so a larger payload goes as several frames published one after the
//! other on the same subject. NATS keeps one connection's messages on one subject in order, so
//! a receiver appends each chunk to the message it belongs to (chunks of two messages of one
//! server may interleave when two tasks send at once) and hands the message on once its last
//! chunk came. A message with a missing chunk (dropped by a slow consumer, or sent during a
//! reconnect) is counted as lost; so is one that is still incomplete after [`PARTIAL_TTL`] or
//! grows past [`MAX_ASSEMBLED`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::observability::BackplaneMetrics;

/// How long the chunks of an incomplete message are kept.
const PARTIAL_TTL: Duration = Duration::from_secs(60);
/// The most incomplete messages one subscription keeps; past it the oldest is dropped.
const MAX_PARTIALS: usize = 64;
/// The largest message put together from chunks (256 MiB).
pub(super) const MAX_ASSEMBLED: usize = 256 << 20;
/// Room left in each chunk for the frame around it (beyond the name and origin).
const FRAME_OVERHEAD: usize = 64;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Message,
    GroupCommand,
    Invocation,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Message => 1,
            Kind::GroupCommand => 2,
            Kind::Invocation => 3,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(Kind::Message),
            2 => Some(Kind::GroupCommand),
            3 => Some(Kind::Invocation),
            _ => None,
        }
    }
}

/// A frame (or a message put together from its chunks).
#[derive(Debug)]
pub(super) struct Frame {
    pub(super) kind: Kind,
    pub(super) name: Option<String>,
    pub(super) body: Bytes,
}

/// The body is larger than any frame the server takes can carry in [`MAX_ASSEMBLED`].
#[derive(Debug)]
pub(super) struct TooLarge;

/// Frames a body for one subject: one frame if it fits in `max_payload`, else chunks.
/// `message_id` numbers this server's chunked messages.
pub(super) fn encode(
    kind: Kind,
    name: Option<&str>,
    body: &[u8],
    origin: &str,
    max_payload: usize,
    message_id: impl FnOnce() -> u64,
) -> Result<Vec<Bytes>, TooLarge> {
    let overhead = FRAME_OVERHEAD + name.map_or(0, str::len) + origin.len();
    if body.len().saturating_add(overhead) <= max_payload {
        return Ok(vec![frame(kind, name, None, body)]);
    }
    let room = max_payload.saturating_sub(overhead);
    if room == 0 || body.len() > MAX_ASSEMBLED {
        return Err(TooLarge);
    }
    let count = body.len().div_ceil(room);
    let count = u32::try_from(count).map_err(|_| TooLarge)?;
    let id = message_id();
    Ok(body
        .chunks(room)
        .enumerate()
        .map(|(index, part)| {
            let chunk = Chunk {
                origin,
                id,
                index: index as u32,
                count,
            };
            frame(kind, name, Some(chunk), part)
        })
        .collect())
}

struct Chunk<'a> {
    origin: &'a str,
    id: u64,
    index: u32,
    count: u32,
}

fn frame(kind: Kind, name: Option<&str>, chunk: Option<Chunk<'_>>, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(FRAME_OVERHEAD + name.map_or(0, str::len) + body.len());
    let _ = rmp::encode::write_array_len(&mut out, 4);
    let _ = rmp::encode::write_uint(&mut out, u64::from(kind.code()));
    match name {
        Some(name) => {
            let _ = rmp::encode::write_str(&mut out, name);
        }
        None => {
            let _ = rmp::encode::write_nil(&mut out);
        }
    }
    match chunk {
        Some(chunk) => {
            let _ = rmp::encode::write_array_len(&mut out, 4);
            let _ = rmp::encode::write_str(&mut out, chunk.origin);
            let _ = rmp::encode::write_uint(&mut out, chunk.id);
            let _ = rmp::encode::write_uint(&mut out, u64::from(chunk.index));
            let _ = rmp::encode::write_uint(&mut out, u64::from(chunk.count));
        }
        None => {
            let _ = rmp::encode::write_nil(&mut out);
        }
    }
    let _ = rmp::encode::write_bin(&mut out, body);
    Bytes::from(out)
}

/// A frame as read, before chunks are put together.
struct Raw {
    kind: Kind,
    name: Option<String>,
    chunk: Option<(String, u64, u32, u32)>,
    body: Bytes,
}

const NIL: u8 = 0xc0;

fn decode(payload: &Bytes) -> Option<Raw> {
    let mut rd: &[u8] = payload;
    if rmp::decode::read_array_len(&mut rd).ok()? != 4 {
        return None;
    }
    let kind = Kind::from_code(rmp::decode::read_int(&mut rd).ok()?)?;
    let name = if rd.first() == Some(&NIL) {
        rd = &rd[1..];
        None
    } else {
        Some(read_string(&mut rd)?)
    };
    let chunk = if rd.first() == Some(&NIL) {
        rd = &rd[1..];
        None
    } else {
        if rmp::decode::read_array_len(&mut rd).ok()? != 4 {
            return None;
        }
        let origin = read_string(&mut rd)?;
        let id = rmp::decode::read_int(&mut rd).ok()?;
        let index = rmp::decode::read_int(&mut rd).ok()?;
        let count = rmp::decode::read_int(&mut rd).ok()?;
        Some((origin, id, index, count))
    };
    let len = rmp::decode::read_bin_len(&mut rd).ok()? as usize;
    if rd.len() != len {
        return None;
    }
    let start = payload.len() - len;
    Some(Raw {
        kind,
        name,
        chunk,
        body: payload.slice(start..),
    })
}

fn read_string(rd: &mut &[u8]) -> Option<String> {
    let len = rmp::decode::read_str_len(rd).ok()? as usize;
    let bytes = rd.get(..len)?;
    let text = std::str::from_utf8(bytes).ok()?.to_string();
    *rd = &rd[len..];
    Some(text)
}

/// An incomplete chunked message.
struct Partial {
    kind: Kind,
    name: Option<String>,
    body: Vec<u8>,
    next: u32,
    count: u32,
    /// A chunk went missing: the rest is ignored up to the last chunk (counted lost once).
    broken: bool,
    started: Instant,
}

/// Puts chunked messages together, for one subscription (see the module documentation).
#[derive(Default)]
pub(super) struct Reassembly {
    partials: HashMap<(String, u64), Partial>,
}

impl Reassembly {
    /// Reads one NATS message: the frame, a message whose last chunk this was, or `None`
    /// (unreadable, or a chunk of a message still incomplete).
    pub(super) fn accept(&mut self, payload: &Bytes, metrics: &BackplaneMetrics) -> Option<Frame> {
        let Some(raw) = decode(payload) else {
            tracing::warn!("ignoring an unreadable NATS backplane message");
            return None;
        };
        let Some((origin, id, index, count)) = raw.chunk else {
            return Some(Frame {
                kind: raw.kind,
                name: raw.name,
                body: raw.body,
            });
        };
        self.forget_stale(metrics);
        let key = (origin, id);
        let last = index.saturating_add(1) >= count;
        if index == 0 || !self.partials.contains_key(&key) {
            if self.partials.len() >= MAX_PARTIALS {
                self.drop_oldest(metrics);
            }
            // A message whose first chunk never came is lost (counted once, here).
            let broken = index != 0;
            if broken {
                metrics.lost(1);
            }
            let partial = Partial {
                kind: raw.kind,
                name: raw.name,
                body: Vec::new(),
                next: 0,
                count,
                broken,
                started: Instant::now(),
            };
            if let Some(old) = self.partials.insert(key.clone(), partial) {
                if !old.broken {
                    metrics.lost(1);
                }
            }
        }
        let partial = self.partials.get_mut(&key)?;
        let fits = partial.body.len().saturating_add(raw.body.len()) <= MAX_ASSEMBLED;
        let fine = partial.next == index && partial.count == count && partial.kind == raw.kind && fits;
        if !partial.broken && !fine {
            // A chunk went missing (or the sender is confused): the message is lost.
            partial.broken = true;
            partial.body = Vec::new();
            metrics.lost(1);
        }
        if partial.broken {
            if last {
                self.partials.remove(&key);
            }
            return None;
        }
        partial.body.extend_from_slice(&raw.body);
        partial.next += 1;
        if partial.next < partial.count {
            return None;
        }
        let done = self.partials.remove(&key)?;
        Some(Frame {
            kind: done.kind,
            name: done.name,
            body: Bytes::from(done.body),
        })
    }

    fn forget_stale(&mut self, metrics: &BackplaneMetrics) {
        let mut stale = 0;
        self.partials.retain(|_, p| {
            let keep = p.started.elapsed() < PARTIAL_TTL;
            if !keep && !p.broken {
                stale += 1;
            }
            keep
        });
        if stale > 0 {
            metrics.lost(stale);
        }
    }

    fn drop_oldest(&mut self, metrics: &BackplaneMetrics) {
        let oldest = self
            .partials
            .iter()
            .min_by_key(|(_, p)| p.started)
            .map(|(key, _)| key.clone());
        if let Some(partial) = oldest.and_then(|key| self.partials.remove(&key)) {
            if !partial.broken {
                metrics.lost(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> BackplaneMetrics {
        BackplaneMetrics::new("test")
    }

    #[test]
    fn a_small_body_is_one_frame() {
        let frames = encode(Kind::Message, Some("g.1"), b"hello", "me", 1024, || 1).unwrap();
        assert_eq!(frames.len(), 1);
        let frame = Reassembly::default().accept(&frames[0], &metrics()).unwrap();
        assert_eq!((frame.kind, frame.name.as_deref()), (Kind::Message, Some("g.1")));
        assert_eq!(&frame.body[..], b"hello");
    }

    #[test]
    fn a_large_body_is_split_and_put_together_even_interleaved() {
        let first: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let second: Vec<u8> = (0..5_000u32).map(|i| (i * 7) as u8).collect();
        let a = encode(Kind::Invocation, None, &first, "me", 1024, || 1).unwrap();
        let b = encode(Kind::Invocation, None, &second, "me", 1024, || 2).unwrap();
        assert!(a.iter().chain(&b).all(|f| f.len() <= 1024));
        assert!(a.len() > 10);
        let (metrics, mut reassembly) = (metrics(), Reassembly::default());
        let mut done = Vec::new();
        let (mut ia, mut ib) = (a.iter(), b.iter());
        loop {
            let (x, y) = (ia.next(), ib.next());
            if x.is_none() && y.is_none() {
                break;
            }
            for frame in [x, y].into_iter().flatten() {
                done.extend(reassembly.accept(frame, &metrics));
            }
        }
        assert_eq!(done.len(), 2);
        assert_eq!(&done[0].body[..], &second[..], "the shorter one completes first");
        assert_eq!(&done[1].body[..], &first[..]);
        assert_eq!(metrics.stats().lost_messages, 0);
    }

    #[test]
    fn a_missing_chunk_loses_the_message_and_is_counted() {
        let body = vec![7u8; 5_000];
        let frames = encode(Kind::Message, Some("u"), &body, "me", 1024, || 9).unwrap();
        let (metrics, mut reassembly) = (metrics(), Reassembly::default());
        for (i, frame) in frames.iter().enumerate() {
            if i != 2 {
                assert!(reassembly.accept(frame, &metrics).is_none());
            }
        }
        assert_eq!(metrics.stats().lost_messages, 1);
        assert!(reassembly.partials.is_empty());
        let again = encode(Kind::Message, Some("u"), &body, "me", 1024, || 10).unwrap();
        let done: Vec<Frame> = again.iter().filter_map(|f| reassembly.accept(f, &metrics)).collect();
        assert_eq!(done.len(), 1, "the next message is whole");
    }

    #[test]
    fn garbage_is_ignored() {
        let mut reassembly = Reassembly::default();
        for junk in [
            &b""[..],
            b"\xc1",
            b"\x94\x01\xc0\xc0\xc4\x05ab",
            b"\x94\x09\xc0\xc0\xc4\x00",
        ] {
            assert!(reassembly.accept(&Bytes::copy_from_slice(junk), &metrics()).is_none());
        }
        assert!(encode(Kind::Message, Some("x"), &[0; 10], "me", 10, || 1).is_err());
    }
}
