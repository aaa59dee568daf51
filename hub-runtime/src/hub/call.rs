//! One invocation on its way through the generated router: argument binding, and turning a
//! method's result (a value, an error, a stream) into messages.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::ErrorDetail;
use super::stream::{ClientStream, UploadItem};
use super::HubError;
use crate::connection::{ConnectionSender, Frame};
use crate::protocol::error_texts;
use crate::protocol::{HubProtocol, OutMessage, OutResult, RawValue, TransferFormat};

/// One invocation on its way through the generated router.
#[doc(hidden)]
pub struct Call {
    /// The target as the client sent it: error texts quote it, as the reference server's do.
    pub(crate) method: String,
    pub(crate) invocation_id: Option<String>,
    pub(crate) arguments: Vec<RawValue>,
    pub(crate) uploads: Vec<Option<mpsc::Receiver<UploadItem>>>,
    pub(crate) protocol: Arc<dyn HubProtocol>,
    pub(crate) sender: ConnectionSender,
    /// `HubOptions::detailed_errors`.
    pub(crate) error_detail: ErrorDetail,
    /// A streaming invocation's own token (CancelInvocation cancels it).
    pub(crate) cancel: Option<CancellationToken>,
    /// The method's declared name (a metrics label: unlike the target as sent, it takes few
    /// values).
    pub(crate) name: &'static str,
    /// The method returned its stream and the stream's items are being sent.
    pub(crate) pumping: bool,
    /// Set only when async filters wrap the call (see [`Filtered`]); `None` on the fast path.
    pub(crate) filtered: Option<Arc<Filtered>>,
}

/// What a call wrapped by filters shares with them: its arguments (which the filters read
/// while the method runs), the error the method failed with (before it is turned into text),
/// and, for a streaming method, the moment the method returned its stream.
pub(crate) struct Filtered {
    pub(crate) arguments: Vec<RawValue>,
    /// A streaming method returned its stream: its items are about to flow.
    pub(crate) stream_started: AtomicBool,
    /// Why the call failed, as an error (binding failures and method errors).
    pub(crate) error: Mutex<Option<HubError>>,
}

impl Filtered {
    /// The filters keep the arguments while the method runs: copied out of their frame.
    pub(crate) fn new(arguments: Vec<RawValue>) -> Self {
        Filtered {
            arguments: arguments.into_iter().map(RawValue::detach).collect(),
            stream_started: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// The error the call failed with, if it kept one.
    pub(crate) fn take_error(&self) -> Option<HubError> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn keep_error(&self, error: HubError) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }
}

/// What a call leaves when it is dropped while unwinding: what its panic's reply needs (see
/// [`super::panic`]).
pub(crate) struct Remains {
    method: String,
    invocation_id: Option<String>,
    protocol: Arc<dyn HubProtocol>,
    sender: ConnectionSender,
    error_detail: ErrorDetail,
    name: &'static str,
    pumping: bool,
}

impl Remains {
    /// The call again, able to send its reply.
    pub(crate) fn into_call(self) -> Call {
        Call {
            method: self.method,
            invocation_id: self.invocation_id,
            arguments: Vec::new(),
            uploads: Vec::new(),
            protocol: self.protocol,
            sender: self.sender,
            error_detail: self.error_detail,
            cancel: None,
            name: self.name,
            pumping: self.pumping,
            filtered: None,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // A panic in the method (or its stream) unwinds through the future that owns the call.
        if std::thread::panicking() {
            super::panic::remember(Remains {
                method: std::mem::take(&mut self.method),
                invocation_id: self.invocation_id.take(),
                protocol: self.protocol.clone(),
                sender: self.sender.clone(),
                error_detail: self.error_detail,
                name: self.name,
                pumping: self.pumping,
            });
        }
    }
}

/// What an invocation produced: a completion to send (nothing for a non-blocking
/// invocation), or, for a streaming method, the future that streams its items.
#[doc(hidden)]
pub struct Outcome {
    pub(crate) completion: Option<Bytes>,
    pub(crate) stream: Option<BoxFuture<'static, Outcome>>,
    /// The caller was (or, without an invocation id, would have been) sent an error.
    pub(crate) failed: bool,
}

impl Outcome {
    fn done(completion: Option<Bytes>) -> Self {
        Outcome {
            completion,
            stream: None,
            failed: false,
        }
    }

