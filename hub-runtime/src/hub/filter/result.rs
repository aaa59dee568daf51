//! [`InvocationResult`]: what an invocation produced, as filters see it and may replace it.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::hub::{Call, HubError, MethodKind, Outcome};
use crate::protocol::{CompletionResult, DecodeError, HubMessage, HubProtocol};

/// A value a filter put in place of the method's.
type Replacement = Box<dyn erased_serde::Serialize + Send + Sync>;

/// What an invocation produced: what [`Next::run`](super::Next::run) gives a filter, and what
/// the filter returns (the same, or another).
///
/// A hub method's own result stays as the dispatcher encoded it for the caller's protocol
/// (passing it on costs nothing); a filter reads it with [`decode`](InvocationResult::decode),
/// whatever the protocol. A filter replaces it with [`value`](InvocationResult::value),
/// [`void`](InvocationResult::void) or [`error`](InvocationResult::error).
///
/// ```
/// use hub_runtime::hub::filter::InvocationResult;
/// use hub_runtime::HubError;
///
/// let replaced = InvocationResult::value(vec![1, 2, 3]);
/// assert_eq!(replaced.decode::<Vec<i32>>().unwrap(), Some(vec![1, 2, 3]));
/// assert_eq!(replaced.json().unwrap(), Some(serde_json::json!([1, 2, 3])));
///
/// let refused = InvocationResult::error(HubError::for_client("no"));
/// assert!(refused.is_error());
/// assert_eq!(refused.as_error().unwrap().message(), "no");
/// assert_eq!(refused.decode::<i32>().unwrap(), None);
/// ```
pub struct InvocationResult {
    pub(crate) produced: Produced,
}

/// What an [`InvocationResult`] holds.
pub(crate) enum Produced {
    /// What the method (or, for a binding failure or a panic, the dispatcher) produced.
    Method(MethodResult),
    /// A filter's value.
    Value(Replacement),
    /// A filter's "no value".
    Void,
    /// A filter's error.
    Error(HubError),
}

/// A method's result, its reply already encoded.
pub(crate) struct MethodResult {
    pub(crate) outcome: Outcome,
    pub(crate) protocol: Arc<dyn HubProtocol>,
    /// Why it failed (always there when `outcome.failed`).
    pub(crate) error: Option<HubError>,
    pub(crate) counted: ErrorCount,
}

/// Whether a failed result was already counted (`hub_invocation_errors_total`): a method's
/// failure is counted only if it reaches the caller; a panic's, when it was caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCount {
    /// Counted when its reply was made.
    Counted,
    /// To count if it is sent.
    Pending,
}

