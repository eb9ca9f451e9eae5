//! What the conformance suite cannot see from the trait: the database's own refusals, tampering
//! found by `verify`, two stores (two writers) sharing one database, the count cap, and values
//! PostgreSQL cannot store.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use stele_core::checkpoint::SigningKey;
use stele_core::filter::EventFilter;
use stele_core::{ActorType, NewEvent};
use stele_store::conformance::{TEST_SIGNING_SEED, event, request};
use stele_store::{AppendRequest, ProblemKind, Store, StoreError};
use stele_store_postgres::{PgOptions, PgStore};

const T0: i64 = 1_767_225_600_000;

fn everyone() -> EventFilter {
    EventFilter {
        actor_types: ActorType::ALL.to_vec(),
        ..EventFilter::default()
    }
}

/// The newest `limit` entries of every actor type.
async fn first_page(store: &dyn Store, org: i64, limit: usize) -> stele_store::Page {
    let request = stele_core::filter::PageRequest {
        filter: everyone(),
        limit,
        cursor: None,
    };
    store.list(org, &request).await.unwrap()
}

#[test]
fn test_database_urls_keep_server_and_options() {
    use common::with_database;
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    assert_eq!(
        with_database("host=h user=u", "x"),
        "host=h user=u dbname=x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_to_edit_or_delete_entries_and_checkpoints() {
    let (store, _db, url) = common::fresh_store().await;
    let org = store.create_org("a").await.unwrap().key;
    store
        .append(org, request(vec![event("create", T0)]))
        .await
        .unwrap();
    store.checkpoint_now().await.unwrap();
    let sql = common::raw_client(&url).await;
    for statement in [
        "UPDATE entries SET description = 'rewritten'",
        "UPDATE entries SET personal = '{}', erased = true, description = 'x'",
        "DELETE FROM entries",
        "TRUNCATE entries",
        "UPDATE checkpoints SET seq = seq + 1",
        "DELETE FROM checkpoints",
        "TRUNCATE checkpoints",
        "UPDATE chain_state SET seq = 0",
        "DELETE FROM chain_state",
    ] {
        let error = sql
            .batch_execute(statement)
            .await
            .expect_err(statement)
            .as_db_error()
            .map(|e| e.message().to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|m| m.contains("immutable") || m.contains("only moves forward")),
            "{statement}: {error:?}"
        );
    }
    // The one update allowed: an erasure's (personal fields and salt, with `erased` set).
    sql.batch_execute(
        r#"UPDATE entries SET personal = '{"actor_id":"erased-0"}', salt = NULL, erased = true"#,
    )
    .await
    .expect("the erasure update is allowed");
}

/// Runs `statements` on the test database with the immutability triggers off, as someone who
/// owns the database could.
async fn tamper(url: &str, statements: &str) {
    let sql = common::raw_client(url).await;
    sql.batch_execute(&format!(
        "BEGIN; ALTER TABLE entries DISABLE TRIGGER USER; {statements};
         ALTER TABLE entries ENABLE TRIGGER USER; COMMIT;"
    ))
    .await
    .expect("tamper");
}

