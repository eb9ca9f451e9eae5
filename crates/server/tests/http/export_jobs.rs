//! `POST /v1/exports`, `GET /v1/exports/{id}` and its download links: a job's file has the bytes
//! of `GET /v1/export`, is recorded in the trail with the job's id, is seen only by its own
//! organization with the export scope, and is removed (link answering 410) once its window ends.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stele_store::{NewExportJob, Scope};

use super::helpers::{
    TestApp, assert_error, assert_export_entry, event, spawn_app, spawn_app_with,
};

/// A small trail: two updates, a login and a System sync.
async fn seeded(app: &TestApp) {
    let mut login = event("login");
    login["context"] = json!({"ip": "10.0.0.1", "correlation_id": "r1"});
    let mut update = event("update");
    update["detailed_action"] = json!("printer.rename");
    update["entity"] = json!({"type": "Printer", "id": "42", "name": "Alpha"});
    update["changes"] = json!([{"field": "name", "old": "A", "new": "=Alpha"}]);
    update["description"] = json!("Renamed, \"quoted\"\nand accented: Zoë");
    let mut system = event("sync");
    system["actor"] = json!({"type": "system"});
    let mut bulk = event("update");
    bulk["entity"] = json!({"type": "Printer"});
    bulk["entity_ids"] = json!(["1", "2;3"]);
    app.record(vec![login, update, system, bulk]).await;
}

async fn post_job(app: &TestApp, key: &str, body: &Value) -> Response {
    app.send_json_as(Method::POST, key, "/v1/exports", body)
        .await
}

