//! Wire names.

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

#[cfg(test)]
mod tests {
    use super::pascal_case;

    #[test]
    fn converts() {
        assert_eq!(pascal_case("send_message"), "SendMessage");
        assert_eq!(pascal_case("echo"), "Echo");
        assert_eq!(pascal_case("get_user_name_identifier"), "GetUserNameIdentifier");
        assert_eq!(pascal_case("r#type"), "Type");
        assert_eq!(pascal_case("send_to_all2"), "SendToAll2");
        assert_eq!(pascal_case("_private"), "Private");
    }
}
