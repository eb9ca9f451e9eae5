//! Erasure of a person and redaction of fields: both rewrite stored entries
//! (`stele_store::rewrite`), each in the one transaction that also records it, and then
//! [`clean_up`] removes what is left of the old values from the database's files.
//!
//! The chain commits to every erasable value through its own salted commitment
//! (`stele_core::seal`), so rewriting an entry's description, body and personal fields, storing
//! its new seal and setting `erased` (the one update the immutability trigger allows) leaves
//! every hash valid. The entry's search rows (filter terms, description trigrams) are replaced by
//! those of its new content: the rewrite queues them for the indexer (`search.rs`), and readers
//! check a rewritten entry directly until the index has taken the new rows in.

use rusqlite::{Connection, Transaction, params};
use stele_core::chain::SealedEvent;
use stele_core::erase::{erase_person as erase_in_event, redact_fields};
use stele_core::seal::Seal;
use stele_core::time::Millis;
use stele_core::{Entry, Seq};
use stele_store::rewrite::{Rewritten, needles};
use stele_store::{Erasure, OrgKey, Receipt, Redaction, Result, StoreError};

use crate::codec::{
    CHAIN_COLUMNS, ENTRY_COLUMN_COUNT, ENTRY_COLUMNS, decode_row, hash_of, pk_of_id, seal_of,
};
use crate::dict::Dict;
use crate::error::map_err;
use crate::packed;
use crate::search::{self, Change};
use crate::writer::{NewDictValues, insert_own_entries};

/// What an erasure or redaction did, and dictionary values it created (published after commit).
pub struct Done {
    pub entries: u64,
    /// The redacted entry's `seq` (a redaction).
    pub seq: Option<Seq>,
    pub receipt: Receipt,
    pub new_dict: NewDictValues,
}

/// An entry as stored, with its chain columns.
struct Stored {
    pk: i64,
    entry: Entry,
    personal_digest: [u8; 32],
    seal: Seal,
}

fn stored_rows(
    tx: &Transaction<'_>,
    dict: &Dict,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Stored>> {
    let mut stmt = tx.prepare(sql).map_err(map_err)?;
    let mut rows = stmt.query(params).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        let (pk, entry) = decode_row(row, dict)
            .map_err(map_err)?
            .map_err(|_| StoreError::Other("entry refers to an unknown dictionary id".into()))?;
        let n = ENTRY_COLUMN_COUNT;
        let seal = seal_of(row, n, entry.seq)?;
        let personal_digest = hash_of(row.get(n + 1).map_err(map_err)?, "personal_digest")?;
        out.push(Stored {
            pk,
            entry,
            personal_digest,
            seal,
        });
    }
    Ok(out)
}

pub fn erase_person(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    erasure: Erasure,
    now: Millis,
) -> Result<Done> {
    let Erasure {
        person,
        pseudonym,
        mut record,
        salt,
    } = erasure;
    // Only rows whose stored text holds one of the person's identifiers are decoded.
    let needles = needles(&person);
    let mut sql = format!(
        "SELECT {ENTRY_COLUMNS}, {CHAIN_COLUMNS} FROM entries e WHERE e.org_id = ?1 AND (0"
    );
    for i in 0..needles.len() {
        let p = i + 2;
        sql.push_str(&format!(
            " OR instr(lower(stele_unpacked(e.body)), ?{p}) OR instr(lower(e.personal), ?{p})
              OR instr(lower(coalesce(e.description, '')), ?{p})"
        ));
    }
    sql.push_str(") ORDER BY e.seq");
    let org_key = org.get();
    let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&org_key];
    bound.extend(needles.iter().map(|n| n as &dyn rusqlite::ToSql));
    let mut rewritten = Vec::new();
    for s in stored_rows(tx, dict, &sql, &bound)? {
        if let Some(after) = erase_in_event(&s.entry.event, &person, &pseudonym) {
            rewritten.push(Rewritten::new(
                s.pk,
                s.entry.seq,
                s.entry.event,
                &s.personal_digest,
                &s.seal,
                after,
            )?);
        }
    }
    for r in &rewritten {
        store_rewrite(tx, org, r)?;
    }
    record
        .metadata
        .insert("entries".into(), serde_json::json!(rewritten.len()));
    record.entity_ids = rewritten.iter().map(|r| r.seq.to_string()).collect();
    let (receipts, new_dict) =
        insert_own_entries(tx, dict, org, vec![SealedEvent::seal(record, salt)], now)?;
    Ok(Done {
        entries: rewritten.len() as u64,
        seq: None,
        receipt: receipts.into_iter().next().expect("one receipt per entry"),
        new_dict,
    })
}