async fn six_entries(store: &PgStore) -> i64 {
    let org = store.create_org("a").await.unwrap().key;
    for i in 0..3 {
        store
            .append(
                org,
                request(vec![event("create", T0 + i), event("update", T0 + i)]),
            )
            .await
            .unwrap();
    }
    store.checkpoint_now().await.unwrap();
    org
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_changed_entry() {
    let (store, _db, url) = common::fresh_store().await;
    let org = six_entries(&store).await;
    let key = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    assert!(store.verify(org, Some(&key)).await.unwrap().ok);
    tamper(
        &url,
        "UPDATE entries SET description = 'nothing happened' WHERE seq = 4",
    )
    .await;
    let report = store.verify(org, Some(&key)).await.unwrap();
    let problem = report.problem.expect("a problem");
    assert_eq!((problem.seq, problem.kind), (4, ProblemKind::Changed));
    assert_eq!(report.entries, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_tells_a_swap_and_a_deletion() {
    let (store, _db, url) = common::fresh_store().await;
    let org = six_entries(&store).await;
    // Swap the positions of entries 2 and 5.
    tamper(
        &url,
        "UPDATE entries SET seq = -2 WHERE seq = 2;
         UPDATE entries SET seq = 2 WHERE seq = 5;
         UPDATE entries SET seq = 5 WHERE seq = -2",
    )
    .await;
    let problem = store.verify(org, None).await.unwrap().problem.unwrap();
    assert_eq!((problem.seq, problem.kind), (2, ProblemKind::Reordered));

    let (store, _db2, url) = common::fresh_store().await;
    let org = six_entries(&store).await;
    tamper(&url, "DELETE FROM entries WHERE seq = 3").await;
    let problem = store.verify(org, None).await.unwrap().problem.unwrap();
    assert_eq!((problem.seq, problem.kind), (3, ProblemKind::Missing));

    let (store, _db3, url) = common::fresh_store().await;
    let org = six_entries(&store).await;
    tamper(&url, "DELETE FROM entries WHERE seq = 6").await;
    let problem = store.verify(org, None).await.unwrap().problem.unwrap();
    assert_eq!(
        (problem.seq, problem.kind),
        (6, ProblemKind::Missing),
        "the last entry, covered by a checkpoint and by chain_state"
    );
}

/// Two stores on one database are two writers, as two `stele serve` processes would be: each
/// organization's `seq` stays gap-free, `pk`s stay unique across organizations even for events
/// of the same millisecond, request keys deduplicate across both, and both chains verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_keep_every_chain_whole() {
    let (first, _db, url) = common::fresh_store().await;
    let second = PgStore::connect(&url, common::test_options())
        .await
        .expect("a second store on the same database");
    let stores: [Arc<dyn Store>; 2] = [Arc::new(first), Arc::new(second)];
    let a = stores[0].create_org("a").await.unwrap().key;
    let b = stores[1].create_org("b").await.unwrap().key;

    let mut tasks = Vec::new();
    for i in 0..80 {
        let store = stores[i % 2].clone();
        let org = if i % 3 == 0 { b } else { a };
        tasks.push(tokio::spawn(async move {
            // Every event in the same millisecond: the hardest case for `pk` allocation.
            store
                .append(org, request(vec![event("create", T0), event("update", T0)]))
                .await
                .unwrap()
                .receipts
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        for receipt in task.await.unwrap() {
            assert!(
                ids.insert(receipt.id.clone()),
                "duplicate id {}",
                receipt.id
            );
        }
    }
    assert_eq!(ids.len(), 160);
    let key = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    for (org, n) in [(a, 106), (b, 54)] {
        let page = first_page(stores[1].as_ref(), org, 500).await;
        let seqs: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=n).rev().collect::<Vec<_>>(),
            "newest first, and within one millisecond in seq order"
        );
        stores[0].checkpoint_now().await.unwrap();
        let report = stores[1].verify(org, Some(&key)).await.unwrap();
        assert!(report.ok && report.entries == n as u64, "{report:?}");
    }

    // The same request key through both stores: written once.
    let make = || AppendRequest {
        idempotency_key: Some("once".into()),
        fingerprint: [5; 32],
        ..request(vec![event("login", T0)])
    };
    let (x, y) = tokio::join!(stores[0].append(a, make()), stores[1].append(a, make()));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.receipts, y.receipts);
    assert!(x.replayed != y.replayed, "one wrote, the other replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_stops_at_its_cap() {
    // A budget no busy machine runs out of: this test is about the cap.
    let (_db, url) = common::TestDatabase::create().await;
    let options = PgOptions {
        count_budget: std::time::Duration::from_secs(30),
        ..common::test_options()
    };
    let store = PgStore::connect(&url, options).await.unwrap();
    let org = store.create_org("a").await.unwrap().key;
    for chunk in 0..11 {
        let events: Vec<NewEvent> = (0..1000)
            .map(|i| event("create", T0 + chunk * 1000 + i))
            .collect();
        store.append(org, request(events)).await.unwrap();
    }
    assert_eq!(
        store.count(org, &everyone()).await.unwrap(),
        (10_000, false)
    );
    let recent = EventFilter {
        from: Some(T0 + 10_500),
        ..everyone()
    };
    assert_eq!(store.count(org, &recent).await.unwrap(), (500, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_postgres_cannot_store_is_refused_alone() {
    let (store, _db, _url) = common::fresh_store().await;
    let org = store.create_org("a").await.unwrap().key;
    let mut bad = event("create", T0);
    bad.description = Some("nul \0 here".into());
    let (refused, fine) = tokio::join!(
        store.append(org, request(vec![bad])),
        store.append(org, request(vec![event("update", T0)])),
    );
    assert!(matches!(refused, Err(StoreError::Other(_))), "{refused:?}");
    assert_eq!(fine.unwrap().receipts[0].seq, 1);
    // A filter with such a value matches nothing, and is no error.
    let filter = EventFilter {
        q: Some("\0".into()),
        ..everyone()
    };
    assert_eq!(store.count(org, &filter).await.unwrap(), (0, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_runs_no_migration_twice_and_keeps_the_data() {
    let (store, _db, url) = common::fresh_store().await;
    let org = store.create_org("a").await.unwrap().key;
    store
        .append(org, request(vec![event("create", T0)]))
        .await
        .unwrap();
    drop(store);
    let again = PgStore::connect(&url, common::test_options())
        .await
        .unwrap();
    assert_eq!(again.find_org("a").await.unwrap().key, org);
    let next = again
        .append(org, request(vec![event("update", T0)]))
        .await
        .unwrap();
    assert_eq!(next.receipts[0].seq, 2);
    let versions: Vec<i32> = common::raw_client(&url)
        .await
        .query(
            "SELECT version FROM stele_schema_version ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
}

/// The partition (table name) each entry of the database lives in, by `seq`.
async fn partition_of_each_entry(sql: &tokio_postgres::Client) -> Vec<(i64, String)> {
    sql.query(
        "SELECT seq, tableoid::regclass::text FROM entries ORDER BY seq",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_live_in_monthly_partitions_made_ahead_and_on_demand() {
    let (store, _db, url) = common::fresh_store().await;
    let sql = common::raw_client(&url).await;
    let partitions = |table: &'static str| {
        let sql = &sql;
        async move {
            sql.query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = $1::text::regclass ORDER BY 1",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
        }
    };

    // Opening the store made this month and the next two, for both partitioned tables.
    let now = chrono::Utc::now();
    let this_month = format!("entries_p{}", now.format("%Y%m"));
    let made = partitions("entries").await;
    assert_eq!(made.len(), 3, "{made:?}");
    assert_eq!(made[0], this_month);
    assert_eq!(partitions("entry_keys").await.len(), 3);

    // A backfill from 2019 and an entry of today: the old month is made when it is needed, and
    // each entry is stored in its own month's partition.
    let org = store.create_org("a").await.unwrap().key;
    let march_2019 = 1_552_000_000_000; // 2019-03-07
    let today = stele_core::time::now_millis();
    store
        .append(
            org,
            request(vec![event("create", march_2019), event("update", today)]),
        )
        .await
        .unwrap();
    assert_eq!(
        partition_of_each_entry(&sql).await,
        vec![(1, "entries_p201903".to_string()), (2, this_month.clone())]
    );
    assert!(
        partitions("entry_keys")
            .await
            .contains(&"entry_keys_p201903".to_string())
    );
    // Every partition keeps the parent's guards: row triggers are copied by PostgreSQL, the
    // TRUNCATE trigger by the store.
    for statement in [
        "DELETE FROM entries_p201903".to_string(),
        format!("UPDATE {this_month} SET action = 'x'"),
        "TRUNCATE entries_p201903".to_string(),
    ] {
        let error = sql.batch_execute(&statement).await.expect_err(&statement);
        assert!(
            error.as_db_error().unwrap().message().contains("immutable"),
            "{statement}: {error:?}"
        );
    }

    // A query for recent entries is planned over the recent partition only.
    let plan: Vec<String> = sql
        .query(
            &format!(
                "EXPLAIN SELECT pk FROM entries WHERE org_id = {org} AND pk >= {}
                 ORDER BY pk DESC LIMIT 50",
                today << 21
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains(&this_month), "{plan}");
    assert!(!plan.contains("entries_p2019"), "{plan}");

    // And the trail reads and verifies across partitions as one.
    let page = first_page(&store, org, 50).await;
    assert_eq!(page.entries.len(), 2);
    assert!(store.verify(org, None).await.unwrap().ok);
}
