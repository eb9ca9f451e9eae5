//! What the conformance suite cannot see from the trait: the database's own refusals, tampering
//! found by `verify`, two stores (two writers) sharing one database, the count cap, and values
//! PostgreSQL cannot store.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use stele_core::checkpoint::SigningKey;
use stele_core::filter::EventFilter;
use stele_core::{ActorType, NewEvent, Seq};
use stele_store::conformance::{TEST_SIGNING_SEED, event, request};
use stele_store::prelude::*;
use stele_store::{AppendRequest, Cutoffs, OrgKey, ProblemKind, Store, StoreError};
use stele_store_postgres::{PgOptions, PgStore};

const T0: i64 = 1_767_225_600_000;

fn everyone() -> EventFilter {
    EventFilter {
        actor_types: ActorType::ALL.to_vec(),
        ..EventFilter::default()
    }
}

/// The newest `limit` entries of every actor type.
async fn first_page(store: &dyn Store, org: OrgKey, limit: usize) -> stele_store::Page {
    let request = stele_core::params::PageRequest {
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
    org_a_with(&store, vec![event("create", T0)]).await;
    store.checkpoint_now().await.unwrap();
    let sql = common::raw_client(&url).await;
    for statement in [
        "UPDATE entries SET description = 'rewritten'",
        "UPDATE entries SET personal = '{}', erased = true, occurred_ms = occurred_ms + 1",
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

async fn six_entries(store: &PgStore) -> OrgKey {
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
    assert_eq!(
        (problem.seq, problem.kind),
        (Seq::new(4), ProblemKind::Changed)
    );
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
    assert_eq!(
        (problem.seq, problem.kind),
        (Seq::new(2), ProblemKind::Reordered)
    );

    let (store, _db2, url) = common::fresh_store().await;
    let org = six_entries(&store).await;
    tamper(&url, "DELETE FROM entries WHERE seq = 3").await;
    let problem = store.verify(org, None).await.unwrap().problem.unwrap();
    assert_eq!(
        (problem.seq, problem.kind),
        (Seq::new(3), ProblemKind::Missing)
    );

    let (store, _db3, url) = common::fresh_store().await;
    let org = six_entries(&store).await;
    tamper(&url, "DELETE FROM entries WHERE seq = 6").await;
    let problem = store.verify(org, None).await.unwrap().problem.unwrap();
    assert_eq!(
        (problem.seq, problem.kind),
        (Seq::new(6), ProblemKind::Missing),
        "the last entry, covered by a checkpoint and by chain_state"
    );
}

/// A verification reads 10,000 rows at a time, checks each read in two halves side by side
/// and reads the next while it checks (`integrity::verify`): a change is still found at its
/// `seq` in either half of the first read, in a read made ahead, and past entries retention
/// pruned (where no read is made ahead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_read_ahead_in_halves_names_each_change_at_its_seq() {
    let (store, _db, url) = common::fresh_store().await;
    let org = store.create_org("a").await.unwrap().key;
    for thousand in 0..23 {
        let events = (0..1000)
            .map(|i| event("create", T0 + thousand * 1000 + i))
            .collect();
        store.append(org, request(events)).await.unwrap();
    }
    store.checkpoint_now().await.unwrap();
    let key = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    let report = store.verify(org, Some(&key)).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.entries, report.checkpoints), (23_000, 1));

    let shift = |seq: i64, by: i64| {
        let url = url.clone();
        async move {
            tamper(
                &url,
                &format!("UPDATE entries SET occurred_ms = occurred_ms + {by} WHERE seq = {seq}"),
            )
            .await
        }
    };
    // The first read's halves, the second read's (made ahead), the last read's short tail.
    for seq in [3_000, 7_500, 16_000, 22_999] {
        shift(seq, 1).await;
        let problem = store.verify(org, None).await.unwrap().problem.unwrap();
        assert_eq!(
            (problem.kind, problem.seq),
            (ProblemKind::Changed, Seq::new(seq))
        );
        shift(seq, -1).await;
    }
    assert!(store.verify(org, Some(&key)).await.unwrap().ok);

    let cutoffs = Cutoffs {
        default: Some(T0 + 3_000),
        channels: Default::default(),
    };
    assert_eq!(prune_all(&store, org, &cutoffs, 1_000).await, 3_000);
    let report = store.verify(org, Some(&key)).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.entries, report.pruned_entries), (20_000, 3_000));
    shift(9_000, 1).await;
    let problem = store.verify(org, None).await.unwrap().problem.unwrap();
    assert_eq!(
        (problem.kind, problem.seq),
        (ProblemKind::Changed, Seq::new(9_000))
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
        let seqs: Vec<i64> = page.entries.iter().map(|e| e.seq.get()).collect();
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
    assert_eq!(fine.unwrap().receipts[0].seq, Seq::new(1));
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
    let org = org_a_with(&store, vec![event("create", T0)]).await;
    drop(store);
    let again = PgStore::connect(&url, common::test_options())
        .await
        .unwrap();
    assert_eq!(again.find_org("a").await.unwrap().key, org);
    let next = again
        .append(org, request(vec![event("update", T0)]))
        .await
        .unwrap();
    assert_eq!(next.receipts[0].seq, Seq::new(2));
    let versions: Vec<i32> = first_column(
        &common::raw_client(&url).await,
        "SELECT version FROM stele_schema_version ORDER BY version",
        &[],
    )
    .await;
    assert_eq!(versions, (1..=18).collect::<Vec<i32>>());
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
    let partitions = |table: &'static str| partitions_of(&sql, table);

    // Opening the store made this month and the next two, for both partitioned tables.
    let now = chrono::Utc::now();
    let this_month = format!("entries_p{}", now.format("%Y%m"));
    let made = partitions("entries").await;
    assert_eq!(made.len(), 3, "{made:?}");
    assert_eq!(made[0], this_month);
    assert_eq!(partitions("entry_keys").await.len(), 3);

    // A backfill from 2019 and an entry of today: the old month is made when it is needed, and
    // each entry is stored in its own month's partition.
    let march_2019 = 1_552_000_000_000; // 2019-03-07
    let today = stele_core::time::now_millis();
    let org = org_a_with(
        &store,
        vec![event("create", march_2019), event("update", today)],
    )
    .await;
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

    // Every month's `entries`, made ahead or on demand, leaves the wide columns no query filters
    // on out of `ANALYZE` (migration 16 and partitions.rs), and keeps statistics of the rest.
    let targets: Vec<String> = first_column(
        &sql,
        "SELECT c.relname || '.' || a.attname || '=' || a.attstattarget
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_inherits i ON i.inhrelid = c.oid
         WHERE i.inhparent = 'entries'::regclass
           AND a.attname IN ('body', 'personal', 'salt', 'personal_digest', 'hash', 'action')
         ORDER BY 1",
        &[],
    )
    .await;
    assert_eq!(targets.len(), 4 * 6, "{targets:?}");
    for target in &targets {
        let skipped = !target.contains(".action=");
        assert_eq!(target.ends_with("=0"), skipped, "{targets:?}");
    }

    // A query for recent entries is planned over the recent partition only.
    let plan: Vec<String> = first_column(
        &sql,
        &format!(
            "EXPLAIN SELECT pk FROM entries WHERE org_id = {org} AND pk >= {}
                 ORDER BY pk DESC LIMIT 50",
            today << 21
        ),
        &[],
    )
    .await;
    let plan = plan.join("\n");
    assert!(plan.contains(&this_month), "{plan}");
    assert!(!plan.contains("entries_p2019"), "{plan}");

    // And the trail reads and verifies across partitions as one.
    let page = first_page(&store, org, 50).await;
    assert_eq!(page.entries.len(), 2);
    assert!(store.verify(org, None).await.unwrap().ok);
}

