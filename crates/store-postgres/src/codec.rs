//! How an entry maps onto an `entries` row: every filterable part is a column (or a row in
//! `entry_keys`), everything else one JSON `body` with short keys, and the personal fields their
//! own JSON column so erasure can replace them and nothing else.
//!
//! The row key, the public id and the body's JSON shape are `stele_store::record`'s, shared with
//! the SQLite backend, so an entry's id and body mean the same whichever backend wrote them.

use stele_core::merkle::Hash;
use stele_core::{ActorType, Entry, NewEvent, Outcome, Seq};
use stele_store::OrgKey;
use stele_store::record::StoredRow;
pub use stele_store::record::{PK_MS_SHIFT, entry_id, pk_floor, pk_of_id};
use tokio_postgres::Row;

use crate::error::{R, other};

pub fn outcome_code(o: Outcome) -> i16 {
    match o {
        Outcome::Success => 0,
        Outcome::Failure => 1,
    }
}

/// `entry_keys.kind`: which filter a multi-valued identifier serves.
pub const KEY_ENTITY_ID: i16 = 1;
pub const KEY_ACTOR: i16 = 2;
pub const KEY_IP: i16 = 3;
/// The type of a related entity (`NewEvent::related_entities`).
pub const KEY_RELATED_ENTITY_TYPE: i16 = 4;

/// The `entry_keys` rows of one entry: each distinct (kind, value) once.
pub fn entry_keys(event: &NewEvent) -> Vec<(i16, &str)> {
    let mut keys: Vec<(i16, &str)> = Vec::new();
    for id in event
        .entities()
        .filter_map(|e| e.id.as_deref())
        .chain(event.entity_ids.iter().map(String::as_str))
    {
        keys.push((KEY_ENTITY_ID, id));
    }
    // The primary entity's type is a column; related entities' types are found here.
    for related in &event.related_entities {
        keys.push((KEY_RELATED_ENTITY_TYPE, related.kind.as_str()));
    }
    for v in [event.actor.id.as_deref(), event.actor.email.as_deref()]
        .into_iter()
        .flatten()
    {
        keys.push((KEY_ACTOR, v));
    }
    if let Some(ip) = event.context.ip.as_deref() {
        keys.push((KEY_IP, ip));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// `facets.kind`.
pub const FACET_ACTION: i16 = 1;
pub const FACET_DETAILED_ACTION: i16 = 2;
pub const FACET_CHANNEL: i16 = 3;
pub const FACET_ENTITY_TYPE: i16 = 4;
pub const FACET_ACTOR_TYPE: i16 = 5;

/// The facet values one entry uses.
pub fn entry_facets(event: &NewEvent) -> Vec<(i16, &str)> {
    let mut out = vec![
        (FACET_ACTION, event.action.as_str()),
        (FACET_CHANNEL, event.channel.as_str()),
        (FACET_ACTOR_TYPE, event.actor.kind.as_str()),
    ];
    if let Some(d) = &event.detailed_action {
        out.push((FACET_DETAILED_ACTION, d));
    }
    for e in event.entities() {
        out.push((FACET_ENTITY_TYPE, &e.kind));
    }
    out
}

/// The columns every read selects, in the order [`decode_row`] reads them.
pub const ENTRY_COLUMNS: &str = "e.pk, e.seq, e.occurred_ms, e.recorded_ms, e.action, \
     e.detailed_action, e.channel, e.actor_type, e.outcome, e.entity_type, e.correlation_id, \
     e.personal, e.description, e.body, e.erased";

/// How many columns [`ENTRY_COLUMNS`] selects (extra columns follow from here).
pub const ENTRY_COLUMN_COUNT: usize = 15;

/// Organization keys as the database stores them, for an array parameter.
pub fn org_keys(orgs: &[OrgKey]) -> Vec<i64> {
    orgs.iter().map(|o| o.get()).collect()
}

/// A 32-byte hash column; `what` names it in the error.
pub fn hash_of(bytes: Vec<u8>, what: &str) -> R<Hash> {
    bytes
        .try_into()
        .map_err(|_| other(format!("{what} is not 32 bytes")))
}

/// Decodes one row selected with [`ENTRY_COLUMNS`] into `(pk, entry)`.
pub fn decode_row(row: &Row) -> R<(i64, Entry)> {
    let stored = stored_row(row)?;
    let entry = stored.entry().map_err(|e| other(e.to_string()))?;
    Ok((stored.pk, entry))
}

/// One row selected with [`ENTRY_COLUMNS`], borrowed from the driver's row.
pub fn stored_row(row: &Row) -> R<StoredRow<'_>> {
    let actor_type: i16 = row.try_get(7)?;
    let outcome: i16 = row.try_get(8)?;
    Ok(StoredRow {
        pk: row.try_get(0)?,
        seq: Seq::new(row.try_get(1)?),
        occurred_at: row.try_get(2)?,
        recorded_at: row.try_get(3)?,
        action: row.try_get(4)?,
        detailed_action: row.try_get(5)?,
        channel: row.try_get(6)?,
        actor_type: ActorType::from_code(i64::from(actor_type))
            .ok_or_else(|| other(format!("entries.actor_type {actor_type} is unknown")))?,
        outcome: if outcome == 1 {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        entity_type: row.try_get(9)?,
        correlation_id: row.try_get(10)?,
        description: row.try_get(12)?,
        personal: row.try_get(11)?,
        body: row.try_get(13)?,
        erased: row.try_get(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_core::Entity;

    #[test]
    fn keys_are_distinct_per_entry() {
        let mut e = stele_store::conformance::event("bulk_update", 0);
        e.actor.id = Some("same".into());
        e.actor.email = Some("same".into());
        e.entity = Some(Entity::new("Job", Some("j1".into()), None));
        e.entity_ids = vec!["j1".into(), "j2".into()];
        assert_eq!(
            entry_keys(&e),
            vec![
                (KEY_ENTITY_ID, "j1"),
                (KEY_ENTITY_ID, "j2"),
                (KEY_ACTOR, "same")
            ]
        );
    }
}
