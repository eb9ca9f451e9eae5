//! GDPR erasure: replaces one person's identity in every entry of an organization with a
//! pseudonym, in the same transaction that records the erasure itself.
//!
//! The chain committed only to a salted digest of the personal fields (stele_core::chain), so
//! replacing them, dropping the salt and setting `erased` (the one update the immutability
//! trigger allows) leaves every hash valid. The person's filter terms (actor id and email, IP) are
//! removed from `entry_terms` and replaced by the pseudonym's.

use rusqlite::{Transaction, params};
use stele_core::chain::{Personal, SealedEvent};
use stele_core::time::Millis;
use stele_store::{Erasure, OrgKey, Receipt, Result, StoreError};

use crate::codec::{ENTRY_COLUMNS, decode_row};
use crate::dict::Dict;
use crate::error::map_err;
use crate::terms::{self, Field};
use crate::writer::{NewDictValues, insert_own_entries};

/// What an erasure did, and dictionary values it created (published after commit).
pub struct Erased {
    pub entries: u64,
    pub receipt: Receipt,
    pub new_dict: NewDictValues,
}

pub fn erase_actor(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    erasure: Erasure,
    now: Millis,
) -> Result<Erased> {
    let Erasure {
        actor,
        pseudonym,
        mut record,
        salt,
    } = erasure;
    let (actor, pseudonym) = (actor.as_str(), pseudonym.as_str());
    // Every entry that names the actor by id or email, found through its filter term.
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entry_terms t CROSS JOIN entries e ON e.pk = t.rowid
         WHERE t.entry_terms MATCH ?1 AND e.org_id = ?2"
    );
    let mut found = Vec::new();
    {
        let mut stmt = tx.prepare(&sql).map_err(map_err)?;
        let mut rows = stmt
            .query(params![terms::term(org, Field::Actor, actor), org.get()])
            .map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            let (pk, entry) = decode_row(row, dict).map_err(map_err)?.map_err(|_| {
                StoreError::Other("entry refers to an unknown dictionary id".into())
            })?;
            let a = &entry.event.actor;
            if a.id.as_deref() == Some(actor) || a.email.as_deref() == Some(actor) {
                found.push((pk, entry.seq, entry.event));
            }
        }
    }
    let replacement = Personal {
        actor_id: Some(pseudonym.to_string()),
        ..Personal::default()
    };
    let personal_json =
        serde_json::to_string(&replacement).map_err(|e| StoreError::Other(e.to_string()))?;
    for (pk, _, before) in &found {
        let mut after = before.clone();
        replacement.apply(&mut after);
        tx.prepare_cached("UPDATE entries SET personal = ?, salt = NULL, erased = 1 WHERE pk = ?")
            .and_then(|mut s| s.execute(params![personal_json, pk]))
            .map_err(map_err)?;
        // Contentless FTS5 forgets a row's terms only when told exactly which they were.
        tx.prepare_cached(
            "INSERT INTO entry_terms (entry_terms, rowid, terms) VALUES ('delete', ?, ?)",
        )
        .and_then(|mut s| s.execute(params![pk, terms::entry_terms(org, before)]))
        .map_err(map_err)?;
        tx.prepare_cached("INSERT INTO entry_terms (rowid, terms) VALUES (?, ?)")
            .and_then(|mut s| s.execute(params![pk, terms::entry_terms(org, &after)]))
            .map_err(map_err)?;
    }

    record
        .metadata
        .insert("entries".into(), serde_json::json!(found.len()));
    found.sort_by_key(|(_, seq, _)| *seq);
    record.entity_ids = found.iter().map(|(_, seq, _)| seq.to_string()).collect();
    let (receipts, new_dict) =
        insert_own_entries(tx, dict, org, vec![SealedEvent::seal(record, salt)], now)?;
    let receipt = receipts.into_iter().next().expect("one receipt per entry");
    Ok(Erased {
        entries: found.len() as u64,
        receipt,
        new_dict,
    })
}
