//! `#[hub(...)]` attributes on methods and on the impl block / trait.

use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Meta};

use crate::authorize::{self, Requirement};
use crate::names::path_text;

/// What `#[hub(...)]` may say on one method.
#[derive(Default)]
pub(crate) struct MethodAttrs {
    /// Malformed `#[hub(...)]` attributes, reported when the method is validated (so every
    /// method's errors stay together, in source order).
    pub(crate) errors: Vec<syn::Error>,
    pub(crate) name: Option<LitStr>,
    pub(crate) on_connected: Option<proc_macro2::Span>,
    pub(crate) on_disconnected: Option<proc_macro2::Span>,
    pub(crate) skip: bool,
    /// Every `authorize` requirement (all must hold), and where the first `authorize` is.
    pub(crate) authorize: Vec<Requirement>,
    pub(crate) authorize_span: Option<proc_macro2::Span>,
}

/// Which method attributes a context allows.
#[derive(Clone, Copy)]
pub(crate) enum Context {
    HubMethod,
    ClientMethod,
}

/// Takes the `#[hub(...)]` attributes out of `attrs` (the others stay) and reads them.
pub(crate) fn take_method_attrs(attrs: &mut Vec<Attribute>, context: Context) -> MethodAttrs {
    let mut out = MethodAttrs::default();
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if !attr.path().is_ident("hub") {
            kept.push(attr);
            continue;
        }
        if let Meta::Path(_) = attr.meta {
            out.errors.push(syn::Error::new_spanned(
                &attr,
                "`#[hub]` on a method needs an argument, such as `#[hub(name = \"WireName\")]`",
            ));
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
            match (key.as_str(), context) {
                ("name", _) => {
                    let value: LitStr = meta.value()?.parse()?;
                    if value.value().is_empty() {
                        return Err(syn::Error::new(value.span(), "a wire name cannot be empty"));
                    }
                    if out.name.is_some() {
                        return Err(meta.error("`name` is given twice"));
                    }
                    out.name = Some(value);
                    Ok(())
                }
                ("on_connected", Context::HubMethod) => {
                    out.on_connected = Some(meta.path.span());
                    Ok(())
                }
                ("on_disconnected", Context::HubMethod) => {
                    out.on_disconnected = Some(meta.path.span());
                    Ok(())
                }
                ("skip", Context::HubMethod) => {
                    out.skip = true;
                    Ok(())
                }
                ("authorize", Context::HubMethod) => {
                    out.authorize_span.get_or_insert(meta.path.span());
                    out.authorize.extend(authorize::parse(&meta)?);
                    Ok(())
                }
                (_, Context::HubMethod) => Err(meta.error(format!(
                    "unsupported hub method attribute `{}`; expected `name = \"...\"`, `authorize`, `on_connected`, `on_disconnected` or `skip`",
                    path_text(&meta.path)
                ))),
                (_, Context::ClientMethod) => Err(meta.error(format!(
                    "unsupported client method attribute `{}`; expected `name = \"...\"`",
                    path_text(&meta.path)
                ))),
            }
        });
        if let Err(e) = result {
            out.errors.push(e);
        }
    }
    *attrs = kept;
    out
}
