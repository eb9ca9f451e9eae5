//! The `erasure` scenario: one GDPR erasure of the busiest user of the generated trail
//! (`usr_00000`, by id and email), timed from request to answer, with what the server says it
//! rewrote and how long its clean-up of the database files took (integrity.md section 7). Runs
//! after the ingest, on the server that wrote it; the verify scenario then checks the chain.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::http::Http;

pub(crate) struct ErasureResult {
    /// Entries the erasure rewrote.
    pub(crate) entries: u64,
    /// From sending the request to its answer (the rewrite, the record, the clean-up).
    pub(crate) wall: Duration,
    /// The clean-up alone, as the answer reports it.
    pub(crate) cleanup: Duration,
}

/// The generator's user 0 (`generator::person(0)`): the most frequent actor.
const ID: &str = "usr_00000";

pub(crate) async fn run(http: &Http) -> anyhow::Result<ErasureResult> {
    eprintln!("bench: erasure: erasing {ID}");
    let started = Instant::now();
    let response = http
        .client
        .post(format!("{}/v1/erasure", http.url))
        .bearer_auth(&http.key)
        .json(&json!({"id": ID, "reason": "bench"}))
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .context("POST /v1/erasure")?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("reading the erasure's answer")?;
    let wall = started.elapsed();
    if !status.is_success() {
        bail!("POST /v1/erasure answered {status}: {body}");
    }
    Ok(ErasureResult {
        entries: body["erased_entries"].as_u64().unwrap_or(0),
        wall,
        cleanup: Duration::from_millis(body["cleanup"]["duration_ms"].as_u64().unwrap_or(0)),
    })
}
