//! The conformance suite: behaviour every backend must show, written once against the trait.
//!
//! A backend runs it with [`conformance_suite!`](crate::conformance_suite), passing an async
//! expression that yields a fresh, empty store (its own file or database) for each test:
//!
//! ```ignore
//! stele_store::conformance_suite!(async { std::sync::Arc::new(open_temp_store()) });
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};
use stele_core::chain::SealedEvent;
use stele_core::filter::{Cursor, CursorDirection, DetailedActionMatch, EventFilter, PageRequest};
use stele_core::{Actor, ActorType, Context, Entity, Entry, NewEvent, Outcome};

use stele_core::checkpoint::SigningKey;

mod print_log;
pub use print_log::*;

use crate::{
    AppendRequest, Cutoffs, EXPORT_INTERRUPTED, ExportJobOutcome, ExportJobState, ExportSweep,
    ExportSweepOutcome, KeyHash, MemberUpdate, NewApiKey, NewExportJob, NewMember, NewSession,
    OrgId, OrgSettings, Scope, SessionHash, Store, StoreError,
};

/// Declares one `#[tokio::test]` per conformance check.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            seq_is_gap_free_per_organization,
            concurrent_appends_are_all_committed,
            a_failed_request_leaves_nothing_behind,
            request_idempotency_key_replays_the_original_receipts,
            event_idempotency_keys_deduplicate_within_and_across_batches,
            organizations_never_see_each_other,
            entries_round_trip_every_field,
            api_keys_authenticate_until_revoked,
            correlated_entries_are_grouped,
            facets_list_what_the_organization_used,
            description_search_is_case_insensitive_and_unicode_aware,
            model_every_filter_and_walk_matches_brute_force,
            row_walks_match_list_walks_alone_and_among_organizations,
            the_chain_verifies_and_checkpoints_sign_its_head,
            erasure_pseudonymises_a_person_and_the_chain_still_verifies,
            settings_default_and_round_trip_per_organization,
            retention_prunes_expired_entries_and_the_chain_still_verifies,
            scheduled_runs_are_claimed_once,
            // export jobs
            export_jobs_go_from_pending_to_ready_to_expired_within_their_organization,
            export_jobs_whose_runner_went_quiet_are_interrupted_and_old_ones_forgotten,
            // members and sessions
            members_have_one_email_across_stele_and_stay_in_their_organization,
            sessions_sign_in_their_member_until_revoked_expired_or_disabled,
            // the print log
            print_log_ids_count_per_organization_and_are_never_reused,
            print_log_rows_round_trip_every_field_and_vocabulary,
            print_log_filters_pages_and_stats_match_brute_force,
            print_log_changes_commit_with_their_audit_entries,
            a_print_log_change_no_audit_entry_describes_is_not_made,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: std::sync::Arc<dyn $crate::Store> = $make.await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

/// The checkpoint signing key backends give their test stores, so the suite can check signatures.
pub const TEST_SIGNING_SEED: [u8; 32] = [42; 32];

/// A plain event for tests; callers adjust what they care about.
pub fn event(action: &str, occurred_at: i64) -> NewEvent {
    NewEvent {
        occurred_at,
        action: action.to_string(),
        detailed_action: None,
        channel: "default".into(),
        description: None,
        outcome: Outcome::Success,
        actor: Actor {
            kind: ActorType::User,
            id: Some("u1".into()),
            name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
        },
        entity: None,
        entity_ids: vec![],
        context: Context::default(),
        changes: vec![],
        metadata: BTreeMap::new(),
        idempotency_key: None,
    }
}

/// Seals events with a fixed salt (tests need no secrecy, only determinism).
pub fn sealed(events: Vec<NewEvent>) -> Vec<SealedEvent> {
    events
        .into_iter()
        .map(|e| SealedEvent::seal(e, [9; 16]))
        .collect()
}

pub fn request(events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        events: sealed(events),
        idempotency_key: None,
        fingerprint: [0; 32],
    }
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

async fn org(store: &Arc<dyn Store>, name: &str) -> OrgId {
    store.create_org(name).await.expect("create org").key
}

async fn all(store: &Arc<dyn Store>, org: OrgId, filter: EventFilter) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(
                org,
                &PageRequest {
                    filter: filter.clone(),
                    limit: 500,
                    cursor,
                },
            )
            .await
            .expect("list");
        out.extend(page.entries);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

fn everyone() -> EventFilter {
    EventFilter {
        actor_types: ActorType::ALL.to_vec(),
        ..EventFilter::default()
    }
}

pub async fn seq_is_gap_free_per_organization(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    for i in 0..5 {
        let org = if i % 2 == 0 { a } else { b };
        store
            .append(
                org,
                request(vec![event("create", T0 + i), event("update", T0 + i)]),
            )
            .await
            .unwrap();
    }
    for (org, n) in [(a, 6), (b, 4)] {
        let mut seqs: Vec<i64> = all(&store, org, everyone())
            .await
            .iter()
            .map(|e| e.seq)
            .collect();
        seqs.sort();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    }
}

pub async fn concurrent_appends_are_all_committed(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(
                    a,
                    request(vec![event("create", T0 + i), event("update", T0 + i)]),
                )
                .await
                .unwrap()
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap().receipts);
    }
    let mut seqs: Vec<i64> = acked.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=128).collect::<Vec<_>>());
    for receipt in &acked {
        let entry = store
            .get(a, &receipt.id)
            .await
            .unwrap()
            .expect("acknowledged entry");
        assert_eq!(entry.seq, receipt.seq);
    }
}

