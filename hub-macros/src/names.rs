//! Names and texts: wire names, and paths and types as one-line strings for messages and
//! descriptors.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// `send_message` → `SendMessage`.
pub(crate) fn pascal_case(rust_name: &str) -> String {
    let name = rust_name.strip_prefix("r#").unwrap_or(rust_name);
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A path as written, without spaces (`path::to::function`), for messages.
pub(crate) fn path_text(path: &syn::Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}

/// A path with every token at `span`: the crate path inside `quote_spanned!`, so an error in
/// the generated expression points at the user's tokens, not at the macro call.
pub(crate) fn path_at(path: &syn::Path, span: proc_macro2::Span) -> TokenStream {
    respan(quote::quote!(#path), span)
}

/// `tokens` with every token at `span`.
pub(crate) fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// Tokens as Rust source on one line, spaced as rustfmt would for a type: `Vec<String>`,
/// `&'static str`, `(u8, String)`, `dyn Stream<Item = u8> + Send`.
pub(crate) fn tokens_text(tokens: TokenStream) -> String {
    let mut out = String::new();
    write_tokens(tokens, &mut out);
    out.trim().to_string()
}

fn write_tokens(tokens: TokenStream, out: &mut String) {
    // Whether the last thing written was a word (ident or literal): two words need a space.
    let mut after_word = false;
    for token in tokens {
        match token {
            TokenTree::Ident(word) => {
                if after_word {
                    out.push(' ');
                }
                out.push_str(&word.to_string());
                after_word = true;
            }
            TokenTree::Literal(word) => {
                if after_word {
                    out.push(' ');
                }
                out.push_str(&word.to_string());
                after_word = true;
            }
            TokenTree::Punct(punct) => {
                match punct.as_char() {
                    ',' | ';' => {
                        out.push(punct.as_char());
                        out.push(' ');
                    }
                    '=' | '+' => {
                        if !out.ends_with(' ') {
                            out.push(' ');
                        }
                        out.push(punct.as_char());
                        out.push(' ');
                    }
                    other => out.push(other),
                }
                after_word = false;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                if group.delimiter() == Delimiter::None && after_word {
                    out.push(' ');
                }
                out.push_str(open);
                write_tokens(group.stream(), out);
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push_str(close);
                after_word = group.delimiter() == Delimiter::None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{pascal_case, tokens_text};

    #[test]
    fn converts() {
        assert_eq!(pascal_case("send_message"), "SendMessage");
        assert_eq!(pascal_case("echo"), "Echo");
        assert_eq!(pascal_case("get_user_name_identifier"), "GetUserNameIdentifier");
        assert_eq!(pascal_case("r#type"), "Type");
        assert_eq!(pascal_case("send_to_all2"), "SendToAll2");
        assert_eq!(pascal_case("_private"), "Private");
    }

    #[test]
    fn types_as_text() {
        let text = |ty: syn::Type| tokens_text(quote::quote!(#ty));
        assert_eq!(text(syn::parse_quote!(Vec<String>)), "Vec<String>");
        assert_eq!(text(syn::parse_quote!(&'static str)), "&'static str");
        assert_eq!(text(syn::parse_quote!((u8, String))), "(u8, String)");
        assert_eq!(
            text(syn::parse_quote!(std::collections::HashMap<String, Vec<u8>>)),
            "std::collections::HashMap<String, Vec<u8>>"
        );
        assert_eq!(
            text(syn::parse_quote!(Box<dyn Stream<Item = u8> + Send>)),
            "Box<dyn Stream<Item = u8> + Send>"
        );
        assert_eq!(text(syn::parse_quote!([u8; 4])), "[u8; 4]");
    }
}
