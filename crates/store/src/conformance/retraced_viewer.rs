//! Conformance of what Retraced's viewer keeps: saved exports and API tokens stay in their
//! organization (and go with it), list in order, and tokens rename and delete only in their own
//! organization.

use std::sync::Arc;

use super::{T0, org};
use crate::{NewViewerApiToken, SavedExport, Store};

fn export(id: &str, name: &str, created_at: i64) -> SavedExport {
    SavedExport {
        id: id.into(),
        name: name.into(),
        query: "crud:c,u,d received:2024-05-01T00:00:00Z,2024-05-02T00:00:00Z".into(),
        created_at,
    }
}

fn token(id: &str, name: &str, created_at: i64) -> NewViewerApiToken {
    NewViewerApiToken {
        id: id.into(),
        display_name: name.into(),
        secret_hash: [7; 32],
        created_at,
    }
}

pub async fn retraced_saved_exports_list_newest_first_within_their_organization(
    store: Arc<dyn Store>,
) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    assert_eq!(store.saved_exports(a, 10).await.unwrap(), []);
    store
        .create_saved_export(a, export("rse_1", "First", T0))
        .await
        .unwrap();
    store
        .create_saved_export(a, export("rse_2", "Second", T0 + 1))
        .await
        .unwrap();
    store
        .create_saved_export(b, export("rse_3", "Other", T0 + 2))
        .await
        .unwrap();
    let listed = store.saved_exports(a, 10).await.unwrap();
    assert_eq!(
        listed,
        [
            export("rse_2", "Second", T0 + 1),
            export("rse_1", "First", T0)
        ]
    );
    assert_eq!(store.saved_exports(a, 1).await.unwrap().len(), 1);
    assert_eq!(
        store.saved_export(a, "rse_1").await.unwrap(),
        Some(export("rse_1", "First", T0))
    );
    assert_eq!(store.saved_export(a, "rse_3").await.unwrap(), None);
    assert_eq!(store.saved_export(b, "rse_1").await.unwrap(), None);

    // They go with their organization, tokens too; the other organization's stay.
    store
        .create_viewer_api_token(b, token("eit_b", "Theirs", T0))
        .await
        .unwrap();
    store.delete_org(b).await.unwrap();
    assert_eq!(store.saved_export(b, "rse_3").await.unwrap(), None);
    assert_eq!(store.viewer_api_tokens(b).await.unwrap(), []);
    assert_eq!(store.saved_exports(a, 10).await.unwrap().len(), 2);
}

pub async fn retraced_api_tokens_change_only_within_their_organization(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    store
        .create_viewer_api_token(a, token("eit_1", "CI", T0))
        .await
        .unwrap();
    store
        .create_viewer_api_token(a, token("eit_2", "SIEM", T0 + 1))
        .await
        .unwrap();
    store
        .create_viewer_api_token(b, token("eit_3", "Theirs", T0))
        .await
        .unwrap();
    let names = |list: Vec<crate::ViewerApiToken>| {
        list.into_iter()
            .map(|t| (t.id, t.display_name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.viewer_api_tokens(a).await.unwrap()),
        [
            ("eit_1".into(), "CI".into()),
            ("eit_2".into(), "SIEM".into())
        ]
    );
    // Another organization's token is not there to rename or delete.
    assert!(
        !store
            .rename_viewer_api_token(a, "eit_3", "x")
            .await
            .unwrap()
    );
    assert!(!store.delete_viewer_api_token(a, "eit_3").await.unwrap());
    assert!(
        store
            .rename_viewer_api_token(a, "eit_1", "Build")
            .await
            .unwrap()
    );
    assert!(store.delete_viewer_api_token(a, "eit_2").await.unwrap());
    assert!(!store.delete_viewer_api_token(a, "eit_2").await.unwrap());
    assert_eq!(
        names(store.viewer_api_tokens(a).await.unwrap()),
        [("eit_1".into(), "Build".into())]
    );
    assert_eq!(
        names(store.viewer_api_tokens(b).await.unwrap()),
        [("eit_3".into(), "Theirs".into())]
    );
}
