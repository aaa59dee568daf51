//! `#[hub_client]`: a trait declaring the client methods a hub may call becomes a family of
//! typed proxies: `Name<K>` with one async method per declaration.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemTrait;

use crate::backend::{conformance, descriptor, handler, proxy, typescript};
use crate::errors::Errors;
use crate::model::{self, Side};
use crate::validate::validate;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = model::parse_args(attr, Side::Client, &mut errors);
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
    let mut interface = model::parse_client(args, &mut item_trait, Side::Client, &mut errors);
    validate(&mut interface, &mut errors);

    // Even with errors, the proxy has every method that passed: a call of one compiles, so the
    // user sees the error at the declaration, not again at every call site.
    let docs: Vec<_> = item_trait
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    let proxy = proxy::render(&interface, &item_trait.vis, &docs);
    let descriptor = descriptor::render(&interface);
    let typescript = typescript::render(&interface);
    // Checked against the contract only without errors: a method left out for its error would
    // be reported again as missing from the contract's impl.
    let conformance = errors.is_empty().then(|| conformance::check(&interface));
    let handler = interface
        .args
        .handler
        .then(|| handler::render(&interface, &syn::Visibility::Inherited));
    let compile_errors = errors.to_compile_errors();
    quote! {
        #proxy
        #descriptor
        #typescript
        #conformance
        #handler
        #compile_errors
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::expand;

    #[test]
    fn every_generated_path_goes_through_crate() {
        let out = expand(
            quote!(crate = "renamed", handler),
            quote! {
                pub trait ChatClient {
                    fn notice(&self, text: &str);
                    fn confirm(&self, question: String) -> bool;
                    fn nothing(&self);
                }
            },
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(!out.contains("hub_runtime"), "{out}");
        // Every generated impl block is marked (`impl Trait` in types does not count).
        let impl_blocks = out.matches("impl").count() - out.matches("impl :: core :: future").count();
        assert_eq!(impl_blocks, out.matches("automatically_derived").count(), "{out}");
        assert!(out.contains("trait ChatClientHandler"), "{out}");
        assert!(out.contains("renamed :: protocol :: contract :: Receiver"), "{out}");
    }

    #[test]
    fn errors_keep_the_methods_that_passed() {
        let out = expand(
            TokenStream::new(),
            quote! {
                trait ChatClient {
                    fn good(&self, text: String);
                    fn bad<T>(&self, value: T);
                    fn answer(&self) -> bool;
                }
            },
        )
        .to_string();
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("pub async fn good"), "{out}");
        assert!(out.contains("pub async fn answer"), "{out}");
        assert!(!out.contains("fn bad"), "{out}");
    }
}
