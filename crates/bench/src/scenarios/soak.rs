//! The `soak` scenario (opt-in): issue 17's "memory grew from 15 to 370 MB over 50,000 mixed
//! requests and kept most of it". A paced mix of every kind of request a deployed server meets,
//! for `--soak-minutes`, on a server restarted just before, with the server's resident memory
//! read from `/proc/<pid>/status` every 10 s.
//!
//! The mix (per 100 draws; each of `--soak-clients` clients draws a kind per tick, the ticks
//! spread so that all clients together draw `--soak-rate` times a second):
//!
//! - 40 single events (`POST /v1/events`, one event, `occurred_at` now);
//! - 8 batches (`POST /v1/events`, `{"events": [...]}` of [`BATCH`] events);
//! - 16 first pages (`GET /v1/events?…&limit=50`) with one of several filters, their values drawn
//!   from what earlier answers held (actor emails, entities, correlation ids, detailed actions);
//! - 8 searches (`q`: a common or rare word, or the query language with a field);
//! - 6 cursor walks: a first page, then `next_cursor` for up to [`WALK_PAGES`] more pages, each page
//!   counted as one request;
//! - 10 entries by id (`GET /v1/events/{id}`, ids from the receipts of earlier ingests; until the
//!   first ingest has answered, a single event instead);
//! - 2 exports (`GET /v1/export`, NDJSON and CSV in turn, the last 10 s of the trail);
//! - 6 console log pages (`GET /console/log?…`) and 4 console entry pages
//!   (`GET /console/entries/{id}`), with the session of a member the harness adds through the
//!   store and signs in through the sign-in form, once, before the load.
//!
//! Every answer must be the kind's success (201, 200); anything else, or no answer, is a failed
//! request, counted per kind. Reported: the resident memory (`VmRSS`, with `RssAnon` and
//! `RssFile` beside it) at the end of the warm-up (the first 20% of the run, at most 5 minutes),
//! its maximum after the warm-up and at the end, the growth after the warm-up against its target
//! (the process's own memory less SQLite's page caches, `RssAnon` − the server's
//! `stele_sqlite_page_cache_bytes`: the mean of the run's last window at most 10% above the mean
//! of the window right after the warm-up, each as long as the warm-up), `RssAnon` itself and the
//! allocator's live bytes beside it, a minute-by-minute curve, and per kind the requests,
//! failures and latency.
//!
//! Why less the page caches: they are the embedded database's buffer pool, bounded by their
//! configured sizes, and fill as the trail grows, which from an empty start may take longer than
//! the warm-up; memory that grows past them is what the target is for.
//!
//! Why `RssAnon` and not `VmRSS`: on SQLite `VmRSS` also counts the database file's pages that
//! each connection reads through its memory map, once per connection, coming and going with the
//! kernel's page cache and SQLite's remaps (27 to 645 MB from one sample to the next in a 30-minute
//! run); they are the kernel's, shared and reclaimable, and say nothing about what the process
//! holds on to. Both are reported.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::Value;
use stele_core::time::{format_rfc3339, now_millis};
use stele_store::{NewMember, Store};

use super::export::status_kb;
use crate::generator::{ACTIONS, Assembler, COMMON_WORDS, Pool, RARE_TOKENS, Rng, VOCAB, mix};
use crate::http::Http;
use crate::report::{ms, pct, thousands};

/// Events per batch request.
pub(crate) const BATCH: usize = 50;
/// Pages a cursor walk follows after its first.
pub(crate) const WALK_PAGES: usize = 4;
/// How often the server's memory is read.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The longest warm-up, whatever the run's length.
pub(crate) const MAX_WARMUP: Duration = Duration::from_secs(5 * 60);
/// The target: the mean `RssAnon` of the run's last window at most this much above the mean of
/// the window right after the warm-up (see [`Growth`]).
pub(crate) const TARGET_GROWTH_PERCENT: f64 = 10.0;
/// The console member the harness adds and signs in as.
const CONSOLE_EMAIL: &str = "soak-bench@example.com";
const CONSOLE_PASSWORD: &str = "soak bench password 1";

/// The kinds of request, in the report's order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Single,
    Batch,
    FirstPage,
    Search,
    CursorPage,
    EntryById,
    Export,
    ConsoleLog,
    ConsoleEntry,
}

pub(crate) const KINDS: [Kind; 9] = [
    Kind::Single,
    Kind::Batch,
    Kind::FirstPage,
    Kind::Search,
    Kind::CursorPage,
    Kind::EntryById,
    Kind::Export,
    Kind::ConsoleLog,
    Kind::ConsoleEntry,
];

/// What a client draws, with its weight per 100 draws. A walk is one draw of several pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Draw {
    One(Kind),
    Walk,
}

const MIX: [(Draw, u64); 9] = [
    (Draw::One(Kind::Single), 40),
    (Draw::One(Kind::Batch), 8),
    (Draw::One(Kind::FirstPage), 16),
    (Draw::One(Kind::Search), 8),
    (Draw::Walk, 6),
    (Draw::One(Kind::EntryById), 10),
    (Draw::One(Kind::Export), 2),
    (Draw::One(Kind::ConsoleLog), 6),
    (Draw::One(Kind::ConsoleEntry), 4),
];

