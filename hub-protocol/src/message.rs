//! The messages a protocol reads: [`HubMessage`] and its parts.

use std::collections::BTreeMap;

use crate::RawValue;

/// Message headers (types 1–5 may carry them). Unknown headers are kept and ignored.
pub type Headers = BTreeMap<String, String>;

/// An Invocation (type 1) or StreamInvocation (type 4) as received.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invocation {
    /// `None` for a non-blocking invocation (no reply expected).
    pub invocation_id: Option<String>,
    /// The method name.
    pub target: String,
    /// Positional arguments, undecoded.
    pub arguments: Vec<RawValue>,
    /// Ids of client-to-server streams bound to stream parameters.
    pub stream_ids: Vec<String>,
    /// Message headers.
    pub headers: Headers,
}

/// What a Completion carries.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionResult {
    /// The method returned nothing.
    Void,
    /// The method returned a value (possibly `null`).
    Value(RawValue),
    /// The method failed with this text.
    Error(String),
}

/// A hub message as received and decoded by a [`HubProtocol`](crate::HubProtocol).
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    /// Type 1.
    Invocation(Invocation),
    /// Type 2.
    StreamItem {
        /// The invocation (or client stream) this item belongs to.
        invocation_id: String,
        /// The item.
        item: RawValue,
        /// Message headers.
        headers: Headers,
    },
    /// Type 3.
    Completion {
        /// The invocation this completes.
        invocation_id: String,
        /// Result, error or nothing.
        result: CompletionResult,
        /// Message headers.
        headers: Headers,
    },
    /// Type 4 (its `invocation_id` is always set).
    StreamInvocation(Invocation),
    /// Type 5.
    CancelInvocation {
        /// The stream invocation to cancel.
        invocation_id: String,
        /// Message headers.
        headers: Headers,
    },
    /// Type 6.
    Ping,
    /// Type 7.
    Close {
        /// Why the peer closes, if it was an error.
        error: Option<String>,
        /// Whether a client may reconnect.
        allow_reconnect: bool,
    },
    /// Type 8.
    Ack {
        /// Highest sequence id processed.
        sequence_id: u64,
    },
    /// Type 9.
    Sequence {
        /// Sequence id of the next message.
        sequence_id: u64,
    },
}
