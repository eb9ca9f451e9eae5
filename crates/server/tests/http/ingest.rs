use reqwest::StatusCode;
use serde_json::{Value, json};

use super::helpers::{assert_error, event, spawn_app};

#[tokio::test]
async fn a_single_event_is_acknowledged_with_id_and_seq_and_reads_back_in_full() {
    let app = spawn_app().await;
    let sent = json!({
        "occurred_at": "2026-01-02T03:04:05.678+01:00",
        "action": "update",
        "detailed_action": "printer.rename",
        "channel": "hardware",
        "description": "Renamed printer Alpha",
        "actor": {"type": "user", "id": "u1", "name": "Ada", "email": "ada@example.com"},
        "entity": {"type": "Printer", "id": 42, "name": "Alpha"},
        "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "correlation_id": "req-1", "source": "web"},
        "changes": [{"field": "name", "old": "A", "new": "Alpha"}],
        "metadata": {"site": "Berlin", "attempt": 2}
    });
    let response = app.post_events(&sent).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let receipt = &body["events"][0];
    assert_eq!(receipt["seq"], 1);
    let id = receipt["id"].as_str().unwrap();

    let entry = app.get_json(&format!("/v1/events/{id}")).await;
    assert_eq!(entry["id"], id);
    assert_eq!(
        entry["occurred_at"], "2026-01-02T02:04:05.678Z",
        "UTC with a Z"
    );
    assert!(entry["recorded_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        entry["entity"],
        json!({"type": "Printer", "id": "42", "name": "Alpha"})
    );
    assert_eq!(entry["outcome"], "success");
    assert_eq!(entry["context"]["ip"], "203.0.113.7");
    assert_eq!(entry["changes"], sent["changes"]);
    assert_eq!(entry["metadata"], sent["metadata"]);
    assert_eq!(entry["correlated"], json!([]));
}

#[tokio::test]
async fn a_batch_gets_consecutive_seqs_in_request_order() {
    let app = spawn_app().await;
    let receipts = app.record((0..5).map(|_| event("create")).collect()).await;
    let seqs: Vec<i64> = receipts
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let more = app.record(vec![event("delete")]).await;
    assert_eq!(more[0]["seq"], 6);
}

#[tokio::test]
async fn ndjson_bodies_are_recorded_line_by_line() {
    let app = spawn_app().await;
    let body = format!("{}\n\n{}\n", event("login"), event("logout"));
    let response = app.post_raw("application/x-ndjson", body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["events"].as_array().unwrap().len(), 2);
    assert_eq!(app.seqs("").await, vec![2, 1]);
}

#[tokio::test]
async fn one_invalid_event_rejects_the_batch_and_names_every_bad_event() {
    let app = spawn_app().await;
    let response = app
        .post_events(&json!({"events": [
            event("create"),
            {"action": "create", "actor": {"type": "robot"}},
            event("update"),
            {"action": "Not A Word", "actor": {"type": "user"}, "occurred_at": 12}
        ]}))
        .await;
    let body = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    let details = body["error"]["details"].as_array().unwrap();
    let named: Vec<(i64, &str)> = details
        .iter()
        .map(|d| (d["index"].as_i64().unwrap(), d["field"].as_str().unwrap()))
        .collect();
    assert!(named.contains(&(1, "actor.type")), "{named:?}");
    assert!(named.contains(&(3, "action")), "{named:?}");
    assert!(named.contains(&(3, "occurred_at")), "{named:?}");
    assert!(named.iter().all(|(i, _)| *i == 1 || *i == 3));
    assert_eq!(
        app.seqs("actor_type=all").await,
        Vec::<i64>::new(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_original_ids_and_writes_nothing_new() {
    let app = spawn_app().await;
    let body = json!({"events": [event("create"), event("update")]});
    let send = || {
        app.client
            .post(format!("{}/v1/events", app.url))
            .bearer_auth(&app.key)
            .header("Idempotency-Key", "order-77")
            .json(&body)
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(first, retry);
    assert_eq!(app.seqs("").await, vec![2, 1]);

    // The same key with a different body is a mistake worth telling the client about.
    let other = app
        .client
        .post(format!("{}/v1/events", app.url))
        .bearer_auth(&app.key)
        .header("Idempotency-Key", "order-77")
        .json(&json!(event("delete")))
        .send()
        .await
        .unwrap();
    assert_error(other, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn per_event_idempotency_keys_deduplicate_retried_events() {
    let app = spawn_app().await;
    let keyed = |k: &str| {
        let mut e = event("create");
        e["idempotency_key"] = json!(k);
        e
    };
    let first = app.record(vec![keyed("a"), keyed("b")]).await;
    let second = app.record(vec![keyed("b"), keyed("c")]).await;
    assert_eq!(second[0], first[1]);
    assert_eq!(second[1]["seq"], 3);
    assert_eq!(app.seqs("").await, vec![3, 2, 1]);
}

#[tokio::test]
async fn before_and_after_become_changes_with_secrets_and_binary_redacted() {
    let app = spawn_app().await;
    let mut e = event("update");
    e["before"] = json!({"name": "A", "password": "hunter2", "address": {"city": "Oslo", "zip": "0150"}, "avatar": {"$binary": "iVBORw0KGgo="}});
    e["after"] = json!({"name": "B", "password": "hunter3", "address": {"city": "Bergen", "zip": "0150"}, "avatar": {"$binary": "R0lGODlh"}});
    e["metadata"] = json!({"api_key": "sk_live_123", "ok": true});
    let receipts = app.record(vec![e]).await;
    let entry = app
        .get_json(&format!(
            "/v1/events/{}",
            receipts[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        entry["changes"],
        json!([
            {"field": "address.city", "old": "Oslo", "new": "Bergen"},
            {"field": "avatar", "old": "[BINARY DATA]", "new": "[BINARY DATA]"},
            {"field": "name", "old": "A", "new": "B"},
            {"field": "password", "old": "[REDACTED]", "new": "[REDACTED]"},
        ])
    );
    assert_eq!(
        entry["metadata"],
        json!({"api_key": "[REDACTED]", "ok": true})
    );
    let text = entry.to_string();
    assert!(
        !text.contains("hunter") && !text.contains("sk_live"),
        "secrets never stored"
    );
}

#[tokio::test]
async fn a_create_records_only_new_values_and_a_delete_only_old_ones() {
    let app = spawn_app().await;
    let mut created = event("create");
    created["after"] = json!({"name": "Alpha", "model": "X1"});
    let mut deleted = event("delete");
    deleted["before"] = json!({"name": "Alpha"});
    let receipts = app.record(vec![created, deleted]).await;
    let path = |i: usize| format!("/v1/events/{}", receipts[i]["id"].as_str().unwrap());
    assert_eq!(
        app.get_json(&path(0)).await["changes"],
        json!([{"field": "model", "new": "X1"}, {"field": "name", "new": "Alpha"}])
    );
    assert_eq!(
        app.get_json(&path(1)).await["changes"],
        json!([{"field": "name", "old": "Alpha"}])
    );
}

#[tokio::test]
async fn concurrent_requests_are_all_acknowledged_with_gap_free_seqs() {
    let app = spawn_app().await;
    let mut tasks = vec![];
    for _ in 0..32 {
        let client = app.client.clone();
        let (url, key) = (app.url.clone(), app.key.clone());
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(format!("{url}/v1/events"))
                .bearer_auth(key)
                .json(&event("view"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            let body: Value = response.json().await.unwrap();
            body["events"][0]["seq"].as_i64().unwrap()
        }));
    }
    let mut seqs = vec![];
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=32).collect::<Vec<_>>());
}
