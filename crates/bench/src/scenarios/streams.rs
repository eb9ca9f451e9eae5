//! The `streams` scenario (issue 20's figures; not in the default list): log streams' delivery
//! throughput per transport, their lag under a steady ingest, and what active streams cost the
//! ingest. The receivers are the bench's own, on loopback (the server runs with
//! `STELE_STREAMS_ALLOW_PRIVATE_TARGETS`): a webhook that answers `204`, a syslog server that
//! reads each connection to its end; NATS JetStream too when `STELE_NATS_URL` names a server
//! (the server the bench starts inherits it).
//!
//! 1. Throughput: a stream of each transport back-fills the newest [`BACKFILL`] entries of the
//!    trail (`from_seq`), alone, timed from its creation until its lag is 0.
//! 2. Lag: one stream of each transport, from now, while the bench records [`STEADY_RATE`]
//!    events/s for [`STEADY_SECONDS`] s (batches of 100 every 10 ms); each stream's
//!    `lag_seconds` (the age of its oldest undelivered entry) sampled every 100 ms.
//! 3. Cost: the ingest scenario's batch ingest of [`COST_EVENTS`] with 0, 1, 10 and 100 webhook
//!    streams active, its rate and the server's CPU each time.
//! 4. Platform-wide: one webhook stream of the platform's own organization, from now, while a
//!    platform key records the same steady ingest spread over [`PLATFORM_ORGS`] organizations
//!    (each event naming one at random; they are made first, off the clock); its `lag_seconds`
//!    sampled as in 2. Its batches are filled from many organizations with a few new entries
//!    each. A second such stream, paused through that ingest and resumed after it, measures how
//!    fast a backlog of that shape is delivered (batches of 100, the default).
//!
//! Health is read from the API (`GET /v1/streams/{id}`), as an operator reads it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use crate::BenchArgs;
use crate::cpu::{CpuMeter, CpuUse};
use crate::generator::{Assembler, Pool, mix};
use crate::http::Http;
use crate::scenarios::ingest::ingest;

/// Entries each transport's back-fill delivers (fewer when the trail is shorter).
pub(crate) const BACKFILL: u64 = 100_000;
/// The steady ingest the lag is measured under.
pub(crate) const STEADY_RATE: u64 = 10_000;
pub(crate) const STEADY_SECONDS: u64 = 20;
/// Events of each batch ingest of the cost phase.
pub(crate) const COST_EVENTS: u64 = 100_000;
/// Active streams in each run of the cost phase.
pub(crate) const COST_STREAMS: [usize; 4] = [0, 1, 10, 100];
/// The organizations the platform-wide phase's ingest spreads over.
pub(crate) const PLATFORM_ORGS: u64 = 1_000;

pub(crate) struct Throughput {
    pub(crate) transport: &'static str,
    pub(crate) entries: u64,
    pub(crate) elapsed: Duration,
}

pub(crate) struct Lag {
    pub(crate) transport: &'static str,
    /// `lag_seconds` samples, sorted.
    pub(crate) samples: Vec<f64>,
    /// From the end of the steady ingest until the stream had caught up.
    pub(crate) caught_up_after: Duration,
}

pub(crate) struct Cost {
    pub(crate) streams: usize,
    pub(crate) events: u64,
    pub(crate) elapsed: Duration,
    pub(crate) cpu: CpuUse,
}

pub(crate) struct StreamsResult {
    pub(crate) throughput: Vec<Throughput>,
    /// The steady ingest's rate as achieved.
    pub(crate) steady_rate: f64,
    pub(crate) lag: Vec<Lag>,
    pub(crate) cost: Vec<Cost>,
    pub(crate) platform: Option<Platform>,
}

/// Phase 4's figures.
pub(crate) struct Platform {
    /// A platform-wide stream's lag under the steady ingest spread over [`PLATFORM_ORGS`]
    /// organizations.
    pub(crate) lag: Lag,
    /// That ingest's rate as achieved.
    pub(crate) rate: f64,
    /// A platform-wide stream (default batches) paused through that ingest, then resumed: what
    /// it delivered, and how long it took to catch up.
    pub(crate) backlog: Throughput,
}

/// The bench's receivers' transports, as stream requests.
struct Receivers {
    webhook: Value,
    syslog: Value,
    nats: bool,
}

impl Receivers {
    async fn start() -> anyhow::Result<Receivers> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let webhook = format!("http://{}/hook", listener.local_addr()?);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(|_body: axum::body::Bytes| async {
                axum::http::StatusCode::NO_CONTENT
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let syslog = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = syslog.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((mut connection, _)) = syslog.accept().await {
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while matches!(connection.read(&mut buffer).await, Ok(n) if n > 0) {}
                });
            }
        });
        Ok(Receivers {
            webhook: json!({"type": "webhook", "url": webhook}),
            syslog: json!({"type": "syslog", "host": "127.0.0.1", "port": port}),
            nats: std::env::var_os("STELE_NATS_URL").is_some(),
        })
    }

    fn transports(&self) -> Vec<(&'static str, Value)> {
        let mut all = vec![
            ("webhook", self.webhook.clone()),
            ("syslog", self.syslog.clone()),
        ];
        if self.nats {
            all.push(("nats", json!({"type": "nats"})));
        }
        all
    }
}

