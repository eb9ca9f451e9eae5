//! `GET /v1/export`: the bytes of each format, the filters, paging through more than one store
//! page, the download headers, the scope, bad parameters, and the export's own audit entry.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use stele_store::Scope;

use super::helpers::{TestApp, assert_error, assert_export_entry, event, spawn_app};

const HEADER: &str = "id,seq,occurred_at,channel,action,detailed_action,description,outcome,\
actor_type,actor_id,actor_name,actor_email,entity_type,entity_id,entity_name,entity_ids,ip,\
user_agent,correlation_id,changes,metadata,actor_href,actor_metadata,actor_original_type,\
entity_href,entity_metadata,related_entities,origin,redactions";

async fn export(app: &TestApp, query: &str) -> Response {
    app.get(&format!("/v1/export?{query}")).await
}

/// An export that must succeed, as bytes.
async fn export_bytes(app: &TestApp, query: &str) -> Vec<u8> {
    let response = export(app, query).await;
    assert_eq!(response.status(), StatusCode::OK, "export {query}");
    response.bytes().await.unwrap().to_vec()
}

/// Every entry GET /v1/events lists for `query`, walking its cursor.
async fn listed(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut cursor = String::new();
    loop {
        let page = app
            .get_json(&format!("/v1/events?{query}&limit=500{cursor}"))
            .await;
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON entry"))
        .collect()
}

/// The CSV rows after the header, as read by a CSV reader.
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    let body = bytes.strip_prefix("\u{feff}".as_bytes()).expect("a BOM");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// A small trail of four entries (seq 1..=4), one of them by a System actor.
async fn seeded() -> TestApp {
    let app = spawn_app().await;
    let mut login = event("login");
    login["channel"] = json!("auth");
    login["context"] = json!({"ip": "10.0.0.1", "user_agent": "Firefox", "correlation_id": "r1"});
    let mut update = event("update");
    update["detailed_action"] = json!("printer.rename");
    update["entity"] = json!({"type": "Printer", "id": "42", "name": "Alpha"});
    update["changes"] = json!([{"field": "name", "old": "A", "new": "Alpha"}]);
    update["metadata"] = json!({"site": "Berlin"});
    let mut system = event("sync");
    system["actor"] = json!({"type": "system"});
    let mut bulk = event("update");
    bulk["entity"] = json!({"type": "Printer"});
    bulk["entity_ids"] = json!(["1", "2;3"]);
    app.record(vec![login, update, system, bulk]).await;
    app
}

#[tokio::test]
async fn csv_has_a_bom_the_header_and_one_row_per_entry() {
    let app = seeded().await;
    let entries = listed(&app, "").await;
    let response = export(&app, "format=csv").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM first");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.starts_with(&format!("{HEADER}\r\n")), "{text}");

    let rows = csv_rows(&bytes);
    let seqs: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(seqs, ["4", "2", "1"], "newest first, System left out");
    assert_eq!(rows[0][0], entries[0]["id"]);
    assert_eq!(rows[0][15], r#"["1","2;3"]"#, "bulk ids as JSON text");
    let update = &rows[1];
    assert_eq!(update[2], entries[1]["occurred_at"], "RFC 3339 UTC");
    assert_eq!(
        update[3..8],
        ["default", "update", "printer.rename", "", "success"]
    );
    assert_eq!(update[8..12], ["user", "u1", "Ada", "ada@example.com"]);
    assert_eq!(update[12..15], ["Printer", "42", "Alpha"]);
    assert_eq!(update[15], "", "no bulk ids: an empty cell");
    assert_eq!(update[19], r#"[{"field":"name","old":"A","new":"Alpha"}]"#);
    assert_eq!(update[20], r#"{"site":"Berlin"}"#);
    assert_eq!(rows[2][16..19], ["10.0.0.1", "Firefox", "r1"]);
    assert_eq!(rows[2][3], "auth");
}

#[tokio::test]
async fn csv_neutralises_formulas_and_quotes_what_needs_quoting() {
    let app = spawn_app().await;
    let formulas = ["=SUM(1)", "+1", "-1", "@x", "\tx", "\rx"];
    let mut events: Vec<Value> = formulas
        .iter()
        .map(|f| {
            let mut e = event("update");
            e["description"] = json!(f);
            e
        })
        .collect();
    let mut names = event("update");
    names["actor"] =
        json!({"type": "user", "id": "=1+1", "name": "@admin", "email": "a@example.com"});
    names["entity"] = json!({"type": "-Printer", "id": "+7", "name": "=HYPERLINK(\"x\")"});
    names["context"] = json!({"user_agent": "=cmd|' /C calc'!A0", "correlation_id": "-r"});
    names["metadata"] = json!({"note": "=1"});
    events.push(names);
    let mut quoting = event("update");
    quoting["description"] = json!("a, \"b\"\nc\r\nd");
    events.push(quoting);
    app.record(events).await;

    let bytes = export_bytes(&app, "format=csv").await;
    let raw = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        raw.contains("\"a, \"\"b\"\"\nc\r\nd\""),
        "commas, quotes and line breaks are quoted: {raw:?}"
    );
    let rows = csv_rows(&bytes);
    assert_eq!(rows[0][6], "a, \"b\"\nc\r\nd", "and read back intact");
    let names = &rows[1];
    assert_eq!(names[9..12], ["'=1+1", "'@admin", "a@example.com"]);
    assert_eq!(names[12..15], ["'-Printer", "'+7", "'=HYPERLINK(\"x\")"]);
    assert_eq!(names[17..19], ["'=cmd|' /C calc'!A0", "'-r"]);
    assert_eq!(
        names[20], r#"{"note":"=1"}"#,
        "JSON text starts with a brace"
    );
    // Oldest last: the formulas in the order they were sent, from the end.
    let descriptions: Vec<&str> = rows[2..].iter().rev().map(|r| r[6].as_str()).collect();
    let expected: Vec<String> = formulas.iter().map(|f| format!("'{f}")).collect();
    assert_eq!(descriptions, expected);
}

#[tokio::test]
async fn json_is_a_document_of_the_listed_entries() {
    let app = seeded().await;
    let want = listed(&app, "action=update").await;
    let response = export(&app, "format=json&action=update").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["exported_at", "filters", "entries"]);
    let exported_at = doc["exported_at"].as_str().unwrap();
    assert!(
        exported_at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(exported_at).is_ok(),
        "{exported_at}"
    );
    assert_eq!(
        doc["filters"],
        json!({"action": "update", "actor_type": "user,api,webhook,scheduler"})
    );
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(*entries, want);
    assert_eq!(
        entries[1]["entity"],
        json!({"type": "Printer", "id": "42", "name": "Alpha"})
    );

    // An empty export is still a document.
    let empty: Value =
        serde_json::from_slice(&export_bytes(&app, "format=json&action=nothing").await).unwrap();
    assert_eq!(empty["entries"], json!([]));
}

#[tokio::test]
async fn ndjson_is_one_listed_entry_per_line() {
    let app = seeded().await;
    let want = listed(&app, "actor_type=all").await;
    let response = export(&app, "format=ndjson&actor_type=all").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&response.bytes().await.unwrap());
    assert_eq!(lines.len(), 4);
    assert_eq!(lines, want);
}

#[tokio::test]
async fn an_export_holds_exactly_what_the_same_query_lists() {
    let app = seeded().await;
    for query in [
        "",
        "action=update",
        "actor_type=system",
        "actor_type=all&entity_type=Printer",
        "entity_id=2;3",
        "channel=auth&ip=10.0.0.1",
        "detailed_action=printer.*",
        "action=update&limit=1&cursor=junk",
        "action=",
    ] {
        let seqs = |entries: Vec<Value>| -> Vec<i64> {
            entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
        };
        let list_query: String = query
            .split('&')
            .filter(|p| !p.starts_with("limit=") && !p.starts_with("cursor="))
            .collect::<Vec<_>>()
            .join("&");
        let want = seqs(listed(&app, &list_query).await);
        let got = seqs(ndjson(
            &export_bytes(&app, &format!("format=ndjson&{query}")).await,
        ));
        assert_eq!(got, want, "export {query}");
    }
}

#[tokio::test]
async fn more_entries_than_one_page_stream_in_order_once_each() {
    let app = spawn_app().await;
    // Two full pages and part of a third.
    let total = 2 * stele_service::export::PAGE_SIZE + 500;
    let mut recorded = 0;
    while recorded < total {
        let n = (total - recorded).min(1000);
        let events: Vec<Value> = (0..n)
            .map(|i| {
                let mut e = event("update");
                e["description"] = json!(format!("n{}", recorded + i));
                e
            })
            .collect();
        app.record(events).await;
        recorded += n;
    }
    let total = total as i64;
    let lines = ndjson(&export_bytes(&app, "format=ndjson").await);
    let seqs: Vec<i64> = lines.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=total).rev().collect::<Vec<_>>());

    let rows = csv_rows(&export_bytes(&app, "format=csv").await);
    assert_eq!(
        rows.len() as i64,
        total + 1,
        "and the first export's own entry"
    );
    let doc: Value = serde_json::from_slice(&export_bytes(&app, "format=json").await).unwrap();
    assert_eq!(doc["entries"].as_array().unwrap().len() as i64, total + 2);
}

