//! NATS subjects: `{prefix}.{hub}.{kind}[.{name}]`, every hub, group, user and connection name
//! encoded as one subject token.
//!
//! A NATS token may not be empty and may not hold `.`, `*`, `>` or whitespace, and the server
//! limits a subject's length; hub names are free text. So a name becomes `n` followed by its
//! UTF-8 bytes in base64url without padding (`n` alone for the empty name; the alphabet is
//! `A-Z a-z 0-9 - _`, all plain subject characters). A name longer than [`MAX_PLAIN`] bytes
//! becomes `h` followed by the base64url SHA-256 of its bytes (44 characters), so no subject
//! grows past about 120 characters plus the prefix. Two long names could share a subject only
//! through a hash collision, and even then nothing is mis-delivered: every payload carries the
//! real name (see `frames`) and the receiver drops a payload whose name is not the one it
//! subscribed for.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Names up to this many bytes are carried in the subject itself (at most 66 characters).
pub(super) const MAX_PLAIN: usize = 48;

/// One name as a subject token (see the module documentation).
pub(crate) fn token(name: &str) -> String {
    if name.len() <= MAX_PLAIN {
        let mut token = String::with_capacity(1 + name.len().div_ceil(3) * 4);
        token.push('n');
        URL_SAFE_NO_PAD.encode_string(name.as_bytes(), &mut token);
        token
    } else {
        let mut token = String::with_capacity(44);
        token.push('h');
        URL_SAFE_NO_PAD.encode_string(Sha256::digest(name.as_bytes()), &mut token);
        token
    }
}

/// Whether `prefix` can start a subject: dot-separated non-empty tokens without wildcards or
/// whitespace.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && !token
                    .chars()
                    .any(|c| c == '*' || c == '>' || c.is_whitespace() || c.is_control())
        })
}

/// Builds a hub's subjects.
pub(super) struct Subjects<'a> {
    pub(super) prefix: &'a str,
    pub(super) hub: &'a str,
}

impl Subjects<'_> {
    fn subject(&self, kind: &str, name: Option<&str>) -> String {
        let hub = token(self.hub);
        match name {
            Some(name) => format!("{}.{hub}.{kind}.{}", self.prefix, token(name)),
            None => format!("{}.{hub}.{kind}", self.prefix),
        }
    }

    /// Messages for every connection (and for several groups at once).
    pub(super) fn all(&self) -> String {
        self.subject("all", None)
    }

    /// Messages for a group's members.
    pub(super) fn group(&self, group: &str) -> String {
        self.subject("group", Some(group))
    }

    /// Messages for a user's connections.
    pub(super) fn user(&self, user: &str) -> String {
        self.subject("user", Some(user))
    }

    /// Messages, group commands and client-result invocations for one connection.
    pub(super) fn connection(&self, id: &str) -> String {
        self.subject("conn", Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_token(token: &str) -> bool {
        !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn every_name_is_one_plain_token() {
        let long = "x".repeat(10_000);
        for name in ["", ".", "a.b", "*", ">", "a b", "\t\r\n", "ünï cødé ✓", &long] {
            let token = token(name);
            assert!(plain_token(&token), "{name:?} → {token:?}");
            assert!(token.len() <= 66, "{name:?} → {} characters", token.len());
        }
        assert_ne!(token(""), token("\0"));
        assert_ne!(token(&long), token(&"x".repeat(10_001)));
        let subjects = Subjects {
            prefix: "hub",
            hub: "my::Hub",
        };
        assert_eq!(subjects.all().split('.').count(), 3);
        assert_eq!(subjects.group("a.b.*.>").split('.').count(), 4);
    }

    #[test]
    fn names_up_to_the_limit_stay_readable_and_distinct() {
        let at = "y".repeat(MAX_PLAIN);
        let over = "y".repeat(MAX_PLAIN + 1);
        assert!(token(&at).starts_with('n'));
        assert!(token(&over).starts_with('h'));
        assert_eq!(URL_SAFE_NO_PAD.decode(&token("g.1")[1..]).unwrap(), b"g.1".to_vec());
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(valid_prefix("hub"));
        assert!(valid_prefix("app.hub"));
        for bad in ["", ".", "a..b", "a.*", ">", "a b", "a."] {
            assert!(!valid_prefix(bad), "{bad:?}");
        }
    }
}
