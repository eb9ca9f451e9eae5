//! Action schemas (`action_schemas`, migration 10), shared by every server on the database.
//!
//! A new version is one `INSERT … SELECT max(version) + 1`: two servers adding a version of one
//! action at once may compute the same number, and the primary key refuses the second insert, so
//! that one reads the latest again and takes the next number.

use stele_store::{ActionSchema, NewActionSchema, OrgKey, StoreError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::error::{Error, R};
use crate::pool::Conn;

const COLUMNS: &str = "action, version, document, created_ms";

/// Attempts at numbering a new version before giving up as unavailable: each lost race means
/// another version was stored meanwhile, so running out takes a storm of concurrent changes.
const ATTEMPTS: usize = 8;

fn from_row(r: &Row) -> R<ActionSchema> {
    Ok(ActionSchema {
        action: r.try_get(0)?,
        version: r.try_get::<_, i32>(1)? as u32,
        document: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

/// Text columns cannot hold U+0000; an action with one names no schema.
fn storable(text: &str) -> bool {
    !text.contains('\0')
}

pub async fn create(conn: &mut Conn, org: OrgKey, schema: NewActionSchema) -> R<ActionSchema> {
    if !storable(&schema.action) || !storable(&schema.document) {
        return Err(Error::Store(StoreError::Other(
            "an action schema holds a NUL character".into(),
        )));
    }
    for _ in 0..ATTEMPTS {
        let inserted = conn
            .query_opt(
                &format!(
                    "INSERT INTO action_schemas (org_id, action, version, document, created_ms)
                     SELECT $1::bigint, $2::text, coalesce(max(version), 0) + 1, $3::text, $4::bigint
                     FROM action_schemas WHERE org_id = $1 AND action = $2
                     RETURNING {COLUMNS}"
                ),
                &[
                    &org.get(),
                    &schema.action,
                    &schema.document,
                    &schema.created_at,
                ],
            )
            .await;
        match inserted {
            Ok(Some(row)) => return from_row(&row),
            Ok(None) => return Err(Error::Store(StoreError::NotFound)),
            Err(Error::Db(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Store(StoreError::Unavailable(
        "too many concurrent versions of one action schema; retry".into(),
    )))
}

pub async fn list(conn: &mut Conn, org: OrgKey, action: &str) -> R<Vec<ActionSchema>> {
    if !storable(action) {
        return Ok(vec![]);
    }
    conn.query(
        &format!(
            "SELECT {COLUMNS} FROM action_schemas WHERE org_id = $1 AND action = $2
             ORDER BY version"
        ),
        &[&org.get(), &action],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

pub async fn find(
    conn: &mut Conn,
    org: OrgKey,
    action: &str,
    version: Option<u32>,
) -> R<Option<ActionSchema>> {
    if !storable(action) {
        return Ok(None);
    }
    let row = match version {
        // A version beyond what the column holds names none.
        Some(version) => match i32::try_from(version) {
            Ok(version) => {
                conn.query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM action_schemas
                         WHERE org_id = $1 AND action = $2 AND version = $3"
                    ),
                    &[&org.get(), &action, &version],
                )
                .await?
            }
            Err(_) => None,
        },
        None => {
            conn.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM action_schemas WHERE org_id = $1 AND action = $2
                     ORDER BY version DESC LIMIT 1"
                ),
                &[&org.get(), &action],
            )
            .await?
        }
    };
    row.as_ref().map(from_row).transpose()
}
