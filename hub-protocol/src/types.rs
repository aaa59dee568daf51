//! Value types that map the way the official SignalR clients expect.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Binary data: a base64 string in JSON, `bin` in MessagePack (what .NET's `byte[]` is).
///
/// ```
/// use hub_protocol::types::Binary;
/// let json = serde_json::to_string(&Binary(vec![1, 2, 3])).unwrap();
/// assert_eq!(json, "\"AQID\"");
/// let back: Binary = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.0, vec![1, 2, 3]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Binary(pub Vec<u8>);

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            use base64::Engine;
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

struct BinaryVisitor;

impl<'de> Visitor<'de> for BinaryVisitor {
    type Value = Binary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("base64 text, bytes, or an array of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Binary, E> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .map(Binary)
            .map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
        Ok(Binary(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
        Ok(Binary(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Binary(out))
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Binary, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(BinaryVisitor)
        } else {
            deserializer.deserialize_byte_buf(BinaryVisitor)
        }
    }
}

/// A point in time in UTC: ISO 8601 with `Z` in JSON (what .NET's `DateTime` is).
///
/// ```
/// use hub_protocol::types::DateTime;
/// let t = DateTime::from_unix(946_684_800, 0).unwrap();
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"2000-01-01T00:00:00Z\"");
/// let back: DateTime = serde_json::from_str("\"2000-01-01T00:00:00.000Z\"").unwrap();
/// assert_eq!(back, t);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub time::OffsetDateTime);

impl DateTime {
    /// From seconds and nanoseconds since the Unix epoch.
    pub fn from_unix(seconds: i64, nanoseconds: u32) -> Option<Self> {
        let t = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
        Some(DateTime(t + time::Duration::nanoseconds(i64::from(nanoseconds))))
    }

    /// Now.
    pub fn now() -> Self {
        DateTime(time::OffsetDateTime::now_utc())
    }

    /// Seconds since the Unix epoch and the nanoseconds within that second.
    pub fn to_unix(self) -> (i64, u32) {
        (self.0.unix_timestamp(), self.0.nanosecond())
    }
}

/// The MessagePack extension type of timestamps.
const TIMESTAMP_EXT: i8 = -1;

/// `(type, data)` of a MessagePack extension, as rmp-serde reads and writes it.
struct Ext<'a>(i8, &'a [u8]);

impl Serialize for Ext<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Data<'a>(&'a [u8]);
        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        let mut t = serializer.serialize_tuple(2)?;
        t.serialize_element(&self.0)?;
        t.serialize_element(&Data(self.1))?;
        t.end()
    }
}

/// Encodes a timestamp extension body (32, 64 or 96 bits, the smallest that fits).
fn timestamp_body(seconds: i64, nanos: u32) -> Vec<u8> {
    if nanos == 0 && (0..=i64::from(u32::MAX)).contains(&seconds) {
        (seconds as u32).to_be_bytes().to_vec()
    } else if (0..(1i64 << 34)).contains(&seconds) {
        ((u64::from(nanos) << 34) | seconds as u64).to_be_bytes().to_vec()
    } else {
        let mut out = nanos.to_be_bytes().to_vec();
        out.extend_from_slice(&seconds.to_be_bytes());
        out
    }
}

/// Decodes a timestamp extension body.
fn timestamp_from(body: &[u8]) -> Option<(i64, u32)> {
    match body.len() {
        4 => Some((i64::from(u32::from_be_bytes(body.try_into().ok()?)), 0)),
        8 => {
            let v = u64::from_be_bytes(body.try_into().ok()?);
            Some(((v & ((1 << 34) - 1)) as i64, (v >> 34) as u32))
        }
        12 => {
            let nanos = u32::from_be_bytes(body[..4].try_into().ok()?);
            let seconds = i64::from_be_bytes(body[4..].try_into().ok()?);
            Some((seconds, nanos))
        }
        _ => None,
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            let (seconds, nanos) = self.to_unix();
            let body = timestamp_body(seconds, nanos);
            return serializer.serialize_newtype_struct("_ExtStruct", &Ext(TIMESTAMP_EXT, &body));
        }
        let utc = self.0.to_offset(time::UtcOffset::UTC);
        let text = utc
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

struct ExtVisitor;

impl<'de> Visitor<'de> for ExtVisitor {
    type Value = DateTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack timestamp")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<DateTime, D::Error> {
        struct Body(Vec<u8>);
        impl<'de> Deserialize<'de> for Body {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
                d.deserialize_byte_buf(BinaryVisitor).map(|b| Body(b.0))
            }
        }
        let (kind, Body(body)) = <(i8, Body)>::deserialize(d)?;
        if kind != TIMESTAMP_EXT {
            return Err(de::Error::custom(format!(
                "expected the timestamp extension (-1), got {kind}"
            )));
        }
        let (seconds, nanos) = timestamp_from(&body).ok_or_else(|| de::Error::custom("invalid timestamp length"))?;
        DateTime::from_unix(seconds, nanos).ok_or_else(|| de::Error::custom("timestamp out of range"))
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DateTime, D::Error> {
        if !deserializer.is_human_readable() {
            return deserializer.deserialize_newtype_struct("_ExtStruct", ExtVisitor);
        }
        let text = String::deserialize(deserializer)?;
        time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map(DateTime)
            .map_err(de::Error::custom)
    }
}

#[cfg(all(test, feature = "msgpack"))]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_messagepack() {
        for (seconds, nanos, len) in [(946_684_800i64, 0u32, 6usize), (946_684_800, 5, 10), (-5, 7, 15)] {
            let t = DateTime::from_unix(seconds, nanos).unwrap();
            let bytes = rmp_serde::to_vec_named(&t).unwrap();
            assert_eq!(bytes.len(), len, "{bytes:02x?}");
            // fixext 4 / fixext 8 / ext 8 with type -1
            assert!(bytes.contains(&0xff));
            let back: DateTime = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(back, t);
        }
        assert_eq!(
            rmp_serde::to_vec_named(&DateTime::from_unix(1, 0).unwrap()).unwrap(),
            [0xd6, 0xff, 0, 0, 0, 1]
        );
    }

    #[test]
    fn binary_in_messagepack_is_bin() {
        let bytes = rmp_serde::to_vec_named(&Binary(vec![1, 2, 3])).unwrap();
        assert_eq!(bytes, [0xc4, 3, 1, 2, 3]);
        let back: Binary = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.0, vec![1, 2, 3]);
    }
}
