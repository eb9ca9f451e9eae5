//! Conformance of people, members and sessions: one person per email across Stele, a membership
//! per organization they belong to, members stay in their organization, and a session signs its
//! member in until revoked, expired or disabled, and moves only between its person's memberships.

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

pub async fn members_are_one_person_per_email_and_stay_in_their_organization(
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
            store.memberships_by_email(email).await.unwrap(),
            vec![ada.clone()],
            "{email}"
        );
    }
    assert_eq!(
        store.memberships_by_email("bob@example.com").await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.memberships_by_email("a\0@example.com").await.unwrap(),
        vec![]
    );

    // One email, one member per organization, whatever the case.
    for email in ["ada@example.com", "ADA@example.COM"] {
        match store
            .create_member(a.key, new_member(email, "member"))
            .await
        {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("a second {email} in one organization must conflict, got {other:?}"),
        }
    }
    // Case-insensitive beyond ASCII.
    let eve = store
        .create_member(b.key, new_member("ÉVE@example.com", "auditor"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_member(b.key, new_member("éve@example.com", "auditor"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.memberships_by_email("éve@EXAMPLE.com").await.unwrap(),
        vec![eve.clone()]
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
        store.memberships_by_email("ada@example.com").await.unwrap(),
        vec![disabled],
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
    // The person went with their only membership: the email is free again, and a new person
    // gets the password given now.
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap(),
        vec![]
    );
    let mut again = new_member("ada@example.com", "auditor");
    again.password_hash = "$argon2id$again".into();
    let again = store.create_member(b.key, again).await.unwrap();
    assert_eq!(again.password_hash, "$argon2id$again");
}

fn hour_session(n: u8, member_id: &str) -> NewSession {
    NewSession {
        token_hash: SessionHash([n; 32]),
        member_id: member_id.into(),
        created_at: T0,
        expires_at: T0 + 3_600_000,
    }
}

pub async fn one_person_is_a_member_of_many_organizations_with_a_role_in_each(
    store: Arc<dyn Store>,
) {
    let a = store.create_org("a").await.unwrap();
    let b = store.create_org("b").await.unwrap();
    let c = store.create_org("c").await.unwrap();
    let in_a = store
        .create_member(a.key, new_member("Ada@Example.com", "admin"))
        .await
        .unwrap();
    // Another organization adds the same person (another spelling, another name, another
    // password): a membership of theirs, and how they sign in does not change.
    let mut second = new_member("ADA@example.com", "auditor");
    second.name = Some("Someone Else".into());
    second.password_hash = "$argon2id$chosen-by-b".into();
    let in_b = store.create_member(b.key, second).await.unwrap();
    assert_ne!(in_a.id, in_b.id);
    assert_eq!(
        (in_b.org, in_b.org_name.as_str(), in_b.role.as_str()),
        (b.key, "b", "auditor")
    );
    assert_eq!(
        (
            in_b.email.as_str(),
            in_b.name.as_deref(),
            in_b.password_hash.as_str()
        ),
        ("Ada@Example.com", Some("Ada Lovelace"), PHC),
        "the person's email, name and password stay as the first organization made them"
    );
    assert!(matches!(
        store
            .create_member(b.key, new_member("ada@example.com", "member"))
            .await,
        Err(StoreError::Conflict(_))
    ));

    // Each organization sees its own membership only.
    assert_eq!(store.list_members(a.key).await.unwrap(), vec![in_a.clone()]);
    assert_eq!(store.list_members(b.key).await.unwrap(), vec![in_b.clone()]);
    assert_eq!(store.list_members(c.key).await.unwrap(), vec![]);
    assert_eq!(store.member(a.key, &in_b.id).await.unwrap(), None);
    assert_eq!(store.member(b.key, &in_a.id).await.unwrap(), None);

    // Sign-in finds both, oldest first until one is used.
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap(),
        vec![in_a.clone(), in_b.clone()]
    );
    store
        .create_session(hour_session(1, &in_b.id))
        .await
        .unwrap();
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap(),
        vec![in_b.clone(), in_a.clone()],
        "the last used first"
    );
    store
        .create_session(hour_session(2, &in_a.id))
        .await
        .unwrap();
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap()[0].id,
        in_a.id
    );

    // Disabled in one organization, still a member of the other.
    let off = MemberUpdate {
        disabled: Some(true),
        ..MemberUpdate::default()
    };
    let disabled_in_a = store.update_member(a.key, &in_a.id, off).await.unwrap();
    assert!(disabled_in_a.disabled);
    assert_eq!(
        store.session(&SessionHash([2; 32]), T0 + 1).await.unwrap(),
        None
    );
    let live_in_b = store.session(&SessionHash([1; 32]), T0 + 1).await.unwrap();
    assert_eq!(live_in_b.map(|s| s.member), Some(in_b.clone()));
    assert!(
        !store
            .member(b.key, &in_b.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let on = MemberUpdate {
        disabled: Some(false),
        ..MemberUpdate::default()
    };
    store.update_member(a.key, &in_a.id, on).await.unwrap();
    assert!(
        store
            .session(&SessionHash([2; 32]), T0 + 1)
            .await
            .unwrap()
            .is_some()
    );

    // A role change stays in its organization.
    let owner = MemberUpdate {
        role: Some("owner".into()),
        ..MemberUpdate::default()
    };
    store.update_member(b.key, &in_b.id, owner).await.unwrap();
    assert_eq!(
        store.member(a.key, &in_a.id).await.unwrap().unwrap().role,
        "admin"
    );

    // A new password, set through either membership, is the person's: it shows in both, and
    // every session of the person ends, in both organizations.
    let password = MemberUpdate {
        password_hash: Some("$argon2id$new".into()),
        ..MemberUpdate::default()
    };
    store
        .update_member(b.key, &in_b.id, password)
        .await
        .unwrap();
    for member in store.memberships_by_email("ada@example.com").await.unwrap() {
        assert_eq!(member.password_hash, "$argon2id$new", "{}", member.org_name);
    }
    for n in [1, 2] {
        assert_eq!(
            store.session(&SessionHash([n; 32]), T0 + 1).await.unwrap(),
            None,
            "session {n}"
        );
    }
}

pub async fn a_session_switches_only_to_an_enabled_membership_of_its_own_person(
    store: Arc<dyn Store>,
) {
    let a = store.create_org("a").await.unwrap();
    let b = store.create_org("b").await.unwrap();
    let c = store.create_org("c").await.unwrap();
    let ada_a = store
        .create_member(a.key, new_member("ada@example.com", "admin"))
        .await
        .unwrap();
    let ada_b = store
        .create_member(b.key, new_member("ada@example.com", "auditor"))
        .await
        .unwrap();
    let ada_c = store
        .create_member(c.key, new_member("ada@example.com", "member"))
        .await
        .unwrap();
    let bob_b = store
        .create_member(b.key, new_member("bob@example.com", "owner"))
        .await
        .unwrap();
    let token = SessionHash([7; 32]);
    store
        .create_session(hour_session(7, &ada_a.id))
        .await
        .unwrap();

    let switched = store
        .switch_session(&token, &ada_b.id, T0 + 10)
        .await
        .unwrap()
        .expect("another membership of the same person");
    assert_eq!(switched.member, ada_b);
    assert_eq!(
        (
            switched.created_at,
            switched.expires_at,
            switched.last_seen_at
        ),
        (T0, T0 + 3_600_000, T0 + 10),
        "the same session, moved"
    );
    assert_eq!(
        store
            .session(&token, T0 + 11)
            .await
            .unwrap()
            .unwrap()
            .member,
        ada_b
    );
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap()[0].id,
        ada_b.id,
        "the switched-to membership is the last used"
    );

    // Another person's membership, a disabled one, an unknown id, or a token that names no live
    // session: refused, and the session stays where it was.
    let off = MemberUpdate {
        disabled: Some(true),
        ..MemberUpdate::default()
    };
    store.update_member(c.key, &ada_c.id, off).await.unwrap();
    for target in [bob_b.id.as_str(), ada_c.id.as_str(), "mem_none", "mem_\0"] {
        assert_eq!(
            store.switch_session(&token, target, T0 + 20).await.unwrap(),
            None,
            "{target}"
        );
        assert_eq!(
            store
                .session(&token, T0 + 21)
                .await
                .unwrap()
                .unwrap()
                .member,
            ada_b,
            "{target}"
        );
    }
    assert_eq!(
        store
            .switch_session(&SessionHash([8; 32]), &ada_a.id, T0 + 20)
            .await
            .unwrap(),
        None
    );
    assert!(store.revoke_session(&token, T0 + 30).await.unwrap());
    assert_eq!(
        store
            .switch_session(&token, &ada_a.id, T0 + 40)
            .await
            .unwrap(),
        None,
        "a revoked session stays ended"
    );
    store
        .create_session(hour_session(9, &ada_a.id))
        .await
        .unwrap();
    assert_eq!(
        store
            .switch_session(&SessionHash([9; 32]), &ada_b.id, T0 + 3_600_000)
            .await
            .unwrap(),
        None,
        "nor an expired one"
    );
}

