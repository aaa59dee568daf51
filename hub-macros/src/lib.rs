//! Procedural macros for hub: `#[hub]` turns an impl block into a hub (the router from wire
//! names to methods); `#[hub_client]` turns a trait into typed client proxies.
//!
//! Use them through `hub_runtime`, which re-exports them. Each macro parses its input into a
//! model, validates it collecting every error with its span, then generates code; on error it
//! emits all errors plus a stub so the rest of the crate still compiles.

use proc_macro::TokenStream;

mod attrs;
mod authorize;
mod client;
mod errors;
mod hub;
mod names;
mod types;

/// Turns an inherent impl block into a hub.
///
/// Every method becomes a hub method that clients call by its wire name (PascalCase of the
/// Rust name, matched case-insensitively). See the `hub_runtime` documentation.
#[proc_macro_attribute]
pub fn hub(attr: TokenStream, item: TokenStream) -> TokenStream {
    hub::expand(attr.into(), item.into()).into()
}

/// Declares the methods a hub may call on its clients, and generates typed proxies for them.
#[proc_macro_attribute]
pub fn hub_client(attr: TokenStream, item: TokenStream) -> TokenStream {
    client::expand(attr.into(), item.into()).into()
}
