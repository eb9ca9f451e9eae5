//! What the bench's raw SQLite yardstick writes (issue 18): the rows this store wrote, read back
//! as they are stored, with the statements that make the tables they went into.
//!
//! The yardstick times plain SQLite taking exactly these rows into exactly these structures (the
//! `entries` table, its `(org_id, seq)` index and the two FTS5 search tables, with the same
//! options), so that Stele's ingest rate can be read against what this machine's SQLite does
//! with the same bytes and none of Stele's other work: no HTTP, parsing, validation, chain,
//! dictionary, facets or idempotency. It lives here, not in the bench, because only the store
//! knows its schema and how an entry's search terms are made (the `entry_terms` table keeps no
//! copy of them to read back). The yardstick writes all of it into one file from one thread, as
//! the store did before its search index moved to a file and a thread of its own (`search.rs`).

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use stele_store::{OrgKey, Result, StoreError};

use crate::codec::{ENTRY_COLUMNS, decode_row, description_rowid};
use crate::dict::Dict;
use crate::error::map_err;
use crate::terms;

/// The FTS5 tables of the search index file, whose configuration (`hashsize`) is part of how
/// they write.
const SEARCH_TABLES: [&str; 2] = ["entry_terms", "entries_fts"];

/// The first entries of a store, in the order they were written, ready to be written again
/// elsewhere.
pub struct StoredRows {
    /// Statements that create `entries`, its index and the search tables in an empty database,
    /// configured as the store's are.
    pub schema: Vec<String>,
    /// Every column of each entry, in `entries`' column order.
    pub entries: Vec<Vec<Value>>,
    /// `(rowid, terms)` of each entry's `entry_terms` row.
    pub terms: Vec<(i64, String)>,
    /// `(rowid, description)` of each entry's `entries_fts` row, if it has a description.
    pub descriptions: Vec<Option<(i64, String)>>,
}

/// Reads the first `limit` entries the database at `path` recorded, in the order they were
/// written (so the copy's B-trees grow as the store's did), opened read-only: the server may be
/// running, as WAL mode lets a reader in beside it.
pub fn read(path: &Path, limit: usize) -> Result<StoredRows> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(map_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(map_err)?;
    crate::search::attach(&conn, path, 0).map_err(map_err)?;
    let schema = schema(&conn).map_err(map_err)?;

    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare("SELECT * FROM entries ORDER BY recorded_ms, org_id, seq LIMIT ?")
        .map_err(map_err)?;
    let columns = stmt.column_count();
    let entries = stmt
        .query_map([limit], |row| {
            (0..columns).map(|i| row.get::<_, Value>(i)).collect()
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Vec<Value>>>>())
        .map_err(map_err)?;

    let dict = Dict::default();
    dict.refresh(&conn).map_err(map_err)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {ENTRY_COLUMNS}, e.org_id FROM entries e\n             ORDER BY e.recorded_ms, e.org_id, e.seq LIMIT ?"
        ))
        .map_err(map_err)?;
    let mut rows = stmt.query([limit]).map_err(map_err)?;
    let (mut terms, mut descriptions) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next().map_err(map_err)? {
        let org = OrgKey::new(row.get(15).map_err(map_err)?);
        let (pk, entry) = decode_row(row, &dict)
            .map_err(map_err)?
            .map_err(|_| StoreError::Other("an entry names an unknown dictionary id".into()))?;
        terms.push((pk, terms::entry_terms(org, &entry.event)));
        descriptions.push(
            entry
                .event
                .description
                .map(|text| (description_rowid(org.get(), entry.seq.get()), text)),
        );
    }
    Ok(StoredRows {
        schema,
        entries,
        terms,
        descriptions,
    })
}

/// Opens (creating) the database the yardstick writes, configured as the store's writer is (WAL,
/// `synchronous = FULL`, the same page cache and memory map), except that SQLite checkpoints its
/// WAL itself, as a plain application's would: the store does that on a thread of its own.
pub fn open_copy(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(map_err)?;
    crate::schema::configure(&conn, crate::DEFAULT_MMAP_BYTES).map_err(map_err)?;
    conn.execute_batch("PRAGMA wal_autocheckpoint = 1000")
        .map_err(map_err)?;
    Ok(conn)
}

/// The `CREATE` statements of `entries` and its indexes and of the [`SEARCH_TABLES`], then each
/// search table's configuration as `INSERT`s of FTS5's special form.
fn schema(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut out: Vec<String> = conn
        .prepare(
            "SELECT sql FROM main.sqlite_schema
             WHERE sql IS NOT NULL AND tbl_name = 'entries' AND type IN ('table', 'index')
             ORDER BY type = 'index', name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let search: Vec<String> = conn
        .prepare(
            "SELECT sql FROM search.sqlite_schema
             WHERE type = 'table' AND name IN (?1, ?2) ORDER BY name",
        )?
        .query_map(SEARCH_TABLES, |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    out.extend(search);
    for table in SEARCH_TABLES {
        let config: Vec<(String, Value)> = conn
            .prepare(&format!(
                "SELECT k, v FROM search.{table}_config WHERE k <> 'version'"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (key, value) in config {
            let value = match value {
                Value::Integer(n) => n.to_string(),
                Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
                other => {
                    return Err(rusqlite::Error::InvalidColumnType(
                        1,
                        format!("{table}_config.{key} = {other:?}"),
                        rusqlite::types::Type::Null,
                    ));
                }
            };
            out.push(format!(
                "INSERT INTO {table} ({table}, rank) VALUES ('{key}', {value})"
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use stele_store::conformance::{event, request};
    use stele_store::prelude::*;

    /// The rows read back make an equal copy: the same columns, the same terms the store's own
    /// search finds them by, and the statements create the same tables in an empty database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_rows_read_back_rebuild_the_same_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stele.db");
        let store = SqliteStore::open(&path).unwrap();
        let org = store.create_org("acme").await.unwrap().key;
        let events = (0..3)
            .map(|i| {
                let mut e = event("user.login", 1_767_225_600_000 + i);
                e.description = Some(format!("Ada signed in, {i}"));
                e
            })
            .collect();
        store.append(org, request(events)).await.unwrap();
        let rows = read(&path, 2).unwrap();
        assert_eq!(rows.entries.len(), 2);
        assert_eq!(rows.terms.len(), 2);
        assert!(rows.descriptions.iter().all(Option::is_some));

        let copy = open_copy(&dir.path().join("copy.db")).unwrap();
        for sql in &rows.schema {
            copy.execute_batch(sql).unwrap();
        }
        let placeholders = vec!["?"; rows.entries[0].len()].join(", ");
        for entry in &rows.entries {
            copy.execute(
                &format!("INSERT INTO entries VALUES ({placeholders})"),
                rusqlite::params_from_iter(entry),
            )
            .unwrap();
        }
        for (rowid, text) in &rows.terms {
            copy.execute(
                "INSERT INTO entry_terms (rowid, terms) VALUES (?, ?)",
                rusqlite::params![rowid, text],
            )
            .unwrap();
        }
        let org_term = terms::term(org, terms::Field::Org, "");
        let found: i64 = copy
            .query_row(
                "SELECT count(*) FROM entry_terms WHERE entry_terms MATCH ?",
                [&org_term],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 2);
        let hashsize: i64 = copy
            .query_row(
                "SELECT v FROM entry_terms_config WHERE k = 'hashsize'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hashsize, 16_777_216);
        drop(store);
    }
}
