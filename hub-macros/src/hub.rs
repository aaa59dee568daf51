//! `#[hub]`: parse the impl block into a model, validate it, generate the router.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Path, Type};

use crate::attrs::{self, Context};
use crate::authorize::{self, Requirement};
use crate::errors::Errors;
use crate::names::pascal_case;
use crate::types::{self, Returns};

/// `#[hub(client = Path, authorize ...)]`.
struct HubArgs {
    client: Option<Path>,
    /// What every connection must meet (all of it).
    authorize: Vec<Requirement>,
}

fn parse_args(attr: TokenStream, errors: &mut Errors) -> HubArgs {
    let mut args = HubArgs {
        client: None,
        authorize: Vec::new(),
    };
    if attr.is_empty() {
        return args;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("client") {
            let path: Path = meta.value()?.parse()?;
            if args.client.is_some() {
                return Err(meta.error("`client` is given twice"));
            }
            args.client = Some(path);
            Ok(())
        } else if meta.path.is_ident("authorize") {
            args.authorize.extend(authorize::parse(&meta)?);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unsupported `hub` attribute `{}`; expected `client = YourClientTrait` or `authorize`",
                attrs::path_text(&meta.path)
            )))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        errors.push(e);
    }
    args
}

/// A parameter of a hub method.
enum Param {
    /// `&HubContext<Self>`.
    Context,
    /// `CancellationToken`.
    Cancellation,
    /// An argument the client sends.
    Argument(Box<Type>),
    /// A client-to-server stream (`ClientStream<T>`), bound from `streamIds`.
    Upload(Box<Type>),
}

/// A validated hub method.
struct Method {
    ident: syn::Ident,
    wire_name: String,
    is_async: bool,
    params: Vec<Param>,
    returns: Returns,
    /// `#[hub(authorize ...)]` on the method.
    authorize: Vec<Requirement>,
}

impl Method {
    fn is_stream(&self) -> bool {
        matches!(self.returns, Returns::Stream { .. } | Returns::StreamResult { .. })
    }
}

enum HookKind {
    Connected,
    Disconnected,
}

struct Hook {
    ident: syn::Ident,
    kind: HookKind,
    is_async: bool,
    /// In order: Some(true) = context, Some(false) = error option.
    params: Vec<HookParam>,
    fallible: bool,
}

enum HookParam {
    Context,
    Error,
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse_args(attr, &mut errors);
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
    if let Some((_, trait_path, _)) = &block.trait_ {
        errors.spanned(
            trait_path,
            "`#[hub]` goes on an inherent impl block (`impl MyHub { ... }`), not on a trait impl",
        );
    }
    if !block.generics.params.is_empty() {
        errors.spanned(
            &block.generics,
            "a hub type cannot be generic: one hub value serves every connection of its path",
        );
    }

