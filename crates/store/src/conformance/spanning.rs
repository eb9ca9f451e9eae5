//! Conformance of requests whose events span organizations (a platform's batch naming each
//! event's organization, [`crate::PreparedEvent::for_org`]): all of it is committed or none, each
//! organization keeps its own gap-free `seq` and chain, the request key replays every receipt
//! with its organization, and event keys are each organization's own.

use std::sync::Arc;

use stele_core::{NewEvent, Seq};

use super::{T0, all, event, everyone, org, prepared};
use crate::{AppendOutcome, AppendRequest, OrgKey, Receipt, Store, StoreError};

/// A request appended for one organization whose events each go to the one given (`None`: the
/// request's own).
fn spanning(events: Vec<(NewEvent, Option<OrgKey>)>) -> AppendRequest {
    let (events, targets): (Vec<_>, Vec<_>) = events.into_iter().unzip();
    AppendRequest {
        events: prepared(events)
            .into_iter()
            .zip(targets)
            .map(|(e, target)| match target {
                Some(org) => e.for_org(org),
                None => e,
            })
            .collect(),
        idempotency_key: None,
        fingerprint: [0; 32],
    }
}

async fn count(store: &Arc<dyn Store>, org: OrgKey) -> usize {
    all(store, org, everyone()).await.len()
}

/// Each receipt's entry is in its organization's trail (the request's own when the receipt
/// names none) and in no other of `orgs`.
async fn assert_stored_where_receipts_say(
    store: &Arc<dyn Store>,
    home: OrgKey,
    orgs: &[OrgKey],
    outcome: &AppendOutcome,
) {
    for receipt in &outcome.receipts {
        let at = receipt.org.unwrap_or(home);
        let entry = store.get(at, &receipt.id).await.unwrap();
        assert_eq!(
            entry.map(|e| e.seq),
            Some(receipt.seq),
            "{receipt:?} in {at}"
        );
        for other in orgs.iter().filter(|o| **o != at) {
            assert!(store.get(*other, &receipt.id).await.unwrap().is_none());
        }
    }
}

pub async fn a_request_spanning_organizations_is_all_or_nothing(store: Arc<dyn Store>) {
    let (a, b, c) = (
        org(&store, "a").await,
        org(&store, "b").await,
        org(&store, "c").await,
    );
    let mut first = spanning(vec![(event("create", T0), None)]);
    first.idempotency_key = Some("k".into());
    first.fingerprint = [1; 32];
    store.append(a, first).await.unwrap();

    // The key reused for another request: refused, and nothing of it stored anywhere.
    let mut reused = spanning(vec![
        (event("create", T0), Some(b)),
        (event("create", T0), None),
        (event("create", T0), Some(c)),
    ]);
    reused.idempotency_key = Some("k".into());
    reused.fingerprint = [2; 32];
    let refused = store.append(a, reused).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );

    // An organization that does not exist, named after two that do: refused whole.
    let missing = OrgKey::new(i64::MAX - 7);
    let refused = store
        .append(
            a,
            spanning(vec![
                (event("create", T0), Some(b)),
                (event("create", T0), Some(c)),
                (event("create", T0), Some(missing)),
            ]),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(
        (
            count(&store, a).await,
            count(&store, b).await,
            count(&store, c).await
        ),
        (1, 0, 0)
    );

    // Then a good one: every part stored, each organization's sequence without a gap.
    let stored = store
        .append(
            a,
            spanning(vec![
                (event("update", T0), Some(c)),
                (event("update", T0), None),
                (event("update", T0), Some(b)),
                (event("delete", T0), Some(c)),
            ]),
        )
        .await
        .unwrap();
    let seqs: Vec<_> = stored
        .receipts
        .iter()
        .map(|r| (r.org, r.seq.get()))
        .collect();
    assert_eq!(seqs, [(Some(c), 1), (None, 2), (Some(b), 1), (Some(c), 2)]);
    assert_stored_where_receipts_say(&store, a, &[a, b, c], &stored).await;
}

