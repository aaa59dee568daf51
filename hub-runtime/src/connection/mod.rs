//! The connections layer: logical connections, independent of the socket or request that
//! currently carries them. It knows bytes, not hubs.
//!
//! A connection is created by negotiate (or by a WebSocket that skipped negotiation), gets a
//! public id and a secret token, and lives until its handler finishes or its transport goes
//! away. A transport attaches to it and moves frames between the socket and two queues: the
//! inbox (read by the handler through [`Connection::recv`]) and the bounded outbox (filled
//! through [`ConnectionSender`]).
//!
//! One job per file: `frame` (what flows), `clock` (timestamps and deadlines), `ids`,
//! `shared` (one connection's shared state), `replay` (stateful reconnect's buffer), `handle`
//! ([`Connection`]), `sender` ([`ConnectionSender`]), `handler` (the [`ConnectionHandler`]
//! trait), `manager` (attaching) and `sweep` (letting go).

pub(crate) mod capacity;
mod clock;
mod frame;
mod handle;
mod handler;
mod ids;
mod manager;
pub(crate) mod negotiate;
pub(crate) mod queue;
pub(crate) mod quiet;
mod replay;
mod sender;
mod shared;
mod sweep;

pub use crate::request::{RequestContext, TransportKind};
pub use frame::{Frame, OutboxError};
pub use handle::Connection;
pub use handler::ConnectionHandler;
pub use sender::ConnectionSender;

#[cfg(test)]
pub(crate) use clock::FAR;
pub(crate) use clock::{bounded, deadline_after, instant_of, now_ms};
pub(crate) use frame::{InputError, Outgoing, Tracking};
pub(crate) use ids::random_id;
pub(crate) use manager::{AttachError, Attached, ConnectionManager, TokenKind};
pub(crate) use replay::Kept;
pub(crate) use shared::ConnectionShared;
pub(crate) use sweep::SweepTimeouts;
