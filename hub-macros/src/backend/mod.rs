//! Code generation from a validated model: one back end per thing generated.

pub(crate) mod caller;
pub(crate) mod conformance;
pub(crate) mod descriptor;
pub(crate) mod handler;
pub(crate) mod proxy;
pub(crate) mod router;
pub(crate) mod typescript;
