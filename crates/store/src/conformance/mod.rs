//! The conformance suite: behaviour every backend must show, written once against the trait.
//!
//! A backend runs it with [`conformance_suite!`](crate::conformance_suite), passing an async
//! expression that yields, for each test, a fresh, empty store (its own file or database) and a
//! guard: whatever the store lives on (a temporary directory, a test database), kept until the
//! test is over and then dropped, after the store:
//!
//! ```ignore
//! stele_store::conformance_suite!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store: std::sync::Arc<dyn stele_store::Store> = std::sync::Arc::new(open_in(&dir));
//!     (store, dir)
//! });
//! ```
//!
//! This file holds the macro, the fixtures and the helpers the areas share; each area's checks
//! are in a module of their own (the trail, idempotency, requests spanning organizations, search
//! and paging against a model, integrity, erasure, tenancy, retention, export jobs, members, the
//! print log, action schemas, what Retraced's viewer keeps), re-exported here as plain async functions for the macro to call.

use std::collections::BTreeMap;
use std::sync::Arc;

use stele_core::chain::SealedEvent;
use stele_core::filter::EventFilter;
use stele_core::params::PageRequest;
use stele_core::{Actor, ActorType, Context, Entry, NewEvent, Outcome};

mod action_schemas;
mod erasure;
mod export_jobs;
mod idempotency;
mod integrity;
mod members;
mod print_log;
mod retention;
mod retraced_viewer;
mod search_model;
mod spanning;
mod streams;
mod tenancy;
mod trail;

pub use action_schemas::*;
pub use erasure::*;
pub use export_jobs::*;
pub use idempotency::*;
pub use integrity::*;
pub use members::*;
pub use print_log::*;
pub use retention::*;
pub use retraced_viewer::*;
pub use search_model::*;
pub use spanning::*;
pub use streams::*;
pub use tenancy::*;
pub use trail::*;

use crate::{AppendRequest, OrgKey, PreparedEvent, Store};

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
            // requests whose events span organizations
            a_request_spanning_organizations_is_all_or_nothing,
            seq_is_gap_free_per_organization_across_spanning_requests,
            a_spanning_request_key_replays_every_receipt_with_its_organization,
            event_keys_of_a_spanning_request_are_per_organization,
            organizations_never_see_each_other,
            entries_round_trip_every_field,
            api_keys_authenticate_until_revoked,
            organizations_carry_unique_external_ids_and_page_in_order,
            platform_keys_belong_to_the_platform_organization,
            a_deleted_organization_leaves_nothing_and_another_is_untouched,
            correlated_entries_are_grouped,
            facets_list_what_the_organization_used,
            description_search_is_case_insensitive_and_unicode_aware,
            a_filter_value_with_nul_matches_nothing,
            model_every_filter_and_walk_matches_brute_force,
            row_walks_match_list_walks_alone_and_among_organizations,
            the_chain_verifies_and_checkpoints_sign_its_head,
            proofs_from_stored_subtrees_match_proofs_from_every_leaf,
            verification_resumes_after_a_verified_checkpoint,
            erasure_pseudonymises_a_person_and_the_chain_still_verifies,
            erasure_and_redaction_reach_every_field_and_the_chain_still_verifies,
            erasures_and_redactions_among_ingest_and_retention_keep_every_proof,
            settings_default_and_round_trip_per_organization,
            retention_prunes_expired_entries_and_the_chain_still_verifies,
            scheduled_runs_are_claimed_once,
            // export jobs
            export_jobs_go_from_pending_to_ready_to_expired_within_their_organization,
            export_jobs_whose_runner_went_quiet_are_interrupted_and_old_ones_forgotten,
            // members and sessions
            members_are_one_person_per_email_and_stay_in_their_organization,
            a_new_password_ends_sessions_and_a_removed_member_is_gone,
            sessions_sign_in_their_member_until_revoked_expired_or_disabled,
            one_person_is_a_member_of_many_organizations_with_a_role_in_each,
            a_session_switches_only_to_an_enabled_membership_of_its_own_person,
            removing_the_last_membership_removes_the_person,
            // the print log
            print_log_ids_count_per_organization_and_are_never_reused,
            print_log_rows_round_trip_every_field_and_vocabulary,
            print_log_filters_pages_and_stats_match_brute_force,
            print_log_changes_commit_with_their_audit_entries,
            a_print_log_change_no_audit_entry_describes_is_not_made,
            print_log_totals_hold_whatever_the_rows_add_up_to,
            // action schemas
            action_schema_versions_count_per_action_within_their_organization,
            concurrent_action_schema_versions_are_all_distinct,
            // what Retraced's viewer keeps
            retraced_saved_exports_list_newest_first_within_their_organization,
            retraced_api_tokens_change_only_within_their_organization,
            // log streams
            streams_are_configured_within_their_organization,
            stream_entries_follow_seq_after_a_cursor,
            stream_leases_go_to_one_owner_and_only_it_records,
            a_platform_wide_stream_keeps_a_cursor_per_organization,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard): (std::sync::Arc<dyn $crate::Store>, _) = $make.await;
                // The check takes the store and drops it when done; the guard goes after it.
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
            href: None,
            metadata: Default::default(),
            original_type: None,
        },
        entity: None,
        entity_ids: vec![],
        context: Context::default(),
        changes: vec![],
        metadata: BTreeMap::new(),
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    }
}

/// Seals events with a fixed salt (tests need no secrecy, only determinism).
pub fn sealed(events: Vec<NewEvent>) -> Vec<SealedEvent> {
    events
        .into_iter()
        .map(|e| SealedEvent::seal(e, [9; 16]))
        .collect()
}

/// Events sealed and prepared for an append.
pub fn prepared(events: Vec<NewEvent>) -> Vec<PreparedEvent> {
    sealed(events).into_iter().map(PreparedEvent::new).collect()
}

pub fn request(events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        events: prepared(events),
        idempotency_key: None,
        fingerprint: [0; 32],
    }
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

async fn org(store: &Arc<dyn Store>, name: &str) -> OrgKey {
    store.create_org(name).await.expect("create org").key
}

async fn all(store: &Arc<dyn Store>, org: OrgKey, filter: EventFilter) -> Vec<Entry> {
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
    assert_eq!(flat.actor_href.as_deref(), e.actor.href.as_deref());
    assert_eq!(
        flat.actor_metadata,
        json_or_empty(
            e.actor.metadata.is_empty(),
            serde_json::to_string(&e.actor.metadata).unwrap()
        )
    );
    assert_eq!(
        flat.actor_original_type.as_deref(),
        e.actor.original_type.as_deref()
    );
    assert_eq!(
        flat.entity_href.as_deref(),
        entity.and_then(|x| x.href.as_deref())
    );
    let entity_metadata = entity.map(|x| x.metadata.clone()).unwrap_or_default();
    assert_eq!(
        flat.entity_metadata,
        json_or_empty(
            entity_metadata.is_empty(),
            serde_json::to_string(&entity_metadata).unwrap()
        )
    );
    assert_eq!(
        flat.related_entities,
        json_or_empty(
            e.related_entities.is_empty(),
            serde_json::to_string(&e.related_entities).unwrap()
        )
    );
    assert_eq!(
        flat.origin,
        json_or_empty(
            e.origin.is_empty(),
            serde_json::to_string(&e.origin).unwrap()
        )
    );
}