impl Kind {
    fn index(self) -> usize {
        KINDS.iter().position(|k| *k == self).expect("listed")
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Single => "single event (`POST /v1/events`)",
            Kind::Batch => "batch of 50 (`POST /v1/events`)",
            Kind::FirstPage => "first page with a filter (`GET /v1/events`)",
            Kind::Search => "search (`q`)",
            Kind::CursorPage => "cursor walk, each page (`cursor=next_cursor`)",
            Kind::EntryById => "entry by id (`GET /v1/events/{id}`)",
            Kind::Export => "export, last 10 s (`GET /v1/export`, NDJSON / CSV)",
            Kind::ConsoleLog => "console log page (`GET /console/log`)",
            Kind::ConsoleEntry => "console entry page (`GET /console/entries/{id}`)",
        }
    }
}

fn draw(rng: &mut Rng) -> Draw {
    let total: u64 = MIX.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (d, w) in MIX {
        if x < w {
            return d;
        }
        x -= w;
    }
    MIX[0].0
}

/// One reading of the server's memory, in kB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Sample {
    pub(crate) at: Duration,
    pub(crate) rss: u64,
    pub(crate) anon: u64,
    pub(crate) file: u64,
    pub(crate) shmem: u64,
    /// SQLite's heap (`stele_sqlite_memory_bytes` on `/metrics`; 0 on PostgreSQL).
    pub(crate) sqlite: u64,
    /// Of that, the connections' page caches (`stele_sqlite_page_cache_bytes`).
    pub(crate) page_cache: u64,
    /// What the program has allocated and not freed (`stele_allocator_allocated_bytes`: the
    /// live heap, without what the allocator keeps freed).
    pub(crate) allocated: u64,
    /// Requests answered so far.
    pub(crate) requests: u64,
}

impl Sample {
    async fn read(http: &Http, pid: u32, at: Duration, requests: u64) -> Option<Sample> {
        let rss = status_kb(pid, "VmRSS")?;
        let metrics = http.unlabeled_metrics().await.unwrap_or_default();
        let kb = |name: &str| {
            metrics
                .get(name)
                .map_or(0, |bytes| (*bytes / 1024.0) as u64)
        };
        Some(Sample {
            at,
            rss,
            anon: status_kb(pid, "RssAnon").unwrap_or(0),
            file: status_kb(pid, "RssFile").unwrap_or(0),
            shmem: status_kb(pid, "RssShmem").unwrap_or(0),
            sqlite: kb("stele_sqlite_memory_bytes"),
            page_cache: kb("stele_sqlite_page_cache_bytes"),
            allocated: kb("stele_allocator_allocated_bytes"),
            requests,
        })
    }

    /// The process's own memory less SQLite's page caches: what the target is read on.
    pub(crate) fn own(&self) -> u64 {
        self.anon.saturating_sub(self.page_cache)
    }
}

/// Resident memory after the warm-up, against its end.
///
/// The target compares two windows as long as the warm-up, by their mean: the one right after
/// the warm-up and the run's last. One sample against another would measure the noise of a
/// single reading (a page cache half filled, a remap of the database just done) as much as the
/// trend; a leak shows in the means as a steady climb.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Growth {
    /// The last sample taken at or before the end of the warm-up.
    pub(crate) warm: Sample,
    /// The largest `rss` after the warm-up (the sample).
    pub(crate) max_after: Sample,
    pub(crate) end: Sample,
    /// The samples of the window right after the warm-up.
    pub(crate) first: Window,
    /// The samples of the run's last window.
    pub(crate) last: Window,
}

/// The mean memory of the samples taken in `(from, to]`, in kB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Window {
    pub(crate) from: Duration,
    pub(crate) to: Duration,
    pub(crate) rss: f64,
    pub(crate) anon: f64,
    pub(crate) file: f64,
    /// `RssAnon` less SQLite's page caches ([`Sample::own`]).
    pub(crate) own: f64,
    pub(crate) page_cache: f64,
    pub(crate) allocated: f64,
    /// How far apart the window's own samples of [`Sample::own`] lie (highest − lowest): what
    /// the memory moves by with no trend at all (thread stacks, the allocator's decay).
    pub(crate) own_spread: f64,
}

impl Window {
    fn of(samples: &[Sample], from: Duration, to: Duration) -> Option<Window> {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at > from && s.at <= to)
            .collect();
        if inside.is_empty() {
            return None;
        }
        let mean = |field: fn(&Sample) -> u64| {
            inside.iter().map(|s| field(s) as f64).sum::<f64>() / inside.len() as f64
        };
        Some(Window {
            from,
            to,
            rss: mean(|s| s.rss),
            anon: mean(|s| s.anon),
            file: mean(|s| s.file),
            own: mean(Sample::own),
            page_cache: mean(|s| s.page_cache),
            allocated: mean(|s| s.allocated),
            own_spread: {
                let own = inside.iter().map(|s| Sample::own(s) as f64);
                own.clone().fold(f64::MIN, f64::max) - own.fold(f64::MAX, f64::min)
            },
        })
    }
}

impl Growth {
    /// From samples in time order; `None` without a sample after the warm-up.
    pub(crate) fn of(samples: &[Sample], warmup: Duration) -> Option<Growth> {
        let warm = *samples.iter().rev().find(|s| s.at <= warmup)?;
        let after: Vec<&Sample> = samples.iter().filter(|s| s.at > warmup).collect();
        let max_after = **after.iter().max_by_key(|s| s.rss)?;
        let end = **after.last()?;
        let first = Window::of(samples, warmup, (warmup * 2).min(end.at))?;
        let last = Window::of(samples, end.at.saturating_sub(warmup).max(warmup), end.at)?;
        Some(Growth {
            warm,
            max_after,
            end,
            first,
            last,
        })
    }

