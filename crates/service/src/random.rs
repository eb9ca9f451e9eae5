//! Randomness from the operating system, in one place: salts for the chain's personal digests,
//! secrets for API keys, sessions and links, and ids that must not be guessed.
//!
//! The OS source (getrandom(2) on Linux) blocks until it is seeded at boot and cannot fail after
//! that, so a failure here means the machine is broken and no secret could be made safely:
//! these functions panic rather than hand every caller an error it cannot act on.

/// `N` bytes from the OS random source.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// Fills `buf` from the OS random source.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random source is available");
}

/// A fresh 16-byte salt for one entry's personal digest.
pub fn salt() -> [u8; 16] {
    bytes()
}

/// `prefix` followed by `len` random bytes as lowercase hex: API keys, link tokens, job ids.
pub fn token(prefix: &str, len: usize) -> String {
    let mut buf = vec![0u8; len];
    fill(&mut buf);
    format!("{prefix}{}", hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_prefix_and_twice_as_many_hex_digits_as_bytes() {
        let t = token("sk_", 24);
        assert!(t.starts_with("sk_"));
        assert_eq!(t.len(), 3 + 48);
        assert!(
            t[3..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(token("", 16), token("", 16));
    }
}
