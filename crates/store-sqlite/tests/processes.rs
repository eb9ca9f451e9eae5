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
