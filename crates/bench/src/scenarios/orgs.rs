//! The `orgs` scenario (opt-in): durable batch ingest by a platform key whose batches mix the
//! events of `--orgs` organizations (each event names its own, `organization`), against the same
//! key's single-organization batches (the `Stele-Organization` header, no per-event field), with
//! the same `--batch` and `--ingest-clients`. Target: the mixed rate at least 80% of the
//! single-organization rate (docs/benchmarks.md).
//!
//! The harness makes a platform key through the store (as `bench_key` does), and warm-up
//! requests, off the clock, create the organizations (ingest's auto-create) one by one, the
//! single-organization batches' one in the middle, so that the passes time ingest alone. An
//! untimed eighth of `--orgs-events` of each kind follows, so that no timed pass writes into a
//! nearly empty file. The timed passes, `ROUNDS` of each kind of `--orgs-events / ROUNDS` events,
//! then come in the order single, mixed, mixed, single, so that both kinds get as many early
//! passes (a shorter trail) as late ones.
//! Each mixed event goes to an organization picked by the seed: a batch of 500 touches nearly all
//! of 100 organizations.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::BenchArgs;
use crate::generator::{Assembler, Pool, mix};
use crate::http::Http;
use crate::report::{ms, pct, thousands};

/// Passes of each kind, in pairs: single, mixed, then mixed, single.
const ROUNDS: u64 = 2;
/// The organization of the single-organization batches (its external id).
const SINGLE: &str = "bench-single";

/// The external id of the `n`th organization of the mixed batches.
fn tenant(n: u64) -> String {
    format!("bench-tenant-{n:03}")
}

/// One timed pass.
pub(crate) struct Pass {
    pub(crate) mixed: bool,
    pub(crate) events: u64,
    pub(crate) elapsed: Duration,
    pub(crate) json_bytes: u64,
    pub(crate) latencies: Vec<Duration>,
}

pub(crate) struct OrgsResult {
    pub(crate) orgs: u64,
    pub(crate) passes: Vec<Pass>,
    /// How long the warm-up requests that created the organizations took (off the clock).
    pub(crate) warm_up: Duration,
}

/// What one kind of batch sends: the `Stele-Organization` header, or each event's own.
#[derive(Clone)]
pub(crate) enum Kind {
    /// Every batch names this organization (external id) in the header.
    Single(&'static str),
    /// Each event names its organization's external id, picked from its index.
    Mixed(Arc<dyn Fn(u64) -> String + Send + Sync>),
}

pub(crate) async fn run(
    http: &Http,
    platform_key: &str,
    args: &BenchArgs,
    pool: Arc<Pool>,
    base_ms: i64,
) -> anyhow::Result<OrgsResult> {
    let orgs = args.orgs;
    eprintln!(
        "bench: orgs: {} events of single-organization batches and as many mixing {orgs} \
         organizations, {} per request from {} clients",
        args.orgs_events, args.batch, args.ingest_clients
    );
    // Off the clock: one event for each organization, which creates it. One request each, in
    // this order, so that the single-organization batches' organization sits in the middle of
    // the organizations' keys, as one tenant among many does: the indexes that lead with the
    // organization then take its entries in their middle, as they take the mixed batches', not
    // at their right edge, where SQLite appends more cheaply (a request naming several new
    // organizations creates them in no set order, which made that a matter of luck).
    let started = Instant::now();
    let (before, after) = (0..orgs).partition::<Vec<u64>, _>(|n| *n < orgs / 2);
    let names = before
        .into_iter()
        .map(tenant)
        .chain([SINGLE.to_string()])
        .chain(after.into_iter().map(tenant));
    for org in names {
        let event = json!({"organization": org, "action": "create", "actor": {"type": "system"}});
        let body = json!({ "events": [event] }).to_string();
        http.post_as(platform_key, None, body).await?;
    }
    let warm_up = started.elapsed();

    let seed = args.seed;
    let single = Kind::Single(SINGLE);
    let mixed = Kind::Mixed(Arc::new(move |i| tenant(mix(seed ^ i ^ 0x0e65) % orgs)));
    // Off the clock: an eighth of the events of each kind, so that no timed pass writes into a
    // nearly empty file (the first entries of a trail go in much faster than later ones, which
    // favoured whichever kind ran first).
    let preload = (args.orgs_events / 8).max(1);
    for kind in [single.clone(), mixed.clone()] {
        let p = pass(
            http,
            platform_key,
            args,
            &pool,
            base_ms,
            kind,
            0,
            preload,
            args.orgs_events,
        );
        p.await?;
    }
    // Timed: pairs in the order single, mixed, mixed, single (and again): each pass writes into a
    // larger trail and is a little slower than the one before, and in this order both kinds get
    // as many early passes as late ones.
    let per_pass = args.orgs_events / ROUNDS;
    let mut passes = Vec::new();
    for round in 0..ROUNDS {
        let pair = if round % 2 == 0 {
            [single.clone(), mixed.clone()]
        } else {
            [mixed.clone(), single.clone()]
        };
        for kind in pair {
            let first = round * per_pass;
            passes.push(
                pass(
                    http,
                    platform_key,
                    args,
                    &pool,
                    base_ms,
                    kind,
                    first,
                    per_pass,
                    args.orgs_events,
                )
                .await?,
            );
        }
    }
    Ok(OrgsResult {
        orgs,
        passes,
        warm_up,
    })
}

/// Sends events `first..first + count` (of `total`, which spread over the time span) as batches of
/// one kind and times it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn pass(
    http: &Http,
    key: &str,
    args: &BenchArgs,
    pool: &Arc<Pool>,
    base_ms: i64,
    kind: Kind,
    first: u64,
    count: u64,
    total: u64,
) -> anyhow::Result<Pass> {
    let batch = args.batch as u64;
    let next_batch = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.ingest_clients {
        let (http, key, pool, next_batch, kind) = (
            http.clone(),
            key.to_string(),
            pool.clone(),
            next_batch.clone(),
            kind.clone(),
        );
        let seed = args.seed;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            loop {
                let b = next_batch.fetch_add(1, Ordering::Relaxed);
                let from = first + b * batch;
                if from >= first + count {
                    break;
                }
                let to = (from + batch).min(first + count);
                let mut assembler = Assembler::new(mix(seed ^ mix(b ^ 0x0e65_ba7c)));
                let mut body = String::with_capacity((to - from) as usize * 680 + 16);
                body.push_str("{\"events\":[");
                for i in from..to {
                    if i > from {
                        body.push(',');
                    }
                    let template = pool.pick(mix(seed ^ i));
                    let ms = base_ms + (i as i128 * crate::SPAN_MS as i128 / total as i128) as i64;
                    assembler.write(&mut body, template, ms);
                    if let Kind::Mixed(org_of) = &kind {
                        // The pooled event is a JSON object: its organization goes last.
                        body.pop();
                        let _ = write!(body, ",\"organization\":\"{}\"}}", org_of(i));
                    }
                }
                body.push_str("]}");
                bytes += body.len() as u64;
                let header = match &kind {
                    Kind::Single(org) => Some(*org),
                    Kind::Mixed(_) => None,
                };
                let sent = Instant::now();
                let answer = http.post_as(&key, header, body).await?;
                latencies.push(sent.elapsed());
                let receipts: Value = serde_json::from_slice(&answer)?;
                let n = receipts["events"].as_array().map_or(0, Vec::len) as u64;
                if n != to - from {
                    bail!("a batch of {} events got {n} receipts", to - from);
                }
            }
            anyhow::Ok((latencies, bytes))
        }));
    }
    let mut result = Pass {
        mixed: matches!(kind, Kind::Mixed(_)),
        events: count,
        elapsed: Duration::ZERO,
        json_bytes: 0,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, bytes) = task.await??;
        result.latencies.extend(latencies);
        result.json_bytes += bytes;
    }
    result.elapsed = started.elapsed();
    result.latencies.sort();
    eprintln!(
        "bench: orgs: {} pass: {} events in {:.2} s = {:.0} events/s",
        if result.mixed { "mixed" } else { "single" },
        result.events,
        result.elapsed.as_secs_f64(),
        result.rate()
    );
    Ok(result)
}