    /// End minus the end of the warm-up, in kB (negative when it shrank).
    pub(crate) fn kb(&self, field: fn(&Sample) -> u64) -> i64 {
        field(&self.end) as i64 - field(&self.warm) as i64
    }

    pub(crate) fn percent(&self, field: fn(&Sample) -> u64) -> f64 {
        100.0 * self.kb(field) as f64 / field(&self.warm).max(1) as f64
    }

    /// The last window's mean minus the first's, in kB.
    pub(crate) fn window_kb(&self, field: fn(&Window) -> f64) -> f64 {
        field(&self.last) - field(&self.first)
    }

    pub(crate) fn window_percent(&self, field: fn(&Window) -> f64) -> f64 {
        100.0 * self.window_kb(field) / field(&self.first).max(1.0)
    }

    /// Flat: the last window's mean at most [`TARGET_GROWTH_PERCENT`] above the first's, or by
    /// no more than the first window's own samples lie apart. (A small process's memory moves by
    /// more than 10% from one sample to the next, 17.7 to 25.7 MB in a PostgreSQL run whose live
    /// heap stayed at 3.6 to 3.8 MB: a difference of means inside that spread is not growth.)
    pub(crate) fn met(&self) -> bool {
        self.window_percent(|w| w.own) <= TARGET_GROWTH_PERCENT || self.within_noise()
    }

    /// Whether the growth is no more than the first window's own spread.
    pub(crate) fn within_noise(&self) -> bool {
        self.window_kb(|w| w.own) <= self.first.own_spread
    }
}

/// The warm-up of a run this long: its first 20%, at most [`MAX_WARMUP`].
pub(crate) fn warmup_of(length: Duration) -> Duration {
    (length / 5).min(MAX_WARMUP)
}

/// Per kind: answered requests' latencies (sorted at the end), failures, rows or bytes read.
#[derive(Default, Clone)]
pub(crate) struct KindStats {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) failed: u64,
    /// Entries in the answers (pages), events stored (ingest) or bytes (exports).
    pub(crate) amount: u64,
    /// Answers with at least one row (pages, exports).
    pub(crate) nonempty: u64,
}

pub(crate) struct SoakResult {
    pub(crate) length: Duration,
    pub(crate) warmup: Duration,
    pub(crate) elapsed: Duration,
    pub(crate) rate: u64,
    pub(crate) clients: usize,
    pub(crate) samples: Vec<Sample>,
    pub(crate) kinds: Vec<KindStats>,
    pub(crate) failures: Vec<String>,
}

impl SoakResult {
    pub(crate) fn requests(&self) -> u64 {
        self.kinds
            .iter()
            .map(|k| k.latencies.len() as u64 + k.failed)
            .sum()
    }

    pub(crate) fn failed(&self) -> u64 {
        self.kinds.iter().map(|k| k.failed).sum()
    }
}

/// Values earlier answers held, for later requests to ask about (bounded rings).
#[derive(Default)]
struct Seen {
    ids: VecDeque<String>,
    emails: VecDeque<String>,
    entities: VecDeque<(String, String)>,
    correlations: VecDeque<String>,
    detailed: VecDeque<String>,
}

const SEEN: usize = 2048;

fn keep<T>(ring: &mut VecDeque<T>, value: T) {
    if ring.len() == SEEN {
        ring.pop_front();
    }
    ring.push_back(value);
}

fn pick<T: Clone>(ring: &VecDeque<T>, rng: &mut Rng) -> Option<T> {
    (!ring.is_empty()).then(|| ring[rng.below(ring.len() as u64) as usize].clone())
}

impl Seen {
    fn entries(&mut self, page: &Value) -> u64 {
        let entries = page["entries"].as_array().map_or(&[][..], Vec::as_slice);
        for e in entries {
            let text = |v: &Value| v.as_str().map(str::to_string);
            if let Some(id) = text(&e["id"]) {
                keep(&mut self.ids, id);
            }
            if let Some(m) = text(&e["actor"]["email"]) {
                keep(&mut self.emails, m);
            }
            let entity_id = match &e["entity"]["id"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if let (Some(t), Some(id)) = (text(&e["entity"]["type"]), entity_id) {
                keep(&mut self.entities, (t, id));
            }
            if let Some(c) = text(&e["context"]["correlation_id"]) {
                keep(&mut self.correlations, c);
            }
            if let Some(d) = text(&e["detailed_action"]) {
                keep(&mut self.detailed, d);
            }
        }
        entries.len() as u64
    }
}

/// Where the requests go: the API with the harness's key, the console with a session.
struct Target {
    http: Http,
    /// The console's client: no redirects followed (a redirect to the sign-in page is a failure).
    console: reqwest::Client,
    session: String,
    pool: Arc<Pool>,
    seen: Mutex<Seen>,
}

pub(crate) struct Options {
    pub(crate) minutes: u64,
    pub(crate) rate: u64,
    pub(crate) clients: usize,
    pub(crate) seed: u64,
}

/// Adds the console member through the store (as the harness makes its keys) and signs in through
/// the sign-in form: the session cookie's value.
pub(crate) async fn console_session(
    store: &dyn Store,
    org_id: &str,
    http: &Http,
) -> anyhow::Result<(reqwest::Client, String)> {
    let org = store
        .list_orgs()
        .await?
        .into_iter()
        .find(|o| o.id == org_id)
        .with_context(|| format!("organization {org_id} not found"))?;
    if store.memberships_by_email(CONSOLE_EMAIL).await?.is_empty() {
        store
            .create_member(
                org.key,
                NewMember {
                    email: CONSOLE_EMAIL.into(),
                    name: Some("Soak bench".into()),
                    role: "admin".into(),
                    password_hash: stele_service::access::members::hash_password(CONSOLE_PASSWORD)?,
                    created_at: now_millis(),
                },
            )
            .await?;
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(64)
        .build()?;
    let login = format!("{}/console/login", http.url);
    let form = client
        .get(&login)
        .send()
        .await
        .context("GET /console/login")?;
    let nonce = set_cookie(form.headers(), "stele_login")
        .context("GET /console/login set no stele_login cookie")?;
    let csrf =
        hidden_field(&form.text().await?, "csrf").context("the sign-in form has no csrf field")?;
    let answer = client
        .post(&login)
        .header("cookie", format!("stele_login={nonce}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/console"),
            ("email", CONSOLE_EMAIL),
            ("password", CONSOLE_PASSWORD),
        ])
        .send()
        .await
        .context("POST /console/login")?;
    let status = answer.status();
    let session = set_cookie(answer.headers(), "stele_session");
    match session {
        Some(s) if status.is_redirection() => Ok((client, s)),
        _ => bail!(
            "signing in to the console answered {status}: {}",
            answer.text().await.unwrap_or_default()
        ),
    }
}

/// The value of the cookie `name` among the answer's `Set-Cookie` headers.
pub(crate) fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?.trim();
            let (n, value) = pair.split_once('=')?;
            (n == name && !value.is_empty()).then(|| value.to_string())
        })
}

