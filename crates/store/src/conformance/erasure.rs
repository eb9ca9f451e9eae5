//! Conformance of erasure: a person is pseudonymised in every entry that names them, the
//! erasure is recorded without naming them, and the chain still verifies.

use std::sync::Arc;

use serde_json::json;
use stele_core::checkpoint::SigningKey;
use stele_core::erase::Person;
use stele_core::filter::EventFilter;
use stele_core::{Actor, ActorType, Change, Entity, Seq};

use super::{T0, TEST_SIGNING_SEED, all, event, everyone, org, request};
use crate::Store;

pub async fn erasure_pseudonymises_a_person_and_the_chain_still_verifies(store: Arc<dyn Store>) {
    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let a = org(&store, "a").await;
    let mut ada = event("update", T0);
    ada.context.ip = Some("203.0.113.9".into());
    ada.context.user_agent = Some("Firefox".into());
    ada.description = Some("Ada changed a printer".into());
    let mut by_email = event("login", T0 + 1);
    by_email.actor.id = None;
    let mut bob = event("create", T0 + 2);
    bob.actor = Actor {
        kind: ActorType::User,
        id: Some("u2".into()),
        name: Some("Bob".into()),
        email: Some("bob@example.com".into()),
        href: None,
        metadata: Default::default(),
        original_type: None,
    };
    bob.context.ip = Some("203.0.113.9".into());
    store
        .append(a, request(vec![ada, by_email, bob]))
        .await
        .unwrap();
    store.checkpoint_now().await.unwrap();

    let pseudonym = "erased-0123456789abcdef".to_string();
    let outcome = store
        .erase_person(
            a,
            crate::Erasure {
                person: Person {
                    other: vec!["ada@example.com".into()],
                    ..Person::default()
                },
                pseudonym: pseudonym.clone(),
                record: stele_core::chain::erasure_record(
                    &pseudonym,
                    Some("GDPR request 7"),
                    T0 + 10,
                ),
                salt: [3; 16],
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.erased_entries, 2);
    assert_eq!(outcome.record.seq, Seq::new(4));

    let entries = all(&store, a, everyone()).await;
    let text = format!("{entries:?}");
    assert!(
        !text.contains("ada@example.com") && !text.contains("Ada\"") && !text.contains("Firefox"),
        "{text}"
    );
    for e in entries.iter().filter(|e| e.seq <= Seq::new(2)) {
        // The pseudonym stands where the id was, or the email when there was no id.
        let a = &e.event.actor;
        let shown = a.id.as_deref().or(a.email.as_deref());
        assert_eq!(shown, Some(pseudonym.as_str()));
        assert_eq!((a.name.clone(), e.event.context.ip.clone()), (None, None));
        assert!(a.id.is_none() || a.email.is_none());
    }
    let bob = entries.iter().find(|e| e.seq == Seq::new(3)).unwrap();
    assert_eq!(
        bob.event.actor.email.as_deref(),
        Some("bob@example.com"),
        "others are untouched"
    );

    let by = |f: EventFilter| {
        let store = store.clone();
        async move { all(&store, a, f).await.len() }
    };
    assert_eq!(
        by(EventFilter {
            actor: Some("u1".into()),
            ..everyone()
        })
        .await,
        0
    );
    assert_eq!(
        by(EventFilter {
            actor: Some("ada@example.com".into()),
            ..everyone()
        })
        .await,
        0
    );
    assert_eq!(
        by(EventFilter {
            ip: Some("203.0.113.9".into()),
            ..everyone()
        })
        .await,
        1,
        "only Bob's IP remains"
    );
    assert_eq!(
        by(EventFilter {
            actor: Some(pseudonym.clone()),
            ..everyone()
        })
        .await,
        2
    );

    let record = store.get(a, &outcome.record.id).await.unwrap().unwrap();
    assert_eq!(record.event.channel, "compliance");
    assert_eq!(record.event.actor.kind, ActorType::System);
    assert_eq!(record.event.metadata["entries"], json!(2));
    assert_eq!(
        record.event.entity_ids,
        vec!["1", "2"],
        "the erased entries, by seq"
    );
    let shown = format!("{record:?}");
    assert!(
        !shown.contains("ada@") && !shown.contains("\"Ada\""),
        "the record does not name the person"
    );

    store.checkpoint_now().await.unwrap();
    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(
        report.ok,
        "the chain still verifies after erasure: {report:?}"
    );
    assert_eq!((report.entries, report.checkpoints), (4, 2));
}

/// Erasure reaches every field (the person as entity, in descriptions, changes, metadata and
/// entity ids, whatever the case of their email), a redaction replaces named fields, and after
/// both the chain verifies and search by any old identifier finds nothing.
pub async fn erasure_and_redaction_reach_every_field_and_the_chain_still_verifies(
    store: Arc<dyn Store>,
) {
    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let a = org(&store, "a").await;
    let mut deleted = event("delete", T0);
    deleted.description = Some("Admin deleted José Álvarez (JOSE@example.com)".into());
    deleted.entity = Some(Entity::new(
        "User",
        Some("u-42".into()),
        Some("José Álvarez".into()),
    ));
    deleted.entity_ids = vec!["u-42".into()];
    deleted.changes = vec![Change {
        field: "email".into(),
        old: Some(json!("jose@example.com")),
        new: None,
    }];
    deleted
        .metadata
        .insert("note".into(), json!({"by": "José Álvarez"}));
    let mut secret = event("update", T0 + 1);
    secret.changes = vec![Change {
        field: "access_code".into(),
        old: Some(json!(1234)),
        new: Some(json!(5678)),
    }];
    let other = event("create", T0 + 2);
    let receipts = store
        .append(a, request(vec![deleted, secret, other]))
        .await
        .unwrap()
        .receipts;
    store.checkpoint_now().await.unwrap();

    let pseudonym = "erased-00000000000000aa".to_string();
    let outcome = store
        .erase_person(
            a,
            crate::Erasure {
                person: Person {
                    id: Some("u-42".into()),
                    email: Some("jose@example.com".into()),
                    name: Some("José Álvarez".into()),
                    other: vec![],
                },
                pseudonym: pseudonym.clone(),
                record: stele_core::chain::erasure_record(&pseudonym, None, T0 + 10),
                salt: [4; 16],
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.erased_entries, 1);
    let redacted = store
        .redact(
            a,
            crate::Redaction {
                id: receipts[1].id.clone(),
                fields: vec!["changes.access_code".into()],
                record: stele_core::chain::redaction_record(
                    &receipts[1].id,
                    &["changes.access_code".to_string()],
                    Some("logged by mistake"),
                    Actor::of_kind(ActorType::System),
                    T0 + 11,
                ),
                salt: [5; 16],
            },
        )
        .await
        .unwrap();
    assert_eq!(redacted.seq, Seq::new(2));

    let entries = all(&store, a, everyone()).await;
    let text = format!("{entries:?}");
    for gone in ["José", "Álvarez", "jose@", "JOSE@", "u-42", "1234", "5678"] {
        assert!(!text.contains(gone), "{gone} is still shown: {text}");
    }
    let first = entries.iter().find(|e| e.seq == Seq::FIRST).unwrap();
    assert_eq!(
        first.event.description.as_deref(),
        Some(format!("Admin deleted {pseudonym} ({pseudonym})").as_str())
    );
    let second = entries.iter().find(|e| e.seq == Seq::new(2)).unwrap();
    assert_eq!(second.event.changes[0].old, Some(json!("[REDACTED]")));

    let by = |f: EventFilter| {
        let store = store.clone();
        async move { all(&store, a, f).await.len() }
    };
    assert_eq!(
        by(EventFilter {
            entity_id: Some("u-42".into()),
            ..everyone()
        })
        .await,
        0
    );
    assert_eq!(
        by(EventFilter {
            q: Some("Álvarez".into()),
            ..everyone()
        })
        .await,
        0,
        "the description search forgot the old text"
    );
    assert_eq!(
        by(EventFilter {
            entity_id: Some(pseudonym.clone()),
            ..everyone()
        })
        .await,
        1
    );

    store.checkpoint_now().await.unwrap();
    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(report.ok, "the chain verifies after both: {report:?}");
    assert_eq!(report.entries, 5);
}

/// A realistic trail with one person in it everywhere, then their erasure and a redaction of a
/// secret: 525 events in batches of 100, 25 by the person (with IP and user agent), the person as
/// the entity of others' events, in descriptions, changes and metadata, and their entries viewed by
/// others. Returns the values that no file of the backend may hold afterwards (each backend's own
/// test scans its files after a clean stop).
pub async fn erase_a_person_from_a_realistic_trail(store: &Arc<dyn Store>) -> Vec<String> {
    let a = org(store, "a").await;
    let mut events = Vec::new();
    for i in 0..525i64 {
        let mut e = event(if i % 3 == 0 { "update" } else { "read" }, T0 + i);
        e.description = Some(format!("Printer {i} renamed"));
        match i % 21 {
            0 => {
                e.actor = Actor {
                    id: Some("u-jose".into()),
                    name: Some("José Álvarez".into()),
                    email: Some("jose.alvarez@example.com".into()),
                    ..Actor::of_kind(ActorType::User)
                };
                e.context.ip = Some("198.51.100.77".into());
                e.context.user_agent = Some("JoseBrowser/9.1".into());
            }
            1 => {
                e.entity = Some(Entity::new(
                    "User",
                    Some("u-jose".into()),
                    Some("José Álvarez".into()),
                ));
                e.description = Some("Admin viewed the entries of José Álvarez".into());
            }
            2 => {
                e.changes = vec![Change {
                    field: "owner_email".into(),
                    old: Some(json!("jose.alvarez@example.com")),
                    new: Some(json!("it@example.com")),
                }];
                e.metadata
                    .insert("requested_by".into(), json!({"name": "José Álvarez"}));
            }
            _ => {}
        }
        events.push(e);
    }
    let mut secret = event("update", T0 + 600);
    secret.changes = vec![Change {
        field: "access_code".into(),
        old: Some(json!("Q7-SECRET-4471")),
        new: Some(json!("Q7-SECRET-9902")),
    }];
    events.push(secret);
    let mut receipts = Vec::new();
    for chunk in events.chunks(100) {
        receipts.extend(
            store
                .append(a, request(chunk.to_vec()))
                .await
                .unwrap()
                .receipts,
        );
    }
    store.checkpoint_now().await.unwrap();
    let pseudonym = "erased-00000000000000bb".to_string();
    let outcome = store
        .erase_person(
            a,
            crate::Erasure {
                person: Person {
                    id: Some("u-jose".into()),
                    email: Some("jose.alvarez@example.com".into()),
                    name: Some("José Álvarez".into()),
                    other: vec![],
                },
                pseudonym: pseudonym.clone(),
                record: stele_core::chain::erasure_record(&pseudonym, None, T0 + 700),
                salt: [6; 16],
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.erased_entries, 75);
    let secret_id = receipts.last().unwrap().id.clone();
    store
        .redact(
            a,
            crate::Redaction {
                id: secret_id.clone(),
                fields: vec!["changes.access_code".into()],
                record: stele_core::chain::redaction_record(
                    &secret_id,
                    &["changes.access_code".to_string()],
                    None,
                    Actor::of_kind(ActorType::System),
                    T0 + 701,
                ),
                salt: [7; 16],
            },
        )
        .await
        .unwrap();
    store.checkpoint_now().await.unwrap();
    let report = store.verify(a, None).await.unwrap();
    assert!(report.ok, "{report:?}");
    [
        "u-jose",
        "José Álvarez",
        "Álvarez",
        "jose.alvarez@example.com",
        "198.51.100.77",
        "JoseBrowser/9.1",
        "Q7-SECRET-4471",
        "Q7-SECRET-9902",
    ]
    .map(String::from)
    .to_vec()
}
