//! The `copy` scenario on SQLite: the raw speed of this machine's SQLite at taking the rows Stele
//! wrote, as the yardstick for Stele's own durable HTTP ingest (issue 18).
//!
//! What it does, after the ingest scenario:
//! 1. reads back the first `n` entries Stele stored, every column as stored, in the order they
//!    were written, with their search index rows (`stele_store_sqlite::yardstick`);
//! 2. creates, in a database file of its own outside the data directory, the same `entries`
//!    table, its `(org_id, seq)` index and the two FTS5 tables with the same options: the same
//!    three secondary indexes Stele keeps;
//! 3. **batched**: writes batches of the ingest's size, each committed on its own (WAL,
//!    `synchronous = FULL`: a batch is on disk when its commit returns, the durability every
//!    HTTP acknowledgement has), each batch's search rows in rowid order as Stele writes them.
//!    One thread: SQLite has one writer at a time;
//! 4. **one transaction**: the same rows again, into a fresh file, in one commit: the ceiling,
//!    with no durability point until the end;
//! 5. with `--copy-breakdown`, steps 3 and 4 again into fewer structures (`entries` alone, then
//!    with its index, then with each search table), to show what each one costs;
//! 6. removes its files, so the disk scenario sees only Stele's data.
//!
//! What the yardstick leaves out, and Stele does: the HTTP request, JSON parsing and validation,
//! hashing the chain, the chain and idempotency bookkeeping, the dictionary and the facet rows.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rusqlite::{Connection, TransactionBehavior, params, params_from_iter};
use stele_store_sqlite::yardstick::{self, StoredRows};

pub struct RawSqliteResult {
    pub entries: u64,
    pub descriptions: u64,
    pub batch: usize,
    /// Wall time of the batched, durable writes.
    pub batched: Duration,
    /// Wall time of the single transaction.
    pub single: Duration,
    /// With `--copy-breakdown`: the same rows into fewer structures, batched and in one
    /// transaction each, to show what each structure costs.
    pub breakdown: Vec<BreakdownRow>,
}

/// Which of the secondary indexes a write keeps (the `entries` table is always written).
#[derive(Debug, Clone, Copy)]
pub struct Structures {
    pub seq_index: bool,
    pub terms: bool,
    pub trigrams: bool,
}

impl Structures {
    const ALL: Structures = Structures {
        seq_index: true,
        terms: true,
        trigrams: true,
    };

    pub fn describe(self) -> &'static str {
        match (self.seq_index, self.terms, self.trigrams) {
            (false, false, false) => "`entries` alone",
            (true, false, false) => "`entries` + `(org_id, seq)` index",
            (true, true, false) => "`entries` + `(org_id, seq)` + filter terms (`entry_terms`)",
            (true, false, true) => {
                "`entries` + `(org_id, seq)` + description trigrams (`entries_fts`)"
            }
            _ => "`entries` + all three secondary indexes",
        }
    }

    /// Whether a schema statement is for a structure this write keeps.
    fn keeps(self, sql: &str) -> bool {
        (self.seq_index || !sql.contains("entries_seq"))
            && (self.terms || !sql.contains("entry_terms"))
            && (self.trigrams || !sql.contains("entries_fts"))
    }
}

pub struct BreakdownRow {
    pub structures: Structures,
    pub batched: Duration,
    pub single: Duration,
}

impl RawSqliteResult {
    pub fn batched_rate(&self) -> f64 {
        self.entries as f64 / self.batched.as_secs_f64()
    }

    pub fn single_rate(&self) -> f64 {
        self.entries as f64 / self.single.as_secs_f64()
    }
}

