//! Binding an invocation to its hub method, and the limits it is checked against first: the
//! method must exist, the caller be authorized, the invocation's kind and its counts of
//! arguments and streams match the method's, its ids be free, the connection's streams and
//! invocation rate within their limits. A refused invocation is answered with a Completion
//! error (when it expects a reply); the connection stays.

use super::error::ErrorDetail;
use super::route::Dispatch;
use super::scheduling::Scheduler;
use super::{Call, Hub, HubError, MethodDef, MethodKind, Outcome};
use crate::auth;
use crate::protocol::error_texts;
use crate::protocol::Invocation;

impl<H: Hub> Dispatch<'_, H> {
    /// Looks up and checks an invocation; failures are answered with a Completion error
    /// (when the invocation expects a reply) and yield `None`.
    pub(super) fn bind(&mut self, invocation: Invocation, kind: MethodKind) -> Option<(usize, Call)> {
        let Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
            ..
        } = invocation;
        let method = self.endpoint.find(&target);
        let def = method.map(|m| &H::__METHODS[m]);
        // Only a streaming invocation can be cancelled on its own.
        let cancel = (kind == MethodKind::Stream).then(|| self.sender.invocation_token());
        let mut call = Call {
            method: target,
            invocation_id,
            arguments,
            uploads: Vec::new(),
            protocol: self.protocol.clone(),
            sender: self.sender.clone(),
            error_detail: ErrorDetail::of(&self.endpoint.options),
            cancel: cancel.clone(),
            name: def.map_or("", |d| d.name),
            pumping: false,
            filtered: None,
        };
        let (Some(method), Some(def)) = (method, def) else {
            self.reply(Refusal::UnknownMethod.answer(&call));
            return None;
        };
        if let Some(refused) = self.refuse_unauthorized(def, &call) {
            self.reply(refused);
            return None;
        }
        let request = Request {
            kind,
            arguments: call.arguments.len(),
            invocation_id: call.invocation_id.as_deref(),
            stream_ids: &stream_ids,
        };
        let max_streams = self.endpoint.options.max_streams_per_connection;
        if let Err(refusal) = check(def, &request, &mut self.scheduler, max_streams) {
            self.reply(refusal.answer(&call));
            return None;
        }
        let capacity = self.endpoint.options.stream_buffer_capacity.max(1);
        for id in stream_ids {
            call.uploads.push(Some(self.scheduler.open_upload(id, capacity)));
        }
        if let (Some(id), Some(cancel)) = (&call.invocation_id, cancel) {
            self.scheduler.add_stream(id.clone(), cancel);
        }
        Some((method, call))
    }

    /// `#[hub(authorize ...)]`: checked before anything else about the call, as the reference
    /// server does; the refusal to send, if the caller falls short (the connection stays). A
    /// policy is user code: its panic fails this call like a panicking method.
    fn refuse_unauthorized(&self, def: &MethodDef, call: &Call) -> Option<Outcome> {
        let identity = self.cx.identity();
        let authorized = super::panic::catch(|| {
            auth::authorized(H::__AUTHORIZE, identity) && auth::authorized(def.authorize, identity)
        });
        match authorized {
            Ok(true) => None,
            Ok(false) => {
                tracing::debug!(method = %call.method, "invocation refused: user is unauthorized");
                let text = error_texts::unauthorized(&call.method);
                Some(call.error_text(&text))
            }
            Err(payload) => {
                self.report_panic(def.name, &*payload);
                Some(call.panicked(&*payload))
            }
        }
    }
}

/// What an invocation asks for, as far as the limits look at it.
pub(super) struct Request<'a> {
    /// An Invocation (`Plain`) or a StreamInvocation (`Stream`).
    pub(super) kind: MethodKind,
    /// How many arguments it sends.
    pub(super) arguments: usize,
    pub(super) invocation_id: Option<&'a str>,
    /// Its client-to-server streams.
    pub(super) stream_ids: &'a [String],
}

/// Why an invocation is refused before its method runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No hub method has the target's name.
    UnknownMethod,
    /// A StreamInvocation of a plain method, or an Invocation of a streaming one.
    KindMismatch {
        /// The method's kind.
        method: MethodKind,
    },
    ArgumentCount {
        given: usize,
        expected: usize,
    },
    StreamCount {
        given: usize,
        expected: usize,
    },
    /// A second stream under a running one's invocation id.
    InvocationIdInUse(String),
    /// A client stream id of a running upload, or one stream id twice.
    StreamIdInUse(String),
    /// The connection would have more streams open than it may.
    TooManyStreams {
        max: usize,
    },
    /// Past the invocation rate limit.
    TooFast,
}

/// How a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The text as the Completion's error.
    Error,
    /// A binding failure (the detail only with detailed errors).
    Binding,
    /// A `HubException` the client sees.
    Hub,
}

