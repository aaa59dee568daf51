//! The rules of both macros, checked once over the model: every error is collected with its
//! span, and each method is marked valid or not (the back ends generate only valid methods).

use std::collections::HashMap;

use quote::quote;
use syn::{FnArg, ReceiverKind, Type};

use crate::errors::Errors;
use crate::model::{HookKind, Interface, Method, ParamKind, Role, Side};
use crate::types::{self, Returns};

/// Checks the interface and marks its valid methods.
pub(crate) fn validate(interface: &mut Interface, errors: &mut Errors) {
    for shape in &interface.shape {
        errors.spanned(&shape.tokens, shape.message);
    }
    // Wire name (lowercase) → the Rust name that has it.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut hooks: Vec<HookKind> = Vec::new();
    for method in &mut interface.methods {
        for error in std::mem::take(&mut method.attrs.errors) {
            errors.push(error);
        }
        method.valid = match (interface.side, &method.role) {
            (Side::Client, _) => {
                check_collision(method, Side::Client, &mut seen, errors);
                client_method(method, errors)
            }
            (Side::ClientContract, _) => {
                check_collision(method, Side::Client, &mut seen, errors);
                client_method(method, errors) & owned_params(method, errors)
            }
            (Side::HubContract, _) => {
                check_collision(method, Side::HubContract, &mut seen, errors);
                hub_contract_method(method, errors)
            }
            (Side::Hub, Role::Skipped) => {
                if let Some(span) = method.attrs.authorize_span {
                    errors.at(
                        span,
                        "a `skip` method cannot be called by clients, so `authorize` has nothing to guard; remove one of them",
                    );
                }
                false
            }
            (Side::Hub, Role::Hook) => hook(method, &mut hooks, errors),
            (Side::Hub, Role::Invocable) => {
                check_collision(method, Side::Hub, &mut seen, errors);
                hub_method(method, errors)
            }
        };
    }
    reserved_names(interface, errors);
}

/// Method names the generated client items have themselves: a proxy's `new` and `caller`, a
/// handler trait's `register`.
fn reserved_names(interface: &mut Interface, errors: &mut Errors) {
    let (names, owner): (&[&str], &str) = match interface.side {
        Side::HubContract => (&["new", "caller"], "proxy"),
        Side::Hub if interface.args.proxy => (&["new", "caller"], "proxy"),
        Side::ClientContract => (&["register"], "handler trait"),
        Side::Client if interface.args.handler => (&["register"], "handler trait"),
        _ => return,
    };
    for method in interface
        .methods
        .iter_mut()
        .filter(|m| m.valid && matches!(m.role, Role::Invocable))
    {
        let name = method.ident.to_string();
        if names.contains(&name.as_str()) {
            errors.spanned(
                &method.ident,
                format!(
                    "`{name}` is a method of the generated {owner} itself: rename the Rust method and keep its wire name with `#[hub(name = \"{}\")]`",
                    method.wire_name
                ),
            );
            method.valid = false;
        }
    }
}

/// Wire names are matched case-insensitively, so two that differ only in case collide.
fn check_collision(method: &Method, side: Side, seen: &mut HashMap<String, String>, errors: &mut Errors) {
    let key = method.wire_name.to_lowercase();
    let Some(other) = seen.get(&key) else {
        seen.insert(key, method.ident.to_string());
        return;
    };
    let wire_name = &method.wire_name;
    let rust_name = &method.ident;
    let message = match side {
        Side::Hub => format!(
            "two hub methods have the wire name `{wire_name}` (`{other}` and `{rust_name}`): clients call methods by name, case-insensitively; rename one with `#[hub(name = \"...\")]`"
        ),
        Side::HubContract => format!(
            "two contract methods have the wire name `{wire_name}` (`{other}` and `{rust_name}`): clients call methods by name, case-insensitively; rename one with `#[hub(name = \"...\")]`"
        ),
        Side::Client | Side::ClientContract => format!(
            "two client methods have the wire name `{wire_name}` (`{other}` and `{rust_name}`): clients match handler names case-insensitively"
        ),
    };
    errors.at(method.wire_span, message);
}

fn hook(method: &Method, hooks: &mut Vec<HookKind>, errors: &mut Errors) -> bool {
    let attrs = &method.attrs;
    if let Some(span) = attrs.authorize_span {
        errors.at(
            span,
            "`authorize` goes on hub methods that clients call, not on `on_connected` or `on_disconnected`; to admit only authorized connections, put it on the impl block: `#[hub(authorize)]`",
        );
    }
    if let (Some(span), Some(_)) = (attrs.on_connected, attrs.on_disconnected) {
        errors.at(span, "a method cannot be both `on_connected` and `on_disconnected`");
        return false;
    }
    let Some(kind) = method.hook_kind() else {
        return false;
    };
    if !hook_signature(method, kind, errors) {
        return false;
    }
    if hooks.contains(&kind) {
        errors.spanned(
            &method.ident,
            "a hub has at most one `on_connected` and one `on_disconnected` method",
        );
        return false;
    }
    hooks.push(kind);
    true
}

