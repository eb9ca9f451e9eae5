//! Conformance of integrity: the chain verifies, checkpoints sign its head with the store's
//! key, and the first claim of the signing key stands.

use std::sync::Arc;

use stele_core::Seq;
use stele_core::checkpoint::SigningKey;

use super::{T0, TEST_SIGNING_SEED, event, org, request};
use crate::Store;

pub async fn the_chain_verifies_and_checkpoints_sign_its_head(store: Arc<dyn Store>) {
    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(
        report.ok && report.entries == 0,
        "an empty chain verifies: {report:?}"
    );

    assert_eq!(
        store.checkpoint_key_ids().await.unwrap(),
        Vec::<String>::new(),
        "no checkpoint, no key"
    );

    for i in 0..4 {
        store
            .append(
                a,
                request(vec![event("create", T0 + i), event("update", T0 - i)]),
            )
            .await
            .unwrap();
        store
            .append(b, request(vec![event("delete", T0)]))
            .await
            .unwrap();
    }
    assert_eq!(
        store.checkpoint_now().await.unwrap(),
        2,
        "one per organization with new entries"
    );
    assert_eq!(
        store.checkpoint_now().await.unwrap(),
        0,
        "nothing new, nothing to sign"
    );
    store
        .append(a, request(vec![event("login", T0)]))
        .await
        .unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 1);

    let checkpoints = store.checkpoints(a, 10).await.unwrap();
    assert_eq!(
        checkpoints
            .iter()
            .map(|c| c.checkpoint.seq.get())
            .collect::<Vec<_>>(),
        vec![9, 8],
        "newest first"
    );
    for c in &checkpoints {
        c.verify(&public).expect("signed by the store's key");
    }
    assert_eq!(
        store.checkpoint_key_ids().await.unwrap(),
        vec![public.key_id()],
        "one key signed them all"
    );
    // The first claim of the database's signing key stands; later ones get it back.
    assert_eq!(store.claim_signing_key("key-a").await.unwrap(), "key-a");
    assert_eq!(store.claim_signing_key("key-b").await.unwrap(), "key-a");

    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (
            report.entries,
            report.first_seq,
            report.last_seq,
            report.checkpoints
        ),
        (9, Some(Seq::new(1)), Some(Seq::new(9)), 2)
    );
    let report = store.verify(b, Some(&public)).await.unwrap();
    assert!(
        report.ok && report.entries == 4 && report.checkpoints == 1,
        "{report:?}"
    );

    let stranger = SigningKey::from_seed([1; 32]).public_key();
    let report = store.verify(a, Some(&stranger)).await.unwrap();
    assert!(!report.ok);
    assert_eq!(
        report.problem.unwrap().kind,
        crate::ProblemKind::BadSignature
    );
}
