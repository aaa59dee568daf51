//! # Typed clients: one contract for the server, Rust clients and TypeScript
//!
//! A hub's methods are its contract with its clients. hub lets you write that contract once and
//! have the compiler hold both sides to it.
//!
//! ## A contract crate
//!
//! Put the contract in a crate of its own that depends on `hub-protocol` (and `serde` for
//! payload types) only, so a client can use it without pulling in the server:
//!
//! ```
//! use hub_protocol::contract::{hub_client_contract, hub_contract};
//!
//! /// What clients call.
//! #[hub_contract]
//! pub trait Chat {
//!     fn send(&self, text: String);
//!     fn history(&self, count: u32) -> Vec<String>;
//!     fn live(&self) -> impl Stream<Item = String>;
//! }
//!
//! /// What the hub calls on its clients.
//! #[hub_client_contract]
//! pub trait ChatClient {
//!     fn receive(&self, text: String);
//!     /// A client result.
//!     fn confirm(&self, question: String) -> bool;
//! }
//! # fn main() {}
//! ```
//!
//! Contract methods are declarations: `&self`, owned argument types, the caller's result type
//! (no `Result`: the proxy adds the error), `impl Stream<Item = T>` for a server-to-client
//! stream, and a parameter `impl Stream<Item = T>` for a client-to-server stream. Wire names
//! follow the hub's rules (`history` is called as `History`; `#[hub(name = "...")]` renames).
//!
//! ## The server fulfils it
//!
//! The hub and its client interface name the contract; the compiler then checks every method:
//! none missing, none extra, the same argument and result types (a `&str` or `&'static str`
//! counts as `String`, `ClientStream<T>` as an upload of `T`; the context and the
//! cancellation token are the server's own), the same wire names.
//!
//! ```
//! # mod contract {
//! #     use hub_runtime::protocol::contract::{hub_client_contract, hub_contract};
//! #     #[hub_contract(crate = "hub_runtime::protocol")]
//! #     pub trait Chat {
//! #         fn send(&self, text: String);
//! #         fn history(&self, count: u32) -> Vec<String>;
//! #         fn live(&self) -> impl Stream<Item = String>;
//! #     }
//! #     #[hub_client_contract(crate = "hub_runtime::protocol")]
//! #     pub trait ChatClient {
//! #         fn receive(&self, text: String);
//! #         fn confirm(&self, question: String) -> bool;
//! #     }
//! # }
//! use hub_runtime::prelude::*;
//!
//! #[hub_client(contract = contract::ChatClient)]
//! trait ChatClient {
//!     fn receive(&self, text: &str);
//!     fn confirm(&self, question: &str) -> bool;
//! }
//!
//! struct Chat;
//!
//! #[hub(client = ChatClient, contract = contract::Chat)]
//! impl Chat {
//!     async fn send(&self, cx: &HubContext<Self>, text: String) -> Result<(), HubError> {
//!         Ok(cx.clients.all().receive(&text).await?)
//!     }
//!
//!     fn history(&self, count: u32) -> Vec<String> {
//!         (0..count).map(|i| format!("line {i}")).collect()
//!     }
//!
//!     fn live(&self, token: CancellationToken) -> impl Stream<Item = &'static str> {
//!         let _ = token;
//!         futures_util::stream::iter(["now"])
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Forget `live` and the error is `not all trait items implemented, missing: live`; take a
//! `u64` in `history` and it is `method history has an incompatible type for trait: expected
//! u32, found u64`, at the method.
//!
//! ## A Rust client calls it
//!
//! With the `hub-client` crate, the contract's `ChatProxy` calls the hub and `ChatClientHandler`
//! answers it (`async fn`s; a client result returns its value):
//!
//! ```text
//! struct Screen;
//!
//! impl ChatClientHandler for Screen {
//!     async fn receive(&self, text: String) { println!("{text}"); }
//!     async fn confirm(&self, question: String) -> bool { question.len() < 80 }
//! }
//!
//! let connection = hub_client::HubConnectionBuilder::new("http://localhost:5000/chat").build()?;
//! Screen.register(&connection);
//! connection.start().await?;
//! let chat = ChatProxy::new(&connection);
//! chat.send("hello".into()).await?;
//! let lines: Vec<String> = chat.history(10).await?;
//! let mut live = chat.live();          // a Stream of Result<String, hub_client::Error>
//! ```
//!
//! (Not compiled here: hub-runtime does not depend on hub-client. `hub_client`'s own docs and
//! `examples/typed` compile it.) A misspelt method or a wrong argument type does not compile on
//! the client either. The connection id changes when the client reconnects automatically, as
//! with the official clients: re-join groups in `on_reconnected`. With
//! `stateful_reconnect(true)`, a dropped WebSocket comes back to the same connection and
//! nothing sent either way is lost.
//!
//! Within the server's own crate (its tests, a load tool), no contract is needed:
//! `#[hub(proxy)]` also generates `ChatProxy` from the hub itself and `#[hub_client(handler)]`
//! generates `ChatClientHandler`, private to their module, with the same owned types.
//!
//! `examples/typed` in the repository is the whole arrangement in three crates:
//! `tasks-contract`, `tasks-server` and `tasks-client`, whose dependency tree has no server in it.
//!
//! ## TypeScript
//!
//! With the `typescript` feature, [`crate::typescript::module`] renders the same hub as a
//! TypeScript module for the official JavaScript client: an interface with typed proxies
//! (`createChatProxy(connection)`), the client interface with `registerChatClient`, and the
//! payload types with their serde names. The chat example commits its module and builds its page
//! from it (`examples/web/chat.ts`); CI fails when regenerating changes it.
