//! Log streams (`streams`, migrations 17 and 18): each stream's configuration, cursor and lease,
//! and a platform-wide stream's cursor in each organization (`stream_cursors`). Writes run on the
//! writer thread like every other write; reads on the read pool.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use stele_core::Seq;
use stele_store::{
    DeliveryReport, NewStream, OrgKey, OrgProgress, Result, StoreError, Stream, StreamChange,
    StreamClaim, StreamStart, StreamState,
};

use crate::error::map_err;

const COLUMNS: &str = "s.id, s.org_id, s.name, s.spec, s.state, s.paused_reason, s.cursor_seq, \
     s.delivered, s.failures, s.last_error, s.last_error_ms, s.last_delivery_ms, s.retry_ms, \
     s.secret_version, s.previous_secret_until, s.revision, s.lease_owner, s.lease_until, \
     s.created_ms, s.updated_ms, s.platform_wide";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Stream> {
    let state: String = r.get(4)?;
    let state = StreamState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            format!("unknown stream state `{state}`").into(),
        )
    })?;
    Ok(Stream {
        id: r.get(0)?,
        org: OrgKey::new(r.get(1)?),
        name: r.get(2)?,
        spec: r.get(3)?,
        state,
        paused_reason: r.get(5)?,
        cursor: Seq::new(r.get(6)?),
        delivered: r.get::<_, i64>(7)? as u64,
        failures: r.get::<_, i64>(8)? as u32,
        last_error: r.get(9)?,
        last_error_at: r.get(10)?,
        last_delivery_at: r.get(11)?,
        retry_at: r.get(12)?,
        secret_version: r.get::<_, i64>(13)? as u32,
        previous_secret_until: r.get(14)?,
        revision: r.get::<_, i64>(15)? as u64,
        lease_owner: r.get(16)?,
        lease_until: r.get(17)?,
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        platform_wide: r.get(20)?,
    })
}

pub fn create(tx: &Transaction<'_>, id: String, org: OrgKey, new: NewStream) -> Result<Stream> {
    let (cursor, platform_wide) = match new.start {
        StreamStart::After(cursor) => (cursor, false),
        StreamStart::EveryOrganization { .. } => (Seq::new(0), true),
    };
    tx.execute(
        "INSERT INTO streams (id, org_id, name, spec, state, cursor_seq, platform_wide, created_ms,
                              updated_ms)
         VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?)",
        params![
            id,
            org.get(),
            new.name,
            new.spec,
            cursor.get(),
            platform_wide,
            new.created_at,
            new.created_at
        ],
    )
    .map_err(map_err)?;
    if new.start == (StreamStart::EveryOrganization { from_now: true }) {
        tx.execute(
            "INSERT INTO stream_cursors (stream_id, org_id, cursor_seq)
             SELECT ?, org_id, seq FROM chain_state WHERE seq > 0",
            [&id],
        )
        .map_err(map_err)?;
    }
    find(tx, org, &id)?.ok_or(StoreError::NotFound)
}

pub fn find(conn: &Connection, org: OrgKey, id: &str) -> Result<Option<Stream>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM streams s WHERE s.id = ? AND s.org_id = ?"
    ))
    .and_then(|mut s| s.query_row(params![id, org.get()], from_row).optional())
    .map_err(map_err)
}