async fn create(http: &Http, body: Value) -> anyhow::Result<String> {
    let response = http
        .client
        .post(format!("{}/v1/streams", http.url))
        .bearer_auth(&http.key)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    if status.as_u16() != 201 {
        bail!("POST /v1/streams answered {status}: {answer}");
    }
    answer["id"]
        .as_str()
        .map(str::to_string)
        .context("a stream's id")
}

async fn view(http: &Http, id: &str) -> anyhow::Result<Value> {
    Ok(http
        .client
        .get(format!("{}/v1/streams/{id}", http.url))
        .bearer_auth(&http.key)
        .send()
        .await?
        .json()
        .await?)
}

async fn delete(http: &Http, id: &str) -> anyhow::Result<()> {
    http.client
        .delete(format!("{}/v1/streams/{id}", http.url))
        .bearer_auth(&http.key)
        .send()
        .await?;
    Ok(())
}

/// Waits until the stream has nothing left to deliver (at most 10 minutes).
async fn caught_up(http: &Http, id: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let view = view(http, id).await?;
        if view["lag_entries"] == 0 {
            return Ok(view);
        }
        if Instant::now() > deadline {
            bail!("stream {id} did not catch up within 10 minutes: {view}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn run(
    http: &Http,
    platform_key: &str,
    args: &BenchArgs,
    pool: Arc<Pool>,
    base_ms: i64,
    server_pid: u32,
    postgres: bool,
) -> anyhow::Result<StreamsResult> {
    let receivers = Receivers::start().await?;
    let head = http
        .get_json(&crate::http::params(&[
            ("actor_type", "all"),
            ("limit", "1"),
        ]))
        .await?["entries"][0]["seq"]
        .as_u64()
        .unwrap_or(0);

    let mut throughput = Vec::new();
    for (transport, body) in receivers.transports() {
        let backfill = BACKFILL.min(head);
        if backfill == 0 {
            break;
        }
        eprintln!("bench: streams: a {transport} stream back-fills {backfill} entries");
        let started = Instant::now();
        let id = create(
            http,
            json!({"transport": body, "from_seq": head - backfill + 1, "max_entries": 1000}),
        )
        .await?;
        let done = caught_up(http, &id).await?;
        throughput.push(Throughput {
            transport,
            entries: done["delivered"].as_u64().unwrap_or(0),
            elapsed: started.elapsed(),
        });
        delete(http, &id).await?;
    }

    eprintln!(
        "bench: streams: {STEADY_RATE} events/s for {STEADY_SECONDS} s with a stream of each transport"
    );
    let mut ids = Vec::new();
    for (transport, body) in receivers.transports() {
        ids.push((transport, create(http, json!({"transport": body})).await?));
    }
    let sampler = sample_lag(http, &ids);
    let steady_rate = steady_ingest(http, pool.clone(), args.seed, None).await?;
    let samples = sampler.await?;
    let ended = Instant::now();
    let mut lag = Vec::new();
    for ((transport, id), mut samples) in ids.iter().zip(samples) {
        caught_up(http, id).await?;
        samples.sort_by(f64::total_cmp);
        lag.push(Lag {
            transport,
            samples,
            caught_up_after: ended.elapsed(),
        });
        delete(http, id).await?;
    }

    let mut cost = Vec::new();
    for (round, streams) in COST_STREAMS.into_iter().enumerate() {
        eprintln!("bench: streams: batch ingest with {streams} webhook streams active");
        let mut ids = Vec::new();
        for _ in 0..streams {
            ids.push(create(http, json!({"transport": receivers.webhook})).await?);
        }
        let load = BenchArgs {
            events: COST_EVENTS,
            seed: mix(args.seed ^ 0x7374_7265_616d ^ round as u64),
            ..args.clone()
        };
        let meter = CpuMeter::start(server_pid, postgres);
        let result = ingest(http, &load, pool.clone(), base_ms, None, false).await?;
        let cpu = meter.stop();
        for id in &ids {
            caught_up(http, id).await?;
        }
        for id in &ids {
            delete(http, id).await?;
        }
        cost.push(Cost {
            streams,
            events: result.events,
            elapsed: result.elapsed,
            cpu,
        });
    }
    let platform = platform_wide(http, platform_key, &receivers, pool, args.seed).await?;
    Ok(StreamsResult {
        throughput,
        steady_rate,
        lag,
        cost,
        platform: Some(platform),
    })
}

/// Samples each stream's `lag_seconds` every 100 ms for [`STEADY_SECONDS`] s.
fn sample_lag(
    http: &Http,
    ids: &[(&'static str, String)],
) -> tokio::task::JoinHandle<Vec<Vec<f64>>> {
    let (http, ids) = (http.clone(), ids.to_vec());
    tokio::spawn(async move {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); ids.len()];
        let stop = Instant::now() + Duration::from_secs(STEADY_SECONDS);
        while Instant::now() < stop {
            for (i, (_, id)) in ids.iter().enumerate() {
                if let Ok(view) = view(&http, id).await {
                    samples[i].push(view["lag_seconds"].as_f64().unwrap_or(0.0));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        samples
    })
}

/// The external id of the platform-wide phase's `n`th organization.
fn platform_org(n: u64) -> String {
    format!("bench-s{n:05}")
}

/// Phase 4: a platform-wide stream under the steady ingest spread over [`PLATFORM_ORGS`]
/// organizations.
async fn platform_wide(
    http: &Http,
    platform_key: &str,
    receivers: &Receivers,
    pool: Arc<Pool>,
    seed: u64,
) -> anyhow::Result<Platform> {
    let platform = http.acting_as(platform_key, None);
    eprintln!("bench: streams: creating {PLATFORM_ORGS} organizations");
    let events: Vec<Value> = (0..PLATFORM_ORGS)
        .map(|n| json!({"organization": platform_org(n), "action": "create", "actor": {"type": "system"}}))
        .collect();
    for chunk in events.chunks(1000) {
        platform
            .post_as(platform_key, None, json!({ "events": chunk }).to_string())
            .await?;
    }
    eprintln!(
        "bench: streams: {STEADY_RATE} events/s over {PLATFORM_ORGS} organizations for {STEADY_SECONDS} s with a platform-wide stream"
    );
    let id = create(&platform, json!({"transport": receivers.webhook})).await?;
    // A second one, paused through the ingest: resumed after it, it measures how fast a
    // platform-wide stream delivers a backlog of that shape (the headroom over the ingest).
    let paused = create(&platform, json!({"transport": receivers.webhook})).await?;
    act(&platform, &paused, "pause").await?;
    let ids = [("webhook, platform-wide", id.clone())];
    let sampler = sample_lag(&platform, &ids);
    let rate = steady_ingest(&platform, pool, seed ^ 0x706c_6174, Some(PLATFORM_ORGS)).await?;
    let mut samples = sampler.await?.remove(0);
    let ended = Instant::now();
    caught_up(&platform, &id).await?;
    samples.sort_by(f64::total_cmp);
    let lag = Lag {
        transport: "webhook, platform-wide,",
        samples,
        caught_up_after: ended.elapsed(),
    };
    delete(&platform, &id).await?;

    eprintln!("bench: streams: a paused platform-wide stream delivers what the ingest left it");
    let resumed = Instant::now();
    act(&platform, &paused, "resume").await?;
    let done = caught_up(&platform, &paused).await?;
    let backlog = Throughput {
        transport: "webhook, platform-wide,",
        entries: done["delivered"].as_u64().unwrap_or(0),
        elapsed: resumed.elapsed(),
    };
    delete(&platform, &paused).await?;
    Ok(Platform { lag, rate, backlog })
}

/// `POST /v1/streams/{id}/{action}`: `pause` or `resume`.
async fn act(http: &Http, id: &str, action: &str) -> anyhow::Result<()> {
    let answer = http
        .client
        .post(format!("{}/v1/streams/{id}/{action}", http.url))
        .bearer_auth(&http.key)
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("{action} stream {id}: {}", answer.status());
    }
    Ok(())
}

/// Records [`STEADY_RATE`] events/s for [`STEADY_SECONDS`] s: a batch of 100 every 10 ms (late
/// ticks are not made up), each event naming one of `orgs` organizations at random when given
/// (a platform key's batches). Returns the rate achieved.
async fn steady_ingest(
    http: &Http,
    pool: Arc<Pool>,
    seed: u64,
    orgs: Option<u64>,
) -> anyhow::Result<f64> {
    const BATCH: u64 = 100;
    let every = Duration::from_micros(1_000_000 * BATCH / STEADY_RATE);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut assembler = Assembler::new(mix(seed ^ 0x5354_4541_4459));
    let started = Instant::now();
    let mut sent = Vec::new();
    while started.elapsed() < Duration::from_secs(STEADY_SECONDS) {
        ticks.tick().await;
        let mut body = String::from("{\"events\":[");
        for i in 0..BATCH {
            if i > 0 {
                body.push(',');
            }
            let template = pool.pick(assembler.rng.next());
            match orgs {
                None => assembler.write(&mut body, template, stele_core::time::now_millis()),
                Some(orgs) => {
                    let mut event = String::new();
                    assembler.write(&mut event, template, stele_core::time::now_millis());
                    let org = platform_org(assembler.rng.below(orgs));
                    body.push_str(&format!("{{\"organization\":\"{org}\","));
                    body.push_str(&event[1..]);
                }
            }
        }
        body.push_str("]}");
        let http = http.clone();
        sent.push(tokio::spawn(async move { http.post(body).await }));
    }
    let mut events = 0;
    for request in sent {
        request.await??;
        events += BATCH;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}
