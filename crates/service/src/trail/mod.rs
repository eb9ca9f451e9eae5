//! The trail as the rest of Stele writes to it: [`record`] appends one of Stele's own entries
//! (an export, a sign-in, a key created, a retention run, an erasure, a print-log change) to an
//! organization's trail; [`activity`] builds the entries for what members, keys and operators do.
//!
//! Client events take the other way in (the API's ingest seals a whole batch and appends it with
//! its idempotency key); an entry recorded here is sealed with a fresh salt and has no key,
//! because nothing can retry it.

pub mod activity;

use stele_core::chain::SealedEvent;
use stele_core::event::{Actor, Context, NewEvent};
use stele_store::{AppendRequest, OrgKey, Receipt, Store, StoreError};

use crate::random;

/// Who does something Stele records about itself (the entry's actor), from where (its context),
/// and for whom: what a platform key or the operator does to an organization (its keys, its
/// members) is recorded in the organization's trail and in the platform's own
/// (docs/platforms.md, "The platform's own trail"); what an organization's own members and keys
/// do, in the organization's alone. Every use case takes one and records with [`record_by`], so
/// every door (API, console, CLI) records the same entries in the same trails.
#[derive(Debug, Clone)]
pub struct By {
    pub actor: Actor,
    pub context: Context,
    /// Done with a platform key or by the operator: also recorded in the platform's trail.
    pub for_platform: bool,
}

impl By {
    /// Someone acting within the organization (its own member or key).
    pub fn new(actor: Actor, context: Context) -> By {
        By {
            actor,
            context,
            for_platform: false,
        }
    }

    /// A platform key or the operator, acting on an organization.
    pub fn platform(actor: Actor, context: Context) -> By {
        By {
            actor,
            context,
            for_platform: true,
        }
    }
}

/// Appends one of Stele's own entries to the organization's trail and, when `by` acts for the
/// platform, to the platform's too (once, if they are the same); returns the organization's
/// receipt. The event's actor and
/// context are `by`'s (the caller built it from them).
pub async fn record_by(
    store: &dyn Store,
    org: OrgKey,
    event: NewEvent,
    by: &By,
) -> Result<Receipt, StoreError> {
    let receipt = record(store, org, event.clone()).await?;
    if by.for_platform {
        let platform = store.platform_org().await?;
        // Once for the platform's own organization (a platform key made or revoked).
        if platform.key != org {
            record(store, platform.key, event).await?;
        }
    }
    Ok(receipt)
}

/// Appends one of Stele's own entries to the platform's own trail: what a platform key or the
/// operator does to an organization is recorded in the organization's trail and, through this,
/// in the platform's (use cases call it through [`record_by`]).
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
