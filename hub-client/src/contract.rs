//! The client's side of contracts (`hub_protocol::contract`): a [`HubConnection`] is the
//! [`Caller`] a contract's typed proxy calls through and the [`Receiver`] its handler trait
//! registers on.
//!
//! ```
//! use hub_protocol::contract::{hub_client_contract, hub_contract};
//!
//! #[hub_contract]
//! pub trait Greeter {
//!     fn greet(&self, name: String) -> String;
//! }
//!
//! #[hub_client_contract]
//! pub trait GreeterClient {
//!     fn greeted(&self, name: String);
//! }
//!
//! struct Printer;
//!
//! impl GreeterClientHandler for Printer {
//!     async fn greeted(&self, name: String) {
//!         println!("the hub greeted {name}");
//!     }
//! }
//!
//! # async fn run() -> Result<(), hub_client::Error> {
//! let connection = hub_client::HubConnectionBuilder::new("http://localhost:5000/greeter").build()?;
//! Printer.register(&connection);
//! connection.start().await?;
//! let greeter = GreeterProxy::new(&connection);
//! let text: String = greeter.greet("Ada".to_string()).await?;
//! # let _ = text; Ok(()) }
//! ```

use std::future::Future;

use futures_util::Stream;
use hub_protocol::contract::{ArgumentError, Caller, Receiver};
use hub_protocol::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Args, Arguments, Error, HubConnection, HubStream, Upload};

/// A proxy's arguments (a tuple or `NoArgs`) as the connection's [`Args`].
struct Serialized<A>(A);

impl<A: Serialize + Send + Sync> Args for Serialized<A> {
    fn payload(&self) -> Payload<'_> {
        &self.0
    }
}

impl Caller for HubConnection {
    type Error = Error;
    type Upload = Upload;
    type Stream<T: DeserializeOwned + Send + 'static> = HubStream<T>;

    fn invoke<A, R>(
        &self,
        method: &'static str,
        args: A,
        uploads: Vec<Upload>,
    ) -> impl Future<Output = Result<R, Error>> + Send
    where
        A: Serialize + Send + Sync + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        self.invoke_with_uploads(method, Serialized(args), uploads)
    }

    fn stream<A, T>(&self, method: &'static str, args: A, uploads: Vec<Upload>) -> HubStream<T>
    where
        A: Serialize + Send + Sync + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        self.stream_with_uploads(method, Serialized(args), uploads)
    }

    fn upload<S, T>(stream: S) -> Upload
    where
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
    {
        Upload::new(stream)
    }
}

impl hub_protocol::contract::Arguments for Arguments {
    fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgumentError> {
        Arguments::get(self, index).map_err(|e| ArgumentError { message: e.to_string() })
    }
}

impl Receiver for HubConnection {
    type Arguments = Arguments;

    fn on<F, Fut>(&self, method: &'static str, handler: F)
    where
        F: Fn(Arguments) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        HubConnection::on(self, method, handler)
    }

    fn on_result<F, Fut, R>(&self, method: &'static str, handler: F)
    where
        F: Fn(Arguments) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ArgumentError>> + Send + 'static,
        R: Serialize + Send + Sync + 'static,
    {
        HubConnection::on_result(self, method, handler)
    }
}
