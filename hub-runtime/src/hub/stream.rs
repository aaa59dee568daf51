//! Streams in both directions: what a streaming hub method returns, and what a hub method
//! receives from a client-to-server stream.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::HubError;
use crate::protocol::RawValue;

/// What a client sends on one of its streams.
#[derive(Debug)]
pub(crate) enum UploadItem {
    Item(RawValue),
    Error(String),
}

/// A stream of items the client sends to a hub method (a parameter of this type is bound to
/// one of the invocation's `streamIds`, in order, and is not counted among the arguments).
///
/// The client's Completion ends it; a Completion with an error yields that error (as a
/// [`HubError::for_client`], so the caller sees `... HubException: <msg>`).
///
/// ```
/// # use hub_runtime::prelude::*;
/// # struct Files;
/// # #[hub]
/// # impl Files {
/// async fn upload(&self, lines: ClientStream<String>) -> Result<usize, HubError> {
///     let mut lines = lines;
///     let mut count = 0;
///     while let Some(line) = lines.next().await {
///         line?;
///         count += 1;
///     }
///     Ok(count)
/// }
/// # }
/// ```
pub struct ClientStream<T> {
    items: mpsc::Receiver<UploadItem>,
    item: PhantomData<fn() -> T>,
}

impl<T> ClientStream<T> {
    pub(crate) fn new(items: mpsc::Receiver<UploadItem>) -> Self {
        ClientStream {
            items,
            item: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> ClientStream<T> {
    /// The next item; `None` once the client completed the stream.
    pub async fn next(&mut self) -> Option<Result<T, HubError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Every remaining item, or the first error.
    pub async fn collect_all(mut self) -> Result<Vec<T>, HubError> {
        let mut out = Vec::new();
        while let Some(item) = self.next().await {
            out.push(item?);
        }
        Ok(out)
    }
}

impl<T: DeserializeOwned> Stream for ClientStream<T> {
    type Item = Result<T, HubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.items.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(UploadItem::Item(raw))) => Poll::Ready(Some(
                raw.decode::<T>()
                    .map_err(|e| HubError::new(e.0).with_kind("InvalidDataException")),
            )),
            Poll::Ready(Some(UploadItem::Error(message))) => {
                self.items.close();
                Poll::Ready(Some(Err(HubError::for_client(message))))
            }
        }
    }
}

impl<T> std::fmt::Debug for ClientStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream").finish_non_exhaustive()
    }
}
