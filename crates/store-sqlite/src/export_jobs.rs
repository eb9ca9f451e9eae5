//! Export jobs (`export_jobs` and `export_links`, migration 4): the state of `POST /v1/exports`
//! jobs. Writes run on the writer thread like every other write; reads on the read pool.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use stele_core::time::Millis;
use stele_store::{
    EXPORT_INTERRUPTED, ExportJob, ExportJobOutcome, ExportJobState, ExportSweep,
    ExportSweepOutcome, NewExportJob, OrgKey, Result, StoreError,
};

use crate::error::map_err;

const COLUMNS: &str = "j.id, j.org_id, j.format, j.filters, j.runner, j.state, j.created_ms, \
     j.heartbeat_ms, j.finished_ms, j.entries, j.bytes, j.expires_ms, j.error";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ExportJob> {
    let state: String = r.get(5)?;
    let state = ExportJobState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Text,
            format!("unknown export job state `{state}`").into(),
        )
    })?;
    Ok(ExportJob {
        id: r.get(0)?,
        org: OrgKey::new(r.get(1)?),
        format: r.get(2)?,
        filters: r.get(3)?,
        runner: r.get(4)?,
        state,
        created_at: r.get(6)?,
        heartbeat_at: r.get(7)?,
        finished_at: r.get(8)?,
        entries: r.get::<_, Option<i64>>(9)?.map(|n| n as u64),
        bytes: r.get::<_, Option<i64>>(10)?.map(|n| n as u64),
        expires_at: r.get(11)?,
        error: r.get(12)?,
    })
}

pub fn create(
    tx: &Transaction<'_>,
    id: String,
    org: OrgKey,
    job: NewExportJob,
) -> Result<ExportJob> {
    tx.execute(
        "INSERT INTO export_jobs (id, org_id, format, filters, runner, state, created_ms, heartbeat_ms)
         VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
        params![
            id,
            org.get(),
            job.format,
            job.filters,
            job.runner,
            job.created_at,
            job.created_at
        ],
    )
    .map_err(map_err)?;
    find(tx, org, &id)?.ok_or(StoreError::NotFound)
}

pub fn find(conn: &Connection, org: OrgKey, id: &str) -> Result<Option<ExportJob>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM export_jobs j WHERE j.id = ? AND j.org_id = ?"
    ))
    .and_then(|mut s| s.query_row(params![id, org.get()], from_row).optional())
    .map_err(map_err)
}

pub fn touch(tx: &Transaction<'_>, id: &str, now: Millis) -> Result<bool> {
    let changed = tx
        .execute(
            "UPDATE export_jobs SET heartbeat_ms = max(heartbeat_ms, ?)
             WHERE id = ? AND state = 'pending'",
            params![now, id],
        )
        .map_err(map_err)?;
    Ok(changed == 1)
}

pub fn finish(tx: &Transaction<'_>, id: &str, outcome: ExportJobOutcome) -> Result<bool> {
    let changed = match outcome {
        ExportJobOutcome::Ready {
            entries,
            bytes,
            finished_at,
            expires_at,
        } => tx.execute(
            "UPDATE export_jobs SET state = 'ready', entries = ?, bytes = ?, finished_ms = ?,
                 expires_ms = ?
             WHERE id = ? AND state = 'pending'",
            params![entries as i64, bytes as i64, finished_at, expires_at, id],
        ),
        ExportJobOutcome::Failed {
            message,
            finished_at,
        } => tx.execute(
            "UPDATE export_jobs SET state = 'error', error = ?, finished_ms = ?
             WHERE id = ? AND state = 'pending'",
            params![message, finished_at, id],
        ),
    }
    .map_err(map_err)?;
    Ok(changed == 1)
}

pub fn add_link(tx: &Transaction<'_>, id: &str, token_hash: [u8; 32], now: Millis) -> Result<()> {
    let exists: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM export_jobs WHERE id = ?)",
            [id],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    tx.execute(
        "INSERT INTO export_links (token_hash, job_id, created_ms) VALUES (?, ?, ?)",
        params![&token_hash[..], id, now],
    )
    .map_err(map_err)?;
    Ok(())
}

pub fn by_link(conn: &Connection, id: &str, token_hash: [u8; 32]) -> Result<Option<ExportJob>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM export_links l JOIN export_jobs j ON j.id = l.job_id
         WHERE l.token_hash = ? AND l.job_id = ?"
    ))
    .and_then(|mut s| {
        s.query_row(params![&token_hash[..], id], from_row)
            .optional()
    })
    .map_err(map_err)
}

pub fn sweep(tx: &Transaction<'_>, sweep: ExportSweep) -> Result<ExportSweepOutcome> {
    let expired = tx
        .execute(
            "UPDATE export_jobs SET state = 'expired' WHERE state = 'ready' AND expires_ms <= ?",
            [sweep.now],
        )
        .map_err(map_err)?;
    let interrupted = tx
        .execute(
            "UPDATE export_jobs SET state = 'error', error = ?, finished_ms = ?
             WHERE state = 'pending' AND heartbeat_ms < ?",
            params![EXPORT_INTERRUPTED, sweep.now, sweep.stale_before],
        )
        .map_err(map_err)?;
    // Links go with their job (ON DELETE CASCADE).
    let forgotten = tx
        .execute(
            "DELETE FROM export_jobs
             WHERE (state = 'expired' AND expires_ms < ?1) OR (state = 'error' AND finished_ms < ?1)",
            [sweep.forget_before],
        )
        .map_err(map_err)?;
    Ok(ExportSweepOutcome {
        expired: expired as u64,
        interrupted: interrupted as u64,
        forgotten: forgotten as u64,
    })
}

pub fn live_ids(conn: &Connection, now: Millis) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM export_jobs
             WHERE state = 'pending' OR (state = 'ready' AND expires_ms > ?)",
        )
        .map_err(map_err)?;
    stmt.query_map([now], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(map_err)
}
