//! Recognizing the types the macros treat specially.

use syn::{GenericArgument, PathArguments, ReturnType, Type};

use crate::names::tokens_text;

/// The last path segment's name of a type, if it is a path.
pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

pub(crate) fn is_named(ty: &Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == name)
}

/// The type arguments of the last path segment.
pub(crate) fn type_args(ty: &Type) -> Vec<&Type> {
    match last_segment(ty).map(|s| &s.arguments) {
        Some(PathArguments::AngleBracketed(args)) => args
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// The item type of a stream type: `impl Stream<Item = T>`, `Pin<Box<dyn Stream<Item = T> + Send>>`,
/// `BoxStream<'_, T>`.
pub(crate) fn stream_item(ty: &Type) -> Option<Type> {
    fn from_bounds<'a>(bounds: impl Iterator<Item = &'a syn::TypeParamBound>) -> Option<Type> {
        for bound in bounds {
            let syn::TypeParamBound::Trait(t) = bound else { continue };
            let Some(segment) = t.path.segments.last() else {
                continue;
            };
            if segment.ident != "Stream" {
                continue;
            }
            if let PathArguments::AngleBracketed(args) = &segment.arguments {
                for arg in &args.args {
                    if let GenericArgument::AssocType(assoc) = arg {
                        if assoc.ident == "Item" {
                            return Some(assoc.ty.clone());
                        }
                    }
                }
            }
        }
        None
    }
    match ty {
        Type::ImplTrait(t) => from_bounds(t.bounds.iter()),
        Type::TraitObject(t) => from_bounds(t.bounds.iter()),
        Type::Paren(p) => stream_item(&p.elem),
        Type::Group(g) => stream_item(&g.elem),
        _ => {
            let segment = last_segment(ty)?;
            if segment.ident == "BoxStream" {
                return type_args(ty).first().map(|t| (*t).clone());
            }
            if segment.ident == "Pin" || segment.ident == "Box" {
                return type_args(ty).first().and_then(|t| stream_item(t));
            }
            None
        }
    }
}

/// A stream's item as it travels: `T` for items `Result<T, E>` (an `Err` ends the stream with
/// an error), the item itself otherwise.
pub(crate) fn wire_item(item: &Type) -> &Type {
    if is_named(item, "Result") {
        if let Some(ok) = type_args(item).first() {
            return ok;
        }
    }
    item
}

/// How a method returns.
pub(crate) enum Returns {
    /// A stream of items (a streaming method).
    Stream { item: Box<Type> },
    /// `Result<stream, E>`: a streaming method that may fail before its first item.
    StreamResult { item: Box<Type>, error: Option<Box<Type>> },
    /// Nothing (`()` or no return type).
    Unit,
    /// `Result<(), E>`.
    UnitResult { error: Option<Box<Type>> },
    /// `Result<T, E>`.
    Result { ok: Box<Type>, error: Option<Box<Type>> },
    /// A plain value.
    Value(Box<Type>),
    /// A client method's result type (`#[hub_client]` only).
    ClientResult(Box<Type>),
    /// An `impl Trait` a hub method cannot return (an error).
    Unsupported(Box<Type>),
}

/// Classifies a return type; `Err` carries the offending type for `impl Trait`.
pub(crate) fn classify_return(output: &ReturnType) -> Result<Returns, &Type> {
    let ty = match output {
        ReturnType::Default => return Ok(Returns::Unit),
        ReturnType::Type(_, ty) => &**ty,
    };
    if is_unit(ty) {
        return Ok(Returns::Unit);
    }
    if let Some(item) = stream_item(ty) {
        return Ok(Returns::Stream { item: Box::new(item) });
    }
    if is_named(ty, "Result") {
        let args = type_args(ty);
        if let Some(item) = args.first().and_then(|ok| stream_item(ok)) {
            let error = args.get(1).map(|e| Box::new((*e).clone()));
            return Ok(Returns::StreamResult {
                item: Box::new(item),
                error,
            });
        }
    }
    if let Type::ImplTrait(_) = ty {
        return Err(ty);
    }
    if is_named(ty, "Result") {
        let args = type_args(ty);
        if let [ok, error] = args.as_slice() {
            if is_unit(ok) {
                return Ok(Returns::UnitResult {
                    error: Some(Box::new((*error).clone())),
                });
            }
            return Ok(Returns::Result {
                ok: Box::new((*ok).clone()),
                error: Some(Box::new((*error).clone())),
            });
        }
        if let [ok] = args.as_slice() {
            // A `Result<T>` alias with its own error type (io::Result, anyhow-style).
            if is_unit(ok) {
                return Ok(Returns::UnitResult { error: None });
            }
            return Ok(Returns::Result {
                ok: Box::new((*ok).clone()),
                error: None,
            });
        }
    }
    Ok(Returns::Value(Box::new(ty.clone())))
}

/// A type as a client holds it, as text: borrowed types in their owned form (`&str` → `String`,
/// `&[T]` → `Vec<T>`, `&T` → `T`).
pub(crate) fn owned_text(ty: &Type) -> String {
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) if p.path.is_ident("str") => "String".into(),
            Type::Slice(s) => format!("Vec<{}>", owned_text(&s.elem)),
            elem => owned_text(elem),
        },
        Type::Group(g) => owned_text(&g.elem),
        other => tokens_text(quote::quote!(#other)),
    }
}