    let mut methods = Vec::new();
    let mut hooks: Vec<Hook> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for item in &mut block.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        let mut method_attrs = attrs::take_method_attrs(&mut function.attrs, Context::HubMethod, &mut errors);
        if method_attrs.skip {
            if let Some(span) = method_attrs.authorize_span {
                errors.at(
                    span,
                    "a `skip` method cannot be called by clients, so `authorize` has nothing to guard; remove one of them",
                );
            }
            continue;
        }
        if let Some(span) = method_attrs.on_connected.or(method_attrs.on_disconnected) {
            if let Some(span) = method_attrs.authorize_span {
                errors.at(
                    span,
                    "`authorize` goes on hub methods that clients call, not on `on_connected` or `on_disconnected`; to admit only authorized connections, put it on the impl block: `#[hub(authorize)]`",
                );
            }
            if method_attrs.on_connected.is_some() && method_attrs.on_disconnected.is_some() {
                errors.at(span, "a method cannot be both `on_connected` and `on_disconnected`");
                continue;
            }
            let kind = if method_attrs.on_connected.is_some() {
                HookKind::Connected
            } else {
                HookKind::Disconnected
            };
            if let Some(hook) = validate_hook(function, kind, &mut errors) {
                if hooks
                    .iter()
                    .any(|h| std::mem::discriminant(&h.kind) == std::mem::discriminant(&hook.kind))
                {
                    errors.spanned(
                        &function.sig.ident,
                        "a hub has at most one `on_connected` and one `on_disconnected` method",
                    );
                } else {
                    hooks.push(hook);
                }
            }
            continue;
        }
        let wire_name = method_attrs
            .name
            .as_ref()
            .map(|n| n.value())
            .unwrap_or_else(|| pascal_case(&function.sig.ident.to_string()));
        let name_span = method_attrs
            .name
            .as_ref()
            .map(|n| n.span())
            .unwrap_or_else(|| function.sig.ident.span());
        let key = wire_name.to_lowercase();
        if let Some(other) = seen.get(&key) {
            errors.at(
                name_span,
                format!(
                    "two hub methods have the wire name `{wire_name}` (`{other}` and `{}`): clients call methods by name, case-insensitively; rename one with `#[hub(name = \"...\")]`",
                    function.sig.ident
                ),
            );
        } else {
            seen.insert(key, function.sig.ident.to_string());
        }
        let authorize = std::mem::take(&mut method_attrs.authorize);
        if let Some(method) = validate_method(function, wire_name, authorize, &mut errors) {
            methods.push(method);
        }
    }

    let self_ty = &block.self_ty;
    let client = args
        .client
        .as_ref()
        .map(|p| quote!(#p))
        .unwrap_or_else(|| quote!(::hub_runtime::clients::DynamicClient));
    if !errors.is_empty() {
        // The errors, plus a stub so the rest of the crate still compiles.
        let compile_errors = errors.to_compile_errors();
        let stub = if block.generics.params.is_empty() && block.trait_.is_none() {
            quote! {
                const _: () = {
                    impl ::hub_runtime::Hub for #self_ty {
                        type Client = #client;
                        const __METHODS: &'static [::hub_runtime::__private::MethodDef] = &[];
                        fn __invoke(
                            self: ::hub_runtime::__private::Arc<Self>,
                            _: ::hub_runtime::__private::Arc<::hub_runtime::HubContext<Self>>,
                            _: usize,
                            call: ::hub_runtime::__private::Call,
                        ) -> ::hub_runtime::__private::BoxFuture<::hub_runtime::__private::Outcome> {
                            ::std::boxed::Box::pin(async move { call.finish_void() })
                        }
                    }
                };
            }
        } else {
            TokenStream::new()
        };
        return quote! { #block #compile_errors #stub };
    }

    let defs = methods.iter().map(|m| {
        let name = &m.wire_name;
        let count = m.params.iter().filter(|p| matches!(p, Param::Argument(_))).count();
        let streams = m.params.iter().filter(|p| matches!(p, Param::Upload(_))).count();
        let kind = if m.is_stream() { quote!(Stream) } else { quote!(Plain) };
        let authorize = authorize::tokens(&m.authorize);
        quote! {
            ::hub_runtime::__private::MethodDef {
                name: #name,
                arguments: #count,
                streams: #streams,
                kind: ::hub_runtime::__private::MethodKind::#kind,
                authorize: #authorize,
            }
        }
    });
    let hub_authorize = (!args.authorize.is_empty()).then(|| {
        let requirements = authorize::tokens(&args.authorize);
        quote! { const __AUTHORIZE: &'static [::hub_runtime::__private::Requirement] = #requirements; }
    });
    let arms = methods.iter().enumerate().map(|(index, m)| method_arm(index, m));
    let on_connected = hooks
        .iter()
        .find(|h| matches!(h.kind, HookKind::Connected))
        .map(hook_fn);
    let on_disconnected = hooks
        .iter()
        .find(|h| matches!(h.kind, HookKind::Disconnected))
        .map(hook_fn);

    quote! {
        #block

        const _: () = {
            impl ::hub_runtime::Hub for #self_ty {
                type Client = #client;
                const __METHODS: &'static [::hub_runtime::__private::MethodDef] = &[#(#defs),*];
                #hub_authorize

                #[allow(unused_variables, clippy::let_unit_value)]
                fn __invoke(
                    self: ::hub_runtime::__private::Arc<Self>,
                    __cx: ::hub_runtime::__private::Arc<::hub_runtime::HubContext<Self>>,
                    __method: usize,
                    __call: ::hub_runtime::__private::Call,
                ) -> ::hub_runtime::__private::BoxFuture<::hub_runtime::__private::Outcome> {
                    match __method {
                        #(#arms)*
                        _ => ::std::boxed::Box::pin(async move { __call.finish_void() }),
                    }
                }

                #on_connected
                #on_disconnected
            }
        };
    }
}

fn receiver_ok(function: &ImplItemFn, what: &str, errors: &mut Errors) -> bool {
    match function.sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => true,
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() => {
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
            errors.spanned(&function.sig.ident, format!("{what} take `&self` as their first parameter (associated functions without `self` cannot be called by clients; mark helpers with `#[hub(skip)]`)"));
            false
        }
    }
}

