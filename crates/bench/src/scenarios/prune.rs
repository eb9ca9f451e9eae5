//! The `prune` scenario: single-event ingest while retention removes the ingested entries. Issue 5
//! says the retention run "deletes in bounded batches … so that ingest never stalls: measure
//! ingest p99 while pruning 1M entries and report it".
//!
//! 1. The organization's retention is set to the minimum, 30 days (`PUT /v1/settings`, no
//!    per-channel windows). When this scenario is selected the ingest spreads its events' 90 days
//!    so that the newest is [`BACKDATE_DAYS`] old instead of a minute (see `run` in main.rs): every
//!    ingested entry has then expired. (Without that, the 30-day floor would keep the last third.)
//! 2. Baseline: the single-event load (`--single-clients` clients, one event per request, as the
//!    `single` scenario) for `--single-seconds`, with no prune running.
//! 3. The same load again, started together with `stele prune --json [--archive-dir DIR]` (the
//!    measured binary, a subprocess on the same data directory or database, next to the running
//!    server) and stopped when the prune exits. The archive goes to a fresh temporary directory
//!    (removed afterwards unless `--keep`); `--prune-no-archive` leaves it out.
//!
//! Reported: what the prune removed and archived (from its JSON output), its wall time from spawn
//! to exit, entries per second, its CPU time, the archive's size; and for both loads events/s,
//! latency p50/p99/p99.9/max, when the worst request was sent, the longest time in which no
//! request was answered, how many requests took over 100 ms and over 1 s, and the answers per
//! whole second (the fewest, the median, and how many seconds had under half the median): a stall
//! shows there even when the percentiles hide it. `stele verify` runs afterwards (this scenario implies `verify`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_core::Seq;
use stele_store::MIN_RETENTION_DAYS;

use super::single::{SingleResult, single_load, stop_after};
use super::verify::{read_lines, wait_measured};
use crate::cpu::{CpuMeter, CpuUse};
use crate::generator::Pool;
use crate::http::Http;
use crate::report::{ms, pct, thousands};
use crate::{Backend, BenchArgs};

/// The retention window the scenario sets: the smallest allowed.
const RETENTION_DAYS: u32 = MIN_RETENTION_DAYS;
/// How many days before the run the ingested events end when this scenario runs: one day past the
/// retention window, so that all of them have expired.
pub(crate) const BACKDATE_DAYS: i64 = RETENTION_DAYS as i64 + 1;

/// Seeds of the two loads' clients (`single_load`'s salt), apart from the `single` scenario's.
const BASELINE_SALT: u64 = 0x9e7e_0000;
const DURING_SALT: u64 = 0x9e7e_1000;

pub(crate) struct PruneResult {
    /// The settings as the server stored them (its answer to the PUT).
    settings: String,
    /// Whether the ingest of this run was backdated by [`BACKDATE_DAYS`].
    backdated: bool,
    baseline: SingleResult,
    during: SingleResult,
    pub(crate) run: PruneRun,
    /// The archive directory, its bytes and files (`None` with `--prune-no-archive`).
    archive: Option<(PathBuf, u64, usize)>,
    kept_archive: bool,
}

impl PruneResult {
    /// Events the two loads stored.
    pub(crate) fn load_events(&self) -> u64 {
        self.baseline.events + self.during.events
    }
}