    /// An outcome whose stream (or, for a refused stream, its one Completion) `run` sends.
    pub(crate) fn stream_of(run: impl Future<Output = Outcome> + Send + 'static) -> Self {
        Outcome {
            completion: None,
            stream: Some(Box::pin(run)),
            failed: false,
        }
    }

    /// A streaming method's invocation: `run` binds, calls the method and streams its items;
    /// it runs beside the connection's other invocations without counting against their limit.
    pub fn streaming(run: impl Future<Output = Outcome> + Send + 'static) -> BoxFuture<'static, Outcome> {
        let run: BoxFuture<'static, Outcome> = Box::pin(run);
        Box::pin(async move {
            Outcome {
                completion: None,
                stream: Some(run),
                failed: false,
            }
        })
    }
}

impl Call {
    /// The invocation's arguments (held by the filters' view when filters wrap the call).
    #[inline]
    fn arguments(&self) -> &[RawValue] {
        match &self.filtered {
            Some(filtered) => &filtered.arguments,
            None => &self.arguments,
        }
    }

    /// A call that can send this one's reply (the same invocation id, target, protocol and
    /// connection), without its arguments: what the filters' result is sent through.
    pub(crate) fn replier(&self) -> Call {
        Call {
            method: self.method.clone(),
            invocation_id: self.invocation_id.clone(),
            arguments: Vec::new(),
            uploads: Vec::new(),
            protocol: self.protocol.clone(),
            sender: self.sender.clone(),
            error_detail: self.error_detail,
            cancel: self.cancel.clone(),
            name: self.name,
            pumping: false,
            filtered: None,
        }
    }

    pub(crate) fn invocation_id(&self) -> Option<&str> {
        self.invocation_id.as_deref()
    }

    pub(crate) fn protocol(&self) -> &Arc<dyn HubProtocol> {
        &self.protocol
    }

    pub(crate) fn sender(&self) -> &ConnectionSender {
        &self.sender
    }

    /// Decodes argument `index` into the parameter type, or produces the binding-failure
    /// completion.
    pub fn arg<T: crate::__private::HubArgument>(&self, index: usize) -> Result<T, Outcome> {
        let raw = self
            .arguments()
            .get(index)
            .ok_or_else(|| self.binding_failure("Error binding arguments."))?;
        raw.decode::<T>().map_err(|e| {
            tracing::debug!(method = %self.method, argument = index, error = %e, "argument binding failed");
            self.binding_failure(error_texts::ARGUMENT_TYPES)
        })
    }

    /// The arguments copied out of their frame, for a call that waits before it is bound.
    pub(crate) fn detach_arguments(&mut self) {
        self.arguments = std::mem::take(&mut self.arguments)
            .into_iter()
            .map(RawValue::detach)
            .collect();
    }

    /// Every argument is bound: lets go of their wire form before the method runs. A value read
    /// from a frame is a slice of it (and of the socket's read buffer), which a method that
    /// awaits for long would otherwise keep.
    pub fn arguments_bound(&mut self) {
        self.arguments = Vec::new();
    }

    /// Takes client-to-server stream `index` (bound from the invocation's `streamIds`).
    pub fn upload<T: crate::__private::HubArgument>(&mut self, index: usize) -> Result<ClientStream<T>, Outcome> {
        match self.uploads.get_mut(index).and_then(Option::take) {
            Some(items) => Ok(ClientStream::new(items)),
            None => Err(self.finish_error(HubError::for_client(
                "Client sent fewer streams than the method expects.",
            ))),
        }
    }

    /// The invocation's cancellation token (cancelled when the client cancels a stream, or
    /// the connection ends).
    pub fn cancellation(&self) -> CancellationToken {
        match &self.cancel {
            Some(token) => token.clone(),
            None => self.sender.invocation_token(),
        }
    }

