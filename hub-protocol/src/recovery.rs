//! The wire shape of resuming a durable group's messages, shared by servers and clients: a
//! [`Position`] in the group's history, and the [`RecoveryHeader`] a resumable
//! server-to-client stream starts with (and sends again when the group's epoch changes).

use serde::{Deserialize, Serialize};

/// Where a message stands in a durable group's history: `{"Epoch": "…", "Offset": n}`.
///
/// ```
/// use hub_protocol::recovery::Position;
/// let position: Position = serde_json::from_str(r#"{"Epoch":"e1","Offset":3}"#).unwrap();
/// assert_eq!(position, Position::new("e1", 3));
/// assert_eq!(serde_json::to_string(&position).unwrap(), r#"{"Epoch":"e1","Offset":3}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts-rs", derive(ts_rs::TS))]
#[serde(rename_all = "PascalCase")]
pub struct Position {
    /// Names one unbroken history of the group; a new one starts when the stored history is lost.
    pub epoch: String,
    /// Counts the group's messages from 1 within the epoch (0: none yet, or before the first).
    /// A client may send a negative one; it is never recovered.
    pub offset: i64,
}

impl Position {
    /// A position.
    pub fn new(epoch: impl Into<String>, offset: i64) -> Self {
        Position {
            epoch: epoch.into(),
            offset,
        }
    }
}

/// The first item of a resumable stream, and the item sent when the group's epoch changes:
/// `{"Recovered": bool, "Epoch": "…", "Offset": n}`.
///
/// ```
/// use hub_protocol::recovery::{Position, RecoveryHeader};
/// let header: RecoveryHeader = serde_json::from_str(r#"{"Recovered":false,"Epoch":"e2","Offset":7}"#).unwrap();
/// assert!(!header.recovered);
/// assert_eq!(header.position(), Position::new("e2", 7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts-rs", derive(ts_rs::TS))]
#[serde(rename_all = "PascalCase")]
pub struct RecoveryHeader {
    /// Whether every message after the position asked for follows (always, when none was
    /// asked for). False when history no longer covers it: the missed messages are gone, and
    /// none of them follows.
    pub recovered: bool,
    /// The group's current epoch.
    pub epoch: String,
    /// The group's current offset (0: no message yet). The messages that follow have greater
    /// offsets, except the recovered ones.
    pub offset: i64,
}

impl RecoveryHeader {
    /// The position the header names.
    pub fn position(&self) -> Position {
        Position::new(self.epoch.clone(), self.offset)
    }
}
