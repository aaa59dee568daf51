//! The interface as data: `impl Describe for X { const DESCRIPTOR: HubDescriptor = ... }`, read
//! by renderers outside the macros (see `hub_runtime::descriptor`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

use crate::model::{Interface, Method, ParamKind, Role, Side};
use crate::names::tokens_text;
use crate::types::{self, owned_text, Returns};

/// The `Describe` impl, with the methods that passed validation.
pub(crate) fn render(interface: &Interface) -> TokenStream {
    let krate = &interface.args.krate;
    let d = quote!(#krate::descriptor);
    let target = &interface.target;
    let name = &interface.name;
    let docs = &interface.docs;
    let (role, header) = match interface.side {
        Side::Hub => (quote!(Hub), quote!(impl #d::Describe for #target)),
        Side::Client => (quote!(Client), quote!(impl<__K> #d::Describe for #target<__K>)),
        // A contract has no descriptor: the server's hub and client interface do.
        Side::HubContract | Side::ClientContract => return TokenStream::new(),
    };
    let methods = interface
        .methods
        .iter()
        .filter(|m| m.valid && matches!(m.role, Role::Invocable))
        .map(|m| method(&d, m));
    quote! {
        #[automatically_derived]
        #header {
            const DESCRIPTOR: #d::HubDescriptor = #d::HubDescriptor {
                name: #name,
                role: #d::Role::#role,
                docs: #docs,
                methods: &[#(#methods),*],
            };
        }
    }
}

fn method(d: &TokenStream, method: &Method) -> TokenStream {
    let name = method.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let wire_name = &method.wire_name;
    let docs = &method.docs;
    let params = method.wire_params().map(|p| {
        let name = p.ident.to_string();
        let name = name.strip_prefix("r#").unwrap_or(&name).to_string();
        let (rust_type, kind) = match &p.kind {
            ParamKind::Upload(Some(item)) => (owned_text(item), quote!(Upload)),
            _ => (owned_text(&p.ty), quote!(Argument)),
        };
        let docs = &p.docs;
        quote! {
            #d::ParamDescriptor {
                name: #name,
                rust_type: #rust_type,
                kind: #d::ParamKind::#kind,
                docs: #docs,
            }
        }
    });
    let returns = returns(d, &method.returns);
    quote! {
        #d::MethodDescriptor {
            name: #name,
            wire_name: #wire_name,
            params: &[#(#params),*],
            returns: #returns,
            docs: #docs,
        }
    }
}

/// A stream's item type, without the `Result` of a fallible stream.
fn item_text(item: &Type) -> String {
    if types::is_named(item, "Result") {
        if let Some(ok) = types::type_args(item).first() {
            return owned_text(ok);
        }
    }
    owned_text(item)
}

fn returns(d: &TokenStream, returns: &Returns) -> TokenStream {
    let text = |ty: &Type| tokens_text(quote!(#ty));
    match returns {
        Returns::Unit | Returns::UnitResult { .. } | Returns::Unsupported(_) => quote!(#d::ReturnKind::Unit),
        Returns::Value(ty) | Returns::Result { ok: ty, .. } => {
            let rust_type = text(ty);
            quote!(#d::ReturnKind::Value { rust_type: #rust_type })
        }
        Returns::Stream { item } | Returns::StreamResult { item, .. } => {
            let item_type = item_text(item);
            quote!(#d::ReturnKind::Stream { item_type: #item_type })
        }
        Returns::ClientResult(ty) => {
            let rust_type = text(ty);
            quote!(#d::ReturnKind::ClientResult { rust_type: #rust_type })
        }
    }
}