pub fn redact(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    redaction: Redaction,
    now: Millis,
) -> Result<Done> {
    let Redaction {
        id,
        fields,
        mut record,
        salt,
    } = redaction;
    let pk = pk_of_id(&id).ok_or(StoreError::NotFound)?;
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}, {CHAIN_COLUMNS} FROM entries e WHERE e.org_id = ?1 AND e.pk = ?2"
    );
    let s = stored_rows(tx, dict, &sql, &[&org.get(), &pk])?
        .pop()
        .ok_or(StoreError::NotFound)?;
    let after =
        redact_fields(&s.entry.event, &fields).map_err(|e| StoreError::Conflict(e.to_string()))?;
    let seq = s.entry.seq;
    let r = Rewritten::new(s.pk, seq, s.entry.event, &s.personal_digest, &s.seal, after)?;
    store_rewrite(tx, org, &r)?;
    record.entity_ids = vec![seq.to_string()];
    let (receipts, new_dict) =
        insert_own_entries(tx, dict, org, vec![SealedEvent::seal(record, salt)], now)?;
    Ok(Done {
        entries: 1,
        seq: Some(seq),
        receipt: receipts.into_iter().next().expect("one receipt per entry"),
        new_dict,
    })
}

/// Writes a rewritten entry and replaces its search rows.
fn store_rewrite(tx: &Transaction<'_>, org: OrgKey, r: &Rewritten) -> Result<()> {
    tx.prepare_cached(
        "UPDATE entries SET description = ?, body = ?, personal = ?, salt = ?, erased = 1
         WHERE pk = ?",
    )
    .and_then(|mut s| {
        s.execute(params![
            r.after.description,
            packed::pack(&r.body),
            r.personal,
            r.seal.to_bytes(),
            r.pk
        ])
    })
    .map_err(map_err)?;
    search::enqueue(tx, org, r.seq.get(), r.pk, Change::Rewritten)?;
    Ok(())
}

/// Removes what is left of rewritten values from the database file, after the rewrite
/// committed: the whole file is rebuilt (`VACUUM`: a page reorganised before the rewrite may
/// still hold an old copy of a row in its free space, which `secure_delete` does not reach), and
/// the write-ahead log, which held the old pages, is emptied. Runs on the writer's connection,
/// outside any transaction; writes wait meanwhile. (The search index file has its own clean-up,
/// `search::Feed::compact`.)
pub fn clean_up(conn: &Connection) -> Result<()> {
    conn.execute_batch("VACUUM;").map_err(map_err)?;
    empty_wal(conn, "main")
}

/// Empties the write-ahead log of database `schema` of `conn` (copying it into the file first),
/// waiting for readers of older snapshots to finish.
pub fn empty_wal(conn: &Connection, schema: &str) -> Result<()> {
    // A reader on an older snapshot keeps the log from being emptied; such reads are short
    // (pages of a listing), an export's a little longer.
    for _ in 0..300 {
        let busy: i64 = conn
            .query_row(
                &format!("PRAGMA {schema}.wal_checkpoint(TRUNCATE)"),
                [],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(StoreError::CleanupPending(
        "the rewrite is made and recorded, but a read that began before it kept the \
         write-ahead log, which holds the old values, from being emptied; repeat the request to \
         finish the clean-up"
            .into(),
    ))
}
