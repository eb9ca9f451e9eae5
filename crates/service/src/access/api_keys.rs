//! API keys: how their secrets are made and hashed for storage, and creating and revoking one
//! ([`create`], [`revoke`]), which the console's keys page and `stele key` both do, recorded in
//! the organization's trail the same way.

use sha2::{Digest, Sha256};
use stele_core::time::Millis;
use stele_core::{Actor, Context};
use stele_store::{ApiKeyInfo, KeyHash, NewApiKey, OrgKey, Receipt, Scope, Store, StoreError};

use crate::random;
use crate::trail::{self, By, activity};

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

/// A key just made: its secret, shown this once and never again, and its entry in the trail.
pub struct CreatedKey {
    pub info: ApiKeyInfo,
    pub secret: String,
    pub recorded: Receipt,
}

/// Creates an API key for the organization and records it (`api_key.create`, channel
/// `security`) with `by` as who did it (in the platform's trail too when `by` acts for it).
pub async fn create(
    store: &dyn Store,
    org: OrgKey,
    name: &str,
    scopes: Vec<Scope>,
    by: By,
    now: Millis,
) -> Result<CreatedKey, StoreError> {
    let key = generate(name, scopes);
    let info = store.create_api_key(org, key.record).await?;
    let event = activity::key_created(by.actor.clone(), by.context.clone(), &info, now);
    let recorded = trail::record_by(store, org, event, &by).await?;
    Ok(CreatedKey {
        info,
        secret: key.secret,
        recorded,
    })
}

/// What revoking a key did.
pub enum Revoked {
    /// Revoked now, and recorded in its organization's trail.
    Now { info: ApiKeyInfo, recorded: Receipt },
    /// It was revoked before: nothing changed and nothing is recorded.
    Already(ApiKeyInfo),
}

/// Revokes a key by its public id (`key_…`) and records it (`api_key.revoke`) in the key's
/// organization's trail (and the platform's, when `by` acts for it). Revoking a revoked key
/// changes and records nothing.
pub async fn revoke(
    store: &dyn Store,
    key_id: &str,
    by: By,
    now: Millis,
) -> Result<Revoked, StoreError> {
    let revoked = store.revoke_api_key(key_id).await?;
    let info = revoked.key;
    if !revoked.by_this_call {
        return Ok(Revoked::Already(info));
    }
    let event = activity::key_revoked(by.actor.clone(), by.context.clone(), &info, now);
    let recorded = trail::record_by(store, info.org, event, &by).await?;
    Ok(Revoked::Now { info, recorded })
}

/// How an API key appears in the entries Stele records about what it did (an export, a
/// settings change): as the actor, and in the context.
pub fn actor_of(key: &ApiKeyInfo) -> (Actor, Context) {
    let actor = Actor {
        kind: stele_core::ActorType::Api,
        id: Some(key.id.clone()),
        name: Some(key.name.clone()),
        email: None,
        href: None,
        metadata: Default::default(),
        original_type: None,
    };
    let context = Context {
        api_key_id: Some(key.id.clone()),
        source: Some("api".into()),
        ..Context::default()
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
