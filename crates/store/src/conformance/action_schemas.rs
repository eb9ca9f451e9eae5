//! Conformance of action schemas: versions numbered per organization and action from 1, distinct
//! under concurrent creation, listed oldest first, found by version or as the latest.

use std::sync::Arc;

use super::{T0, org};
use crate::{NewActionSchema, Store};

fn schema(action: &str, document: &str, created_at: i64) -> NewActionSchema {
    NewActionSchema {
        action: action.into(),
        document: document.into(),
        created_at,
    }
}

pub async fn action_schema_versions_count_per_action_within_their_organization(
    store: Arc<dyn Store>,
) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    assert_eq!(store.action_schemas(a, "user.signed_in").await.unwrap(), []);
    assert_eq!(
        store
            .action_schema(a, "user.signed_in", None)
            .await
            .unwrap(),
        None
    );

    let first = store
        .create_action_schema(a, schema("user.signed_in", r#"{"v":1}"#, T0))
        .await
        .unwrap();
    assert_eq!(
        (
            first.action.as_str(),
            first.version,
            first.document.as_str()
        ),
        ("user.signed_in", 1, r#"{"v":1}"#)
    );
    assert_eq!(first.created_at, T0);
    let second = store
        .create_action_schema(a, schema("user.signed_in", r#"{"v":2}"#, T0 + 1))
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    // Another action, and another organization, count from 1 on their own.
    let other_action = store
        .create_action_schema(a, schema("team.created", "{}", T0 + 2))
        .await
        .unwrap();
    assert_eq!(other_action.version, 1);
    let theirs = store
        .create_action_schema(b, schema("user.signed_in", r#"{"b":1}"#, T0 + 3))
        .await
        .unwrap();
    assert_eq!(theirs.version, 1);

    assert_eq!(
        store.action_schemas(a, "user.signed_in").await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert_eq!(
        store
            .action_schema(a, "user.signed_in", None)
            .await
            .unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store
            .action_schema(a, "user.signed_in", Some(1))
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        store
            .action_schema(a, "user.signed_in", Some(3))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .action_schema(a, "user.signed_in", Some(u32::MAX))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .action_schema(b, "user.signed_in", None)
            .await
            .unwrap(),
        Some(theirs)
    );
    // An action's name is matched exactly, whatever it holds.
    assert_eq!(
        store.action_schemas(a, "user.signed_in\0").await.unwrap(),
        []
    );
    assert_eq!(store.action_schemas(a, "USER.SIGNED_IN").await.unwrap(), []);
}

pub async fn concurrent_action_schema_versions_are_all_distinct(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .create_action_schema(a, schema("doc.edited", &format!("{{\"n\":{i}}}"), T0))
                .await
                .unwrap()
                .version
        });
    }
    let mut versions = tasks.join_all().await;
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
    let listed: Vec<u32> = store
        .action_schemas(a, "doc.edited")
        .await
        .unwrap()
        .iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(listed, (1..=8).collect::<Vec<u32>>());
}