pub async fn seq_is_gap_free_per_organization_across_spanning_requests(store: Arc<dyn Store>) {
    let (a, b, c) = (
        org(&store, "a").await,
        org(&store, "b").await,
        org(&store, "c").await,
    );
    let orgs = [a, b, c];
    // Spanning requests and single-organization ones at once, so that a group commit mixes them.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let home = orgs[i % 3];
            let request = if i % 2 == 0 {
                spanning(vec![
                    (event("create", T0 + i as i64), Some(orgs[(i + 1) % 3])),
                    (event("update", T0 + i as i64), None),
                    (event("delete", T0 + i as i64), Some(orgs[(i + 2) % 3])),
                ])
            } else {
                spanning(vec![(event("login", T0 + i as i64), None)])
            };
            (home, store.append(home, request).await.unwrap())
        }));
    }
    for task in tasks {
        let (home, outcome) = task.await.unwrap();
        assert_stored_where_receipts_say(&store, home, &orgs, &outcome).await;
    }
    // 12 spanning requests put one event in each organization; 12 single ones, 4 per organization.
    for org in orgs {
        let mut seqs: Vec<i64> = all(&store, org, everyone())
            .await
            .iter()
            .map(|e| e.seq.get())
            .collect();
        seqs.sort();
        assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
        let report = store.verify(org, None).await.unwrap();
        assert!(report.ok && report.entries == 16, "{report:?}");
    }
}

pub async fn a_spanning_request_key_replays_every_receipt_with_its_organization(
    store: Arc<dyn Store>,
) {
    let (a, b, c) = (
        org(&store, "a").await,
        org(&store, "b").await,
        org(&store, "c").await,
    );
    let make = || AppendRequest {
        idempotency_key: Some("retry-me".into()),
        fingerprint: [5; 32],
        ..spanning(vec![
            (event("create", T0), Some(b)),
            (event("create", T0), Some(c)),
            (event("update", T0), Some(b)),
        ])
    };
    let first = store.append(a, make()).await.unwrap();
    assert!(!first.replayed);
    let again = store.append(a, make()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.receipts, first.receipts);
    let orgs: Vec<_> = again.receipts.iter().map(|r| r.org).collect();
    assert_eq!(orgs, [Some(b), Some(c), Some(b)]);
    assert_eq!(
        (
            count(&store, a).await,
            count(&store, b).await,
            count(&store, c).await
        ),
        (0, 2, 1)
    );
    // The key is the organization's the request was appended for: appended for `b`, the same
    // key is another request.
    let elsewhere = store.append(b, make()).await.unwrap();
    assert!(!elsewhere.replayed);
    assert_eq!(count(&store, b).await, 4);
}

pub async fn event_keys_of_a_spanning_request_are_per_organization(store: Arc<dyn Store>) {
    let (a, b) = (org(&store, "a").await, org(&store, "b").await);
    let keyed = |k: &str| NewEvent {
        idempotency_key: Some(k.into()),
        ..event("create", T0)
    };
    let first = store
        .append(
            a,
            spanning(vec![
                (keyed("x"), None),
                (keyed("x"), Some(b)),
                (keyed("x"), Some(b)),
                (keyed("y"), Some(b)),
            ]),
        )
        .await
        .unwrap();
    let r = &first.receipts;
    assert_eq!(r[0].seq, Seq::new(1));
    assert_eq!((r[1].org, r[1].seq), (Some(b), Seq::new(1)));
    assert_eq!(
        r[2], r[1],
        "the same key for the same organization: one event"
    );
    assert_eq!((count(&store, a).await, count(&store, b).await), (1, 2));

    // `b`'s own request with key `x` gets the entry the spanning request wrote, and a spanning
    // request naming `b` again gets it too, with `b` on the receipt.
    let own = store
        .append(b, spanning(vec![(keyed("x"), None)]))
        .await
        .unwrap();
    assert!(own.replayed);
    assert_eq!(
        own.receipts,
        [Receipt {
            org: None,
            ..r[1].clone()
        }]
    );
    let again = store
        .append(
            a,
            spanning(vec![(keyed("y"), Some(b)), (keyed("z"), Some(b))]),
        )
        .await
        .unwrap();
    assert_eq!(again.receipts[0], r[3]);
    assert!(!again.replayed);
    assert_eq!((count(&store, a).await, count(&store, b).await), (1, 3));
}
