//! Erasure of a person and redaction of fields: both rewrite stored entries
//! (`stele_store::rewrite`), each in the one transaction that also records it, and then
//! [`clean_up`] rewrites the tables that held the old values, so that no old row version is left
//! in the database's files.
//!
//! The chain commits to every erasable value through its own salted commitment
//! (`stele_core::seal`), so rewriting an entry's description, body and personal fields, storing
//! its new seal and setting `erased` (the one update the immutability trigger allows) leaves
//! every hash valid. The entry's `entry_keys` rows are replaced by those of its new content.
//!
//! The organization's chain row is locked first, as the writer does, before any entry is
//! touched: the record is appended to the same chain, and the lock order (chain, then the `pk`
//! allocation lock) is the writer's, so the two cannot deadlock.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use stele_core::chain::SealedEvent;
use stele_core::erase::{erase_person as erase_in_event, redact_fields};
use stele_core::seal::Seal;
use stele_core::time::Millis;
use stele_core::{NewEvent, Seq};
use stele_store::rewrite::{Rewritten, needles};
use stele_store::{Erasure, OrgKey, PreparedEvent, Receipt, Redaction, StoreError};
use tokio_postgres::types::ToSql;

use crate::codec::{ENTRY_COLUMN_COUNT, ENTRY_COLUMNS, decode_row, entry_keys, hash_of, pk_of_id};
use crate::error::{Error, R, other};
use crate::partitions::Month;
use crate::pool::{Conn, Tx};
use crate::writer::{Group, insert_keys, lock_chains};

/// What an erasure or redaction did.
pub struct Done {
    pub entries: u64,
    /// The redacted entry's `seq` (a redaction).
    pub seq: Option<Seq>,
    pub receipt: Receipt,
}

struct Stored {
    pk: i64,
    seq: Seq,
    event: NewEvent,
    personal_digest: [u8; 32],
    seal: Seal,
}

async fn stored_rows(tx: &mut Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> R<Vec<Stored>> {
    let rows = tx.query(sql, params).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let (pk, entry) = decode_row(row)?;
        let n = ENTRY_COLUMN_COUNT;
        let seal = Seal::from_bytes(row.try_get::<_, Option<&[u8]>>(n)?)
            .map_err(|e| other(format!("seq {}: {e}", entry.seq)))?;
        out.push(Stored {
            pk,
            seq: entry.seq,
            event: entry.event,
            personal_digest: hash_of(row.try_get(n + 1)?, "personal_digest")?,
            seal,
        });
    }
    Ok(out)
}

