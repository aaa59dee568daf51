//! # hub-client — a SignalR client for Rust
//!
//! Talks to any ASP.NET Core SignalR server (hub's own, or the reference one): negotiate
//! (versions 0 and 1, redirects, access tokens), the WebSockets, Server-Sent Events and
//! long-polling transports (in the server's order, falling back when one fails), the JSON and MessagePack hub
//! protocols, invocations, fire-and-forget sends, server-to-client streams
//! (cancelled by dropping them), client-to-server uploads from any `Stream`, handlers for
//! the server's invocations and client results, keep-alive and the server timeout, and the
//! server's Close message as a typed [`CloseReason`], automatic reconnect with a
//! [`RetryPolicy`] (see [`HubConnectionBuilder::automatic_reconnect_with`]: the connection id
//! changes, so groups must be re-joined), and stateful reconnect (see
//! [`HubConnectionBuilder::stateful_reconnect`]: a dropped WebSocket comes back to the same
//! connection, and no message is lost either way).
//!
//! **Durable groups.** [`HubConnection::follow`] follows a group whose server keeps a history
//! (hub-runtime's `cx.history`, the interop contract's `Subscribe`): a [`Following`] stream
//! that resumes by itself from the last [`Position`] it saw after every reconnect, even to
//! another server, so each message arrives once and in order; when history no longer covers
//! what was missed, it says so ([`FollowEvent::Subscribed`] with `recovered: false`).
//!
//! The wire format is [`hub_protocol`]'s: this crate moves its messages over the network.
//!
//! **Typed calls.** A hub's contract, declared with [`hub_protocol::contract`]'s
//! `#[hub_contract]` and `#[hub_client_contract]` in a crate of its own, gives a typed proxy
//! (`NameProxy::new(&connection).method(args).await`) and a handler trait (`impl
//! NameHandler for MyHandler`, then `handler.register(&connection)`): [`HubConnection`]
//! implements the contract's `Caller` and `Receiver`. The server's hub is checked against the
//! same contract, so a method or type that differs does not compile on either side.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use hub_client::{HubConnectionBuilder, Protocol};
//!
//! # async fn run() -> Result<(), hub_client::Error> {
//! let connection = HubConnectionBuilder::new("http://localhost:5000/chat")
//!     .protocol(Protocol::Json)
//!     .build()?;
//! connection.on("ReceiveMessage", |args| async move {
//!     let text: String = args.get(0).unwrap_or_default();
//!     println!("{text}");
//! });
//! connection.start().await?;
//!
//! let echoed: String = connection.invoke("Echo", ("hello",)).await?;
//! connection.send("Broadcast", ("hello", 3)).await?;
//! let mut items = connection.stream::<i32>("Counter", (3,));
//! while let Some(item) = items.next().await {
//!     println!("{}", item?);
//! }
//! connection.stop().await;
//! # let _ = echoed; Ok(()) }
//! ```
//!
//! ## Dependencies
//!
//! A client pulls nothing of a server: no hub-runtime, no warp, no hyper `server` feature
//! (only hyper's `client` and `http1`, through hyper-util's client, for negotiate). CI checks
//! this with `cargo tree -p hub-client -e normal`.
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `json` | on | [`Protocol::Json`] |
//! | `msgpack` | on | [`Protocol::MessagePack`] |
//! | `rustls` | off | `https://` and `wss://` URLs (rustls, webpki roots) |

#![warn(missing_docs)]

mod args;
mod builder;
mod calls;
mod config;
mod connection;
mod contract;
mod cookies;
mod driver;
mod error;
mod follow;
mod handlers;
mod handshake;
mod http;
mod incoming;
mod long_polling;
mod negotiate;
mod pending;
mod reattach;
mod reconnect;
mod recovery;
mod sender;
mod server_sent_events;
mod stateful;
mod stream;
mod transport;
mod url;
mod websocket;

pub use args::{Args, Arguments};
pub use builder::HubConnectionBuilder;
pub use config::{Protocol, TokenResult, TransportKind};
pub use connection::HubConnection;
pub use error::{CloseReason, Error, Result};
pub use follow::{FollowEvent, Following};
pub use reconnect::{Delays, RetryContext, RetryPolicy};
pub use recovery::{Position, RecoveryHeader, RecoveryItem, RecoveryMessage};
pub use stream::{HubStream, Upload};
