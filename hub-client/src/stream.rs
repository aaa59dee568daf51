//! Streams: [`HubStream`] (server to client; dropping it cancels) and [`Upload`] (client to
//! server, from any `Stream`).

use std::fmt::Display;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use hub_protocol::{OutMessage, OutResult, RawValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::pending::Calls;
use crate::sender::Sender;

/// The items of a server-to-client stream, decoded as `T`.
///
/// It ends when the server completes the stream; a server error is its last item
/// ([`Error::Hub`]). Dropping it before the end sends a CancelInvocation, so the server
/// stops the stream.
pub struct HubStream<T> {
    state: State,
    _items: PhantomData<fn() -> T>,
}

enum State {
    Failed(Option<Error>),
    Active {
        id: String,
        items: mpsc::UnboundedReceiver<Result<RawValue>>,
        sender: Sender,
        calls: Arc<Calls>,
        done: bool,
    },
}

impl<T> HubStream<T> {
    pub(crate) fn failed(error: Error) -> Self {
        HubStream {
            state: State::Failed(Some(error)),
            _items: PhantomData,
        }
    }

    pub(crate) fn active(
        id: String,
        items: mpsc::UnboundedReceiver<Result<RawValue>>,
        sender: Sender,
        calls: Arc<Calls>,
    ) -> Self {
        HubStream {
            state: State::Active {
                id,
                items,
                sender,
                calls,
                done: false,
            },
            _items: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Stream for HubStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        match &mut self.get_mut().state {
            State::Failed(error) => Poll::Ready(error.take().map(Err)),
            State::Active { items, done, .. } => {
                if *done {
                    return Poll::Ready(None);
                }
                match items.poll_recv(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => {
                        *done = true;
                        Poll::Ready(None)
                    }
                    Poll::Ready(Some(Ok(raw))) => {
                        Poll::Ready(Some(raw.decode().map_err(|e| Error::Decode(e.to_string()))))
                    }
                    Poll::Ready(Some(Err(error))) => {
                        *done = true;
                        Poll::Ready(Some(Err(error)))
                    }
                }
            }
        }
    }
}

impl<T> Drop for HubStream<T> {
    fn drop(&mut self) {
        if let State::Active {
            id,
            sender,
            calls,
            done: false,
            ..
        } = &self.state
        {
            if calls.remove(id).is_some() {
                let _ = sender.send(&OutMessage::CancelInvocation { invocation_id: id });
            }
        }
    }
}

type Item = std::result::Result<Box<dyn erased_serde::Serialize + Send + Sync>, String>;

/// A client-to-server stream: a hub method's stream parameter, fed from any `Stream`.
///
/// Each item is sent as a StreamItem as soon as the stream yields it; the end of the stream
/// sends the Completion that ends the server's reader ([`Upload::fallible`]: an `Err` item
/// ends it with that error text instead).
///
/// ```no_run
/// # async fn run(connection: hub_client::HubConnection) -> Result<(), hub_client::Error> {
/// use hub_client::Upload;
/// let words = futures_util::stream::iter(["a", "b", "c"]);
/// let joined: String = connection.invoke_with_uploads("StreamingConcat", (), [Upload::new(words)]).await?;
/// # Ok(()) }
/// ```
pub struct Upload {
    items: BoxStream<'static, Item>,
}

impl Upload {
    /// Uploads every item of `stream`, then completes.
    pub fn new<S, T>(stream: S) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
    {
        Upload {
            items: stream.map(|item| Ok(Box::new(item) as _)).boxed(),
        }
    }

    /// Uploads the `Ok` items of `stream`; the first `Err` ends the upload with its text as
    /// the Completion's error (the server's reader fails with it).
    pub fn fallible<S, T, E>(stream: S) -> Self
    where
        S: Stream<Item = std::result::Result<T, E>> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
        E: Display,
    {
        Upload {
            items: stream
                .map(|item| item.map(|value| Box::new(value) as _).map_err(|e| e.to_string()))
                .boxed(),
        }
    }

    /// Sends the items under `stream_id` until the stream ends or the connection does.
    pub(crate) async fn run(mut self, stream_id: String, sender: Sender) {
        loop {
            let item = tokio::select! {
                item = self.items.next() => item,
                () = sender.queue.closed() => return,
            };
            let message = match &item {
                Some(Ok(value)) => OutMessage::StreamItem {
                    invocation_id: &stream_id,
                    item: &**value,
                },
                Some(Err(text)) => OutMessage::Completion {
                    invocation_id: &stream_id,
                    result: OutResult::Error(text),
                },
                None => OutMessage::Completion {
                    invocation_id: &stream_id,
                    result: OutResult::Void,
                },
            };
            match sender.send(&message) {
                Ok(sent) if matches!(item, Some(Ok(_))) => {
                    // Stateful reconnect: the next item waits while the buffer is full.
                    if sent.released().await.is_err() {
                        return;
                    }
                }
                Ok(_) => return,
                Err(Error::Encode(text)) => {
                    let text = format!("an upload item could not be encoded: {text}");
                    let error = OutMessage::Completion {
                        invocation_id: &stream_id,
                        result: OutResult::Error(&text),
                    };
                    let _ = sender.send(&error);
                    return;
                }
                Err(_) => return,
            }
        }
    }
}
