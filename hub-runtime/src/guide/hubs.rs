//! # Hubs
//!
//! A hub is a type whose methods clients call by name. You write an ordinary `impl` block and
//! put [`#[hub]`](macro@crate::hub) on it; then you serve the hub at a path.
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//!
//! struct Greeter;
//!
//! #[hub]
//! impl Greeter {
//!     fn greet(&self, name: String) -> String {
//!         format!("Hello, {name}!")
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     HubServer::builder().hub("/greeter", Greeter).build().serve("127.0.0.1:5000").await
//! }
//! ```
//!
//! A JavaScript client now calls `await connection.invoke("Greet", "Ada")` and gets
//! `"Hello, Ada!"` back.
//!
//! ## Methods
//!
//! Every method takes `&self` and may be sync or `async`. One hub value serves every
//! connection, so per-hub state lives behind a `Mutex` or an atomic.
//!
//! Arguments are decoded straight into the parameter types with serde: any
//! `serde::Deserialize` type works, `String`, numbers, `Vec<T>`, `Option<T>` or your own
//! structs.
//!
//! ## Wire names
//!
//! Clients call a method by the PascalCase of its Rust name: `send_message` is
//! `"SendMessage"`. The server matches names case-insensitively, as ASP.NET Core does. To pick
//! another name, use `#[hub(name = "...")]`. Helpers that clients must not call are kept out of
//! the router with `#[hub(skip)]`.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! struct Calculator;
//!
//! #[hub]
//! impl Calculator {
//!     #[hub(name = "Plus")] // clients call "Plus", not "Add"
//!     fn add(&self, a: i64, b: i64) -> i64 {
//!         self.checked(a + b)
//!     }
//!
//!     #[hub(skip)] // an ordinary method: not callable by clients
//!     fn checked(&self, value: i64) -> i64 {
//!         value
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Injected parameters
//!
//! Some parameters are not sent by the client: hub recognises them by type and fills them in.
//!
//! - `cx: &HubContext<Self>` ([`HubContext`](crate::HubContext)): who is calling
//!   (`cx.connection_id()`, `cx.user_id()`), per-connection storage (`cx.items()`), the
//!   request (`cx.request()`), and the [clients](super::clients) and groups to send to.
//! - a [`CancellationToken`](crate::CancellationToken): cancelled when the client cancels the
//!   call or goes away. It is most useful for [streams](super::streaming).
//! - a [`ClientStream<T>`](crate::ClientStream): items the client streams up to the server
//!   (see [streaming](super::streaming)).
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! struct Notes;
//!
//! #[hub]
//! impl Notes {
//!     // The client sends only `text`.
//!     fn note(&self, cx: &HubContext<Self>, text: String) -> String {
//!         format!("{} wrote {text}", cx.connection_id())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Returns
//!
//! A method returns `()`, any `serde::Serialize` value, or `Result<T, E>` where `E` converts
//! into [`HubError`](crate::HubError): `HubError` itself, `anyhow::Error` (feature `anyhow`, on
//! by default), `Box<dyn std::error::Error + Send + Sync>`, hub's own errors, or a type of yours
//! with `impl From<MyError> for HubError` ([`HubError::from_error`](crate::HubError::from_error)
//! helps). It may also return a stream (see [streaming](super::streaming)).
//!
//! Errors are hidden from callers by default: they see `An unexpected error occurred invoking
//! 'X' on the server.` An error made with [`HubError::for_client`](crate::HubError::for_client)
//! is shown to the caller as written; use it for messages meant for users.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! struct Bank;
//!
//! #[hub]
//! impl Bank {
//!     async fn withdraw(&self, amount: u64) -> Result<u64, HubError> {
//!         if amount > 100 {
//!             return Err(HubError::for_client("at most 100 at a time"));
//!         }
//!         Ok(amount)
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! With `anyhow::Result` or a boxed error, `?` works on any error; the caller sees the detail
//! (`Exception: invalid digit found in string`) only with `detailed_errors`.
//!
//! ```
//! # #[cfg(feature = "anyhow")]
//! # mod gated {
//! use hub_runtime::prelude::*;
//!
//! struct Parser;
//!
//! #[hub]
//! impl Parser {
//!     fn parse(&self, text: String) -> anyhow::Result<u64> {
//!         Ok(text.trim().parse()?)
//!     }
//!
//!     fn parse_boxed(&self, text: String) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
//!         Ok(text.trim().parse()?)
//!     }
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! ## Connecting and disconnecting
//!
//! `#[hub(on_connected)]` marks a method that runs when a client connects: an error closes the
//! connection. `#[hub(on_disconnected)]` runs when it leaves, and may take an
//! `Option<ConnectionError>`: `None` when the client closed cleanly.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! struct Lobby;
//!
//! #[hub]
//! impl Lobby {
//!     #[hub(on_connected)]
//!     async fn arrived(&self, cx: &HubContext<Self>) -> Result<(), HubError> {
//!         cx.groups.add(cx.connection_id(), "lobby").await?;
//!         Ok(())
//!     }
//!
//!     #[hub(on_disconnected)]
//!     fn left(&self, cx: &HubContext<Self>, error: Option<ConnectionError>) {
//!         if let Some(error) = error {
//!             println!("{} dropped: {}", cx.connection_id(), error.message());
//!         }
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! A connection leaves its groups by itself when it goes; there is nothing to clean up there.
