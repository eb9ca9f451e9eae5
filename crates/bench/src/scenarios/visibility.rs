//! The `visibility` scenario, read-after-write (issue 18's target: an acknowledged event is found
//! by every filter and by search at once when the server is idle, and within 1 s, p99, under full
//! ingest load). It runs a batch ingest of its own ([`LOAD_EVENTS`], as the `ingest` scenario
//! sends them) with probes beside it, then probes the idle server. Not during the `ingest`
//! scenario: the probes' reads cost the server CPU (each checks the entries the search index has
//! not taken in yet one by one), which would lower the ingest rate that scenario reports.
//!
//! A probe records one event whose actor, entity id, correlation id and description word are its
//! own, and right after the `201` asks each of those filters for it, side by side. A filter that
//! does not find it is asked again every [`RETRY_EVERY`], for up to [`GIVE_UP_AFTER`]. The time
//! of a probe is from its `201` until every filter had found the event: when each finds it at
//! once, that is the time of the slowest of the four first pages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use crate::BenchArgs;
use crate::generator::{Pool, mix};
use crate::http::{Http, params};
use crate::scenarios::ingest::{IngestResult, ingest};

/// Events of the batch ingest the probes run beside (fewer when `--events` is smaller).
pub(crate) const LOAD_EVENTS: u64 = 200_000;

/// Runs the scenario: the load, its probes, the idle probes.
pub(crate) async fn run(
    http: &Http,
    args: &BenchArgs,
    pool: Arc<Pool>,
    base_ms: i64,
) -> anyhow::Result<IngestResult> {
    let load = BenchArgs {
        events: LOAD_EVENTS.min(args.events),
        // Other events than the ingest scenario's (and other idempotency keys).
        seed: mix(args.seed ^ 0x7669_7369_6269_6c65),
        ..args.clone()
    };
    ingest(http, &load, pool, base_ms, None, true).await
}

/// How often probes are sent while the batch clients ingest.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(200);
/// Probes sent after the ingest, on an idle server.
pub(crate) const IDLE_PROBES: u64 = 20;
const RETRY_EVERY: Duration = Duration::from_millis(10);
const GIVE_UP_AFTER: Duration = Duration::from_secs(5);

/// What a series of probes saw.
#[derive(Default)]
pub(crate) struct Probes {
    /// Per probe, the time from its `201` until every filter had found the event; sorted.
    pub(crate) latencies: Vec<Duration>,
    /// Probes that every filter found at its first request.
    pub(crate) found_at_once: usize,
    /// Probes that some filter had not found after [`GIVE_UP_AFTER`].
    pub(crate) missed: usize,
}

impl Probes {
    pub(crate) fn count(&self) -> usize {
        self.latencies.len() + self.missed
    }

    pub(crate) fn finish(&mut self) {
        self.latencies.sort();
    }
}

/// One probe: `n` tells it apart from the others of the run, `run` from other runs' probes in a
/// kept data directory.
pub(crate) async fn probe(http: &Http, run: u64, n: u64, into: &mut Probes) -> anyhow::Result<()> {
    let tag = format!("vis{run:x}n{n}");
    let event = json!({
        "action": "probe",
        "description": format!("visibility probe {tag}"),
        "actor": {"id": format!("actor-{tag}"), "type": "user"},
        "entity": {"type": "probe", "id": format!("entity-{tag}")},
        "context": {"correlation_id": format!("corr-{tag}")},
    });
    let answer = http.post(event.to_string()).await?;
    let acknowledged = Instant::now();
    let receipt: serde_json::Value = serde_json::from_slice(&answer)?;
    let Some(id) = receipt["events"][0]["id"].as_str() else {
        bail!(
            "a probe got no receipt: {}",
            String::from_utf8_lossy(&answer)
        );
    };
    // The filters are asked side by side, as four readers would.
    let ask =
        |filter: &'static str, value: String| until_found(http, filter, value, id, acknowledged);
    let answers = tokio::try_join!(
        ask("actor", format!("actor-{tag}")),
        ask("entity_id", format!("entity-{tag}")),
        ask("correlation_id", format!("corr-{tag}")),
        ask("q", tag.clone()),
    )?;
    let answers = [answers.0, answers.1, answers.2, answers.3];
    if answers.contains(&Found::Never) {
        into.missed += 1;
        return Ok(());
    }
    into.latencies.push(acknowledged.elapsed());
    if answers.iter().all(|a| *a == Found::AtOnce) {
        into.found_at_once += 1;
    }
    Ok(())
}

#[derive(PartialEq)]
enum Found {
    AtOnce,
    Later,
    Never,
}

/// Asks `filter` for `value` until the page holds the entry `id`, or [`GIVE_UP_AFTER`] has
/// passed since `acknowledged`.
async fn until_found(
    http: &Http,
    filter: &str,
    value: String,
    id: &str,
    acknowledged: Instant,
) -> anyhow::Result<Found> {
    let query = params(&[(filter, &value), ("limit", "5")]);
    let mut found = Found::AtOnce;
    loop {
        let page = http.get_json(&query).await?;
        if page["entries"]
            .as_array()
            .is_some_and(|entries| entries.iter().any(|e| e["id"] == id))
        {
            return Ok(found);
        }
        if acknowledged.elapsed() >= GIVE_UP_AFTER {
            return Ok(Found::Never);
        }
        found = Found::Later;
        tokio::time::sleep(RETRY_EVERY).await;
    }
}
