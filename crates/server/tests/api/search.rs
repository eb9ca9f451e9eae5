use serde_json::{Value, json};

use crate::helpers::{TestApp, event, spawn_app};

fn at(e: &mut Value, occurred_at: &str) {
    e["occurred_at"] = json!(occurred_at);
}

/// A small, varied trail: seqs 1..=6 in time order.
async fn seeded() -> TestApp {
    let app = spawn_app().await;
    let mut login = event("login");
    login["channel"] = json!("auth");
    login["description"] = json!("Signed in from Firefox");
    login["context"] = json!({"ip": "10.0.0.1", "correlation_id": "req-1"});
    at(&mut login, "2026-01-01T08:00:00Z");

    let mut retry = event("update");
    retry["detailed_action"] = json!("printJob.retry");
    retry["entity"] = json!({"type": "PrintJob", "id": "job-7", "name": "Benchy"});
    retry["description"] = json!("Retried PRINT job Benchy");
    retry["context"] = json!({"correlation_id": "req-1"});
    at(&mut retry, "2026-01-02T09:00:00Z");

    let mut cancel = event("update");
    cancel["detailed_action"] = json!("printJob.cancel");
    cancel["entity"] = json!({"type": "PrintJob", "id": "job-8"});
    cancel["outcome"] = json!("failure");
    at(&mut cancel, "2026-01-02T23:59:59.999Z");

    let mut system = event("sync");
    system["actor"] = json!({"type": "system"});
    system["description"] = json!("Nightly sync");
    at(&mut system, "2026-01-03T00:00:00Z");

    let mut bulk = event("bulk_delete");
    bulk["actor"] = json!({"type": "api", "id": "key_ci"});
    bulk["entity"] = json!({"type": "PrintJob"});
    bulk["entity_ids"] = json!(["job-7", "job-9"]);
    at(&mut bulk, "2026-01-04T00:00:00Z");

    let mut rename = event("update");
    rename["detailed_action"] = json!("printer.rename");
    rename["actor"] = json!({"type": "user", "id": "u2", "email": "bob@example.com"});
    rename["entity"] = json!({"type": "Printer", "id": "job-7"});
    rename["description"] = json!("Größe geändert");
    at(&mut rename, "2026-01-05T00:00:00Z");

    app.record(vec![login, retry, cancel, system, bulk, rename])
        .await;
    app
}

#[tokio::test]
async fn the_list_is_newest_first_and_hides_system_actors_by_default() {
    let app = seeded().await;
    assert_eq!(app.seqs("").await, vec![6, 5, 3, 2, 1]);
    assert_eq!(app.seqs("actor_type=all").await, vec![6, 5, 4, 3, 2, 1]);
    assert_eq!(app.seqs("actor_type=system").await, vec![4]);
    assert_eq!(app.seqs("actor_type=api,system").await, vec![5, 4]);
}

#[tokio::test]
async fn every_filter_narrows_the_list() {
    let app = seeded().await;
    let cases: &[(&str, &[i64])] = &[
        ("action=update", &[6, 3, 2]),
        ("detailed_action=printJob.retry", &[2]),
        ("detailed_action=printJob.*", &[3, 2]),
        ("actor=bob@example.com", &[6]),
        ("actor=u1", &[3, 2, 1]),
        ("actor=key_ci", &[5]),
        ("entity_type=PrintJob", &[5, 3, 2]),
        ("entity_id=job-7", &[6, 5, 2]),
        ("entity_type=PrintJob&entity_id=job-7", &[5, 2]),
        ("channel=auth", &[1]),
        ("outcome=failure", &[3]),
        ("outcome=success", &[6, 5, 2, 1]),
        ("correlation_id=req-1", &[2, 1]),
        ("ip=10.0.0.1", &[1]),
        ("from=2026-01-02&to=2026-01-02", &[3, 2]),
        (
            "from=2026-01-02T09:00:00Z&to=2026-01-04T00:00:00Z",
            &[5, 3, 2],
        ),
        ("q=print", &[2]),
        ("q=GRÖSSE", &[]),
        ("q=größe", &[6]),
        ("q=sync&actor_type=all", &[4]),
        (
            "action=update&detailed_action=printJob.*&outcome=success",
            &[2],
        ),
        ("action=never_used", &[]),
    ];
    for (query, expected) in cases {
        assert_eq!(app.seqs(query).await, expected.to_vec(), "{query}");
    }
}

#[tokio::test]
async fn totals_are_exact_on_small_results() {
    let app = seeded().await;
    let page = app.get_json("/v1/events?action=update&limit=1").await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["total_exact"], true);
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn cursors_walk_older_and_back_newer_without_repeats_or_gaps() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..23)
        .map(|i| {
            let mut e = event("view");
            // Pairs share a timestamp so the tie-break by seq is exercised.
            e["occurred_at"] = json!(format!("2026-02-01T00:00:{:02}Z", i / 2));
            e
        })
        .collect();
    app.record(events).await;
    let mut older = vec![];
    let mut pages = vec![];
    let mut query = "/v1/events?limit=5".to_string();
    loop {
        let page = app.get_json(&query).await;
        older.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        pages.push(page.clone());
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("/v1/events?limit=5&cursor={c}"),
            None => break,
        }
    }
    let expected: Vec<i64> = (1..=23).rev().collect();
    assert_eq!(older, expected);
    assert!(
        pages[0]["prev_cursor"].is_null(),
        "the first page has nothing newer"
    );

    let last = pages.last().unwrap();
    let mut newer: Vec<i64> = last["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let mut cursor = last["prev_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let page = app
            .get_json(&format!("/v1/events?limit=5&cursor={c}"))
            .await;
        let seqs: Vec<i64> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        newer.splice(0..0, seqs);
        cursor = page["prev_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(newer, expected);
}

#[tokio::test]
async fn one_entry_comes_with_its_correlated_entries() {
    let app = seeded().await;
    let page = app
        .get_json("/v1/events?detailed_action=printJob.retry")
        .await;
    let id = page["entries"][0]["id"].as_str().unwrap();
    let entry = app.get_json(&format!("/v1/events/{id}")).await;
    let correlated: Vec<i64> = entry["correlated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(correlated, vec![1]);
}

#[tokio::test]
async fn a_record_history_includes_bulk_operations_and_system_actors() {
    let app = seeded().await;
    let history = app.get_json("/v1/entities/PrintJob/job-7/events").await;
    let seqs: Vec<i64> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![5, 2],
        "the bulk delete names job-7 among its entity_ids"
    );
    assert_eq!(history["total"], 2);
    let filtered = app
        .get_json("/v1/entities/PrintJob/job-7/events?actor_type=user")
        .await;
    assert_eq!(filtered["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn facets_list_the_values_present() {
    let app = seeded().await;
    let facets = app.get_json("/v1/facets").await;
    assert_eq!(
        facets["actions"],
        json!(["bulk_delete", "login", "sync", "update"])
    );
    assert_eq!(
        facets["detailed_actions"],
        json!(["printJob.cancel", "printJob.retry", "printer.rename"])
    );
    assert_eq!(facets["entity_types"], json!(["PrintJob", "Printer"]));
    assert_eq!(facets["channels"], json!(["auth", "default"]));
    assert_eq!(facets["actor_types"], json!(["api", "system", "user"]));
}
