//! `#[hub_client_contract]`'s trait for clients: `NameHandler`, one async method per client
//! method (a client result returns its value), and `register`, which routes the server's calls
//! to it on any `hub_protocol::contract::Receiver` (hub-client's `HubConnection`).

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Visibility;

use crate::model::{Interface, Method};
use crate::types::Returns;

/// The handler trait.
pub(crate) fn render(interface: &Interface, vis: &Visibility) -> TokenStream {
    let krate = &interface.args.krate;
    let contract = quote!(#krate::contract);
    let private = quote!(#contract::__private);
    let handler = syn::Ident::new(&format!("{}Handler", interface.name), Span::call_site());
    let doc = format!(
        "What a client does when the hub calls it (the contract [`{}`]): implement it with `async fn`s, then `register` it on the connection.",
        interface.name
    );
    let valid: Vec<&Method> = interface.methods.iter().filter(|m| m.valid).collect();
    let declarations = valid.iter().map(|m| declaration(m));
    let registrations = valid.iter().map(|m| registration(&contract, &private, m));
    quote! {
        #[doc = #doc]
        #vis trait #handler: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#declarations)*

            /// Routes the hub's calls of these methods to `self` on `receiver` (a
            /// `hub_client::HubConnection`). A call whose arguments do not decode is logged
            /// and dropped; for a client result, its error goes back to the hub.
            fn register<R: #contract::Receiver>(self, receiver: &R)
            where
                Self: ::core::marker::Sized,
            {
                let this = #private::Arc::new(self);
                #(#registrations)*
                let _ = this;
            }
        }
    }
}

fn declaration(method: &Method) -> TokenStream {
    let Method { ident, doc_attrs, .. } = method;
    let params = method.params.iter().map(|p| {
        let (name, ty) = (&p.ident, &p.ty);
        quote!(#name: #ty)
    });
    let output = match &method.returns {
        Returns::ClientResult(ty) => quote!(#ty),
        _ => quote!(()),
    };
    quote! {
        #(#doc_attrs)*
        fn #ident(&self, #(#params),*) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
    }
}

fn registration(contract: &TokenStream, private: &TokenStream, method: &Method) -> TokenStream {
    let Method { ident, wire_name, .. } = method;
    let names: Vec<&syn::Ident> = method.params.iter().map(|p| &p.ident).collect();
    let indexes = 0..names.len();
    let types = method.params.iter().map(|p| &p.ty);
    match &method.returns {
        Returns::ClientResult(_) => quote! {
            {
                let this = this.clone();
                #contract::Receiver::on_result(receiver, #wire_name, move |args| {
                    let this = this.clone();
                    async move {
                        #(let #names: #types = #private::Arguments::get(&args, #indexes)?;)*
                        ::core::result::Result::Ok(this.#ident(#(#names),*).await)
                    }
                });
            }
        },
        _ => quote! {
            {
                let this = this.clone();
                #contract::Receiver::on(receiver, #wire_name, move |args| {
                    let this = this.clone();
                    async move {
                        #(
                            let #names: #types = match #private::Arguments::get(&args, #indexes) {
                                ::core::result::Result::Ok(value) => value,
                                ::core::result::Result::Err(error) => {
                                    #private::argument_error(#wire_name, &error);
                                    return;
                                }
                            };
                        )*
                        this.#ident(#(#names),*).await
                    }
                });
            }
        },
    }
}
