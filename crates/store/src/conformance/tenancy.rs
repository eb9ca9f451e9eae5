//! Conformance of tenancy: organizations, API keys until they are revoked, and settings.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::org;
use crate::{KeyHash, NewApiKey, OrgSettings, Scope, Store, StoreError};

pub async fn api_keys_authenticate_until_revoked(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let hash = KeyHash(Sha256::digest(b"secret").into());
    let key = store
        .create_api_key(
            a,
            NewApiKey {
                name: "ci".into(),
                scopes: vec![Scope::Ingest, Scope::Read],
                hash,
                prefix: "stele_ab".into(),
            },
        )
        .await
        .unwrap();
    let found = store.authenticate(&hash).await.unwrap().expect("key works");
    assert_eq!(found.org, a);
    assert_eq!(found.scopes, vec![Scope::Ingest, Scope::Read]);
    assert!(
        store
            .authenticate(&KeyHash([7; 32]))
            .await
            .unwrap()
            .is_none()
    );
    store.revoke_api_key(&key.id).await.unwrap();
    assert!(store.authenticate(&hash).await.unwrap().is_none());
    assert!(
        store.list_api_keys(a).await.unwrap()[0]
            .revoked_at
            .is_some()
    );
    assert!(matches!(
        store.revoke_api_key("key_missing").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.create_org("a").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.find_org("a").await.unwrap().key, a);
}

pub async fn settings_default_and_round_trip_per_organization(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    assert_eq!(store.settings(a).await.unwrap(), OrgSettings::default());
    assert_eq!(
        OrgSettings::default().retention_days,
        Some(crate::DEFAULT_RETENTION_DAYS)
    );
    let custom = OrgSettings {
        retention_days: None,
        channel_retention_days: [("auth".to_string(), Some(90)), ("x".to_string(), None)]
            .into_iter()
            .collect(),
        enabled: false,
        ip_allowlist: vec!["203.0.113.0/24".into(), "2001:db8::/32".into()],
    };
    store.put_settings(a, &custom).await.unwrap();
    assert_eq!(store.settings(a).await.unwrap(), custom);
    assert_eq!(
        store.settings(b).await.unwrap(),
        OrgSettings::default(),
        "another organization's settings are its own"
    );
    let again = OrgSettings {
        retention_days: Some(400),
        ..OrgSettings::default()
    };
    store.put_settings(a, &again).await.unwrap();
    assert_eq!(store.settings(a).await.unwrap(), again, "replaced whole");
}
