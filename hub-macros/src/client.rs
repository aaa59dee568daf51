//! `#[hub_client]`: a trait declaring the client methods a hub may call becomes a family of
//! typed proxies: `Name<K>` with one async method per declaration.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemTrait, Pat, TraitItem, Type};

use crate::attrs::{self, Context};
use crate::errors::Errors;
use crate::names::pascal_case;

struct ClientMethod {
    attrs: Vec<syn::Attribute>,
    ident: syn::Ident,
    wire_name: String,
    params: Vec<(syn::Ident, Type)>,
    /// A client result's type.
    returns: Option<Type>,
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.spanned(&attr, "`#[hub_client]` takes no arguments");
    }
    let mut item_trait: ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "`#[hub_client]` goes on a trait declaring client methods: `#[hub_client] trait ChatClient { fn receive_message(&self, text: String); }`",
            );
            let e = e.to_compile_error();
            return quote! { #item #e };
        }
    };
    if !item_trait.generics.params.is_empty() {
        errors.spanned(&item_trait.generics, "a client interface cannot be generic");
    }
    if !item_trait.supertraits.is_empty() {
        errors.spanned(&item_trait.supertraits, "a client interface cannot have supertraits");
    }

    let mut methods = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for item in &mut item_trait.items {
        let TraitItem::Fn(function) = item else {
            errors.spanned(
                &*item,
                "a client interface declares only methods (`fn name(&self, ...);`)",
            );
            continue;
        };
        let method_attrs = attrs::take_method_attrs(&mut function.attrs, Context::ClientMethod, &mut errors);
        let sig = &function.sig;
        let wire_name = method_attrs
            .name
            .as_ref()
            .map(|n| n.value())
            .unwrap_or_else(|| pascal_case(&sig.ident.to_string()));
        let name_span = method_attrs
            .name
            .as_ref()
            .map(|n| n.span())
            .unwrap_or_else(|| sig.ident.span());
        let key = wire_name.to_lowercase();
        if let Some(other) = seen.get(&key) {
            errors.at(
                name_span,
                format!("two client methods have the wire name `{wire_name}` (`{other}` and `{}`): clients match handler names case-insensitively", sig.ident),
            );
        } else {
            seen.insert(key, sig.ident.to_string());
        }
        let mut ok = true;
        if let Some(body) = &function.default {
            errors.spanned(
                body,
                "client methods are declarations, implemented by the clients: remove the body and end with `;`",
            );
            ok = false;
        }
        if !sig.generics.params.is_empty() {
            errors.spanned(
                &sig.generics,
                "client methods cannot be generic: each argument needs one concrete type",
            );
            ok = false;
        }
        let returns = match &sig.output {
            syn::ReturnType::Type(_, ty) if crate::types::is_unit(ty) => None,
            syn::ReturnType::Type(_, ty) => {
                if let Type::ImplTrait(_) = &**ty {
                    errors.spanned(ty, "a client result needs a concrete type, such as `bool` or `String`");
                    ok = false;
                }
                Some((**ty).clone())
            }
            syn::ReturnType::Default => None,
        };
        match sig.inputs.first() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
            Some(FnArg::Receiver(r)) => {
                errors.spanned(r, "client methods take `&self`");
                ok = false;
            }
            _ => {
                errors.spanned(&sig.ident, "client methods take `&self` as their first parameter");
                ok = false;
            }
        }
        let mut params = Vec::new();
        for (i, input) in sig.inputs.iter().skip(1).enumerate() {
            let FnArg::Typed(pat_type) = input else {
                continue;
            };
            let ident = match &*pat_type.pat {
                Pat::Ident(p) => p.ident.clone(),
                _ => format_ident!("arg{}", i),
            };
            if let Type::ImplTrait(_) = &*pat_type.ty {
                errors.spanned(
                    &pat_type.ty,
                    "client method parameters cannot be `impl Trait`: use a concrete type",
                );
                ok = false;
            }
            params.push((ident, (*pat_type.ty).clone()));
        }
        if ok {
            let docs = function
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("doc"))
                .cloned()
                .collect();
            methods.push(ClientMethod {
                attrs: docs,
                ident: sig.ident.clone(),
                wire_name,
                params,
                returns,
            });
        }
    }

    let vis = &item_trait.vis;
    let name = &item_trait.ident;
    let docs: Vec<_> = item_trait.attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let proxy_struct = quote! {
        #(#docs)*
        ///
        /// A typed client proxy generated by `#[hub_client]`: get one from `cx.clients` (for
        /// example `cx.clients.all()`), then call client methods on it.
        #vis struct #name<K = ::hub_runtime::Many> {
            target: ::hub_runtime::ClientTarget<K>,
        }

        impl<K> ::core::convert::From<::hub_runtime::ClientTarget<K>> for #name<K> {
            fn from(target: ::hub_runtime::ClientTarget<K>) -> Self {
                #name { target }
            }
        }

        impl<K> ::core::ops::Deref for #name<K> {
            type Target = ::hub_runtime::ClientTarget<K>;
            fn deref(&self) -> &Self::Target {
                &self.target
            }
        }

        impl<K: ::hub_runtime::__private::TargetKind> ::hub_runtime::__private::ClientInterface for #name<K> {
            type Proxy<K2: ::hub_runtime::__private::TargetKind> = #name<K2>;
        }
    };
    if !errors.is_empty() {
        let compile_errors = errors.to_compile_errors();
        return quote! { #proxy_struct #compile_errors };
    }

    let (results, sends): (Vec<&ClientMethod>, Vec<&ClientMethod>) = methods.iter().partition(|m| m.returns.is_some());
    let results = results.into_iter().map(|m| {
        let ClientMethod { attrs, ident, wire_name, params, returns } = m;
        let names: Vec<_> = params.iter().map(|(n, _)| n).collect();
        let decls = params.iter().map(|(n, t)| quote!(#n: #t));
        let erased = params.iter().map(|(n, t)| {
            let span = t.span();
            quote_spanned! {span=> ::hub_runtime::__private::client_arg::<#t>(&#n) }
        });
        let args = if names.is_empty() { quote!(&::hub_runtime::__private::NoArgs) } else { quote!(&[#(#erased),*]) };
        let result = returns.as_ref().map(|r| quote!(#r)).unwrap_or_default();
        let span = returns.as_ref().map(|r| r.span()).unwrap_or_else(Span::call_site);
        let invoke = quote_spanned! {span=>
            ::hub_runtime::__private::client_result::<#result, _>(
                &self.target,
                #wire_name,
                #args,
            ).await
        };
        quote! {
            #(#attrs)*
            #[doc = concat!("Calls `", #wire_name, "` on this connection and awaits the client's result.")]
            pub async fn #ident(&self, #(#decls),*) -> ::std::result::Result<#result, ::hub_runtime::ClientResultError> {
                #invoke
            }
        }
    });
    let methods = sends.into_iter().map(|m| {
        let ClientMethod {
            attrs,
            ident,
            wire_name,
            params,
            ..
        } = m;
        let names: Vec<_> = params.iter().map(|(n, _)| n).collect();
        let decls = params.iter().map(|(n, t)| quote!(#n: #t));
        let erased = params.iter().map(|(n, t)| {
            let span = t.span();
            quote_spanned! {span=> ::hub_runtime::__private::client_arg::<#t>(&#n) }
        });
        let args = if names.is_empty() {
            quote!(&::hub_runtime::__private::NoArgs)
        } else {
            quote!(&[#(#erased),*])
        };
        quote! {
            #(#attrs)*
            #[doc = concat!("Calls `", #wire_name, "` on every connection of this target.")]
            pub async fn #ident(&self, #(#decls),*) -> ::std::result::Result<(), ::hub_runtime::SendError> {
                self.target.send(#wire_name, #args).await
            }
        }
    });
    quote! {
        #proxy_struct

        impl<K: ::hub_runtime::__private::TargetKind> #name<K> {
            #(#methods)*
        }

        /// Client results: only on a target of exactly one connection (`caller()`,
        /// `client(id)`), never on `all()`, a group or a user.
        impl #name<::hub_runtime::One> {
            #(#results)*
        }
    }
}