fn receiver_ok(method: &Method, what: &str, errors: &mut Errors) -> bool {
    match method.sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.mutability.is_none() && matches!(r.kind, ReceiverKind::Reference(_, _, None)) => {
            true
        }
        Some(FnArg::Receiver(r)) if matches!(r.kind, ReceiverKind::Reference(_, _, Some(_))) => {
            errors.spanned(r, format!("{what} take `&self`, not `&mut self`: one hub value serves every connection at once; keep mutable state in fields with interior mutability (a `Mutex`, an atomic) or per connection in `cx.items()`"));
            false
        }
        Some(FnArg::Receiver(r)) => {
            errors.spanned(
                r,
                format!(
                    "{what} take `&self`: one hub value serves every connection, so it cannot be moved into one call"
                ),
            );
            false
        }
        _ => {
            errors.spanned(&method.ident, format!("{what} take `&self` as their first parameter (associated functions without `self` cannot be called by clients; mark helpers with `#[hub(skip)]`)"));
            false
        }
    }
}

fn check_signature_shape(method: &Method, errors: &mut Errors) -> bool {
    let sig = &method.sig;
    let mut ok = true;
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "hub methods cannot be generic: clients call them by name, so every parameter needs one concrete type",
        );
        ok = false;
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        errors.spanned(unsafety, "hub methods cannot be `unsafe`");
        ok = false;
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "hub methods cannot be variadic");
        ok = false;
    }
    ok
}

fn hub_method(method: &Method, errors: &mut Errors) -> bool {
    let mut ok = receiver_ok(method, "hub methods", errors);
    ok &= check_signature_shape(method, errors);
    let mut has_context = false;
    for param in &method.params {
        let ty = &*param.ty;
        match &param.kind {
            ParamKind::Context => {
                if has_context {
                    errors.spanned(
                        ty,
                        "the hub context is injected once: remove the second `&HubContext<Self>` parameter",
                    );
                    ok = false;
                }
                has_context = true;
            }
            ParamKind::ContextByValue => {
                errors.spanned(ty, "take the hub context by reference: `cx: &HubContext<Self>`");
                ok = false;
            }
            ParamKind::Cancellation | ParamKind::Upload(Some(_)) => {}
            ParamKind::Upload(None) => {
                errors.spanned(ty, "name the item type of the client stream: `ClientStream<T>`");
                ok = false;
            }
            ParamKind::Argument => match ty {
                Type::Reference(r) => {
                    errors.spanned(
                        ty,
                        format!(
                            "hub method parameters must be owned: clients send arguments as data, so `{}` cannot borrow from anything; use `{}`",
                            quote!(#ty).to_string().replace(' ', ""),
                            types::owned_hint(&r.elem)
                        ),
                    );
                    ok = false;
                }
                Type::ImplTrait(_) => {
                    errors.spanned(ty, "hub method parameters cannot be `impl Trait`: each argument needs one concrete type to be decoded into");
                    ok = false;
                }
                _ => {}
            },
        }
    }
    if let Returns::Unsupported(ty) = &method.returns {
        errors.spanned(
            ty,
            "hub methods cannot return this `impl Trait`: return a type that implements `serde::Serialize`, or `impl Stream<Item = T>` for a streaming method",
        );
        ok = false;
    }
    ok
}

fn hook_signature(method: &Method, kind: HookKind, errors: &mut Errors) -> bool {
    let what = match kind {
        HookKind::Connected => "`on_connected` methods",
        HookKind::Disconnected => "`on_disconnected` methods",
    };
    let mut ok = receiver_ok(method, what, errors);
    ok &= check_signature_shape(method, errors);
    for param in &method.params {
        let ty = &*param.ty;
        match (&param.kind, kind) {
            (ParamKind::Context, _) => {}
            (_, HookKind::Disconnected) if types::is_named(ty, "Option") => {}
            (_, HookKind::Connected) => {
                errors.spanned(
                    ty,
                    "`on_connected` takes only `&self` and, optionally, `cx: &HubContext<Self>`",
                );
                ok = false;
            }
            (_, HookKind::Disconnected) => {
                errors.spanned(ty, "`on_disconnected` takes only `&self` and, optionally, `cx: &HubContext<Self>` and `error: Option<ConnectionError>`");
                ok = false;
            }
        }
    }
    let returns_ok = matches!(
        (&method.returns, kind),
        (Returns::Unit, _) | (Returns::UnitResult { .. }, HookKind::Connected)
    );
    if !returns_ok {
        let message = match kind {
            HookKind::Connected => "`on_connected` returns `()` or `Result<(), E>` (an error closes the connection)",
            HookKind::Disconnected => "`on_disconnected` returns `()`",
        };
        errors.spanned(&method.sig.output, message);
        ok = false;
    }
    ok
}

fn client_method(method: &Method, errors: &mut Errors) -> bool {
    let sig = &method.sig;
    let mut ok = true;
    if let Some(body) = &method.body {
        errors.spanned(
            body,
            "client methods are declarations, implemented by the clients: remove the body and end with `;`",
        );
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "client methods cannot be generic: each argument needs one concrete type",
        );
        ok = false;
    }
    if let Returns::ClientResult(ty) = &method.returns {
        if let Type::ImplTrait(_) = &**ty {
            errors.spanned(ty, "a client result needs a concrete type, such as `bool` or `String`");
            ok = false;
        }
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.mutability.is_none() && matches!(r.kind, ReceiverKind::Reference(_, _, None)) => {
        }
        Some(FnArg::Receiver(r)) => {
            errors.spanned(r, "client methods take `&self`");
            ok = false;
        }
        _ => {
            errors.spanned(&sig.ident, "client methods take `&self` as their first parameter");
            ok = false;
        }
    }
    for param in &method.params {
        if let Type::ImplTrait(_) = &*param.ty {
            errors.spanned(
                &param.ty,
                "client method parameters cannot be `impl Trait`: use a concrete type",
            );
            ok = false;
        }
    }
    ok
}