impl Pass {
    pub(crate) fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

impl OrgsResult {
    /// Events per second of one kind over all its passes.
    fn rate(&self, mixed: bool) -> f64 {
        let (events, secs) = self
            .passes
            .iter()
            .filter(|p| p.mixed == mixed)
            .fold((0u64, 0f64), |(e, s), p| {
                (e + p.events, s + p.elapsed.as_secs_f64())
            });
        events as f64 / secs
    }

    pub(crate) fn render(&self, o: &mut String, args: &BenchArgs) {
        let _ = writeln!(o, "\n## Batches of many organizations\n");
        let _ = writeln!(
            o,
            "A platform key's batches of {} events from {} clients: single-organization batches \
             (the `Stele-Organization` header) and batches whose every event names one of {} \
             organizations (`organization`), after an untimed eighth of each, in the order single, mixed, \
             mixed, single: {} passes of {} events each. The \
             warm-up requests that created the organizations (one each, `bench-single` in the middle) took {} (off the clock).\n",
            args.batch,
            args.ingest_clients,
            self.orgs,
            self.passes.len(),
            thousands(self.passes.first().map_or(0, |p| p.events)),
            ms(self.warm_up)
        );
        let _ = writeln!(
            o,
            "| pass | batches | events/s | MB/s of JSON | request p50 / p99 / max |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for (i, p) in self.passes.iter().enumerate() {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.1} | {} / {} / {} |",
                i + 1,
                if p.mixed {
                    format!("{} organizations", self.orgs)
                } else {
                    "one organization".to_string()
                },
                thousands(p.rate() as u64),
                p.json_bytes as f64 / p.elapsed.as_secs_f64() / 1e6,
                ms(pct(&p.latencies, 0.50)),
                ms(pct(&p.latencies, 0.99)),
                ms(p.latencies.last().copied().unwrap_or_default())
            );
        }
        let (single, mixed) = (self.rate(false), self.rate(true));
        let _ = writeln!(
            o,
            "\n| figure | measured | target |\n|---|---|---|\n| mixed batches' rate / \
             single-organization batches' rate | {} / {} events/s = {:.0}% | ≥ 80% |",
            thousands(mixed as u64),
            thousands(single as u64),
            100.0 * mixed / single
        );
    }
}