pub fn list(conn: &Connection, org: OrgKey) -> Result<Vec<Stream>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM streams s WHERE s.org_id = ? ORDER BY s.created_ms, s.id"
    ))
    .and_then(|mut s| {
        s.query_map([org.get()], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(map_err)
}

pub fn change(tx: &Transaction<'_>, org: OrgKey, id: &str, change: StreamChange) -> Result<Stream> {
    let Some(before) = find(tx, org, id)? else {
        return Err(StoreError::NotFound);
    };
    let (state, paused_reason, failures, retry_at) = match change.state {
        Some((StreamState::Active, _)) => (StreamState::Active, None, 0, None),
        Some((StreamState::Paused, reason)) => (
            StreamState::Paused,
            reason,
            before.failures,
            before.retry_at,
        ),
        None => (
            before.state,
            before.paused_reason.clone(),
            before.failures,
            before.retry_at,
        ),
    };
    let (secret_version, previous_secret_until) = match change.rotate_secret {
        Some(until) => (before.secret_version + 1, Some(until)),
        None => (before.secret_version, before.previous_secret_until),
    };
    tx.execute(
        "UPDATE streams SET name = ?, spec = ?, state = ?, paused_reason = ?, failures = ?,
             retry_ms = ?, cursor_seq = ?, secret_version = ?, previous_secret_until = ?,
             revision = revision + 1, updated_ms = ?
         WHERE id = ? AND org_id = ?",
        params![
            change.name.unwrap_or(before.name),
            change.spec.unwrap_or(before.spec),
            state.as_str(),
            paused_reason,
            failures,
            retry_at,
            change.cursor.unwrap_or(before.cursor).get(),
            secret_version,
            previous_secret_until,
            change.at,
            id,
            org.get()
        ],
    )
    .map_err(map_err)?;
    if let (Some(cursor), true) = (change.cursor, before.platform_wide) {
        tx.execute("DELETE FROM stream_cursors WHERE stream_id = ?", [id])
            .map_err(map_err)?;
        tx.execute(
            "INSERT INTO stream_cursors (stream_id, org_id, cursor_seq)
             SELECT ?, key, ? FROM orgs WHERE deleted_ms IS NULL AND ? > 0",
            params![id, cursor.get(), cursor.get()],
        )
        .map_err(map_err)?;
    }
    find(tx, org, id)?.ok_or(StoreError::NotFound)
}

pub fn delete(tx: &Transaction<'_>, org: OrgKey, id: &str) -> Result<bool> {
    let deleted = tx
        .execute(
            "DELETE FROM streams WHERE id = ? AND org_id = ?",
            params![id, org.get()],
        )
        .map_err(map_err)?;
    if deleted == 1 {
        tx.execute("DELETE FROM stream_cursors WHERE stream_id = ?", [id])
            .map_err(map_err)?;
    }
    Ok(deleted == 1)
}

pub fn claim(tx: &Transaction<'_>, claim: &StreamClaim) -> Result<Vec<Stream>> {
    tx.execute(
        "UPDATE streams SET lease_owner = ?1, lease_until = ?3
         WHERE state = 'active'
           AND (lease_owner IS NULL OR lease_until <= ?2
                OR (lease_owner = ?1 AND lease_until < ?4))
           AND org_id IN (SELECT key FROM orgs WHERE deleted_ms IS NULL)",
        params![claim.owner, claim.now, claim.until, claim.renew_before],
    )
    .map_err(map_err)?;
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM streams s WHERE s.lease_owner = ? AND s.state = 'active'
         ORDER BY s.created_ms, s.id"
    ))
    .and_then(|mut s| {
        s.query_map([&claim.owner], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(map_err)
}

pub fn release(tx: &Transaction<'_>, owner: &str) -> Result<()> {
    tx.execute(
        "UPDATE streams SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
        [owner],
    )
    .map_err(map_err)?;
    Ok(())
}

pub fn record_delivery(
    tx: &Transaction<'_>,
    id: &str,
    owner: &str,
    revision: u64,
    report: DeliveryReport,
) -> Result<bool> {
    let revision = revision as i64;
    let changed = match report {
        DeliveryReport::Delivered {
            cursors,
            entries,
            at,
        } => (|| {
            // An organization's stream names only its own organization.
            let own = cursors.iter().map(|(_, seq)| seq.get()).max().unwrap_or(0);
            let changed = tx.execute(
                "UPDATE streams SET delivered = delivered + ?2, failures = 0, retry_ms = NULL,
                         cursor_seq = CASE WHEN platform_wide THEN cursor_seq
                                           ELSE max(cursor_seq, ?1) END,
                         last_delivery_ms = CASE WHEN ?2 > 0 THEN ?3 ELSE last_delivery_ms END
                     WHERE id = ?4 AND lease_owner = ?5 AND revision = ?6 AND state = 'active'",
                params![own, entries as i64, at, id, owner, revision],
            )?;
            if changed == 1 {
                let mut moved = tx.prepare_cached(
                    // Not for an organization deleted while the batch was on its way: its
                    // cursors went with it.
                    "INSERT INTO stream_cursors (stream_id, org_id, cursor_seq)
                     SELECT id, ?2, ?3 FROM streams WHERE id = ?1 AND platform_wide
                         AND EXISTS (SELECT 1 FROM orgs WHERE key = ?2 AND deleted_ms IS NULL)
                     ON CONFLICT (stream_id, org_id)
                     DO UPDATE SET cursor_seq = max(cursor_seq, excluded.cursor_seq)",
                )?;
                for (org, cursor) in &cursors {
                    moved.execute(params![id, org.get(), cursor.get()])?;
                }
            }
            Ok(changed)
        })(),
        DeliveryReport::Failed {
            error,
            at,
            retry_at,
        } => tx.execute(
            "UPDATE streams SET failures = failures + 1, last_error = ?1, last_error_ms = ?2,
                 retry_ms = ?3
             WHERE id = ?4 AND lease_owner = ?5 AND revision = ?6 AND state = 'active'",
            params![error, at, retry_at, id, owner, revision],
        ),
        DeliveryReport::Refused { error, at } => tx.execute(
            "UPDATE streams SET state = 'paused', paused_reason = ?1, last_error = ?1,
                 last_error_ms = ?2, failures = failures + 1, retry_ms = NULL,
                 revision = revision + 1, updated_ms = ?2
             WHERE id = ?3 AND lease_owner = ?4 AND revision = ?5 AND state = 'active'",
            params![error, at, id, owner, revision],
        ),
    }
    .map_err(map_err)?;
    Ok(changed == 1)
}

pub fn progress(conn: &Connection, id: &str) -> Result<Vec<OrgProgress>> {
    conn.prepare_cached(
        "SELECT o.key, o.id, coalesce(h.seq, 0), coalesce(c.cursor_seq, 0)
         FROM streams s
         JOIN orgs o ON o.deleted_ms IS NULL
         LEFT JOIN chain_state h ON h.org_id = o.key
         LEFT JOIN stream_cursors c ON c.stream_id = s.id AND c.org_id = o.key
         WHERE s.id = ? AND s.platform_wide
         ORDER BY o.key",
    )
    .and_then(|mut s| {
        s.query_map([id], |r| {
            Ok(OrgProgress {
                org: OrgKey::new(r.get(0)?),
                org_id: r.get(1)?,
                head: Seq::new(r.get(2)?),
                cursor: Seq::new(r.get(3)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(map_err)
}

pub fn oldest_waiting(conn: &Connection, id: &str) -> Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT min((SELECT e.recorded_ms FROM entries e
                     WHERE e.org_id = o.key AND e.seq > coalesce(c.cursor_seq, 0)
                     ORDER BY e.seq LIMIT 1))
         FROM streams s
         JOIN orgs o ON o.deleted_ms IS NULL
         JOIN chain_state h ON h.org_id = o.key
         LEFT JOIN stream_cursors c ON c.stream_id = s.id AND c.org_id = o.key
         WHERE s.id = ? AND s.platform_wide AND h.seq > coalesce(c.cursor_seq, 0)",
    )
    .and_then(|mut s| s.query_row([id], |r| r.get(0)))
    .map_err(map_err)
}

pub fn head_seq(conn: &Connection, org: OrgKey) -> Result<Seq> {
    conn.prepare_cached("SELECT seq FROM chain_state WHERE org_id = ?")
        .and_then(|mut s| s.query_row([org.get()], |r| r.get(0)).optional())
        .map(|seq| Seq::new(seq.unwrap_or(0)))
        .map_err(map_err)
}
