//! Conformance of integrity: the chain verifies, checkpoints sign its head with the store's
//! key, and the first claim of the signing key stands.

use std::sync::Arc;

use stele_core::Seq;
use stele_core::checkpoint::SigningKey;

use super::{T0, TEST_SIGNING_SEED, event, org, request};
use crate::{OrgKey, Store};

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

/// Proofs read stored subtrees for everything of 256 leaves and more (`crate::proofs`): they
/// must be exactly the proofs computed from every leaf, for every tree size a checkpoint could
/// name, on both sides of each stored level, and each organization's subtrees are its own.
pub async fn proofs_from_stored_subtrees_match_proofs_from_every_leaf(store: Arc<dyn Store>) {
    use stele_core::merkle::{self, Subtree};

    use crate::proofs::{consistency_path, inclusion_path};

    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    // 1,100 entries for `a` in requests of uneven sizes, so stored subtrees close in the middle
    // of groups and across them; `b` writes between them.
    let mut written = 0;
    for (i, size) in [1, 254, 2, 300, 211, 256, 76].into_iter().enumerate() {
        let events = (0..size)
            .map(|j| event("create", T0 + (written + j) as i64))
            .collect();
        store.append(a, request(events)).await.unwrap();
        store
            .append(b, request(vec![event("update", T0 + i as i64)]))
            .await
            .unwrap();
        written += size;
    }
    assert_eq!(written, 1100);
    // Their chain verifies, across the stored subtrees' blocks.
    let report = store.verify(a, None).await.unwrap();
    assert!(report.ok && report.entries == 1100, "{report:?}");
    let hashes = store.chain_hashes(a, Seq::new(1100)).await.unwrap();
    let leaves: Vec<_> = hashes.iter().map(|h| merkle::leaf_hash(h)).collect();

    for size in [
        1u64, 2, 255, 256, 257, 511, 512, 513, 768, 1023, 1024, 1025, 1100,
    ] {
        let tree = &leaves[..size as usize];
        let mut indexes: Vec<u64> = (0..size).step_by(37).collect();
        indexes.extend([0, 255.min(size - 1), 256.min(size - 1), size - 1]);
        for index in indexes {
            assert_eq!(
                inclusion_path(&*store, a, index, size).await.unwrap(),
                merkle::inclusion_proof(tree, index as usize),
                "inclusion of leaf {index} in {size}"
            );
        }
        for old in (0..=size).step_by(53).chain([255, 256, 257, 512, size]) {
            if old <= size {
                assert_eq!(
                    consistency_path(&*store, a, old, size).await.unwrap(),
                    merkle::consistency_proof(tree, old as usize),
                    "consistency of {old} with {size}"
                );
            }
        }
    }

    // An inclusion proof also reads the entry's hash and the one before it, across blocks too.
    for index in [0u64, 1, 255, 256, 511, 1099] {
        let found = crate::proofs::inclusion(&*store, a, index, 1100)
            .await
            .unwrap();
        assert_eq!(found.entry_hash, hashes[index as usize]);
        assert_eq!(
            found.prev_hash,
            index.checked_sub(1).map(|i| hashes[i as usize])
        );
        assert_eq!(found.path, merkle::inclusion_proof(&leaves, index as usize));
    }

    // What was stored: each closed subtree of 256 leaves and up, and nothing that has not closed.
    let closed = [(8, 0), (8, 3), (9, 1), (10, 0)].map(|(level, index)| Subtree { level, index });
    let expected: Vec<_> = closed
        .iter()
        .map(|t| merkle::root(&leaves[t.leaves().start as usize..t.leaves().end as usize]))
        .collect();
    assert_eq!(
        store.stored_subtrees(a, closed.to_vec()).await.unwrap(),
        expected
    );
    for not_closed in [(8, 4), (11, 0), (10, 1)] {
        let (level, index) = not_closed;
        assert!(
            store
                .stored_subtrees(a, vec![Subtree { level, index }])
                .await
                .is_err(),
            "{not_closed:?} has not closed"
        );
    }
    // `b` has 7 entries: no stored subtree at all, and `a`'s are not its own.
    assert!(store.stored_subtrees(b, vec![closed[0]]).await.is_err());
    let b_leaves: Vec<_> = store
        .chain_hashes(b, Seq::new(7))
        .await
        .unwrap()
        .iter()
        .map(|h| merkle::leaf_hash(h))
        .collect();
    assert_eq!(
        inclusion_path(&*store, b, 3, 7).await.unwrap(),
        merkle::inclusion_proof(&b_leaves, 3)
    );

    // Deleting `a` takes its subtrees with it.
    store.delete_org(a).await.unwrap();
    assert!(store.stored_subtrees(a, vec![closed[0]]).await.is_err());
    assert_eq!(
        inclusion_path(&*store, b, 6, 7).await.unwrap(),
        merkle::inclusion_proof(&b_leaves, 6)
    );
}

