//! Conformance of tenancy: organizations, API keys until they are revoked, and settings.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::org;
use crate::{
    KeyHash, NewApiKey, NewOrganization, OrgPageRequest, OrgSettings, OrgUpdate, Scope, Store,
    StoreError,
};

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

pub async fn organizations_carry_unique_external_ids_and_page_in_order(store: Arc<dyn Store>) {
    let new = |name: &str, external_id: Option<&str>| NewOrganization {
        name: name.into(),
        external_id: external_id.map(Into::into),
    };
    let acme = store
        .create_organization(&new("Acme", Some("tenant-1")))
        .await
        .unwrap();
    assert_eq!(acme.external_id.as_deref(), Some("tenant-1"));
    assert!(!acme.platform);
    let globex = store
        .create_organization(&new("Globex", None))
        .await
        .unwrap();
    let initech = store
        .create_organization(&new("Initech", Some("tenant-3")))
        .await
        .unwrap();
    match store
        .create_organization(&new("Other", Some("tenant-1")))
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.contains("external id `tenant-1`"), "{m}"),
        other => panic!("a taken external id: {other:?}"),
    }
    match store
        .create_organization(&new("Acme", Some("tenant-9")))
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.contains("named `Acme`"), "{m}"),
        other => panic!("a taken name: {other:?}"),
    }

    // A request names a tenant by id or external id, never by name.
    let by_external = store.resolve_org("tenant-1").await.unwrap().unwrap();
    assert_eq!(by_external.key, acme.key);
    assert_eq!(
        store.resolve_org(&globex.id).await.unwrap().unwrap().key,
        globex.key
    );
    assert_eq!(store.resolve_org("Globex").await.unwrap(), None);
    assert_eq!(store.resolve_org("tenant-\0").await.unwrap(), None);
    assert_eq!(store.find_org("tenant-3").await.unwrap().key, initech.key);

    // The platform's organization is made once, and is no tenant.
    let platform = store.platform_org().await.unwrap();
    assert!(platform.platform);
    assert_eq!(store.platform_org().await.unwrap().key, platform.key);
    assert_eq!(store.resolve_org(&platform.id).await.unwrap(), None);

    let page = |after: Option<&str>, limit, external_id: Option<&str>| OrgPageRequest {
        after: after.map(Into::into),
        limit,
        external_id: external_id.map(Into::into),
    };
    let first = store.page_orgs(&page(None, 2, None)).await.unwrap();
    let ids: Vec<_> = first.iter().map(|o| o.key).collect();
    assert_eq!(ids, [acme.key, globex.key], "oldest first, no platform");
    let rest = store
        .page_orgs(&page(Some(&globex.id), 2, None))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|o| o.key).collect::<Vec<_>>(),
        [initech.key]
    );
    let one = store
        .page_orgs(&page(None, 10, Some("tenant-3")))
        .await
        .unwrap();
    assert_eq!(one.iter().map(|o| o.key).collect::<Vec<_>>(), [initech.key]);

    let renamed = store
        .update_org(
            globex.key,
            &OrgUpdate {
                name: Some("Globex Corp".into()),
                external_id: Some(Some("tenant-2".into())),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.external_id.as_deref()),
        ("Globex Corp", Some("tenant-2"))
    );
    assert_eq!(
        store.resolve_org("tenant-2").await.unwrap().unwrap().key,
        globex.key
    );
    let taken = store
        .update_org(
            globex.key,
            &OrgUpdate {
                external_id: Some(Some("tenant-1".into())),
                ..OrgUpdate::default()
            },
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(m)) if m.contains("external id")));
    let cleared = store
        .update_org(
            globex.key,
            &OrgUpdate {
                external_id: Some(None),
                ..OrgUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (cleared.name.as_str(), cleared.external_id),
        ("Globex Corp", None)
    );
    assert_eq!(store.resolve_org("tenant-2").await.unwrap(), None);
}

pub async fn platform_keys_belong_to_the_platform_organization(store: Arc<dyn Store>) {
    let tenant = org(&store, "a").await;
    let platform = store.platform_org().await.unwrap();
    let key = |secret: &[u8]| NewApiKey {
        name: "k".into(),
        scopes: vec![Scope::Ingest, Scope::Organizations],
        hash: KeyHash(Sha256::digest(secret).into()),
        prefix: "stele_pl".into(),
    };
    store.create_api_key(platform.key, key(b"p")).await.unwrap();
    store.create_api_key(tenant, key(b"t")).await.unwrap();
    let found = store
        .authenticate(&KeyHash(Sha256::digest(b"p").into()))
        .await
        .unwrap()
        .unwrap();
    assert!(found.platform);
    assert_eq!(found.org, platform.key);
    assert!(found.has_scope(Scope::Organizations));
    let found = store
        .authenticate(&KeyHash(Sha256::digest(b"t").into()))
        .await
        .unwrap()
        .unwrap();
    assert!(!found.platform);
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
        embed_origins: vec!["https://app.example.com".into()],
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