pub async fn a_failed_request_leaves_nothing_behind(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut first = request(vec![event("create", T0)]);
    first.idempotency_key = Some("k".into());
    first.fingerprint = [1; 32];
    store.append(a, first).await.unwrap();
    // Same key, different request: refused, and none of its events stored.
    let mut second = request(vec![event("create", T0), event("delete", T0)]);
    second.idempotency_key = Some("k".into());
    second.fingerprint = [2; 32];
    assert!(matches!(
        store.append(a, second).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(all(&store, a, everyone()).await.len(), 1);
    // The sequence continues without a gap.
    let next = store
        .append(a, request(vec![event("create", T0)]))
        .await
        .unwrap();
    assert_eq!(next.receipts[0].seq, 2);
}

pub async fn request_idempotency_key_replays_the_original_receipts(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let body = Sha256::digest(b"the same body").into();
    let make = || AppendRequest {
        events: sealed(vec![event("create", T0), event("update", T0)]),
        idempotency_key: Some("retry-me".into()),
        fingerprint: body,
    };
    let first = store.append(a, make()).await.unwrap();
    assert!(!first.replayed);
    let again = store.append(a, make()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(first.receipts, again.receipts);
    assert_eq!(all(&store, a, everyone()).await.len(), 2);
    // The key is per organization.
    let b = org(&store, "b").await;
    assert!(!store.append(b, make()).await.unwrap().replayed);
}

pub async fn event_idempotency_keys_deduplicate_within_and_across_batches(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let keyed = |k: &str| NewEvent {
        idempotency_key: Some(k.into()),
        ..event("create", T0)
    };
    let first = store
        .append(a, request(vec![keyed("x"), keyed("y"), keyed("x")]))
        .await
        .unwrap();
    assert_eq!(first.receipts[0], first.receipts[2]);
    assert_ne!(first.receipts[0], first.receipts[1]);
    let second = store
        .append(a, request(vec![keyed("y"), keyed("z")]))
        .await
        .unwrap();
    assert_eq!(second.receipts[0], first.receipts[1]);
    assert_eq!(all(&store, a, everyone()).await.len(), 3);
}

pub async fn organizations_never_see_each_other(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let mut e = event("delete", T0);
    e.context.correlation_id = Some("c1".into());
    e.entity = Some(Entity {
        kind: "Printer".into(),
        id: Some("42".into()),
        name: None,
    });
    let ra = store.append(a, request(vec![e.clone()])).await.unwrap();
    assert!(store.get(b, &ra.receipts[0].id).await.unwrap().is_none());
    assert!(all(&store, b, everyone()).await.is_empty());
    assert!(store.correlated(b, "c1", 10).await.unwrap().is_empty());
    let filter = EventFilter {
        entity_id: Some("42".into()),
        ..everyone()
    };
    assert!(all(&store, b, filter.clone()).await.is_empty());
    assert_eq!(all(&store, a, filter).await.len(), 1);
    assert!(store.facets(b).await.unwrap().actions.is_empty());
    assert!(store.get(a, "not-a-uuid").await.unwrap().is_none());
}

pub async fn entries_round_trip_every_field(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut e = event("bulk_update", T0 + 123);
    e.detailed_action = Some("printJob.retry".into());
    e.channel = "hardware".into();
    e.description = Some("Retried 2 jobs — «ünïcode» <b>".into());
    e.outcome = Outcome::Failure;
    e.actor = Actor {
        kind: ActorType::Api,
        id: Some("key_1".into()),
        name: None,
        email: None,
    };
    e.entity = Some(Entity {
        kind: "PrintJob".into(),
        id: Some("j1".into()),
        name: Some("Benchy".into()),
    });
    e.entity_ids = vec!["j1".into(), "j2".into()];
    e.context = Context {
        ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
        correlation_id: Some("corr".into()),
        request_id: Some("req".into()),
        reason: Some("operator asked".into()),
        source: Some("api".into()),
        api_key_id: Some("key_1".into()),
        impersonator: Some(stele_core::Impersonator {
            id: Some("s1".into()),
            email: Some("s@x".into()),
        }),
        location: Some("Berlin".into()),
    };
    e.changes = vec![stele_core::Change {
        field: "status".into(),
        old: Some(json!("failed")),
        new: Some(json!("queued")),
    }];
    e.metadata = BTreeMap::from([
        ("attempt".to_string(), json!(2)),
        ("dry".to_string(), json!(false)),
    ]);
    let r = store.append(a, request(vec![e.clone()])).await.unwrap();
    let got = store.get(a, &r.receipts[0].id).await.unwrap().unwrap();
    assert_eq!(got.event, e);
    assert_eq!(got.seq, 1);
    assert!(got.recorded_at > 0);
}

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

pub async fn correlated_entries_are_grouped(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let mut events = Vec::new();
    for i in 0..3 {
        let mut e = event("update", T0 + i);
        e.context.correlation_id = Some(if i < 2 { "req-1" } else { "req-2" }.into());
        events.push(e);
    }
    store.append(a, request(events)).await.unwrap();
    let group = store.correlated(a, "req-1", 10).await.unwrap();
    assert_eq!(group.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 1]);
}

pub async fn facets_list_what_the_organization_used(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let mut e = event("login", T0);
    e.detailed_action = Some("session.start".into());
    e.channel = "auth".into();
    e.entity = Some(Entity {
        kind: "Session".into(),
        id: None,
        name: None,
    });
    store
        .append(a, request(vec![e, event("create", T0)]))
        .await
        .unwrap();
    let mut other = event("export", T0);
    other.actor.kind = ActorType::System;
    store.append(b, request(vec![other])).await.unwrap();
    let f = store.facets(a).await.unwrap();
    assert_eq!(f.actions, vec!["create", "login"]);
    assert_eq!(f.detailed_actions, vec!["session.start"]);
    assert_eq!(f.channels, vec!["auth", "default"]);
    assert_eq!(f.entity_types, vec!["Session"]);
    assert_eq!(f.actor_types, vec!["user"]);
}

pub async fn description_search_is_case_insensitive_and_unicode_aware(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let texts = [
        "Printer ALPHA renamed",
        "alpha beta",
        "Größe geändert",
        "ab",
        "nothing",
    ];
    let events = texts
        .iter()
        .enumerate()
        .map(|(i, t)| NewEvent {
            description: Some(t.to_string()),
            ..event("update", T0 + i as i64)
        })
        .collect();
    store.append(a, request(events)).await.unwrap();
    let find = |q: &str| {
        let store = store.clone();
        let q = q.to_string();
        async move {
            let hits = all(
                &store,
                a,
                EventFilter {
                    q: Some(q),
                    ..everyone()
                },
            )
            .await;
            let mut d: Vec<String> = hits
                .into_iter()
                .filter_map(|e| e.event.description)
                .collect();
            d.sort();
            d
        }
    };
    assert_eq!(
        find("Alpha").await,
        vec!["Printer ALPHA renamed", "alpha beta"]
    );
    assert_eq!(find("GRÖSSE").await, Vec::<String>::new());
    assert_eq!(find("GRÖßE").await, vec!["Größe geändert"]);
    assert_eq!(find("b").await, vec!["ab", "alpha beta"]);
    assert_eq!(find("a r").await, vec!["Printer ALPHA renamed"]);
    assert_eq!(find("zzz").await, Vec::<String>::new());
}

/// A small deterministic generator, so a failure reproduces exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const ACTIONS: &[&str] = &[
    "create",
    "update",
    "delete",
    "bulk_delete",
    "login",
    "export",
];
const DETAILED: &[&str] = &[
    "printJob.retry",
    "printJob.cancel",
    "printer.rename",
    "license_reset",
];
const CHANNELS: &[&str] = &["default", "auth", "security", "pii-read"];
const ENTITY_TYPES: &[&str] = &["Printer", "PrintJob", "License"];
const IDS: &[&str] = &["1", "2", "3", "4", "5", "6"];
const PEOPLE: &[(&str, &str)] = &[
    ("u1", "ada@example.com"),
    ("u2", "bob@example.com"),
    ("u3", "cy@example.com"),
];
const WORDS: &[&str] = &[
    "Printer", "renamed", "job", "RETRIED", "license", "ÄRGER", "reset",
];

fn random_event(rng: &mut Rng, i: i64) -> NewEvent {
    let action = *rng.pick(ACTIONS);
    let mut e = event(action, T0 + (rng.next() % 500) as i64 * 1000 + i % 3);
    if rng.chance(70) {
        e.detailed_action = Some(rng.pick(DETAILED).to_string());
    }
    e.channel = rng.pick(CHANNELS).to_string();
    e.actor.kind = *rng.pick(&ActorType::ALL);
    let (id, email) = rng.pick(PEOPLE);
    e.actor.id = rng.chance(80).then(|| id.to_string());
    e.actor.email = rng.chance(60).then(|| email.to_string());
    if rng.chance(85) {
        e.entity = Some(Entity {
            kind: rng.pick(ENTITY_TYPES).to_string(),
            id: rng.chance(90).then(|| rng.pick(IDS).to_string()),
            name: None,
        });
    }
    if e.action.starts_with("bulk") {
        e.entity_ids = (0..3).map(|_| rng.pick(IDS).to_string()).collect();
        e.entity_ids.dedup();
    }
    if rng.chance(10) {
        e.outcome = Outcome::Failure;
    }
    if rng.chance(50) {
        e.context.correlation_id = Some(format!("c{}", rng.next() % 20));
    }
    if rng.chance(70) {
        e.context.ip = Some(format!("10.0.0.{}", rng.next() % 4));
    }
    if rng.chance(90) {
        e.description = Some(format!("{} {} #{i}", rng.pick(WORDS), rng.pick(WORDS)));
    }
    e
}

fn random_filter(rng: &mut Rng) -> EventFilter {
    let mut f = EventFilter::default();
    let mut set = 0;
    while set == 0 || rng.chance(35) {
        set += 1;
        match rng.next() % 13 {
            0 => f.action = Some(rng.pick(ACTIONS).to_string()),
            1 => {
                f.detailed_action = Some(if rng.chance(50) {
                    DetailedActionMatch::Exact(rng.pick(DETAILED).to_string())
                } else {
                    DetailedActionMatch::Prefix(
                        rng.pick(&["printJob.", "print", "lic"]).to_string(),
                    )
                })
            }
            2 => {
                f.actor_types = ActorType::ALL
                    .into_iter()
                    .filter(|_| rng.chance(50))
                    .collect();
                if f.actor_types.is_empty() {
                    f.actor_types = ActorType::ALL.to_vec();
                }
            }
            3 => {
                let (id, email) = rng.pick(PEOPLE);
                f.actor = Some(if rng.chance(50) { id } else { email }.to_string());
            }
            4 => f.entity_type = Some(rng.pick(ENTITY_TYPES).to_string()),
            5 => f.entity_id = Some(rng.pick(IDS).to_string()),
            6 => f.channel = Some(rng.pick(CHANNELS).to_string()),
            7 => {
                f.outcome = Some(if rng.chance(50) {
                    Outcome::Failure
                } else {
                    Outcome::Success
                })
            }
            8 => f.correlation_id = Some(format!("c{}", rng.next() % 20)),
            9 => f.ip = Some(format!("10.0.0.{}", rng.next() % 4)),
            10 => f.from = Some(T0 + (rng.next() % 500) as i64 * 1000),
            11 => f.to = Some(T0 + (rng.next() % 500) as i64 * 1000 + 1),
            _ => {
                f.q = Some(
                    rng.pick(&["print", "RENAMED", "ärger", "#1", "e", "job r"])
                        .to_string(),
                )
            }
        }
    }
    if let (Some(a), Some(b)) = (f.from, f.to)
        && a >= b
    {
        f.to = None;
    }
    f
}

/// Walks every page towards older entries, then back towards newer ones from the last page.
async fn walk_both_ways(
    store: &Arc<dyn Store>,
    org: OrgId,
    filter: &EventFilter,
    limit: usize,
) -> (Vec<i64>, Vec<i64>) {
    let mut older = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .list(
                org,
                &PageRequest {
                    filter: filter.clone(),
                    limit,
                    cursor,
                },
            )
            .await
            .unwrap();
        assert!(page.entries.len() <= limit);
        older.extend(page.entries.iter().map(|e| e.seq));
        pages.push(page.clone());
        match page.next_cursor {
            Some(c) => {
                assert_eq!(c.direction, CursorDirection::Older);
                cursor = Some(c);
            }
            None => break,
        }
    }
    // Back from the last page: its own entries, then every newer page.
    let last = pages.last().unwrap();
    let mut newer: Vec<i64> = last.entries.iter().map(|e| e.seq).rev().collect();
    let mut cursor = last.prev_cursor;
    while let Some(c) = cursor {
        let page = store
            .list(
                org,
                &PageRequest {
                    filter: filter.clone(),
                    limit,
                    cursor: Some(c),
                },
            )
            .await
            .unwrap();
        newer.extend(page.entries.iter().rev().map(|e| e.seq));
        cursor = page.prev_cursor;
    }
    newer.reverse();
    (older, newer)
}

