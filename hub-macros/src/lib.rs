//! Procedural macros for hub: `#[hub]` turns an impl block into a hub (the router from wire
//! names to methods); `#[hub_client]` turns a trait into typed client proxies.
//!
//! Use them through `hub_runtime`, which re-exports them. Each macro parses its input into a
//! model, validates it collecting every error with its span, then generates code; on error it
//! emits all errors plus a stub so the rest of the crate still compiles.

use proc_macro::TokenStream;

mod attrs;
mod authorize;
mod backend;
mod client;
mod errors;
mod hub;
mod model;
mod names;
mod types;
mod validate;

/// Turns an inherent impl block into a hub.
///
/// Every method becomes a hub method that clients call by its wire name (PascalCase of the
/// Rust name, matched case-insensitively). See the `hub_runtime` documentation.
///
/// Authorization: `authorize` in `#[hub(...)]`, on the impl block (every connection: the
/// endpoint refuses negotiate and transport requests with 401 without an identity, 403 when it
/// falls short) or on a method (every call: a refused invocation gets the Completion error
/// `Failed to invoke 'X' because user is unauthorized` and the connection stays):
///
/// - `authorize`: any authenticated user;
/// - `authorize(role = "admin")`: that role (`"admin, owner"`: any of them);
/// - `authorize(claim = "scope")`, `authorize(claim = "scope", value = "write")`: that claim;
/// - `authorize(policy = path::to::function)`: your `fn(&Identity) -> bool`.
///
/// Requirements inside one `authorize(...)`, and several `authorize`s, must all hold.
#[proc_macro_attribute]
pub fn hub(attr: TokenStream, item: TokenStream) -> TokenStream {
    hub::expand(attr.into(), item.into()).into()
}

/// Declares the methods a hub may call on its clients, and generates typed proxies for them.
#[proc_macro_attribute]
pub fn hub_client(attr: TokenStream, item: TokenStream) -> TokenStream {
    client::expand(attr.into(), item.into()).into()
}
