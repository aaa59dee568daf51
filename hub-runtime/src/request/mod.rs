//! What a request carries into the server, below every layer that reads it: who the client is
//! ([`Identity`]). `auth` re-exports it, its public path.
//!
//! The HTTP side of a request (`RequestContext`, `TransportKind`, now in
//! `connection/request.rs`) belongs here too, beside the identity: then `observability`
//! (which labels by transport) and `auth` (which reads requests) import it from here, and
//! `connection` imports neither `auth` nor anything above `observability`.

mod identity;

pub use identity::{claim_types, Identity};