// --- retention ---------------------------------------------------------------------------------

/// 2019-01-09, 2019-03-07 and 2019-05-04: months long gone, for backfills.
const JAN_2019: i64 = 1_547_000_000_000;
const MARCH_2019: i64 = 1_552_000_000_000;
const MAY_2019: i64 = 1_557_000_000_000;
/// 2020-01-01: everything before it expires under [`before_2020`].
const START_2020: i64 = 1_577_836_800_000;

fn before_2020() -> Cutoffs {
    Cutoffs {
        default: Some(START_2020),
        channels: Default::default(),
    }
}

/// Reads and prunes, in batches of `batch`, everything `cutoffs` expires; returns how many went.
async fn prune_all(store: &dyn Store, org: OrgKey, cutoffs: &Cutoffs, batch: usize) -> u64 {
    let mut removed = 0;
    let mut resume_after = 0;
    loop {
        let expired = store
            .expired_entries(org, cutoffs, resume_after, batch)
            .await
            .unwrap();
        if expired.entries.is_empty() {
            return removed;
        }
        resume_after = expired.resume_after;
        let seqs: Vec<Seq> = expired.entries.iter().map(|r| r.entry.seq).collect();
        let per_channel = store.prune_entries(org, cutoffs, &seqs).await.unwrap();
        removed += per_channel.values().sum::<u64>();
    }
}

/// The partitions of a partitioned table, by name.
/// Creates organization `a` and appends `events` to it in one request; returns its key.
async fn org_a_with(store: &PgStore, events: Vec<NewEvent>) -> OrgKey {
    let org = store.create_org("a").await.unwrap().key;
    store.append(org, request(events)).await.unwrap();
    org
}

/// Whether `table` has the partition `name`.
async fn has_partition(sql: &tokio_postgres::Client, table: &str, name: &str) -> bool {
    partitions_of(sql, table).await.contains(&name.to_string())
}

