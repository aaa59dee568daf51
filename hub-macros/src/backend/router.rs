//! `#[hub]`'s router: the `Hub` impl that maps a method index (from the wire name, looked up by
//! the runtime in `__METHODS`) to a decode–call–encode future, plus the connection hooks.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Path, Type};

use crate::authorize;
use crate::model::{HookKind, Interface, Method, ParamKind, Role};
use crate::names::path_at;
use crate::types::{self, Returns};

/// The client interface type of the hub (`DynamicClient` without `client = ...`).
fn client(interface: &Interface) -> TokenStream {
    let krate = &interface.args.krate;
    interface
        .args
        .client
        .as_ref()
        .map(|p| quote!(#p))
        .unwrap_or_else(|| quote!(#krate::clients::DynamicClient))
}

/// A `Hub` impl without methods, emitted beside the errors so the rest of the crate still
/// compiles (uses of the hub type report nothing more).
pub(crate) fn stub(interface: &Interface) -> TokenStream {
    let krate = &interface.args.krate;
    let self_ty = &interface.target;
    let client = client(interface);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Hub for #self_ty {
                type Client = #client;
                const __METHODS: &'static [#krate::__private::MethodDef] = &[];
                fn __invoke(
                    self: #krate::__private::Arc<Self>,
                    _: #krate::__private::Arc<#krate::HubContext<Self>>,
                    _: usize,
                    call: #krate::__private::Call,
                ) -> #krate::__private::BoxFuture<#krate::__private::Outcome> {
                    ::std::boxed::Box::pin(async move { call.finish_void() })
                }
            }
        };
    }
}

/// The `Hub` impl of a valid hub.
pub(crate) fn render(interface: &Interface) -> TokenStream {
    let krate = &interface.args.krate;
    let self_ty = &interface.target;
    let client = client(interface);
    let methods: Vec<&Method> = interface
        .methods
        .iter()
        .filter(|m| m.valid && matches!(m.role, Role::Invocable))
        .collect();
    let defs = methods.iter().map(|m| method_def(krate, m));
    let hub_authorize = (!interface.args.authorize.is_empty()).then(|| {
        let requirements = authorize::tokens(krate, &interface.args.authorize);
        quote! { const __AUTHORIZE: &'static [#krate::__private::Requirement] = #requirements; }
    });
    let (presence, presence_checks) = presence(interface);
    let arms = methods.iter().enumerate().map(|(index, m)| method_arm(krate, index, m));
    let hook = |kind: HookKind| {
        interface
            .methods
            .iter()
            .find(|m| m.valid && m.hook_kind() == Some(kind))
            .map(|m| hook_fn(krate, m, kind))
    };
    let on_connected = hook(HookKind::Connected);
    let on_disconnected = hook(HookKind::Disconnected);

    quote! {
        const _: () = {
            #[automatically_derived]
            impl #krate::Hub for #self_ty {
                type Client = #client;
                const __METHODS: &'static [#krate::__private::MethodDef] = &[#(#defs),*];
                #hub_authorize
                #presence

                #[allow(unused_variables, clippy::let_unit_value)]
                fn __invoke(
                    self: #krate::__private::Arc<Self>,
                    __cx: #krate::__private::Arc<#krate::HubContext<Self>>,
                    __method: usize,
                    __call: #krate::__private::Call,
                ) -> #krate::__private::BoxFuture<#krate::__private::Outcome> {
                    match __method {
                        #(#arms)*
                        _ => ::std::boxed::Box::pin(async move { __call.finish_void() }),
                    }
                }

                #on_connected
                #on_disconnected
            }
            #presence_checks
        };
    }
}

