//! Action schemas (`action_schemas`, migration 10). Writes run on the writer thread, one at a
//! time, so reading the action's latest version and inserting the next cannot race.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use stele_store::{ActionSchema, NewActionSchema, OrgKey, Result};

use crate::error::map_err;

const COLUMNS: &str = "action, version, document, created_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ActionSchema> {
    Ok(ActionSchema {
        action: r.get(0)?,
        version: r.get(1)?,
        document: r.get(2)?,
        created_at: r.get(3)?,
    })
}

pub fn create(tx: &Transaction<'_>, org: OrgKey, schema: NewActionSchema) -> Result<ActionSchema> {
    let latest: u32 = tx
        .query_row(
            "SELECT coalesce(max(version), 0) FROM action_schemas WHERE org_id = ? AND action = ?",
            params![org.get(), schema.action],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    let version = latest + 1;
    tx.execute(
        "INSERT INTO action_schemas (org_id, action, version, document, created_ms)
         VALUES (?, ?, ?, ?, ?)",
        params![
            org.get(),
            schema.action,
            version,
            schema.document,
            schema.created_at
        ],
    )
    .map_err(map_err)?;
    Ok(ActionSchema {
        action: schema.action,
        version,
        document: schema.document,
        created_at: schema.created_at,
    })
}

pub fn list(conn: &Connection, org: OrgKey, action: &str) -> Result<Vec<ActionSchema>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM action_schemas WHERE org_id = ? AND action = ? ORDER BY version"
    ))
    .and_then(|mut s| {
        s.query_map(params![org.get(), action], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(map_err)
}

pub fn find(
    conn: &Connection,
    org: OrgKey,
    action: &str,
    version: Option<u32>,
) -> Result<Option<ActionSchema>> {
    let found = match version {
        Some(version) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM action_schemas
                 WHERE org_id = ? AND action = ? AND version = ?"
            ))
            .and_then(|mut s| {
                s.query_row(params![org.get(), action, version], from_row)
                    .optional()
            }),
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM action_schemas WHERE org_id = ? AND action = ?
                 ORDER BY version DESC LIMIT 1"
            ))
            .and_then(|mut s| s.query_row(params![org.get(), action], from_row).optional()),
    };
    found.map_err(map_err)
}