impl InvocationResult {
    /// A value in place of the method's (for a streaming invocation: the stream's only item).
    pub fn value<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        InvocationResult {
            produced: Produced::Value(Box::new(value)),
        }
    }

    /// No value (a Completion without a result; for a streaming invocation: an empty stream).
    pub fn void() -> Self {
        InvocationResult {
            produced: Produced::Void,
        }
    }

    /// An error for the caller, as if the method had returned it (its text reaches the caller
    /// as a hub method's error does: always for [`HubError::for_client`], otherwise only with
    /// detailed errors).
    pub fn error(error: HubError) -> Self {
        InvocationResult {
            produced: Produced::Error(error),
        }
    }

    pub(crate) fn method(
        outcome: Outcome,
        protocol: Arc<dyn HubProtocol>,
        error: Option<HubError>,
        counted: ErrorCount,
    ) -> Self {
        InvocationResult {
            produced: Produced::Method(MethodResult {
                outcome,
                protocol,
                error,
                counted,
            }),
        }
    }

    /// Whether the caller is sent an error.
    pub fn is_error(&self) -> bool {
        match &self.produced {
            Produced::Method(m) => m.outcome.failed,
            Produced::Error(_) => true,
            Produced::Value(_) | Produced::Void => false,
        }
    }

    /// The error the caller is sent, if any. A method's own error is the one it returned;
    /// arguments that could not be bound give kind `InvalidDataException`, a panic kind
    /// `Panic` (with the panic's text).
    pub fn as_error(&self) -> Option<&HubError> {
        match &self.produced {
            Produced::Method(m) => m.error.as_ref(),
            Produced::Error(error) => Some(error),
            Produced::Value(_) | Produced::Void => None,
        }
    }

    /// Whether it is a stream whose items are about to flow (the method's own, unchanged).
    pub fn is_stream(&self) -> bool {
        matches!(&self.produced, Produced::Method(m) if m.outcome.stream.is_some())
    }

    /// The value, decoded into `T` (`None`: no value — nothing returned, an error, a stream).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Option<T>, DecodeError> {
        match &self.produced {
            Produced::Method(m) => m.decode(),
            Produced::Value(value) => {
                let json = serde_json::to_value(value).map_err(|e| DecodeError(e.to_string()))?;
                serde_json::from_value(json)
                    .map(Some)
                    .map_err(|e| DecodeError(e.to_string()))
            }
            Produced::Void | Produced::Error(_) => Ok(None),
        }
    }

    /// The value as JSON (MessagePack values too: binary becomes an array of numbers).
    pub fn json(&self) -> Result<Option<serde_json::Value>, DecodeError> {
        self.decode()
    }

    /// What to send: the method's reply unchanged, or `reply`'s for a filter's result. A
    /// streaming invocation's result always comes out as a stream to hand over.
    pub(crate) fn into_outcome(self, reply: Call, kind: MethodKind) -> Outcome {
        let streaming = kind == MethodKind::Stream;
        let expects_reply = reply.invocation_id().is_some();
        let mut outcome = match self.produced {
            Produced::Method(m) => {
                if m.outcome.failed && m.counted == ErrorCount::Pending {
                    reply.sender().metrics().invocation_error();
                }
                m.outcome
            }
            Produced::Error(error) => reply.finish_error(error),
            Produced::Void if streaming => return Outcome::stream_of(reply.pump(futures_util::stream::empty::<()>())),
            Produced::Void => reply.finish_void(),
            Produced::Value(value) if streaming => {
                return Outcome::stream_of(reply.pump(futures_util::stream::iter([value])));
            }
            Produced::Value(value) => reply.finish_value(&value),
        };
        if !expects_reply {
            // Encoded only for the filters to read.
            outcome.completion = None;
        }
        if streaming && outcome.stream.is_none() {
            return Outcome::stream_of(std::future::ready(outcome));
        }
        outcome
    }
}

impl MethodResult {
    fn decode<T: DeserializeOwned>(&self) -> Result<Option<T>, DecodeError> {
        let Some(bytes) = &self.outcome.completion else {
            return Ok(None);
        };
        if self.outcome.failed {
            return Ok(None);
        }
        let messages = self.protocol.parse(bytes).map_err(|e| DecodeError(e.to_string()))?;
        match messages.into_iter().next() {
            Some(HubMessage::Completion {
                result: CompletionResult::Value(raw),
                ..
            }) => raw.decode().map(Some),
            _ => Ok(None),
        }
    }
}

impl From<HubError> for InvocationResult {
    fn from(error: HubError) -> Self {
        InvocationResult::error(error)
    }
}

impl fmt::Debug for InvocationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.produced {
            Produced::Method(m) if m.outcome.stream.is_some() => f.write_str("InvocationResult(stream)"),
            Produced::Method(m) => match &m.error {
                Some(error) => write!(f, "InvocationResult(method error: {error})"),
                None => f.write_str("InvocationResult(method result)"),
            },
            Produced::Value(_) => f.write_str("InvocationResult(replaced value)"),
            Produced::Void => f.write_str("InvocationResult(void)"),
            Produced::Error(error) => write!(f, "InvocationResult(error: {error})"),
        }
    }
}
