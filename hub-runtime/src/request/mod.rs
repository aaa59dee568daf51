//! What a request carries into the server, below every layer that reads it: who the client is
//! ([`Identity`]) and what its HTTP request said ([`RequestContext`], [`TransportKind`]).
//! `auth` and `connection` re-export them under their public paths; `observability` (which
//! labels by transport), `connection` and `auth` import them from here.

mod context;
mod identity;

pub use context::{RequestContext, TransportKind};
pub use identity::{claim_types, Identity};
