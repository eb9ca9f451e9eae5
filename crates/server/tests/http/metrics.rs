//! `/metrics`: Prometheus's text format, without a key, counting requests by route pattern (never
//! by the path a client sent), the group commits that stored events, and the backend's own
//! figures; or on a listener of its own with `--metrics-listen`.
//!
//! The recorder is the process's: under `cargo test` the tests of this binary share it, so the
//! counts are checked as lower bounds (under nextest each test has a process of its own).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::helpers::*;

/// A scrape: each sample line's value by its series (name and labels, as written).
async fn scrape(url: &str) -> (String, HashMap<String, f64>) {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let series = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a series and its value");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect();
    (text, series)
}

fn value(series: &HashMap<String, f64>, name: &str) -> f64 {
    series.get(name).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_the_commits_that_stored_their_events() {
    let app = spawn_app().await;
    let batch = json!({"events": [event("login"), event("logout"), event("login")]});
    assert_eq!(app.post_events(&batch).await.status(), StatusCode::CREATED);
    assert_eq!(
        app.post_events(&event("login")).await.status(),
        StatusCode::CREATED
    );
    app.get_error(
        "/v1/events/evt_unknown_4f2a",
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let scan = app.get_anonymous("/wp-admin/setup-config.php").await;
    assert_eq!(scan.status(), StatusCode::NOT_FOUND);

    let (text, series) = scrape(&app.url).await;
    assert!(
        value(
            &series,
            r#"stele_http_requests_total{method="POST",route="/v1/events",status="201"}"#
        ) >= 2.0,
        "{text}"
    );
    assert!(
        value(
            &series,
            r#"stele_http_requests_total{method="GET",route="/v1/events/{id}",status="404"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(
        value(
            &series,
            r#"stele_http_request_duration_seconds_count{method="POST",route="/v1/events",status="201"}"#
        ) >= 2.0,
        "{text}"
    );
    // Paths no route matched share one label: a scan cannot grow the registry.
    assert!(
        value(
            &series,
            r#"stele_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(!text.contains("wp-admin"), "{text}");
    assert!(!text.contains("evt_unknown_4f2a"), "{text}");
    // The four events, in at least one group commit.
    assert!(
        value(&series, "stele_events_committed_total") >= 4.0,
        "{text}"
    );
    assert!(
        value(&series, "stele_group_commit_events_count") >= 1.0,
        "{text}"
    );
    assert!(
        value(&series, "stele_group_commit_events_sum") >= 4.0,
        "{text}"
    );
    assert!(
        value(&series, "stele_group_commit_duration_seconds_count") >= 1.0,
        "{text}"
    );
    assert!(series.contains_key("stele_writer_queue_depth"), "{text}");
    assert!(
        text.contains("# HELP stele_events_committed_total "),
        "{text}"
    );
    // Nothing secret: not the key that sent the events.
    assert!(!text.contains(&app.key), "{text}");
}

#[tokio::test]
async fn metrics_show_the_backend_s_own_figures() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_events(&event("login")).await.status(),
        StatusCode::CREATED
    );
    let _ = app.get("/v1/events?limit=10").await;
    match super::BACKEND {
        Backend::Sqlite => {
            // The store's upkeep sets these every half second.
            let mut waited = Duration::ZERO;
            loop {
                let (text, series) = scrape(&app.url).await;
                let memory = value(&series, "stele_sqlite_memory_bytes");
                let database = value(&series, "stele_sqlite_database_bytes");
                if memory > 0.0 && database > 0.0 {
                    assert!(
                        value(&series, "stele_sqlite_page_cache_bytes") <= memory,
                        "{text}"
                    );
                    break;
                }
                assert!(waited < Duration::from_secs(10), "{text}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                waited += Duration::from_millis(100);
            }
        }
        Backend::Postgres => {
            let (text, series) = scrape(&app.url).await;
            // The request above authenticated on the lookup pool; reads have a pool of their own.
            for pool in ["reads", "lookups"] {
                let size = format!("stele_postgres_pool_size{{pool=\"{pool}\"}}");
                assert!(value(&series, &size) > 0.0, "{text}");
            }
            assert!(
                series.contains_key("stele_postgres_pool_in_use{pool=\"lookups\"}"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_listen_serves_metrics_apart_from_the_api() {
    let app = spawn_app_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics_url = app.metrics_url.clone().expect("a metrics listener");
    assert_eq!(
        app.post_events(&event("login")).await.status(),
        StatusCode::CREATED
    );
    let (text, _) = scrape(&metrics_url).await;
    assert!(text.contains("stele_http_requests_total"), "{text}");
    // Not on the API's port any more, and the metrics port serves nothing else.
    assert_error(
        app.get_anonymous("/metrics").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let other = reqwest::get(format!("{metrics_url}/v1/events"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

/// The operations an operator watches have counters: the bytes of stored request bodies,
/// checkpoints signed, verifications and their results, export jobs by outcome, retention runs
/// and what they removed.
#[tokio::test]
async fn ingest_bytes_checkpoints_verifications_exports_and_retention_are_counted() {
    let app = spawn_app().await;
    let batch = json!({"events": [event("login"), event("logout")]});
    let sent = serde_json::to_vec(&batch).unwrap().len() as f64;
    assert_eq!(app.post_events(&batch).await.status(), StatusCode::CREATED);
    assert!(app.store.checkpoint_now().await.unwrap() >= 1);
    assert_eq!(app.get_json("/v1/integrity/verify").await["ok"], true);
    let job: serde_json::Value = app
        .send_json_as(reqwest::Method::POST, &app.key, "/v1/exports", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    for _ in 0..600 {
        if app.get_json(&format!("/v1/exports/{id}")).await["state"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reports = stele_service::retention::prune_all(
        app.store.as_ref(),
        None,
        stele_core::time::now_millis(),
        stele_service::retention::Trigger::Command,
        None,
    )
    .await
    .unwrap();
    assert!(reports.iter().all(|r| r.summary.error.is_none()));

    let (text, series) = scrape(&app.url).await;
    assert!(value(&series, "stele_ingest_bytes_total") >= sent, "{text}");
    assert!(
        value(&series, "stele_checkpoints_signed_total") >= 1.0,
        "{text}"
    );
    assert!(
        value(&series, r#"stele_verifications_total{result="verified"}"#) >= 1.0,
        "{text}"
    );
    assert!(
        value(&series, r#"stele_export_jobs_total{outcome="ready"}"#) >= 1.0,
        "{text}"
    );
    assert!(
        value(&series, r#"stele_retention_runs_total{outcome="ok"}"#) >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("stele_retention_pruned_entries_total"),
        "{text}"
    );
}
