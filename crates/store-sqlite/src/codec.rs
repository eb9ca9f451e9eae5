//! How an entry maps onto an `entries` row: the filterable parts are columns, the rest one JSON
//! body with short keys (the body is most of the row, so its size is most of the disk cost).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stele_core::chain::Personal;
use stele_core::time::Millis;
use stele_core::{Actor, ActorType, Change, Context, Entity, Entry, NewEvent, Outcome};

use crate::dict::Dict;

/// The part of an entry that no index needs, minus the personal fields (which live in the
/// `personal` column so erasure can replace them without touching anything else).
#[derive(Serialize, Deserialize, Default)]
pub struct Body {
    #[serde(rename = "ei", default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(rename = "en", default, skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
    #[serde(rename = "ids", default, skip_serializing_if = "Vec::is_empty")]
    pub entity_ids: Vec<String>,
    /// The context without `correlation_id` (a column) and `ip`/`user_agent` (personal).
    #[serde(rename = "cx", default, skip_serializing_if = "Context::is_empty")]
    pub context: Context,
    #[serde(rename = "ch", default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(rename = "md", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
}

impl Body {
    pub fn of(event: &NewEvent) -> Body {
        let mut context = event.context.clone();
        context.ip = None;
        context.user_agent = None;
        context.correlation_id = None;
        Body {
            entity_id: event.entity.as_ref().and_then(|e| e.id.clone()),
            entity_name: event.entity.as_ref().and_then(|e| e.name.clone()),
            entity_ids: event.entity_ids.clone(),
            context,
            changes: event.changes.clone(),
            metadata: event.metadata.clone(),
        }
    }
}

/// The columns every read selects, in the order [`decode_row`] reads them.
pub const ENTRY_COLUMNS: &str = "e.pk, e.seq, e.occurred_ms, e.recorded_ms, e.action, \
     e.detailed_action, e.channel, e.actor_type, e.outcome, e.entity_type, e.correlation_id, \
     e.personal, e.description, e.body";

/// Bits of `pk` below the millisecond (see schema.rs): room for 2,097,152 entries per ms.
pub const PK_MS_SHIFT: u32 = 21;

/// The smallest `pk` of a millisecond; `pk_floor(ms + 1)` is the bound after it.
pub fn pk_floor(ms: Millis) -> i64 {
    ms << PK_MS_SHIFT
}

/// The public id of an entry is its `pk` written as a UUIDv7: the 48-bit millisecond, then the
/// 21-bit count within it (12 bits in `rand_a`, 9 at the top of `rand_b`), the rest zero. It is
/// time-ordered like any UUIDv7 and needs no column or index of its own.
pub fn entry_id(pk: i64) -> String {
    let (ms, n) = (
        (pk >> PK_MS_SHIFT) as u128,
        (pk & ((1 << PK_MS_SHIFT) - 1)) as u128,
    );
    let bits = (ms << 80) | (0x7 << 76) | ((n >> 9) << 64) | (0b10 << 62) | ((n & 0x1ff) << 53);
    uuid::Uuid::from_u128(bits).hyphenated().to_string()
}

/// The `pk` an id names, if it is an id [`entry_id`] could have made.
pub fn pk_of_id(id: &str) -> Option<i64> {
    let bits = uuid::Uuid::parse_str(id).ok()?.as_u128();
    let version = (bits >> 76) & 0xf;
    let variant = (bits >> 62) & 0b11;
    if version != 7 || variant != 0b10 || bits & ((1 << 53) - 1) != 0 {
        return None;
    }
    let ms = (bits >> 80) as i64;
    let n = ((((bits >> 64) & 0xfff) << 9) | ((bits >> 53) & 0x1ff)) as i64;
    Some((ms << PK_MS_SHIFT) | n)
}

/// The rowid of an entry in the description index: its organization and `seq`. Dense rowids keep
/// FTS5's delta-encoded posting lists small (neighbouring entries differ by one), and an
/// organization's entries form one rowid range, so a search never leaves its organization.
pub fn description_rowid(org: i64, seq: i64) -> i64 {
    (org << 40) | seq
}

pub fn outcome_code(o: Outcome) -> i64 {
    match o {
        Outcome::Success => 0,
        Outcome::Failure => 1,
    }
}

/// Decodes one row selected with [`ENTRY_COLUMNS`]. A dictionary id the cache does not know
/// yields `Err(MissingDict)` so the caller can refresh and retry.
pub fn decode_row(
    row: &rusqlite::Row<'_>,
    dict: &Dict,
) -> rusqlite::Result<Result<(i64, Entry), MissingDict>> {
    let body: String = row.get(13)?;
    let body: Body = serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(13, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let ids: (i64, Option<i64>, i64, Option<i64>) =
        (row.get(4)?, row.get(5)?, row.get(6)?, row.get(9)?);
    let resolve = |id: i64| dict.value_of(id).map(|v| v.to_string());
    let (Some(action), Some(channel)) = (resolve(ids.0), resolve(ids.2)) else {
        return Ok(Err(MissingDict));
    };
    let (detailed_action, entity_type) = match (ids.1.map(resolve), ids.3.map(resolve)) {
        (Some(None), _) | (_, Some(None)) => return Ok(Err(MissingDict)),
        (d, t) => (d.flatten(), t.flatten()),
    };
    let mut context = body.context;
    context.correlation_id = row.get(10)?;
    let personal: String = row.get(11)?;
    let personal: Personal = serde_json::from_str(&personal).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(11, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let entity = entity_type.map(|kind| Entity {
        kind,
        id: body.entity_id,
        name: body.entity_name,
    });
    let pk: i64 = row.get(0)?;
    let mut entry = Entry {
        id: entry_id(pk),
        seq: row.get(1)?,
        recorded_at: row.get(3)?,
        event: NewEvent {
            occurred_at: row.get(2)?,
            action,
            detailed_action,
            channel,
            description: row.get(12)?,
            outcome: if row.get::<_, i64>(8)? == 1 {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            actor: Actor {
                kind: ActorType::from_code(row.get(7)?).unwrap_or(ActorType::System),
                // Filled in from the personal column below.
                id: None,
                name: None,
                email: None,
            },
            entity,
            entity_ids: body.entity_ids,
            context,
            changes: body.changes,
            metadata: body.metadata,
            idempotency_key: None,
        },
    };
    personal.apply(&mut entry.event);
    Ok(Ok((pk, entry)))
}

/// A row referred to a dictionary id this process has not loaded yet.
#[derive(Debug)]
pub struct MissingDict;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_like_their_pk() {
        let pks = [
            pk_floor(0),
            pk_floor(1_767_225_600_000),
            pk_floor(1_767_225_600_000) + 1,
            pk_floor(1_767_225_600_001) - 1,
            pk_floor(4_000_000_000_000) + 5,
        ];
        for pk in pks {
            let id = entry_id(pk);
            assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
            assert_eq!(pk_of_id(&id), Some(pk), "{id}");
        }
        let ids: Vec<String> = pks.iter().map(|pk| entry_id(*pk)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(
            pk_of_id("01a20098-2011-7173-bda2-1f466a792f3f"),
            None,
            "random tails are not ours"
        );
        assert_eq!(pk_of_id("not-a-uuid"), None);
    }
}
