//! `#[hub_contract]` and `#[hub_client_contract]`: a trait declaring a hub's methods, or its
//! client methods, in a crate of its own becomes the contract's marker trait (checked against
//! the server by `#[hub(contract = ...)]` / `#[hub_client(contract = ...)]`) plus what clients
//! use: the proxy `NameProxy<C>` for a hub, the handler trait `NameHandler` for a client
//! interface.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemTrait;

use crate::backend::{caller, conformance, handler};
use crate::errors::Errors;
use crate::model::{self, Side};
use crate::validate::validate;

pub(crate) fn expand(attr: TokenStream, item: TokenStream, side: Side) -> TokenStream {
    let mut errors = Errors::default();
    let args = model::parse_args(attr, side, &mut errors);
    let mut item_trait: ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        Err(_) => {
            let usage = match side {
                Side::HubContract => "`#[hub_contract]` goes on a trait declaring a hub's methods: `#[hub_contract] pub trait Chat { fn send(&self, text: String); }`",
                _ => "`#[hub_client_contract]` goes on a trait declaring client methods: `#[hub_client_contract] pub trait ChatClient { fn receive(&self, text: String); }`",
            };
            let e = syn::Error::new(Span::call_site(), usage).to_compile_error();
            return quote! { #item #e };
        }
    };
    let mut interface = match side {
        Side::HubContract => model::parse_hub_contract(args, &mut item_trait, &mut errors),
        _ => model::parse_client(args, &mut item_trait, Side::ClientContract, &mut errors),
    };
    validate(&mut interface, &mut errors);

    // With errors, the methods that passed are still generated: the rest of the crate
    // compiles and each mistake is reported once, at its declaration.
    // The trait's own attributes (docs, `#[allow]`, `#[cfg]`) stay on the marker trait.
    let docs: Vec<_> = item_trait.attrs.clone();
    let vis = &item_trait.vis;
    let marker = conformance::contract_trait(&interface, vis, &docs);
    let client_side = match side {
        Side::HubContract => caller::render(&interface, vis),
        _ => handler::render(&interface, vis),
    };
    let compile_errors = errors.to_compile_errors();
    quote! {
        #marker
        #client_side
        #compile_errors
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::expand;
    use crate::model::Side;

    #[test]
    fn every_generated_path_goes_through_crate() {
        for side in [Side::HubContract, Side::ClientContract] {
            let out = expand(
                quote!(crate = "renamed"),
                quote! {
                    pub trait Chat {
                        fn send(&self, user: String, text: String);
                        fn history(&self, count: u32) -> Vec<String>;
                    }
                },
                side,
            )
            .to_string();
            assert!(!out.contains("compile_error"), "{out}");
            assert!(!out.contains("hub_protocol"), "{out}");
            assert!(out.contains("renamed :: contract"), "{out}");
        }
    }

    #[test]
    fn errors_keep_the_methods_that_passed() {
        let out = expand(
            quote!(),
            quote! {
                pub trait Chat {
                    fn good(&self, text: String) -> u32;
                    fn bad(&self, text: &str);
                    async fn worse(&self);
                }
            },
            Side::HubContract,
        )
        .to_string();
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(out.contains("pub async fn good"), "{out}");
        assert!(!out.contains("fn bad"), "{out}");
        assert!(!out.contains("fn worse"), "{out}");
    }
}
