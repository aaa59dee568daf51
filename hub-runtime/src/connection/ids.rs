//! Connection ids and tokens.

use rand::RngCore;

/// A new random id: 16 bytes from the OS-seeded CSPRNG, URL-safe base64 (22 characters).
pub(crate) fn random_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
