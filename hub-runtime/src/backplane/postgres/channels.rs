//! Channel and table names: a few short, stable names per server and hub, whatever the hub
//! and server names are, kept within PostgreSQL's 63-byte identifiers and quoted where SQL
//! reads them as identifiers (so the prefix keeps its case).

/// PostgreSQL truncates identifiers (channel names included) longer than this.
const MAX_IDENTIFIER: usize = 63;

/// What the longest name adds to the prefix (`hub_backplane_payloads`, 22 bytes; `hub_srv_` and
/// 16 hex digits make 24).
const LONGEST_SUFFIX: usize = 24;

/// The longest prefix allowed, in bytes.
pub(super) const MAX_PREFIX: usize = MAX_IDENTIFIER - LONGEST_SUFFIX;

/// Whether `prefix` fits: short enough for every name built on it, and no NUL (PostgreSQL
/// refuses it in identifiers).
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX {
        return Err(format!(
            "the channel prefix is {} bytes long; at most {MAX_PREFIX} fit in PostgreSQL's 63-byte names",
            prefix.len()
        ));
    }
    if prefix.contains('\0') {
        return Err("the channel prefix contains a NUL character".into());
    }
    Ok(())
}

/// FNV-1a, 64 bits: stable across builds and platforms (every server of a fleet must agree on
/// the names, whatever Rust version built it).
pub(crate) fn stable_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The channel every server of a hub listens on: `{prefix}hub_{hash of the hub name}`.
pub(super) fn hub_channel(prefix: &str, hub: &str) -> String {
    format!("{prefix}hub_{:016x}", stable_hash(hub))
}

/// A server's own channel: `{prefix}hub_srv_{hash of the server name}`.
pub(super) fn server_channel(prefix: &str, server: &str) -> String {
    format!("{prefix}hub_srv_{:016x}", stable_hash(server))
}

/// The table of payloads too large for a notification.
pub(super) fn payload_table(prefix: &str) -> String {
    format!("{prefix}hub_backplane_payloads")
}

/// `name` as a quoted SQL identifier (case kept, quotes doubled).
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_stable_and_keep_case() {
        let long_hub = "a::very::long::module::path::".repeat(20) + "Hub";
        let prefix = "P".repeat(MAX_PREFIX);
        for name in [
            hub_channel(&prefix, &long_hub),
            server_channel(&prefix, &long_hub),
            payload_table(&prefix),
        ] {
            assert!(name.len() <= MAX_IDENTIFIER, "{name}");
        }
        assert_ne!(hub_channel("", "Chat"), hub_channel("", "chat"));
        assert_eq!(hub_channel("App_", "Chat"), hub_channel("App_", "Chat"));
        // Known value: the names must not change between releases.
        assert_eq!(hub_channel("", ""), "hub_cbf29ce484222325");
        assert!(check_prefix(&"x".repeat(MAX_PREFIX + 1)).is_err());
        assert!(check_prefix("a\0b").is_err());
        assert_eq!(quote_identifier("My\"App"), "\"My\"\"App\"");
    }
}