/// Walks an organization with `list_rows` (the export's walk), following its cursor, and checks
/// every page against `list`'s, and a page walked newer from a cursor too. A backend may walk
/// rows differently when the organization is alone in the database (SQLite reads `entries` in
/// `pk` order then), so the walks are checked alone and again once another organization has
/// entries.
pub async fn row_walks_match_list_walks_alone_and_among_organizations(store: Arc<dyn Store>) {
    let a = org(&store, "alone").await;
    let mut rng = Rng(0x0a10_4e55_u64);
    let events: Vec<NewEvent> = (0..400).map(|i| random_event(&mut rng, i)).collect();
    for chunk in events.chunks(100) {
        store.append(a, request(chunk.to_vec())).await.unwrap();
    }
    let filters = [
        ("default", EventFilter::default()),
        ("everyone", everyone()),
        (
            "system only",
            EventFilter {
                actor_types: vec![ActorType::System],
                ..EventFilter::default()
            },
        ),
        (
            "a time range",
            EventFilter {
                from: Some(T0 + 100_000),
                to: Some(T0 + 300_000),
                ..everyone()
            },
        ),
        (
            "an action",
            EventFilter {
                action: Some(ACTIONS[0].to_string()),
                ..everyone()
            },
        ),
    ];
    for round in ["alone", "among organizations"] {
        if round != "alone" {
            let other = org(&store, "other").await;
            store
                .append(other, request(vec![event("x", T0)]))
                .await
                .unwrap();
        }
        for (name, filter) in &filters {
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let request = PageRequest {
                    filter: filter.clone(),
                    limit: 37,
                    cursor,
                };
                let listed = store.list(a, &request).await.unwrap();
                let rows = store.list_rows(a, &request).await.unwrap();
                let entries: Vec<Entry> = rows.iter().map(|r| r.entry().unwrap()).collect();
                assert_eq!(entries, listed.entries, "{round}, {name}, page {pages}");
                assert_eq!(rows.next_cursor, listed.next_cursor, "{round}, {name}");
                if let Some(back) = listed.prev_cursor {
                    let newer = PageRequest {
                        cursor: Some(back),
                        ..request.clone()
                    };
                    let listed = store.list(a, &newer).await.unwrap();
                    let rows = store.list_rows(a, &newer).await.unwrap();
                    let entries: Vec<Entry> = rows.iter().map(|r| r.entry().unwrap()).collect();
                    assert_eq!(entries, listed.entries, "{round}, {name}, newer");
                }
                pages += 1;
                match rows.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert!(
                pages > 1 || *name == "system only" || *name == "an action",
                "{name}"
            );
        }
    }
}