#[tokio::test]
async fn the_download_is_named_by_its_time() {
    let app = seeded().await;
    for format in ["csv", "json", "ndjson"] {
        let response = export(&app, &format!("format={format}")).await;
        let disposition = response.headers()["content-disposition"].to_str().unwrap();
        let name = disposition
            .strip_prefix("attachment; filename=\"audit-log-")
            .and_then(|d| d.strip_suffix(&format!(".{format}\"")))
            .unwrap_or_else(|| panic!("{disposition}"));
        // 20261122T031500Z
        assert_eq!(name.len(), 16, "{name}");
        assert!(
            chrono::NaiveDateTime::parse_from_str(name, "%Y%m%dT%H%M%SZ").is_ok(),
            "{name}"
        );
    }
    // No format: CSV.
    let response = export(&app, "").await;
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".csv\"")
    );
}

#[tokio::test]
async fn the_export_scope_is_required() {
    let app = seeded().await;
    let read = app.key_for("default", &[Scope::Read, Scope::Ingest]).await;
    let body = app
        .get_error_as(
            &read,
            "/v1/export?format=csv",
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("export")
    );
    let export_only = app.key_for("default", &[Scope::Export]).await;
    let response = app.get_as(&export_only, "/v1/export?format=ndjson").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(ndjson(&response.bytes().await.unwrap()).len(), 3);
    assert_error(
        app.get_anonymous("/v1/export").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_field() {
    let app = seeded().await;
    for (query, field) in [
        ("format=xml", "format"),
        ("format=csv&from=yesterday", "from"),
        ("outcome=maybe", "outcome"),
        ("actor_type=robot", "actor_type"),
    ] {
        let body = assert_error(
            export(&app, query).await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
        assert_eq!(body["error"]["details"][0]["field"], field, "{query}");
    }
    // None of them was recorded as an export.
    assert!(listed(&app, "action=export").await.is_empty());
}

#[tokio::test]
async fn every_export_is_recorded_in_the_trail_but_not_in_itself() {
    let app = seeded().await;
    let secret = app.key_for("default", &[Scope::Export, Scope::Read]).await;
    let key = app.key_record(&secret).await;
    let response = app
        .get_as(&secret, "/v1/export?format=ndjson&action=update&q=")
        .await;
    let lines = ndjson(&response.bytes().await.unwrap());
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|e| e["action"] != "export"));

    // Recorded before the body ended, so it is there as soon as the download is.
    let recorded = listed(&app, "action=export").await;
    assert_eq!(recorded.len(), 1);
    let entry = &recorded[0];
    assert_export_entry(entry, &key);
    assert_eq!(entry["entity"], Value::Null);
    assert_eq!(entry["metadata"]["format"], "ndjson");
    assert_eq!(entry["metadata"]["entries"], 2);
    assert_eq!(entry["metadata"]["complete"], true);
    let filters: Value =
        serde_json::from_str(entry["metadata"]["filters"].as_str().unwrap()).unwrap();
    assert_eq!(
        filters,
        json!({"action": "update", "actor_type": "user,api,webhook,scheduler"})
    );
    let text = entry.to_string();
    assert!(
        !text.contains(&secret),
        "the key's secret is never recorded"
    );

    // The next export of everything holds the first export's entry, never its own.
    let all = ndjson(&export_bytes(&app, "format=ndjson").await);
    assert_eq!(all.len(), 3 + 1);
    assert_eq!(all[0]["action"], "export");
    assert_eq!(listed(&app, "action=export").await.len(), 2);
}

#[tokio::test]
async fn a_download_broken_off_is_recorded_as_incomplete() {
    let app = spawn_app().await;
    // 48 MB of entries: more than the sockets' buffers hold (a client that stops reading keeps its
    // receive window small, and Linux caps the send buffer at 4 MB by default), so the server
    // notices the client leaving before it has sent them all.
    let description = "x".repeat(4000);
    for _ in 0..12 {
        let events: Vec<Value> = (0..1000)
            .map(|_| {
                let mut e = event("update");
                e["description"] = json!(description);
                e
            })
            .collect();
        app.record(events).await;
    }
    let mut response = export(&app, "format=ndjson").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let entry = loop {
        if let Some(entry) = listed(&app, "action=export").await.pop() {
            break entry;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the export was not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(entry["outcome"], "failure");
    assert_eq!(entry["metadata"]["complete"], false);
    let written = entry["metadata"]["entries"].as_i64().unwrap();
    assert!(written < 12_000, "{written}");
    assert!(
        entry["description"]
            .as_str()
            .unwrap()
            .ends_with("(incomplete)")
    );
}
