//! Conformance of members and sessions: one email across Stele, members stay in their
//! organization, and a session signs its member in until revoked, expired or disabled.

use std::sync::Arc;

use super::T0;
use crate::{MemberUpdate, NewMember, NewSession, OrgKey, SessionHash, Store, StoreError};

/// A PHC string of the shape the server stores (the store never looks inside it).
const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn new_member(email: &str, role: &str) -> NewMember {
    NewMember {
        email: email.into(),
        name: Some("Ada Lovelace".into()),
        role: role.into(),
        password_hash: PHC.into(),
        created_at: T0,
    }
}

pub async fn members_have_one_email_across_stele_and_stay_in_their_organization(
    store: Arc<dyn Store>,
) {
    let a = store.create_org("a").await.unwrap();
    let b = store.create_org("b").await.unwrap();
    let ada = store
        .create_member(a.key, new_member("Ada@Example.com", "admin"))
        .await
        .unwrap();
    assert!(ada.id.starts_with("mem_"), "{}", ada.id);
    assert_eq!(
        (ada.org, ada.org_id.as_str(), ada.org_name.as_str()),
        (a.key, a.id.as_str(), "a")
    );
    assert_eq!(ada.email, "Ada@Example.com", "kept as typed");
    assert_eq!(ada.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.role, "admin");
    assert_eq!(ada.password_hash, PHC);
    assert_eq!(ada.created_at, T0);
    assert!(!ada.disabled);

    assert_eq!(
        store.member(a.key, &ada.id).await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        store.member(b.key, &ada.id).await.unwrap(),
        None,
        "other org"
    );
    assert_eq!(store.member(a.key, "mem_none").await.unwrap(), None);
    assert_eq!(store.member(a.key, "mem_\0").await.unwrap(), None);
    for email in ["ada@example.com", "  ADA@EXAMPLE.COM ", "Ada@Example.com"] {
        assert_eq!(
            store.member_by_email(email).await.unwrap(),
            Some(ada.clone()),
            "{email}"
        );
    }
    assert_eq!(
        store.member_by_email("bob@example.com").await.unwrap(),
        None
    );
    assert_eq!(
        store.member_by_email("a\0@example.com").await.unwrap(),
        None
    );

    // One email, one member, whatever the case and the organization.
    for (org, email) in [(a.key, "ada@example.com"), (b.key, "ADA@example.COM")] {
        match store.create_member(org, new_member(email, "member")).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("a second {email} must conflict, got {other:?}"),
        }
    }
    // Case-insensitive beyond ASCII.
    let eve = store
        .create_member(b.key, new_member("ÉVE@example.com", "auditor"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_member(a.key, new_member("éve@example.com", "auditor"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.member_by_email("éve@EXAMPLE.com").await.unwrap(),
        Some(eve.clone())
    );
    let mut nameless = new_member("nameless@example.com", "member");
    nameless.name = None;
    let nameless = store.create_member(a.key, nameless).await.unwrap();
    assert_eq!(nameless.name, None);

    assert_eq!(
        store.list_members(a.key).await.unwrap(),
        vec![ada.clone(), nameless.clone()]
    );
    assert_eq!(store.list_members(b.key).await.unwrap(), vec![eve.clone()]);

    let promoted = store
        .update_member(
            a.key,
            &ada.id,
            MemberUpdate {
                role: Some("owner".into()),
                ..MemberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, "owner");
    assert!(!promoted.disabled);
    let disabled = store
        .update_member(
            a.key,
            &ada.id,
            MemberUpdate {
                disabled: Some(true),
                ..MemberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((disabled.role.as_str(), disabled.disabled), ("owner", true));
    assert_eq!(
        store.member(a.key, &ada.id).await.unwrap(),
        Some(disabled.clone())
    );
    assert_eq!(
        store.member_by_email("ada@example.com").await.unwrap(),
        Some(disabled),
        "sign-in still finds a disabled member, to refuse them"
    );
    assert!(matches!(
        store
            .update_member(b.key, &ada.id, MemberUpdate::default())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_member(a.key, "mem_none", MemberUpdate::default())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .create_member(
                OrgKey::new(999_999),
                new_member("ghost@example.com", "member")
            )
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn sessions_sign_in_their_member_until_revoked_expired_or_disabled(
    store: Arc<dyn Store>,
) {
    const HOUR: i64 = 3_600_000;
    let a = store.create_org("a").await.unwrap();
    let ada = store
        .create_member(a.key, new_member("ada@example.com", "admin"))
        .await
        .unwrap();
    let (one, two, unknown) = (
        SessionHash([1; 32]),
        SessionHash([2; 32]),
        SessionHash([9; 32]),
    );
    let expires = T0 + 12 * HOUR;
    for hash in [one, two] {
        store
            .create_session(NewSession {
                token_hash: hash,
                member_id: ada.id.clone(),
                created_at: T0,
                expires_at: expires,
            })
            .await
            .unwrap();
    }
    let live = store.session(&one, T0 + 1).await.unwrap().expect("live");
    assert_eq!(live.member, ada);
    assert_eq!(
        (live.created_at, live.expires_at, live.last_seen_at),
        (T0, expires, T0)
    );
    assert_eq!(store.session(&unknown, T0).await.unwrap(), None);
    assert!(matches!(
        store
            .create_session(NewSession {
                token_hash: unknown,
                member_id: "mem_none".into(),
                created_at: T0,
                expires_at: expires,
            })
            .await,
        Err(StoreError::NotFound)
    ));

    store.touch_session(&one, T0 + 5_000).await.unwrap();
    store.touch_session(&one, T0 + 1_000).await.unwrap();
    store.touch_session(&unknown, T0 + 1_000).await.unwrap();
    let touched = store.session(&one, T0 + 6_000).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, T0 + 5_000, "only moves forward");

    // Expiry.
    assert!(store.session(&one, expires - 1).await.unwrap().is_some());
    assert_eq!(store.session(&one, expires).await.unwrap(), None);

    // Sign-out ends one session, not the member's others.
    assert!(store.revoke_session(&two, T0 + 10).await.unwrap());
    assert!(!store.revoke_session(&two, T0 + 20).await.unwrap(), "twice");
    assert!(!store.revoke_session(&unknown, T0 + 20).await.unwrap());
    assert_eq!(store.session(&two, T0 + 30).await.unwrap(), None);
    assert!(store.session(&one, T0 + 30).await.unwrap().is_some());

    // A disabled member's sessions stop working, and work again once enabled.
    let disable = |disabled| MemberUpdate {
        disabled: Some(disabled),
        ..MemberUpdate::default()
    };
    store
        .update_member(a.key, &ada.id, disable(true))
        .await
        .unwrap();
    assert_eq!(store.session(&one, T0 + 40).await.unwrap(), None);
    store
        .update_member(a.key, &ada.id, disable(false))
        .await
        .unwrap();
    assert!(store.session(&one, T0 + 50).await.unwrap().is_some());

    // A role change shows in the session's member at once.
    let role = MemberUpdate {
        role: Some("auditor".into()),
        ..MemberUpdate::default()
    };
    store.update_member(a.key, &ada.id, role).await.unwrap();
    let session = store.session(&one, T0 + 60).await.unwrap().unwrap();
    assert_eq!(session.member.role, "auditor");

    // Forgetting: ended sessions go, live ones stay.
    assert_eq!(
        store.forget_sessions(T0 + 10).await.unwrap(),
        0,
        "revoked at +10"
    );
    assert_eq!(store.forget_sessions(T0 + 11).await.unwrap(), 1);
    assert!(store.session(&one, T0 + 70).await.unwrap().is_some());
    assert_eq!(store.forget_sessions(expires + 1).await.unwrap(), 1);
    assert_eq!(store.session(&one, T0 + 70).await.unwrap(), None, "gone");
}

pub async fn a_new_password_ends_sessions_and_a_removed_member_is_gone(store: Arc<dyn Store>) {
    let a = store.create_org("a").await.unwrap();
    let b = store.create_org("b").await.unwrap();
    let ada = store
        .create_member(a.key, new_member("ada@example.com", "admin"))
        .await
        .unwrap();
    let session = |n: u8| NewSession {
        token_hash: SessionHash([n; 32]),
        member_id: ada.id.clone(),
        created_at: T0,
        expires_at: T0 + 3_600_000,
    };
    store.create_session(session(1)).await.unwrap();
    let changed = store
        .update_member(
            a.key,
            &ada.id,
            MemberUpdate {
                password_hash: Some("$argon2id$new".into()),
                ..MemberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!((changed.role.as_str(), changed.disabled), ("admin", false));
    assert_eq!(
        store.session(&SessionHash([1; 32]), T0 + 1).await.unwrap(),
        None,
        "a new password ends the sessions"
    );

    store.create_session(session(2)).await.unwrap();
    assert!(matches!(
        store.remove_member(b.key, &ada.id).await,
        Err(StoreError::NotFound)
    ));
    let removed = store.remove_member(a.key, &ada.id).await.unwrap();
    assert_eq!(removed.id, ada.id);
    assert_eq!(store.member(a.key, &ada.id).await.unwrap(), None);
    assert_eq!(
        store.session(&SessionHash([2; 32]), T0 + 1).await.unwrap(),
        None
    );
    assert!(matches!(
        store.remove_member(a.key, &ada.id).await,
        Err(StoreError::NotFound)
    ));
    // The email is free again.
    store
        .create_member(b.key, new_member("ada@example.com", "auditor"))
        .await
        .unwrap();
}
