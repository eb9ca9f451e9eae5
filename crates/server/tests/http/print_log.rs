//! The Bambuddy-compatible print log API (`/api/v1/print-log/`, docs/print-log.md): recording, the
//! list and its filters, stats, reclassification, deletion, clearing, the OWN/ALL permissions
//! mapped onto key scopes, the audit entries every change writes, and organization isolation.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use super::helpers::{TestApp, assert_error, spawn_app};

const LOG: &str = "/api/v1/print-log/";

/// A key of `org` (created if needed) named `name`: the user whose rows it owns.
async fn key_named(app: &TestApp, org: &str, name: &str, scopes: &[Scope]) -> String {
    let org = match app.store.find_org(org).await {
        Ok(org) => org,
        Err(_) => app.store.create_org(org).await.unwrap(),
    };
    let key = api_keys::generate(name, scopes.to_vec());
    app.store.create_api_key(org.key, key.record).await.unwrap();
    key.secret
}

/// How a request names its key: Bambuddy's header or the bearer token.
#[derive(Clone, Copy)]
enum Auth {
    ApiKey,
    Bearer,
}

fn request(app: &TestApp, method: Method, path: &str, key: &str, auth: Auth) -> RequestBuilder {
    let r = app.client.request(method, format!("{}{path}", app.url));
    match auth {
        Auth::ApiKey => r.header("X-API-Key", key),
        Auth::Bearer => r.bearer_auth(key),
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Response {
    let r = request(app, method, path, key, Auth::ApiKey);
    match body {
        Some(body) => r.json(&body),
        None => r,
    }
    .send()
    .await
    .unwrap()
}

/// Records a print with the admin key and returns its id.
async fn record(app: &TestApp, body: Value) -> i64 {
    record_as(app, &app.key, body).await
}

async fn record_as(app: &TestApp, key: &str, body: Value) -> i64 {
    let response = send(app, Method::POST, LOG, key, Some(body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn get_json(app: &TestApp, key: &str, path: &str) -> Value {
    let response = send(app, Method::GET, path, key, None).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

/// The ids a list query returns, in order, and its total.
async fn ids(app: &TestApp, query: &str) -> (Vec<i64>, u64) {
    let page = get_json(app, &app.key, &format!("{LOG}?{query}")).await;
    let ids = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect();
    (ids, page["total"].as_u64().unwrap())
}

async fn patch(app: &TestApp, key: &str, id: i64, body: Value) -> Response {
    send(app, Method::PATCH, &format!("{LOG}{id}"), key, Some(body)).await
}

async fn delete(app: &TestApp, key: &str, id: i64) -> Response {
    send(app, Method::DELETE, &format!("{LOG}{id}"), key, None).await
}

/// The organization's `printing` entries, oldest first.
async fn trail(app: &TestApp, key: &str) -> Vec<Value> {
    let page = app
        .get_as(key, "/v1/events?channel=printing&limit=500")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let mut entries = page["entries"].as_array().unwrap().clone();
    entries.reverse();
    entries
}

#[tokio::test]
async fn recording_a_print_returns_every_field_and_takes_either_auth_header() {
    let app = spawn_app().await;
    let body = json!({
        "print_name": "Benchy",
        "printer_id": 7,
        "printer_name": "Workshop X1C",
        "status": "failed",
        "started_at": "2026-01-07T09:00:00Z",
        "completed_at": "2026-01-07T10:00:00+01:00",
        "duration_seconds": 3600,
        "filament_type": "PLA",
        "filament_color": "#FF8800",
        "filament_used_grams": 12.5,
        "cost": 0.75,
        "energy_kwh": 0.25,
        "energy_cost": 0.5,
        "failure_reason": "layerShift",
        "created_by_username": "ada",
        "archive_id": 42,
        "thumbnail_path": "archives/42/thumbnail.png"
    });
    for (auth, expected_id) in [(Auth::ApiKey, 1), (Auth::Bearer, 2)] {
        let response = request(&app, Method::POST, LOG, &app.key, auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let print: Value = response.json().await.unwrap();
        assert_eq!(
            print,
            json!({
                "id": expected_id,
                "archive_id": 42,
                "print_name": "Benchy",
                "printer_name": "Workshop X1C",
                "printer_id": 7,
                "status": "failed",
                "started_at": "2026-01-07T09:00:00.000Z",
                "completed_at": "2026-01-07T09:00:00.000Z",
                "duration_seconds": 3600,
                "filament_type": "PLA",
                "filament_color": "#FF8800",
                "filament_used_grams": 12.5,
                "cost": 0.75,
                "energy_kwh": 0.25,
                "energy_cost": 0.5,
                "failure_reason": "layerShift",
                "thumbnail_path": "archives/42/thumbnail.png",
                "created_by_username": "ada",
                // The row's time is when the print completed, unless given.
                "created_at": "2026-01-07T09:00:00.000Z",
            })
        );
    }
    // Read back with either header, too.
    for auth in [Auth::ApiKey, Auth::Bearer] {
        let page: Value = request(&app, Method::GET, LOG, &app.key, auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["total"], 2);
        assert_eq!(page["items"][0]["id"], 2);
    }

    // Omitted fields are null; the owner defaults to the key's name, the time to now.
    let recorder = key_named(&app, "default", "printer-bridge", &[Scope::Ingest]).await;
    let response = send(
        &app,
        Method::POST,
        LOG,
        &recorder,
        Some(json!({"status": "completed"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let print: Value = response.json().await.unwrap();
    assert_eq!(print["created_by_username"], "printer-bridge");
    assert_eq!(print["print_name"], Value::Null);
    assert_eq!(print["failure_reason"], Value::Null);
    assert!(print["created_at"].as_str().unwrap().ends_with('Z'));
    let nobody = send(
        &app,
        Method::POST,
        LOG,
        &recorder,
        Some(json!({"status": "completed", "created_by_username": null})),
    )
    .await;
    assert_eq!(
        nobody.json::<Value>().await.unwrap()["created_by_username"],
        Value::Null
    );

    // Recording needs the ingest scope, and a key.
    let reader = app.key_for("default", &[Scope::Read]).await;
    assert_error(
        send(
            &app,
            Method::POST,
            LOG,
            &reader,
            Some(json!({"status": "completed"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let anonymous = app
        .post_json_anonymous(LOG, &json!({"status": "completed"}))
        .await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_error(
        send(&app, Method::GET, LOG, "stele_not-a-key", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_bad_print_is_a_400_naming_the_field_and_nothing_is_recorded() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({}), "status"),
        (json!({"status": "Completed"}), "status"),
        (
            json!({"status": "failed", "failure_reason": "nozzle"}),
            "failure_reason",
        ),
        (json!({"status": "failed", "id": 9}), "id"),
        (json!({"status": "failed", "colour": "red"}), "colour"),
        (
            json!({"status": "failed", "printer_id": "x1c"}),
            "printer_id",
        ),
        (
            json!({"status": "failed", "duration_seconds": -5}),
            "duration_seconds",
        ),
        (
            json!({"status": "failed", "filament_used_grams": "lots"}),
            "filament_used_grams",
        ),
        (
            json!({"status": "failed", "created_at": "tomorrow"}),
            "created_at",
        ),
        (
            json!({"status": "failed", "created_at": "2999-01-01T00:00:00Z"}),
            "created_at",
        ),
        (
            json!({"status": "failed", "print_name": "x".repeat(256)}),
            "print_name",
        ),
        (json!(["status", "failed"]), "body"),
    ] {
        let response = send(&app, Method::POST, LOG, &app.key, Some(body.clone())).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_print").await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    let not_json = request(&app, Method::POST, LOG, &app.key, Auth::ApiKey)
        .body("status=failed")
        .send()
        .await
        .unwrap();
    assert_error(not_json, StatusCode::BAD_REQUEST, "invalid_body").await;
    assert_eq!(ids(&app, "").await, (vec![], 0));
    assert!(trail(&app, &app.key).await.is_empty());
}

#[tokio::test]
async fn the_list_filters_by_each_parameter_newest_first() {
    let app = spawn_app().await;
    let print = |name: &str, printer: i64, user: &str, status: &str, at: &str| {
        json!({"print_name": name, "printer_id": printer, "created_by_username": user,
               "status": status, "created_at": at})
    };
    let benchy = record(
        &app,
        print("3DBenchy", 1, "ada", "completed", "2026-01-05T10:00:00Z"),
    )
    .await;
    let bracket = record(
        &app,
        print("Wall bracket", 2, "bob", "failed", "2026-01-06T10:00:00Z"),
    )
    .await;
    let big = record(
        &app,
        print("BIG benchy", 1, "bob", "failed", "2026-01-07T23:59:59Z"),
    )
    .await;
    let gear = record(
        &app,
        print("Gear", 3, "ada", "cancelled", "2026-01-08T00:00:00Z"),
    )
    .await;
    // Recorded last but printed earliest: the list is by time, not by id.
    let old = record(
        &app,
        print("Old benchy", 2, "carol", "stopped", "2026-01-01T08:00:00Z"),
    )
    .await;

    assert_eq!(
        ids(&app, "").await,
        (vec![gear, big, bracket, benchy, old], 5)
    );
    assert_eq!(
        ids(&app, "search=BENCHY").await,
        (vec![big, benchy, old], 3)
    );
    assert_eq!(ids(&app, "search=big%20b").await, (vec![big], 1));
    assert_eq!(ids(&app, "printer_id=1").await, (vec![big, benchy], 2));
    assert_eq!(
        ids(&app, "created_by_username=bob").await,
        (vec![big, bracket], 2)
    );
    assert_eq!(
        ids(&app, "created_by_username=Bob").await,
        (vec![], 0),
        "exact"
    );
    assert_eq!(ids(&app, "status=failed").await, (vec![big, bracket], 2));
    assert_eq!(
        ids(&app, "date_from=2026-01-06").await,
        (vec![gear, big, bracket], 3)
    );
    assert_eq!(
        ids(&app, "date_to=2026-01-07").await,
        (vec![big, bracket, benchy, old], 4),
        "a bare date_to includes its whole day"
    );
    assert_eq!(
        ids(
            &app,
            "date_from=2026-01-05T10:00:00Z&date_to=2026-01-06T10:00:00Z"
        )
        .await,
        (vec![bracket, benchy], 2),
        "both bounds are inclusive"
    );
    assert_eq!(
        ids(&app, "date_from=2026-01-06T12:00:00").await.1,
        2,
        "no offset is UTC"
    );
    assert_eq!(
        ids(
            &app,
            "search=benchy&printer_id=1&status=failed&created_by_username=bob"
        )
        .await,
        (vec![big], 1),
        "filters combine"
    );
    assert_eq!(ids(&app, "limit=2").await, (vec![gear, big], 5));
    assert_eq!(
        ids(&app, "limit=2&offset=2").await,
        (vec![bracket, benchy], 5)
    );
    assert_eq!(ids(&app, "limit=2&offset=10").await, (vec![], 5));
    assert_eq!(
        ids(&app, "status=&search=").await.1,
        5,
        "empty values are no filter"
    );
    // Without the trailing slash, the same.
    let bare: Value = get_json(&app, &app.key, "/api/v1/print-log?status=failed").await;
    assert_eq!(bare["total"], 2);
}

#[tokio::test]
async fn the_page_size_defaults_to_25_and_goes_up_to_500() {
    let app = spawn_app().await;
    for i in 0..30 {
        record(
            &app,
            json!({"status": "completed", "print_name": format!("part {i}")}),
        )
        .await;
    }
    let (page, total) = ids(&app, "").await;
    assert_eq!((page.len(), total), (25, 30));
    assert_eq!(page[0], 30, "newest first");
    assert_eq!(ids(&app, "limit=500").await.0.len(), 30);
    assert_eq!(ids(&app, "limit=1").await.0, vec![30]);
}

#[tokio::test]
async fn bad_list_and_stats_parameters_are_400s_naming_the_field() {
    let app = spawn_app().await;
    for path in [LOG, "/api/v1/print-log/stats"] {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
            ("offset=x", "offset"),
            ("printer_id=x1c", "printer_id"),
            ("status=done", "status"),
            ("status=FAILED", "status"),
            ("date_from=last%20week", "date_from"),
            ("date_to=2026-02-30", "date_to"),
            ("date_from=2026-02-01&date_to=2026-01-01", "date_from"),
        ] {
            let response = send(
                &app,
                Method::GET,
                &format!("{path}?{query}"),
                &app.key,
                None,
            )
            .await;
            let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
            assert_eq!(
                error["error"]["details"][0]["field"], field,
                "{path}?{query}"
            );
        }
    }
}

#[tokio::test]
async fn a_patch_reclassifies_with_exactly_the_vocabularies() {
    let app = spawn_app().await;
    let id = record(&app, json!({"status": "failed", "print_name": "Benchy"})).await;

    let response = patch(
        &app,
        &app.key,
        id,
        json!({"failure_reason": "cloggedNozzle"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let print: Value = response.json().await.unwrap();
    assert_eq!(
        (print["status"].as_str(), print["failure_reason"].as_str()),
        (Some("failed"), Some("cloggedNozzle"))
    );

    let print: Value = patch(
        &app,
        &app.key,
        id,
        json!({"status": "completed", "failure_reason": ""}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(print["status"], "completed");
    assert_eq!(
        print["failure_reason"],
        Value::Null,
        "\"\" clears the cause"
    );

    for status in ["completed", "failed", "stopped", "cancelled", "skipped"] {
        let response = patch(&app, &app.key, id, json!({ "status": status })).await;
        assert_eq!(response.status(), StatusCode::OK, "{status}");
    }
    for reason in [
        "adhesionFailure",
        "spaghettiDetached",
        "layerShift",
        "cloggedNozzle",
        "filamentRunout",
        "warping",
        "stringing",
        "underExtrusion",
        "powerFailure",
        "userCancelled",
        "other",
    ] {
        let response = patch(&app, &app.key, id, json!({ "failure_reason": reason })).await;
        assert_eq!(response.status(), StatusCode::OK, "{reason}");
    }
    let before = get_json(&app, &app.key, LOG).await["items"][0].clone();
    assert_eq!(before["failure_reason"], "other");
    for (body, field) in [
        (json!({"status": "Completed"}), "status"),
        (
            json!({"status": "done", "failure_reason": "warping"}),
            "status",
        ),
        (json!({"status": null}), "status"),
        (json!({"failure_reason": "warping", "status": 3}), "status"),
        (json!({"failure_reason": "Warping"}), "failure_reason"),
        (
            json!({"failure_reason": "clogged_nozzle", "status": "failed"}),
            "failure_reason",
        ),
        (json!({"failure_reason": null}), "failure_reason"),
        (json!({"print_name": "Renamed"}), "print_name"),
        (json!("failed"), "body"),
    ] {
        let response = patch(&app, &app.key, id, body.clone()).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_classification").await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    let after = get_json(&app, &app.key, LOG).await["items"][0].clone();
    assert_eq!(after, before, "a refused PATCH changes nothing");

    assert_error(
        patch(&app, &app.key, 999, json!({"status": "failed"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = send(
        &app,
        Method::PATCH,
        &format!("{LOG}benchy"),
        &app.key,
        Some(json!({})),
    )
    .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    assert_eq!(error["error"]["details"][0]["field"], "id");
    // With and without the trailing slash.
    let response = send(
        &app,
        Method::PATCH,
        &format!("{LOG}{id}/"),
        &app.key,
        Some(json!({"status": "failed"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn delete_removes_one_row_and_clear_removes_the_organizations_log() {
    let app = spawn_app().await;
    let a = record(&app, json!({"status": "completed"})).await;
    let b = record(&app, json!({"status": "failed"})).await;
    let c = record(&app, json!({"status": "failed"})).await;
    app.record(vec![super::helpers::event("update")]).await;

    let response = delete(&app, &app.key, b).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "deleted", "id": b})
    );
    assert_eq!(ids(&app, "").await, (vec![c, a], 2));
    assert_error(
        delete(&app, &app.key, b).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/print-log/{c}/"),
        &app.key,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "with a trailing slash");

    let later = record(&app, json!({"status": "completed"})).await;
    assert_eq!(later, 4, "ids are never reused");
    let response = send(&app, Method::DELETE, LOG, &app.key, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"deleted": 2})
    );
    assert_eq!(ids(&app, "").await, (vec![], 0));
    let response = send(&app, Method::DELETE, "/api/v1/print-log", &app.key, None).await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"deleted": 0})
    );

    // The trail is not the print log: the application's entry is still there.
    let all = app.get_json("/v1/events?channel=default").await;
    assert_eq!(all["total"], 1);
}

#[tokio::test]
async fn own_and_all_permissions_follow_the_keys_scopes_and_name() {
    let app = spawn_app().await;
    let ada_own = key_named(
        &app,
        "default",
        "ada",
        &[
            Scope::Read,
            Scope::PrintlogUpdateOwn,
            Scope::PrintlogDeleteOwn,
        ],
    )
    .await;
    let manager = key_named(
        &app,
        "default",
        "manager",
        &[Scope::PrintlogUpdateAll, Scope::PrintlogDeleteAll],
    )
    .await;
    let reader = key_named(&app, "default", "ada", &[Scope::Read]).await;
    let ingest = key_named(&app, "default", "ada", &[Scope::Ingest]).await;

    let adas = record(
        &app,
        json!({"status": "failed", "created_by_username": "ada"}),
    )
    .await;
    let bobs = record(
        &app,
        json!({"status": "failed", "created_by_username": "bob"}),
    )
    .await;
    let nobodys = record(
        &app,
        json!({"status": "failed", "created_by_username": null}),
    )
    .await;
    let adas_second = record_as(&app, &ingest, json!({"status": "failed"})).await;

    // OWN: only rows created by the user the key is named after.
    let classify = json!({"failure_reason": "warping"});
    assert_eq!(
        patch(&app, &ada_own, adas, classify.clone()).await.status(),
        StatusCode::OK
    );
    for other in [bobs, nobodys] {
        assert_error(
            patch(&app, &ada_own, other, classify.clone()).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_error(
            delete(&app, &ada_own, other).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_eq!(
        delete(&app, &ada_own, adas_second).await.status(),
        StatusCode::OK
    );
    assert_error(
        send(&app, Method::DELETE, LOG, &ada_own, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // An unknown id is a 404 whatever the reach.
    assert_error(
        patch(&app, &ada_own, 999, classify.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Without any update or delete scope, nothing; reading needs `read`.
    for key in [&reader, &ingest] {
        assert_error(
            patch(&app, key, adas, classify.clone()).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_error(
            delete(&app, key, adas).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_error(
            send(&app, Method::DELETE, LOG, key, None).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    for path in [LOG, "/api/v1/print-log/stats"] {
        assert_error(
            send(&app, Method::GET, path, &manager, None).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_error(
            send(&app, Method::GET, path, &ingest, None).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_eq!(
            send(&app, Method::GET, path, &reader, None).await.status(),
            StatusCode::OK
        );
    }

    // ALL: anyone's rows, and the clear.
    assert_eq!(
        patch(&app, &manager, bobs, classify.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        patch(&app, &manager, nobodys, classify.clone())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(delete(&app, &manager, bobs).await.status(), StatusCode::OK);
    let cleared = send(&app, Method::DELETE, LOG, &manager, None).await;
    assert_eq!(
        cleared.json::<Value>().await.unwrap(),
        json!({"deleted": 2})
    );

    // A refused change left no entry: the trail has the four records and the five changes made.
    let actions: Vec<(String, String)> = trail(&app, &app.key)
        .await
        .iter()
        .map(|e| {
            (
                e["detailed_action"].as_str().unwrap().to_string(),
                e["actor"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        actions,
        [
            pair("printLog.record", "first admin key"),
            pair("printLog.record", "first admin key"),
            pair("printLog.record", "first admin key"),
            pair("printLog.record", "ada"),
            pair("printLog.classify", "ada"),
            pair("printLog.delete", "ada"),
            pair("printLog.classify", "manager"),
            pair("printLog.classify", "manager"),
            pair("printLog.delete", "manager"),
            pair("printLog.clear", "manager"),
        ]
    );
}

#[tokio::test]
async fn stats_follow_deletes_and_reclassifications_at_once() {
    let app = spawn_app().await;
    let benchy = record(
        &app,
        json!({"status": "completed", "printer_id": 1, "duration_seconds": 3600, "filament_type": "PLA",
               "filament_used_grams": 10.5, "cost": 1.25, "energy_kwh": 0.5, "energy_cost": 0.25}),
    )
    .await;
    let gear = record(
        &app,
        json!({"status": "failed", "printer_id": 2, "duration_seconds": 1800, "filament_type": "PETG",
               "filament_used_grams": 4.0, "cost": 0.5, "failure_reason": "warping"}),
    )
    .await;
    let clip = record(
        &app,
        json!({"status": "failed", "printer_id": 1, "filament_type": "PLA", "filament_used_grams": 2.0}),
    )
    .await;
    let stats = get_json(&app, &app.key, "/api/v1/print-log/stats").await;
    assert_eq!(
        stats,
        json!({
            "total_prints": 3,
            "successful_prints": 1,
            "failed_prints": 2,
            "cancelled_prints": 0,
            "prints_by_status": {"completed": 1, "failed": 2, "stopped": 0, "cancelled": 0, "skipped": 0},
            "failure_reasons": {
                "adhesionFailure": 0, "spaghettiDetached": 0, "layerShift": 0, "cloggedNozzle": 0,
                "filamentRunout": 0, "warping": 1, "stringing": 0, "underExtrusion": 0,
                "powerFailure": 0, "userCancelled": 0, "other": 0
            },
            "unclassified_failures": 1,
            "total_duration_seconds": 5400,
            "average_duration_seconds": 2700.0,
            "total_print_time_hours": 1.5,
            "filament_grams_by_type": {"PETG": 4.0, "PLA": 12.5},
            "total_filament_grams": 16.5,
            "total_cost": 1.75,
            "total_energy_kwh": 0.5,
            "total_energy_cost": 0.25,
        })
    );
    // The stats take the list's filters.
    let printer_one = get_json(&app, &app.key, "/api/v1/print-log/stats/?printer_id=1").await;
    assert_eq!(printer_one["total_prints"], 2);
    assert_eq!(printer_one["filament_grams_by_type"], json!({"PLA": 12.5}));

    // Reclassified: the counts move in the same response cycle.
    patch(
        &app,
        &app.key,
        clip,
        json!({"failure_reason": "cloggedNozzle"}),
    )
    .await;
    patch(
        &app,
        &app.key,
        gear,
        json!({"status": "cancelled", "failure_reason": ""}),
    )
    .await;
    let stats = get_json(&app, &app.key, "/api/v1/print-log/stats").await;
    assert_eq!(stats["failed_prints"], 1);
    assert_eq!(stats["cancelled_prints"], 1);
    assert_eq!(stats["failure_reasons"]["cloggedNozzle"], 1);
    assert_eq!(stats["failure_reasons"]["warping"], 0);
    assert_eq!(stats["unclassified_failures"], 0);

    // Deleted: its filament, time and cost drop out at once.
    delete(&app, &app.key, benchy).await;
    let stats = get_json(&app, &app.key, "/api/v1/print-log/stats").await;
    assert_eq!(stats["total_prints"], 2);
    assert_eq!(stats["total_duration_seconds"], 1800);
    assert_eq!(stats["average_duration_seconds"], 1800.0);
    assert_eq!(
        stats["filament_grams_by_type"],
        json!({"PETG": 4.0, "PLA": 2.0})
    );
    assert_eq!(stats["total_cost"], 0.5);
    assert_eq!(stats["total_energy_kwh"], 0.0);

    send(&app, Method::DELETE, LOG, &app.key, None).await;
    let empty = get_json(&app, &app.key, "/api/v1/print-log/stats").await;
    assert_eq!(empty["total_prints"], 0);
    assert_eq!(empty["average_duration_seconds"], Value::Null);
    assert_eq!(empty["filament_grams_by_type"], json!({}));
}

#[tokio::test]
async fn every_change_writes_an_audit_entry_with_old_and_new_values() {
    let app = spawn_app().await;
    let manager = key_named(
        &app,
        "default",
        "manager",
        &[
            Scope::Ingest,
            Scope::Read,
            Scope::PrintlogUpdateAll,
            Scope::PrintlogDeleteAll,
        ],
    )
    .await;
    let benchy = record_as(
        &app,
        &manager,
        json!({"status": "failed", "print_name": "Benchy", "printer_id": 7, "filament_used_grams": 12.5,
               "created_at": "2026-01-07T10:00:00Z"}),
    )
    .await;
    let gear = record_as(
        &app,
        &manager,
        json!({"status": "completed", "print_name": "Gear"}),
    )
    .await;
    let clip = record_as(&app, &manager, json!({"status": "completed"})).await;
    patch(
        &app,
        &manager,
        benchy,
        json!({"failure_reason": "cloggedNozzle"}),
    )
    .await;
    patch(
        &app,
        &manager,
        benchy,
        json!({"status": "completed", "failure_reason": ""}),
    )
    .await;
    // The same classification again changes nothing, and records nothing.
    let same = patch(&app, &manager, benchy, json!({"status": "completed"})).await;
    assert_eq!(same.status(), StatusCode::OK);
    delete(&app, &manager, gear).await;
    send(&app, Method::DELETE, LOG, &manager, None).await;

    let entries = trail(&app, &manager).await;
    assert_eq!(entries.len(), 7, "{entries:#?}");
    for e in &entries {
        assert_eq!(e["channel"], "printing");
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["actor"]["type"], "api");
        assert_eq!(e["actor"]["name"], "manager");
        assert_eq!(e["entity"]["type"], "PrintLogEntry");
        assert!(e["context"]["api_key_id"].is_string());
        assert_eq!(e["context"]["source"], "api");
    }
    let record_entry = &entries[0];
    assert_eq!(record_entry["action"], "create");
    assert_eq!(record_entry["detailed_action"], "printLog.record");
    assert_eq!(record_entry["entity"]["id"], benchy.to_string());
    assert_eq!(record_entry["entity"]["name"], "Benchy");
    assert_eq!(
        record_entry["changes"],
        json!([
            {"field": "status", "new": "failed"},
            {"field": "print_name", "new": "Benchy"},
            {"field": "printer_id", "new": 7},
            {"field": "filament_used_grams", "new": 12.5},
            {"field": "created_by_username", "new": "manager"},
            {"field": "created_at", "new": "2026-01-07T10:00:00.000Z"},
        ])
    );

    let classify = &entries[3];
    assert_eq!(
        (
            classify["action"].as_str(),
            classify["detailed_action"].as_str()
        ),
        (Some("update"), Some("printLog.classify"))
    );
    assert_eq!(classify["entity"]["id"], benchy.to_string());
    assert_eq!(
        classify["changes"],
        json!([{"field": "failure_reason", "old": null, "new": "cloggedNozzle"}])
    );
    let reclassify = &entries[4];
    assert_eq!(
        reclassify["changes"],
        json!([
            {"field": "status", "old": "failed", "new": "completed"},
            {"field": "failure_reason", "old": "cloggedNozzle", "new": null},
        ])
    );
    assert!(
        reclassify["description"]
            .as_str()
            .unwrap()
            .contains("status failed → completed"),
        "{reclassify}"
    );

    let deleted = &entries[5];
    assert_eq!(
        (
            deleted["action"].as_str(),
            deleted["detailed_action"].as_str()
        ),
        (Some("delete"), Some("printLog.delete"))
    );
    assert_eq!(deleted["entity"]["id"], gear.to_string());
    assert_eq!(
        deleted["changes"][0],
        json!({"field": "status", "old": "completed"})
    );
    assert_eq!(
        deleted["changes"][1],
        json!({"field": "print_name", "old": "Gear"})
    );

    let cleared = &entries[6];
    assert_eq!(
        (
            cleared["action"].as_str(),
            cleared["detailed_action"].as_str()
        ),
        (Some("bulk_delete"), Some("printLog.clear"))
    );
    assert_eq!(
        cleared["entity_ids"],
        json!([benchy.to_string(), clip.to_string()])
    );
    assert_eq!(cleared["metadata"]["deleted"], 2);

    // A print's whole story, by its id (bulk ids included), and the chain still verifies.
    let history = get_json(
        &app,
        &manager,
        &format!("/v1/entities/PrintLogEntry/{benchy}/events"),
    )
    .await;
    assert_eq!(history["total"], 4);
    let verify = app.get_json("/v1/integrity/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn organizations_never_see_or_change_each_others_prints() {
    let app = spawn_app().await;
    let ours = record(
        &app,
        json!({"status": "failed", "print_name": "Benchy", "printer_id": 1}),
    )
    .await;
    let ours_too = record(
        &app,
        json!({"status": "failed", "print_name": "Gear", "printer_id": 1}),
    )
    .await;
    let other = key_named(&app, "other", "ada", &[Scope::Admin]).await;
    let theirs = record_as(
        &app,
        &other,
        json!({"status": "completed", "print_name": "Benchy", "printer_id": 1}),
    )
    .await;
    assert_eq!(
        (ours, ours_too, theirs),
        (1, 2, 1),
        "each organization counts its own ids"
    );

    let page = get_json(
        &app,
        &other,
        "/api/v1/print-log/?search=benchy&printer_id=1",
    )
    .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["status"], "completed");
    let stats = get_json(&app, &other, "/api/v1/print-log/stats").await;
    assert_eq!(stats["total_prints"], 1);
    assert_error(
        patch(&app, &other, ours_too, json!({"status": "completed"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        delete(&app, &other, ours_too).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Their id 1 is their own row, not ours.
    assert_eq!(
        patch(&app, &other, 1, json!({"failure_reason": "other"}))
            .await
            .status(),
        StatusCode::OK
    );
    let cleared = send(&app, Method::DELETE, LOG, &other, None).await;
    assert_eq!(
        cleared.json::<Value>().await.unwrap(),
        json!({"deleted": 1})
    );

    let mine = get_json(&app, &app.key, LOG).await;
    assert_eq!(mine["total"], 2);
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "failed" && p["failure_reason"].is_null())
    );
    // Each trail holds only its own organization's print log changes.
    assert_eq!(trail(&app, &app.key).await.len(), 2);
    assert_eq!(trail(&app, &other).await.len(), 3);
}