    pub(crate) fn binding_failure(&self, detail: &str) -> Outcome {
        if let Some(filtered) = &self.filtered {
            filtered.keep_error(HubError::new(detail).with_kind("InvalidDataException"));
        }
        let base = error_texts::binding_failed(&self.method);
        let text = if self.error_detail == ErrorDetail::Shown {
            error_texts::with_detail(&base, "InvalidDataException", detail)
        } else {
            base
        };
        self.error_text(&text)
    }

    fn complete(&self, result: OutResult<'_>) -> Outcome {
        // Filters may read the result of an invocation that expects no reply: it is encoded
        // for them (and not sent).
        let id = match (self.invocation_id.as_deref(), &self.filtered) {
            (Some(id), _) => id,
            (None, Some(_)) => "",
            (None, None) => return Outcome::done(None),
        };
        match self.protocol.encode(&OutMessage::Completion {
            invocation_id: id,
            result,
        }) {
            Ok(bytes) => Outcome::done(Some(bytes)),
            Err(e) => {
                tracing::warn!(method = %self.method, error = %e, "could not encode a hub method's result");
                let error = HubError::new(e.0).with_kind("SerializationException");
                self.finish_error(error)
            }
        }
    }

    pub(crate) fn error_text(&self, text: &str) -> Outcome {
        // A filtered call's failure is counted once the filters decided what the caller gets.
        if self.filtered.is_none() {
            self.sender.metrics().invocation_error();
        }
        let mut outcome = self.complete(OutResult::Error(text));
        outcome.failed = true;
        outcome
    }

    /// The method returned nothing.
    pub fn finish_void(self) -> Outcome {
        self.complete(OutResult::Void)
    }

    /// The method returned a value.
    pub fn finish_value<T: crate::__private::HubReturn>(self, value: &T) -> Outcome {
        self.complete(OutResult::Value(value))
    }

    /// The method (or, once `pumping`, its stream) panicked: the caller gets the standard
    /// error, with the panic's text when detailed errors are on.
    pub(crate) fn panicked(&self, payload: &(dyn std::any::Any + Send)) -> Outcome {
        let base = if self.pumping {
            error_texts::STREAM_FAILED.to_string()
        } else {
            error_texts::invocation_failed(&self.method)
        };
        let text = if self.error_detail == ErrorDetail::Shown {
            format!("{base} {}", super::panic::message(payload))
        } else {
            base
        };
        self.error_text(&text)
    }

    /// The method failed.
    pub fn finish_error(&self, error: HubError) -> Outcome {
        tracing::debug!(method = %self.method, error = %error, "hub method failed");
        let base = error_texts::invocation_failed(&self.method);
        let outcome = self.error_text(&error.client_text(&base, self.error_detail));
        if let Some(filtered) = &self.filtered {
            filtered.keep_error(error);
        }
        outcome
    }

    fn frame(&self, bytes: Bytes) -> Frame {
        match self.protocol.transfer_format() {
            TransferFormat::Text => Frame::Text(bytes),
            TransferFormat::Binary => Frame::Binary(bytes),
        }
    }

    /// Streams the items of a streaming method, then completes. Each item waits for room in
    /// the connection's outbox (a stream never runs ahead of its client). A cancelled stream
    /// is dropped and nothing more is sent.
    pub async fn pump<S, T>(self, stream: S) -> Outcome
    where
        S: Stream<Item = T> + Send,
        T: crate::__private::HubReturn,
    {
        self.pump_results(stream.map(Ok::<T, HubError>)).await
    }

