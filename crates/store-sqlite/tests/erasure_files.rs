//! After an erasure and a redaction and a clean stop, no byte of the database, its WAL, the
//! search index file or any other file in the data directory, nor any packed value in them, holds
//! an erased value (issue 17: old cells survived in the
//! free space of reorganised pages, and FTS5 segments kept deleted terms).

use std::sync::Arc;

use stele_store::Store;
use stele_store::conformance::erase_a_person_from_a_realistic_trail;
use stele_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_holds_an_erased_or_redacted_value_after_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("stele.db")).unwrap());
    let gone = erase_a_person_from_a_realistic_trail(&store).await;
    drop(store);
    // The store's background threads close their connections within a second of the drop, and
    // the last one to close checkpoints the WAL and removes it and the `-shm`: scanning before
    // then could list a file that is gone when it is read. The stop is clean once they are gone.
    // The same goes for the search index file's WAL, closed by the indexer thread.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for wal in ["stele.db-wal", "stele.db-search-wal"] {
        let wal = dir.path().join(wal);
        while wal.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} is still there 10 s after the store was dropped",
                wal.display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let mut kept_seen = false;
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // The `body` and `personal` columns are packed (zstd), which does not keep values byte
        // for byte: every packed value in the file, live or left in free space, is read too.
        let unpacked = stele_store_sqlite::texts_packed_in(&bytes);
        let holds = |needle: &[u8]| {
            contains(&bytes, needle) || unpacked.iter().any(|t| contains(t.as_bytes(), needle))
        };
        kept_seen |= holds(b"it@example.com");
        for value in &gone {
            // As UTF-8, and as the JSON the store writes (the same bytes for these values).
            assert!(
                !holds(value.as_bytes()),
                "{} holds {value:?}",
                path.display()
            );
        }
    }
    // The scan reads what was written: a value nobody erased is there.
    assert!(kept_seen, "no file holds the kept value");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
