//! The stored form of an entry that every backend shares: its row key and public id, and the JSON
//! body that holds what no index needs. One definition, so an entry's id and body mean the same
//! whichever database holds it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stele_core::chain::Personal;
use stele_core::event::Metadata;
use stele_core::time::Millis;
use stele_core::{Actor, ActorType, Change, Context, Entity, Entry, NewEvent, Outcome, Seq};

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
    entry_id_into(pk, &mut [0; 36]).to_string()
}

/// [`entry_id`] written into `buf`, for a caller that writes many ids and keeps none.
pub fn entry_id_into(pk: i64, buf: &mut [u8; 36]) -> &str {
    let (ms, n) = (
        (pk >> PK_MS_SHIFT) as u128,
        (pk & ((1 << PK_MS_SHIFT) - 1)) as u128,
    );
    let bits = (ms << 80) | (0x7 << 76) | ((n >> 9) << 64) | (0b10 << 62) | ((n & 0x1ff) << 53);
    uuid::Uuid::from_u128(bits).hyphenated().encode_lower(buf)
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
    // The fields added to the model later; absent from the JSON when empty, so rows written
    // before them read the same.
    #[serde(rename = "ah", default, skip_serializing_if = "Option::is_none")]
    pub actor_href: Option<String>,
    #[serde(rename = "am", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub actor_metadata: Metadata,
    #[serde(rename = "ao", default, skip_serializing_if = "Option::is_none")]
    pub actor_original_type: Option<String>,
    #[serde(rename = "eh", default, skip_serializing_if = "Option::is_none")]
    pub entity_href: Option<String>,
    #[serde(rename = "em", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entity_metadata: Metadata,
    #[serde(rename = "re", default, skip_serializing_if = "Vec::is_empty")]
    pub related_entities: Vec<Entity>,
    #[serde(rename = "og", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub origin: Metadata,
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
            actor_href: event.actor.href.clone(),
            actor_metadata: event.actor.metadata.clone(),
            actor_original_type: event.actor.original_type.clone(),
            entity_href: event.entity.as_ref().and_then(|e| e.href.clone()),
            entity_metadata: event
                .entity
                .as_ref()
                .map(|e| e.metadata.clone())
                .unwrap_or_default(),
            related_entities: event.related_entities.clone(),
            origin: event.origin.clone(),
        }
    }
}

/// An event's `body` and `personal` columns as JSON text, as both backends store them.
pub fn stored_text(event: &NewEvent) -> (String, String) {
    // Plain structs of strings and JSON values: serializing them into memory cannot fail.
    let body = serde_json::to_string(&Body::of(event)).expect("JSON into memory");
    let personal = serde_json::to_string(&Personal::of(event)).expect("JSON into memory");
    (body, personal)
}

/// One stored entry as a backend reads it, borrowed from the database row: the scalar and text
/// columns, and the `personal` and `body` columns' JSON text, not yet parsed. Both backends read
/// every entry through this, so an entry reads the same (and hashes the same) from either.
#[derive(Debug, Clone, Copy)]
pub struct StoredRow<'a> {
    pub pk: i64,
    pub seq: Seq,
    pub occurred_at: Millis,
    pub recorded_at: Millis,
    pub action: &'a str,
    pub detailed_action: Option<&'a str>,
    pub channel: &'a str,
    pub actor_type: ActorType,
    pub outcome: Outcome,
    pub entity_type: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub description: Option<&'a str>,
    /// [`Personal`] as JSON.
    pub personal: &'a str,
    /// [`Body`] as JSON.
    pub body: &'a str,
    /// Rewritten after it was recorded, by an erasure or a redaction (its records say which).
    pub erased: bool,
}

/// A stored `personal` or `body` that is not the JSON its type writes.
#[derive(Debug, thiserror::Error)]
#[error("entries.{column}: {source}")]
pub struct CorruptRow {
    /// `personal` or `body`.
    pub column: &'static str,
    pub source: serde_json::Error,
}

impl<'a> StoredRow<'a> {
    /// Puts the entry back together: the inverse of how both backends store one.
    pub fn entry(&self) -> Result<Entry, CorruptRow> {
        let body: Body = parse("body", self.body)?;
        let personal: Personal = parse("personal", self.personal)?;
        let mut context = body.context;
        context.correlation_id = self.correlation_id.map(str::to_string);
        let entity = self.entity_type.map(|kind| Entity {
            kind: kind.to_string(),
            id: body.entity_id,
            name: body.entity_name,
            href: body.entity_href,
            metadata: body.entity_metadata,
        });
        let mut entry = Entry {
            id: entry_id(self.pk),
            seq: self.seq,
            recorded_at: self.recorded_at,
            event: NewEvent {
                occurred_at: self.occurred_at,
                action: self.action.to_string(),
                detailed_action: self.detailed_action.map(str::to_string),
                channel: self.channel.to_string(),
                description: self.description.map(str::to_string),
                outcome: self.outcome,
                actor: Actor {
                    kind: self.actor_type,
                    // Filled in from the personal fields below.
                    id: None,
                    name: None,
                    email: None,
                    href: body.actor_href,
                    metadata: body.actor_metadata,
                    original_type: body.actor_original_type,
                },
                entity,
                entity_ids: body.entity_ids,
                related_entities: body.related_entities,
                context,
                changes: body.changes,
                metadata: body.metadata,
                origin: body.origin,
                idempotency_key: None,
            },
        };
        personal.apply(&mut entry.event);
        Ok(entry)
    }
}

pub(crate) fn parse<'a, T: Deserialize<'a>>(
    column: &'static str,
    json: &'a str,
) -> Result<T, CorruptRow> {
    serde_json::from_str(json).map_err(|source| CorruptRow { column, source })
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
