//! Contracts and the server's conformance to them: the marker trait `#[hub_contract]` and
//! `#[hub_client_contract]` declare (one marker function per method, typed with the method's
//! owned argument and result types, and its wire name as a constant), and the impl of that
//! trait `#[hub(contract = ...)]` / `#[hub_client(contract = ...)]` generate for the server's
//! hub or client proxy. The compiler then compares the two: a method missing, one too many,
//! or different types are ordinary trait errors at the server's method.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Visibility;

use crate::model::{Interface, Method, ParamKind, Role, Side};
use crate::names::{path_at, respan};
use crate::types::{owned_type, wire_item, Returns};

/// `Call<(A, B,), R>` or `StreamCall<(A,), T>` for a method, under `contract` (the path of
/// `hub_protocol::contract`). Owned forms of borrowed types; uploads as `Upload<T>`.
pub(crate) fn marker(contract: &TokenStream, method: &Method) -> TokenStream {
    let args = method.params.iter().filter_map(|p| match &p.kind {
        ParamKind::Argument => Some(owned_type(&p.ty)),
        ParamKind::Upload(Some(item)) => {
            let item = owned_type(item);
            Some(quote!(#contract::Upload<#item>))
        }
        _ => None,
    });
    let args = quote!((#(#args,)*));
    match &method.returns {
        Returns::Stream { item } | Returns::StreamResult { item, .. } => {
            let item = owned_type(wire_item(item));
            quote!(#contract::StreamCall<#args, #item>)
        }
        // A client result declared `Result<T, E>` (the handler may fail) answers `T`.
        Returns::ClientResult(ty) => {
            let ty = owned_type(wire_item(ty));
            quote!(#contract::Call<#args, #ty>)
        }
        Returns::Result { ok: ty, .. } | Returns::Value(ty) => {
            let ty = owned_type(ty);
            quote!(#contract::Call<#args, #ty>)
        }
        Returns::Unit | Returns::UnitResult { .. } | Returns::Unsupported(_) => quote!(#contract::Call<#args, ()>),
    }
}

/// The name of a method's wire-name constant in the contract trait.
fn wire_const(method: &Method) -> syn::Ident {
    let name = method.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    format_ident!("__wire_{}", name, span = method.ident.span())
}

/// The contract's marker trait (named as the user's trait, with its docs).
pub(crate) fn contract_trait(interface: &Interface, vis: &Visibility, docs: &[syn::Attribute]) -> TokenStream {
    let krate = &interface.args.krate;
    let contract = quote!(#krate::contract);
    let Some(name) = super::caller::generated_ident(&interface.name, "") else {
        return TokenStream::new();
    };
    let valid = interface.methods.iter().filter(|m| m.valid);
    let items = valid.map(|m| {
        let ident = &m.ident;
        let marker = marker(&contract, m);
        let wire = &m.wire_name;
        let konst = wire_const(m);
        quote! {
            #[doc(hidden)]
            fn #ident(_: #marker);
            #[doc(hidden)]
            #[allow(non_upper_case_globals)]
            const #konst: &'static str = #wire;
        }
    });
    let how = match interface.side {
        Side::HubContract => format!(
            "Call the hub through [`{name}Proxy`]. The server's hub fulfils this contract with `#[hub(contract = {name})]` on its impl block, which makes the compiler check it; the trait's items serve that check only."
        ),
        _ => format!(
            "Clients implement [`{name}Handler`]. The server's client interface fulfils this contract with `#[hub_client(contract = {name})]`, which makes the compiler check it; the trait's items serve that check only."
        ),
    };
    quote! {
        #(#docs)*
        ///
        #[doc = #how]
        #vis trait #name {
            #(#items)*
        }
    }
}

/// The server's side: `impl Contract for Target` with one marker function per valid method,
/// and a constant check of each wire name. Nothing without `contract = ...`.
pub(crate) fn check(interface: &Interface) -> TokenStream {
    let Some(path) = &interface.args.contract else {
        return TokenStream::new();
    };
    let krate = &interface.args.krate;
    let span = path.span();
    let contract = path_at(&syn::parse_quote!(#krate::protocol::contract), span);
    let target = &interface.target;
    let header = match interface.side {
        Side::Client => quote_spanned!(span=> impl<__K> #path for #target<__K>),
        _ => quote_spanned!(span=> impl #path for #target),
    };
    let methods: Vec<&Method> = interface
        .methods
        .iter()
        .filter(|m| m.valid && matches!(m.role, Role::Invocable))
        .collect();
    // At the method's name: a type that differs from the contract's is reported there.
    let fns = methods.iter().map(|m| {
        let ident = &m.ident;
        let marker = respan(marker(&contract, m), ident.span());
        quote_spanned!(ident.span()=> fn #ident(_: #marker) {})
    });
    let wires = methods.iter().map(|m| {
        let konst = wire_const(m);
        let wire = &m.wire_name;
        let message = format!(
            "the wire name of `{}` (\"{wire}\") is not the contract's: give both the same `#[hub(name = \"...\")]`",
            m.ident
        );
        quote_spanned! {m.wire_span=>
            ::core::assert!(
                #contract::__private::same_name(<#target as #path>::#konst, #wire),
                #message
            );
        }
    });
    quote! {
        #[automatically_derived]
        #header {
            #(#fns)*
        }
        const _: () = {
            #(#wires)*
        };
    }
}
