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
use crate::read::contains_ascii_ci;
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
    let placeholders: String = (2..needles.len() + 2).map(|p| format!(", ?{p}")).collect();
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}, {CHAIN_COLUMNS} FROM entries e WHERE e.org_id = ?1
           AND stele_mentions(e.body, e.personal, e.description{placeholders})
         ORDER BY e.seq"
    );
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
/// `stele_mentions(body, personal, description, needle, …)`: whether an entry's stored text holds
/// one of the needles (ASCII-lowercase, as [`needles`] makes them), ASCII case aside: the
/// erasure's choice of rows to decode. One call per row, so a packed body is unpacked once
/// whatever the number of needles. A body that cannot be unpacked counts as a mention, so that
/// decoding the row reports it rather than the erasure passing over it.
pub fn register_function(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    conn.create_scalar_function(
        "stele_mentions",
        -1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text = |i: usize| match ctx.get_raw(i) {
                ValueRef::Text(t) => t,
                _ => &[][..],
            };
            let mut scratch = String::new();
            let Ok(body) = packed::unpack(ctx.get_raw(0), &mut scratch) else {
                return Ok(true);
            };
            let fields = [body.as_bytes(), text(1), text(2)];
            Ok((3..ctx.len()).any(|i| {
                let needle = text(i);
                fields.iter().any(|field| contains_ascii_ci(field, needle))
            }))
        },
    )
}

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

#[cfg(test)]
mod tests {
    use rusqlite::types::Value;

    use super::*;

    /// The erasure's choice of rows finds a person inside packed and text bodies, the personal
    /// column and the description, ASCII case aside; a body it cannot unpack is chosen too.
    #[test]
    fn mentions_are_found_in_every_stored_text() {
        let conn = Connection::open_in_memory().unwrap();
        register_function(&conn).unwrap();
        let mentions =
            |body: &Value, personal: &str, description: Option<&str>, needles: &[&str]| {
                let placeholders: String =
                    (4..needles.len() + 4).map(|p| format!(", ?{p}")).collect();
                let mut bound: Vec<&dyn rusqlite::ToSql> = vec![body, &personal, &description];
                bound.extend(needles.iter().map(|n| n as &dyn rusqlite::ToSql));
                conn.query_row(
                    &format!("SELECT stele_mentions(?1, ?2, ?3{placeholders})"),
                    bound.as_slice(),
                    |r| r.get::<_, bool>(0),
                )
                .unwrap()
            };
        let body = r#"{"ei":"u-jose","en":"José Álvarez","cx":{"source":"web"},"md":{"by":"Jose.Alvarez@Example.com"}}"#;
        let packed = packed::pack(body);
        assert!(matches!(packed, Value::Blob(_)), "not packed");
        for stored in [packed, Value::Text(body.into())] {
            assert!(mentions(
                &stored,
                "{}",
                None,
                &["nobody", "jose.alvarez@example.com"]
            ));
            // As `needles` makes them: only ASCII letters lowered.
            assert!(mentions(&stored, "{}", None, &["josé Álvarez"]));
            assert!(!mentions(&stored, "{}", None, &["nobody", "mallory"]));
        }
        let plain = Value::Text("{}".into());
        assert!(mentions(
            &plain,
            r#"{"ae":"Mallory@x"}"#,
            None,
            &["mallory@x"]
        ));
        assert!(mentions(
            &plain,
            "{}",
            Some("Viewed by MALLORY"),
            &["mallory"]
        ));
        assert!(!mentions(&plain, "{}", Some("Viewed by Ada"), &["mallory"]));
        assert!(mentions(
            &Value::Blob(vec![1, 0xff, 0xff]),
            "{}",
            None,
            &["mallory"]
        ));
    }
}
