//! The wire shape of a resumable server-to-client stream (the interop contract's `Subscribe`,
//! and hub-runtime's `History::subscribe`): a [`Position`] to resume from, then a
//! [`RecoveryHeader`] and [`RecoveryMessage`]s, as [`RecoveryItem`]s.

use serde::{Deserialize, Serialize};

/// Where a message stands in a durable group's history: `{"Epoch": "…", "Offset": n}`.
///
/// An epoch names one unbroken history of the group (a new one starts when the server's
/// stored history is lost); offsets count the group's messages from 1 within an epoch,
/// without gaps.
///
/// ```
/// use hub_client::Position;
/// let position: Position = serde_json::from_str(r#"{"Epoch":"e1","Offset":3}"#).unwrap();
/// assert_eq!(position, Position::new("e1", 3));
/// assert_eq!(serde_json::to_string(&position).unwrap(), r#"{"Epoch":"e1","Offset":3}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Position {
    /// The history this position belongs to.
    pub epoch: String,
    /// The message's number within the epoch (0: before the first message).
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

/// The first item of a resumable stream, and the item the server sends when the group's
/// epoch changes: `{"Recovered": bool, "Epoch": "…", "Offset": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecoveryHeader {
    /// Whether every message after the position asked for follows (always, when none was
    /// asked for). False when the server's history no longer covers it: the missed messages
    /// are gone, and none of them follows.
    pub recovered: bool,
    /// The group's current epoch.
    pub epoch: String,
    /// The group's current offset (0: no message yet).
    pub offset: i64,
}

impl RecoveryHeader {
    /// The position the header names.
    pub fn position(&self) -> Position {
        Position::new(self.epoch.clone(), self.offset)
    }
}

/// A message of a resumable stream: `{"Offset": n, "Message": …}`, in the header's epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecoveryMessage<T> {
    /// Its offset in the current epoch.
    pub offset: i64,
    /// What was published.
    pub message: T,
}

/// One item of a resumable stream: a header or a message, told apart by their fields
/// (untagged on the wire).
///
/// ```
/// use hub_client::{RecoveryHeader, RecoveryItem, RecoveryMessage};
/// let header: RecoveryItem<String> =
///     serde_json::from_str(r#"{"Recovered":false,"Epoch":"e2","Offset":7}"#).unwrap();
/// assert_eq!(header, RecoveryItem::Header(RecoveryHeader { recovered: false, epoch: "e2".into(), offset: 7 }));
/// let message: RecoveryItem<String> = serde_json::from_str(r#"{"Offset":8,"Message":"hi"}"#).unwrap();
/// assert_eq!(message, RecoveryItem::Message(RecoveryMessage { offset: 8, message: "hi".into() }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecoveryItem<T> {
    /// Where the stream stands, and whether it recovered.
    Header(RecoveryHeader),
    /// A message.
    Message(RecoveryMessage<T>),
}
