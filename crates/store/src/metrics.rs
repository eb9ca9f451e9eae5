//! The metrics the backends record (through the `metrics` facade) and the server describes and
//! serves at `/metrics`: their names, one list, so the backends record what the server
//! documents; and the recording the two writers share.

use std::time::Instant;

/// Counter: events acknowledged by this process's writer once their group committed (each one
/// durable and chained; a request replayed under its idempotency key is acknowledged, and
/// counted, again).
pub const EVENTS_COMMITTED: &str = "stele_events_committed_total";
/// Histogram: events in one group commit.
pub const GROUP_COMMIT_EVENTS: &str = "stele_group_commit_events";
/// Histogram: seconds one group commit took, from its first statement to `COMMIT` returning.
pub const GROUP_COMMIT_DURATION: &str = "stele_group_commit_duration_seconds";
/// Counter: group commits that failed (none of their events was stored).
pub const GROUP_COMMIT_FAILURES: &str = "stele_group_commit_failures_total";
/// Gauge: append requests waiting for the writer after its last group commit.
pub const WRITER_QUEUE: &str = "stele_writer_queue_depth";
/// Gauge: changes to the trail (entries written, rewritten, removed) that the embedded
/// database's search index has not taken in yet. Reads check those entries one by one, so a
/// lag that stays high makes searches slower, never incomplete.
pub const SEARCH_INDEX_LAG: &str = "stele_search_index_lag";
/// Gauge: bytes of heap the embedded database holds (`sqlite3_status64(MEMORY_USED)`).
pub const SQLITE_MEMORY: &str = "stele_sqlite_memory_bytes";
/// Gauge: of that, bytes in the connections' page caches.
pub const SQLITE_PAGE_CACHE: &str = "stele_sqlite_page_cache_bytes";
/// Gauge: the embedded database's size (page count times page size).
pub const SQLITE_DATABASE: &str = "stele_sqlite_database_bytes";
/// Gauge: PostgreSQL connections lent out of the read pool.
pub const POOL_IN_USE: &str = "stele_postgres_pool_in_use";
/// Gauge: PostgreSQL connections the read pool may lend at once.
pub const POOL_SIZE: &str = "stele_postgres_pool_size";

/// Counter: signed checkpoints this process made (one per organization whose chain moved).
pub const CHECKPOINTS_SIGNED: &str = "stele_checkpoints_signed_total";
/// Counter: bytes of request bodies whose events were all recorded (every ingest door).
pub const INGEST_BYTES: &str = "stele_ingest_bytes_total";
/// Counter: retention runs by outcome (`ok`; `archive_failed`: an organization's archive could
/// not be written and its run stopped; `failed`: the run stopped on a store error).
pub const RETENTION_RUNS: &str = "stele_retention_runs_total";
/// Counter: entries retention removed.
pub const RETENTION_PRUNED: &str = "stele_retention_pruned_entries_total";
/// Counter: export jobs that finished, by outcome (`ready`, `failed`).
pub const EXPORT_JOBS: &str = "stele_export_jobs_total";
/// Counter: chain verifications asked of the server, by result (`verified`, `failed`: the chain
/// or a checkpoint did not check; the report names where).
pub const VERIFICATIONS: &str = "stele_verifications_total";

/// Records checkpoints signed.
pub fn checkpoints_signed(count: usize) {
    metrics::counter!(CHECKPOINTS_SIGNED).increment(count as u64);
}

/// Records one group commit of `events` events that started at `started`: its size and time if
/// it committed, a failure if not.
pub fn group_commit(events: usize, started: Instant, committed: bool) {
    if committed {
        metrics::counter!(EVENTS_COMMITTED).increment(events as u64);
        metrics::histogram!(GROUP_COMMIT_EVENTS).record(events as f64);
        metrics::histogram!(GROUP_COMMIT_DURATION).record(started.elapsed().as_secs_f64());
    } else {
        metrics::counter!(GROUP_COMMIT_FAILURES).increment(1);
    }
}

/// Records how many changes the search index has yet to take in.
pub fn search_index_lag(waiting: u64) {
    metrics::gauge!(SEARCH_INDEX_LAG).set(waiting as f64);
}

/// Records how many append requests wait for the writer (after each group commit).
pub fn writer_queue(waiting: usize) {
    metrics::gauge!(WRITER_QUEUE).set(waiting as f64);
}