/// Starts a job with the admin key, asserting the 202 and its pending job.
async fn start(app: &TestApp, body: Value) -> Value {
    let response = post_job(app, &app.key, &body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    assert!(job["id"].as_str().unwrap().starts_with("exp_"), "{job}");
    job
}

/// Polls the job until it is no longer pending (at most 30 s), and returns it.
async fn settled(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = app.get_json(&format!("/v1/exports/{id}")).await;
        if job["state"] != "pending" {
            return job;
        }
        assert!(Instant::now() < deadline, "the job stayed pending: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follows a job's download link, without an API key (the link is the credential).
async fn download(app: &TestApp, url: &str) -> Response {
    app.get_anonymous(url).await
}

/// The names of the files in the server's export directory.
fn export_files(app: &TestApp) -> Vec<String> {
    match std::fs::read_dir(app.data_dir().join("exports")) {
        Ok(listing) => listing
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => vec![],
    }
}

/// Waits (at most 30 s) until `done` holds.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_ready_job_downloads_the_bytes_of_the_streamed_export() {
    let app = spawn_app().await;
    seeded(&app).await;
    for format in ["csv", "json", "ndjson"] {
        let body = json!({"format": format, "filters": {"action": "update", "q": ""}});
        let response = post_job(&app, &app.key, &body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let created: Value = response.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(created["state"], "pending");
        assert_eq!(created["format"], format);
        assert_eq!(
            created["filters"],
            json!({"action": "update", "actor_type": "user,api,webhook,scheduler"})
        );
        assert_eq!(created["url"], Value::Null);

        let job = settled(&app, &id).await;
        assert_eq!(job["state"], "ready", "{job}");
        assert_eq!(job["entries"], 2);
        assert_eq!(job["created_at"], created["created_at"]);
        assert_eq!(job["error"], Value::Null);
        let url = job["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("/v1/exports/{id}/download?token=")),
            "{url}"
        );
        let expires =
            chrono::DateTime::parse_from_rfc3339(job["url_expires_at"].as_str().unwrap()).unwrap();
        let in_a_while = chrono::Utc::now() + chrono::Duration::minutes(9);
        assert!(expires > in_a_while, "ten minutes by default: {expires}");
        assert!(
            export_files(&app).contains(&format!("{id}.{format}")),
            "{:?}",
            export_files(&app)
        );

        let response = download(&app, url).await;
        assert_eq!(response.status(), StatusCode::OK);
        let streamed = app
            .get(&format!("/v1/export?format={format}&action=update"))
            .await;
        for header in ["content-type", "cache-control", "x-content-type-options"] {
            assert_eq!(
                response.headers()[header],
                streamed.headers()[header],
                "{header}"
            );
        }
        // Named by the job's creation time, as GET /v1/export names by its own start.
        let created_at =
            chrono::DateTime::parse_from_rfc3339(job["created_at"].as_str().unwrap()).unwrap();
        assert_eq!(
            response.headers()["content-disposition"],
            format!(
                "attachment; filename=\"audit-log-{}.{format}\"",
                created_at.format("%Y%m%dT%H%M%SZ")
            )
        );
        let file = response.bytes().await.unwrap();
        let streamed = streamed.bytes().await.unwrap();
        assert_eq!(job["bytes"], file.len());
        if format == "json" {
            // The same document but for the time it was made: the job's creation.
            let mut file: Value = serde_json::from_slice(&file).unwrap();
            let mut streamed: Value = serde_json::from_slice(&streamed).unwrap();
            assert_eq!(file["exported_at"], job["created_at"]);
            file.as_object_mut().unwrap().remove("exported_at");
            streamed.as_object_mut().unwrap().remove("exported_at");
            assert_eq!(file, streamed);
            assert_eq!(file["entries"].as_array().unwrap().len(), 2);
        } else {
            assert_eq!(
                String::from_utf8_lossy(&file),
                String::from_utf8_lossy(&streamed)
            );
            assert_eq!(file, streamed, "byte for byte");
        }
    }
    assert!(
        export_files(&app).iter().all(|f| !f.ends_with(".part")),
        "no partial file is left: {:?}",
        export_files(&app)
    );
}

#[tokio::test]
async fn a_job_over_several_pages_holds_every_entry_once_in_order() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let events: Vec<Value> = (0..900).map(|_| event("update")).collect();
        app.record(events).await;
    }
    let job = start(&app, json!({"format": "ndjson"})).await;
    let job = settled(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(job["entries"], 2700);
    let bytes = download(&app, job["url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    let seqs: Vec<i64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=2700).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn each_job_is_recorded_in_the_trail_with_its_id() {
    let app = spawn_app().await;
    seeded(&app).await;
    let secret = app.key_for("default", &[Scope::Export]).await;
    let key = app.key_record(&secret).await;
    let body = json!({"format": "csv", "filters": {"entity_type": "Printer"}});
    let response = post_job(&app, &secret, &body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/exports/{id}"));
    // The export-only key polls its job like any key of the organization.
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let response = app.get_as(&secret, &location).await;
        assert_eq!(response.status(), StatusCode::OK);
        let job: Value = response.json().await.unwrap();
        if job["state"] != "pending" {
            break job;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job["state"], "ready");

    // Recorded before the job was ready, so it is there now.
    let page = app.get_json("/v1/events?action=export").await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    let entry = &entries[0];
    assert_export_entry(entry, &key);
    assert_eq!(entry["metadata"]["job_id"], id);
    assert_eq!(entry["metadata"]["format"], "csv");
    assert_eq!(entry["metadata"]["entries"], 2);
    assert_eq!(entry["metadata"]["complete"], true);
    let filters: Value =
        serde_json::from_str(entry["metadata"]["filters"].as_str().unwrap()).unwrap();
    assert_eq!(filters, job["filters"]);
    assert!(
        entry["description"].as_str().unwrap().contains(id),
        "{entry}"
    );
    let url = job["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap();
    assert!(
        !entry.to_string().contains(token),
        "the link's token is never recorded"
    );
}

#[tokio::test]
async fn another_organization_never_sees_a_job_and_the_export_scope_is_required() {
    let app = spawn_app().await;
    seeded(&app).await;
    let job = start(&app, json!({"format": "ndjson"})).await;
    let id = job["id"].as_str().unwrap();
    settled(&app, id).await;

    let theirs = app.key_for("acme", &[Scope::Export, Scope::Read]).await;
    app.get_error_as(
        &theirs,
        &format!("/v1/exports/{id}"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Their own job exports their own (empty) trail.
    let response = post_job(&app, &theirs, &json!({"format": "ndjson"})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let their_job: Value = response.json().await.unwrap();
    let their_id = their_job["id"].as_str().unwrap();
    app.get_error(
        &format!("/v1/exports/{their_id}"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job: Value = app
            .get_json_as(&theirs, &format!("/v1/exports/{their_id}"))
            .await;
        if job["state"] == "ready" {
            assert_eq!(job["entries"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "{job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let read = app.key_for("default", &[Scope::Read, Scope::Ingest]).await;
    for response in [
        post_job(&app, &read, &json!({"format": "csv"})).await,
        app.get_as(&read, &format!("/v1/exports/{id}")).await,
    ] {
        let body = assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("export")
        );
    }
    let anonymous = app.post_json_anonymous("/v1/exports", &json!({})).await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    app.get_error("/v1/exports/exp_0000", StatusCode::NOT_FOUND, "not_found")
        .await;
}

#[tokio::test]
async fn bad_requests_are_400_naming_the_field_and_start_nothing() {
    let app = spawn_app().await;
    seeded(&app).await;
    for (body, code, field) in [
        (json!({"format": "xml"}), "invalid_parameter", "format"),
        (json!({"format": 7}), "invalid_parameter", "format"),
        (
            json!({"filters": {"from": "yesterday"}}),
            "invalid_parameter",
            "filters.from",
        ),
        (
            json!({"format": "csv", "filters": {"outcome": "maybe"}}),
            "invalid_parameter",
            "filters.outcome",
        ),
        (
            json!({"filters": {"actor_type": "robot"}}),
            "invalid_parameter",
            "filters.actor_type",
        ),
        (
            json!({"filters": {"acton": "update"}}),
            "invalid_parameter",
            "filters.acton",
        ),
        (
            json!({"filters": {"cursor": "o1.1"}}),
            "invalid_parameter",
            "filters.cursor",
        ),
        (
            json!({"filters": "action=update"}),
            "invalid_parameter",
            "filters",
        ),
        (json!({"fromat": "csv"}), "invalid_body", "fromat"),
    ] {
        let response = post_job(&app, &app.key, &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    for (raw, code) in [("{\"format\": ", "malformed_json"), ("[1]", "invalid_body")] {
        let response = app
            .send_raw(Method::POST, "/v1/exports", "application/json", raw)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    assert!(
        app.get_json("/v1/events?action=export").await["entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(export_files(&app).is_empty());
}

#[tokio::test]
async fn every_poll_mints_a_link_and_a_wrong_token_is_404() {
    let app = spawn_app().await;
    seeded(&app).await;
    let first = start(&app, json!({"format": "csv"})).await;
    let first = settled(&app, first["id"].as_str().unwrap()).await;
    let again = app
        .get_json(&format!("/v1/exports/{}", first["id"].as_str().unwrap()))
        .await;
    let (a, b) = (
        first["url"].as_str().unwrap(),
        again["url"].as_str().unwrap(),
    );
    assert_ne!(a, b, "a fresh token per poll");
    assert_eq!(first["url_expires_at"], again["url_expires_at"]);
    let bytes_a = download(&app, a).await.bytes().await.unwrap();
    let bytes_b = download(&app, b).await.bytes().await.unwrap();
    assert_eq!(bytes_a, bytes_b, "both links work");
    assert!(!bytes_a.is_empty());

    let other = start(&app, json!({"format": "json"})).await;
    let other = settled(&app, other["id"].as_str().unwrap()).await;
    let (id, token) = a
        .strip_prefix("/v1/exports/")
        .unwrap()
        .split_once("/download?token=")
        .unwrap();
    let other_id = other["id"].as_str().unwrap();
    let flipped = if token.starts_with('0') { "1" } else { "0" };
    for url in [
        format!("/v1/exports/{id}/download?token={flipped}{}", &token[1..]),
        format!("/v1/exports/{id}/download?token="),
        format!("/v1/exports/{id}/download"),
        format!("/v1/exports/{other_id}/download?token={token}"),
        format!("/v1/exports/exp_nothing/download?token={token}"),
    ] {
        assert_error(
            download(&app, &url).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // An API key is not a link.
    let response = app.get(&format!("/v1/exports/{id}/download")).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(download(&app, a).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_link_is_410_and_the_file_is_gone() {
    let app = spawn_app_with(|config| config.export_link_ttl = Duration::from_secs(2)).await;
    seeded(&app).await;
    let job = start(&app, json!({"format": "ndjson"})).await;
    let id = job["id"].as_str().unwrap().to_string();
    let job = settled(&app, &id).await;
    assert_eq!(job["state"], "ready", "{job}");
    let url = job["url"].as_str().unwrap().to_string();
    let file = format!("{id}.ndjson");
    assert!(export_files(&app).contains(&file));

    let poll = format!("/v1/exports/{id}");
    eventually("the job expires", async || {
        app.get_json(&poll).await["state"] == "expired"
    })
    .await;
    let body = assert_error(download(&app, &url).await, StatusCode::GONE, "gone").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("create a new export")
    );
    assert!(
        !export_files(&app).contains(&file),
        "{:?}",
        export_files(&app)
    );
    let expired = app.get_json(&poll).await;
    assert_eq!(expired["state"], "expired");
    assert_eq!(expired["url"], Value::Null);
    assert_eq!(expired["entries"], 3);
    assert_eq!(expired["url_expires_at"], job["url_expires_at"]);
}

#[tokio::test]
async fn the_sweep_fails_abandoned_jobs_and_removes_files_no_job_needs() {
    // A short link lifetime makes the server sweep every second.
    let app = spawn_app_with(|config| config.export_link_ttl = Duration::from_secs(1)).await;
    let org = app.store.find_org("default").await.unwrap();
    // A job whose server went away ten minutes ago, mid-file, and a file of no job at all.
    let now = chrono::Utc::now().timestamp_millis();
    let abandoned = app
        .store
        .create_export_job(
            org.key,
            NewExportJob {
                format: "csv".into(),
                filters: "{}".into(),
                runner: "10.0.0.9:8080/gone".into(),
                created_at: now - 10 * 60 * 1000,
            },
        )
        .await
        .unwrap();
    let dir = app.data_dir().join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    let partial = format!("{}.csv.part", abandoned.id);
    std::fs::write(dir.join(&partial), "half").unwrap();
    std::fs::write(dir.join("exp_nobody.json"), "{}").unwrap();
    std::fs::write(dir.join("notes.txt"), "not an export").unwrap();

    let poll = format!("/v1/exports/{}", abandoned.id);
    eventually("the abandoned job is failed", async || {
        app.get_json(&poll).await["state"] == "error"
    })
    .await;
    let job = app.get_json(&poll).await;
    assert!(
        job["error"].as_str().unwrap().starts_with("interrupted"),
        "{job}"
    );
    assert_eq!(job["url"], Value::Null);
    eventually("the files no job needs are removed", async || {
        export_files(&app) == ["notes.txt"]
    })
    .await;
}

/// An erasure removes the organization's export files that hold the person (written before it,
/// they would keep the erased values until their links end) and leaves the others.
#[tokio::test]
async fn an_erasure_removes_the_export_files_that_hold_the_person() {
    let app = spawn_app().await;
    let mut ada = event("update");
    ada["actor"] = json!({"type": "user", "id": "u-grace", "email": "Grace@Example.com"});
    app.record(vec![ada, event("login")]).await;
    let with_ada = start(&app, json!({"format": "csv"})).await;
    let without = start(
        &app,
        json!({"format": "json", "filters": {"action": "login"}}),
    )
    .await;
    for job in [&with_ada, &without] {
        assert_eq!(
            settled(&app, job["id"].as_str().unwrap()).await["state"],
            "ready"
        );
    }
    assert_eq!(export_files(&app).len(), 2);
    app.erase(&json!({"email": "grace@example.com"})).await;
    let left = export_files(&app);
    let id_of = |job: &Value| job["id"].as_str().unwrap().to_string();
    assert!(
        !left.iter().any(|f| f.starts_with(&id_of(&with_ada))),
        "{left:?}"
    );
    assert!(
        left.iter().any(|f| f.starts_with(&id_of(&without))),
        "{left:?}"
    );
}
