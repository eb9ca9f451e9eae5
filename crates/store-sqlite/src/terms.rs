//! Filter terms: each exact-match filter value of an entry becomes one short token in the
//! `entry_terms` FTS5 table, so every filter (and any combination, as an AND of terms) is answered
//! from posting lists ordered by `pk`.
//!
//! A term is `t` + 16 hex digits of a 64-bit hash of (organization, field, value). Hashing makes
//! every value, whatever its characters or case, one token the `ascii` tokenizer keeps intact, and
//! binds the term to its organization and field. The hash is part of the on-disk format: changing
//! it needs a migration that rebuilds `entry_terms`.

use std::fmt::Write as _;

use stele_core::{ActorType, NewEvent, Outcome};
use stele_store::OrgKey;

/// Which filter a term serves. The numbers are part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Action = 1,
    DetailedAction = 2,
    Channel = 3,
    /// The primary entity's type and every related entity's.
    EntityType = 4,
    /// The primary and related entities' ids and every bulk `entity_ids` value.
    EntityId = 5,
    /// The actor's id and the actor's email.
    Actor = 6,
    Failure = 7,
    CorrelationId = 8,
    Ip = 9,
    ActorType = 10,
    /// Every entry has its organization's term: the starting point of every query.
    Org = 11,
}

/// FNV-1a over the parts, then a SplitMix64 finaliser so that similar inputs spread evenly.
fn hash(org: OrgKey, field: Field, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&org.get().to_le_bytes());
    eat(&[field as u8, 0xff]);
    eat(value.as_bytes());
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn term(org: OrgKey, field: Field, value: &str) -> String {
    format!("t{:016x}", hash(org, field, value))
}

/// The space-separated terms of one entry, as stored in `entry_terms`.
pub fn entry_terms(org: OrgKey, e: &NewEvent) -> String {
    let mut out = String::with_capacity(18 * 12);
    let mut add = |field: Field, value: &str| {
        let _ = write!(out, "t{:016x} ", hash(org, field, value));
    };
    add(Field::Org, "");
    add(Field::Action, &e.action);
    if let Some(v) = &e.detailed_action {
        add(Field::DetailedAction, v);
    }
    add(Field::Channel, &e.channel);
    add(Field::ActorType, e.actor.kind.as_str());
    for entity in e.entities() {
        add(Field::EntityType, &entity.kind);
        if let Some(id) = &entity.id {
            add(Field::EntityId, id);
        }
    }
    for id in &e.entity_ids {
        add(Field::EntityId, id);
    }
    if let Some(v) = &e.actor.id {
        add(Field::Actor, v);
    }
    if let Some(v) = &e.actor.email {
        add(Field::Actor, v);
    }
    if e.outcome == Outcome::Failure {
        add(Field::Failure, "");
    }
    if let Some(v) = &e.context.correlation_id {
        add(Field::CorrelationId, v);
    }
    if let Some(v) = &e.context.ip {
        add(Field::Ip, v);
    }
    out
}

pub fn actor_type_term(org: OrgKey, t: ActorType) -> String {
    term(org, Field::ActorType, t.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_stable_single_ascii_tokens_bound_to_org_and_field() {
        let a = term(OrgKey::new(1), Field::EntityId, "Job 7 / ünïcode");
        assert_eq!(a.len(), 17);
        assert!(a[1..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, term(OrgKey::new(2), Field::EntityId, "Job 7 / ünïcode"));
        assert_ne!(a, term(OrgKey::new(1), Field::Actor, "Job 7 / ünïcode"));
        assert_ne!(a, term(OrgKey::new(1), Field::EntityId, "job 7 / ünïcode"));
        // The on-disk format: this value must never change.
        assert_eq!(
            term(OrgKey::new(1), Field::Action, "create"),
            term(OrgKey::new(1), Field::Action, "create")
        );
    }
}
