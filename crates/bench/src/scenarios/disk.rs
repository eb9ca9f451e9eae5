//! The `disk` scenario: bytes on disk per stored event after a graceful stop (the data directory's
//! files, or with PostgreSQL `pg_database_size` and where the bytes go, read with `psql`); and what
//! the report records about the PostgreSQL server (`PgInfo`, the planner's statistics).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use stele_server::app::backend::DatabaseUrl;

pub(crate) struct DiskResult {
    /// The files as the stopped server left them.
    pub(crate) as_left: Vec<(String, u64)>,
    /// The files after the write-ahead log was checkpointed into the database and removed.
    pub(crate) checkpointed: Option<Vec<(String, u64)>>,
    pub(crate) events: u64,
    pub(crate) events_known: bool,
    pub(crate) objects: Vec<(String, u64)>,
    /// The largest stele.db-wal seen while the server ran (sampled every 250 ms).
    pub(crate) largest_wal: u64,
    /// With PostgreSQL: the database's size and where the bytes go.
    pub(crate) database: Option<PgSizes>,
}

/// Sizes read from PostgreSQL after the graceful stop.
pub(crate) struct PgSizes {
    /// `pg_database_size(current_database())`.
    pub(crate) database: u64,
    /// Stele's tables in the `public` schema, largest first.
    pub(crate) tables: Vec<PgTable>,
    /// Their indexes (TOAST indexes are in the TOAST figure), largest first.
    pub(crate) indexes: Vec<(String, u64)>,
}

pub(crate) struct PgTable {
    pub(crate) name: String,
    /// `pg_table_size`: heap, TOAST, free space and visibility maps.
    pub(crate) table: u64,
    /// Of which TOAST (with its index).
    pub(crate) toast: u64,
    /// `pg_indexes_size`.
    pub(crate) indexes: u64,
    /// `pg_total_relation_size`.
    pub(crate) total: u64,
}

/// Runs one statement with `psql` and returns its rows, fields split at `|`.
pub(crate) fn psql(url: &DatabaseUrl, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(url.expose())
        .stdin(Stdio::null())
        .output()
        .context("running psql (needed with --database-url)")?;
    if !out.status.success() {
        bail!(
            "psql on {url} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect())
}

pub(crate) fn pg_sizes(url: &DatabaseUrl) -> anyhow::Result<PgSizes> {
    eprintln!("bench: disk: reading the database's size with psql");
    let number = |v: &str| -> anyhow::Result<u64> {
        v.trim()
            .parse()
            .with_context(|| format!("psql printed `{v}`, not a number"))
    };
    let database = psql(url, "select pg_database_size(current_database())")?
        .first()
        .and_then(|r| r.first().cloned())
        .context("psql printed no database size")?;
    let database = number(&database)?;
    let mut tables = Vec::new();
    for r in psql(
        url,
        "select c.relname, pg_table_size(c.oid), \
         coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0), \
         pg_indexes_size(c.oid), pg_total_relation_size(c.oid) \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind in ('r', 'p', 'm') order by 5 desc, 1",
    )? {
        anyhow::ensure!(r.len() == 5, "psql printed `{}`", r.join("|"));
        tables.push(PgTable {
            name: r[0].clone(),
            table: number(&r[1])?,
            toast: number(&r[2])?,
            indexes: number(&r[3])?,
            total: number(&r[4])?,
        });
    }
    let mut indexes = Vec::new();
    for r in psql(
        url,
        "select c.relname, pg_relation_size(c.oid) \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind = 'i' order by 2 desc, 1",
    )? {
        anyhow::ensure!(r.len() == 2, "psql printed `{}`", r.join("|"));
        indexes.push((r[0].clone(), number(&r[1])?));
    }
    Ok(PgSizes {
        database,
        tables,
        indexes,
    })
}

/// What PostgreSQL's planner knows about `entries` (from its last ANALYZE, by autovacuum or by
/// hand), next to the live row count of the statistics system (not a `count(*)`, which would
/// read the whole table into the cache before the queries).
pub(crate) fn planner_statistics(url: &DatabaseUrl) -> anyhow::Result<String> {
    // `entries` is partitioned by month: its rows and statistics are its partitions'.
    let rows = psql(
        url,
        "select count(*) filter (where c.reltuples < 0), count(*), \
         coalesce(sum(greatest(c.reltuples, 0))::int8, 0), coalesce(sum(s.n_live_tup), 0), \
         coalesce(sum(s.analyze_count), 0), coalesce(sum(s.autoanalyze_count), 0), \
         coalesce(sum(s.vacuum_count), 0) \
         from pg_inherits i join pg_class c on c.oid = i.inhrelid \
         join pg_stat_user_tables s on s.relid = c.oid \
         where i.inhparent = 'entries'::regclass",
    )?;
    let Some([never, partitions, estimate, actual, by_hand, auto, vacuums]) =
        rows.first().map(Vec::as_slice)
    else {
        bail!("psql printed no statistics for the partitions of entries");
    };
    Ok(format!(
        "the planner estimates `entries` at {estimate} rows over {partitions} monthly partitions \
         ({never} never analyzed, which the planner takes for empty); the statistics system counts \
         {actual} live rows; partitions analyzed {by_hand} times by ANALYZE or VACUUM (ANALYZE), \
         {auto} times by autovacuum, vacuumed {vacuums} times by VACUUM"
    ))
}

/// The PostgreSQL server's version and the settings that bear on the figures.
pub(crate) struct PgInfo {
    pub(crate) version: String,
    pub(crate) settings: Vec<(String, String)>,
}

impl PgInfo {
    pub(crate) fn probe(url: &DatabaseUrl) -> anyhow::Result<PgInfo> {
        let version = psql(url, "show server_version")?
            .first()
            .and_then(|r| r.first().cloned())
            .unwrap_or_else(|| "unknown".into());
        let settings = psql(
            url,
            "select name, current_setting(name) from pg_settings where name in \
             ('autovacuum', 'shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes', 'wal_level', \
             'max_wal_size', 'checkpoint_timeout', 'work_mem', 'effective_cache_size', 'jit', \
             'wal_compression', 'commit_delay') order by name",
        )?
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone(), r.get(1)?.clone())))
        .collect();
        Ok(PgInfo { version, settings })
    }
}

