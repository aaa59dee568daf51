//! Routing a connection's messages: invocations are bound and started (their filters run,
//! their first poll answered at once when they finish at once), client stream items reach
//! their streams, Completions their waiting calls, CancelInvocations their streams.

use std::sync::Arc;

use bytes::Bytes;

use super::call::Filtered;
use super::close::frame_for;
use super::endpoint::HubEndpoint;
use super::filter::{InvocationContext, InvocationInfo, Next};
use super::panic;
use super::read_loop::End;
use super::scheduling::{Finished, Limit, Running, Scheduler, StreamHandover};
use super::stream::UploadItem;
use super::{Call, Hub, HubContext, MethodKind, Outcome};
use crate::clients::lifetime::LocalConnection;
use crate::connection::{ConnectionSender, Frame};
use crate::protocol::{CompletionResult, HubMessage, HubProtocol, Invocation};

/// Per-connection dispatch state.
pub(super) struct Dispatch<'a, H: Hub> {
    pub(super) endpoint: &'a Arc<HubEndpoint<H>>,
    pub(super) cx: &'a Arc<HubContext<H>>,
    pub(super) local: &'a Arc<LocalConnection>,
    pub(super) protocol: &'a Arc<dyn HubProtocol>,
    pub(super) sender: ConnectionSender,
    /// What runs beside the read loop, and what waits.
    pub(super) scheduler: Scheduler,
}

impl<'a, H: Hub> Dispatch<'a, H> {
    pub(super) fn new(
        endpoint: &'a Arc<HubEndpoint<H>>,
        cx: &'a Arc<HubContext<H>>,
        local: &'a Arc<LocalConnection>,
        protocol: &'a Arc<dyn HubProtocol>,
    ) -> Self {
        Dispatch {
            endpoint,
            cx,
            local,
            protocol,
            sender: cx.sender().clone(),
            scheduler: Scheduler::new(&endpoint.options),
        }
    }

    fn frame(&self, bytes: Bytes) -> Frame {
        frame_for(self.protocol.transfer_format(), bytes)
    }

    /// Sends an outcome's Completion, if it has one (and the outbox room for it).
    pub(super) fn reply(&self, outcome: Outcome) {
        if let Some(bytes) = outcome.completion {
            let _ = self.sender.try_send_message(self.frame(bytes));
        }
    }

    /// Handles one message; `Some` ends the connection.
    pub(super) fn handle(&mut self, message: HubMessage) -> Option<End> {
        match message {
            HubMessage::Invocation(inv) => self.invoke(inv, MethodKind::Plain),
            HubMessage::StreamInvocation(inv) => self.invoke(inv, MethodKind::Stream),
            HubMessage::StreamItem {
                invocation_id, item, ..
            } => {
                // The item may wait in its stream's buffer: copied out of its frame.
                self.scheduler.upload(invocation_id, UploadItem::Item(item.detach()));
            }
            HubMessage::Completion {
                invocation_id, result, ..
            } => {
                if self.scheduler.has_upload(&invocation_id) {
                    match result {
                        CompletionResult::Error(error) => {
                            self.scheduler.upload(invocation_id, UploadItem::Error(error));
                        }
                        _ => {
                            // The client completed its stream.
                            self.scheduler.end_upload(&invocation_id);
                        }
                    }
                } else {
                    self.local.complete(&invocation_id, result);
                }
            }
            HubMessage::CancelInvocation { invocation_id, .. } => {
                self.scheduler.cancel_stream(&invocation_id);
            }
            HubMessage::Close { error, .. } => {
                if let Some(error) = error {
                    tracing::debug!(connection = self.cx.connection_id(), %error, "client closed with an error");
                }
                return Some(End::ClientGone);
            }
            HubMessage::Ping | HubMessage::Ack { .. } | HubMessage::Sequence { .. } => {}
        }
        None
    }

    /// An Invocation (`Plain`) or StreamInvocation (`Stream`): bound, then started or queued.
    fn invoke(&mut self, invocation: Invocation, kind: MethodKind) {
        let Some((method, call)) = self.bind(invocation, kind) else {
            return;
        };
        let limit = limit_of(H::__METHODS[method].kind, &call);
        if limit == Limit::Uncounted || self.scheduler.has_room() {
            self.start(method, call);
        } else {
            self.scheduler.wait(method, call);
        }
    }

    /// Something running beside the read loop finished.
    pub(super) fn finished(&mut self, finished: Finished) {
        match finished {
            Finished::Counted(handed_over) => {
                if let Some(handover) = handed_over {
                    self.stream_started(handover);
                }
                self.start_waiting();
            }
            Finished::Uncounted(handed_over) => {
                if let Some(handover) = handed_over {
                    self.stream_started(handover);
                }
            }
            Finished::Stream(finished) => {
                if let Some(id) = finished {
                    self.scheduler.forget_stream(&id);
                }
            }
        }
    }

    fn start_waiting(&mut self) {
        while let Some((method, call)) = self.scheduler.next_waiting() {
            self.start(method, call);
        }
    }

