//! `#[hub]`: parse the impl block into the model, validate it, generate the router and the
//! descriptor.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemImpl;

use crate::backend::{descriptor, router};
use crate::errors::Errors;
use crate::model::{self, Side};
use crate::validate::validate;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = model::parse_args(attr, Side::Hub, &mut errors);
    let mut block: ItemImpl = match syn::parse2(item.clone()) {
        Ok(block) => block,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "`#[hub]` goes on an impl block: `#[hub] impl MyHub { fn echo(&self, message: String) -> String { message } }`",
            );
            let e = e.to_compile_error();
            return quote! { #item #e };
        }
    };
    let mut interface = model::parse_hub(args, &mut block);
    validate(&mut interface, &mut errors);

    // Impls for the hub type only when it is one (not generic, not a trait impl): otherwise
    // they would add errors of their own.
    let implementable = block.generics.params.is_empty() && block.trait_.is_none();
    let descriptor = implementable.then(|| descriptor::render(&interface));
    if !errors.is_empty() {
        // The errors, plus a stub so the rest of the crate still compiles.
        let compile_errors = errors.to_compile_errors();
        let stub = implementable.then(|| router::stub(&interface));
        return quote! { #block #compile_errors #stub #descriptor };
    }
    let router = router::render(&interface);
    quote! {
        #block
        #router
        #descriptor
    }
}