pub async fn erase_person(conn: &mut Conn, org: OrgKey, erasure: &Erasure, now: Millis) -> R<Done> {
    let mut tx = conn.transaction().await?;
    let chains = lock_chains(&mut tx, &[org]).await?;
    if chains.is_empty() {
        return Err(Error::Store(StoreError::NotFound));
    }
    // Only rows whose stored text holds one of the person's identifiers are decoded. (Stored
    // text cannot contain U+0000, so an identifier with one is in no row.)
    let needles: Vec<String> = needles(&erasure.person)
        .into_iter()
        .filter(|n| !n.contains('\0'))
        .collect();
    let mut sql = format!(
        "SELECT {ENTRY_COLUMNS}, e.salt, e.personal_digest FROM entries e
         WHERE e.org_id = $1 AND (false"
    );
    for i in 0..needles.len() {
        let p = i + 2;
        sql.push_str(&format!(
            " OR strpos(lower(e.body), lower(${p})) > 0 OR strpos(lower(e.personal), lower(${p})) > 0
              OR strpos(lower(coalesce(e.description, '')), lower(${p})) > 0"
        ));
    }
    sql.push_str(") ORDER BY e.seq");
    let org_key = org.get();
    let mut bound: Vec<&(dyn ToSql + Sync)> = vec![&org_key];
    bound.extend(needles.iter().map(|n| n as &(dyn ToSql + Sync)));
    let mut rewritten = Vec::new();
    for s in stored_rows(&mut tx, &sql, &bound).await? {
        let Some(after) = erase_in_event(&s.event, &erasure.person, &erasure.pseudonym) else {
            continue;
        };
        rewritten.push(Rewritten::new(
            s.pk,
            s.seq,
            s.event,
            &s.personal_digest,
            &s.seal,
            after,
        )?);
    }
    store_rewrites(&mut tx, org, &mut rewritten).await?;
    let mut record = erasure.record.clone();
    record
        .metadata
        .insert("entries".into(), serde_json::json!(rewritten.len()));
    record.entity_ids = rewritten.iter().map(|r| r.seq.to_string()).collect();
    let months: BTreeSet<Month> = rewritten.iter().map(|r| month_of(r.pk)).collect();
    mark_for_clean_up(&mut tx, &months).await?;
    let receipt = append_record(&mut tx, chains, record, erasure.salt, now).await?;
    tx.commit().await?;
    Ok(Done {
        entries: rewritten.len() as u64,
        seq: None,
        receipt,
    })
}

pub async fn redact(conn: &mut Conn, org: OrgKey, redaction: &Redaction, now: Millis) -> R<Done> {
    let pk = pk_of_id(&redaction.id).ok_or(Error::Store(StoreError::NotFound))?;
    let mut tx = conn.transaction().await?;
    let chains = lock_chains(&mut tx, &[org]).await?;
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}, e.salt, e.personal_digest FROM entries e
         WHERE e.org_id = $1 AND e.pk = $2"
    );
    let s = stored_rows(&mut tx, &sql, &[&org.get(), &pk])
        .await?
        .pop()
        .ok_or(Error::Store(StoreError::NotFound))?;
    let after = redact_fields(&s.event, &redaction.fields)
        .map_err(|e| Error::Store(StoreError::Conflict(e.to_string())))?;
    let seq = s.seq;
    let mut rewritten = vec![Rewritten::new(
        s.pk,
        seq,
        s.event,
        &s.personal_digest,
        &s.seal,
        after,
    )?];
    store_rewrites(&mut tx, org, &mut rewritten).await?;
    if rewritten.is_empty() {
        return Err(Error::Store(StoreError::NotFound));
    }
    let mut record = redaction.record.clone();
    record.entity_ids = vec![seq.to_string()];
    mark_for_clean_up(&mut tx, &[month_of(pk)].into()).await?;
    let receipt = append_record(&mut tx, chains, record, redaction.salt, now).await?;
    tx.commit().await?;
    Ok(Done {
        entries: 1,
        seq: Some(seq),
        receipt,
    })
}

fn month_of(pk: i64) -> Month {
    Month::of(pk >> stele_store::record::PK_MS_SHIFT)
}

async fn append_record(
    tx: &mut Tx<'_>,
    chains: std::collections::HashMap<OrgKey, crate::writer::ChainCursor>,
    record: NewEvent,
    salt: stele_core::chain::Salt,
    now: Millis,
) -> R<Receipt> {
    let org = *chains
        .keys()
        .next()
        .expect("the organization's chain is locked");
    let mut group = Group::new(chains, now);
    group.allocate_pks(tx, &[record.occurred_at]).await?;
    let receipt = group.push(org, &PreparedEvent::new(SealedEvent::seal(record, salt)))?;
    group.flush(tx).await?;
    Ok(receipt)
}