/// The value of the hidden input `name` in a page (`name="csrf" value="…"`).
pub(crate) fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let value = rest.split("value=\"").nth(1)?;
    Some(value[..value.find('"')?].to_string())
}

pub(crate) async fn run(
    http: &Http,
    console: (reqwest::Client, String),
    pool: Arc<Pool>,
    server_pid: u32,
    options: &Options,
) -> anyhow::Result<SoakResult> {
    let length = Duration::from_secs(options.minutes * 60);
    let warmup = warmup_of(length);
    eprintln!(
        "bench: soak: {} min of mixed load, {} requests/s from {} clients; warm-up {} s; server \
         pid {server_pid}",
        options.minutes,
        options.rate,
        options.clients,
        warmup.as_secs()
    );
    let target = Arc::new(Target {
        http: http.clone(),
        console: console.0,
        session: console.1,
        pool,
        seen: Mutex::new(Seen::default()),
    });
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let sampler = {
        let (answered, stop, http) = (answered.clone(), stop.clone(), http.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut next = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let at = started.elapsed();
                if at >= next {
                    let requests = answered.load(Ordering::Relaxed);
                    if let Some(s) = Sample::read(&http, server_pid, at, requests).await {
                        if s.at.as_secs() % 60 < SAMPLE_EVERY.as_secs() {
                            eprintln!(
                                "bench: soak: {:>4} s: {} requests, VmRSS {:.1} MB (RssAnon \
                                 {:.1}, RssFile {:.1}; SQLite's heap {:.1}, its page caches \
                                 {:.1}; allocated {:.1})",
                                at.as_secs(),
                                requests,
                                s.rss as f64 / 1024.0,
                                s.anon as f64 / 1024.0,
                                s.file as f64 / 1024.0,
                                s.sqlite as f64 / 1024.0,
                                s.page_cache as f64 / 1024.0,
                                s.allocated as f64 / 1024.0
                            );
                        }
                        samples.push(s);
                    }
                    next += SAMPLE_EVERY;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };

    let period = Duration::from_secs_f64(options.clients as f64 / options.rate.max(1) as f64);
    let mut tasks = Vec::new();
    for c in 0..options.clients {
        let (target, answered, stop) = (target.clone(), answered.clone(), stop.clone());
        let seed = mix(options.seed ^ mix(0x50a4 + c as u64));
        let stagger = period.mul_f64(c as f64 / options.clients as f64);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed);
            let mut assembler = Assembler::new(mix(seed));
            let mut stats = vec![KindStats::default(); KINDS.len()];
            let mut failures = Vec::new();
            // The clients' ticks spread over one period.
            tokio::time::sleep(stagger).await;
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut turn = 0u64;
            while !stop.load(Ordering::Relaxed) {
                ticks.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                turn += 1;
                let kinds: Vec<Kind> = match draw(&mut rng) {
                    Draw::One(kind) => vec![kind],
                    Draw::Walk => vec![Kind::CursorPage; WALK_PAGES + 1],
                };
                let mut cursor: Option<String> = None;
                let mut walk_filter = None;
                for (page, kind) in kinds.into_iter().enumerate() {
                    if kind == Kind::CursorPage && page > 0 && cursor.is_none() {
                        break;
                    }
                    // Until an ingest has answered there is no id to ask for: send an event.
                    let kind = if matches!(kind, Kind::EntryById | Kind::ConsoleEntry)
                        && target.seen.lock().expect("seen").ids.is_empty()
                    {
                        Kind::Single
                    } else {
                        kind
                    };
                    let sent = Instant::now();
                    let outcome = target
                        .send(
                            kind,
                            &mut rng,
                            &mut assembler,
                            turn,
                            &mut cursor,
                            &mut walk_filter,
                        )
                        .await;
                    let s = &mut stats[kind.index()];
                    match outcome {
                        Ok(amount) => {
                            s.latencies.push(sent.elapsed());
                            s.amount += amount;
                            s.nonempty += u64::from(amount > 0);
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            s.failed += 1;
                            if failures.len() < 5 {
                                failures.push(format!("{kind:?}: {e:#}"));
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            break;
                        }
                    }
                }
            }
            (stats, failures)
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut kinds = vec![KindStats::default(); KINDS.len()];
    let mut failures = Vec::new();
    for task in tasks {
        let (stats, f) = task.await?;
        for (all, s) in kinds.iter_mut().zip(stats) {
            all.latencies.extend(s.latencies);
            all.failed += s.failed;
            all.amount += s.amount;
            all.nonempty += s.nonempty;
        }
        failures.extend(f.into_iter().take(5usize.saturating_sub(failures.len())));
    }
    let elapsed = started.elapsed();
    let mut samples = sampler.await?;
    // The last reading, once the load has stopped.
    if let Some(s) = Sample::read(http, server_pid, elapsed, answered.load(Ordering::Relaxed)).await
    {
        samples.push(s);
    }
    for k in &mut kinds {
        k.latencies.sort();
    }
    let result = SoakResult {
        length,
        warmup,
        elapsed,
        rate: options.rate,
        clients: options.clients,
        samples,
        kinds,
        failures,
    };
    eprintln!(
        "bench: soak: {} requests in {:.0} s, {} failed",
        result.requests(),
        elapsed.as_secs_f64(),
        result.failed()
    );
    Ok(result)
}

impl Target {
    /// Sends one request of `kind`; the rows, events or bytes its answer held.
    async fn send(
        &self,
        kind: Kind,
        rng: &mut Rng,
        assembler: &mut Assembler,
        turn: u64,
        cursor: &mut Option<String>,
        walk_filter: &mut Option<(String, String)>,
    ) -> anyhow::Result<u64> {
        let http = &self.http;
        match kind {
            Kind::Single | Kind::Batch => {
                let n = if kind == Kind::Single { 1 } else { BATCH };
                let mut body = String::with_capacity(n * 640 + 16);
                if n > 1 {
                    body.push_str("{\"events\":[");
                }
                for i in 0..n {
                    if i > 0 {
                        body.push(',');
                    }
                    let template = self.pool.pick(rng.next());
                    assembler.write(&mut body, template, now_millis());
                }
                if n > 1 {
                    body.push_str("]}");
                }
                let answer: Value = serde_json::from_slice(&http.post(body).await?)?;
                let receipts = answer["events"].as_array().map_or(&[][..], Vec::as_slice);
                if receipts.len() != n {
                    bail!("{n} events got {} receipts", receipts.len());
                }
                let mut seen = self.seen.lock().expect("seen");
                for r in receipts.iter().step_by(7) {
                    if let Some(id) = r["id"].as_str() {
                        keep(&mut seen.ids, id.to_string());
                    }
                }
                Ok(n as u64)
            }
            Kind::FirstPage | Kind::Search | Kind::CursorPage => {
                let mut params = match kind {
                    Kind::FirstPage => self.filter(rng),
                    Kind::Search => search(rng),
                    _ => {
                        if cursor.is_none() {
                            // A walk over everything, or over one action.
                            *walk_filter = (rng.below(2) == 0).then(|| {
                                let action = ACTIONS[rng.below(ACTIONS.len() as u64) as usize].0;
                                ("action".to_string(), action.to_string())
                            });
                        }
                        let mut p: Vec<(String, String)> = walk_filter.iter().cloned().collect();
                        if let Some(c) = cursor.take() {
                            p.push(("cursor".into(), c));
                        }
                        p
                    }
                };
                params.push(("limit".into(), "50".into()));
                let page: Value = serde_json::from_slice(&http.get(&params).await?)?;
                if kind == Kind::CursorPage {
                    *cursor = page["next_cursor"].as_str().map(str::to_string);
                }
                Ok(self.seen.lock().expect("seen").entries(&page))
            }
            Kind::EntryById => {
                let id = self.seen_id(rng)?;
                let response = http
                    .client
                    .get(format!("{}/v1/events/{id}", http.url))
                    .bearer_auth(&http.key)
                    .send()
                    .await?;
                expect_ok(response, "GET /v1/events/{id}")
                    .await
                    .map(|b| u64::from(!b.is_empty()))
            }
            Kind::Export => {
                let format = if turn.is_multiple_of(2) {
                    "ndjson"
                } else {
                    "csv"
                };
                let from = format_rfc3339(now_millis() - 10_000);
                let mut response = http
                    .client
                    .get(format!("{}/v1/export", http.url))
                    .bearer_auth(&http.key)
                    .query(&[("format", format), ("actor_type", "all"), ("from", &from)])
                    .send()
                    .await
                    .context("GET /v1/export")?;
                if response.status() != StatusCode::OK {
                    let status = response.status();
                    bail!(
                        "GET /v1/export answered {status}: {}",
                        response.text().await.unwrap_or_default()
                    );
                }
                let mut bytes = 0u64;
                while let Some(chunk) = response.chunk().await.context("reading the export")? {
                    bytes += chunk.len() as u64;
                }
                Ok(bytes)
            }
            Kind::ConsoleLog => {
                let params = match rng.below(3) {
                    0 => Vec::new(),
                    1 => self.filter(rng),
                    _ => search(rng),
                };
                let response = self
                    .console
                    .get(format!("{}/console/log", http.url))
                    .header("cookie", format!("stele_session={}", self.session))
                    .query(&params)
                    .send()
                    .await?;
                expect_ok(response, "GET /console/log")
                    .await
                    .map(|b| b.len() as u64)
            }
            Kind::ConsoleEntry => {
                let id = self.seen_id(rng)?;
                let response = self
                    .console
                    .get(format!("{}/console/entries/{id}", http.url))
                    .header("cookie", format!("stele_session={}", self.session))
                    .send()
                    .await?;
                expect_ok(response, "GET /console/entries/{id}")
                    .await
                    .map(|b| b.len() as u64)
            }
        }
    }

    fn seen_id(&self, rng: &mut Rng) -> anyhow::Result<String> {
        pick(&self.seen.lock().expect("seen").ids, rng)
            .context("no entry id seen yet (no ingest answered)")
    }

    /// One filter, its value from what earlier answers held where it needs one.
    fn filter(&self, rng: &mut Rng) -> Vec<(String, String)> {
        let seen = self.seen.lock().expect("seen");
        let one = |k: &str, v: String| vec![(k.to_string(), v)];
        let action = |rng: &mut Rng| ACTIONS[rng.below(ACTIONS.len() as u64) as usize].0;
        let from_seen = match rng.below(9) {
            0 => pick(&seen.emails, rng).map(|e| one("actor", e)),
            1 => pick(&seen.entities, rng)
                .map(|(t, id)| vec![("entity_type".into(), t), ("entity_id".into(), id)]),
            2 => pick(&seen.correlations, rng).map(|c| one("correlation_id", c)),
            3 => pick(&seen.detailed, rng).map(|d| {
                let prefix = d.split('.').next().unwrap_or(&d).to_string();
                one("detailed_action", format!("{prefix}*"))
            }),
            4 => Some(one("actor_type", "system".into())),
            5 => Some(one(
                "channel",
                ["auth", "security", "hardware", "compliance"][rng.below(4) as usize].into(),
            )),
            6 => Some(vec![
                ("action".into(), action(rng).into()),
                ("channel".into(), "default".into()),
            ]),
            7 => Some(vec![
                ("from".into(), format_rfc3339(now_millis() - 300_000)),
                ("to".into(), format_rfc3339(now_millis() - 60_000)),
            ]),
            _ => None,
        };
        from_seen.unwrap_or_else(|| one("action", action(rng).into()))
    }
}

/// A search: a common word, a rare token, or the query language with a field.
fn search(rng: &mut Rng) -> Vec<(String, String)> {
    let common = VOCAB[rng.below(COMMON_WORDS as u64) as usize];
    let q = match rng.below(3) {
        0 => common.to_string(),
        1 => RARE_TOKENS[rng.below(RARE_TOKENS.len() as u64) as usize].to_string(),
        _ => {
            let word = VOCAB[rng.below(VOCAB.len() as u64) as usize];
            let action = ACTIONS[rng.below(ACTIONS.len() as u64) as usize].0;
            format!("action:{action} \"{word}\"")
        }
    };
    vec![("q".into(), q)]
}

async fn expect_ok(response: reqwest::Response, what: &str) -> anyhow::Result<bytes::Bytes> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading {what}"))?;
    if status != StatusCode::OK {
        bail!(
            "{what} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    Ok(body)
}

impl SoakResult {
    pub(crate) fn render(&self, o: &mut String) {
        let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
        let signed_mb = |kb: i64| format!("{:+.1} MB", kb as f64 / 1024.0);
        let _ = writeln!(o, "\n## Soak\n");
        let _ = writeln!(
            o,
            "{:.1} minutes (`--soak-minutes {}`) of mixed load at {} draws/s from {} clients, on a \
             server started just before; the server's memory read from `/proc/<pid>/status`, and \
             SQLite's heap and page caches from its `/metrics`, every {} s. Warm-up: the \
             first {} s (20% of the run, at most 5 minutes). `VmRSS` is `RssAnon` (heap, stacks) \
             + `RssFile` (mapped files: the binary, SQLite's memory-mapped database) + \
             `RssShmem` (SQLite's `-shm`). The target is read on `RssAnon` less SQLite's page \
             caches, which fill up to their configured sizes as the trail outgrows the memory \
             map, however long that takes (on PostgreSQL there are none).\n",
            self.elapsed.as_secs_f64() / 60.0,
            self.length.as_secs() / 60,
            self.rate,
            self.clients,
            SAMPLE_EVERY.as_secs(),
            self.warmup.as_secs()
        );
        let _ = writeln!(o, "| figure | measured | target |");
        let _ = writeln!(o, "|---|---|---|");
        if let Some(first) = self.samples.first() {
            let _ = writeln!(
                o,
                "| `VmRSS` at the start (`RssAnon` / `RssFile` / `RssShmem`) | {} ({} / {} / {}) | — |",
                mb(first.rss),
                mb(first.anon),
                mb(first.file),
                mb(first.shmem)
            );
        }
        match Growth::of(&self.samples, self.warmup) {
            Some(g) => {
                let row = |o: &mut String, name: &str, s: &Sample| {
                    let _ = writeln!(
                        o,
                        "| `VmRSS` {name} (`RssAnon` / `RssFile` / `RssShmem`) | {} ({} / {} / {}) | — |",
                        mb(s.rss),
                        mb(s.anon),
                        mb(s.file),
                        mb(s.shmem)
                    );
                };
                row(
                    o,
                    &format!("at the end of the warm-up ({} s)", g.warm.at.as_secs()),
                    &g.warm,
                );
                row(
                    o,
                    &format!(
                        "maximum after the warm-up (at {} s)",
                        g.max_after.at.as_secs()
                    ),
                    &g.max_after,
                );
                row(o, &format!("at the end ({} s)", g.end.at.as_secs()), &g.end);
                let window = |o: &mut String, name: &str, w: &Window| {
                    let _ = writeln!(
                        o,
                        "| mean `VmRSS` {name}, {} to {} s (`RssAnon` / `RssFile`) | {} ({} / {}) | — |",
                        w.from.as_secs(),
                        w.to.as_secs(),
                        mb(w.rss as u64),
                        mb(w.anon as u64),
                        mb(w.file as u64)
                    );
                };
                window(o, "right after the warm-up", &g.first);
                window(o, "of the last window", &g.last);
                let _ = writeln!(
                    o,
                    "| **growth after the warm-up of `RssAnon` less SQLite's page caches** (the process's own memory, but for the embedded database's bounded buffer pool: last window's mean − first's; {} then {}) | {} ({:+.1}%) {} | ≤ {TARGET_GROWTH_PERCENT:.0}%, or within the first window's spread |",
                    mb(g.first.own as u64),
                    mb(g.last.own as u64),
                    signed_mb(g.window_kb(|w| w.own) as i64),
                    g.window_percent(|w| w.own),
                    if !g.met() {
                        "**missed**".to_string()
                    } else if g.window_percent(|w| w.own) <= TARGET_GROWTH_PERCENT {
                        "met".to_string()
                    } else {
                        format!(
                            "met (within the first window's own spread, {})",
                            mb(g.first.own_spread as u64)
                        )
                    }
                );
                let _ = writeln!(
                    o,
                    "| `RssAnon` growth after the warm-up (the same windows, caches included; SQLite's page caches {} then {}) | {} ({:+.1}%) | — |",
                    mb(g.first.page_cache as u64),
                    mb(g.last.page_cache as u64),
                    signed_mb(g.window_kb(|w| w.anon) as i64),
                    g.window_percent(|w| w.anon),
                );
                let _ = writeln!(
                    o,
                    "| memory allocated and not freed (the live heap, from the allocator; the same windows: {} then {}) | {} ({:+.1}%) | — |",
                    mb(g.first.allocated as u64),
                    mb(g.last.allocated as u64),
                    signed_mb(g.window_kb(|w| w.allocated) as i64),
                    g.window_percent(|w| w.allocated),
                );
                let _ = writeln!(
                    o,
                    "| `VmRSS` growth after the warm-up (the same windows; `RssFile`) | {} ({:+.1}%; {}) | — |",
                    signed_mb(g.window_kb(|w| w.rss) as i64),
                    g.window_percent(|w| w.rss),
                    signed_mb(g.window_kb(|w| w.file) as i64)
                );
                let _ = writeln!(
                    o,
                    "| end − end of warm-up (one sample each) | {} ({:+.1}%) | — |",
                    signed_mb(g.kb(|s| s.rss)),
                    g.percent(|s| s.rss)
                );
                let _ = writeln!(
                    o,
                    "| of which `RssAnon` / `RssFile` / `RssShmem` | {} ({:+.1}%) / {} / {} | — |",
                    signed_mb(g.kb(|s| s.anon)),
                    g.percent(|s| s.anon),
                    signed_mb(g.kb(|s| s.file)),
                    signed_mb(g.kb(|s| s.shmem))
                );
                let _ = writeln!(
                    o,
                    "| maximum after the warm-up − end of warm-up | {} ({:+.1}%) | — |",
                    signed_mb(g.max_after.rss as i64 - g.warm.rss as i64),
                    100.0 * (g.max_after.rss as f64 - g.warm.rss as f64) / g.warm.rss.max(1) as f64
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "| `VmRSS` growth after the warm-up | unknown (no sample after the warm-up) | ≤ {TARGET_GROWTH_PERCENT:.0}% |"
                );
            }
        }
        let requests = self.requests();
        let _ = writeln!(
            o,
            "| requests (answered + failed), per second | {} in {:.0} s, {:.1}/s | — |",
            thousands(requests),
            self.elapsed.as_secs_f64(),
            requests as f64 / self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "| failed requests | {} {} | 0 |",
            self.failed(),
            if self.failed() == 0 {
                "met"
            } else {
                "**missed**"
            }
        );
        for f in &self.failures {
            let _ = writeln!(o, "| failure | `{}` | — |", f.replace('|', "\\|"));
        }

        let _ = writeln!(
            o,
            "\n| request kind | answered | failed | p50 | p99 | max | what the answers held |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for (kind, s) in KINDS.iter().zip(&self.kinds) {
            let held = match kind {
                Kind::Single | Kind::Batch => format!("{} events stored", thousands(s.amount)),
                Kind::FirstPage | Kind::Search | Kind::CursorPage => format!(
                    "{} entries; {} of the pages not empty",
                    thousands(s.amount),
                    thousands(s.nonempty)
                ),
                Kind::EntryById => format!("{} entries", thousands(s.nonempty)),
                Kind::Export | Kind::ConsoleLog | Kind::ConsoleEntry => {
                    format!("{:.1} MB", s.amount as f64 / 1e6)
                }
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {held} |",
                kind.label(),
                thousands(s.latencies.len() as u64),
                s.failed,
                ms(pct(&s.latencies, 0.50)),
                ms(pct(&s.latencies, 0.99)),
                ms(s.latencies.last().copied().unwrap_or_default())
            );
        }

        let _ = writeln!(o, "\nThe curve (the sample nearest each minute):\n");
        let _ = writeln!(
            o,
            "| minute | `VmRSS` | `RssAnon` | `RssFile` | `RssShmem` | SQLite's heap | of which page caches | `RssAnon` less page caches | allocated | requests answered |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
        let mut minute = 0u64;
        for (i, s) in self.samples.iter().enumerate() {
            let last = i + 1 == self.samples.len();
            if s.at.as_secs() >= minute * 60 || last {
                let _ = writeln!(
                    o,
                    "| {:.1}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.at.as_secs_f64() / 60.0,
                    if last { " (end)" } else { "" },
                    mb(s.rss),
                    mb(s.anon),
                    mb(s.file),
                    mb(s.shmem),
                    mb(s.sqlite),
                    mb(s.page_cache),
                    mb(s.own()),
                    mb(s.allocated),
                    thousands(s.requests)
                );
                minute = s.at.as_secs() / 60 + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample whose memory is all heap.
    fn sample(secs: u64, rss: u64) -> Sample {
        Sample {
            at: Duration::from_secs(secs),
            rss,
            anon: rss,
            ..Sample::default()
        }
    }

    #[test]
    fn the_warmup_is_a_fifth_of_the_run_and_at_most_five_minutes() {
        assert_eq!(warmup_of(Duration::from_secs(180)), Duration::from_secs(36));
        assert_eq!(warmup_of(Duration::from_secs(1800)), MAX_WARMUP);
    }

    #[test]
    fn growth_compares_the_last_window_with_the_one_after_the_warmup() {
        // Warm-up 20 s: the first window is 20–40 s, the last 40–60 s.
        let samples = [
            sample(0, 10_000),
            sample(10, 40_000),
            sample(20, 50_000),
            sample(30, 70_000),
            sample(40, 50_000),
            sample(50, 54_000),
            sample(60, 72_000),
        ];
        let g = Growth::of(&samples, Duration::from_secs(20)).expect("samples after");
        assert_eq!(g.warm.rss, 50_000);
        assert_eq!(g.max_after.rss, 72_000);
        assert_eq!(g.end.rss, 72_000);
        assert_eq!(g.kb(|s| s.rss), 22_000);
        assert_eq!(g.first.rss, 60_000.0);
        assert_eq!(g.last.rss, 63_000.0);
        assert!((g.window_percent(|w| w.anon) - 5.0).abs() < 1e-9);
        // The last sample alone is 44% above the end of the warm-up; the windows are 5% apart.
        assert!(g.met());
        let grown = [
            sample(0, 10_000),
            sample(20, 50_000),
            sample(30, 50_000),
            sample(40, 52_000),
            sample(50, 58_000),
            sample(60, 60_000),
        ];
        assert!(!Growth::of(&grown, Duration::from_secs(20)).unwrap().met());
        // 12% up, but the first window's samples alone lie 20,000 kB apart: within the noise.
        let jittery = [
            sample(0, 10_000),
            sample(20, 100_000),
            sample(30, 90_000),
            sample(40, 110_000),
            sample(50, 112_000),
            sample(60, 112_000),
        ];
        let g = Growth::of(&jittery, Duration::from_secs(20)).unwrap();
        assert!(g.window_percent(|w| w.own) > TARGET_GROWTH_PERCENT);
        assert_eq!(g.first.own_spread, 20_000.0);
        assert!(g.within_noise() && g.met());
        assert_eq!(Growth::of(&samples[..3], Duration::from_secs(20)), None);
        // Mapped file pages coming and going (`RssFile`) are reported, not held against it.
        let mapped: Vec<Sample> = samples
            .iter()
            .map(|s| Sample {
                rss: s.rss + s.at.as_secs() * 10_000,
                file: s.at.as_secs() * 10_000,
                ..*s
            })
            .collect();
        let g = Growth::of(&mapped, Duration::from_secs(20)).unwrap();
        assert!(g.window_percent(|w| w.rss) > 10.0);
        assert!(g.met());
    }

    #[test]
    fn every_kind_is_drawn() {
        let mut rng = Rng::new(7);
        let mut drawn = [0u64; KINDS.len()];
        for _ in 0..10_000 {
            match draw(&mut rng) {
                Draw::One(kind) => drawn[kind.index()] += 1,
                Draw::Walk => drawn[Kind::CursorPage.index()] += 1,
            }
        }
        assert!(drawn.iter().all(|n| *n > 0), "{drawn:?}");
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u64>(), 100);
    }

    #[test]
    fn the_sign_in_form_is_read() {
        let html = r#"<form><input type="hidden" name="csrf" value="ab12"><input type="hidden" name="next" value="/console">"#;
        assert_eq!(hidden_field(html, "csrf").as_deref(), Some("ab12"));
        assert_eq!(hidden_field(html, "next").as_deref(), Some("/console"));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append(
            reqwest::header::SET_COOKIE,
            "stele_login=; Max-Age=0".parse().unwrap(),
        );
        headers.append(
            reqwest::header::SET_COOKIE,
            "stele_session=c0ffee; HttpOnly; Path=/".parse().unwrap(),
        );
        assert_eq!(
            set_cookie(&headers, "stele_session").as_deref(),
            Some("c0ffee")
        );
        assert_eq!(set_cookie(&headers, "stele_login"), None);
    }
}
