//! The messages a protocol writes: [`OutMessage`], borrowing its values.

use serde::Serialize;

/// A value to encode: anything serializable, behind a trait object so protocols stay object-safe.
pub type Payload<'a> = &'a (dyn erased_serde::Serialize + Sync + 'a);

/// What an outgoing Completion carries.
#[derive(Clone, Copy)]
pub enum OutResult<'a> {
    /// No result (a method returning nothing).
    Void,
    /// A value.
    Value(Payload<'a>),
    /// An error text.
    Error(&'a str),
}

/// A hub message to encode. Values are borrowed, so a message is built without copying.
#[derive(Clone, Copy)]
pub enum OutMessage<'a> {
    /// Type 1; `arguments` must serialize as a sequence.
    Invocation {
        /// `None` for a non-blocking invocation.
        invocation_id: Option<&'a str>,
        /// The method name.
        target: &'a str,
        /// The arguments, serialized as one sequence (a tuple, a slice, [`NoArgs`]).
        arguments: Payload<'a>,
        /// Stream ids, written only when non-empty.
        stream_ids: &'a [String],
    },
    /// Type 2.
    StreamItem {
        /// The stream's invocation id.
        invocation_id: &'a str,
        /// The item.
        item: Payload<'a>,
    },
    /// Type 3.
    Completion {
        /// The invocation this completes.
        invocation_id: &'a str,
        /// Result, error or nothing.
        result: OutResult<'a>,
    },
    /// Type 4; `arguments` must serialize as a sequence.
    StreamInvocation {
        /// The invocation id.
        invocation_id: &'a str,
        /// The method name.
        target: &'a str,
        /// The arguments.
        arguments: Payload<'a>,
        /// Stream ids, written only when non-empty.
        stream_ids: &'a [String],
    },
    /// Type 5.
    CancelInvocation {
        /// The invocation to cancel.
        invocation_id: &'a str,
    },
    /// Type 6.
    Ping,
    /// Type 7.
    Close {
        /// The error, if any.
        error: Option<&'a str>,
        /// Whether the client may reconnect.
        allow_reconnect: bool,
    },
    /// Type 8.
    Ack {
        /// Highest sequence id processed.
        sequence_id: u64,
    },
    /// Type 9.
    Sequence {
        /// The next sequence id.
        sequence_id: u64,
    },
}

/// An empty argument list (serializes as an empty sequence, unlike `()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoArgs;

impl Serialize for NoArgs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        serializer.serialize_seq(Some(0))?.end()
    }
}
