//! Conformance of erasure: a person is pseudonymised in every entry that names them, the
//! erasure is recorded without naming them, and the chain still verifies.

use std::sync::Arc;

use serde_json::json;
use stele_core::checkpoint::SigningKey;
use stele_core::filter::EventFilter;
use stele_core::{Actor, ActorType, Seq};

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
        .erase_actor(
            a,
            crate::Erasure {
                actor: "ada@example.com".into(),
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
        assert_eq!(e.event.actor.id.as_deref(), Some(pseudonym.as_str()));
        assert_eq!(
            (
                e.event.actor.name.clone(),
                e.event.actor.email.clone(),
                e.event.context.ip.clone()
            ),
            (None, None, None)
        );
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
