//! The `single` scenario: one event per request from `--single-clients` concurrent clients for
//! `--single-seconds`. Its load is also the one the `prune` scenario measures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;
use stele_core::time::now_millis;

use crate::BenchArgs;
use crate::generator::{Assembler, Pool, mix};
use crate::http::Http;

pub(crate) struct SingleResult {
    /// Events stored (requests answered 201 with one receipt).
    pub(crate) events: u64,
    pub(crate) elapsed: Duration,
    pub(crate) clients: usize,
    /// Every request's latency, sorted, failed ones included.
    pub(crate) latencies: Vec<Duration>,
    /// When each request was answered, from the start of the load (in no particular order).
    pub(crate) answered_at: Vec<Duration>,
    /// When the slowest request was sent, from the start of the load.
    pub(crate) worst_sent_at: Duration,
    /// Requests that failed (no answer, or not 201 with one receipt), and the first few reasons.
    pub(crate) failed: u64,
    pub(crate) failures: Vec<String>,
}

pub(crate) async fn single(
    http: &Http,
    args: &BenchArgs,
    pool: Arc<Pool>,
) -> anyhow::Result<SingleResult> {
    eprintln!(
        "bench: single: {} clients, one event per request, for {} s",
        args.single_clients, args.single_seconds
    );
    let r = single_load(
        http,
        args.single_clients,
        args.seed,
        0x5109_1e00,
        pool,
        stop_after(Duration::from_secs(args.single_seconds)),
    )
    .await?;
    if let Some(e) = r.failures.first() {
        bail!("single-event requests: {} failed, the first: {e}", r.failed);
    }
    eprintln!(
        "bench: single: {} events in {:.2} s",
        r.events,
        r.elapsed.as_secs_f64()
    );
    Ok(r)
}

/// A flag that turns true after `after`.
pub(crate) fn stop_after(after: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// One event per request (`occurred_at` = now) from `clients` concurrent clients until `stop` is
/// set; client `c` draws its events from `seed` and `salt + c`. A failed request is counted and the
/// client goes on (after 10 ms, so that a server that is down is not hammered); callers decide what
/// failures mean.
pub(crate) async fn single_load(
    http: &Http,
    clients: usize,
    seed: u64,
    salt: u64,
    pool: Arc<Pool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<SingleResult> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let pool = pool.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut assembler = Assembler::new(mix(seed ^ mix(salt + c as u64)));
            // (sent, latency) of each request, from the start of the load.
            let mut requests = Vec::new();
            let mut stored = 0u64;
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let template = pool.pick(assembler.rng.next());
                let mut body = String::with_capacity(700);
                assembler.write(&mut body, template, now_millis());
                let sent = Instant::now();
                let answer = http.post(body).await;
                requests.push((sent - started, sent.elapsed()));
                let outcome = answer.and_then(|answer| {
                    let receipt: Value = serde_json::from_slice(&answer)?;
                    if receipt["events"].as_array().map_or(0, Vec::len) != 1 {
                        bail!("a single event got no receipt: {receipt}");
                    }
                    Ok(())
                });
                match outcome {
                    Ok(()) => stored += 1,
                    Err(e) => {
                        failures.push(format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (requests, stored, failures)
        }));
    }
    let mut result = SingleResult {
        events: 0,
        elapsed: Duration::ZERO,
        clients,
        latencies: Vec::new(),
        answered_at: Vec::new(),
        worst_sent_at: Duration::ZERO,
        failed: 0,
        failures: Vec::new(),
    };
    let mut worst = Duration::ZERO;
    for task in tasks {
        let (requests, stored, failures) = task.await?;
        for (sent, latency) in requests {
            if latency > worst {
                worst = latency;
                result.worst_sent_at = sent;
            }
            result.latencies.push(latency);
            result.answered_at.push(sent + latency);
        }
        result.events += stored;
        result.failed += failures.len() as u64;
        result
            .failures
            .extend(failures.into_iter().take(5 - result.failures.len().min(5)));
    }
    result.elapsed = started.elapsed();
    result.latencies.sort();
    Ok(result)
}
