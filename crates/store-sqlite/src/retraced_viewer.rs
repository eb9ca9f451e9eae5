//! Retraced's viewer's saved exports and API tokens (`retraced_saved_exports`,
//! `retraced_api_tokens`, migration 11).

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use stele_store::{NewViewerApiToken, OrgKey, Result, SavedExport, ViewerApiToken};

use crate::error::map_err;

fn saved_export(r: &Row<'_>) -> rusqlite::Result<SavedExport> {
    Ok(SavedExport {
        id: r.get(0)?,
        name: r.get(1)?,
        query: r.get(2)?,
        created_at: r.get(3)?,
    })
}

pub fn create_saved_export(tx: &Transaction<'_>, org: OrgKey, e: SavedExport) -> Result<()> {
    tx.execute(
        "INSERT INTO retraced_saved_exports (id, org_id, name, query, created_ms)
         VALUES (?, ?, ?, ?, ?)",
        params![e.id, org.get(), e.name, e.query, e.created_at],
    )
    .map_err(map_err)?;
    Ok(())
}

pub fn saved_exports(conn: &Connection, org: OrgKey, limit: usize) -> Result<Vec<SavedExport>> {
    conn.prepare_cached(
        "SELECT id, name, query, created_ms FROM retraced_saved_exports
         WHERE org_id = ? ORDER BY created_ms DESC, id DESC LIMIT ?",
    )
    .and_then(|mut s| {
        s.query_map(params![org.get(), limit as i64], saved_export)?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(map_err)
}

pub fn find_saved_export(conn: &Connection, org: OrgKey, id: &str) -> Result<Option<SavedExport>> {
    conn.prepare_cached(
        "SELECT id, name, query, created_ms FROM retraced_saved_exports
         WHERE org_id = ? AND id = ?",
    )
    .and_then(|mut s| s.query_row(params![org.get(), id], saved_export).optional())
    .map_err(map_err)
}

pub fn create_token(tx: &Transaction<'_>, org: OrgKey, t: NewViewerApiToken) -> Result<()> {
    tx.execute(
        "INSERT INTO retraced_api_tokens (id, org_id, display_name, secret_hash, created_ms)
         VALUES (?, ?, ?, ?, ?)",
        params![
            t.id,
            org.get(),
            t.display_name,
            &t.secret_hash[..],
            t.created_at
        ],
    )
    .map_err(map_err)?;
    Ok(())
}

pub fn tokens(conn: &Connection, org: OrgKey) -> Result<Vec<ViewerApiToken>> {
    conn.prepare_cached(
        "SELECT id, display_name, created_ms FROM retraced_api_tokens
         WHERE org_id = ? ORDER BY created_ms, id",
    )
    .and_then(|mut s| {
        s.query_map(params![org.get()], |r| {
            Ok(ViewerApiToken {
                id: r.get(0)?,
                display_name: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(map_err)
}

pub fn rename_token(tx: &Transaction<'_>, org: OrgKey, id: &str, name: &str) -> Result<bool> {
    let changed = tx
        .execute(
            "UPDATE retraced_api_tokens SET display_name = ? WHERE org_id = ? AND id = ?",
            params![name, org.get(), id],
        )
        .map_err(map_err)?;
    Ok(changed > 0)
}

pub fn delete_token(tx: &Transaction<'_>, org: OrgKey, id: &str) -> Result<bool> {
    let changed = tx
        .execute(
            "DELETE FROM retraced_api_tokens WHERE org_id = ? AND id = ?",
            params![org.get(), id],
        )
        .map_err(map_err)?;
    Ok(changed > 0)
}
