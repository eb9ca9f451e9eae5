//! API key secrets: how they are made and how they are hashed for storage.

use crate::random;
use sha2::{Digest, Sha256};
use stele_store::{KeyHash, NewApiKey, Scope};

/// Every key starts with this, so secret scanners and people can recognise one.
pub const KEY_PREFIX: &str = "stele_";

/// A freshly generated key: the secret (shown once) and what the store keeps.
pub struct GeneratedKey {
    pub secret: String,
    pub record: NewApiKey,
}

/// Generates a key with 192 bits from the OS random source.
pub fn generate(name: &str, scopes: Vec<Scope>) -> GeneratedKey {
    let secret = random::token(KEY_PREFIX, 24);
    GeneratedKey {
        record: NewApiKey {
            name: name.to_string(),
            scopes,
            hash: hash(&secret),
            prefix: secret[..KEY_PREFIX.len() + 6].to_string(),
        },
        secret,
    }
}

pub fn hash(secret: &str) -> KeyHash {
    KeyHash(Sha256::digest(secret.as_bytes()).into())
}

/// How an API key appears in the entries Stele records about what it did (an export, a
/// settings change): as the actor, and in the context.
pub fn actor_of(key: &stele_store::ApiKeyInfo) -> (stele_core::Actor, stele_core::Context) {
    let actor = stele_core::Actor {
        kind: stele_core::ActorType::Api,
        id: Some(key.id.clone()),
        name: Some(key.name.clone()),
        email: None,
    };
    let context = stele_core::Context {
        api_key_id: Some(key.id.clone()),
        source: Some("api".into()),
        ..stele_core::Context::default()
    };
    (actor, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_only_their_hash_is_kept() {
        let a = generate("a", vec![Scope::Read]);
        let b = generate("b", vec![Scope::Read]);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert_eq!(a.secret.len(), KEY_PREFIX.len() + 48);
        assert_eq!(a.record.hash, hash(&a.secret));
        assert!(a.secret.starts_with(&a.record.prefix));
    }
}