/// A `#[hub_contract]` method: a declaration with `&self`, concrete argument types (uploads as
/// `impl Stream<Item = T>`), a value, `()` or `impl Stream<Item = T>` as its result.
fn hub_contract_method(method: &Method, errors: &mut Errors) -> bool {
    let sig = &method.sig;
    let mut ok = true;
    if let Some(body) = &method.body {
        errors.spanned(
            body,
            "contract methods are declarations, implemented by the server's hub: remove the body and end with `;`",
        );
        ok = false;
    }
    if let Some(asyncness) = &sig.asyncness {
        errors.spanned(
            asyncness,
            "contract methods are declared without `async`: the proxy's methods are async whatever the hub's are",
        );
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "contract methods cannot be generic: each argument needs one concrete type",
        );
        ok = false;
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.mutability.is_none() && matches!(r.kind, ReceiverKind::Reference(_, _, None)) => {
        }
        Some(FnArg::Receiver(r)) => {
            errors.spanned(r, "contract methods take `&self`");
            ok = false;
        }
        _ => {
            errors.spanned(&sig.ident, "contract methods take `&self` as their first parameter");
            ok = false;
        }
    }
    for param in &method.params {
        match (&param.kind, &*param.ty) {
            (ParamKind::Argument, Type::ImplTrait(_)) => {
                errors.spanned(
                    &param.ty,
                    "contract method parameters are concrete types, or `impl Stream<Item = T>` for a client-to-server stream",
                );
                ok = false;
            }
            (ParamKind::Argument, Type::Reference(r)) => {
                errors.spanned(
                    &param.ty,
                    format!(
                        "contract methods take owned types: `{}` (the hub itself may borrow it)",
                        types::owned_hint(&r.elem)
                    ),
                );
                ok = false;
            }
            _ => {}
        }
    }
    match &method.returns {
        Returns::Unsupported(ty) => {
            errors.spanned(
                ty,
                "a contract method returns a concrete type, `()`, or `impl Stream<Item = T>` for a server-to-client stream",
            );
            ok = false;
        }
        Returns::Result { .. } | Returns::UnitResult { .. } | Returns::StreamResult { .. } => {
            errors.spanned(
                &sig.output,
                "a contract method returns what the caller receives, without `Result`: the proxy adds the error (a failed call, or the hub's error)",
            );
            ok = false;
        }
        _ => {}
    }
    ok
}

/// A contract's client methods take owned types: the client's handler receives them decoded.
fn owned_params(method: &Method, errors: &mut Errors) -> bool {
    let mut ok = true;
    for param in &method.params {
        if let Type::Reference(r) = &*param.ty {
            errors.spanned(
                &param.ty,
                format!(
                    "contract methods take owned types: `{}` (the server's client interface may borrow it)",
                    types::owned_hint(&r.elem)
                ),
            );
            ok = false;
        }
    }
    ok
}
