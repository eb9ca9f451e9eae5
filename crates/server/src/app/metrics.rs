//! Prometheus metrics at `/metrics`: what the server and its store record through the `metrics`
//! facade, rendered by `metrics-exporter-prometheus`. The recorder is the process's (the facade
//! has one global recorder), installed on the first server built; the stores record into it from
//! their own threads (group commits, the writer's queue, SQLite's memory, PostgreSQL's pool).
//!
//! Scraping needs no key: the figures say how busy the server is, never what is in the trail.
//! Labels are bounded: the route is the router's pattern (`/v1/events/{id}`), never the path a
//! client sent, so a scan of random URLs cannot grow the registry.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by method, route and status.
pub const HTTP_REQUESTS: &str = "stele_http_requests_total";
/// Time from a request's head to its response's head, by method, route and status.
pub const HTTP_DURATION: &str = "stele_http_request_duration_seconds";

/// Gauge: bytes the program has allocated and not freed (the `stele` binary's jemalloc).
pub const ALLOCATOR_ALLOCATED: &str = "stele_allocator_allocated_bytes";
/// Gauge: bytes of memory the allocator holds resident: the allocated ones, freed ones not yet
/// returned to the system, and its own metadata.
pub const ALLOCATOR_RESIDENT: &str = "stele_allocator_resident_bytes";

/// Latency buckets, in seconds: from a first page (a few ms) to a slow export's head.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Events per group commit: from one single-event request to the writer's cap.
const GROUP_EVENTS_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| match builder().install_recorder() {
        Ok(handle) => {
            describe();
            handle
        }
        // Another recorder was installed first (an embedding program's own): serve an empty
        // registry rather than fail to start.
        Err(error) => {
            tracing::warn!(%error, "metrics recorder not installed; /metrics will be empty");
            builder().build_recorder().handle()
        }
    })
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(stele_store::metrics::GROUP_COMMIT_EVENTS.into()),
                GROUP_EVENTS_BUCKETS,
            )
        })
        .expect("the bucket lists are not empty")
}

