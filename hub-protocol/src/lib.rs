//! # hub-protocol — the ASP.NET Core SignalR hub protocols, without a server
//!
//! What a SignalR client and server say to each other once a connection is open, as plain
//! data: no sockets, no runtime, no I/O. [hub-runtime] speaks through this crate, and so can a
//! client, a proxy, a test or a fuzzer.
//!
//! - [`handshake`]: the first message of every connection (always JSON, ended by `0x1E`):
//!   [`handshake::parse_request`], [`handshake::select_protocol`] and the replies.
//! - The hub protocols, behind the [`HubProtocol`] trait: [`JsonProtocol`] (`json` feature)
//!   and [`MessagePackProtocol`] (`msgpack` feature). They read bytes into [`HubMessage`]s,
//!   keeping arguments undecoded ([`RawValue`]) until their types are known, and write
//!   [`OutMessage`]s, which borrow their values, into bytes.
//! - [`MessageReader`]: one connection's incoming bytes, split over frames or not, turned
//!   into messages one at a time, with the maximum message size enforced.
//! - [`types`]: values that map the way the official clients expect ([`types::Binary`] is
//!   .NET's `byte[]`, [`types::DateTime`] its `DateTime`).
//! - [`error_texts`]: the texts the reference server (ASP.NET Core) sends when something
//!   fails, worded exactly as it words them, since clients and their users see them.
//!
//! ## Example
//!
//! A client's handshake, then an invocation answered with a completion:
//!
#![cfg_attr(feature = "json", doc = "```")]
#![cfg_attr(not(feature = "json"), doc = "```ignore")]
//! use hub_protocol::handshake::{parse_request, select_protocol, SUCCESS_REPLY};
//! use hub_protocol::{HubMessage, HubProtocol, JsonProtocol, OutMessage, OutResult, TransferFormat};
//! use std::sync::Arc;
//!
//! let input = b"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":1,\"invocationId\":\"0\",\"target\":\"Add\",\"arguments\":[1,2]}\x1e";
//! let (request, used) = parse_request(input).unwrap();
//! let protocols: Vec<Arc<dyn HubProtocol>> = vec![Arc::new(JsonProtocol)];
//! let protocol = select_protocol(&request, &protocols, TransferFormat::ALL).unwrap();
//! assert_eq!(SUCCESS_REPLY, b"{}\x1e");
//!
//! let messages = protocol.parse(&input[used..]).unwrap();
//! let HubMessage::Invocation(call) = &messages[0] else { panic!("not an invocation") };
//! let (a, b): (i32, i32) = (call.arguments[0].decode().unwrap(), call.arguments[1].decode().unwrap());
//!
//! let reply = protocol
//!     .encode(&OutMessage::Completion { invocation_id: "0", result: OutResult::Value(&(a + b)) })
//!     .unwrap();
//! assert_eq!(&reply[..], b"{\"type\":3,\"invocationId\":\"0\",\"result\":3}\x1e");
//! ```
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `json` | on | [`JsonProtocol`] (memchr) |
//! | `msgpack` | on | [`MessagePackProtocol`] and `RawValue::MessagePack` (rmp, rmp-serde, rmpv) |
//! | `ts-rs` | off | `ts_rs::TS` for [`types::Binary`] (`string \| Uint8Array`) and [`types::DateTime`] (`string \| Date`), as the official JavaScript client reads and writes them |
//!
//! With neither, the handshake, the message types and [`types`] remain (a [`HubProtocol`]
//! of one's own can still be written).
//!
//! [hub-runtime]: https://docs.rs/hub-runtime

#![warn(missing_docs)]

pub mod contract;
pub mod error_texts;
pub mod handshake;
#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "msgpack")]
pub mod msgpack;
pub mod recovery;
pub mod types;

mod error;
mod message;
mod outgoing;
mod protocol;
mod raw;
mod reader;
mod scratch;
#[cfg(feature = "ts-rs")]
mod typescript;

use std::sync::Arc;

pub use error::{EncodeError, ProtocolError};
#[cfg(feature = "json")]
pub use json::JsonProtocol;
pub use message::{CompletionResult, Headers, HubMessage, Invocation};
#[cfg(feature = "msgpack")]
pub use msgpack::MessagePackProtocol;
pub use outgoing::{NoArgs, OutMessage, OutResult, Payload};
pub use protocol::{HubProtocol, TransferFormat};
pub use raw::{DecodeError, JsonText, RawValue};
pub use reader::MessageReader;

/// The protocols a server speaks unless told otherwise: JSON and MessagePack, as the
/// `json` and `msgpack` features are on (none without either).
///
/// One push per feature: `vec![]` cannot leave out an element by feature.
#[allow(unused_mut, clippy::vec_init_then_push)]
pub fn default_protocols() -> Vec<Arc<dyn HubProtocol>> {
    let mut protocols: Vec<Arc<dyn HubProtocol>> = Vec::new();
    #[cfg(feature = "json")]
    protocols.push(Arc::new(JsonProtocol));
    #[cfg(feature = "msgpack")]
    protocols.push(Arc::new(MessagePackProtocol));
    protocols
}