/// Writes rewritten entries and replaces their `entry_keys` rows. An entry that a retention run
/// removed meanwhile (it was read, then its row went before it could be updated) is no longer
/// there to rewrite: it is left out of `rewritten`.
async fn store_rewrites(tx: &mut Tx<'_>, org: OrgKey, rewritten: &mut Vec<Rewritten>) -> R<()> {
    if rewritten.is_empty() {
        return Ok(());
    }
    let pks: Vec<i64> = rewritten.iter().map(|r| r.pk).collect();
    let descriptions: Vec<Option<&str>> = rewritten
        .iter()
        .map(|r| r.after.description.as_deref())
        .collect();
    let bodies: Vec<&str> = rewritten.iter().map(|r| r.body.as_str()).collect();
    let personals: Vec<&str> = rewritten.iter().map(|r| r.personal.as_str()).collect();
    let seals: Vec<Option<Vec<u8>>> = rewritten.iter().map(|r| r.seal.to_bytes()).collect();
    let updated: HashSet<i64> = tx
        .query(
            "UPDATE entries e SET description = u.description, body = u.body,
                 personal = u.personal, salt = u.salt, erased = true
             FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::bytea[])
                 AS u (pk, description, body, personal, salt)
             WHERE e.org_id = $1 AND e.pk = u.pk RETURNING e.pk",
            &[&org.get(), &pks, &descriptions, &bodies, &personals, &seals],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    rewritten.retain(|r| updated.contains(&r.pk));
    let (mut old_kind, mut old_value, mut old_pk) = (vec![], vec![], vec![]);
    let (mut new_org, mut new_kind, mut new_value, mut new_pk) = (vec![], vec![], vec![], vec![]);
    for r in rewritten {
        for (kind, value) in entry_keys(&r.before) {
            old_kind.push(kind);
            old_value.push(value.to_string());
            old_pk.push(r.pk);
        }
        for (kind, value) in entry_keys(&r.after) {
            new_org.push(org.get());
            new_kind.push(kind);
            new_value.push(value.to_string());
            new_pk.push(r.pk);
        }
    }
    tx.execute(
        "DELETE FROM entry_keys k
         USING unnest($2::int2[], $3::text[], $4::int8[]) AS d (kind, value, pk)
         WHERE k.org_id = $1 AND k.kind = d.kind AND k.value = d.value AND k.pk = d.pk",
        &[&org.get(), &old_kind, &old_value, &old_pk],
    )
    .await?;
    insert_keys(tx, &new_org, &new_kind, &new_value, &new_pk).await?;
    Ok(())
}

/// Marks the months whose partitions now hold old row versions (`pending_cleanups`), in the
/// rewrite's own transaction: a clean-up that cannot finish now (a transaction older than the
/// rewrite still runs, the process stops) is finished by a later one.
async fn mark_for_clean_up(tx: &mut Tx<'_>, months: &BTreeSet<Month>) -> R<()> {
    let starts: Vec<i64> = months.iter().map(|m| m.start_ms()).collect();
    tx.execute(
        "INSERT INTO pending_cleanups (month_start_ms, marked_xid)
         SELECT m, pg_current_xact_id() FROM unnest($1::int8[]) AS m
         ON CONFLICT (month_start_ms) DO UPDATE SET marked_xid = excluded.marked_xid",
        &[&starts],
    )
    .await?;
    Ok(())
}

/// How a clean-up ended.
pub enum Cleaned {
    /// No month holds old row versions any more (or none did).
    Done,
    /// Transactions that began before a rewrite still run (they are named: `process 4711`,
    /// `replication slot s1`); the months stay marked for a later clean-up.
    Waiting(Vec<String>),
}

/// Rewrites the partitions (of `entries` and `entry_keys`, with their indexes and TOAST) of every
/// marked month, so no old row version is left in their files (`VACUUM (FULL)` writes new files
/// and removes the old ones), then forces a checkpoint so the new files are what is on disk.
///
/// `VACUUM (FULL)` copies every row version some transaction may still see, so it runs only once
/// no transaction (in this database, or a replication slot) holds a snapshot older than the
/// newest marked rewrite; for at most `wait`, else [`Cleaned::Waiting`] names what holds one.
/// Each partition is locked while it is rewritten: reads and writes of that month wait. One
/// clean-up at a time: `blocking` waits for another to finish; without it, the call returns
/// [`Cleaned::Done`] at once if one is running (the upkeep's way).
pub async fn clean_up(conn: &mut Conn, wait: Duration, blocking: bool) -> R<Cleaned> {
    let locked: bool = if blocking {
        conn.client
            .execute("SELECT pg_advisory_lock($1)", &[&CLEANUP_LOCK])
            .await?;
        true
    } else {
        conn.client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&CLEANUP_LOCK])
            .await?
            .try_get(0)?
    };
    if !locked {
        return Ok(Cleaned::Done);
    }
    let cleaned = clean_up_marked(conn, wait).await;
    conn.client
        .execute("SELECT pg_advisory_unlock($1)", &[&CLEANUP_LOCK])
        .await?;
    cleaned
}