    /// Logs and counts a panic in user code run for `method` (an authorization policy).
    pub(super) fn report_panic(&self, method: &'static str, payload: &(dyn std::any::Any + Send)) {
        let site = panic::Site {
            hub: std::any::type_name::<H>(),
            method,
            sender: &self.sender,
        };
        panic::report(&site, payload);
    }

    /// A streaming method's items flow beside the other invocations.
    fn stream_started(&mut self, handover: StreamHandover) {
        let StreamHandover { stream_id, stream } = handover;
        let sender = self.sender.clone();
        let format = self.protocol.transfer_format();
        self.scheduler.push_stream(Box::pin(async move {
            let outcome = match panic::catch_future(stream).await {
                Ok(outcome) => outcome,
                Err(payload) => panic::recover(std::any::type_name::<H>(), &sender, payload),
            };
            if let Some(bytes) = outcome.completion {
                let _ = sender.send_message(frame_for(format, bytes)).await;
            }
            stream_id
        }));
    }

    fn start(&mut self, method: usize, call: Call) {
        let limit = limit_of(H::__METHODS[method].kind, &call);
        // Only a streaming method's outcome names its stream.
        let stream_id = if H::__METHODS[method].kind == MethodKind::Stream {
            call.invocation_id.clone()
        } else {
            None
        };
        if !self.endpoint.filters.is_empty() {
            let running = self.filtered(method, call, stream_id);
            self.scheduler.push(running, limit);
            return;
        }
        let mut future = self.endpoint.hub.clone().__invoke(self.cx.clone(), method, call);
        let format = self.protocol.transfer_format();
        let hub = std::any::type_name::<H>();
        // Most methods finish without waiting: poll once here (a spurious poll is harmless to a
        // future that is not ready; the set polls it again with the task's waker) and answer at
        // once, without a trip through the set.
        let mut context = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        let polled = match panic::catch(|| future.as_mut().poll(&mut context)) {
            Ok(polled) => polled,
            Err(payload) => std::task::Poll::Ready(panic::recover(hub, &self.sender, payload)),
        };
        let running: Running = match polled {
            std::task::Poll::Ready(outcome) => {
                if let Some(stream) = outcome.stream {
                    self.stream_started(StreamHandover { stream_id, stream });
                    return;
                }
                let Some(bytes) = outcome.completion else { return };
                let Err(frame) = self.sender.try_send_message_or_return(frame_for(format, bytes)) else {
                    return;
                };
                // The outbox is full: wait for room like any other reply.
                let sender = self.sender.clone();
                Box::pin(async move {
                    let _ = sender.send_message(frame).await;
                    None
                })
            }
            std::task::Poll::Pending => {
                // Cloned only here and for a full outbox: a call answered at once pays nothing.
                let sender = self.sender.clone();
                Box::pin(async move {
                    let outcome = match panic::catch_future(future).await {
                        Ok(outcome) => outcome,
                        Err(payload) => panic::recover(hub, &sender, payload),
                    };
                    if let Some(stream) = outcome.stream {
                        return Some(StreamHandover { stream_id, stream });
                    }
                    if let Some(bytes) = outcome.completion {
                        let _ = sender.send_message(frame_for(format, bytes)).await;
                    }
                    None
                })
            }
        };
        self.scheduler.push(running, limit);
    }

    /// A call the endpoint's filters wrap (see [`super::filter`]): the pipeline runs beside
    /// the read loop, and its result is sent (a streaming invocation's, always as a stream to
    /// hand over, so that its id is freed when it ends).
    fn filtered(&self, method: usize, mut call: Call, stream_id: Option<String>) -> Running {
        let def = &H::__METHODS[method];
        let shared = Arc::new(Filtered::new(std::mem::take(&mut call.arguments)));
        call.filtered = Some(shared.clone());
        let reply = call.replier();
        let future = self.endpoint.hub.clone().__invoke(self.cx.clone(), method, call);
        let info = InvocationInfo {
            hub: std::any::type_name::<H>(),
            method: def.name,
            connection_id: self.local.id.clone(),
            user_id: self.local.user_id.clone(),
            streaming: def.kind == MethodKind::Stream,
        };
        let filters = self.endpoint.filters.clone();
        let cx = self.cx.clone();
        let sender = self.sender.clone();
        let format = self.protocol.transfer_format();
        Box::pin(async move {
            let kind = if info.streaming {
                MethodKind::Stream
            } else {
                MethodKind::Plain
            };
            let result = {
                let invocation = InvocationContext::new(info, &shared, cx.identity(), cx.items(), &reply);
                Next::new(&filters.0, &invocation, future).run().await
            };
            let outcome = result.into_outcome(reply, kind);
            if let Some(stream) = outcome.stream {
                return Some(StreamHandover { stream_id, stream });
            }
            if let Some(bytes) = outcome.completion {
                let _ = sender.send_message(frame_for(format, bytes)).await;
            }
            None
        })
    }
}

/// Whether an invocation counts against the parallel limit: as the reference server,
/// invocations that stream (either way) do not.
#[inline]
fn limit_of(kind: MethodKind, call: &Call) -> Limit {
    if call.uploads.is_empty() && kind == MethodKind::Plain {
        Limit::Counted
    } else {
        Limit::Uncounted
    }
}
