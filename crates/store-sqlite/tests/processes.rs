//! Two stores open on one file, as `stele serve` and an operator's command (`stele user create`,
//! `stele export`) are: each reads what the other wrote.

use stele_core::params::PageRequest;
use stele_store::conformance::{event, request};
use stele_store::prelude::*;
use stele_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_reads_dictionary_values_another_process_added_before_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stele.db");
    let server = SqliteStore::open(&path).unwrap();
    let org = server.create_org("a").await.unwrap().key;
    // The command writes first, adding dictionary rows the server has not loaded ...
    let command = SqliteStore::open(&path).unwrap();
    let mut by_command = event("member_added", 1_767_225_600_000);
    by_command.channel = "security".into();
    command
        .append(org, request(vec![by_command]))
        .await
        .unwrap();
    drop(command);
    // ... then the server adds rows of its own, with higher ids than the command's.
    let mut by_server = event("login", 1_767_225_601_000);
    by_server.channel = "auth".into();
    server.append(org, request(vec![by_server])).await.unwrap();

    let all_actors = PageRequest::from_params([("actor_type", "all")]).unwrap();
    let page = server.list(org, &all_actors).await.unwrap();
    let actions: Vec<&str> = page
        .entries
        .iter()
        .map(|e| e.event.action.as_str())
        .collect();
    assert_eq!(actions, ["login", "member_added"]);
    assert_eq!(page.entries[1].event.channel, "security");
}

/// What another process or one of the writer's own jobs (an erasure's record) appends between
/// two groups, the next group continues: the chain never forks, whoever wrote last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_continues_the_chain_another_process_or_a_job_extended() {
    const T0: i64 = 1_767_225_600_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stele.db");
    let server = SqliteStore::open(&path).unwrap();
    let org = server.create_org("a").await.unwrap().key;
    let seq_of = |outcome: stele_store::AppendOutcome| outcome.receipts[0].seq.get();
    let next = server.append(org, request(vec![event("create", T0)])).await;
    assert_eq!(seq_of(next.unwrap()), 1);
    let next = server.append(org, request(vec![event("update", T0)])).await;
    assert_eq!(seq_of(next.unwrap()), 2);

    let command = SqliteStore::open(&path).unwrap();
    let next = command
        .append(org, request(vec![event("import", T0)]))
        .await;
    assert_eq!(seq_of(next.unwrap()), 3);
    drop(command);
    let next = server.append(org, request(vec![event("update", T0)])).await;
    assert_eq!(seq_of(next.unwrap()), 4);

    let erased = server
        .erase_person(
            org,
            stele_store::Erasure {
                person: stele_core::erase::Person {
                    email: Some("nobody@example.com".into()),
                    ..Default::default()
                },
                pseudonym: "erased-1".into(),
                record: event("erase", T0),
                salt: [1; 16],
            },
        )
        .await
        .unwrap();
    assert_eq!(erased.record.seq.get(), 5);
    let next = server.append(org, request(vec![event("delete", T0)])).await;
    assert_eq!(seq_of(next.unwrap()), 6);

    let report = server.verify(org, None).await.unwrap();
    assert!(report.ok && report.entries == 6, "{report:?}");
}

/// The database is its owner's alone: a data directory Stele makes is `0700`, and the database
/// and its `-wal` and `-shm` files are `0600` whatever the umask; one left more open (by an
/// older version) is closed down when opened again (issue 17).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_files_are_readable_by_their_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("data");
    let path = dir.join("stele.db");
    let sidecar = |suffix: &str| dir.join(format!("stele.db{suffix}"));
    let store = SqliteStore::open(&path).unwrap();
    let org = store.create_org("a").await.unwrap().key;
    store
        .append(org, request(vec![event("update", 1_767_322_245_678)]))
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    for file in [path.clone(), sidecar("-wal"), sidecar("-shm")] {
        assert!(file.exists(), "{}", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(store);

    for file in [path.clone(), sidecar("-wal"), sidecar("-shm")] {
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    for file in [path.clone(), sidecar("-wal"), sidecar("-shm")] {
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    drop(store);
}
