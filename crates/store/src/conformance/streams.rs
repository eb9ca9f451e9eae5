//! Conformance of log streams: configuration within their organization, entries read in `seq`
//! order after a cursor, leases held by one process at a time, delivery results recorded only by
//! the lease holder under the revision it read, and a platform-wide stream's cursor per
//! organization.

use std::sync::Arc;

use stele_core::Seq;

use super::{T0, event, org, request};
use crate::{
    DeliveryReport, NewStream, OrgKey, Store, StoreError, StreamChange, StreamClaim, StreamStart,
    StreamState,
};

fn new_stream(name: &str, cursor: i64) -> NewStream {
    NewStream {
        name: name.into(),
        spec: r#"{"transport":"webhook","url":"https://siem.example.com/in"}"#.into(),
        start: StreamStart::After(Seq::new(cursor)),
        created_at: T0,
    }
}

fn delivered(org: OrgKey, cursor: i64, at: i64) -> DeliveryReport {
    DeliveryReport::Delivered {
        cursors: vec![(org, Seq::new(cursor))],
        entries: 2,
        at,
    }
}

fn claim(owner: &str, now: i64) -> StreamClaim {
    StreamClaim {
        owner: owner.into(),
        now,
        until: now + 10_000,
        renew_before: now + 5_000,
    }
}

