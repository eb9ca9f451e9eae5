use reqwest::StatusCode;
use serde_json::{Value, json};

use super::helpers::{TestApp, assert_error, event, spawn_app};

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

// --- the query language of `q` -----------------------------------------------------------------

/// `q=` and the query, percent-encoded as a browser would send it.
fn q(query: &str) -> String {
    let mut out = String::from("q=");
    for b in query.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The trail of [`seeded`] plus two entries whose descriptions hold colons, a URL and quotes:
/// seq 7 (an export on the `pii-read` channel, correlation id with a space) and seq 8 (one
/// millisecond later, an update of Printer 42).
async fn seeded_for_queries() -> TestApp {
    let app = seeded().await;
    let mut download = event("export");
    download["channel"] = json!("pii-read");
    download["description"] = json!("Downloaded https://files.example.com/a.csv as \"audit.csv\"");
    download["context"] = json!({"correlation_id": "batch 7"});
    at(&mut download, "2026-01-06T12:00:00.500Z");
    let mut status = event("update");
    status["actor"] = json!({"type": "user", "id": "u2", "email": "bob@example.com"});
    status["entity"] = json!({"type": "Printer", "id": "42"});
    status["description"] = json!("Set status: done");
    at(&mut status, "2026-01-06T12:00:00.501Z");
    app.record(vec![download, status]).await;
    app
}

#[tokio::test]
async fn query_terms_select_exactly_what_the_filters_select() {
    let app = seeded_for_queries().await;
    let cases: &[(&str, &[i64])] = &[
        ("action:update", &[8, 6, 3, 2]),
        ("action:update actor:bob@example.com", &[8, 6]),
        ("detailed_action:printJob.retry", &[2]),
        ("detailed_action:printJob.*", &[3, 2]),
        ("actor_type:system", &[4]),
        ("actor_type:api,system", &[5, 4]),
        ("actor_type:all", &[8, 7, 6, 5, 4, 3, 2, 1]),
        ("actor:key_ci", &[5]),
        ("actor:ada@example.com channel:pii-read", &[7]),
        ("entity:PrintJob", &[5, 3, 2]),
        ("entity:PrintJob:job-7", &[5, 2]),
        ("entity:Printer:42", &[8]),
        ("entity_type:Printer", &[8, 6]),
        ("entity_id:job-7", &[6, 5, 2]),
        ("channel:auth", &[1]),
        ("outcome:failure", &[3]),
        ("outcome:success action:update", &[8, 6, 2]),
        ("correlation_id:req-1", &[2, 1]),
        ("correlation:req-1", &[2, 1]),
        ("correlation:\"batch 7\"", &[7]),
        ("ip:10.0.0.1", &[1]),
        ("Action:update Outcome:failure", &[3]),
        ("action:never_used", &[]),
    ];
    for (query, expected) in cases {
        assert_eq!(app.seqs(&q(query)).await, expected.to_vec(), "{query}");
    }
}

#[tokio::test]
async fn created_terms_have_exact_boundaries() {
    let app = seeded_for_queries().await;
    let cases: &[(&str, &[i64])] = &[
        // A date is the whole UTC day, its last millisecond included (seq 3 at 23:59:59.999).
        ("created:2026-01-02", &[3, 2]),
        ("created:>2026-01-02", &[8, 7, 6, 5]),
        ("created:>=2026-01-02", &[8, 7, 6, 5, 3, 2]),
        ("created:<2026-01-02", &[1]),
        ("created:<=2026-01-02", &[3, 2, 1]),
        ("created:2026-01-01..2026-01-02", &[3, 2, 1]),
        ("created:*..2026-01-01", &[1]),
        ("created:2026-01-05..*", &[8, 7, 6]),
        ("created:>2026-01-02 actor_type:all", &[8, 7, 6, 5, 4]),
        // An instant is one millisecond: seq 7 at .500 and seq 8 at .501.
        ("created:2026-01-06T12:00:00.500Z", &[7]),
        ("created:>2026-01-06T12:00:00.500Z", &[8]),
        ("created:>=2026-01-06T12:00:00.500Z", &[8, 7]),
        ("created:<2026-01-06T12:00:00.501Z", &[7, 6, 5, 3, 2, 1]),
        ("created:<=2026-01-02T09:00:00Z", &[2, 1]),
        ("created:<2026-01-02T09:00:00Z", &[1]),
        (
            "created:2026-01-02T11:00:00+02:00..2026-01-06T12:00:00.500Z",
            &[7, 6, 5, 3, 2],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(app.seqs(&q(query)).await, expected.to_vec(), "{query}");
    }
}

#[tokio::test]
async fn free_text_is_one_substring_and_quoted_text_is_never_a_term() {
    let app = seeded_for_queries().await;
    let cases: &[(&str, &[i64])] = &[
        ("print", &[2]),
        ("Größe", &[6]),
        // Words join into one substring, as `q` always meant: these words are not adjacent.
        ("retried print", &[2]),
        ("print benchy", &[]),
        ("\"PRINT job\" action:update", &[2]),
        ("action:update \"print job\" actor:ada@example.com", &[2]),
        ("\"status: done\"", &[8]),
        ("\"https://files.example.com\"", &[7]),
        // A pasted URL is free text without quotes.
        ("https://files.example.com/a.csv", &[7]),
        ("\"\\\"audit.csv\\\"\"", &[7]),
        ("\"action:update\"", &[]),
        (
            "action:update actor:ada@example.com entity:PrintJob:job-7 channel:default \
             created:>2026-01-01 \"print job\"",
            &[2],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(app.seqs(&q(query)).await, expected.to_vec(), "{query}");
    }
}

#[tokio::test]
async fn query_terms_combine_with_parameters_that_agree() {
    let app = seeded_for_queries().await;
    let cases: &[(String, &[i64])] = &[
        (
            format!("action=update&{}", q("actor:bob@example.com")),
            &[8, 6],
        ),
        (
            format!("action=update&{}", q("action:update")),
            &[8, 6, 3, 2],
        ),
        (
            format!("{}&action=update", q("action:update outcome:failure")),
            &[3],
        ),
        (
            format!("from=2026-01-02&{}", q("created:<2026-01-03")),
            &[3, 2],
        ),
        (
            format!("to=2026-01-02&{}", q("created:<=2026-01-02")),
            &[3, 2, 1],
        ),
        (format!("actor_type=all&{}", q("sync")), &[4]),
        ("q=&action=login".to_string(), &[1]),
    ];
    for (query, expected) in cases {
        assert_eq!(app.seqs(query).await, expected.to_vec(), "{query}");
    }
}

/// Asserts a 400 `invalid_parameter` naming `field`, whose message holds `says`.
async fn assert_rejected(response: reqwest::Response, field: &str, says: &str) {
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    assert_eq!(body["error"]["details"][0]["field"], field, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message} should say {says}");
}

#[tokio::test]
async fn bad_queries_are_400s_naming_q_and_the_term() {
    let app = seeded_for_queries().await;
    let cases: &[(String, &str)] = &[
        (q("printer foo:bar"), "`foo:bar`: unknown search key `foo`"),
        (q("error: timeout"), "`error:`: unknown search key"),
        (q("created:>2026-13-01"), "`2026-13-01` is not a date"),
        (q("created:soon"), "`created:soon`"),
        (q("outcome:maybe"), "`outcome:maybe`: the outcome must be"),
        (q("actor_type:robot"), "unknown actor type `robot`"),
        (q("action:"), "`action:`: has no value"),
        (q("-action:update"), "excluding with `-` is not supported"),
        (q("action:update \"paper jam"), "never closed"),
        (
            q("action:update action:create"),
            "`action:create`: asks for a different `action`",
        ),
        (
            format!("action=create&{}", q("action:update")),
            "`action:update`: asks for a different value than the `action` parameter",
        ),
        (
            format!("from=2026-01-03&{}", q("created:>=2026-01-01")),
            "the `from` parameter",
        ),
        (
            format!("actor_type=user&{}", q("actor_type:all")),
            "the `actor_type` parameter",
        ),
        (
            format!("entity_id=job-7&{}", q("entity:PrintJob:job-8")),
            "`entity:PrintJob:job-8`: asks for a different value than the `entity_id` parameter",
        ),
        (
            q("created:>2026-02-01 created:<2026-01-01"),
            "range is empty",
        ),
        (
            format!("to=2026-01-01&{}", q("created:>2026-01-01")),
            "range is empty",
        ),
        // No index can narrow a search this short: every entry would be read.
        (q("jm"), "at least 3 characters (\"jm\" has 2)"),
        (q("action:update j"), "at least 3 characters"),
    ];
    for (query, says) in cases {
        let response = app.get(&format!("/v1/events?{query}")).await;
        assert_rejected(response, "q", says).await;
    }
    // The explicit parameters keep their own field names.
    let response = app.get("/v1/events?from=2026-02-01&to=2026-01-01").await;
    assert_rejected(response, "from", "earlier").await;
}

#[tokio::test]
async fn a_record_history_reads_the_query_language_within_the_record() {
    let app = seeded_for_queries().await;
    let seqs = |page: Value| -> Vec<i64> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    let path = "/v1/entities/PrintJob/job-7/events";
    assert_eq!(seqs(app.get_json(path).await), vec![5, 2]);
    for (query, expected) in [
        ("actor_type:user", vec![2]),
        ("actor_type:api", vec![5]),
        ("entity:PrintJob:job-7 print", vec![2]),
        ("created:<2026-01-03", vec![2]),
    ] {
        let page = app.get_json(&format!("{path}?{}", q(query))).await;
        assert_eq!(seqs(page), expected, "{query}");
    }
    let response = app.get(&format!("{path}?{}", q("entity:Printer"))).await;
    assert_rejected(response, "q", "the `entity_type` parameter").await;
}

#[tokio::test]
async fn exports_and_export_jobs_read_the_query_language_too() {
    let app = seeded_for_queries().await;
    let response = app
        .get(&format!(
            "/v1/export?format=ndjson&{}",
            q("action:update created:>=2026-01-02 \"print job\"")
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    let seqs: Vec<i64> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![2]);

    let response = app.get(&format!("/v1/export?{}", q("foo:bar"))).await;
    assert_rejected(response, "q", "`foo:bar`").await;

    let response = app
        .client
        .post(format!("{}/v1/exports", app.url))
        .bearer_auth(&app.key)
        .json(&json!({"format": "json", "filters": {"q": "created:>2026-13-01"}}))
        .send()
        .await
        .unwrap();
    assert_rejected(response, "filters.q", "`created:>2026-13-01`").await;
}