pub(crate) struct PruneRun {
    pub(crate) ok: bool,
    pub(crate) status: String,
    wall: Duration,
    cpu: Option<f64>,
    /// Entries removed, per channel and in all, over the organizations' JSON lines.
    per_channel: BTreeMap<String, u64>,
    pub(crate) removed: u64,
    archived: u64,
    /// One JSON line (and one entry recording the run) per organization.
    pub(crate) orgs: usize,
    /// The `seq` of each run's own entry.
    records: Vec<Seq>,
    /// Why a run stopped early (the archive failed), per organization.
    errors: Vec<String>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// Sets the flag when dropped, so the load stops however the prune ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    stele: &Path,
    http: &Http,
    args: &BenchArgs,
    pool: Arc<Pool>,
    backend: &Backend,
    dir: &Path,
    backdated: bool,
    server_pid: u32,
    cpu: &mut Vec<(&'static str, CpuUse)>,
) -> anyhow::Result<PruneResult> {
    let pg = matches!(backend, Backend::Postgres(_));
    eprintln!("bench: prune: setting the retention window to {RETENTION_DAYS} days");
    let response = http
        .client
        .put(format!("{}/v1/settings", http.url))
        .bearer_auth(&http.key)
        .json(&json!({ "retention_days": RETENTION_DAYS }))
        .send()
        .await
        .context("PUT /v1/settings")?;
    let status = response.status();
    let settings = response.text().await.context("reading the settings")?;
    if status != StatusCode::OK {
        bail!("PUT /v1/settings answered {status}: {settings}");
    }

    eprintln!(
        "bench: prune: baseline: {} clients, one event per request, for {} s, no prune",
        args.single_clients, args.single_seconds
    );
    let meter = CpuMeter::start(server_pid, pg);
    let baseline = single_load(
        http,
        args.single_clients,
        args.seed,
        BASELINE_SALT,
        pool.clone(),
        stop_after(Duration::from_secs(args.single_seconds)),
    )
    .await?;
    cpu.push((
        "single-event requests, baseline before the prune",
        meter.stop(),
    ));

    let archive_dir = (!args.prune_no_archive)
        .then(|| std::env::temp_dir().join(format!("stele-bench-{}-archive", std::process::id())));
    if let Some(a) = &archive_dir
        && a.exists()
    {
        std::fs::remove_dir_all(a).with_context(|| format!("clearing {}", a.display()))?;
    }
    let mut command = backend.command(stele, &["prune", "--json"], dir, Stdio::piped());
    // Only `--archive-dir` chooses, not an inherited STELE_ARCHIVE_DIR.
    command.env_remove("STELE_ARCHIVE_DIR");
    if let Some(a) = &archive_dir {
        command.arg("--archive-dir").arg(a);
    }

    eprintln!(
        "bench: prune: `stele prune --json{}` while {} clients send one event per request",
        if archive_dir.is_some() {
            " --archive-dir …"
        } else {
            ""
        },
        args.single_clients
    );
    let stop = Arc::new(AtomicBool::new(false));
    let meter = CpuMeter::start(server_pid, pg);
    let load = {
        let (http, pool, stop) = (http.clone(), pool.clone(), stop.clone());
        let (clients, seed) = (args.single_clients, args.seed);
        tokio::spawn(
            async move { single_load(&http, clients, seed, DURING_SALT, pool, stop).await },
        )
    };
    let prune = {
        let stop = StopOnDrop(stop);
        tokio::task::spawn_blocking(move || {
            let _stop = stop;
            let started = Instant::now();
            let mut child = command.spawn().context("starting `stele prune`")?;
            let stdout = read_lines(child.stdout.take());
            let stderr = read_lines(child.stderr.take());
            let (status, cpu) = wait_measured(&mut child, Duration::from_secs(6 * 3600))
                .context("waiting for `stele prune`")?;
            let wall = started.elapsed();
            let stdout = stdout.join().unwrap_or_default();
            let stderr = stderr.join().unwrap_or_default();
            anyhow::Ok(PruneRun::read(status, wall, cpu, stdout, stderr))
        })
    };
    let run = prune.await??;
    let during = load.await??;
    cpu.push((
        "single-event requests during `stele prune` (other processes: the prune)",
        meter.stop(),
    ));
    eprintln!(
        "bench: prune: {} removed in {:.2} s ({}); single-event p99 {} during it, {} before",
        run.removed,
        run.wall.as_secs_f64(),
        run.status,
        ms(pct(&during.latencies, 0.99)),
        ms(pct(&baseline.latencies, 0.99)),
    );

    let archive = archive_dir.map(|a| {
        let (bytes, files) = dir_size(&a);
        (a, bytes, files)
    });
    if let Some((a, _, _)) = &archive
        && !args.keep
    {
        let _ = std::fs::remove_dir_all(a);
    }
    Ok(PruneResult {
        settings,
        backdated,
        baseline,
        during,
        run,
        archive,
        kept_archive: args.keep,
    })
}

impl PruneRun {
    /// Reads the JSON lines of `stele prune --json`, one per organization.
    fn read(
        status: std::process::ExitStatus,
        wall: Duration,
        cpu: Option<f64>,
        stdout: Vec<String>,
        stderr: Vec<String>,
    ) -> PruneRun {
        let mut run = PruneRun {
            ok: false,
            status: status.to_string(),
            wall,
            cpu,
            per_channel: BTreeMap::new(),
            removed: 0,
            archived: 0,
            orgs: 0,
            records: Vec::new(),
            errors: Vec::new(),
            stdout,
            stderr,
        };
        for line in &run.stdout {
            let Ok(report) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            run.orgs += 1;
            run.removed += report["removed_total"].as_u64().unwrap_or(0);
            run.archived += report["archived"].as_u64().unwrap_or(0);
            for (channel, n) in report["removed"].as_object().into_iter().flatten() {
                *run.per_channel.entry(channel.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
            if let Some(seq) = report["record"]["seq"].as_i64() {
                run.records.push(Seq::new(seq));
            }
            if let Some(e) = report["error"].as_str() {
                run.errors.push(format!("{}: {e}", report["org_id"]));
            }
        }
        run.ok = status.success() && run.orgs > 0 && run.errors.is_empty();
        run
    }
}

/// Bytes and files under a directory.
fn dir_size(dir: &Path) -> (u64, usize) {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                let (bytes, files) = dir_size(&entry.path());
                total = (total.0 + bytes, total.1 + files);
            }
            Ok(t) if t.is_file() => {
                total.0 += entry.metadata().map_or(0, |m| m.len());
                total.1 += 1;
            }
            _ => {}
        }
    }
    total
}

