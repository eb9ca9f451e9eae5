//! How an entry maps onto an `entries` row: the filterable parts are columns, the rest one JSON
//! body with short keys (the body is most of the row, so its size is most of the disk cost).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stele_core::time::Millis;
use stele_core::{Actor, ActorType, Change, Context, Entity, Entry, NewEvent, Outcome};

use crate::dict::Dict;

/// The part of an entry that no index needs.
#[derive(Serialize, Deserialize, Default)]
pub struct Body {
    #[serde(rename = "ai", default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(rename = "an", default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    #[serde(rename = "ae", default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    #[serde(rename = "ei", default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(rename = "en", default, skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
    #[serde(rename = "ids", default, skip_serializing_if = "Vec::is_empty")]
    pub entity_ids: Vec<String>,
    /// The context without `ip` and `correlation_id`, which are columns.
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
        context.correlation_id = None;
        Body {
            actor_id: event.actor.id.clone(),
            actor_name: event.actor.name.clone(),
            actor_email: event.actor.email.clone(),
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
pub const ENTRY_COLUMNS: &str = "e.pk, e.seq, e.uid, e.occurred_ms, e.recorded_ms, e.action, \
     e.detailed_action, e.channel, e.actor_type, e.outcome, e.entity_type, e.correlation_id, \
     e.ip, e.description, e.body";

/// Bits of `pk` below the millisecond (see schema.rs): room for 2,097,152 entries per ms.
pub const PK_MS_SHIFT: u32 = 21;

/// The smallest `pk` of a millisecond; `pk_floor(ms + 1)` is the bound after it.
pub fn pk_floor(ms: Millis) -> i64 {
    ms << PK_MS_SHIFT
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
    let uid: Vec<u8> = row.get(2)?;
    let body: String = row.get(14)?;
    let body: Body = serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(14, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let ids: (i64, Option<i64>, i64, Option<i64>) =
        (row.get(5)?, row.get(6)?, row.get(7)?, row.get(10)?);
    let resolve = |id: i64| dict.value_of(id).map(|v| v.to_string());
    let (Some(action), Some(channel)) = (resolve(ids.0), resolve(ids.2)) else {
        return Ok(Err(MissingDict));
    };
    let (detailed_action, entity_type) = match (ids.1.map(resolve), ids.3.map(resolve)) {
        (Some(None), _) | (_, Some(None)) => return Ok(Err(MissingDict)),
        (d, t) => (d.flatten(), t.flatten()),
    };
    let mut context = body.context;
    context.ip = row.get(12)?;
    context.correlation_id = row.get(11)?;
    let entity = entity_type.map(|kind| Entity {
        kind,
        id: body.entity_id,
        name: body.entity_name,
    });
    let pk: i64 = row.get(0)?;
    Ok(Ok((
        pk,
        Entry {
            id: uuid::Uuid::from_slice(&uid)
                .map(|u| u.hyphenated().to_string())
                .unwrap_or_default(),
            seq: row.get(1)?,
            recorded_at: row.get(4)?,
            event: NewEvent {
                occurred_at: row.get(3)?,
                action,
                detailed_action,
                channel,
                description: row.get(13)?,
                outcome: if row.get::<_, i64>(9)? == 1 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
                actor: Actor {
                    kind: ActorType::from_code(row.get(8)?).unwrap_or(ActorType::System),
                    id: body.actor_id,
                    name: body.actor_name,
                    email: body.actor_email,
                },
                entity,
                entity_ids: body.entity_ids,
                context,
                changes: body.changes,
                metadata: body.metadata,
                idempotency_key: None,
            },
        },
    )))
}

/// A row referred to a dictionary id this process has not loaded yet.
#[derive(Debug)]
pub struct MissingDict;
