//! Procedural macros for hub: `#[hub]` turns an impl block into a hub (the router from wire
//! names to methods); `#[hub_client]` turns a trait into typed client proxies.
//!
//! Use them through `hub_runtime`, which re-exports them. Both macros parse their input into one
//! model (`model`: an interface of methods with wire names, parameters, return kinds), validate
//! it once collecting every error with its span (`validate`), then generate code through
//! separate back ends (`backend`: the router of `#[hub]`, the proxies of `#[hub_client]`, and the
//! descriptor of both, `hub_runtime::descriptor`). On error they still emit what passed: a stub
//! `Hub` impl for `#[hub]`, the valid proxy methods for `#[hub_client]`, so the rest of the
//! crate compiles and each mistake is reported once.
//!
//! Generated code names hub-runtime as `::hub_runtime`; a crate that renamed the dependency says
//! so with `crate = "..."` (`#[hub(crate = "my_runtime")]`, `#[hub_client(crate = "my_runtime")]`).

use proc_macro::TokenStream;

mod attrs;
mod authorize;
mod backend;
mod client;
mod contract;
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
///
/// Also:
///
/// - `contract = path::to::Contract`: the `#[hub_contract]` trait this hub fulfils; the
///   compiler checks every method, its owned argument and result types and its wire name
///   against it (see `hub_protocol::contract`).
/// - `proxy`: also generate `NameProxy<C>`, the typed proxy a hub-client connection calls the
///   hub through, private to the module (for the crate's own tests and tools; a separate client
///   crate uses a contract).
/// - `crate = "path"`: where hub-runtime is, for a crate that renamed it (default
///   `::hub_runtime`).
///
/// The hub type implements `hub_runtime::descriptor::Describe`.
#[proc_macro_attribute]
pub fn hub(attr: TokenStream, item: TokenStream) -> TokenStream {
    hub::expand(attr.into(), item.into()).into()
}

/// Declares the methods a hub may call on its clients, and generates typed proxies for them.
///
/// `#[hub_client(contract = path::to::Contract)]`: the `#[hub_client_contract]` trait it
/// fulfils, checked by the compiler. `#[hub_client(handler)]`: also generate `NameHandler`, the
/// trait a hub-client connection's handler implements, private to the module.
/// `#[hub_client(crate = "path")]`: where hub-runtime is, for a crate that renamed it (default
/// `::hub_runtime`). The proxy struct implements `hub_runtime::descriptor::Describe`.
#[proc_macro_attribute]
pub fn hub_client(attr: TokenStream, item: TokenStream) -> TokenStream {
    client::expand(attr.into(), item.into()).into()
}

/// Declares a hub's interface in a crate of its own (a contract), shared by the server and its
/// clients without either's dependencies. Use it through `hub_protocol::contract`, which
/// documents it with an example.
///
/// The trait keeps its name and becomes the marker the server's `#[hub(contract = Name)]`
/// is checked against; clients get `NameProxy<C>`, a typed proxy over a connection.
/// `#[hub_contract(crate = "path")]`: where hub-protocol is (default `::hub_protocol`).
#[proc_macro_attribute]
pub fn hub_contract(attr: TokenStream, item: TokenStream) -> TokenStream {
    contract::expand(attr.into(), item.into(), model::Side::HubContract).into()
}

/// Declares a hub's client interface in a contract crate. Use it through
/// `hub_protocol::contract`.
///
/// The trait keeps its name and becomes the marker the server's `#[hub_client(contract = Name)]`
/// is checked against; clients implement `NameHandler` and `register` it on a connection.
/// `#[hub_client_contract(crate = "path")]`: where hub-protocol is (default `::hub_protocol`).
#[proc_macro_attribute]
pub fn hub_client_contract(attr: TokenStream, item: TokenStream) -> TokenStream {
    contract::expand(attr.into(), item.into(), model::Side::ClientContract).into()
}