impl Refusal {
    /// The refusal's text (or, for a binding failure, its detail); `target` is the method's
    /// name as the client sent it.
    fn text(&self, target: &str) -> String {
        match self {
            Refusal::UnknownMethod => error_texts::unknown_method(target),
            Refusal::KindMismatch {
                method: MethodKind::Plain,
            } => error_texts::non_streaming_method_streamed(target),
            Refusal::KindMismatch {
                method: MethodKind::Stream,
            } => error_texts::streaming_method_invoked(target),
            Refusal::ArgumentCount { given, expected } => error_texts::argument_count(*given, *expected),
            Refusal::StreamCount { given, expected } => error_texts::stream_count(*given, *expected),
            Refusal::InvocationIdInUse(id) => error_texts::invocation_id_in_use(id),
            Refusal::StreamIdInUse(id) => format!("Stream ID '{id}' is already in use."),
            Refusal::TooManyStreams { max } => {
                format!("Too many streams: a connection may have at most {max} open at once.")
            }
            Refusal::TooFast => "Too many invocations: slow down.".to_string(),
        }
    }

    fn answer_kind(&self) -> Answer {
        match self {
            Refusal::UnknownMethod
            | Refusal::KindMismatch { .. }
            | Refusal::InvocationIdInUse(_)
            | Refusal::StreamIdInUse(_) => Answer::Error,
            Refusal::ArgumentCount { .. } => Answer::Binding,
            Refusal::StreamCount { .. } | Refusal::TooManyStreams { .. } | Refusal::TooFast => Answer::Hub,
        }
    }

    /// The Completion that answers `call`.
    fn answer(&self, call: &Call) -> Outcome {
        match self {
            Refusal::UnknownMethod => tracing::debug!(method = %call.method, "invocation of an unknown hub method"),
            Refusal::InvocationIdInUse(id) => tracing::debug!(invocation = %id, "refusing a stream under an id in use"),
            Refusal::StreamIdInUse(id) => tracing::debug!(stream = %id, "refusing an upload under an id in use"),
            _ => {}
        }
        let text = self.text(&call.method);
        match self.answer_kind() {
            Answer::Error => call.error_text(&text),
            Answer::Binding => call.binding_failure(&text),
            Answer::Hub => call.finish_error(HubError::for_client(text)),
        }
    }
}

/// Checks an invocation of `def` against the limits, in the reference server's order (the
/// rate limit last: only an invocation that runs takes from it).
pub(super) fn check(
    def: &MethodDef,
    request: &Request<'_>,
    scheduler: &mut Scheduler,
    max_streams: usize,
) -> Result<(), Refusal> {
    if request.kind != def.kind {
        return Err(Refusal::KindMismatch { method: def.kind });
    }
    if request.arguments != def.arguments {
        return Err(Refusal::ArgumentCount {
            given: request.arguments,
            expected: def.arguments,
        });
    }
    if request.stream_ids.len() != def.streams {
        return Err(Refusal::StreamCount {
            given: request.stream_ids.len(),
            expected: def.streams,
        });
    }
    check_ids_free(request, scheduler)?;
    let opening = request.stream_ids.len() + usize::from(request.kind == MethodKind::Stream);
    if opening > 0 {
        // Uploads whose method ended without reading them to the end (it failed, or a filter
        // refused the call) count no more.
        scheduler.forget_closed_uploads();
    }
    if opening > 0 && scheduler.open_streams() + opening > max_streams {
        return Err(Refusal::TooManyStreams { max: max_streams });
    }
    if !scheduler.within_rate() {
        return Err(Refusal::TooFast);
    }
    Ok(())
}

/// Refuses an invocation that reuses an id in use: a running stream's invocation id, or a
/// running upload's stream id (or one stream id twice).
fn check_ids_free(request: &Request<'_>, scheduler: &Scheduler) -> Result<(), Refusal> {
    if let (MethodKind::Stream, Some(id)) = (request.kind, request.invocation_id) {
        // A second stream under a running one's id would be past the stream limit, and
        // the first could no longer be cancelled.
        if scheduler.stream_in_use(id) {
            return Err(Refusal::InvocationIdInUse(id.to_string()));
        }
    }
    // A client stream id names one upload. Taking over a running upload's id (one whose
    // method still reads it) would end that upload early, as if its client had completed
    // it, and its method would compute from part of its data: refused (the reference
    // server replaces it silently).
    let stream_ids = request.stream_ids;
    let in_use = stream_ids
        .iter()
        .enumerate()
        .find(|&(i, id)| scheduler.upload_running(id) || stream_ids[..i].contains(id));
    match in_use {
        Some((_, id)) => Err(Refusal::StreamIdInUse(id.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "binding_tests.rs"]
mod tests;