pub async fn model_every_filter_and_walk_matches_brute_force(store: Arc<dyn Store>) {
    let a = org(&store, "model").await;
    let noise = org(&store, "noise").await;
    let mut rng = Rng(0x5eed_1e55_u64);
    let mut events: Vec<NewEvent> = (0..3000).map(|i| random_event(&mut rng, i)).collect();
    for chunk in events.chunks(250) {
        store.append(a, request(chunk.to_vec())).await.unwrap();
        store
            .append(noise, request(chunk[..10].to_vec()))
            .await
            .unwrap();
    }
    let stored = all(&store, a, everyone()).await;
    assert_eq!(stored.len(), events.len());
    // The model: every stored entry, in the documented order.
    let mut model = stored.clone();
    model.sort_by_key(|e| std::cmp::Reverse((e.event.occurred_at, e.seq)));
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        model.iter().map(|e| e.seq).collect::<Vec<_>>(),
        "newest first by occurred_at, then seq"
    );
    events.clear();

    for round in 0..150 {
        let filter = random_filter(&mut rng);
        let expected: Vec<i64> = model
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| e.seq)
            .collect();
        let limit = *rng.pick(&[1usize, 7, 50, 500]);
        let first_page = PageRequest {
            filter: filter.clone(),
            limit,
            cursor: None,
        };
        let first = store.list(a, &first_page).await.unwrap();
        // Exact when counting was cheap; otherwise an honest lower bound (a loaded machine may
        // hit the time budget even on small data).
        if first.total_exact {
            assert_eq!(
                first.total as usize,
                expected.len(),
                "round {round}: total for {filter:?}"
            );
        } else {
            assert!(
                first.total as usize <= expected.len(),
                "round {round}: lower bound for {filter:?}"
            );
        }
        assert!(first.prev_cursor.is_none());
        // As stored rows, uncounted: the same entries and cursor, and flat cells that say what
        // the entries say.
        let rows = store.list_rows(a, &first_page).await.unwrap();
        let entries: Vec<Entry> = rows.iter().map(|r| r.entry().unwrap()).collect();
        assert_eq!(entries, first.entries, "round {round}: rows");
        assert_eq!(rows.next_cursor, first.next_cursor, "round {round}: rows");
        for (row, entry) in rows.iter().zip(&entries) {
            assert_flat_matches_entry(entry, &row.flat().unwrap());
        }
        if limit >= 50 || round % 5 == 0 {
            let (older, newer) = walk_both_ways(&store, a, &filter, limit).await;
            assert_eq!(
                older, expected,
                "round {round}: walking older with {filter:?}"
            );
            assert_eq!(
                newer, expected,
                "round {round}: walking newer with {filter:?}"
            );
        } else {
            let got: Vec<i64> = first.entries.iter().map(|e| e.seq).collect();
            assert_eq!(
                got,
                expected.iter().take(limit).copied().collect::<Vec<_>>(),
                "round {round}: {filter:?}"
            );
        }
    }
}