/// Figures about stalls of one load.
struct Stalls {
    /// The longest time between two consecutive answers (to any client).
    longest_gap: Duration,
    /// Answers in the whole seconds of the load: the fewest, and the median.
    fewest: u64,
    median: u64,
    seconds: usize,
    /// Whole seconds with fewer than half the median answers.
    slow_seconds: usize,
}

fn stalls(r: &SingleResult) -> Stalls {
    let mut answered = r.answered_at.clone();
    answered.sort();
    let longest_gap = answered
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let whole = r.elapsed.as_secs() as usize;
    let mut per_second = vec![0u64; whole];
    for a in &answered {
        if let Some(n) = per_second.get_mut(a.as_secs() as usize) {
            *n += 1;
        }
    }
    let fewest = per_second.iter().copied().min().unwrap_or(0);
    per_second.sort();
    let median = crate::report::median(&per_second);
    Stalls {
        longest_gap,
        fewest,
        median,
        seconds: whole,
        slow_seconds: per_second.iter().filter(|n| **n * 2 < median).count(),
    }
}

impl PruneResult {
    pub(crate) fn render(&self, o: &mut String, args: &BenchArgs) {
        let run = &self.run;
        let _ = writeln!(o, "\n## Retention (prune under load)\n");
        let _ = writeln!(
            o,
            "Issue 5: retention deletes in bounded batches so that ingest never stalls; measure \
             ingest p99 while pruning.\n"
        );
        let _ = writeln!(
            o,
            "- retention set to {RETENTION_DAYS} days (the minimum) with `PUT /v1/settings`; the \
             server stored `{}`",
            self.settings.trim()
        );
        if self.backdated {
            let _ = writeln!(
                o,
                "- the ingested events' `occurred_at` were spread over the 90 days ending \
                 {BACKDATE_DAYS} days before the run (not a minute before it, as without this \
                 scenario), so that all of them had expired"
            );
        } else {
            let _ = writeln!(
                o,
                "- no ingest in this run: the prune removed whatever the {RETENTION_DAYS}-day \
                 window expired"
            );
        }
        let _ = writeln!(
            o,
            "- `stele prune --json{} --data-dir …` as a subprocess next to the running server, \
             started together with the second single-event load, which stopped when it exited",
            if self.archive.is_some() {
                " --archive-dir <temporary directory>"
            } else {
                ""
            }
        );
        let _ = writeln!(o, "\n| figure | measured | target |");
        let _ = writeln!(o, "|---|---|---|");
        let _ = writeln!(
            o,
            "| `stele prune` | {} | — |",
            if run.ok {
                format!("succeeded ({})", run.status)
            } else {
                format!("**FAILED** ({})", run.status)
            }
        );
        let per_channel = run
            .per_channel
            .iter()
            .map(|(c, n)| format!("{c} {}", thousands(*n)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "| entries removed | {} ({per_channel}) | all expired entries |",
            thousands(run.removed)
        );
        let secs = run.wall.as_secs_f64();
        let _ = writeln!(o, "| wall time, spawn to exit | {secs:.2} s | — |");
        let _ = writeln!(
            o,
            "| rate | {} entries/s | — |",
            thousands((run.removed as f64 / secs) as u64)
        );
        let _ = writeln!(
            o,
            "| CPU of the prune process | {} | — |",
            match run.cpu {
                Some(c) => format!("{c:.2} s ({:.2} cores)", c / secs),
                None => "unknown".into(),
            }
        );
        match &self.archive {
            Some((dir, bytes, files)) => {
                let _ = writeln!(
                    o,
                    "| entries archived; archive size | {}; {} bytes in {} files ({:.1} bytes per entry){} | — |",
                    thousands(run.archived),
                    thousands(*bytes),
                    files,
                    *bytes as f64 / run.archived.max(1) as f64,
                    if self.kept_archive {
                        format!(", kept in {}", dir.display())
                    } else {
                        String::new()
                    }
                );
            }
            None => {
                let _ = writeln!(o, "| archive | none (`--prune-no-archive`) | — |");
            }
        }
        let _ = writeln!(
            o,
            "| the runs' own entries (`retention.prune`) | seq {} | one per organization |",
            run.records
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for e in &run.errors {
            let _ = writeln!(o, "| stopped early | {e} | — |");
        }

        let (b, d) = (&self.baseline, &self.during);
        let (sb, sd) = (stalls(b), stalls(d));
        let _ = writeln!(
            o,
            "\n| single-event requests, {} clients | baseline, no prune | during the prune | target |",
            args.single_clients
        );
        let _ = writeln!(o, "|---|---|---|---|");
        let row = |o: &mut String, name: &str, f: &dyn Fn(&SingleResult, &Stalls) -> String, t| {
            let _ = writeln!(o, "| {name} | {} | {} | {t} |", f(b, &sb), f(d, &sd));
        };
        row(
            o,
            "events, wall time",
            &|r, _| {
                format!(
                    "{} in {:.2} s",
                    thousands(r.events),
                    r.elapsed.as_secs_f64()
                )
            },
            "—",
        );
        row(
            o,
            "events/s",
            &|r, _| thousands((r.events as f64 / r.elapsed.as_secs_f64()) as u64),
            "≥ 20,000 events/s",
        );
        row(o, "latency p50", &|r, _| ms(pct(&r.latencies, 0.50)), "—");
        row(
            o,
            "latency p99",
            &|r, _| ms(pct(&r.latencies, 0.99)),
            "≤ 10 ms; ingest never stalls",
        );
        row(
            o,
            "latency p99.9",
            &|r, _| ms(pct(&r.latencies, 0.999)),
            "—",
        );
        row(
            o,
            "latency max (the worst single request), sent at",
            &|r, _| {
                format!(
                    "{} at {:.2} s",
                    ms(r.latencies.last().copied().unwrap_or_default()),
                    r.worst_sent_at.as_secs_f64()
                )
            },
            "—",
        );
        row(
            o,
            "longest time in which no request was answered",
            &|_, s| ms(s.longest_gap),
            "—",
        );
        row(
            o,
            "requests slower than 100 ms / 1 s",
            &|r, _| {
                let over = |t: u64| {
                    let n = r.latencies.len()
                        - r.latencies.partition_point(|l| l.as_millis() <= t as u128);
                    thousands(n as u64)
                };
                format!("{} / {}", over(100), over(1000))
            },
            "—",
        );
        row(
            o,
            "answers per whole second: fewest / median",
            &|_, s| {
                format!(
                    "{} / {} over {} s",
                    thousands(s.fewest),
                    thousands(s.median),
                    s.seconds
                )
            },
            "—",
        );
        row(
            o,
            "whole seconds with fewer than half the median answers",
            &|_, s| s.slow_seconds.to_string(),
            "—",
        );
        row(
            o,
            "failed requests",
            &|r, _| match r.failures.first() {
                None => "0".into(),
                Some(e) => format!("{} (first: {e})", r.failed),
            },
            "none",
        );
        let _ = writeln!(o, "\n`stele prune --json` printed:\n");
        for line in run.stdout.iter().chain(&run.stderr) {
            let _ = writeln!(o, "    {line}");
        }
    }
}
