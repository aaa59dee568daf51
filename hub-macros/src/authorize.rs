//! `authorize` inside `#[hub(...)]`, on the impl block (every connection) or on a method (every
//! call of it):
//!
//! - `authorize`: any authenticated user;
//! - `authorize(role = "admin")`: that role (`"admin, owner"`: any of them);
//! - `authorize(claim = "scope")` / `authorize(claim = "scope", value = "write")`: that claim;
//! - `authorize(policy = path::to::function)`: a `fn(&Identity) -> bool` of the user's.
//!
//! Requirements in one `authorize(...)`, and several `authorize` on one item, must all hold.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Path};

use crate::names::{path_at, path_text};

const FORMS: &str = "`authorize`, `authorize(role = \"admin\")`, `authorize(claim = \"scope\", value = \"write\")` or `authorize(policy = path::to::function)`";

/// One requirement, as written.
pub(crate) enum Requirement {
    Authenticated,
    Role(LitStr),
    Claim(LitStr, Option<LitStr>),
    Policy(Path),
}

/// Reads one `authorize` or `authorize(...)` (the path `authorize` is already read).
pub(crate) fn parse(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<Requirement>> {
    if meta.input.peek(syn::Token![=]) {
        return Err(meta.error(format!(
            "`authorize` takes its requirements in parentheses, not after `=`; write {FORMS}"
        )));
    }
    if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
        return Ok(vec![Requirement::Authenticated]);
    }
    if empty_parentheses(meta.input) {
        return Err(
            meta.error("`authorize()` names no requirement; write `authorize` alone to require any authenticated user")
        );
    }
    let mut role: Option<LitStr> = None;
    let mut claim: Option<LitStr> = None;
    let mut value: Option<LitStr> = None;
    let mut policy: Option<Path> = None;
    meta.parse_nested_meta(|inner| {
        let key = inner.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        match key.as_str() {
            "role" => {
                let lit = string(&inner, "role", "role = \"admin\"")?;
                if lit.value().split(',').all(|r| r.trim().is_empty()) {
                    return Err(syn::Error::new(lit.span(), "a role cannot be empty"));
                }
                if role.is_some() {
                    return Err(inner.error(
                        "`role` is given twice; to accept any of several roles, list them in one string: `role = \"admin, owner\"`",
                    ));
                }
                role = Some(lit);
            }
            "claim" => {
                let lit = string(&inner, "claim", "claim = \"scope\"")?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "a claim type cannot be empty"));
                }
                if claim.is_some() {
                    return Err(inner.error(
                        "`claim` is given twice; to require a second claim, add another `authorize(claim = \"...\")`",
                    ));
                }
                claim = Some(lit);
            }
            "value" => {
                let lit = string(&inner, "value", "value = \"write\"")?;
                if value.is_some() {
                    return Err(inner.error("`value` is given twice"));
                }
                value = Some(lit);
            }
            "policy" => {
                let expr: Expr = inner.value()?.parse()?;
                let path = match expr {
                    Expr::Path(p) if p.qself.is_none() => p.path,
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "`policy` takes the path of a function `fn(&Identity) -> bool`, such as `policy = is_admin`",
                        ))
                    }
                };
                if policy.is_some() {
                    return Err(inner.error(
                        "`policy` is given twice; to require a second policy, add another `authorize(policy = ...)`",
                    ));
                }
                policy = Some(path);
            }
            _ => {
                return Err(inner.error(format!(
                    "unsupported authorization requirement `{}`; expected `role = \"...\"`, `claim = \"...\"` (optionally with `value = \"...\"`) or `policy = path::to::function`",
                    path_text(&inner.path)
                )))
            }
        }
        Ok(())
    })?;
    if let (Some(value), None) = (&value, &claim) {
        return Err(syn::Error::new(
            value.span(),
            "`value` needs a `claim` beside it: `authorize(claim = \"scope\", value = \"write\")`",
        ));
    }
    let mut out = Vec::new();
    if let Some(role) = role {
        out.push(Requirement::Role(role));
    }
    if let Some(claim) = claim {
        out.push(Requirement::Claim(claim, value));
    }
    if let Some(policy) = policy {
        out.push(Requirement::Policy(policy));
    }
    Ok(out)
}

/// Whether the input starts with `()`.
fn empty_parentheses(input: syn::parse::ParseStream<'_>) -> bool {
    let fork = input.fork();
    let parsed = (|| -> syn::Result<bool> {
        let content;
        syn::parenthesized!(content in fork);
        Ok(content.is_empty())
    })();
    parsed.unwrap_or(false)
}

/// A string literal after `key =`, with a plain message when it is something else.
fn string(meta: &ParseNestedMeta<'_>, key: &str, example: &str) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Str(lit), .. }) => Ok(lit),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a string in quotes: `{example}`"),
        )),
    }
}

/// `&[Requirement, ...]` for the generated code.
pub(crate) fn tokens(krate: &Path, requirements: &[Requirement]) -> TokenStream {
    let items = requirements.iter().map(|r| match r {
        Requirement::Authenticated => quote!(#krate::__private::Requirement::Authenticated),
        Requirement::Role(role) => quote!(#krate::__private::Requirement::Role(#role)),
        Requirement::Claim(kind, None) => {
            quote!(#krate::__private::Requirement::Claim(#kind, ::std::option::Option::None))
        }
        Requirement::Claim(kind, Some(value)) => {
            quote!(#krate::__private::Requirement::Claim(#kind, ::std::option::Option::Some(#value)))
        }
        Requirement::Policy(path) => {
            // Spanned at the path: a function of another type is reported there, against the
            // `fn(&Identity) -> bool` of `Requirement::Policy`.
            let span = path.span();
            let krate = path_at(krate, span);
            quote_spanned!(span=> #krate::__private::Requirement::Policy(#path))
        }
    });
    quote!(&[#(#items),*])
}