pub async fn the_chain_verifies_and_checkpoints_sign_its_head(store: Arc<dyn Store>) {
    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(
        report.ok && report.entries == 0,
        "an empty chain verifies: {report:?}"
    );

    assert_eq!(
        store.checkpoint_key_ids().await.unwrap(),
        Vec::<String>::new(),
        "no checkpoint, no key"
    );

    for i in 0..4 {
        store
            .append(
                a,
                request(vec![event("create", T0 + i), event("update", T0 - i)]),
            )
            .await
            .unwrap();
        store
            .append(b, request(vec![event("delete", T0)]))
            .await
            .unwrap();
    }
    assert_eq!(
        store.checkpoint_now().await.unwrap(),
        2,
        "one per organization with new entries"
    );
    assert_eq!(
        store.checkpoint_now().await.unwrap(),
        0,
        "nothing new, nothing to sign"
    );
    store
        .append(a, request(vec![event("login", T0)]))
        .await
        .unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 1);

    let checkpoints = store.checkpoints(a, 10).await.unwrap();
    assert_eq!(
        checkpoints
            .iter()
            .map(|c| c.checkpoint.seq)
            .collect::<Vec<_>>(),
        vec![9, 8],
        "newest first"
    );
    for c in &checkpoints {
        c.verify(&public).expect("signed by the store's key");
    }
    assert_eq!(
        store.checkpoint_key_ids().await.unwrap(),
        vec![public.key_id()],
        "one key signed them all"
    );
    // The first claim of the database's signing key stands; later ones get it back.
    assert_eq!(store.claim_signing_key("key-a").await.unwrap(), "key-a");
    assert_eq!(store.claim_signing_key("key-b").await.unwrap(), "key-a");

    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (
            report.entries,
            report.first_seq,
            report.last_seq,
            report.checkpoints
        ),
        (9, Some(1), Some(9), 2)
    );
    let report = store.verify(b, Some(&public)).await.unwrap();
    assert!(
        report.ok && report.entries == 4 && report.checkpoints == 1,
        "{report:?}"
    );

    let stranger = SigningKey::from_seed([1; 32]).public_key();
    let report = store.verify(a, Some(&stranger)).await.unwrap();
    assert!(!report.ok);
    assert_eq!(
        report.problem.unwrap().kind,
        crate::ProblemKind::BadSignature
    );
}

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
    assert_eq!(outcome.record.seq, 4);

    let entries = all(&store, a, everyone()).await;
    let text = format!("{entries:?}");
    assert!(
        !text.contains("ada@example.com") && !text.contains("Ada\"") && !text.contains("Firefox"),
        "{text}"
    );
    for e in entries.iter().filter(|e| e.seq <= 2) {
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
    let bob = entries.iter().find(|e| e.seq == 3).unwrap();
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

const DAY: i64 = 24 * 3600 * 1000;

pub async fn retention_prunes_expired_entries_and_the_chain_still_verifies(store: Arc<dyn Store>) {
    let public = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let now = T0;
    let in_channel = |channel: &str, action: &str, age_days: i64| {
        let mut e = event(action, now - age_days * DAY);
        e.channel = channel.to_string();
        e
    };
    // seq 1-3: a year and more ago (expire); 4: an old compliance entry (kept forever);
    // 5: an old auth entry (auth keeps 90 days); 6: a recent auth entry; 7-8 recent.
    store
        .append(
            a,
            request(vec![
                in_channel("default", "old-1", 400),
                in_channel("default", "old-2", 380),
                in_channel("billing", "old-3", 366),
            ]),
        )
        .await
        .unwrap();
    store
        .append(
            a,
            request(vec![
                in_channel("compliance", "keep", 500),
                in_channel("auth", "auth-old", 100),
                in_channel("auth", "auth-new", 10),
                in_channel("default", "new-1", 5),
                in_channel("default", "new-2", 364),
            ]),
        )
        .await
        .unwrap();
    store
        .append(b, request(vec![in_channel("default", "b-old", 900)]))
        .await
        .unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 2);
    let hashes_before = store.chain_hashes(a, 8).await.unwrap();

    let settings = OrgSettings {
        retention_days: Some(365),
        channel_retention_days: [
            ("auth".to_string(), Some(90)),
            ("compliance".to_string(), None),
        ]
        .into_iter()
        .collect(),
        ..OrgSettings::default()
    };
    let cutoffs = Cutoffs::at(&settings, now);

    // Read in batches of 2: oldest occurrence first, exactly the expired ones.
    let mut expired = Vec::new();
    let mut resume_after = 0;
    loop {
        let batch = store
            .expired_entries(a, &cutoffs, resume_after, 2)
            .await
            .unwrap();
        if batch.entries.is_empty() {
            break;
        }
        assert!(batch.entries.len() <= 2);
        resume_after = batch.resume_after;
        expired.extend(batch.entries);
    }
    let actions: Vec<&str> = expired
        .iter()
        .map(|r| r.entry.event.action.as_str())
        .collect();
    assert_eq!(actions, ["old-1", "old-2", "old-3", "auth-old"]);
    let org_a = store.find_org("a").await.unwrap();
    for r in &expired {
        assert_eq!(r.org_id, org_a.id);
        let seq = r.entry.seq;
        assert_eq!(r.hash, hashes_before[(seq - 1) as usize], "hash of {seq}");
        let prev = if seq == 1 {
            stele_core::chain::genesis(&org_a.id)
        } else {
            hashes_before[(seq - 2) as usize]
        };
        assert_eq!(r.prev_hash, prev, "prev hash of {seq}");
        let digest = stele_core::chain::event_digest(&r.entry.event, &r.personal_digest);
        assert_eq!(
            stele_core::chain::entry_hash(
                &r.prev_hash,
                &r.org_id,
                seq,
                &r.entry.id,
                r.entry.recorded_at,
                &digest
            ),
            r.hash,
            "the archive can recompute entry {seq} from what it is given"
        );
        assert!(r.salt.is_some() && !r.erased);
    }

    // A seq the cutoffs do not expire is left alone, whatever the caller asks.
    let removed = store.prune_entries(a, &cutoffs, &[4, 6, 7]).await.unwrap();
    assert!(removed.values().all(|n| *n == 0), "{removed:?}");

    let seqs: Vec<i64> = expired.iter().map(|r| r.entry.seq).collect();
    let removed = store.prune_entries(a, &cutoffs, &seqs).await.unwrap();
    assert_eq!(
        removed,
        [
            ("auth".to_string(), 1),
            ("billing".to_string(), 1),
            ("default".to_string(), 2)
        ]
        .into_iter()
        .collect()
    );
    let again = store.prune_entries(a, &cutoffs, &seqs).await.unwrap();
    assert!(again.values().all(|n| *n == 0), "already gone: {again:?}");
    assert!(
        store
            .expired_entries(a, &cutoffs, 0, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );

    let left: Vec<i64> = all(&store, a, everyone())
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(left, [7, 6, 8, 4], "newest occurrence first");
    assert!(store.get(a, &expired[0].entry.id).await.unwrap().is_none());
    assert_eq!(
        all(&store, b, everyone()).await.len(),
        1,
        "another organization's entries are untouched"
    );
    assert_eq!(
        store.chain_hashes(a, 8).await.unwrap(),
        hashes_before,
        "pruned entries keep their place in the chain, so proofs still work"
    );

    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (
            report.entries,
            report.pruned_entries,
            report.pruned_up_to_seq,
            report.first_seq,
            report.last_seq,
            report.anchor_checkpoint_seq,
        ),
        (4, 4, Some(3), Some(4), Some(8), Some(8))
    );

    // New entries extend the chain as before, and it still verifies.
    store
        .append(a, request(vec![event("after", now)]))
        .await
        .unwrap();
    assert_eq!(store.checkpoint_now().await.unwrap(), 1);
    let report = store.verify(a, Some(&public)).await.unwrap();
    assert!(
        report.ok && report.entries == 5 && report.checkpoints == 2,
        "{report:?}"
    );
}