/// HELP lines for every metric Stele records.
fn describe() {
    use metrics::Unit;
    use stele_store::metrics as store;
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered.");
    metrics::describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's head to its response's head."
    );
    metrics::describe_counter!(
        store::EVENTS_COMMITTED,
        "Events acknowledged by this server's writer once their group committed (durable and chained; an idempotent replay counts again)."
    );
    metrics::describe_histogram!(
        store::GROUP_COMMIT_EVENTS,
        "Events in one group commit (one transaction, one flush)."
    );
    metrics::describe_histogram!(
        store::GROUP_COMMIT_DURATION,
        Unit::Seconds,
        "Time one group commit took, from its first statement to COMMIT returning."
    );
    metrics::describe_counter!(
        store::GROUP_COMMIT_FAILURES,
        "Group commits that failed (none of their events was stored; each request got an error)."
    );
    metrics::describe_counter!(
        store::INGEST_BYTES,
        Unit::Bytes,
        "Bytes of request bodies whose events were stored, on every ingest door (replays not counted)."
    );
    metrics::describe_counter!(
        store::CHECKPOINTS_SIGNED,
        "Signed checkpoints this server made (one per organization whose chain moved)."
    );
    metrics::describe_counter!(
        store::RETENTION_RUNS,
        "Retention runs by outcome: ok, archive_failed (an organization's archive could not be written; its run stopped), failed (a store error stopped the run)."
    );
    metrics::describe_counter!(store::RETENTION_PRUNED, "Entries retention removed.");
    metrics::describe_counter!(
        stele_service::streams::delivery::DELIVERED_ENTRIES,
        "Entries each log stream delivered, by stream (its id)."
    );
    metrics::describe_counter!(
        stele_service::streams::delivery::FAILURES,
        "Failed delivery attempts of each log stream (retried or refused), by stream."
    );
    metrics::describe_counter!(
        store::EXPORT_JOBS,
        "Export jobs that finished, by outcome: ready, failed."
    );
    metrics::describe_counter!(
        store::VERIFICATIONS,
        "Chain verifications asked of this server (GET /v1/integrity/verify), by result: verified, failed."
    );
    metrics::describe_gauge!(
        store::WRITER_QUEUE,
        "Append requests waiting for the writer after its last group commit."
    );
    metrics::describe_gauge!(
        store::SEARCH_INDEX_LAG,
        "Changes to the trail the embedded database's search index has not taken in yet (reads check them one by one)."
    );
    metrics::describe_gauge!(
        store::SQLITE_MEMORY,
        Unit::Bytes,
        "Heap memory the embedded database (SQLite) holds, page caches included."
    );
    metrics::describe_gauge!(
        store::SQLITE_PAGE_CACHE,
        Unit::Bytes,
        "Of that, the connections' page caches (bounded by their cache sizes)."
    );
    metrics::describe_gauge!(
        store::SQLITE_DATABASE,
        Unit::Bytes,
        "Size of the embedded database's file, in pages times page size."
    );
    metrics::describe_gauge!(
        store::POOL_IN_USE,
        "PostgreSQL connections lent out of the pool (reads, counts, exports)."
    );
    metrics::describe_gauge!(
        store::POOL_SIZE,
        "PostgreSQL connections the pool may lend."
    );
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> Response {
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// Counts and times every request, by method, route pattern and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_of(&request);
    let response = next.run(request).await;
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// The route pattern that matched the request (`/v1/events/{id}`), never the path a client sent,
/// so that labels and log fields stay few; requests no route matched (404s, scans) share
/// `unmatched`.
pub(crate) fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// The method as a label: the standard ones by name, anything else as `other`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_store::metrics as store;

    /// Every metric this process records, by name.
    const RECORDED: &[&str] = &[
        HTTP_REQUESTS,
        HTTP_DURATION,
        ALLOCATOR_ALLOCATED,
        ALLOCATOR_RESIDENT,
        store::EVENTS_COMMITTED,
        store::GROUP_COMMIT_EVENTS,
        store::GROUP_COMMIT_DURATION,
        store::GROUP_COMMIT_FAILURES,
        store::WRITER_QUEUE,
        store::SEARCH_INDEX_LAG,
        store::SQLITE_MEMORY,
        store::SQLITE_PAGE_CACHE,
        store::SQLITE_DATABASE,
        store::POOL_IN_USE,
        store::POOL_SIZE,
        store::CHECKPOINTS_SIGNED,
        store::INGEST_BYTES,
        store::RETENTION_RUNS,
        store::RETENTION_PRUNED,
        store::EXPORT_JOBS,
        store::VERIFICATIONS,
        stele_service::streams::delivery::DELIVERED_ENTRIES,
        stele_service::streams::delivery::FAILURES,
    ];

    /// The metric names in a text: every `stele_…` word, less a histogram's series suffix.
    fn names_in(text: &str) -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("stele_"))
            .map(|w| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| w.strip_suffix(suffix))
                    .filter(|base| RECORDED.contains(base))
                    .unwrap_or(w)
                    .to_string()
            })
            .collect()
    }

    /// The Grafana dashboard in docs/ asks only for metrics Stele records, and shows each one;
    /// docs/operations.md documents each one.
    #[test]
    fn the_dashboard_and_the_docs_name_exactly_the_recorded_metrics() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/grafana-dashboard.json"))
                .expect("the dashboard is JSON");
        let mut queried = Vec::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                queried.extend(names_in(target["expr"].as_str().expect("an expression")));
            }
        }
        for name in &queried {
            assert!(
                RECORDED.contains(&name.as_str()),
                "the dashboard asks for {name}"
            );
        }
        let operations = include_str!("../../../../docs/operations.md");
        for name in RECORDED {
            assert!(
                queried.iter().any(|q| q == name),
                "the dashboard lacks {name}"
            );
            assert!(
                operations.contains(&format!("`{name}`")),
                "docs/operations.md lacks {name}"
            );
        }
    }
}
