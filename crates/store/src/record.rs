//! The stored form of an entry that every backend shares: its row key and public id, and the JSON
//! body that holds what no index needs. One definition, so an entry's id and body mean the same
//! whichever database holds it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stele_core::chain::Personal;
use stele_core::time::Millis;
use stele_core::{Actor, ActorType, Change, Context, Entity, Entry, NewEvent, Outcome};

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

/// The columns of a stored entry, as each backend reads (and decodes) them.
pub struct Columns {
    pub pk: i64,
    pub seq: i64,
    pub occurred_at: Millis,
    pub recorded_at: Millis,
    pub action: String,
    pub detailed_action: Option<String>,
    pub channel: String,
    pub actor_type: ActorType,
    pub outcome: Outcome,
    pub entity_type: Option<String>,
    pub correlation_id: Option<String>,
    pub description: Option<String>,
}

/// Puts an entry back together from its columns, its body and its personal fields: the inverse
/// of how both backends store one, so an entry reads the same (and hashes the same) from either.
pub fn assemble(columns: Columns, body: Body, personal: &Personal) -> Entry {
    let mut context = body.context;
    context.correlation_id = columns.correlation_id;
    let entity = columns.entity_type.map(|kind| Entity {
        kind,
        id: body.entity_id,
        name: body.entity_name,
    });
    let mut entry = Entry {
        id: entry_id(columns.pk),
        seq: columns.seq,
        recorded_at: columns.recorded_at,
        event: NewEvent {
            occurred_at: columns.occurred_at,
            action: columns.action,
            detailed_action: columns.detailed_action,
            channel: columns.channel,
            description: columns.description,
            outcome: columns.outcome,
            actor: Actor {
                kind: columns.actor_type,
                // Filled in from the personal fields below.
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
    entry
}

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