pub async fn scheduled_runs_are_claimed_once(store: Arc<dyn Store>) {
    assert!(store.claim_scheduled_run("prune", T0).await.unwrap());
    assert!(!store.claim_scheduled_run("prune", T0).await.unwrap());
    assert!(
        !store.claim_scheduled_run("prune", T0 - DAY).await.unwrap(),
        "an older run is not due again"
    );
    assert!(store.claim_scheduled_run("other", T0).await.unwrap());
    assert!(store.claim_scheduled_run("prune", T0 + DAY).await.unwrap());
}

// --- export jobs -------------------------------------------------------------------------------

fn new_export_job(created_at: i64) -> NewExportJob {
    NewExportJob {
        format: "ndjson".into(),
        filters: r#"{"action":"update","actor_type":"user"}"#.into(),
        runner: "127.0.0.1:8080/ab12cd".into(),
        created_at,
    }
}

fn ready(entries: u64, finished_at: i64, expires_at: i64) -> ExportJobOutcome {
    ExportJobOutcome::Ready {
        entries,
        bytes: 120,
        finished_at,
        expires_at,
    }
}

fn sweep_at(now: i64, stale_before: i64, forget_before: i64) -> ExportSweep {
    ExportSweep {
        now,
        stale_before,
        forget_before,
    }
}

