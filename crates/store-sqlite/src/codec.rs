//! How an entry maps onto an `entries` row: the filterable parts are columns, the rest one JSON
//! body with short keys (the body is most of the row, so its size is most of the disk cost).

use stele_core::merkle::Hash;
use stele_core::{ActorType, Entry, Outcome, Seq};
use stele_store::record::StoredRow;
pub use stele_store::record::{entry_id, pk_floor, pk_of_id};
use stele_store::{Result, StoreError};

use crate::dict::Dict;
use crate::packed;

/// The columns every read selects, in the order [`decode_row`] reads them.
pub const ENTRY_COLUMNS: &str = "e.pk, e.seq, e.occurred_ms, e.recorded_ms, e.action, \
     e.detailed_action, e.channel, e.actor_type, e.outcome, e.entity_type, e.correlation_id, \
     e.personal, e.description, e.body, e.erased";

/// How many columns [`ENTRY_COLUMNS`] selects.
pub const ENTRY_COLUMN_COUNT: usize = 15;

/// The chain columns that follow [`ENTRY_COLUMNS`] where a read needs them (from
/// [`ENTRY_COLUMN_COUNT`] on).
pub const CHAIN_COLUMNS: &str = "e.salt, e.personal_digest, e.erased, e.hash";

/// A 32-byte hash column; `what` names it in the error.
pub fn hash_of(bytes: Vec<u8>, what: &str) -> Result<Hash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Other(format!("{what} is not 32 bytes")))
}

/// The seal stored in column `index` (`salt`, see `stele_core::seal`) of entry `seq`'s row.
pub fn seal_of(row: &rusqlite::Row<'_>, index: usize, seq: Seq) -> Result<stele_core::seal::Seal> {
    let stored = row
        .get_ref(index)
        .and_then(|v| Ok(v.as_blob_or_null()?))
        .map_err(|e| StoreError::Other(e.to_string()))?;
    stele_core::seal::Seal::from_bytes(stored)
        .map_err(|e| StoreError::Other(format!("seq {seq}: {e}")))
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
    let decoded = with_stored_row(row, dict, |stored| {
        let entry = stored.entry().map_err(|e| {
            let column = if e.column == "body" { 13 } else { 11 };
            rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        })?;
        Ok((stored.pk, entry))
    })?;
    match decoded {
        Ok(entry) => entry.map(Ok),
        Err(missing) => Ok(Err(missing)),
    }
}

/// Hands one row selected with [`ENTRY_COLUMNS`] to `f` as a [`StoredRow`] borrowed from SQLite
/// (its dictionary ids resolved), or says `MissingDict`.
pub fn with_stored_row<T>(
    row: &rusqlite::Row<'_>,
    dict: &Dict,
    f: impl FnOnce(StoredRow<'_>) -> T,
) -> rusqlite::Result<Result<T, MissingDict>> {
    let ids: (i64, Option<i64>, i64, Option<i64>) =
        (row.get(4)?, row.get(5)?, row.get(6)?, row.get(9)?);
    let (Some(action), Some(channel)) = (dict.value_of(ids.0), dict.value_of(ids.2)) else {
        return Ok(Err(MissingDict));
    };
    let (detailed_action, entity_type) = match (
        ids.1.map(|id| dict.value_of(id)),
        ids.3.map(|id| dict.value_of(id)),
    ) {
        (Some(None), _) | (_, Some(None)) => return Ok(Err(MissingDict)),
        (d, t) => (d.flatten(), t.flatten()),
    };
    // Text is read where SQLite holds it, without copying it into a `String` first; a packed
    // body (packed.rs) is unpacked into these.
    let text =
        |i: usize| -> rusqlite::Result<Option<&str>> { Ok(row.get_ref(i)?.as_str_or_null()?) };
    let (mut personal, mut body) = (String::new(), String::new());
    let unpacked = |i: usize, scratch| -> rusqlite::Result<&str> {
        packed::unpack(row.get_ref(i)?, scratch).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
        })
    };
    let stored = StoredRow {
        pk: row.get(0)?,
        seq: Seq::new(row.get(1)?),
        occurred_at: row.get(2)?,
        recorded_at: row.get(3)?,
        action: &action,
        detailed_action: detailed_action.as_deref(),
        channel: &channel,
        actor_type: ActorType::from_code(row.get(7)?).unwrap_or(ActorType::System),
        outcome: if row.get::<_, i64>(8)? == 1 {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        entity_type: entity_type.as_deref(),
        correlation_id: text(10)?,
        description: text(12)?,
        personal: unpacked(11, &mut personal)?,
        body: unpacked(13, &mut body)?,
        erased: row.get(14)?,
    };
    Ok(Ok(f(stored)))
}

/// A row referred to a dictionary id this process has not loaded yet.
#[derive(Debug)]
pub struct MissingDict;