pub async fn streams_are_configured_within_their_organization(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let first = store.create_stream(a, new_stream("siem", 0)).await.unwrap();
    assert!(first.id.starts_with("str_"), "{}", first.id);
    assert_eq!(
        (first.org, first.state, first.cursor, first.revision),
        (a, StreamState::Active, Seq::new(0), 1)
    );
    assert_eq!(first.secret_version, 1);
    let second = store.create_stream(a, new_stream("lake", 7)).await.unwrap();
    let listed: Vec<String> = store
        .streams(a)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(listed, ["siem", "lake"]);
    // Another organization sees none of them, by list, by id, by change or by delete.
    assert!(store.streams(b).await.unwrap().is_empty());
    assert_eq!(store.stream(b, &first.id).await.unwrap(), None);
    assert!(matches!(
        store
            .change_stream(b, &first.id, StreamChange::default())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.delete_stream(b, &first.id).await.unwrap());

    let paused = store
        .change_stream(
            a,
            &first.id,
            StreamChange {
                name: Some("siem-eu".into()),
                state: Some((StreamState::Paused, Some("maintenance".into()))),
                rotate_secret: Some(T0 + 5_000),
                at: T0 + 1,
                ..StreamChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(paused.name, "siem-eu");
    assert_eq!(paused.spec, first.spec, "unchanged parts stay");
    assert_eq!(
        (paused.state, paused.paused_reason.as_deref()),
        (StreamState::Paused, Some("maintenance"))
    );
    assert_eq!(
        (paused.secret_version, paused.previous_secret_until),
        (2, Some(T0 + 5_000))
    );
    assert_eq!((paused.revision, paused.updated_at), (2, T0 + 1));
    let resumed = store
        .change_stream(
            a,
            &first.id,
            StreamChange {
                state: Some((StreamState::Active, None)),
                cursor: Some(Seq::new(3)),
                at: T0 + 2,
                ..StreamChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (resumed.state, resumed.paused_reason.clone(), resumed.cursor),
        (StreamState::Active, None, Seq::new(3))
    );
    assert_eq!(store.stream(a, &first.id).await.unwrap(), Some(resumed));
    assert!(store.delete_stream(a, &second.id).await.unwrap());
    assert_eq!(store.streams(a).await.unwrap().len(), 1);
}

pub async fn stream_entries_follow_seq_after_a_cursor(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    assert_eq!(store.head_seq(a).await.unwrap(), Seq::new(0));
    assert!(
        store
            .entries_after(a, Seq::new(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let events = (0..5).map(|i| event(&format!("a.{i}"), T0 + i)).collect();
    store.append(a, request(events)).await.unwrap();
    store
        .append(b, request(vec![event("b.0", T0)]))
        .await
        .unwrap();
    assert_eq!(store.head_seq(a).await.unwrap(), Seq::new(5));
    assert_eq!(store.head_seq(b).await.unwrap(), Seq::new(1));
    let after = store.entries_after(a, Seq::new(1), 3).await.unwrap();
    let seqs: Vec<i64> = after.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!(after[0].event.action, "a.1");
    let rest = store.entries_after(a, Seq::new(4), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event.action, "a.4");
    // Several organizations in one read, each answered in its place.
    let each = store
        .entries_after_each(vec![
            (b, Seq::new(0), 10),
            (a, Seq::new(2), 2),
            (b, Seq::new(1), 10),
        ])
        .await
        .unwrap();
    let actions: Vec<Vec<&str>> = each
        .iter()
        .map(|entries| entries.iter().map(|e| e.event.action.as_str()).collect())
        .collect();
    assert_eq!(actions, [vec!["b.0"], vec!["a.2", "a.3"], vec![]]);
}

pub async fn stream_leases_go_to_one_owner_and_only_it_records(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let stream = store.create_stream(a, new_stream("siem", 0)).await.unwrap();
    let mine = store.claim_streams(claim("one", T0)).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].lease_owner.as_deref(), Some("one"));
    // A claim renews the owner's lease only once half of it has run.
    let again = store.claim_streams(claim("one", T0 + 1_000)).await.unwrap();
    assert_eq!(again[0].lease_until, Some(T0 + 10_000), "not renewed yet");
    let renewed = store.claim_streams(claim("one", T0 + 6_000)).await.unwrap();
    assert_eq!(renewed[0].lease_until, Some(T0 + 16_000), "renewed");
    // Another process gets nothing while the lease runs, and cannot record.
    assert!(
        store
            .claim_streams(claim("two", T0 + 1))
            .await
            .unwrap()
            .is_empty()
    );
    let delivered = |cursor: i64, at: i64| delivered(a, cursor, at);
    assert!(
        !store
            .record_delivery(&stream.id, "two", stream.revision, delivered(2, T0))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_delivery(&stream.id, "one", stream.revision, delivered(2, T0 + 2))
            .await
            .unwrap()
    );
    let now = store.stream(a, &stream.id).await.unwrap().unwrap();
    assert_eq!(
        (now.cursor, now.delivered, now.last_delivery_at),
        (Seq::new(2), 2, Some(T0 + 2))
    );
    // A failure counts and sets the back-off; a success clears it.
    let failed = DeliveryReport::Failed {
        error: "503 Service Unavailable".into(),
        at: T0 + 3,
        retry_at: T0 + 1_003,
    };
    assert!(
        store
            .record_delivery(&stream.id, "one", stream.revision, failed)
            .await
            .unwrap()
    );
    let now = store.stream(a, &stream.id).await.unwrap().unwrap();
    assert_eq!(
        (now.failures, now.retry_at, now.last_error.as_deref()),
        (1, Some(T0 + 1_003), Some("503 Service Unavailable"))
    );
    // A change moves the revision on: a delivery read before it records nothing.
    let rewound = store
        .change_stream(
            a,
            &stream.id,
            StreamChange {
                cursor: Some(Seq::new(0)),
                at: T0 + 4,
                ..StreamChange::default()
            },
        )
        .await
        .unwrap();
    assert!(
        !store
            .record_delivery(&stream.id, "one", stream.revision, delivered(5, T0 + 5))
            .await
            .unwrap()
    );
    assert_eq!(
        store.stream(a, &stream.id).await.unwrap().unwrap().cursor,
        Seq::new(0)
    );
    // The cursor never moves back by a delivery.
    assert!(
        store
            .record_delivery(&stream.id, "one", rewound.revision, delivered(4, T0 + 6))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_delivery(&stream.id, "one", rewound.revision, delivered(3, T0 + 7))
            .await
            .unwrap()
    );
    assert_eq!(
        store.stream(a, &stream.id).await.unwrap().unwrap().cursor,
        Seq::new(4)
    );
    // An expired lease goes to the next claimant; a released one at once.
    let theirs = store
        .claim_streams(claim("two", T0 + 20_000))
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
    assert!(
        store
            .claim_streams(claim("one", T0 + 20_001))
            .await
            .unwrap()
            .is_empty()
    );
    store.release_streams("two").await.unwrap();
    assert_eq!(
        store
            .claim_streams(claim("one", T0 + 20_002))
            .await
            .unwrap()
            .len(),
        1
    );
    // A refusal pauses the stream, and a paused stream is claimed by nobody.
    let refused = DeliveryReport::Refused {
        error: "410 Gone".into(),
        at: T0 + 20_003,
    };
    assert!(
        store
            .record_delivery(&stream.id, "one", rewound.revision, refused)
            .await
            .unwrap()
    );
    let now = store.stream(a, &stream.id).await.unwrap().unwrap();
    assert_eq!(
        (now.state, now.paused_reason.as_deref()),
        (StreamState::Paused, Some("410 Gone"))
    );
    assert!(
        store
            .claim_streams(claim("one", T0 + 20_004))
            .await
            .unwrap()
            .is_empty()
    );
    // A deleted organization's streams go with it.
    store.delete_org(a).await.unwrap();
    assert!(store.streams(a).await.unwrap().is_empty());
}

/// `(org, head, cursor)` of each organization a platform-wide stream covers.
async fn progress(store: &Arc<dyn Store>, id: &str) -> Vec<(OrgKey, i64, i64)> {
    store
        .stream_progress(id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.org, p.head.get(), p.cursor.get()))
        .collect()
}

pub async fn a_platform_wide_stream_keeps_a_cursor_per_organization(store: Arc<dyn Store>) {
    let platform = store.platform_org().await.unwrap().key;
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let three = (0..3).map(|i| event(&format!("a.{i}"), T0 + i)).collect();
    store.append(a, request(three)).await.unwrap();
    store
        .append(b, request(vec![event("b.0", T0)]))
        .await
        .unwrap();
    let every = |from_now| NewStream {
        start: StreamStart::EveryOrganization { from_now },
        ..new_stream("platform siem", 0)
    };
    // From now: each organization's cursor at its newest entry; from the first: all at 0.
    let now = store.create_stream(platform, every(true)).await.unwrap();
    assert!(now.platform_wide);
    let first = store.create_stream(platform, every(false)).await.unwrap();
    assert_eq!(
        progress(&store, &now.id).await,
        [(platform, 0, 0), (a, 3, 3), (b, 1, 1)]
    );
    assert_eq!(
        progress(&store, &first.id).await,
        [(platform, 0, 0), (a, 3, 0), (b, 1, 0)]
    );
    // An organization's own stream has no such progress.
    let own = store.create_stream(a, new_stream("own", 0)).await.unwrap();
    assert!(!own.platform_wide);
    assert!(progress(&store, &own.id).await.is_empty());
    // A delivery moves one organization's cursor, forward only, under the lease and revision.
    assert_eq!(
        store.claim_streams(claim("one", T0)).await.unwrap().len(),
        3
    );
    for (org, cursor, at) in [(a, 2, T0 + 1), (b, 1, T0 + 2), (a, 1, T0 + 3)] {
        assert!(
            store
                .record_delivery(&first.id, "one", first.revision, delivered(org, cursor, at))
                .await
                .unwrap()
        );
    }
    assert!(
        !store
            .record_delivery(&first.id, "two", first.revision, delivered(a, 3, T0 + 4))
            .await
            .unwrap()
    );
    assert_eq!(
        progress(&store, &first.id).await,
        [(platform, 0, 0), (a, 3, 2), (b, 1, 1)]
    );
    // The oldest waiting entry is the one after a's cursor (b's and the platform's are done).
    let waiting = store.entries_after(a, Seq::new(2), 1).await.unwrap()[0].recorded_at;
    assert_eq!(
        store.stream_oldest_waiting(&first.id).await.unwrap(),
        Some(waiting)
    );
    assert_eq!(store.stream_oldest_waiting(&now.id).await.unwrap(), None);
    let stream = store.stream(platform, &first.id).await.unwrap().unwrap();
    assert_eq!((stream.delivered, stream.cursor), (6, Seq::new(0)));
    // An organization made later starts at 0; a rewind moves every cursor.
    let c = org(&store, "c").await;
    assert_eq!(progress(&store, &first.id).await[3], (c, 0, 0));
    let rewound = store
        .change_stream(
            platform,
            &first.id,
            StreamChange {
                cursor: Some(Seq::new(0)),
                at: T0 + 5,
                ..StreamChange::default()
            },
        )
        .await
        .unwrap();
    assert!(rewound.revision > first.revision);
    assert_eq!(
        progress(&store, &first.id).await,
        [(platform, 0, 0), (a, 3, 0), (b, 1, 0), (c, 0, 0)]
    );
    // One batch of several organizations moves their cursors together.
    let together = DeliveryReport::Delivered {
        cursors: vec![(a, Seq::new(2)), (b, Seq::new(1)), (a, Seq::new(1))],
        entries: 3,
        at: T0 + 6,
    };
    assert!(
        store
            .record_delivery(&first.id, "one", rewound.revision, together)
            .await
            .unwrap()
    );
    assert_eq!(
        progress(&store, &first.id).await,
        [(platform, 0, 0), (a, 3, 2), (b, 1, 1), (c, 0, 0)]
    );
    // A deleted organization leaves the progress; a deleted stream takes its cursors along.
    store.delete_org(b).await.unwrap();
    let orgs: Vec<OrgKey> = progress(&store, &now.id)
        .await
        .iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(orgs, [platform, a, c]);
    assert!(store.delete_stream(platform, &now.id).await.unwrap());
    assert!(progress(&store, &now.id).await.is_empty());
}
