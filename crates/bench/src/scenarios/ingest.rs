//! The `ingest` scenario: durable batch ingest, `--batch` events per request from
//! `--ingest-clients` concurrent senders, until `--events` are stored.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;

use crate::generator::{Assembler, Pool, mix};
use crate::http::Http;
use crate::scenarios::visibility::{self, IDLE_PROBES, PROBE_EVERY, Probes};
use crate::{BenchArgs, EventKeys, SPAN_MS};

pub(crate) struct IngestResult {
    pub(crate) events: u64,
    pub(crate) elapsed: Duration,
    pub(crate) json_bytes: u64,
    pub(crate) requests: usize,
    pub(crate) request_latencies: Vec<Duration>,
    /// Time the senders spent building bodies, summed over senders.
    pub(crate) build_time: Duration,
    /// With `probe`: read-after-write probes while the batches went in, and after them on an
    /// idle server (each probe is one more event, not counted in `events`).
    pub(crate) visible_under_load: Probes,
    pub(crate) visible_when_idle: Probes,
}

/// With `probe`, read-after-write probes run beside the batches and after them
/// (`scenarios::visibility`, which asks for them; the ingest scenario itself runs none, so that its
/// rate is the ingest's alone).
pub(crate) async fn ingest(
    http: &Http,
    args: &BenchArgs,
    pool: Arc<Pool>,
    base_ms: i64,
    wal: Option<PathBuf>,
    probe: bool,
) -> anyhow::Result<IngestResult> {
    let total = args.events;
    let batch = args.batch as u64;
    eprintln!(
        "bench: ingest: {total} events in batches of {batch} from {} clients{}",
        args.ingest_clients,
        match args.event_keys {
            Some(EventKeys::Random) => ", each event with a random idempotency key",
            Some(EventKeys::Ordered) => ", each event with a time-ordered idempotency key",
            None => "",
        }
    );
    let next_batch = Arc::new(AtomicU64::new(0));
    let stored = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let progress = {
        let stored = stored.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if last.0.elapsed() >= Duration::from_secs(10) {
                    let now = stored.load(Ordering::Relaxed);
                    let wal_mb = match &wal {
                        Some(wal) => format!(
                            ", WAL {} MB",
                            std::fs::metadata(wal).map_or(0, |m| m.len()) / 1_000_000
                        ),
                        None => String::new(),
                    };
                    eprintln!(
                        "bench: ingest: {now} / {total} stored, {:.0} events/s over the last {:.0} s{wal_mb}",
                        (now - last.1) as f64 / last.0.elapsed().as_secs_f64(),
                        last.0.elapsed().as_secs_f64()
                    );
                    last = (Instant::now(), now);
                }
            }
        })
    };

    // With `probe`, a read-after-write probe every PROBE_EVERY while the batches go in.
    let run = mix(now_ms() ^ args.seed);
    let probes = probe.then(|| {
        let (http, done) = (http.clone(), done.clone());
        tokio::spawn(async move {
            let mut probes = Probes::default();
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(PROBE_EVERY).await;
                visibility::probe(&http, run, n, &mut probes).await?;
                n += 1;
            }
            anyhow::Ok((probes, n))
        })
    });

    let mut tasks = Vec::new();
    for _ in 0..args.ingest_clients {
        let http = http.clone();
        let (next_batch, stored, pool) = (next_batch.clone(), stored.clone(), pool.clone());
        let seed = args.seed;
        let event_keys = args.event_keys;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            let mut build_time = Duration::ZERO;
            let mut event = String::new();
            loop {
                let b = next_batch.fetch_add(1, Ordering::Relaxed);
                let first = b * batch;
                if first >= total {
                    break;
                }
                let last = (first + batch).min(total);
                let build_started = Instant::now();
                let mut assembler = Assembler::new(mix(seed ^ mix(b ^ 0x5eed_ba7c)));
                let mut body = String::with_capacity((last - first) as usize * 640 + 16);
                body.push_str("{\"events\":[");
                for i in first..last {
                    if i > first {
                        body.push(',');
                    }
                    let template = pool.pick(mix(seed ^ i));
                    let ms = base_ms + (i as i128 * SPAN_MS as i128 / total as i128) as i64;
                    if let Some(kind) = event_keys {
                        // A key of 36 characters, first in the object.
                        event.clear();
                        assembler.write(&mut event, template, ms);
                        let (a, b) = (assembler.rng.next(), assembler.rng.next());
                        let _ = match kind {
                            EventKeys::Random => {
                                write!(body, "{{\"idempotency_key\":\"{a:016x}-{b:019x}\",")
                            }
                            EventKeys::Ordered => write!(
                                body,
                                "{{\"idempotency_key\":\"{:012x}-{:04x}-{b:018x}\",",
                                now_ms(),
                                a & 0xffff
                            ),
                        };
                        body.push_str(&event[1..]);
                    } else {
                        assembler.write(&mut body, template, ms);
                    }
                }
                body.push_str("]}");
                build_time += build_started.elapsed();
                bytes += body.len() as u64;
                let sent = Instant::now();
                let answer = http.post(body).await?;
                latencies.push(sent.elapsed());
                let receipts: Value = serde_json::from_slice(&answer)?;
                let n = receipts["events"].as_array().map_or(0, Vec::len) as u64;
                if n != last - first {
                    bail!("a batch of {} events got {n} receipts", last - first);
                }
                stored.fetch_add(n, Ordering::Relaxed);
            }
            anyhow::Ok((latencies, bytes, build_time))
        }));
    }
    let mut result = IngestResult {
        events: 0,
        elapsed: Duration::ZERO,
        json_bytes: 0,
        requests: 0,
        request_latencies: Vec::new(),
        build_time: Duration::ZERO,
        visible_under_load: Probes::default(),
        visible_when_idle: Probes::default(),
    };
    let mut failure = None;
    for task in tasks {
        match task.await? {
            Ok((latencies, bytes, build_time)) => {
                result.requests += latencies.len();
                result.request_latencies.extend(latencies);
                result.json_bytes += bytes;
                result.build_time += build_time;
            }
            Err(e) => failure = Some(e),
        }
    }
    result.elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = progress.await;
    if let Some(e) = failure {
        return Err(e.context("ingest"));
    }
    if let Some(probes) = probes {
        let (mut under_load, sent) = probes.await?.map_err(|e| e.context("visibility probe"))?;
        under_load.finish();
        result.visible_under_load = under_load;
        let mut idle = Probes::default();
        for n in sent..sent + IDLE_PROBES {
            tokio::time::sleep(PROBE_EVERY).await;
            visibility::probe(http, run, n, &mut idle).await?;
        }
        idle.finish();
        result.visible_when_idle = idle;
    }
    result.events = stored.load(Ordering::Relaxed);
    result.request_latencies.sort();
    eprintln!(
        "bench: ingest: {} events in {:.2} s = {:.0} events/s",
        result.events,
        result.elapsed.as_secs_f64(),
        result.events as f64 / result.elapsed.as_secs_f64()
    );
    Ok(result)
}

/// Milliseconds since the Unix epoch, as a UUID v7 begins with.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