pub async fn removing_the_last_membership_removes_the_person(store: Arc<dyn Store>) {
    let a = store.create_org("a").await.unwrap();
    let b = store.create_org("b").await.unwrap();
    let ada_a = store
        .create_member(a.key, new_member("ada@example.com", "admin"))
        .await
        .unwrap();
    let ada_b = store
        .create_member(b.key, new_member("ada@example.com", "auditor"))
        .await
        .unwrap();
    store
        .create_session(hour_session(1, &ada_a.id))
        .await
        .unwrap();
    store
        .create_session(hour_session(2, &ada_b.id))
        .await
        .unwrap();

    // Removed from one organization: its session ends, the other membership and session stay.
    let removed = store.remove_member(a.key, &ada_a.id).await.unwrap();
    assert_eq!(removed, ada_a);
    assert_eq!(
        store.session(&SessionHash([1; 32]), T0 + 1).await.unwrap(),
        None
    );
    assert!(
        store
            .session(&SessionHash([2; 32]), T0 + 1)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap(),
        vec![ada_b.clone()]
    );
    // Added back, the person is still there with their password.
    let mut back = new_member("ada@example.com", "member");
    back.password_hash = "$argon2id$ignored".into();
    let back = store.create_member(a.key, back).await.unwrap();
    assert_eq!(back.password_hash, PHC);

    // The last membership goes, and the person with it: adding the email again makes a new
    // person, with the password given now.
    store.remove_member(a.key, &back.id).await.unwrap();
    store.remove_member(b.key, &ada_b.id).await.unwrap();
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap(),
        vec![]
    );
    let mut fresh = new_member("ada@example.com", "member");
    fresh.password_hash = "$argon2id$fresh".into();
    let fresh = store.create_member(b.key, fresh).await.unwrap();
    assert_eq!(fresh.password_hash, "$argon2id$fresh");

    // Deleting an organization removes its memberships; a person of it alone goes too, one who
    // belongs elsewhere stays.
    let bob_a = store
        .create_member(a.key, new_member("bob@example.com", "owner"))
        .await
        .unwrap();
    store
        .create_member(a.key, new_member("ada@example.com", "member"))
        .await
        .unwrap();
    store.delete_org(a.key).await.unwrap();
    assert_eq!(store.member(a.key, &bob_a.id).await.unwrap(), None);
    assert_eq!(
        store.memberships_by_email("bob@example.com").await.unwrap(),
        vec![]
    );
    let mut bob_again = new_member("bob@example.com", "member");
    bob_again.password_hash = "$argon2id$bob-again".into();
    assert_eq!(
        store
            .create_member(b.key, bob_again)
            .await
            .unwrap()
            .password_hash,
        "$argon2id$bob-again",
        "bob's person went with organization a"
    );
    assert_eq!(
        store.memberships_by_email("ada@example.com").await.unwrap(),
        vec![fresh]
    );
}
