//! Value types that map the way the official SignalR clients expect.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Binary data: a base64 string in JSON, `bin` in MessagePack (what .NET's `byte[]` is).
///
/// ```
/// use hub_runtime::types::Binary;
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
/// use hub_runtime::types::DateTime;
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
        Some(DateTime(
            t + time::Duration::nanoseconds(i64::from(nanoseconds)),
        ))
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

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let utc = self.0.to_offset(time::UtcOffset::UTC);
        let text = utc
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map(DateTime)
            .map_err(de::Error::custom)
    }
}