/// Runs the yardstick over the first `events` entries of `dir`'s `stele.db`; with `breakdown`,
/// also with fewer structures.
pub fn run(
    dir: &Path,
    events: u64,
    batch: usize,
    breakdown: bool,
) -> anyhow::Result<RawSqliteResult> {
    eprintln!("bench: copy: reading back {events} stored entries and their search rows");
    let rows = yardstick::read(&dir.join("stele.db"), events as usize)
        .context("reading back the stored entries")?;
    if rows.entries.is_empty() {
        anyhow::bail!("the copy scenario needs stored entries: run it with the ingest scenario");
    }
    let work = std::env::temp_dir().join(format!("stele-bench-yardstick-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let both = |structures: Structures| -> anyhow::Result<(Duration, Duration)> {
        eprintln!(
            "bench: copy: {} entries into {}, batches of {batch} committed one by one, then in one transaction",
            rows.entries.len(),
            structures.describe()
        );
        let batched = write(&work.join("batched.db"), &rows, batch, structures)?;
        let single = write(
            &work.join("single.db"),
            &rows,
            rows.entries.len(),
            structures,
        )?;
        Ok((batched, single))
    };
    let result = (|| {
        let (batched, single) = both(Structures::ALL)?;
        let mut rows_of_breakdown = Vec::new();
        if breakdown {
            for (seq_index, terms, trigrams) in [
                (false, false, false),
                (true, false, false),
                (true, true, false),
                (true, false, true),
            ] {
                let structures = Structures {
                    seq_index,
                    terms,
                    trigrams,
                };
                let (batched, single) = both(structures)?;
                rows_of_breakdown.push(BreakdownRow {
                    structures,
                    batched,
                    single,
                });
            }
        }
        Ok(RawSqliteResult {
            entries: rows.entries.len() as u64,
            descriptions: rows.descriptions.iter().flatten().count() as u64,
            batch,
            batched,
            single,
            breakdown: rows_of_breakdown,
        })
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Creates the tables in a new database at `path` (removing any earlier one) and writes every row
/// in transactions of `batch` entries into the `structures` kept; returns the time the writes
/// took (creating the tables is off the clock).
fn write(
    path: &Path,
    rows: &StoredRows,
    batch: usize,
    structures: Structures,
) -> anyhow::Result<Duration> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    let mut conn = yardstick::open_copy(path)?;
    for sql in rows.schema.iter().filter(|sql| structures.keeps(sql)) {
        conn.execute_batch(sql)
            .with_context(|| format!("creating the yardstick's tables: {sql}"))?;
    }
    let insert_entry = format!(
        "INSERT INTO entries VALUES ({})",
        vec!["?"; rows.entries[0].len()].join(", ")
    );
    let started = Instant::now();
    for ((entries, terms), descriptions) in rows
        .entries
        .chunks(batch)
        .zip(rows.terms.chunks(batch))
        .zip(rows.descriptions.chunks(batch))
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(&insert_entry)?;
            for entry in entries {
                insert.execute(params_from_iter(entry))?;
            }
            if structures.terms {
                insert_in_rowid_order(&tx, "entry_terms (rowid, terms)", terms.iter())?;
            }
            if structures.trigrams {
                insert_in_rowid_order(
                    &tx,
                    "entries_fts (rowid, description)",
                    descriptions.iter().flatten(),
                )?;
            }
        }
        tx.commit()?;
    }
    let elapsed = started.elapsed();
    drop(conn);
    check_copy(path, rows)?;
    Ok(elapsed)
}

/// Writes one batch's rows of a search table in rowid order, as Stele's writer does (FTS5 flushes
/// its in-memory index whenever a rowid is not above the last one).
fn insert_in_rowid_order<'r>(
    tx: &rusqlite::Transaction<'_>,
    table_and_columns: &str,
    rows: impl Iterator<Item = &'r (i64, String)>,
) -> anyhow::Result<()> {
    let mut rows: Vec<&(i64, String)> = rows.collect();
    rows.sort_unstable_by_key(|(rowid, _)| *rowid);
    let mut insert =
        tx.prepare_cached(&format!("INSERT INTO {table_and_columns} VALUES (?, ?)"))?;
    for (rowid, text) in rows {
        insert.execute(params![rowid, text])?;
    }
    Ok(())
}

/// The copy holds every row: a yardstick that wrote less would flatter SQLite.
fn check_copy(path: &Path, rows: &StoredRows) -> anyhow::Result<()> {
    let conn = Connection::open(path)?;
    let entries: i64 = conn.query_row("SELECT count(*) FROM entries", [], |r| r.get(0))?;
    anyhow::ensure!(
        entries as usize == rows.entries.len(),
        "the yardstick wrote {entries} entries of {}",
        rows.entries.len()
    );
    Ok(())
}