/// A verification resumes after a checkpoint an earlier one passed: it checks only what came
/// after, trusts nothing of the earlier state but the checkpoint's signature, and a recorded
/// point never moves back.
pub async fn verification_resumes_after_a_verified_checkpoint(store: Arc<dyn Store>) {
    use stele_core::merkle::{Frontier, leaf_hash};

    use crate::VerifiedPoint;

    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let a = org(&store, "a").await;
    let events = |n: i64| (0..n).map(|i| event("create", T0 + i)).collect();
    store.append(a, request(events(10))).await.unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 1);
    assert_eq!(store.last_verified(a).await.unwrap(), None);

    let full = store.verify(a, Some(&public)).await.unwrap();
    assert!(
        full.ok && full.entries == 10 && full.since_checkpoint_seq.is_none(),
        "{full:?}"
    );
    let at_10 = full
        .verified_through
        .clone()
        .expect("a checkpoint was passed");
    assert_eq!(at_10.checkpoint_seq, Seq::new(10));
    assert_eq!(at_10.frontier.size(), 10);
    store.record_verified(a, &at_10).await.unwrap();
    assert_eq!(store.last_verified(a).await.unwrap(), Some(at_10.clone()));

    store.append(a, request(events(5))).await.unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 1);
    let since = store
        .verify_since(a, Some(&public), Some(at_10.clone()))
        .await
        .unwrap();
    assert!(since.ok, "{since:?}");
    assert_eq!(
        (
            since.since_checkpoint_seq,
            since.entries,
            since.first_seq,
            since.checkpoints
        ),
        (Some(Seq::new(10)), 5, Some(Seq::new(11)), 1)
    );
    let at_15 = since.verified_through.clone().unwrap();
    assert_eq!(at_15.checkpoint_seq, Seq::new(15));

    // Not trusted, so everything is verified: a frontier that does not fold to the signed root,
    // one of another size, a point where there is no checkpoint, and any point without a key.
    let mut forged = Frontier::new();
    for i in 0..10u8 {
        forged.push(leaf_hash(&[i]));
    }
    let hashes = store.chain_hashes(a, Seq::new(9)).await.unwrap();
    let mut short = Frontier::new();
    for h in &hashes {
        short.push(leaf_hash(h));
    }
    for (point, key) in [
        (
            VerifiedPoint {
                checkpoint_seq: Seq::new(10),
                frontier: forged,
            },
            Some(&public),
        ),
        (
            VerifiedPoint {
                checkpoint_seq: Seq::new(10),
                frontier: short.clone(),
            },
            Some(&public),
        ),
        (
            VerifiedPoint {
                checkpoint_seq: Seq::new(9),
                frontier: short,
            },
            Some(&public),
        ),
        (at_10.clone(), None),
    ] {
        let report = store.verify_since(a, key, Some(point)).await.unwrap();
        assert!(report.ok && report.entries == 15 && report.since_checkpoint_seq.is_none());
    }

    // The recorded point only moves forward.
    store.record_verified(a, &at_15).await.unwrap();
    store.record_verified(a, &at_10).await.unwrap();
    assert_eq!(store.last_verified(a).await.unwrap(), Some(at_15));
}

/// Checks that proofs from the store's stored subtrees are those of every leaf, for the
/// organization's first `size` entries: inclusion of a few leaves in trees of a few sizes up to
/// `size`, and consistency from `old` to `size`. For a backend's upgrade tests (stored subtrees
/// filled in from an older database).
pub async fn assert_proofs_match_every_leaf(store: &dyn Store, org: OrgKey, old: u64, size: u64) {
    use stele_core::merkle;

    use crate::proofs::{consistency_path, inclusion_path};

    let leaves: Vec<_> = store
        .chain_hashes(org, Seq::new(size as i64))
        .await
        .unwrap()
        .iter()
        .map(|h| merkle::leaf_hash(h))
        .collect();
    for (index, tree) in [(0, size), (size / 3, old), (size - 1, size), (old - 1, old)] {
        assert_eq!(
            inclusion_path(store, org, index, tree).await.unwrap(),
            merkle::inclusion_proof(&leaves[..tree as usize], index as usize),
            "inclusion of leaf {index} in {tree}"
        );
    }
    assert_eq!(
        consistency_path(store, org, old, size).await.unwrap(),
        merkle::consistency_proof(&leaves, old as usize),
        "consistency of {old} with {size}"
    );
}