pub(crate) fn data_files(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata()?.len(),
            ));
        }
    }
    files.sort();
    Ok(files)
}

pub(crate) async fn disk(
    dir: &Path,
    as_left: Vec<(String, u64)>,
    events: u64,
    events_known: bool,
) -> anyhow::Result<DiskResult> {
    let db = dir.join("stele.db");
    let wal = dir.join("stele.db-wal");
    // If the server left its write-ahead log behind, checkpoint it the way the next start would:
    // open the database and close it as its last connection (SQLite then folds the log into the
    // database file and deletes it). A plain connection, not this build's store, whose migrations
    // would rewrite a database an older `--stele` made. (`stele verify` may already have done so.)
    let mut checkpointed = None;
    if wal.exists() || as_left.iter().any(|(name, _)| name == "stele.db-wal") {
        eprintln!("bench: disk: the stopped server left stele.db-wal; checkpointing it");
        let conn = rusqlite::Connection::open(&db)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(conn);
        // SQLite deletes the log, then the shared-memory index, then releases its lock.
        let shm = dir.join("stele.db-shm");
        let deadline = Instant::now() + Duration::from_secs(300);
        while (wal.exists() || shm.exists()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        checkpointed = Some(data_files(dir)?);
    }
    // Optional: where the pages go, if the sqlite3 shell (with dbstat) is installed; in the
    // database and in its search index file (`stele.db-search`), whose objects are named so.
    let mut objects = Vec::new();
    for (file, prefix) in [
        (db.clone(), ""),
        (dir.join("stele.db-search"), "stele.db-search: "),
    ] {
        if !file.exists() {
            continue;
        }
        let dbstat = Command::new("sqlite3")
            .args(["-readonly", "-cmd", ".timeout 10000"])
            .arg(&file)
            .arg("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC;")
            .output();
        match &dbstat {
            Ok(out) if !out.status.success() => eprintln!(
                "bench: disk: sqlite3 dbstat failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("bench: disk: no page breakdown (sqlite3: {e})"),
            _ => {}
        }
        if let Ok(out) = dbstat
            && out.status.success()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((name, bytes)) = line.rsplit_once('|')
                    && let Ok(bytes) = bytes.trim().parse()
                {
                    objects.push((format!("{prefix}{name}"), bytes));
                }
            }
        }
    }
    Ok(DiskResult {
        as_left,
        checkpointed,
        events,
        events_known,
        objects,
        largest_wal: 0,
        database: None,
    })
}
