//! `#[hub]`: parse the impl block into the model, validate it, generate the router and the
//! descriptor.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemImpl;

use crate::backend::{caller, conformance, descriptor, router, typescript};
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
    if interface.args.proxy && caller::generated_ident(&interface.name, "Proxy").is_none() {
        errors.spanned(
            &block.self_ty,
            "`proxy` names the proxy after the hub type (`ChatProxy` for `Chat`): it needs a hub type named by one identifier",
        );
    }

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
    let typescript = implementable.then(|| typescript::render(&interface));
    let conformance = implementable.then(|| conformance::check(&interface));
    let proxy =
        (implementable && interface.args.proxy).then(|| caller::render(&interface, &syn::Visibility::Inherited));
    quote! {
        #block
        #router
        #descriptor
        #typescript
        #conformance
        #proxy
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::expand;

    #[test]
    fn every_generated_path_goes_through_crate() {
        let out = expand(
            quote!(
                crate = "renamed",
                client = NoticeClient,
                authorize(policy = staff),
                proxy
            ),
            quote! {
                impl Chat {
                    async fn echo(&self, cx: &HubContext<Self>, text: String) -> Result<String, MyError> { Ok(text) }
                    fn count(&self) -> impl Stream<Item = Result<u8, HubError>> { todo!() }
                    fn upload(&self, lines: ClientStream<String>) {}
                    #[hub(authorize(role = "admin", claim = "scope", value = "write"))]
                    fn guarded(&self) -> Result<(), HubError> { Ok(()) }
                    #[hub(on_connected)]
                    fn hello(&self, cx: &HubContext<Self>) -> Result<(), HubError> { Ok(()) }
                    #[hub(on_disconnected)]
                    fn bye(&self, error: Option<ConnectionError>) {}
                }
            },
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(!out.contains("hub_runtime"), "{out}");
        assert!(out.contains("renamed :: Hub for Chat"), "{out}");
        assert!(out.contains("renamed :: descriptor :: Describe for Chat"), "{out}");
        // Four generated impls (router, descriptor, TypeScript types, the proxy), all marked.
        assert_eq!(out.matches("automatically_derived").count(), 4, "{out}");
        assert!(out.contains("struct ChatProxy"), "{out}");
        // A fallible stream's items are its `Ok` type on the wire, and in the proxy.
        assert!(out.contains("Stream < u8 >"), "{out}");
    }

    #[test]
    fn arguments_are_let_go_once_bound_before_the_method_runs() {
        let out = expand(
            quote!(),
            quote! {
                impl Chat {
                    async fn wait(&self, a: String, b: i32) {}
                    fn none(&self) {}
                }
            },
        )
        .to_string();
        // Once, after both arguments (in the arm of `wait`; `none` has nothing to let go of).
        assert_eq!(out.matches("arguments_bound").count(), 1, "{out}");
        let bound = out.find("arguments_bound").unwrap();
        let last_arg = out.rfind("__call . arg :: < i32 >").unwrap();
        let call = out.find("self . wait (").unwrap();
        assert!(last_arg < bound && bound < call, "{out}");
    }

    #[test]
    fn errors_keep_a_stub_and_the_descriptor() {
        let out = expand(
            quote!(crate = "renamed"),
            quote! { impl Chat { fn a(self) {} fn b(&self) {} } },
        )
        .to_string();
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("renamed :: Hub for Chat"), "{out}");
        assert!(out.contains("wire_name : \"B\""), "{out}");
        assert!(!out.contains("wire_name : \"A\""), "{out}");
    }
}
