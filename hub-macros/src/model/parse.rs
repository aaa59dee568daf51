//! From a `#[hub]` impl block or a `#[hub_client]` trait to the model. Lenient: it records what
//! is written and leaves the judging to `validate`; it only takes out what Rust would reject in
//! the re-emitted item (`#[hub(...)]` on methods, doc comments on parameters).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ItemImpl, ItemTrait, Pat, ReturnType, Signature, TraitItem, Type};

use super::{doc_text, Args, Interface, Method, Param, ParamKind, Role, ShapeError, Side};
use crate::attrs::{self, Context, MethodAttrs};
use crate::errors::Errors;
use crate::names::{pascal_case, tokens_text};
use crate::types::{self, Returns};

/// Reads a hub impl block; takes the `#[hub(...)]` attributes out of it.
pub(crate) fn parse_hub(args: Args, block: &mut ItemImpl) -> Interface {
    let mut shape = Vec::new();
    if let Some((trait_path, _)) = &block.trait_ {
        shape.push(ShapeError {
            tokens: trait_path.to_token_stream(),
            message: "`#[hub]` goes on an inherent impl block (`impl MyHub { ... }`), not on a trait impl",
        });
    }
    if !block.generics.params.is_empty() {
        shape.push(ShapeError {
            tokens: block.generics.to_token_stream(),
            message: "a hub type cannot be generic: one hub value serves every connection of its path",
        });
    }
    let self_ty = &block.self_ty;
    let name = types::last_segment(self_ty)
        .map(|s| s.ident.to_string())
        .unwrap_or_else(|| tokens_text(quote!(#self_ty)));
    let mut methods = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        let method_attrs = attrs::take_method_attrs(&mut function.attrs, Context::HubMethod);
        let role = if method_attrs.skip {
            Role::Skipped
        } else if method_attrs.on_connected.is_some() || method_attrs.on_disconnected.is_some() {
            Role::Hook
        } else {
            Role::Invocable
        };
        let returns = match types::classify_return(&function.sig.output) {
            Ok(returns) => returns,
            Err(ty) => Returns::Unsupported(Box::new(ty.clone())),
        };
        let params = parse_params(&mut function.sig, Side::Hub);
        methods.push(method(
            &function.attrs,
            &function.sig,
            method_attrs,
            role,
            params,
            returns,
            None,
        ));
    }
    Interface {
        side: Side::Hub,
        args,
        target: quote!(#self_ty),
        name,
        docs: doc_text(&block.attrs),
        shape,
        methods,
    }
}

/// Reads a client trait (`side` is `Client` or `ClientContract`); takes the `#[hub(...)]`
/// attributes out of it. Items that are not methods are reported here.
pub(crate) fn parse_client(args: Args, item_trait: &mut ItemTrait, side: Side, errors: &mut Errors) -> Interface {
    parse_trait(args, item_trait, side, errors)
}

/// Reads a hub contract trait: methods as on a hub, without the context, with uploads written
/// `impl Stream<Item = T>`.
pub(crate) fn parse_hub_contract(args: Args, item_trait: &mut ItemTrait, errors: &mut Errors) -> Interface {
    parse_trait(args, item_trait, Side::HubContract, errors)
}

fn parse_trait(args: Args, item_trait: &mut ItemTrait, side: Side, errors: &mut Errors) -> Interface {
    let what = match side {
        Side::Client => "a client interface",
        _ => "a contract",
    };
    let mut shape = Vec::new();
    if !item_trait.generics.params.is_empty() {
        shape.push(ShapeError {
            tokens: item_trait.generics.to_token_stream(),
            message: if side == Side::Client {
                "a client interface cannot be generic"
            } else {
                "a contract cannot be generic"
            },
        });
    }
    if !item_trait.supertraits.is_empty() {
        shape.push(ShapeError {
            tokens: item_trait.supertraits.to_token_stream(),
            message: if side == Side::Client {
                "a client interface cannot have supertraits"
            } else {
                "a contract cannot have supertraits"
            },
        });
    }
    let mut methods = Vec::new();
    for item in &mut item_trait.items {
        let TraitItem::Fn(function) = item else {
            errors.spanned(&*item, format!("{what} declares only methods (`fn name(&self, ...);`)"));
            continue;
        };
        let method_attrs = attrs::take_method_attrs(&mut function.attrs, Context::ClientMethod);
        let returns = match (&function.sig.output, side) {
            (output, Side::HubContract) => {
                types::classify_return(output).unwrap_or_else(|ty| Returns::Unsupported(Box::new(ty.clone())))
            }
            (ReturnType::Type(_, ty), _) if !types::is_unit(ty) => Returns::ClientResult(ty.clone()),
            _ => Returns::Unit,
        };
        let params = parse_params(&mut function.sig, side);
        let body = function.default.as_ref().map(ToTokens::to_token_stream);
        methods.push(method(
            &function.attrs,
            &function.sig,
            method_attrs,
            Role::Invocable,
            params,
            returns,
            body,
        ));
    }
    let ident = &item_trait.ident;
    Interface {
        side,
        args,
        target: quote!(#ident),
        name: ident.to_string(),
        docs: doc_text(&item_trait.attrs),
        shape,
        methods,
    }
}

fn method(
    attrs: &[syn::Attribute],
    sig: &Signature,
    method_attrs: MethodAttrs,
    role: Role,
    params: Vec<Param>,
    returns: Returns,
    body: Option<TokenStream>,
) -> Method {
    let wire_name = method_attrs
        .name
        .as_ref()
        .map(|n| n.value())
        .unwrap_or_else(|| pascal_case(&sig.ident.to_string()));
    let wire_span = method_attrs
        .name
        .as_ref()
        .map(|n| n.span())
        .unwrap_or_else(|| sig.ident.span());
    let doc_attrs: Vec<_> = attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    Method {
        ident: sig.ident.clone(),
        wire_name,
        wire_span,
        role,
        attrs: method_attrs,
        docs: doc_text(&doc_attrs),
        doc_attrs,
        sig: sig.clone(),
        body,
        is_async: sig.asyncness.is_some(),
        params,
        returns,
        valid: false,
    }
}

/// The parameters after the receiver, with their doc comments taken out of the signature.
fn parse_params(sig: &mut Signature, side: Side) -> Vec<Param> {
    let mut params = Vec::new();
    // The first input is the receiver (or, without one, what `validate` reports in its place).
    for input in sig.inputs.iter_mut().skip(1) {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let docs = doc_text(&pat_type.attrs);
        pat_type.attrs.retain(|a| !a.path().is_ident("doc"));
        let ident = match &*pat_type.pat {
            Pat::Ident(p) => p.ident.clone(),
            _ => format_ident!("arg{}", params.len(), span = pat_type.pat.span()),
        };
        let ty = &*pat_type.ty;
        let kind = match (side, ty) {
            (Side::Client | Side::ClientContract, _) => ParamKind::Argument,
            (Side::HubContract, _) => match types::stream_item(ty) {
                Some(item) => ParamKind::Upload(Some(Box::new(item))),
                None => ParamKind::Argument,
            },
            (Side::Hub, Type::Reference(r)) if is_context(&r.elem) => ParamKind::Context,
            (Side::Hub, _) if is_context(ty) => ParamKind::ContextByValue,
            (Side::Hub, _) if types::is_named(ty, "CancellationToken") => ParamKind::Cancellation,
            (Side::Hub, _) if types::is_named(ty, "ClientStream") => {
                ParamKind::Upload(types::type_args(ty).first().map(|item| Box::new((*item).clone())))
            }
            (Side::Hub, _) => ParamKind::Argument,
        };
        params.push(Param {
            ident,
            ty: pat_type.ty.clone(),
            kind,
            docs,
        });
    }
    params
}

fn is_context(ty: &Type) -> bool {
    types::is_named(ty, "HubContext")
}