fn check_signature_shape(function: &ImplItemFn, errors: &mut Errors) -> bool {
    let sig = &function.sig;
    let mut ok = true;
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "hub methods cannot be generic: clients call them by name, so every parameter needs one concrete type",
        );
        ok = false;
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(unsafety, "hub methods cannot be `unsafe`");
        ok = false;
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "hub methods cannot be variadic");
        ok = false;
    }
    ok
}

fn is_context(ty: &Type) -> bool {
    types::is_named(ty, "HubContext")
}

fn validate_method(
    function: &ImplItemFn,
    wire_name: String,
    authorize: Vec<Requirement>,
    errors: &mut Errors,
) -> Option<Method> {
    let mut ok = receiver_ok(function, "hub methods", errors);
    ok &= check_signature_shape(function, errors);
    let mut params = Vec::new();
    let mut has_context = false;
    for input in function.sig.inputs.iter().skip(1) {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let ty = &*pat_type.ty;
        match ty {
            Type::Reference(r) if is_context(&r.elem) => {
                if has_context {
                    errors.spanned(
                        ty,
                        "the hub context is injected once: remove the second `&HubContext<Self>` parameter",
                    );
                    ok = false;
                }
                has_context = true;
                params.push(Param::Context);
            }
            _ if is_context(ty) => {
                errors.spanned(ty, "take the hub context by reference: `cx: &HubContext<Self>`");
                ok = false;
            }
            _ if types::is_named(ty, "CancellationToken") => params.push(Param::Cancellation),
            _ if types::is_named(ty, "ClientStream") => match types::type_args(ty).first() {
                Some(item) => params.push(Param::Upload(Box::new((*item).clone()))),
                None => {
                    errors.spanned(ty, "name the item type of the client stream: `ClientStream<T>`");
                    ok = false;
                }
            },
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
            _ => params.push(Param::Argument(Box::new(ty.clone()))),
        }
    }
    let returns = match types::classify_return(&function.sig.output) {
        Ok(r) => r,
        Err(ty) => {
            errors.spanned(
                ty,
                "hub methods cannot return this `impl Trait`: return a type that implements `serde::Serialize`, or `impl Stream<Item = T>` for a streaming method",
            );
            ok = false;
            Returns::Unit
        }
    };
    ok.then(|| Method {
        ident: function.sig.ident.clone(),
        wire_name,
        is_async: function.sig.asyncness.is_some(),
        params,
        returns,
        authorize,
    })
}

