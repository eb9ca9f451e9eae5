//! Conformance of idempotency: a request key replays the original receipts, event keys
//! deduplicate, and a key reused for another request is refused without a trace.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use stele_core::{NewEvent, Seq};

use super::{T0, all, event, everyone, org, prepared, request};
use crate::{AppendRequest, Store, StoreError};

pub async fn a_failed_request_leaves_nothing_behind(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut first = request(vec![event("create", T0)]);
    first.idempotency_key = Some("k".into());
    first.fingerprint = [1; 32];
    store.append(a, first).await.unwrap();
    // Same key, different request: refused, and none of its events stored.
    let mut second = request(vec![event("create", T0), event("delete", T0)]);
    second.idempotency_key = Some("k".into());
    second.fingerprint = [2; 32];
    assert!(matches!(
        store.append(a, second).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(all(&store, a, everyone()).await.len(), 1);
    // The sequence continues without a gap.
    let next = store
        .append(a, request(vec![event("create", T0)]))
        .await
        .unwrap();
    assert_eq!(next.receipts[0].seq, Seq::new(2));
}

pub async fn request_idempotency_key_replays_the_original_receipts(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let body = Sha256::digest(b"the same body").into();
    let make = || AppendRequest {
        events: prepared(vec![event("create", T0), event("update", T0)]),
        idempotency_key: Some("retry-me".into()),
        fingerprint: body,
    };
    let first = store.append(a, make()).await.unwrap();
    assert!(!first.replayed);
    let again = store.append(a, make()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(first.receipts, again.receipts);
    assert_eq!(all(&store, a, everyone()).await.len(), 2);
    // The key is per organization.
    let b = org(&store, "b").await;
    assert!(!store.append(b, make()).await.unwrap().replayed);
}

pub async fn event_idempotency_keys_deduplicate_within_and_across_batches(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let keyed = |k: &str| NewEvent {
        idempotency_key: Some(k.into()),
        ..event("create", T0)
    };
    let first = store
        .append(a, request(vec![keyed("x"), keyed("y"), keyed("x")]))
        .await
        .unwrap();
    assert_eq!(first.receipts[0], first.receipts[2]);
    assert_ne!(first.receipts[0], first.receipts[1]);
    let second = store
        .append(a, request(vec![keyed("y"), keyed("z")]))
        .await
        .unwrap();
    assert_eq!(second.receipts[0], first.receipts[1]);
    assert_eq!(all(&store, a, everyone()).await.len(), 3);
}