pub async fn export_jobs_go_from_pending_to_ready_to_expired_within_their_organization(
    store: Arc<dyn Store>,
) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let job = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    assert!(job.id.starts_with("exp_"), "{}", job.id);
    assert_eq!(job.org, a);
    assert_eq!(job.state, ExportJobState::Pending);
    assert_eq!(
        (
            job.format.as_str(),
            job.filters.as_str(),
            job.runner.as_str()
        ),
        (
            "ndjson",
            r#"{"action":"update","actor_type":"user"}"#,
            "127.0.0.1:8080/ab12cd"
        )
    );
    assert_eq!((job.created_at, job.heartbeat_at), (T0, T0));
    assert_eq!(
        (job.finished_at, job.entries, job.bytes, job.expires_at),
        (None, None, None, None)
    );
    assert_eq!(job.error, None);
    assert_eq!(
        store.export_job(a, &job.id).await.unwrap(),
        Some(job.clone())
    );
    assert_eq!(
        store.export_job(b, &job.id).await.unwrap(),
        None,
        "another organization's job is not found"
    );
    assert_eq!(store.export_job(a, "exp_none").await.unwrap(), None);
    assert_eq!(store.export_job(a, "exp_\0").await.unwrap(), None);
    let theirs = store
        .create_export_job(b, new_export_job(T0))
        .await
        .unwrap();
    assert_ne!(theirs.id, job.id);

    // Heartbeats move forward only.
    assert!(store.touch_export_job(&job.id, T0 + 1000).await.unwrap());
    assert!(store.touch_export_job(&job.id, T0 + 500).await.unwrap());
    let beating = store.export_job(a, &job.id).await.unwrap().unwrap();
    assert_eq!(beating.heartbeat_at, T0 + 1000);
    assert!(!store.touch_export_job("exp_none", T0).await.unwrap());

    // Ready once: a second outcome changes nothing.
    let expires = T0 + 62_000;
    assert!(
        store
            .finish_export_job(&job.id, ready(3, T0 + 2000, expires))
            .await
            .unwrap()
    );
    let failed = ExportJobOutcome::Failed {
        message: "too late".into(),
        finished_at: T0 + 3000,
    };
    assert!(!store.finish_export_job(&job.id, failed).await.unwrap());
    assert!(!store.touch_export_job(&job.id, T0 + 3000).await.unwrap());
    let done = store.export_job(a, &job.id).await.unwrap().unwrap();
    assert_eq!(done.state, ExportJobState::Ready);
    assert_eq!(
        (done.entries, done.bytes, done.finished_at, done.expires_at),
        (Some(3), Some(120), Some(T0 + 2000), Some(expires))
    );
    assert_eq!(done.error, None);
    assert_eq!(done.state_at(expires - 1), ExportJobState::Ready);
    assert_eq!(done.state_at(expires), ExportJobState::Expired);

    // Links: found by job id and token hash together, never across jobs.
    store
        .add_export_link(&job.id, [1; 32], T0 + 3000)
        .await
        .unwrap();
    store
        .add_export_link(&job.id, [2; 32], T0 + 4000)
        .await
        .unwrap();
    for token in [[1; 32], [2; 32]] {
        assert_eq!(
            store.export_job_by_link(&job.id, token).await.unwrap(),
            Some(done.clone())
        );
    }
    assert_eq!(
        store.export_job_by_link(&job.id, [3; 32]).await.unwrap(),
        None
    );
    assert_eq!(
        store.export_job_by_link(&theirs.id, [1; 32]).await.unwrap(),
        None
    );
    assert!(matches!(
        store.add_export_link("exp_none", [4; 32], T0).await,
        Err(StoreError::NotFound)
    ));

    // Until the window ends the file is live, and the sweep leaves the job alone.
    let mut live = store.live_export_job_ids(expires - 1).await.unwrap();
    live.sort();
    let mut both = vec![job.id.clone(), theirs.id.clone()];
    both.sort();
    assert_eq!(live, both);
    assert_eq!(
        store
            .sweep_export_jobs(sweep_at(expires - 1, T0, T0))
            .await
            .unwrap(),
        ExportSweepOutcome::default()
    );
    assert_eq!(
        store.live_export_job_ids(expires).await.unwrap(),
        vec![theirs.id.clone()],
        "the pending job only"
    );
    let swept = store
        .sweep_export_jobs(sweep_at(expires, T0, T0))
        .await
        .unwrap();
    assert_eq!(
        swept,
        ExportSweepOutcome {
            expired: 1,
            ..ExportSweepOutcome::default()
        }
    );
    let expired = store.export_job(a, &job.id).await.unwrap().unwrap();
    assert_eq!(expired.state, ExportJobState::Expired);
    assert_eq!(expired.entries, Some(3));
    // A link still names its expired job, so a late download can be told it expired.
    assert_eq!(
        store.export_job_by_link(&job.id, [1; 32]).await.unwrap(),
        Some(expired)
    );
}

