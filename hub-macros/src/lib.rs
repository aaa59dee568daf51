//! Procedural macros for hub. Use them through `hub_runtime` (which re-exports them).
use proc_macro::TokenStream;

/// Turns an impl block into a hub.
#[proc_macro_attribute]
pub fn hub(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Declares the methods a hub may call on its clients.
#[proc_macro_attribute]
pub fn hub_client(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
