//! The arguments of `#[hub(...)]` on the impl block and of `#[hub_client(...)]`.

use proc_macro2::{TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::{LitStr, Path};

use super::Side;
use crate::authorize::{self, Requirement};
use crate::errors::Errors;
use crate::names::path_text;

/// `#[hub(client = Path, authorize ..., crate = "...")]` / `#[hub_client(crate = "...")]`.
pub(crate) struct Args {
    /// The path of hub-runtime in the user's crate: every generated path starts with it.
    pub(crate) krate: Path,
    /// The client interface (`#[hub]` only).
    pub(crate) client: Option<Path>,
    /// What every connection must meet (`#[hub]` only; all of it).
    pub(crate) authorize: Vec<Requirement>,
    /// The contract trait the hub or client interface fulfils (`#[hub]`, `#[hub_client]`).
    pub(crate) contract: Option<Path>,
    /// `#[hub(proxy)]`: also generate the client's typed proxy `NameProxy<C>`.
    pub(crate) proxy: bool,
    /// `#[hub_client(handler)]`: also generate the client's handler trait `NameHandler`.
    pub(crate) handler: bool,
    /// `#[hub(presence)]` / `#[hub(presence(joined = "...", left = "..."))]` (`#[hub]` only).
    pub(crate) presence: Option<Presence>,
}

/// What `presence(...)` declares: the client methods announcing joins and leaves.
pub(crate) struct Presence {
    pub(crate) joined: Option<LitStr>,
    pub(crate) left: Option<LitStr>,
}

/// `presence` or `presence(joined = "...", left = "...")`.
fn parse_presence(meta: &ParseNestedMeta<'_>) -> syn::Result<Presence> {
    let mut presence = Presence {
        joined: None,
        left: None,
    };
    if !meta.input.peek(syn::token::Paren) {
        return Ok(presence);
    }
    meta.parse_nested_meta(|inner| {
        let slot = if inner.path.is_ident("joined") {
            &mut presence.joined
        } else if inner.path.is_ident("left") {
            &mut presence.left
        } else {
            return Err(inner.error(format!(
                "unsupported `presence` argument `{}`; expected `joined = \"ClientMethod\"` or `left = \"ClientMethod\"`",
                path_text(&inner.path)
            )));
        };
        let value: LitStr = inner.value()?.parse().map_err(|e| {
            syn::Error::new(e.span(), "the event is the wire name of a client method, in quotes: `joined = \"UserJoined\"`")
        })?;
        if value.value().trim().is_empty() {
            return Err(syn::Error::new(value.span(), "the event's client method name is empty"));
        }
        if slot.is_some() {
            return Err(inner.error(format!("`{}` is given twice", path_text(&inner.path))));
        }
        *slot = Some(value);
        Ok(())
    })?;
    Ok(presence)
}

pub(crate) fn parse_args(attr: TokenStream, side: Side, errors: &mut Errors) -> Args {
    let contract_macro = matches!(side, Side::HubContract | Side::ClientContract);
    let mut args = Args {
        krate: if contract_macro {
            syn::parse_quote!(::hub_protocol)
        } else {
            syn::parse_quote!(::hub_runtime)
        },
        client: None,
        authorize: Vec::new(),
        contract: None,
        proxy: false,
        handler: false,
        presence: None,
    };
    if attr.is_empty() {
        return args;
    }
    let mut krate: Option<Path> = None;
    let mut argument = |meta: ParseNestedMeta<'_>| {
        if meta.path.is_ident("crate") {
            let value: LitStr = meta.value()?.parse()?;
            let path: Path = value.parse().map_err(|_| {
                let message = if contract_macro {
                    "`crate` takes the path of hub-protocol in quotes, such as `crate = \"::my_hub_protocol\"`"
                } else {
                    "`crate` takes the path of hub-runtime in quotes, such as `crate = \"::my_hub_runtime\"`"
                };
                syn::Error::new(value.span(), message)
            })?;
            if krate.is_some() {
                return Err(meta.error("`crate` is given twice"));
            }
            krate = Some(path);
            Ok(())
        } else if side == Side::Hub && meta.path.is_ident("client") {
            let path: Path = meta.value()?.parse()?;
            if args.client.is_some() {
                return Err(meta.error("`client` is given twice"));
            }
            args.client = Some(path);
            Ok(())
        } else if matches!(side, Side::Hub | Side::Client) && meta.path.is_ident("contract") {
            let path: Path = meta.value()?.parse()?;
            if args.contract.is_some() {
                return Err(meta.error("`contract` is given twice"));
            }
            args.contract = Some(path);
            Ok(())
        } else if side == Side::Hub && meta.path.is_ident("proxy") {
            args.proxy = true;
            Ok(())
        } else if side == Side::Client && meta.path.is_ident("handler") {
            args.handler = true;
            Ok(())
        } else if side == Side::Hub && meta.path.is_ident("presence") {
            let presence = parse_presence(&meta)?;
            if args.presence.is_some() {
                return Err(meta.error("`presence` is given twice"));
            }
            args.presence = Some(presence);
            Ok(())
        } else if side == Side::Hub && meta.path.is_ident("authorize") {
            args.authorize.extend(authorize::parse(&meta)?);
            Ok(())
        } else if side == Side::Hub {
            Err(meta.error(format!(
                "unsupported `hub` attribute `{}`; expected `client = YourClientTrait`, `contract = path::to::ContractTrait`, `proxy`, `authorize`, `presence` or `crate = \"...\"`",
                path_text(&meta.path)
            )))
        } else if side == Side::Client {
            Err(meta.error(format!(
                "unsupported `hub_client` attribute `{}`; expected `contract = path::to::ContractTrait`, `handler` or `crate = \"...\"` (the path of a renamed hub-runtime)",
                path_text(&meta.path)
            )))
        } else {
            Err(meta.error(format!(
                "unsupported contract attribute `{}`; expected `crate = \"...\"` (the path of a renamed hub-protocol)",
                path_text(&meta.path)
            )))
        }
    };
    // One argument at a time: syn's meta parser stops at the first bad one, and what follows
    // it (`crate = "..."`, `client = ...`) must still count, so that error stays the only one.
    for one in arguments(attr) {
        if let Err(e) = syn::parse::Parser::parse2(syn::meta::parser(&mut argument), one) {
            errors.push(e);
        }
    }
    if let Some(krate) = krate {
        args.krate = krate;
    }
    args
}

/// `attr` split at its top-level commas (not those inside groups or angle brackets).
fn arguments(attr: TokenStream) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let mut current = TokenStream::new();
    let mut angles = 0usize;
    for token in attr {
        if let TokenTree::Punct(punct) = &token {
            match punct.as_char() {
                '<' => angles += 1,
                '>' => angles = angles.saturating_sub(1),
                ',' if angles == 0 => {
                    out.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
        }
        current.extend([token]);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
