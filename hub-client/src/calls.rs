//! Calls to the hub: [`HubConnection::invoke`], [`HubConnection::send`],
//! [`HubConnection::stream`], and their forms with uploads.

use hub_protocol::{CompletionResult, OutMessage};
use serde::de::{DeserializeOwned, IntoDeserializer};
use tokio::sync::{mpsc, oneshot};

use crate::args::Args;
use crate::connection::HubConnection;
use crate::error::{Error, Result};
use crate::pending::Pending;
use crate::sender::{Sender, Sent};
use crate::stream::{HubStream, Upload};

/// Which message starts a call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Invocation with an id.
    Invoke,
    /// Invocation without an id.
    Send,
    /// StreamInvocation.
    Stream,
}

impl HubConnection {
    /// Invokes `method` with `args` and waits for its result, decoded as `R` (`()` for a
    /// method that returns nothing). The server's error arrives as [`Error::Hub`] with its
    /// text.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), hub_client::Error> {
    /// let connection = hub_client::HubConnectionBuilder::new("http://localhost:5000/chat").build()?;
    /// connection.start().await?;
    /// let echoed: String = connection.invoke("Echo", ("hi",)).await?;
    /// let sum: i32 = connection.invoke("Add", (1, 2)).await?;
    /// let () = connection.invoke("Ping", ()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn invoke<R: DeserializeOwned>(&self, method: &str, args: impl Args) -> Result<R> {
        self.invoke_with_uploads(method, args, []).await
    }

    /// [`invoke`](Self::invoke) with client-to-server streams bound to the method's stream
    /// parameters, in order (`args` holds only the other arguments).
    pub async fn invoke_with_uploads<R: DeserializeOwned>(
        &self,
        method: &str,
        args: impl Args,
        uploads: impl IntoIterator<Item = Upload>,
    ) -> Result<R> {
        let sender = self.sender()?;
        let id = self.inner.calls.next_id();
        let (reply, result) = oneshot::channel();
        self.inner.calls.insert(id.clone(), Pending::Invoke(reply));
        // The Completion comes only after the server got the invocation: no need to wait for
        // the stateful reconnect buffer here.
        let _sent = self.start_call(&sender, Kind::Invoke, Some(&id), method, &args, uploads)?;
        match result.await.map_err(|_| Error::NotConnected)?? {
            CompletionResult::Void => serde::Deserialize::deserialize(().into_deserializer())
                .map_err(|e: serde::de::value::Error| Error::Decode(e.to_string())),
            CompletionResult::Value(raw) => raw.decode().map_err(|e| Error::Decode(e.to_string())),
            CompletionResult::Error(text) => Err(Error::Hub(text)),
        }
    }

    /// Invokes `method` without waiting for anything: the server sends no reply, even on
    /// error. Returns once the message is queued; with
    /// [stateful reconnect](crate::HubConnectionBuilder::stateful_reconnect), while the
    /// messages the server has not acknowledged fill the buffer, it waits until the server
    /// acknowledges enough of them (as the official clients hold sends back).
    pub async fn send(&self, method: &str, args: impl Args) -> Result<()> {
        self.send_with_uploads(method, args, []).await
    }

    /// [`send`](Self::send) with client-to-server streams.
    pub async fn send_with_uploads(
        &self,
        method: &str,
        args: impl Args,
        uploads: impl IntoIterator<Item = Upload>,
    ) -> Result<()> {
        let sender = self.sender()?;
        self.start_call(&sender, Kind::Send, None, method, &args, uploads)?
            .released()
            .await
    }

    /// Starts the server-to-client stream `method`; its items arrive decoded as `T`. Dropping
    /// the stream before its end cancels it on the server.
    ///
    /// ```no_run
    /// # async fn run(connection: hub_client::HubConnection) -> Result<(), hub_client::Error> {
    /// use futures_util::StreamExt;
    /// let mut counter = connection.stream::<u32>("Counter", (10, 500));
    /// while let Some(item) = counter.next().await {
    ///     println!("{}", item?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream<T: DeserializeOwned>(&self, method: &str, args: impl Args) -> HubStream<T> {
        self.stream_with_uploads(method, args, [])
    }

    /// [`stream`](Self::stream) with client-to-server streams.
    pub fn stream_with_uploads<T: DeserializeOwned>(
        &self,
        method: &str,
        args: impl Args,
        uploads: impl IntoIterator<Item = Upload>,
    ) -> HubStream<T> {
        let sender = match self.sender() {
            Ok(sender) => sender,
            Err(error) => return HubStream::failed(error),
        };
        let id = self.inner.calls.next_id();
        let (items, received) = mpsc::unbounded_channel();
        self.inner.calls.insert(id.clone(), Pending::Stream(items));
        match self.start_call(&sender, Kind::Stream, Some(&id), method, &args, uploads) {
            Ok(_sent) => HubStream::active(id, received, sender, self.inner.calls.clone()),
            Err(error) => HubStream::failed(error),
        }
    }

    /// Sends the message that starts a call, then starts its uploads. On failure the pending
    /// call `id` is forgotten.
    fn start_call(
        &self,
        sender: &Sender,
        kind: Kind,
        id: Option<&str>,
        method: &str,
        args: &dyn Args,
        uploads: impl IntoIterator<Item = Upload>,
    ) -> Result<Sent> {
        let uploads: Vec<(String, Upload)> = uploads.into_iter().map(|u| (self.inner.calls.next_id(), u)).collect();
        let stream_ids: Vec<String> = uploads.iter().map(|(id, _)| id.clone()).collect();
        let message = match (kind, id) {
            (Kind::Stream, Some(id)) => OutMessage::StreamInvocation {
                invocation_id: id,
                target: method,
                arguments: args.payload(),
                stream_ids: &stream_ids,
            },
            _ => OutMessage::Invocation {
                invocation_id: id.filter(|_| kind == Kind::Invoke),
                target: method,
                arguments: args.payload(),
                stream_ids: &stream_ids,
            },
        };
        let sent = match sender.send(&message) {
            Ok(sent) => sent,
            Err(error) => {
                if let Some(id) = id {
                    self.inner.calls.remove(id);
                }
                return Err(error);
            }
        };
        for (stream_id, upload) in uploads {
            tokio::spawn(upload.run(stream_id, sender.clone()));
        }
        Ok(sent)
    }
}
