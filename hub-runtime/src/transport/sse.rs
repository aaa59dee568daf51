//! Server-Sent Events: server-to-client frames as `data:` events on one long response; the
//! client sends with POST. Text only.

use std::convert::Infallible;
use std::sync::Arc;

use warp::reply::Response;
use warp::Reply;

use crate::connection::{queue, ConnectionShared, Frame, Outgoing};

/// Ends the client-to-server direction when the response goes away (the client closed its
/// EventSource, or the connection ended).
struct Guard(Arc<ConnectionShared>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.end_input();
    }
}

struct State {
    outbox: queue::Receiver<Outgoing>,
    guard: Guard,
}

/// The event-stream response carrying the connection's outbox.
pub(crate) fn response(shared: Arc<ConnectionShared>, outbox: queue::Receiver<Outgoing>) -> Response {
    let abort = shared.abort.clone();
    let state = State {
        outbox,
        guard: Guard(shared),
    };
    let events = futures_util::stream::unfold(state, move |mut state| {
        let abort = abort.clone();
        async move {
            let frame = tokio::select! {
                item = state.outbox.recv() => match item {
                    Some(Outgoing::Frame(frame, _)) => frame,
                    Some(Outgoing::Close) | None => return None,
                },
                _ = abort.cancelled() => match state.guard.0.goodbye() {
                    Some(goodbye) => goodbye,
                    None => return None,
                },
            };
            state.guard.0.touch_write();
            let text = match &frame {
                Frame::Text(bytes) | Frame::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            };
            Some((Ok::<_, Infallible>(warp::sse::Event::default().data(text)), state))
        }
    });
    warp::sse::reply(events).into_response()
}