/// A borrowed type's owned counterpart, for hints.
pub(crate) fn owned_hint(elem: &Type) -> String {
    match elem {
        Type::Path(p) if p.path.is_ident("str") => "String".into(),
        Type::Slice(s) => {
            let elem = &s.elem;
            format!("Vec<{}>", quote::quote!(#elem).to_string().replace(' ', ""))
        }
        other => quote::quote!(#other).to_string().replace(' ', ""),
    }
}

/// A type as the contract has it: borrowed types in their owned forms, at any depth
/// (`&str` → `String`, `Option<&[u8]>` → `Option<Vec<u8>>`, `&Point` → `Point`).
pub(crate) fn owned_type(ty: &Type) -> proc_macro2::TokenStream {
    use quote::quote;
    match ty {
        // `str` and slices by name; any other `&T` is `T` (no `ToOwned`, which needs `Clone`).
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) if p.path.is_ident("str") => quote!(::std::string::String),
            Type::Slice(slice) => {
                let elem = owned_type(&slice.elem);
                quote!(::std::vec::Vec<#elem>)
            }
            elem => owned_type(elem),
        },
        Type::Group(g) => owned_type(&g.elem),
        Type::Paren(p) => owned_type(&p.elem),
        Type::Tuple(t) => {
            let elems = t.elems.iter().map(owned_type);
            quote!((#(#elems,)*))
        }
        Type::Array(a) => {
            let (elem, len) = (owned_type(&a.elem), &a.len);
            quote!([#elem; #len])
        }
        Type::Path(p) if p.qself.is_none() => {
            let mut path = p.path.clone();
            let mut changed = false;
            for segment in &mut path.segments {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(inner) = arg {
                            if contains_reference(inner) {
                                let owned = owned_type(inner);
                                *inner = Type::Verbatim(owned);
                                changed = true;
                            }
                        }
                    }
                }
            }
            if changed {
                quote!(#path)
            } else {
                quote!(#ty)
            }
        }
        other => quote!(#other),
    }
}

fn contains_reference(ty: &Type) -> bool {
    match ty {
        Type::Reference(_) => true,
        Type::Group(g) => contains_reference(&g.elem),
        Type::Paren(p) => contains_reference(&p.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_reference),
        Type::Array(a) => contains_reference(&a.elem),
        Type::Path(p) => p.path.segments.iter().any(|s| match &s.arguments {
            PathArguments::AngleBracketed(args) => args
                .args
                .iter()
                .any(|a| matches!(a, GenericArgument::Type(t) if contains_reference(t))),
            _ => false,
        }),
        _ => false,
    }
}
