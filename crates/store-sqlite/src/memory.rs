//! What the embedded database holds in this process's memory, for `/metrics`: SQLite's own heap
//! and, within it, the connections' page caches, bounded by their `cache_size`: the writer's
//! fills as it writes and stays full; a reader's holds the pages it read from outside its memory
//! map until another connection writes, when SQLite empties it (WAL mode). An operator tells the
//! caches from the rest on the dashboard, and the bench's soak reads them to tell caches filling
//! from the rest of the heap growing.
//!
//! The one module of Stele with `unsafe`: rusqlite does not wrap SQLite's status functions, so
//! they are called through its C bindings, each call writing two integers it is handed.
#![allow(unsafe_code)]

use rusqlite::{Connection, ffi};
use stele_store::metrics::{SQLITE_DATABASE, SQLITE_MEMORY, SQLITE_PAGE_CACHE};

/// SQLite's heap in this process, all connections together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteHeap {
    /// Every byte SQLite has allocated and not freed (`SQLITE_STATUS_MEMORY_USED`).
    pub used: i64,
    /// Of those, the page caches' pages (`SQLITE_STATUS_PAGECACHE_OVERFLOW`: without a static
    /// page-cache buffer configured, which Stele does not configure, every cached page beyond a
    /// connection's first few is such an allocation).
    pub page_cache: i64,
}

/// Reads SQLite's process-wide memory figures.
pub fn heap() -> SqliteHeap {
    SqliteHeap {
        used: status(ffi::SQLITE_STATUS_MEMORY_USED),
        page_cache: status(ffi::SQLITE_STATUS_PAGECACHE_OVERFLOW),
    }
}

fn status(op: std::os::raw::c_int) -> i64 {
    let (mut current, mut highwater) = (0i64, 0i64);
    // SAFETY: `sqlite3_status64` only writes the two integers it is given; the counters are
    // process-wide and thread-safe (the library is built with SQLITE_THREADSAFE=1).
    let rc = unsafe { ffi::sqlite3_status64(op, &mut current, &mut highwater, 0) };
    if rc == ffi::SQLITE_OK { current } else { 0 }
}

/// The bytes `conn`'s own page cache holds (`SQLITE_DBSTATUS_CACHE_USED`).
pub fn cache_used(conn: &Connection) -> i64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: `conn.handle()` is a live connection for the duration of the call, and the call
    // only writes the two integers it is given.
    let rc = unsafe {
        ffi::sqlite3_db_status(
            conn.handle(),
            ffi::SQLITE_DBSTATUS_CACHE_USED,
            &mut current,
            &mut highwater,
            0,
        )
    };
    if rc == ffi::SQLITE_OK {
        i64::from(current)
    } else {
        0
    }
}

/// Sets the `/metrics` gauges: SQLite's heap, its page caches, and the database's size as
/// `conn` sees it.
pub(crate) fn report(conn: &Connection) {
    let heap = heap();
    metrics::gauge!(SQLITE_MEMORY).set(heap.used as f64);
    metrics::gauge!(SQLITE_PAGE_CACHE).set(heap.page_cache as f64);
    let size: rusqlite::Result<i64> = conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |row| row.get(0),
    );
    if let Ok(bytes) = size {
        metrics::gauge!(SQLITE_DATABASE).set(bytes as f64);
    }
}
