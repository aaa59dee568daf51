//! The wire shape of a resumable server-to-client stream (the interop contract's `Subscribe`,
//! and hub-runtime's `History::subscribe`): a [`Position`] to resume from, then a
//! [`RecoveryHeader`] and [`RecoveryMessage`]s, as [`RecoveryItem`]s.

use serde::{Deserialize, Serialize};

pub use hub_protocol::recovery::{Position, RecoveryHeader};

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
