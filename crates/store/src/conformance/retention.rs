//! Conformance of retention: expired entries are read with what an archive needs and pruned
//! keeping their place in the chain; scheduled runs are claimed once.

use std::sync::Arc;

use stele_core::Seq;
use stele_core::checkpoint::SigningKey;

use super::{T0, TEST_SIGNING_SEED, all, event, everyone, org, request};
use crate::{Cutoffs, OrgSettings, Store};

const DAY: i64 = 24 * 3600 * 1000;

pub async fn retention_prunes_expired_entries_and_the_chain_still_verifies(store: Arc<dyn Store>) {
    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let now = T0;
    let in_channel = |channel: &str, action: &str, age_days: i64| {
        let mut e = event(action, now - age_days * DAY);
        e.channel = channel.to_string();
        e
    };
    // seq 1-3: a year and more ago (expire); 4: an old compliance entry (kept forever);
    // 5: an old auth entry (auth keeps 90 days); 6: a recent auth entry; 7-8 recent.
    store
        .append(
            a,
            request(vec![
                in_channel("default", "old-1", 400),
                in_channel("default", "old-2", 380),
                in_channel("billing", "old-3", 366),
            ]),
        )
        .await
        .unwrap();
    store
        .append(
            a,
            request(vec![
                in_channel("compliance", "keep", 500),
                in_channel("auth", "auth-old", 100),
                in_channel("auth", "auth-new", 10),
                in_channel("default", "new-1", 5),
                in_channel("default", "new-2", 364),
            ]),
        )
        .await
        .unwrap();
    store
        .append(b, request(vec![in_channel("default", "b-old", 900)]))
        .await
        .unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 2);
    let hashes_before = store.chain_hashes(a, Seq::new(8)).await.unwrap();

    let settings = OrgSettings {
        retention_days: Some(365),
        channel_retention_days: [
            ("auth".to_string(), Some(90)),
            ("compliance".to_string(), None),
        ]
        .into_iter()
        .collect(),
        ..OrgSettings::default()
    };
    let cutoffs = Cutoffs::at(&settings, now);

    // Read in batches of 2: oldest occurrence first, exactly the expired ones.
    let mut expired = Vec::new();
    let mut resume_after = 0;
    loop {
        let batch = store
            .expired_entries(a, &cutoffs, resume_after, 2)
            .await
            .unwrap();
        if batch.entries.is_empty() {
            break;
        }
        assert!(batch.entries.len() <= 2);
        resume_after = batch.resume_after;
        expired.extend(batch.entries);
    }
    let actions: Vec<&str> = expired
        .iter()
        .map(|r| r.entry.event.action.as_str())
        .collect();
    assert_eq!(actions, ["old-1", "old-2", "old-3", "auth-old"]);
    let org_a = store.find_org("a").await.unwrap();
    for r in &expired {
        assert_eq!(r.org_id, org_a.id);
        let seq = r.entry.seq;
        assert_eq!(
            r.hash,
            hashes_before[seq.leaf_index() as usize],
            "hash of {seq}"
        );
        let prev = if seq == Seq::FIRST {
            stele_core::chain::genesis(&org_a.id)
        } else {
            hashes_before[seq.prev().leaf_index() as usize]
        };
        assert_eq!(r.prev_hash, prev, "prev hash of {seq}");
        let checked = stele_core::seal::check(&r.entry.event, &r.personal_digest, &r.seal);
        assert!(checked.values_match, "values of {seq}");
        let digest = checked.event_digest;
        assert_eq!(
            stele_core::chain::entry_hash(
                &r.prev_hash,
                &r.org_id,
                seq,
                &r.entry.id,
                r.entry.recorded_at,
                &digest
            ),
            r.hash,
            "the archive can recompute entry {seq} from what it is given"
        );
        assert!(matches!(r.seal, stele_core::seal::Seal::V2(_)) && !r.erased);
    }

    // A seq the cutoffs do not expire is left alone, whatever the caller asks.
    let removed = store
        .prune_entries(a, &cutoffs, &[4, 6, 7].map(Seq::new))
        .await
        .unwrap();
    assert!(removed.values().all(|n| *n == 0), "{removed:?}");

    let seqs: Vec<Seq> = expired.iter().map(|r| r.entry.seq).collect();
    let removed = store.prune_entries(a, &cutoffs, &seqs).await.unwrap();
    assert_eq!(
        removed,
        [
            ("auth".to_string(), 1),
            ("billing".to_string(), 1),
            ("default".to_string(), 2)
        ]
        .into_iter()
        .collect()
    );
    let again = store.prune_entries(a, &cutoffs, &seqs).await.unwrap();
    assert!(again.values().all(|n| *n == 0), "already gone: {again:?}");
    assert!(
        store
            .expired_entries(a, &cutoffs, 0, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );

    let left: Vec<i64> = all(&store, a, everyone())
        .await
        .iter()
        .map(|e| e.seq.get())
        .collect();
    assert_eq!(left, [7, 6, 8, 4], "newest occurrence first");
    assert!(store.get(a, &expired[0].entry.id).await.unwrap().is_none());
    assert_eq!(
        all(&store, b, everyone()).await.len(),
        1,
        "another organization's entries are untouched"
    );
    assert_eq!(
        store.chain_hashes(a, Seq::new(8)).await.unwrap(),
        hashes_before,
        "pruned entries keep their place in the chain, so proofs still work"
    );

    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (
            report.entries,
            report.pruned_entries,
            report.pruned_up_to_seq,
            report.first_seq,
            report.last_seq,
            report.anchor_checkpoint_seq,
        ),
        (
            4,
            4,
            Some(Seq::new(3)),
            Some(Seq::new(4)),
            Some(Seq::new(8)),
            Some(Seq::new(8))
        )
    );

    // New entries extend the chain as before, and it still verifies.
    store
        .append(a, request(vec![event("after", now)]))
        .await
        .unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 1);
    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(
        report.ok && report.entries == 5 && report.checkpoints == 2,
        "{report:?}"
    );
}

pub async fn scheduled_runs_are_claimed_once(store: Arc<dyn Store>) {
    assert!(store.claim_scheduled_run("prune", T0).await.unwrap());
    assert!(!store.claim_scheduled_run("prune", T0).await.unwrap());
    assert!(
        !store.claim_scheduled_run("prune", T0 - DAY).await.unwrap(),
        "an older run is not due again"
    );
    assert!(store.claim_scheduled_run("other", T0).await.unwrap());
    assert!(store.claim_scheduled_run("prune", T0 + DAY).await.unwrap());
}
