//! `#[hub_contract]`'s proxy for clients: `NameProxy<C>`, one method per contract method,
//! calling through any `hub_protocol::contract::Caller` (hub-client's `HubConnection`).

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Visibility;

use crate::model::{Interface, Method, ParamKind};
use crate::types::Returns;

/// The proxy struct and its impl.
pub(crate) fn render(interface: &Interface, vis: &Visibility) -> TokenStream {
    let krate = &interface.args.krate;
    let contract = quote!(#krate::contract);
    let proxy = syn::Ident::new(&format!("{}Proxy", interface.name), Span::call_site());
    let doc = format!(
        "Calls the hub of the contract [`{}`] through a connection: one async method per hub method, with its argument and result types.",
        interface.name
    );
    let methods = interface
        .methods
        .iter()
        .filter(|m| m.valid)
        .map(|m| method(krate, &contract, m));
    quote! {
        #[doc = #doc]
        ///
        /// `C` is the connection: a `hub_client::HubConnection`, or a reference to one.
        #[derive(Debug, Clone)]
        #vis struct #proxy<C> {
            caller: C,
        }

        #[automatically_derived]
        impl<C: #contract::Caller> #proxy<C> {
            /// A proxy calling through `caller`.
            pub fn new(caller: C) -> Self {
                #proxy { caller }
            }

            /// The connection the proxy calls through.
            pub fn caller(&self) -> &C {
                &self.caller
            }

            #(#methods)*
        }
    }
}

fn method(krate: &syn::Path, contract: &TokenStream, method: &Method) -> TokenStream {
    let Method {
        ident,
        wire_name,
        doc_attrs,
        ..
    } = method;
    let mut params = Vec::new();
    let mut args = Vec::new();
    let mut uploads = Vec::new();
    for param in &method.params {
        let (name, ty) = (&param.ident, &param.ty);
        match &param.kind {
            ParamKind::Upload(Some(item)) => {
                params.push(quote!(#name: impl #contract::Stream<Item = #item> + ::core::marker::Send + 'static));
                uploads.push(quote!(<C as #contract::Caller>::upload(#name)));
            }
            _ => {
                params.push(quote!(#name: #ty));
                args.push(quote!(#name));
            }
        }
    }
    let args = if args.is_empty() {
        quote!(#krate::NoArgs)
    } else {
        quote!((#(#args,)*))
    };
    let uploads = quote!(::std::vec![#(#uploads),*]);
    match &method.returns {
        Returns::Stream { item } | Returns::StreamResult { item, .. } => quote! {
            #(#doc_attrs)*
            ///
            /// A server-to-client stream: drop it to cancel the stream on the server.
            pub fn #ident(&self, #(#params),*) -> <C as #contract::Caller>::Stream<#item> {
                <C as #contract::Caller>::stream(&self.caller, #wire_name, #args, #uploads)
            }
        },
        returns => {
            let result = match returns {
                Returns::Result { ok: ty, .. } | Returns::Value(ty) | Returns::ClientResult(ty) => quote!(#ty),
                _ => quote!(()),
            };
            quote! {
                #(#doc_attrs)*
                pub async fn #ident(&self, #(#params),*) -> ::core::result::Result<#result, <C as #contract::Caller>::Error> {
                    <C as #contract::Caller>::invoke(&self.caller, #wire_name, #args, #uploads).await
                }
            }
        }
    }
}
