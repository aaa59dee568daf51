//! Long polling: each GET waits for queued frames (or the poll timeout) and returns them all;
//! the client sends with POST and ends with DELETE.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::StatusCode;
use tokio_util::sync::CancellationToken;
use warp::reply::Response;

use super::text;
use crate::connection::{ConnectionManager, ConnectionShared, Frame, Outgoing, RequestContext, TransportKind};
use crate::protocol::TransferFormat;

/// Most bytes one poll returns (more waits for the next poll).
const MAX_POLL_BYTES: usize = 1 << 20;

fn no_cache(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(http::header::PRAGMA, http::HeaderValue::from_static("no-cache"));
    headers.insert(
        http::header::EXPIRES,
        http::HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
}

/// 200 with a body (possibly empty) of the given format.
pub(crate) fn data(body: bytes::Bytes, format: TransferFormat) -> Response {
    let mut response = Response::new(body.into());
    let content_type = match format {
        TransferFormat::Binary => "application/octet-stream",
        TransferFormat::Text => "text/plain; charset=utf-8",
    };
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    no_cache(&mut response);
    response
}

/// 204: the connection is over (or this poll was displaced by a newer one).
fn over() -> Response {
    let mut response = text(StatusCode::NO_CONTENT, "");
    no_cache(&mut response);
    response
}

/// Marks the end of a poll when dropped: whether the poll answered or its request went away
/// mid-wait (the client vanished and the server dropped the request's future), the
/// connection no longer has a poll waiting, and the disconnect timeout starts.
struct PollEnd {
    shared: Arc<ConnectionShared>,
    number: u64,
}

impl Drop for PollEnd {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.poll.as_ref().is_some_and(|(n, _)| *n == self.number) {
            state.poll = None;
        }
        state.last_poll_end = Instant::now();
    }
}

/// One poll after the first.
pub(crate) async fn poll(shared: Arc<ConnectionShared>, request: RequestContext, timeout: Duration) -> Response {
    let token = CancellationToken::new();
    let number = {
        let mut state = shared.lock();
        state.polls += 1;
        let number = state.polls;
        if let Some((_, displaced)) = state.poll.replace((number, token.clone())) {
            displaced.cancel();
        }
        state.request = Arc::new(request.with_transport(TransportKind::LongPolling));
        number
    };
    let _end = PollEnd {
        shared: shared.clone(),
        number,
    };
    shared.touch_read();
    wait(&shared, &token, timeout).await
}

async fn wait(shared: &Arc<ConnectionShared>, token: &CancellationToken, timeout: Duration) -> Response {
    let mut slot = tokio::select! {
        slot = shared.poll_outbox.lock() => slot,
        _ = token.cancelled() => return over(),
    };
    let Some(outbox) = slot.as_mut() else {
        return over();
    };
    let first = tokio::select! {
        item = outbox.recv() => item,
        _ = token.cancelled() => return over(),
        _ = shared.abort.cancelled() => return match shared.goodbye() {
            Some(goodbye) => data(goodbye.data().clone(), format_of(&goodbye)),
            None => over(),
        },
        _ = tokio::time::sleep(timeout) => return data(bytes::Bytes::new(), TransferFormat::Text),
    };
    let mut body = BytesMut::new();
    // Binary as soon as one frame is.
    let mut format = TransferFormat::Text;
    let mut finished = false;
    let mut next = first;
    loop {
        match next {
            Some(Outgoing::Frame(frame, _)) => {
                if frame.is_binary() {
                    format = TransferFormat::Binary;
                }
                body.extend_from_slice(frame.data());
            }
            Some(Outgoing::Close) | None => {
                finished = true;
                break;
            }
        }
        if body.len() >= MAX_POLL_BYTES {
            break;
        }
        match outbox.try_recv() {
            Ok(item) => next = Some(item),
            Err(_) => break,
        }
    }
    if finished {
        *slot = None;
        shared.lock().finished = true;
    }
    shared.touch_write();
    if body.is_empty() {
        over()
    } else {
        data(body.freeze(), format)
    }
}

fn format_of(frame: &Frame) -> TransferFormat {
    if frame.is_binary() {
        TransferFormat::Binary
    } else {
        TransferFormat::Text
    }
}

/// DELETE: the client ends the connection, which is disposed of at once: the handler sees
/// the end of its input (and the connection's end, as a clean close by the client), a
/// waiting poll completes with 204, and the connection is forgotten, so it no longer counts.
pub(crate) fn delete(manager: &ConnectionManager, shared: &Arc<ConnectionShared>) -> Response {
    let mut state = shared.lock();
    state.inbox_tx = None;
    if let Some((_, poll)) = state.poll.take() {
        poll.cancel();
    }
    drop(state);
    shared
        .closed_by_client
        .store(true, std::sync::atomic::Ordering::Release);
    shared.end();
    manager.remove(&shared.token);
    let mut response = text(StatusCode::ACCEPTED, "");
    response.headers_mut().remove(http::header::CONTENT_TYPE);
    response
}
