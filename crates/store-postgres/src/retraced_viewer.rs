//! Retraced's viewer's saved exports and API tokens (`retraced_saved_exports`,
//! `retraced_api_tokens`, migration 11). The service refuses control characters in what it
//! stores here, so no text holds the NUL that PostgreSQL's text refuses.

use stele_store::{NewViewerApiToken, OrgKey, SavedExport, ViewerApiToken};
use tokio_postgres::Row;

use crate::error::R;
use crate::pool::Conn;

fn saved_export(r: &Row) -> R<SavedExport> {
    Ok(SavedExport {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        query: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

pub async fn create_saved_export(conn: &mut Conn, org: OrgKey, e: SavedExport) -> R<()> {
    conn.query(
        "INSERT INTO retraced_saved_exports (id, org_id, name, query, created_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[&e.id, &org.get(), &e.name, &e.query, &e.created_at],
    )
    .await?;
    Ok(())
}

pub async fn saved_exports(conn: &mut Conn, org: OrgKey, limit: usize) -> R<Vec<SavedExport>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.query(
        "SELECT id, name, query, created_ms FROM retraced_saved_exports
         WHERE org_id = $1 ORDER BY created_ms DESC, id DESC LIMIT $2",
        &[&org.get(), &limit],
    )
    .await?
    .iter()
    .map(saved_export)
    .collect()
}

pub async fn find_saved_export(conn: &mut Conn, org: OrgKey, id: &str) -> R<Option<SavedExport>> {
    conn.query_opt(
        "SELECT id, name, query, created_ms FROM retraced_saved_exports
         WHERE org_id = $1 AND id = $2",
        &[&org.get(), &id],
    )
    .await?
    .as_ref()
    .map(saved_export)
    .transpose()
}

pub async fn create_token(conn: &mut Conn, org: OrgKey, t: NewViewerApiToken) -> R<()> {
    conn.query(
        "INSERT INTO retraced_api_tokens (id, org_id, display_name, secret_hash, created_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &t.id,
            &org.get(),
            &t.display_name,
            &&t.secret_hash[..],
            &t.created_at,
        ],
    )
    .await?;
    Ok(())
}

pub async fn tokens(conn: &mut Conn, org: OrgKey) -> R<Vec<ViewerApiToken>> {
    conn.query(
        "SELECT id, display_name, created_ms FROM retraced_api_tokens
         WHERE org_id = $1 ORDER BY created_ms, id",
        &[&org.get()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(ViewerApiToken {
            id: r.try_get(0)?,
            display_name: r.try_get(1)?,
            created_at: r.try_get(2)?,
        })
    })
    .collect()
}

pub async fn rename_token(conn: &mut Conn, org: OrgKey, id: &str, name: &str) -> R<bool> {
    let changed = conn
        .query(
            "UPDATE retraced_api_tokens SET display_name = $1 WHERE org_id = $2 AND id = $3
             RETURNING id",
            &[&name, &org.get(), &id],
        )
        .await?;
    Ok(!changed.is_empty())
}

pub async fn delete_token(conn: &mut Conn, org: OrgKey, id: &str) -> R<bool> {
    let changed = conn
        .query(
            "DELETE FROM retraced_api_tokens WHERE org_id = $1 AND id = $2 RETURNING id",
            &[&org.get(), &id],
        )
        .await?;
    Ok(!changed.is_empty())
}
