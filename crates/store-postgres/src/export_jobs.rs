//! Export jobs (`export_jobs` and `export_links`, migration 4): the state of `POST /v1/exports`
//! jobs, shared by every server on the database so that any of them can answer a poll.
//!
//! Each state change is one conditional `UPDATE` (`… WHERE state = 'pending'`): under READ
//! COMMITTED PostgreSQL re-checks the condition on the row it locked, so a runner finishing its
//! job and another server's sweep declaring it interrupted cannot both win.

use stele_core::time::Millis;
use stele_store::{
    EXPORT_INTERRUPTED, ExportJob, ExportJobOutcome, ExportJobState, ExportSweep,
    ExportSweepOutcome, NewExportJob, OrgKey, StoreError,
};
use tokio_postgres::Row;

use crate::error::{Error, R, other};
use crate::pool::Conn;

const COLUMNS: &str = "j.id, j.org_id, j.format, j.filters, j.runner, j.state, j.created_ms, \
     j.heartbeat_ms, j.finished_ms, j.entries, j.bytes, j.expires_ms, j.error";

fn from_row(r: &Row) -> R<ExportJob> {
    let state: &str = r.try_get(5)?;
    let state = ExportJobState::parse(state)
        .ok_or_else(|| other(format!("unknown export job state `{state}`")))?;
    Ok(ExportJob {
        id: r.try_get(0)?,
        org: OrgKey::new(r.try_get(1)?),
        format: r.try_get(2)?,
        filters: r.try_get(3)?,
        runner: r.try_get(4)?,
        state,
        created_at: r.try_get(6)?,
        heartbeat_at: r.try_get(7)?,
        finished_at: r.try_get(8)?,
        entries: r.try_get::<_, Option<i64>>(9)?.map(|n| n as u64),
        bytes: r.try_get::<_, Option<i64>>(10)?.map(|n| n as u64),
        expires_at: r.try_get(11)?,
        error: r.try_get(12)?,
    })
}

/// Text columns cannot hold U+0000; an id with one names no job.
fn storable(id: &str) -> bool {
    !id.contains('\0')
}

pub async fn create(conn: &mut Conn, id: String, org: OrgKey, job: NewExportJob) -> R<ExportJob> {
    let row = conn
        .query_opt(
            &format!(
                "WITH j AS (
                     INSERT INTO export_jobs
                         (id, org_id, format, filters, runner, state, created_ms, heartbeat_ms)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) RETURNING *
                 )
                 SELECT {COLUMNS} FROM j"
            ),
            &[
                &id,
                &org.get(),
                &job.format,
                &job.filters,
                &job.runner,
                &job.created_at,
            ],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    from_row(&row)
}

pub async fn find(conn: &mut Conn, org: OrgKey, id: &str) -> R<Option<ExportJob>> {
    if !storable(id) {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!("SELECT {COLUMNS} FROM export_jobs j WHERE j.id = $1 AND j.org_id = $2"),
            &[&id, &org.get()],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn touch(conn: &mut Conn, id: &str, now: Millis) -> R<bool> {
    if !storable(id) {
        return Ok(false);
    }
    let row = conn
        .query_opt(
            "UPDATE export_jobs SET heartbeat_ms = greatest(heartbeat_ms, $1)
             WHERE id = $2 AND state = 'pending' RETURNING id",
            &[&now, &id],
        )
        .await?;
    Ok(row.is_some())
}

pub async fn finish(conn: &mut Conn, id: &str, outcome: ExportJobOutcome) -> R<bool> {
    if !storable(id) {
        return Ok(false);
    }
    let row = match outcome {
        ExportJobOutcome::Ready {
            entries,
            bytes,
            finished_at,
            expires_at,
        } => {
            conn.query_opt(
                "UPDATE export_jobs SET state = 'ready', entries = $1, bytes = $2,
                     finished_ms = $3, expires_ms = $4
                 WHERE id = $5 AND state = 'pending' RETURNING id",
                &[
                    &(entries as i64),
                    &(bytes as i64),
                    &finished_at,
                    &expires_at,
                    &id,
                ],
            )
            .await?
        }
        ExportJobOutcome::Failed {
            message,
            finished_at,
        } => {
            let message = message.replace('\0', "");
            conn.query_opt(
                "UPDATE export_jobs SET state = 'error', error = $1, finished_ms = $2
                 WHERE id = $3 AND state = 'pending' RETURNING id",
                &[&message, &finished_at, &id],
            )
            .await?
        }
    };
    Ok(row.is_some())
}

pub async fn add_link(conn: &mut Conn, id: &str, token_hash: [u8; 32], now: Millis) -> R<()> {
    if !storable(id) {
        return Err(Error::Store(StoreError::NotFound));
    }
    // Inserting only if the job exists turns a missing job into NotFound rather than a foreign
    // key violation (Conflict).
    let row = conn
        .query_opt(
            "INSERT INTO export_links (token_hash, job_id, created_ms)
             SELECT $1, id, $3 FROM export_jobs WHERE id = $2 RETURNING job_id",
            &[&&token_hash[..], &id, &now],
        )
        .await?;
    match row {
        Some(_) => Ok(()),
        None => Err(Error::Store(StoreError::NotFound)),
    }
}

pub async fn by_link(conn: &mut Conn, id: &str, token_hash: [u8; 32]) -> R<Option<ExportJob>> {
    if !storable(id) {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM export_links l JOIN export_jobs j ON j.id = l.job_id
                 WHERE l.token_hash = $1 AND l.job_id = $2"
            ),
            &[&&token_hash[..], &id],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn sweep(conn: &mut Conn, sweep: ExportSweep) -> R<ExportSweepOutcome> {
    let mut tx = conn.transaction().await?;
    let expired = tx
        .execute(
            "UPDATE export_jobs SET state = 'expired' WHERE state = 'ready' AND expires_ms <= $1",
            &[&sweep.now],
        )
        .await?;
    let interrupted = tx
        .execute(
            "UPDATE export_jobs SET state = 'error', error = $1, finished_ms = $2
             WHERE state = 'pending' AND heartbeat_ms < $3",
            &[&EXPORT_INTERRUPTED, &sweep.now, &sweep.stale_before],
        )
        .await?;
    // Links go with their job (ON DELETE CASCADE).
    let forgotten = tx
        .execute(
            "DELETE FROM export_jobs
             WHERE (state = 'expired' AND expires_ms < $1) OR (state = 'error' AND finished_ms < $1)",
            &[&sweep.forget_before],
        )
        .await?;
    tx.commit().await?;
    Ok(ExportSweepOutcome {
        expired,
        interrupted,
        forgotten,
    })
}

pub async fn live_ids(conn: &mut Conn, now: Millis) -> R<Vec<String>> {
    let rows = conn
        .query(
            "SELECT id FROM export_jobs
             WHERE state = 'pending' OR (state = 'ready' AND expires_ms > $1)",
            &[&now],
        )
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Error::from))
        .collect()
}