/// The first column of every row `query` returns with these parameters.
async fn first_column<T>(
    sql: &tokio_postgres::Client,
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    sql.query(query, params)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The names of `table`'s partitions, sorted.
async fn partitions_of(sql: &tokio_postgres::Client, table: &str) -> Vec<String> {
    first_column(
        sql,
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::text::regclass ORDER BY 1",
        &[&table],
    )
    .await
}

/// Runs `statements` and returns the database's message if it refused them (after rolling back
/// whatever transaction they left open).
async fn refusal(sql: &tokio_postgres::Client, statements: &str) -> Option<String> {
    let result = sql.batch_execute(statements).await;
    sql.batch_execute("ROLLBACK").await.unwrap();
    result.err().map(|e| {
        e.as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string())
    })
}

/// Opens what the delete trigger looks for, as a retention run does: the organization and the
/// `pk` bound, as settings local to the transaction.
fn retention_of(org: OrgKey, below_pk: i64) -> String {
    format!(
        "BEGIN; SELECT set_config('stele.retention_org', '{org}', true),
                       set_config('stele.retention_below_pk', '{below_pk}', true);"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_entry_takes_a_retention_run_of_its_organization() {
    let (store, _db, url) = common::fresh_store().await;
    let a = store.create_org("a").await.unwrap().key;
    let b = store.create_org("b").await.unwrap().key;
    for org in [a, b] {
        store
            .append(
                org,
                request(vec![event("old", MARCH_2019), event("new", T0)]),
            )
            .await
            .unwrap();
    }
    let below = START_2020 << 21;
    let sql = common::raw_client(&url).await;
    let immutable = Some("audit entries are immutable".to_string());

    // Outside a retention run nothing goes, through the parent or a partition.
    for statement in [
        "DELETE FROM entries".to_string(),
        format!("DELETE FROM entries WHERE org_id = {a} AND pk < {below}"),
        "DELETE FROM entries_p201903".to_string(),
        "BEGIN; DELETE FROM entries_p201903".to_string(),
    ] {
        assert_eq!(refusal(&sql, &statement).await, immutable, "{statement}");
    }
    // Inside one, only the old entries of the organization it names.
    for (what, statement) in [
        (
            "another organization's",
            format!("DELETE FROM entries WHERE org_id = {b}"),
        ),
        (
            "another organization's, in its partition",
            format!("DELETE FROM entries_p201903 WHERE org_id = {b}"),
        ),
        (
            "a newer one",
            format!("DELETE FROM entries WHERE org_id = {a} AND pk >= {below}"),
        ),
        ("all of them", "DELETE FROM entries".to_string()),
    ] {
        let statements = format!("{}{statement}", retention_of(a, below));
        assert_eq!(refusal(&sql, &statements).await, immutable, "{what}");
    }
    for malformed in [
        "BEGIN; SELECT set_config('stele.retention_org', 'x', true),
                       set_config('stele.retention_below_pk', '1', true);",
        "BEGIN; SELECT set_config('stele.retention_org', '1', true),
                       set_config('stele.retention_below_pk', 'all', true);",
    ] {
        let statements = format!("{malformed} DELETE FROM entries");
        assert_eq!(refusal(&sql, &statements).await, immutable, "{malformed}");
    }
    let statements = format!(
        "{} DELETE FROM entries_p201903 WHERE org_id = {a}; COMMIT",
        retention_of(a, below)
    );
    assert_eq!(
        refusal(&sql, &statements).await,
        None,
        "the organization's old entry"
    );
    // The settings ended with that transaction.
    assert_eq!(
        refusal(
            &sql,
            &format!("DELETE FROM entries WHERE org_id = {b} AND pk < {below}")
        )
        .await,
        immutable
    );
    let left: Vec<(OrgKey, i64)> = sql
        .query("SELECT org_id, seq FROM entries ORDER BY org_id, seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (OrgKey::new(r.get(0)), r.get(1)))
        .collect();
    assert_eq!(left, [(a, 2), (b, 1), (b, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_guards_partitions_made_before_it() {
    let (_db, url) = common::TestDatabase::create().await;
    common::migrate_to_version(&url, 2).await.unwrap();
    let sql = common::raw_client(&url).await;
    // A month made by the previous version (as partitions.rs makes one).
    let (lo, hi) = (
        1_546_300_800_000_i64 << 21, // 2019-01-01
        1_548_979_200_000_i64 << 21, // 2019-02-01
    );
    sql.batch_execute(&format!(
        "CREATE TABLE entries_p201901 (LIKE entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
         ALTER TABLE entries ATTACH PARTITION entries_p201901 FOR VALUES FROM ({lo}) TO ({hi});"
    ))
    .await
    .unwrap();

    let store = PgStore::connect(&url, common::test_options())
        .await
        .unwrap();
    let functions: Vec<(String, String)> = sql
        .query(
            "SELECT tgrelid::regclass::text, tgfoid::regproc::text FROM pg_trigger
             WHERE tgname = 'entries_undeletable' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(functions.len() > 2, "{functions:?}");
    assert!(
        functions.iter().all(|(_, f)| f == "stele_entries_delete"),
        "every partition, the old one included, has the new guard: {functions:?}"
    );

    let org = org_a_with(&store, vec![event("old", JAN_2019), event("new", T0)]).await;
    assert_eq!(
        refusal(&sql, "DELETE FROM entries_p201901")
            .await
            .as_deref(),
        Some("audit entries are immutable")
    );
    assert_eq!(prune_all(&store, org, &before_2020(), 10).await, 1);
    assert!(store.verify(org, None).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_pruned_entries_leave_behind_cannot_be_changed_or_removed() {
    let (store, _db, url) = common::fresh_store().await;
    let org = org_a_with(&store, vec![event("old", MARCH_2019), event("new", T0)]).await;
    assert_eq!(prune_all(&store, org, &before_2020(), 10).await, 1);
    let sql = common::raw_client(&url).await;
    let left: i64 = sql
        .query_one("SELECT count(*) FROM pruned_entries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1);
    for statement in [
        "UPDATE pruned_entries SET hash = '\\x00'",
        "UPDATE pruned_entries SET seq = seq + 1",
        "DELETE FROM pruned_entries",
        "TRUNCATE pruned_entries",
    ] {
        assert_eq!(
            refusal(&sql, statement).await.as_deref(),
            Some("the chain only moves forward"),
            "{statement}"
        );
    }
    // Nor can a place be claimed twice.
    let error = refusal(
        &sql,
        &format!("INSERT INTO pruned_entries VALUES ({org}, 1, '\\x00')"),
    )
    .await
    .unwrap();
    assert!(error.contains("duplicate key"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_a_month_empty_drops_its_partitions_and_a_backfill_makes_them_again() {
    let (store, _db, url) = common::fresh_store().await;
    let sql = common::raw_client(&url).await;
    let a = store.create_org("a").await.unwrap().key;
    let b = store.create_org("b").await.unwrap().key;
    let march: Vec<NewEvent> = (0..30).map(|i| event("old", MARCH_2019 + i)).collect();
    store
        .append(a, request([march.clone(), vec![event("new", T0)]].concat()))
        .await
        .unwrap();
    store
        .append(b, request(vec![event("old", MARCH_2019 + 100)]))
        .await
        .unwrap();
    assert!(has_partition(&sql, "entries", "entries_p201903").await);

    // One organization's entries go; the other's keep the month.
    let key = SigningKey::from_seed(TEST_SIGNING_SEED).public_key();
    store.checkpoint_now().await.unwrap();
    assert_eq!(prune_all(&store, a, &before_2020(), 7).await, 30);
    assert!(has_partition(&sql, "entries", "entries_p201903").await);
    let keys: i64 = sql
        .query_one(
            &format!("SELECT count(*) FROM entry_keys WHERE org_id = {a}"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        keys, 2,
        "only the identifier rows of the entry kept are left"
    );

    // The last one goes, and so does the month, in both partitioned tables (and only it).
    let before = [
        partitions_of(&sql, "entries").await,
        partitions_of(&sql, "entry_keys").await,
    ];
    assert_eq!(prune_all(&store, b, &before_2020(), 7).await, 1);
    for (table, before) in ["entries", "entry_keys"].into_iter().zip(before) {
        let expected: Vec<String> = before
            .into_iter()
            .filter(|p| !p.ends_with("_p201903"))
            .collect();
        assert_eq!(partitions_of(&sql, table).await, expected);
    }
    let report = store.verify(a, Some(&key)).await.unwrap();
    assert!(report.ok && report.pruned_entries == 30, "{report:?}");

    // A backfill into that month: this process forgot it, so it makes it again.
    let again = store
        .append(a, request(vec![event("late", MARCH_2019 + 5)]))
        .await
        .unwrap();
    assert_eq!(again.receipts[0].seq, Seq::new(32));
    assert_eq!(
        sql.query_one(
            "SELECT tableoid::regclass::text FROM entries WHERE seq = 32",
            &[]
        )
        .await
        .unwrap()
        .get::<_, String>(0),
        "entries_p201903"
    );
    assert!(has_partition(&sql, "entry_keys", "entry_keys_p201903").await);
    store.checkpoint_now().await.unwrap();
    let report = store.verify(a, Some(&key)).await.unwrap();
    assert!(report.ok && report.entries == 2, "{report:?}");
}

/// Another process that still believes in a month retention dropped: its writer finds no
/// partition for the row, forgets the month, and makes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_another_process_dropped_is_made_again_on_backfill() {
    let (pruner, _db, url) = common::fresh_store().await;
    let writer = PgStore::connect(&url, common::test_options())
        .await
        .unwrap();
    let org = pruner.create_org("a").await.unwrap().key;
    writer
        .append(org, request(vec![event("old", MAY_2019), event("new", T0)]))
        .await
        .unwrap();
    assert_eq!(prune_all(&pruner, org, &before_2020(), 10).await, 1);
    let sql = common::raw_client(&url).await;
    assert!(!has_partition(&sql, "entries", "entries_p201905").await);

    let late = writer
        .append(org, request(vec![event("late", MAY_2019 + 1)]))
        .await
        .expect("the writer makes the dropped month again");
    assert_eq!(late.receipts[0].seq, Seq::new(3));
    assert!(has_partition(&sql, "entries", "entries_p201905").await);
    assert!(pruner.verify(org, None).await.unwrap().ok);
}

/// Dropping a month waits only briefly for its locks; a month left behind is dropped by a later
/// run, even one that prunes nothing in that month.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_in_use_is_left_for_a_later_run() {
    let (store, _db, url) = common::fresh_store().await;
    let org = org_a_with(&store, vec![event("old", MARCH_2019), event("new", T0)]).await;
    let sql = common::raw_client(&url).await;
    let reader = common::raw_client(&url).await;
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM entries")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(prune_all(&store, org, &before_2020(), 10).await, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "it did not wait for the reader"
    );
    assert!(has_partition(&sql, "entries", "entries_p201903").await);
    reader.batch_execute("COMMIT").await.unwrap();

    // The next run prunes in another month only. The emptied month is found through the
    // statistics, which the server publishes within seconds.
    store
        .append(org, request(vec![event("old", MAY_2019)]))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sql
        .query_one(
            "SELECT coalesce(n_live_tup, 1) FROM pg_stat_user_tables
             WHERE relname = 'entries_p201903'",
            &[],
        )
        .await
        .map_or(1, |r| r.get::<_, i64>(0))
        != 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "statistics never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(prune_all(&store, org, &before_2020(), 10).await, 1);
    let left = partitions_of(&sql, "entries").await;
    assert!(
        !left
            .iter()
            .any(|p| p == "entries_p201903" || p == "entries_p201905"),
        "{left:?}"
    );
    assert!(store.verify(org, None).await.unwrap().ok);
}

/// An erasure that meets a retention run removing one of the person's entries: it waits for the
/// run, then pseudonymises only what is still there, and neither lists nor indexes the entry
/// that went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_leaves_out_an_entry_retention_removes_meanwhile() {
    let (store, _db, url) = common::fresh_store().await;
    let store = Arc::new(store);
    let org = org_a_with(&store, vec![event("old", MARCH_2019), event("new", T0)]).await;
    let old_pk: i64 = common::raw_client(&url)
        .await
        .query_one("SELECT pk FROM entries WHERE seq = 1", &[])
        .await
        .unwrap()
        .get(0);

    // A retention run in the middle of removing entry 1, as `prune_entries` does it.
    let run = common::raw_client(&url).await;
    run.batch_execute(&format!(
        "{} INSERT INTO pruned_entries SELECT org_id, seq, hash FROM entries WHERE pk = {old_pk};
         DELETE FROM entry_keys WHERE org_id = {org} AND pk = {old_pk};
         DELETE FROM entries WHERE pk = {old_pk};",
        retention_of(org, START_2020 << 21)
    ))
    .await
    .unwrap();

    let erasing = tokio::spawn({
        let store = store.clone();
        async move {
            let pseudonym = "erased-0123456789abcdef".to_string();
            let record =
                stele_core::chain::erasure_record(&pseudonym, None, stele_core::time::now_millis());
            store
                .erase_person(
                    org,
                    stele_store::Erasure {
                        person: stele_core::erase::Person {
                            id: Some("u1".into()),
                            ..Default::default()
                        },
                        pseudonym,
                        record,
                        salt: [3; 16],
                    },
                )
                .await
                .unwrap()
        }
    });
    // Once the erasure waits for the run's row lock, the run commits.
    let watcher = common::raw_client(&url).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the erasure never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    run.batch_execute("COMMIT").await.unwrap();

    let outcome = erasing.await.unwrap();
    assert_eq!(outcome.erased_entries, 1);
    let record = store.get(org, &outcome.record.id).await.unwrap().unwrap();
    assert_eq!(record.event.entity_ids, ["2"]);
    let keys: i64 = watcher
        .query_one(
            &format!("SELECT count(*) FROM entry_keys WHERE pk = {old_pk}"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 0, "no identifier row for the entry that went");
    assert!(store.verify(org, None).await.unwrap().ok);
}

/// How long pruning 100,000 entries spread over most of a year takes, in batches of 5,000 (read the
/// batch, then prune it), with nothing else running. A measurement, not a check:
/// `cargo test -p stele-store-postgres --test postgres -- --ignored --nocapture pruning_100k`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn pruning_100k_entries_in_batches_of_5000() {
    let (store, _db, _url) = common::fresh_store().await;
    let org = store.create_org("a").await.unwrap().key;
    const N: i64 = 100_000;
    // From 2019-01-09 to 2019-12-24: all before the cutoff, in twelve monthly partitions.
    let step = 350 * 24 * 3600 * 1000 / N;
    for chunk in 0..N / 5000 {
        let events: Vec<NewEvent> = (0..5000)
            .map(|i| event("old", JAN_2019 + (chunk * 5000 + i) * step))
            .collect();
        store.append(org, request(events)).await.unwrap();
    }
    store
        .append(org, request(vec![event("new", T0)]))
        .await
        .unwrap();
    store.checkpoint_now().await.unwrap();

    let cutoffs = before_2020();
    let (mut reading, mut pruning) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let started = std::time::Instant::now();
    let (mut removed, mut resume_after) = (0, 0);
    loop {
        let t = std::time::Instant::now();
        let expired = store
            .expired_entries(org, &cutoffs, resume_after, 5000)
            .await
            .unwrap();
        reading += t.elapsed();
        if expired.entries.is_empty() {
            break;
        }
        resume_after = expired.resume_after;
        let seqs: Vec<Seq> = expired.entries.iter().map(|r| r.entry.seq).collect();
        let t = std::time::Instant::now();
        removed += store
            .prune_entries(org, &cutoffs, &seqs)
            .await
            .unwrap()
            .values()
            .sum::<u64>();
        pruning += t.elapsed();
    }
    let total = started.elapsed();
    assert_eq!(removed, N as u64);
    println!(
        "pruned {removed} entries in batches of 5000: {:.2} s in all \
         ({:.2} s reading the batches, {:.2} s pruning them)",
        total.as_secs_f64(),
        reading.as_secs_f64(),
        pruning.as_secs_f64()
    );
    let t = std::time::Instant::now();
    let report = store.verify(org, None).await.unwrap();
    println!("verify afterwards: {:.2} s", t.elapsed().as_secs_f64());
    assert!(report.ok && report.pruned_entries == N as u64, "{report:?}");
}

/// Migration 9 splits people off members: a database of migration 8 with members and live
/// sessions keeps all of them, each member becoming a person of their own, and new people get
/// keys after the migrated ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_split_off_members_and_live_sessions_survive() {
    let (_db, url) = common::TestDatabase::create().await;
    common::migrate_to_version(&url, 8).await.unwrap();
    let sql = common::raw_client(&url).await;
    sql.batch_execute(
        "INSERT INTO orgs (key, id, name, created_ms) VALUES
             (101, 'org_a', 'a', 1), (102, 'org_b', 'b', 1);
         INSERT INTO members (id, org_key, email, email_key, name, role, password_hash,
                              created_ms, disabled) VALUES
             ('mem_ada', 101, 'Ada@Example.com', 'ada@example.com', 'Ada', 'owner',
              '$argon2id$ada', 10, false),
             ('mem_bob', 102, 'bob@example.com', 'bob@example.com', NULL, 'auditor',
              '$argon2id$bob', 20, true);
         INSERT INTO sessions (token_hash, member_key, created_ms, expires_ms, last_seen_ms)
         SELECT decode(repeat(n, 32), 'hex'), key, 100, 9000000000000, 100
         FROM members JOIN (VALUES ('mem_ada', '01'), ('mem_bob', '02')) AS t (id, n) USING (id);",
    )
    .await
    .unwrap();

    let store = PgStore::connect(&url, common::test_options())
        .await
        .unwrap();
    let ada = store.memberships_by_email("ada@example.com").await.unwrap();
    assert_eq!(ada.len(), 1);
    let ada = &ada[0];
    assert_eq!(
        (
            ada.id.as_str(),
            ada.org_id.as_str(),
            ada.email.as_str(),
            ada.name.as_deref(),
            ada.role.as_str(),
            ada.password_hash.as_str(),
            ada.created_at,
            ada.disabled
        ),
        (
            "mem_ada",
            "org_a",
            "Ada@Example.com",
            Some("Ada"),
            "owner",
            "$argon2id$ada",
            10,
            false
        )
    );
    let session = store
        .session(&stele_store::SessionHash([1; 32]), 200)
        .await
        .unwrap()
        .expect("the live session survived");
    assert_eq!(session.member.id, "mem_ada");
    assert_eq!(
        store
            .session(&stele_store::SessionHash([2; 32]), 200)
            .await
            .unwrap(),
        None,
        "bob is still disabled"
    );
    // A new person after the migrated ones (the identity continues past the copied keys), who
    // can join a migrated person's organization.
    let new = store
        .create_member(
            ada.org,
            stele_store::NewMember {
                email: "cy@example.com".into(),
                name: None,
                role: "member".into(),
                password_hash: "$argon2id$cy".into(),
                created_at: 300,
            },
        )
        .await
        .unwrap();
    assert_eq!(new.password_hash, "$argon2id$cy");
    let bob_in_a = store
        .create_member(
            ada.org,
            stele_store::NewMember {
                email: "BOB@example.com".into(),
                name: None,
                role: "member".into(),
                password_hash: "$argon2id$ignored".into(),
                created_at: 300,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (bob_in_a.email.as_str(), bob_in_a.password_hash.as_str()),
        ("bob@example.com", "$argon2id$bob")
    );
}

/// After an erasure and a redaction (whose clean-up rewrites the partitions that held the old
/// rows and forces a checkpoint), no relation file of the database (the tables, their indexes,
/// their TOAST) holds an erased value: PostgreSQL keeps old row versions in its heap until they
/// are overwritten, whatever a plain `VACUUM` does (issue 17). Reads the files under the server's
/// data directory, so the test runs as a user who may (CI runs as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_relation_file_holds_an_erased_or_redacted_value_after_the_clean_up() {
    let (store, _db, url) = common::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let gone = stele_store::conformance::erase_a_person_from_a_realistic_trail(&store).await;
    assert_no_relation_file_holds(&url, &gone).await;
}

/// `VACUUM (FULL)` copies every row version that some transaction may still see, so a
/// transaction that began before the erasure would keep the old values in the new files. The
/// clean-up waits for it to end before it rewrites: here a snapshot in this database (a long
/// export, a report, the server's own `ANALYZE`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_up_waits_for_an_older_snapshot_of_this_database() {
    let (store, _db, url) = common::fresh_store().await;
    erase_while_a_transaction_runs(
        store,
        &url,
        &url,
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1",
    )
    .await;
}

/// The same for a transaction of another database that has written: the server's horizon for
/// every table takes in the oldest running transaction, whatever its database (CI's parallel
/// tests, each on its own database, found this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_up_waits_for_an_older_writing_transaction_of_another_database() {
    let (store, _db, url) = common::fresh_store().await;
    erase_while_a_transaction_runs(
        store,
        &url,
        &common::admin_url(),
        "BEGIN; SELECT pg_current_xact_id()",
    )
    .await;
}

/// Runs `begin` on a connection to `holder_url` (a transaction that touches none of the trail's
/// tables, so no lock makes the rewrite wait for it), erases a person from a realistic trail,
/// ends the transaction half a second after the erasure is recorded (its clean-up is waiting by
/// then), and scans the files.
async fn erase_while_a_transaction_runs(store: PgStore, url: &str, holder_url: &str, begin: &str) {
    let store: Arc<dyn Store> = Arc::new(store);
    let holder = common::raw_client(holder_url).await;
    holder.batch_execute(begin).await.unwrap();
    let watcher = common::raw_client(url).await;
    let release = tokio::spawn(async move {
        for attempt in 0.. {
            let recorded = watcher
                .query_opt(
                    "SELECT 1 FROM entries WHERE detailed_action = 'stele.erasure'",
                    &[],
                )
                .await
                .unwrap();
            if recorded.is_some() {
                break;
            }
            assert!(attempt < 2400, "no erasure recorded after two minutes");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        holder.batch_execute("COMMIT").await.unwrap();
    });
    let gone = stele_store::conformance::erase_a_person_from_a_realistic_trail(&store).await;
    release.await.unwrap();
    assert_no_relation_file_holds(url, &gone).await;
}

/// A transaction older than a redaction that runs longer than the clean-up may wait: the
/// redaction stands (it committed and is recorded), the answer says why the old value is still
/// in the files, and the store's upkeep removes it once that transaction ends, without another
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upkeep_finishes_a_clean_up_that_older_transactions_held_up() {
    let (_db, url) = common::TestDatabase::create().await;
    let options = PgOptions {
        cleanup_wait: std::time::Duration::from_millis(200),
        ..common::test_options()
    };
    let store = PgStore::connect(&url, options).await.unwrap();
    let org = store.create_org("a").await.unwrap().key;
    let mut secret = event("update", T0);
    secret.changes = vec![stele_core::Change {
        field: "access_code".into(),
        old: None,
        new: Some(serde_json::json!("K9-SECRET-3310")),
    }];
    let mut plain = event("update", T0 + 1);
    plain.description = Some("it@example.com kept".into());
    let receipts = store
        .append(org, request(vec![secret, plain]))
        .await
        .unwrap()
        .receipts;
    let reader = common::raw_client(&url).await;
    reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .unwrap();
    let id = receipts[0].id.clone();
    let fields = vec!["changes.access_code".to_string()];
    let answer = store
        .redact(
            org,
            stele_store::Redaction {
                id: id.clone(),
                fields: fields.clone(),
                record: stele_core::chain::redaction_record(
                    &id,
                    &fields,
                    None,
                    stele_core::Actor::of_kind(ActorType::System),
                    T0 + 2,
                ),
                salt: [7; 16],
            },
        )
        .await;
    match answer {
        Err(StoreError::CleanupPending(why)) => {
            assert!(why.contains("transactions that began before it"), "{why}")
        }
        other => panic!("expected the clean-up to wait, got {other:?}"),
    }
    let entry = store.get(org, &id).await.unwrap().unwrap();
    assert_eq!(
        entry.event.changes[0].new,
        Some(serde_json::json!("[REDACTED]"))
    );
    reader.batch_execute("COMMIT").await.unwrap();
    let sql = common::raw_client(&url).await;
    for attempt in 0.. {
        let pending: i64 = sql
            .query_one("SELECT count(*) FROM pending_cleanups", &[])
            .await
            .unwrap()
            .get(0);
        if pending == 0 {
            break;
        }
        assert!(
            attempt < 300,
            "the upkeep left the clean-up pending for 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_no_relation_file_holds(&url, &["K9-SECRET-3310".to_string()]).await;
    assert!(store.verify(org, None).await.unwrap().ok);
}

/// Reads every relation file of the test's database and fails naming the first that holds one
/// of `gone`; checks that the scan reads real content by finding a value nobody erased.
async fn assert_no_relation_file_holds(url: &str, gone: &[String]) {
    let sql = common::raw_client(url).await;
    // What the server holds in memory reaches the files (the clean-up forced this already; the
    // test does not rely on it).
    sql.batch_execute("CHECKPOINT").await.unwrap();
    let data_dir: String = sql
        .query_one("SELECT current_setting('data_directory')", &[])
        .await
        .unwrap()
        .get(0);
    let files: Vec<(String, String)> = sql
        .query(
            "SELECT c.relname::text, pg_relation_filepath(c.oid) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND c.relkind IN ('r', 'i', 't', 'm') AND pg_relation_filepath(c.oid) IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut scanned = 0;
    let mut kept_seen = false;
    for (relation, file) in &files {
        let base = std::path::Path::new(&data_dir).join(file);
        // A relation over 1 GB continues in FILE.1, FILE.2, …
        for segment in std::iter::once(base.clone())
            .chain((1..).map(|i| base.with_extension(i.to_string())))
            .take_while(|p| p.exists())
        {
            let bytes = std::fs::read(&segment)
                .unwrap_or_else(|e| panic!("reading {}: {e}", segment.display()));
            scanned += bytes.len();
            kept_seen |= bytes.windows(14).any(|w| w == b"it@example.com");
            for value in gone {
                assert!(
                    !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                    "{} ({relation}) holds {value:?}",
                    segment.display()
                );
            }
        }
    }
    // The scan reads what was written: a value nobody erased is there.
    assert!(
        kept_seen,
        "no file holds the kept value ({scanned} bytes scanned)"
    );
}

/// A database of schema 13 (no stored subtrees) gets them from the first process that opens it:
/// the same hashes the writer would have stored, and proofs equal to those of every leaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_older_than_the_stored_subtrees_get_theirs_at_connect() {
    let (_db, url) = common::TestDatabase::create().await;
    let (a, b) = {
        let store = PgStore::connect(&url, common::test_options())
            .await
            .unwrap();
        let a = store.create_org("a").await.unwrap().key;
        let b = store.create_org("b").await.unwrap().key;
        for (org, n) in [(a, 500), (b, 100), (a, 270)] {
            let events = (0..n)
                .map(|i| event("create", 1_767_225_600_000 + i))
                .collect();
            store.append(org, request(events)).await.unwrap();
        }
        store.shutdown().await.unwrap();
        (a, b)
    };
    let sql = common::raw_client(&url).await;
    let subtrees = "SELECT org_id, level, idx, hash FROM merkle_subtrees ORDER BY 1, 2, 3";
    let rows = |rows: Vec<tokio_postgres::Row>| -> Vec<(i64, i16, i64, Vec<u8>)> {
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    };
    let written = rows(sql.query(subtrees, &[]).await.unwrap());
    assert_eq!(
        written.len(),
        4,
        "770 entries of `a`: three of 256, one of 512"
    );
    // Back to schema 13, as the release before the table left it.
    sql.batch_execute(
        "DROP TABLE merkle_subtrees;
         DROP TABLE merkle_subtrees_to_fill;
         DROP TABLE verified_points;
         DROP TABLE streams;
         DROP TABLE stream_cursors;
         DELETE FROM stele_schema_version WHERE version >= 14;",
    )
    .await
    .unwrap();

    let store = PgStore::connect(&url, common::test_options())
        .await
        .unwrap();
    assert_eq!(rows(sql.query(subtrees, &[]).await.unwrap()), written);
    let left: i64 = sql
        .query_one("SELECT count(*) FROM merkle_subtrees_to_fill", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    let events = (0..300)
        .map(|i| event("update", 1_767_225_600_000 + i))
        .collect();
    store.append(a, request(events)).await.unwrap();
    stele_store::conformance::assert_proofs_match_every_leaf(&store, a, 770, 1070).await;
    assert!(store.verify(b, None).await.unwrap().ok);
    // Stored subtrees are guarded like the chain they summarise.
    for statement in [
        "UPDATE merkle_subtrees SET hash = '\\x00'",
        "DELETE FROM merkle_subtrees",
        "TRUNCATE merkle_subtrees",
    ] {
        assert_eq!(
            refusal(&sql, statement).await.as_deref(),
            Some("the chain only moves forward"),
            "{statement}"
        );
    }

    // Tampered with anyway (the guard dropped): `verify` finds it at the subtree's last entry.
    assert!(store.verify(a, None).await.unwrap().ok);
    sql.batch_execute(
        "DROP TRIGGER merkle_subtrees_immutable ON merkle_subtrees;
         UPDATE merkle_subtrees SET hash = '\\x00' WHERE level = 9 AND idx = 0;",
    )
    .await
    .unwrap();
    let problem = store.verify(a, None).await.unwrap().problem.unwrap();
    assert_eq!(
        (problem.kind, problem.seq),
        (ProblemKind::SubtreeMismatch, Seq::new(512))
    );
}