fn validate_hook(function: &ImplItemFn, kind: HookKind, errors: &mut Errors) -> Option<Hook> {
    let what = match kind {
        HookKind::Connected => "`on_connected` methods",
        HookKind::Disconnected => "`on_disconnected` methods",
    };
    let mut ok = receiver_ok(function, what, errors);
    ok &= check_signature_shape(function, errors);
    let mut params = Vec::new();
    for input in function.sig.inputs.iter().skip(1) {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let ty = &*pat_type.ty;
        match (ty, &kind) {
            (Type::Reference(r), _) if is_context(&r.elem) => params.push(HookParam::Context),
            (_, HookKind::Disconnected) if types::is_named(ty, "Option") => params.push(HookParam::Error),
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
    let fallible = match (types::classify_return(&function.sig.output), &kind) {
        (Ok(Returns::Unit), _) => false,
        (Ok(Returns::UnitResult { .. }), HookKind::Connected) => true,
        _ => {
            let message = match kind {
                HookKind::Connected => {
                    "`on_connected` returns `()` or `Result<(), E>` (an error closes the connection)"
                }
                HookKind::Disconnected => "`on_disconnected` returns `()`",
            };
            errors.spanned(&function.sig.output, message);
            ok = false;
            false
        }
    };
    ok.then(|| Hook {
        ident: function.sig.ident.clone(),
        kind,
        is_async: function.sig.asyncness.is_some(),
        params,
        fallible,
    })
}

fn method_arm(index: usize, method: &Method) -> TokenStream {
    let ident = &method.ident;
    let mut decode = Vec::new();
    let mut call_args = Vec::new();
    let mut argument = 0usize;
    let mut upload = 0usize;
    for (i, param) in method.params.iter().enumerate() {
        match param {
            Param::Context => call_args.push(quote!(&*__cx)),
            Param::Cancellation => call_args.push(quote!(__call.cancellation())),
            Param::Argument(ty) => {
                let var = format_ident!("__a{}", i);
                let span = ty.span();
                decode.push(quote_spanned! {span=>
                    let #var: #ty = match __call.arg::<#ty>(#argument) {
                        ::std::result::Result::Ok(value) => value,
                        ::std::result::Result::Err(outcome) => return outcome,
                    };
                });
                call_args.push(quote!(#var));
                argument += 1;
            }
            Param::Upload(item) => {
                let var = format_ident!("__u{}", i);
                let span = item.span();
                decode.push(quote_spanned! {span=>
                    let #var = match __call.upload::<#item>(#upload) {
                        ::std::result::Result::Ok(value) => value,
                        ::std::result::Result::Err(outcome) => return outcome,
                    };
                });
                call_args.push(quote!(#var));
                upload += 1;
            }
        }
    }
    let await_ = if method.is_async { quote!(.await) } else { quote!() };
    let invoke = quote!(self.#ident(#(#call_args),*)#await_);
    let finish_error = |error: &Option<Box<Type>>| match error {
        Some(e) => {
            let span = e.span();
            quote_spanned! {span=> __call.finish_error(::hub_runtime::__private::into_hub_error::<#e>(__e)) }
        }
        None => quote! { __call.finish_error(::hub_runtime::__private::into_hub_error(__e)) },
    };
    let pump = |item: &Type| {
        let span = item.span();
        if types::is_named(item, "Result") {
            let args = types::type_args(item);
            let ok = args.first().map(|t| quote!(#t)).unwrap_or_else(|| quote!(_));
            quote_spanned! {span=> __call.pump_results::<_, #ok, _>(__s).await }
        } else {
            quote_spanned! {span=> __call.pump::<_, #item>(__s).await }
        }
    };
    let finish = match &method.returns {
        Returns::Stream { item } => {
            let pump = pump(item);
            quote! { let __s = #invoke; #pump }
        }
        Returns::StreamResult { item, error } => {
            let pump = pump(item);
            let failed = finish_error(error);
            quote! {
                match #invoke {
                    ::std::result::Result::Ok(__s) => #pump,
                    ::std::result::Result::Err(__e) => #failed,
                }
            }
        }
        Returns::Unit => quote! { let () = #invoke; __call.finish_void() },
        Returns::Value(ty) => {
            let span = ty.span();
            let done = quote_spanned! {span=> __call.finish_value::<#ty>(&__r) };
            quote! { let __r = #invoke; #done }
        }
        Returns::UnitResult { error } => {
            let failed = finish_error(error);
            quote! {
                match #invoke {
                    ::std::result::Result::Ok(()) => __call.finish_void(),
                    ::std::result::Result::Err(__e) => #failed,
                }
            }
        }
        Returns::Result { ok, error } => {
            let span = ok.span();
            let done = quote_spanned! {span=> __call.finish_value::<#ok>(&__v) };
            let failed = finish_error(error);
            quote! {
                match #invoke {
                    ::std::result::Result::Ok(__v) => #done,
                    ::std::result::Result::Err(__e) => #failed,
                }
            }
        }
    };
    let body = quote! {
        #[allow(unused_mut)]
        let mut __call = __call;
        #(#decode)*
        #finish
    };
    if method.is_stream() {
        quote! { #index => ::hub_runtime::__private::Outcome::streaming(async move { #body }), }
    } else {
        quote! { #index => ::std::boxed::Box::pin(async move { #body }), }
    }
}

fn hook_fn(hook: &Hook) -> TokenStream {
    let ident = &hook.ident;
    let args = hook.params.iter().map(|p| match p {
        HookParam::Context => quote!(&*__cx),
        HookParam::Error => quote!(__error.clone()),
    });
    let await_ = if hook.is_async { quote!(.await) } else { quote!() };
    let invoke = quote!(self.#ident(#(#args),*)#await_);
    match hook.kind {
        HookKind::Connected => {
            let body = if hook.fallible {
                quote! { #invoke.map_err(::std::convert::Into::<::hub_runtime::HubError>::into) }
            } else {
                quote! { #invoke; ::std::result::Result::Ok(()) }
            };
            quote! {
                #[allow(unused_variables)]
                fn __on_connected(
                    self: ::hub_runtime::__private::Arc<Self>,
                    __cx: ::hub_runtime::__private::Arc<::hub_runtime::HubContext<Self>>,
                ) -> ::hub_runtime::__private::BoxFuture<::std::result::Result<(), ::hub_runtime::HubError>> {
                    ::std::boxed::Box::pin(async move { #body })
                }
            }
        }
        HookKind::Disconnected => quote! {
            #[allow(unused_variables)]
            fn __on_disconnected(
                self: ::hub_runtime::__private::Arc<Self>,
                __cx: ::hub_runtime::__private::Arc<::hub_runtime::HubContext<Self>>,
                __error: ::std::option::Option<::hub_runtime::ConnectionError>,
            ) -> ::hub_runtime::__private::BoxFuture<()> {
                ::std::boxed::Box::pin(async move { #invoke; })
            }
        },
    }
}
