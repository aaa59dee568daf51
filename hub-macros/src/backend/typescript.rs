//! The TypeScript types of an interface (hub-runtime's `typescript` feature):
//! `impl hub_runtime::typescript::TypeScript for X`, wrapped in `__private::if_typescript!` so
//! that it disappears when hub-runtime is built without the feature. Its bounds (`for<'__ts>
//! T: TS`, one per wire type) are checked only where the impl is used: a hub whose payload
//! types do not implement `ts_rs::TS` merely lacks the impl.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{GenericArgument, PathArguments, Type};

use crate::model::{Interface, Method, ParamKind, Role, Side};
use crate::types::{self, Returns};

/// The impl, with the methods the descriptor lists (same filter, same order).
pub(crate) fn render(interface: &Interface) -> TokenStream {
    let krate = &interface.args.krate;
    let target = &interface.target;
    let ts = quote!(#krate::typescript);
    let ts_trait = quote!(#krate::__private::ts_rs::TS);
    let mut bounds = Vec::new();
    let methods: Vec<TokenStream> = interface
        .methods
        .iter()
        .filter(|m| m.valid && matches!(m.role, Role::Invocable))
        .map(|m| {
            let (params, returns) = wire_types(m);
            bounds.extend(params.iter().chain(&returns).cloned());
            let params = params.iter().map(|ty| quote!(__types.of::<#ty>()));
            let returns = match returns {
                Some(ty) => quote!(::std::option::Option::Some(__types.of::<#ty>())),
                None => quote!(::std::option::Option::None),
            };
            quote! {
                #ts::MethodTypes {
                    params: ::std::vec![#(#params),*],
                    returns: #returns,
                }
            }
        })
        .collect();
    let mut bounds: Vec<TokenStream> = bounds
        .iter()
        .map(|ty| quote!(for<'__ts> #ty: #ts_trait + 'static))
        .collect();
    let (header, client) = match interface.side {
        Side::Hub => {
            let client = match &interface.args.client {
                Some(path) => {
                    bounds.push(quote!(for<'__ts> #path: #ts::TypeScript));
                    quote!(::std::option::Option::Some(::std::boxed::Box::new(
                        <#path as #ts::TypeScript>::typescript(__types)
                    )))
                }
                None => quote!(::std::option::Option::None),
            };
            (quote!(impl #ts::TypeScript for #target), client)
        }
        Side::Client => (
            quote!(impl<__K> #ts::TypeScript for #target<__K>),
            quote!(::std::option::Option::None),
        ),
        // Contracts render no TypeScript: the server's hub does.
        Side::HubContract | Side::ClientContract => return TokenStream::new(),
    };
    quote! {
        #krate::__private::if_typescript! {
            #[automatically_derived]
            #header
            where
                #(#bounds,)*
            {
                fn typescript(__types: &mut #ts::Types) -> #ts::Interface {
                    #ts::Interface {
                        descriptor: <Self as #krate::descriptor::Describe>::DESCRIPTOR,
                        methods: ::std::vec![#(#methods),*],
                        client: #client,
                    }
                }
            }
        }
    }
}

/// The owned types of the wire parameters (an upload's item type) and of the result (a
/// stream's item, without the `Result` of a fallible one).
fn wire_types(method: &Method) -> (Vec<Type>, Option<Type>) {
    let params = method
        .wire_params()
        .map(|p| match &p.kind {
            ParamKind::Upload(Some(item)) => owned(item),
            _ => owned(&p.ty),
        })
        .collect();
    let returns = match &method.returns {
        Returns::Unit | Returns::UnitResult { .. } | Returns::Unsupported(_) => None,
        Returns::Value(ty) | Returns::Result { ok: ty, .. } | Returns::ClientResult(ty) => Some(owned(ty)),
        Returns::Stream { item } | Returns::StreamResult { item, .. } => {
            let ok = match types::type_args(item).first() {
                Some(ok) if types::is_named(item, "Result") => (*ok).clone(),
                _ => (**item).clone(),
            };
            Some(owned(&ok))
        }
    };
    (params, returns)
}

/// A type as a client holds it: `&str` → `String`, `&[T]` → `Vec<T>`, `&T` → `T`, and every
/// lifetime `'static` (the impl has none of the method's lifetimes).
fn owned(ty: &Type) -> Type {
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) if p.path.is_ident("str") => syn::parse_quote!(::std::string::String),
            Type::Slice(s) => {
                let elem = owned(&s.elem);
                syn::parse_quote!(::std::vec::Vec<#elem>)
            }
            elem => owned(elem),
        },
        Type::Group(g) => owned(&g.elem),
        Type::Paren(p) => owned(&p.elem),
        Type::Slice(s) => {
            let elem = owned(&s.elem);
            syn::parse_quote!([#elem])
        }
        Type::Array(a) => {
            let mut a = a.clone();
            *a.elem = owned(&a.elem);
            Type::Array(a)
        }
        Type::Tuple(t) => {
            let mut t = t.clone();
            for elem in t.elems.iter_mut() {
                *elem = owned(elem);
            }
            Type::Tuple(t)
        }
        Type::Path(p) => {
            let mut p = p.clone();
            for segment in p.path.segments.iter_mut() {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in args.args.iter_mut() {
                        match arg {
                            GenericArgument::Lifetime(l) => *l = syn::parse_quote!('static),
                            GenericArgument::Type(t) => *t = owned(t),
                            _ => {}
                        }
                    }
                }
            }
            Type::Path(p)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::Type;

    use super::owned;

    fn text(ty: Type) -> String {
        quote!(#ty).to_string().replace(' ', "")
    }

    #[test]
    fn borrowed_types_become_owned_and_static() {
        assert_eq!(text(owned(&syn::parse_quote!(&'a str))), "::std::string::String");
        assert_eq!(
            text(owned(&syn::parse_quote!(&[&str]))),
            "::std::vec::Vec<::std::string::String>"
        );
        assert_eq!(text(owned(&syn::parse_quote!(Cow<'a, str>))), "Cow<'static,str>");
        assert_eq!(text(owned(&syn::parse_quote!(Option<&'a Item>))), "Option<Item>");
        assert_eq!(
            text(owned(&syn::parse_quote!((u8, &str)))),
            "(u8,::std::string::String)"
        );
    }
}
