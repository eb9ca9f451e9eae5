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
    let first = store.revoke_api_key(&key.id).await.unwrap();
    assert!(first.by_this_call);
    assert!(store.authenticate(&hash).await.unwrap().is_none());
    // Again, at once (within the same millisecond, as likely as not): nothing changes.
    let again = store.revoke_api_key(&key.id).await.unwrap();
    assert!(!again.by_this_call);
    assert_eq!(again.key, first.key);
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
    // A cursor that names no organization is refused, not taken for the start.
    assert!(matches!(
        store.page_orgs(&page(Some("org_nosuch"), 2, None)).await,
        Err(StoreError::NotFound)
    ));
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
        embed_theme: crate::EmbedTheme {
            mode: Some("dark".into()),
            accent: Some("#0a7".into()),
            font: Some("Inter, \"Helvetica Neue\", sans-serif".into()),
            radius: Some(0),
        },
        redaction: stele_core::redact::RedactionRules {
            name_words: vec!["pin".into(), "plan".into()],
            detect_values: false,
            ..stele_core::redact::RedactionRules::none()
        },
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

pub async fn a_deleted_organization_leaves_nothing_and_another_is_untouched(store: Arc<dyn Store>) {
    use super::{T0, TEST_SIGNING_SEED, event, request};
    use crate::{Cutoffs, NewExportJob, NewMember, NewSession, PrintStatus, SessionHash};
    use stele_core::checkpoint::SigningKey;

    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let old = |n: i64| event("old", T0 - (400 + n) * 24 * 3600 * 1000);
    for target in [a, b] {
        store
            .append(target, request(vec![old(1), old(2), event("create", T0)]))
            .await
            .unwrap();
    }
    assert_eq!(store.checkpoint_now().await.unwrap(), 2);
    // Some of a's trail pruned, so pruned entries and checkpoints anchor it.
    let cutoffs = Cutoffs::at(&OrgSettings::default(), T0);
    let seqs = [stele_core::Seq::new(1)];
    let pruned = store.prune_entries(a, &cutoffs, &seqs).await.unwrap();
    assert_eq!(pruned.values().sum::<u64>(), 1, "{pruned:?} {cutoffs:?}");
    let hash = KeyHash(Sha256::digest(b"a-key").into());
    store
        .create_api_key(
            a,
            NewApiKey {
                name: "k".into(),
                scopes: vec![Scope::Read],
                hash,
                prefix: "stele_aa".into(),
            },
        )
        .await
        .unwrap();
    let member = store
        .create_member(
            a,
            NewMember {
                email: "ada@example.com".into(),
                name: None,
                role: "admin".into(),
                password_hash: "$argon2id$x".into(),
                created_at: T0,
            },
        )
        .await
        .unwrap();
    store
        .create_session(NewSession {
            token_hash: SessionHash([4; 32]),
            member_id: member.id.clone(),
            created_at: T0,
            expires_at: T0 + 3_600_000,
        })
        .await
        .unwrap();
    let job = store
        .create_export_job(
            a,
            NewExportJob {
                format: "csv".into(),
                filters: "{}".into(),
                runner: "here".into(),
                created_at: T0,
            },
        )
        .await
        .unwrap();
    super::print_log::record(
        &store,
        a,
        super::print_log::fields(T0, PrintStatus::Completed),
    )
    .await;
    let settings = OrgSettings {
        enabled: false,
        ..OrgSettings::default()
    };
    store.put_settings(a, &settings).await.unwrap();
    let a_org = store.find_org("a").await.unwrap();

    // The platform's own organization is never deleted.
    let platform = store.platform_org().await.unwrap();
    assert!(matches!(
        store.delete_org(platform.key).await,
        Err(StoreError::Conflict(_))
    ));

    let removed = store.delete_org(a).await.unwrap();
    // The two entries the prune left, and the print log row's own entry.
    assert_eq!(removed, 3);
    assert!(matches!(
        store.find_org("a").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.resolve_org(&a_org.id).await.unwrap(), None);
    assert!(store.list_orgs().await.unwrap().iter().all(|o| o.key != a));
    assert_eq!(store.authenticate(&hash).await.unwrap(), None);
    assert_eq!(store.member(a, &member.id).await.unwrap(), None);
    assert_eq!(
        store.session(&SessionHash([4; 32]), T0 + 1).await.unwrap(),
        None
    );
    assert_eq!(store.export_job(a, &job.id).await.unwrap(), None);
    assert_eq!(
        store
            .list_prints(a, &crate::PrintFilter::default(), 10, 0)
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(store.settings(a).await.unwrap(), OrgSettings::default());
    assert!(super::all(&store, a, super::everyone()).await.is_empty());
    assert!(
        store
            .checkpoint_at(a, stele_core::Seq::new(3))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.unfinished_deletions().await.unwrap().is_empty());
    // A request that still names it (a server that resolved its name before the deletion) is
    // refused whole: nothing goes under the tombstone, nor into another organization named by
    // the same request.
    let late = store
        .append(a, super::request(vec![super::event("create", T0)]))
        .await;
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
    let spanning = crate::AppendRequest {
        events: vec![
            super::prepared(vec![super::event("create", T0)]).remove(0),
            super::prepared(vec![super::event("update", T0)])
                .remove(0)
                .for_org(a),
        ],
        idempotency_key: None,
        fingerprint: [0; 32],
    };
    let late = store.append(b, spanning).await;
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
    assert!(super::all(&store, a, super::everyone()).await.is_empty());
    assert_eq!(super::all(&store, b, super::everyone()).await.len(), 3);
    // Deleting again is not an error (it finishes nothing more), and the name is free again.
    assert_eq!(store.delete_org(a).await.unwrap(), 0);
    let again = store.create_org("a").await.unwrap();
    assert_ne!(again.key, a, "a key is never given to another organization");

    // The other organization is whole, and its chain verifies.
    assert_eq!(super::all(&store, b, super::everyone()).await.len(), 3);
    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let report = store.verify(b, Some(&public)).await.unwrap();
    assert!(report.ok, "{report:?}");
}
