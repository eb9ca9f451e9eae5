//! Conformance of the trail: gap-free `seq` numbers, concurrent appends, what an entry keeps,
//! and that organizations never see each other's entries, groups or facets.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use stele_core::PageRequest;
use stele_core::filter::EventFilter;
use stele_core::{Actor, ActorType, Context, Entity, Outcome, Seq};

use super::{T0, all, event, everyone, org, request};
use crate::Store;

pub async fn seq_is_gap_free_per_organization(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    for i in 0..5 {
        let org = if i % 2 == 0 { a } else { b };
        store
            .append(
                org,
                request(vec![event("create", T0 + i), event("update", T0 + i)]),
            )
            .await
            .unwrap();
    }
    for (org, n) in [(a, 6), (b, 4)] {
        let mut seqs: Vec<i64> = all(&store, org, everyone())
            .await
            .iter()
            .map(|e| e.seq.get())
            .collect();
        seqs.sort();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    }
}

pub async fn concurrent_appends_are_all_committed(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(
                    a,
                    request(vec![event("create", T0 + i), event("update", T0 + i)]),
                )
                .await
                .unwrap()
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap().receipts);
    }
    let mut seqs: Vec<i64> = acked.iter().map(|r| r.seq.get()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=128).collect::<Vec<_>>());
    for receipt in &acked {
        let entry = store
            .get(a, &receipt.id)
            .await
            .unwrap()
            .expect("acknowledged entry");
        assert_eq!(entry.seq, receipt.seq);
    }
}

pub async fn organizations_never_see_each_other(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let mut e = event("delete", T0);
    e.context.correlation_id = Some("c1".into());
    e.entity = Some(Entity::new("Printer", Some("42".into()), None));
    let ra = store.append(a, request(vec![e.clone()])).await.unwrap();
    assert!(store.get(b, &ra.receipts[0].id).await.unwrap().is_none());
    assert!(all(&store, b, everyone()).await.is_empty());
    assert!(store.correlated(b, "c1", 10).await.unwrap().is_empty());
    let filter = EventFilter {
        entity_id: Some("42".into()),
        ..everyone()
    };
    assert!(all(&store, b, filter.clone()).await.is_empty());
    assert_eq!(all(&store, a, filter).await.len(), 1);
    assert!(store.facets(b).await.unwrap().actions.is_empty());
    assert!(store.get(a, "not-a-uuid").await.unwrap().is_none());
}

pub async fn entries_round_trip_every_field(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut e = event("bulk_update", T0 + 123);
    e.detailed_action = Some("printJob.retry".into());
    e.channel = "hardware".into();
    e.description = Some("Retried 2 jobs — «ünïcode» <b>".into());
    e.outcome = Outcome::Failure;
    e.actor = Actor {
        kind: ActorType::Api,
        id: Some("key_1".into()),
        name: None,
        email: None,
        href: Some("https://app.test/keys/1".into()),
        metadata: BTreeMap::from([("role".to_string(), json!("ci"))]),
        original_type: Some("service_account".into()),
    };
    e.entity = Some(Entity {
        kind: "PrintJob".into(),
        id: Some("j1".into()),
        name: Some("Benchy".into()),
        href: Some("https://app.test/jobs/j1".into()),
        metadata: BTreeMap::from([("pages".to_string(), json!(12))]),
    });
    e.entity_ids = vec!["j1".into(), "j2".into()];
    e.related_entities = vec![
        Entity::new("Printer", Some("p1".into()), Some("Prusa «MK4»".into())),
        Entity {
            href: Some("https://app.test/spools/s1".into()),
            metadata: BTreeMap::from([("grams".to_string(), json!(750.5))]),
            ..Entity::new("Spool", None, None)
        },
    ];
    e.origin = BTreeMap::from([
        ("protocol".to_string(), json!("workos")),
        ("version".to_string(), json!(2)),
    ]);
    e.context = Context {
        ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
        correlation_id: Some("corr".into()),
        request_id: Some("req".into()),
        reason: Some("operator asked".into()),
        source: Some("api".into()),
        api_key_id: Some("key_1".into()),
        impersonator: Some(stele_core::Impersonator {
            id: Some("s1".into()),
            email: Some("s@x".into()),
        }),
        location: Some("Berlin".into()),
    };
    e.changes = vec![stele_core::Change {
        field: "status".into(),
        old: Some(json!("failed")),
        new: Some(json!("queued")),
    }];
    e.metadata = BTreeMap::from([
        ("attempt".to_string(), json!(2)),
        ("dry".to_string(), json!(false)),
    ]);
    let r = store.append(a, request(vec![e.clone()])).await.unwrap();
    let got = store.get(a, &r.receipts[0].id).await.unwrap().unwrap();
    assert_eq!(got.event, e);
    assert_eq!(got.seq, Seq::new(1));
    assert!(got.recorded_at > 0);
    // The stored entry hashes as it was sealed, the widened fields included.
    let report = store.verify(a, None).await.unwrap();
    assert!(report.ok && report.entries == 1, "{report:?}");
    // Every entity is found by the entity filters, the related ones included.
    for (kind, id) in [("PrintJob", "j1"), ("Printer", "p1"), ("Spool", "j2")] {
        for filter in [
            EventFilter {
                entity_type: Some(kind.into()),
                ..EventFilter::default()
            },
            EventFilter {
                entity_id: Some(id.into()),
                ..EventFilter::default()
            },
        ] {
            let page = PageRequest {
                filter: filter.clone(),
                limit: 10,
                cursor: None,
            };
            let found = store.list(a, &page).await.unwrap();
            assert_eq!(found.entries.len(), 1, "{filter:?}");
        }
    }
    let f = store.facets(a).await.unwrap();
    assert_eq!(f.entity_types, vec!["PrintJob", "Printer", "Spool"]);
}

pub async fn correlated_entries_are_grouped(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut events = Vec::new();
    for i in 0..3 {
        let mut e = event("update", T0 + i);
        e.context.correlation_id = Some(if i < 2 { "req-1" } else { "req-2" }.into());
        events.push(e);
    }
    store.append(a, request(events)).await.unwrap();
    let group = store.correlated(a, "req-1", 10).await.unwrap();
    assert_eq!(
        group.iter().map(|e| e.seq.get()).collect::<Vec<_>>(),
        vec![2, 1]
    );
}

pub async fn facets_list_what_the_organization_used(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let mut e = event("login", T0);
    e.detailed_action = Some("session.start".into());
    e.channel = "auth".into();
    e.entity = Some(Entity::new("Session", None, None));
    store
        .append(a, request(vec![e, event("create", T0)]))
        .await
        .unwrap();
    let mut other = event("export", T0);
    other.actor.kind = ActorType::System;
    store.append(b, request(vec![other])).await.unwrap();
    let f = store.facets(a).await.unwrap();
    assert_eq!(f.actions, vec!["create", "login"]);
    assert_eq!(f.detailed_actions, vec!["session.start"]);
    assert_eq!(f.channels, vec!["auth", "default"]);
    assert_eq!(f.entity_types, vec!["Session"]);
    assert_eq!(f.actor_types, vec!["user"]);
}
