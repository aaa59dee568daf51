//! # Streaming
//!
//! A stream sends many items for one call, as they become ready. Both directions work: the
//! server streams to a client, and a client streams to the server.
//!
//! ## Server to client
//!
//! A hub method that returns `impl Stream<Item = T>` is a streaming method. The client
//! subscribes to it (in JavaScript, `connection.stream("Count", 3).subscribe(...)`) and gets
//! each item as the stream yields it, then a completion when it ends.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! struct Counter;
//!
//! #[hub]
//! impl Counter {
//!     fn count(&self, to: u32) -> impl Stream<Item = u32> {
//!         futures_util::stream::iter(1..=to)
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! To refuse before streaming anything, return `Result<impl Stream<Item = T>, HubError>`: the
//! client gets the error instead of a stream.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! struct Counter;
//!
//! #[hub]
//! impl Counter {
//!     fn count(&self, to: u32) -> Result<impl Stream<Item = u32>, HubError> {
//!         if to > 1000 {
//!             return Err(HubError::for_client("at most 1000"));
//!         }
//!         Ok(futures_util::stream::iter(1..=to))
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Stopping a stream
//!
//! The server stops polling a stream when the client cancels it or disconnects. If the
//! stream's items come from work started elsewhere (a spawned task), take a
//! [`CancellationToken`](crate::CancellationToken) parameter and stop that work when it is
//! cancelled.
//!
//! ```
//! use std::time::Duration;
//!
//! use hub_runtime::prelude::*;
//!
//! struct Ticker;
//!
//! #[hub]
//! impl Ticker {
//!     fn ticks(&self, token: CancellationToken) -> impl Stream<Item = u64> {
//!         let (tx, rx) = tokio::sync::mpsc::channel(8);
//!         tokio::spawn(async move {
//!             let mut n = 0;
//!             loop {
//!                 tokio::select! {
//!                     _ = token.cancelled() => break,
//!                     _ = tokio::time::sleep(Duration::from_secs(1)) => {}
//!                 }
//!                 n += 1;
//!                 if tx.send(n).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!         futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|n| (n, rx)) })
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Client to server
//!
//! A parameter of type [`ClientStream<T>`](crate::ClientStream) receives items the client
//! streams up (in JavaScript, a `signalR.Subject` passed as an argument). Read it with
//! `next().await` until it returns `None`, or gather everything with `collect_all()`. Each item
//! is a `Result`: a client may end its stream with an error.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! struct Upload;
//!
//! #[hub]
//! impl Upload {
//!     async fn sum(&self, mut numbers: ClientStream<i64>) -> Result<i64, HubError> {
//!         let mut total = 0;
//!         while let Some(n) = numbers.next().await {
//!             total += n?;
//!         }
//!         Ok(total)
//!     }
//!
//!     async fn concat(&self, parts: ClientStream<String>) -> Result<String, HubError> {
//!         Ok(parts.collect_all().await?.concat())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Items wait in a small buffer (`HubOptions::stream_buffer_capacity`, 10 by default); when it
//! is full the server stops reading from that client until the method catches up.