/// The session-level advisory lock one clean-up holds (`STELECLN` in ASCII); `VACUUM` cannot run
/// inside a transaction, so the lock cannot be transaction-scoped.
const CLEANUP_LOCK: i64 = 0x5354_454c_4543_4c4e;

async fn clean_up_marked(conn: &mut Conn, wait: Duration) -> R<Cleaned> {
    let marked: Vec<(i64, u64)> = conn
        .client
        .query(
            "SELECT month_start_ms, marked_xid::text FROM pending_cleanups",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let xid: &str = r.try_get(1)?;
            let xid = xid
                .parse()
                .map_err(|_| other(format!("marked_xid {xid}")))?;
            Ok((r.try_get(0)?, xid))
        })
        .collect::<R<_>>()?;
    let Some(newest) = marked.iter().map(|(_, xid)| *xid).max() else {
        return Ok(Cleaned::Done);
    };
    let deadline = Instant::now() + wait;
    loop {
        let holders = older_snapshots(conn, newest).await?;
        if holders.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Ok(Cleaned::Waiting(holders));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (start_ms, _) in &marked {
        let month = Month::of(*start_ms);
        for table in ["entries", "entry_keys"] {
            let partition = month.partition_of(table);
            let done: R<()> = conn
                .client
                .batch_execute(&format!("VACUUM (FULL) {partition}"))
                .await
                .map_err(Error::from);
            match done {
                // Retention dropped the month meanwhile: its files are gone already.
                Err(e) if crate::error::is_undefined_table(&e) => {}
                result => result?,
            }
        }
    }
    conn.client.batch_execute("CHECKPOINT").await?;
    // A month marked again meanwhile (a later rewrite) stays marked for its own clean-up.
    let starts: Vec<i64> = marked.iter().map(|(start, _)| *start).collect();
    conn.client
        .execute(
            "DELETE FROM pending_cleanups
             WHERE month_start_ms = ANY($1) AND marked_xid <= $2::text::xid8",
            &[&starts, &newest.to_string()],
        )
        .await?;
    Ok(Cleaned::Done)
}

/// What keeps the server from removing row versions that transaction `xid` (a full 64-bit id)
/// deleted: a session of this database (or a walsender, which has none) whose oldest snapshot
/// (`backend_xmin`) is not newer than it; a transaction of any database that was given its id
/// before it and still runs (the server's horizon for every table takes in the oldest running
/// transaction, whatever its database); a prepared transaction as old; a replication slot that
/// holds the horizon back. `age` compares 32-bit ids the way the server does, across wraparound.
async fn older_snapshots(conn: &mut Conn, xid: u64) -> R<Vec<String>> {
    let xid32 = (xid % (1 << 32)).to_string();
    let rows = conn
        .client
        .query(
            "SELECT 'process ' || pid FROM pg_stat_activity
             WHERE pid <> pg_backend_pid()
               AND (age(backend_xid) >= age($1::text::xid)
                    OR ((datname = current_database() OR datname IS NULL)
                        AND age(backend_xmin) >= age($1::text::xid)))
             UNION ALL
             SELECT 'prepared transaction ' || gid FROM pg_prepared_xacts
             WHERE age(transaction) >= age($1::text::xid)
             UNION ALL
             SELECT 'replication slot ' || slot_name FROM pg_replication_slots
             WHERE (database = current_database() OR database IS NULL)
               AND xmin IS NOT NULL AND age(xmin) >= age($1::text::xid)",
            &[&xid32],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Error::from))
        .collect()
}
