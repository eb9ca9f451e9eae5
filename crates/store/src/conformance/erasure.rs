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
                // Long, as real user agents are: a long value is what a store that compresses
                // its columns codes rather than keeping byte for byte, and the erasure must find
                // and remove a person's values however they are stored.
                e.context.user_agent = Some(
                    "JoseBrowser/9.1 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                     Chrome/120.0.0.0 Safari/537.36, with the screen reader extension turned on \
                     for the print farm's console and its queue of jobs waiting for a printer"
                        .into(),
                );
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

/// Random erasures and redactions interleaved with ingest and retention (a few seeded runs):
/// afterwards the chain verifies and the inclusion proof of every entry still stored verifies
/// with the public key alone, as `GET /v1/events/{id}/proof` builds it.
pub async fn erasures_and_redactions_among_ingest_and_retention_keep_every_proof(
    store: Arc<dyn Store>,
) {
    use stele_core::merkle;
    use stele_core::proof::InclusionProof;

    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    const DAY: i64 = 24 * 3600 * 1000;
    let people = [
        ("p-1", "pat@example.com", "Pat Doe"),
        ("p-2", "sam@example.com", "Sam Roe"),
        ("p-3", "kim@example.com", "Kim Poe"),
    ];
    // What the runs did, so the test shows it exercised each operation.
    let (mut erased, mut redacted, mut pruned, mut proofs) = (0u64, 0, 0, 0);
    for seed in [7u64, 1234, 99_991] {
        let mut rng = super::Rng(seed);
        let a = org(&store, &format!("prop-{seed}")).await;
        let settings = crate::OrgSettings {
            retention_days: Some(365),
            channel_retention_days: [("compliance".to_string(), None)].into_iter().collect(),
            ..crate::OrgSettings::default()
        };
        let cutoffs = crate::Cutoffs::at(&settings, T0);
        for round in 0..6i64 {
            let mut batch = Vec::new();
            for i in 0..8i64 {
                let old = rng.chance(25);
                let at = if old { T0 - 400 * DAY } else { T0 } + round * 100 + i;
                let mut e = event(if old { "old" } else { "update" }, at);
                let (id, email, name) = *rng.pick(&people);
                match rng.next() % 4 {
                    0 => {
                        e.actor = Actor {
                            id: Some(id.into()),
                            email: Some(email.into()),
                            name: Some(name.into()),
                            ..Actor::of_kind(ActorType::User)
                        };
                        e.context.ip = Some(format!("203.0.113.{}", rng.next() % 200));
                    }
                    1 => e.entity = Some(Entity::new("User", Some(id.into()), Some(name.into()))),
                    2 => e.description = Some(format!("Support call with {name}")),
                    _ => {
                        e.changes = vec![Change {
                            field: "owner".into(),
                            old: Some(json!({"email": email})),
                            new: Some(json!("it@example.com")),
                        }];
                        e.metadata
                            .insert("note".into(), json!(format!("for {name}")));
                    }
                }
                batch.push(e);
            }
            store.append(a, request(batch)).await.unwrap();
            if rng.chance(50) {
                let (id, email, name) = *rng.pick(&people);
                let pseudonym = format!("erased-{:016x}", rng.next());
                erased += store
                    .erase_person(
                        a,
                        crate::Erasure {
                            person: Person {
                                id: Some(id.into()),
                                email: Some(email.into()),
                                name: Some(name.into()),
                                other: vec![],
                            },
                            pseudonym: pseudonym.clone(),
                            record: stele_core::chain::erasure_record(&pseudonym, None, T0 + 1),
                            salt: [rng.next() as u8; 16],
                        },
                    )
                    .await
                    .unwrap()
                    .erased_entries;
            }
            if rng.chance(60) {
                let entries = all(&store, a, everyone()).await;
                let candidates: Vec<_> = entries
                    .iter()
                    .filter(|e| {
                        e.event
                            .detailed_action
                            .as_deref()
                            .is_none_or(|d| !d.starts_with("stele."))
                    })
                    .collect();
                let entry = *rng.pick(&candidates);
                let e = &entry.event;
                let mut fields = Vec::new();
                if e.description.is_some() {
                    fields.push("description".to_string());
                }
                if e.actor.name.is_some() {
                    fields.push("actor.name".into());
                }
                fields.extend(e.metadata.keys().map(|k| format!("metadata.{k}")));
                fields.extend(e.changes.iter().map(|c| format!("changes.{}", c.field)));
                if !fields.is_empty() {
                    let field = rng.pick(&fields).clone();
                    store
                        .redact(
                            a,
                            crate::Redaction {
                                id: entry.id.clone(),
                                fields: vec![field.clone()],
                                record: stele_core::chain::redaction_record(
                                    &entry.id,
                                    &[field],
                                    None,
                                    Actor::of_kind(ActorType::System),
                                    T0 + 2,
                                ),
                                salt: [rng.next() as u8; 16],
                            },
                        )
                        .await
                        .unwrap();
                    redacted += 1;
                }
            }
            if rng.chance(40) {
                let expired = store.expired_entries(a, &cutoffs, 0, 1000).await.unwrap();
                let seqs: Vec<Seq> = expired.entries.iter().map(|r| r.entry.seq).collect();
                let removed = store.prune_entries(a, &cutoffs, &seqs).await.unwrap();
                pruned += removed.values().sum::<u64>();
            }
            store.checkpoint_now().await.unwrap();
        }

        let report = store.verify(a, Some(&public)).await.unwrap();
        assert!(report.ok, "seed {seed}: {report:?}");
        let checkpoint = store.checkpoints(a, 1).await.unwrap().remove(0);
        let hashes = store
            .chain_hashes(a, checkpoint.checkpoint.seq)
            .await
            .unwrap();
        let leaves: Vec<_> = hashes.iter().map(|h| merkle::leaf_hash(h)).collect();
        for entry in all(&store, a, everyone()).await {
            let (digest, seal) = store.personal_digest(a, entry.seq).await.unwrap().unwrap();
            let index = entry.seq.leaf_index() as usize;
            let prev = match index {
                0 => stele_core::chain::genesis(&checkpoint.checkpoint.org_id),
                i => hashes[i - 1],
            };
            let proof = InclusionProof {
                entry: entry.to_json(),
                personal_digest: merkle::to_hex(&digest),
                personal_salt: seal.to_hex(),
                prev_hash: merkle::to_hex(&prev),
                entry_hash: merkle::to_hex(&hashes[index]),
                leaf_index: index as u64,
                tree_size: leaves.len() as u64,
                path: merkle::inclusion_proof(&leaves, index)
                    .iter()
                    .map(merkle::to_hex)
                    .collect(),
                checkpoint: checkpoint.clone(),
            };
            proof
                .verify(&public)
                .unwrap_or_else(|e| panic!("seed {seed}, seq {}: {e}", entry.seq));
            proofs += 1;
        }
    }
    assert!(
        erased > 0 && redacted > 0 && pruned > 0 && proofs > 0,
        "erased {erased}, redacted {redacted}, pruned {pruned}, proofs {proofs}"
    );
}