pub async fn export_jobs_whose_runner_went_quiet_are_interrupted_and_old_ones_forgotten(
    store: Arc<dyn Store>,
) {
    let a = org(&store, "a").await;
    let quiet = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    let beating = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    assert!(
        store
            .touch_export_job(&beating.id, T0 + 60_000)
            .await
            .unwrap()
    );

    let swept = store
        .sweep_export_jobs(sweep_at(T0 + 90_000, T0 + 30_000, T0))
        .await
        .unwrap();
    assert_eq!(
        swept,
        ExportSweepOutcome {
            interrupted: 1,
            ..ExportSweepOutcome::default()
        }
    );
    let interrupted = store.export_job(a, &quiet.id).await.unwrap().unwrap();
    assert_eq!(interrupted.state, ExportJobState::Error);
    assert_eq!(interrupted.error.as_deref(), Some(EXPORT_INTERRUPTED));
    assert_eq!(interrupted.finished_at, Some(T0 + 90_000));
    // A runner that comes back late cannot revive it.
    assert!(
        !store
            .touch_export_job(&quiet.id, T0 + 91_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_export_job(&quiet.id, ready(1, T0 + 91_000, T0 + 200_000))
            .await
            .unwrap()
    );
    assert_eq!(
        store.export_job(a, &quiet.id).await.unwrap(),
        Some(interrupted)
    );
    assert_eq!(
        store
            .export_job(a, &beating.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        ExportJobState::Pending
    );
    assert_eq!(
        store.live_export_job_ids(T0 + 90_000).await.unwrap(),
        vec![beating.id.clone()]
    );

    // The runner's own failure.
    let failed = ExportJobOutcome::Failed {
        message: "writing the export file failed".into(),
        finished_at: T0 + 95_000,
    };
    assert!(store.finish_export_job(&beating.id, failed).await.unwrap());
    let failed = store.export_job(a, &beating.id).await.unwrap().unwrap();
    assert_eq!(failed.state, ExportJobState::Error);
    assert_eq!(
        failed.error.as_deref(),
        Some("writing the export file failed")
    );
    assert!(store.live_export_job_ids(T0).await.unwrap().is_empty());

    // An expired job with a link, then everything that ended long enough ago is forgotten.
    let old = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    assert!(
        store
            .finish_export_job(&old.id, ready(0, T0 + 1000, T0 + 100_000))
            .await
            .unwrap()
    );
    store.add_export_link(&old.id, [7; 32], T0).await.unwrap();
    let kept = store
        .sweep_export_jobs(sweep_at(T0 + 100_000, T0, T0 + 90_000))
        .await
        .unwrap();
    assert_eq!(
        kept,
        ExportSweepOutcome {
            expired: 1,
            ..ExportSweepOutcome::default()
        },
        "nothing ended before the cut-off"
    );
    let forgot = store
        .sweep_export_jobs(sweep_at(T0 + 200_000, T0, T0 + 100_001))
        .await
        .unwrap();
    assert_eq!(forgot.forgotten, 3);
    for id in [&quiet.id, &beating.id, &old.id] {
        assert_eq!(store.export_job(a, id).await.unwrap(), None);
    }
    assert_eq!(
        store.export_job_by_link(&old.id, [7; 32]).await.unwrap(),
        None
    );
}

// --- members and sessions ----------------------------------------------------------------------

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
                disabled: None,
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
                role: None,
                disabled: Some(true),
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
            .create_member(999_999, new_member("ghost@example.com", "member"))
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
        role: None,
        disabled: Some(disabled),
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
        disabled: None,
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

/// The flat cells carry exactly what the full entry does: the same text, and JSON text equal
/// to what serde_json writes for the entry's values.
pub fn assert_flat_matches_entry(entry: &Entry, flat: &crate::rows::FlatEntry<'_>) {
    let e = &entry.event;
    let json_or_empty = |empty: bool, text: String| if empty { String::new() } else { text };
    assert_eq!(flat.seq, entry.seq);
    assert_eq!(crate::record::entry_id(flat.pk), entry.id);
    assert_eq!(flat.occurred_at, e.occurred_at);
    assert_eq!(flat.recorded_at, entry.recorded_at);
    assert_eq!(flat.action, e.action);
    assert_eq!(flat.channel, e.channel);
    assert_eq!(flat.detailed_action, e.detailed_action.as_deref());
    assert_eq!(flat.description, e.description.as_deref());
    assert_eq!(flat.outcome, e.outcome);
    assert_eq!(flat.actor_type, e.actor.kind);
    assert_eq!(flat.actor_id.as_deref(), e.actor.id.as_deref());
    assert_eq!(flat.actor_name.as_deref(), e.actor.name.as_deref());
    assert_eq!(flat.actor_email.as_deref(), e.actor.email.as_deref());
    let entity = e.entity.as_ref();
    assert_eq!(flat.entity_type, entity.map(|x| x.kind.as_str()));
    assert_eq!(
        flat.entity_id.as_deref(),
        entity.and_then(|x| x.id.as_deref())
    );
    assert_eq!(
        flat.entity_name.as_deref(),
        entity.and_then(|x| x.name.as_deref())
    );
    assert_eq!(flat.ip.as_deref(), e.context.ip.as_deref());
    assert_eq!(flat.user_agent.as_deref(), e.context.user_agent.as_deref());
    assert_eq!(flat.correlation_id, e.context.correlation_id.as_deref());
    assert_eq!(
        flat.entity_ids,
        json_or_empty(
            e.entity_ids.is_empty(),
            serde_json::to_string(&e.entity_ids).unwrap()
        )
    );
    assert_eq!(
        flat.changes,
        json_or_empty(
            e.changes.is_empty(),
            serde_json::to_string(&e.changes).unwrap()
        )
    );
    assert_eq!(
        flat.metadata,
        json_or_empty(
            e.metadata.is_empty(),
            serde_json::to_string(&e.metadata).unwrap()
        )
    );
}
