//! The trail as the rest of Stele writes to it: [`record`] appends one of Stele's own entries
//! (an export, a sign-in, a key created, a retention run, an erasure, a print-log change) to an
//! organization's trail; [`activity`] builds the entries for what members, keys and operators do.
//!
//! Client events take the other way in (the API's ingest seals a whole batch and appends it with
//! its idempotency key); an entry recorded here is sealed with a fresh salt and has no key,
//! because nothing can retry it.

pub mod activity;

use stele_core::chain::SealedEvent;
use stele_core::event::NewEvent;
use stele_store::{AppendRequest, OrgKey, Receipt, Store, StoreError};

use crate::random;

/// Appends one of Stele's own entries to the platform's own trail too: what a platform key or the
/// operator does to an organization is recorded in the organization's trail (by the use case)
/// and, through this, in the platform's.
pub async fn record_for_platform(
    store: &dyn Store,
    event: NewEvent,
) -> Result<Receipt, StoreError> {
    let platform = store.platform_org().await?;
    record(store, platform.key, event).await
}

/// Appends one of Stele's own entries to the organization's trail and returns its receipt.
pub async fn record(
    store: &dyn Store,
    org: OrgKey,
    event: NewEvent,
) -> Result<Receipt, StoreError> {
    let salt = random::salt();
    let outcome = store
        .append(
            org,
            AppendRequest {
                events: vec![SealedEvent::seal(event, salt).into()],
                // No retry can repeat this append, so no idempotency key (and no fingerprint).
                idempotency_key: None,
                fingerprint: [0; 32],
            },
        )
        .await?;
    outcome
        .receipts
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Other("the store returned no receipt".into()))
}