/// `const __PRESENCE` for `#[hub(presence ...)]`, with a constant check that each event names a
/// client method of the hub's client interface taking two arguments (group, user).
fn presence(interface: &Interface) -> (TokenStream, TokenStream) {
    let Some(presence) = &interface.args.presence else {
        return (TokenStream::new(), TokenStream::new());
    };
    let krate = &interface.args.krate;
    let event = |name: &Option<syn::LitStr>| match name {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let (joined, left) = (event(&presence.joined), event(&presence.left));
    let checks = interface.args.client.as_ref().map(|client| {
        let client_name = crate::names::path_text(client);
        let events = [("joined", &presence.joined), ("left", &presence.left)];
        let checks = events.into_iter().filter_map(|(what, name)| {
            let name = name.as_ref()?;
            let message = format!(
                "the presence event `{what} = \"{}\"` is not a client method of `{client_name}` taking two arguments: declare one with that wire name and `(group: String, user: String)`",
                name.value()
            )
            .replace('{', "{{")
            .replace('}', "}}");
            // One constant each: evaluation stops at the first failed assertion.
            Some(quote_spanned! {name.span()=>
                const _: () = ::core::assert!(
                    #krate::__private::is_presence_event(
                        &<#client<#krate::Many> as #krate::descriptor::Describe>::DESCRIPTOR,
                        #name,
                    ),
                    #message
                );
            })
        });
        quote! { #(#checks)* }
    });
    let konst = quote! {
        const __PRESENCE: ::core::option::Option<#krate::__private::PresenceEvents> =
            ::core::option::Option::Some(#krate::__private::PresenceEvents { joined: #joined, left: #left });
    };
    (konst, checks.unwrap_or_default())
}

fn method_def(krate: &Path, m: &Method) -> TokenStream {
    let name = &m.wire_name;
    let count = m
        .params
        .iter()
        .filter(|p| matches!(p.kind, ParamKind::Argument))
        .count();
    let streams = m
        .params
        .iter()
        .filter(|p| matches!(p.kind, ParamKind::Upload(_)))
        .count();
    let kind = if m.is_stream() { quote!(Stream) } else { quote!(Plain) };
    let authorize = authorize::tokens(krate, &m.attrs.authorize);
    quote! {
        #krate::__private::MethodDef {
            name: #name,
            arguments: #count,
            streams: #streams,
            kind: #krate::__private::MethodKind::#kind,
            authorize: #authorize,
        }
    }
}

fn method_arm(krate: &Path, index: usize, method: &Method) -> TokenStream {
    let ident = &method.ident;
    let mut decode = Vec::new();
    let mut call_args = Vec::new();
    let mut argument = 0usize;
    let mut upload = 0usize;
    for (i, param) in method.params.iter().enumerate() {
        match &param.kind {
            ParamKind::Context => call_args.push(quote!(&*__cx)),
            ParamKind::Cancellation => call_args.push(quote!(__call.cancellation())),
            ParamKind::Argument => {
                let ty = &param.ty;
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
            ParamKind::Upload(item) => {
                let var = format_ident!("__u{}", i);
                let span = item.as_ref().map(|t| t.span()).unwrap_or_else(|| param.ty.span());
                decode.push(quote_spanned! {span=>
                    let #var = match __call.upload::<#item>(#upload) {
                        ::std::result::Result::Ok(value) => value,
                        ::std::result::Result::Err(outcome) => return outcome,
                    };
                });
                call_args.push(quote!(#var));
                upload += 1;
            }
            // Rejected by `validate`: a method with it is never generated.
            ParamKind::ContextByValue => {}
        }
    }
    if argument > 0 {
        decode.push(quote!(__call.arguments_bound();));
    }
    let await_ = if method.is_async { quote!(.await) } else { quote!() };
    let invoke = quote!(self.#ident(#(#call_args),*)#await_);
    let finish = finish(krate, &method.returns, &invoke);
    let body = quote! {
        #[allow(unused_mut)]
        let mut __call = __call;
        #(#decode)*
        #finish
    };
    if method.is_stream() {
        quote! { #index => #krate::__private::Outcome::streaming(async move { #body }), }
    } else {
        quote! { #index => ::std::boxed::Box::pin(async move { #body }), }
    }
}

/// Calls the method and turns what it returns into the call's outcome.
fn finish(krate: &Path, returns: &Returns, invoke: &TokenStream) -> TokenStream {
    let finish_error = |error: &Option<Box<Type>>| match error {
        Some(e) => {
            let span = e.span();
            let krate = path_at(krate, span);
            quote_spanned! {span=> __call.finish_error(#krate::__private::into_hub_error::<#e>(__e)) }
        }
        None => quote! { __call.finish_error(#krate::__private::into_hub_error(__e)) },
    };
    let pump = |item: &Type| {
        let span = item.span();
        if types::is_named(item, "Result") {
            let args = types::type_args(item);
            let ok = args.first().map(|t| quote!(#t)).unwrap_or_else(|| quote!(_));
            let krate = path_at(krate, span);
            quote_spanned! {span=>
                __call.pump_results::<_, #ok, _>(#krate::__private::stream_errors(__s)).await
            }
        } else {
            quote_spanned! {span=> __call.pump::<_, #item>(__s).await }
        }
    };
    match returns {
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
        // `Unsupported` is rejected by `validate`, `ClientResult` is client-side only.
        Returns::Unit | Returns::Unsupported(_) | Returns::ClientResult(_) => {
            quote! { let () = #invoke; __call.finish_void() }
        }
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
    }
}

fn hook_fn(krate: &Path, hook: &Method, kind: HookKind) -> TokenStream {
    let ident = &hook.ident;
    let args = hook.params.iter().map(|p| match p.kind {
        ParamKind::Context => quote!(&*__cx),
        // `validate` admits only the context and `Option<ConnectionError>` (disconnected).
        _ => quote!(__error.clone()),
    });
    let await_ = if hook.is_async { quote!(.await) } else { quote!() };
    let invoke = quote!(self.#ident(#(#args),*)#await_);
    match kind {
        HookKind::Connected => {
            let body = if let Returns::UnitResult { error } = &hook.returns {
                let convert = match error {
                    Some(e) => {
                        let span = e.span();
                        let krate = path_at(krate, span);
                        quote_spanned! {span=> #krate::__private::into_hub_error::<#e> }
                    }
                    None => quote! { #krate::__private::into_hub_error },
                };
                quote! { #invoke.map_err(#convert) }
            } else {
                quote! { #invoke; ::std::result::Result::Ok(()) }
            };
            quote! {
                #[allow(unused_variables)]
                fn __on_connected(
                    self: #krate::__private::Arc<Self>,
                    __cx: #krate::__private::Arc<#krate::HubContext<Self>>,
                ) -> #krate::__private::BoxFuture<::std::result::Result<(), #krate::HubError>> {
                    ::std::boxed::Box::pin(async move { #body })
                }
            }
        }
        HookKind::Disconnected => quote! {
            #[allow(unused_variables)]
            fn __on_disconnected(
                self: #krate::__private::Arc<Self>,
                __cx: #krate::__private::Arc<#krate::HubContext<Self>>,
                __error: ::std::option::Option<#krate::ConnectionError>,
            ) -> #krate::__private::BoxFuture<()> {
                ::std::boxed::Box::pin(async move { #invoke; })
            }
        },
    }
}