    /// Streams the items of a streaming method whose items are `Result`s: an error ends the
    /// stream with a Completion error.
    pub async fn pump_results<S, T, E>(mut self, stream: S) -> Outcome
    where
        S: Stream<Item = Result<T, E>> + Send,
        T: crate::__private::HubReturn,
        E: crate::__private::HubErrorLike,
    {
        self.pumping = true;
        if let Some(filtered) = &self.filtered {
            // The filters wrap the call that returned the stream, not its items: they see
            // their result before the first item is read.
            filtered.stream_started.store(true, Ordering::Release);
            tokio::task::yield_now().await;
        }
        // The filters are done with this call: its stream's failures are counted as usual.
        self.filtered = None;
        let Some(id) = self.invocation_id.clone() else {
            return Outcome::done(None);
        };
        let mut stream = std::pin::pin!(stream);
        let cancel = self.cancellation();
        loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Outcome::done(None),
                next = stream.next() => next,
            };
            let item = match next {
                None => return self.finish_void(),
                Some(Ok(item)) => item,
                Some(Err(e)) => {
                    let error: HubError = e.into();
                    tracing::debug!(method = %self.method, %error, "stream failed");
                    let text = error.client_text(error_texts::STREAM_FAILED, self.error_detail);
                    return self.error_text(&text);
                }
            };
            let bytes = match self.protocol.encode(&OutMessage::StreamItem {
                invocation_id: &id,
                item: &item,
            }) {
                Ok(bytes) => bytes,
                Err(e) => {
                    let error = HubError::new(e.0).with_kind("SerializationException");
                    let text = error.client_text(error_texts::STREAM_FAILED, self.error_detail);
                    return self.error_text(&text);
                }
            };
            let frame = self.frame(bytes);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Outcome::done(None),
                sent = self.sender.send_message(frame) => if sent.is_err() { return Outcome::done(None) },
            }
        }
    }
}

#[cfg(all(test, feature = "json"))]
pub(super) mod tests {
    use super::*;
    use crate::protocol::JsonProtocol;

    /// A frame with one invocation of `Wait("hi", 2)`, and a call for it whose arguments are
    /// slices of the frame, as the read loop makes them (needs a tokio runtime).
    pub(in crate::hub) fn call_from_frame() -> (bytes::Bytes, Call) {
        let frame = bytes::Bytes::from(b"{\"type\":1,\"target\":\"Wait\",\"arguments\":[\"hi\",2]}\x1e".to_vec());
        let mut parsed = Vec::new();
        JsonProtocol.parse_bytes_into(&frame, &mut parsed).unwrap();
        let Some(crate::protocol::HubMessage::Invocation(invocation)) = parsed.pop() else {
            panic!("an invocation")
        };
        let call = Call {
            method: invocation.target,
            invocation_id: None,
            arguments: invocation.arguments,
            uploads: Vec::new(),
            protocol: Arc::new(JsonProtocol),
            sender: super::super::hooks::tests::sender(),
            error_detail: ErrorDetail::Hidden,
            cancel: None,
            name: "Wait",
            pumping: false,
            filtered: None,
        };
        assert!(!frame.is_unique(), "the arguments are slices of the frame");
        (frame, call)
    }

    /// A method that awaits for long must not keep its frame (and the socket's read buffer)
    /// through the slices its arguments are.
    #[tokio::test]
    async fn bound_arguments_let_go_of_the_frame() {
        let (frame, mut call) = call_from_frame();
        assert_eq!(call.arg::<String>(0).ok(), Some("hi".to_string()));
        assert_eq!(call.arg::<i32>(1).ok(), Some(2));
        call.arguments_bound();
        assert!(frame.is_unique(), "bound arguments still hold the frame");
    }

    /// A call that waits, or that filters wrap, keeps copies of its arguments, not the frame.
    #[tokio::test]
    async fn waiting_and_filtered_arguments_are_copies() {
        let (frame, mut call) = call_from_frame();
        call.detach_arguments();
        assert!(frame.is_unique(), "detached arguments still hold the frame");
        assert_eq!(call.arg::<String>(0).ok(), Some("hi".to_string()));
        assert_eq!(call.arg::<i32>(1).ok(), Some(2));

        let (frame, mut call) = call_from_frame();
        let filtered = Filtered::new(std::mem::take(&mut call.arguments));
        assert!(frame.is_unique(), "the filters' arguments still hold the frame");
        assert_eq!(filtered.arguments[1].decode::<i32>().unwrap(), 2);
    }
}
