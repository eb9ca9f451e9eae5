//! The report: the Markdown printed to stdout, each figure next to its target; and the percentile
//! and number formatting the scenarios share.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use stele_server::app::backend::DatabaseUrl;

use crate::cpu::{CpuUse, Machine};
use crate::scenarios::count::CountRow;
use crate::scenarios::disk::{DiskResult, PgInfo};
use crate::scenarios::ingest::IngestResult;
use crate::scenarios::proof::ProofResult;
use crate::scenarios::query::QueryRow;
use crate::scenarios::single::SingleResult;
use crate::scenarios::verify::VerifyResult;
use crate::scenarios::visibility::Probes;
use crate::scenarios::{compat, copy, export, orgs, prune, raw_sqlite, startup, tenants};
use crate::{BenchArgs, PAGE_LIMIT};

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) ingest: Option<IngestResult>,
    pub(crate) raw_copy: Option<copy::RawCopyResult>,
    pub(crate) raw_sqlite: Option<raw_sqlite::RawSqliteResult>,
    pub(crate) orgs: Option<orgs::OrgsResult>,
    pub(crate) tenants: Option<tenants::TenantsResult>,
    pub(crate) compat: Option<compat::CompatResult>,
    pub(crate) export: Option<export::ExportResult>,
    pub(crate) single: Option<SingleResult>,
    /// The `visibility` scenario: its batch ingest, with the probes beside it and after it.
    pub(crate) visibility: Option<IngestResult>,
    pub(crate) soak: Option<crate::scenarios::soak::SoakResult>,
    pub(crate) query: Option<Vec<QueryRow>>,
    pub(crate) count: Option<Vec<CountRow>>,
    pub(crate) proof: Option<ProofResult>,
    pub(crate) prune: Option<prune::PruneResult>,
    pub(crate) startup: Option<startup::StartupResult>,
    pub(crate) erasure: Option<crate::scenarios::erasure::ErasureResult>,
    pub(crate) streams: Option<crate::scenarios::streams::StreamsResult>,
    pub(crate) verify: Option<VerifyResult>,
    pub(crate) disk: Option<DiskResult>,
    pub(crate) cpu: Vec<(&'static str, CpuUse)>,
    /// With `--analyze`: how long PostgreSQL's ANALYZE took (after the ingest, off the clock).
    pub(crate) analyze: Option<Duration>,
    /// With PostgreSQL: the planner's statistics of `entries` before the query scenarios.
    pub(crate) planner: Option<String>,
}

pub(crate) struct RunInfo<'a> {
    pub(crate) command_line: String,
    pub(crate) machine: Machine,
    /// The `stele` binary measured (`--stele`, made absolute).
    pub(crate) stele: PathBuf,
    pub(crate) load_after: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) preexisting: Option<u64>,
    pub(crate) ingested: u64,
    pub(crate) single_events: u64,
    /// With the prune scenario: how many days before the run the ingested events end.
    pub(crate) backdate_days: Option<i64>,
    pub(crate) average_bytes: f64,
    pub(crate) stop_time: Duration,
    pub(crate) args: &'a BenchArgs,
    /// With `--database-url`: the PostgreSQL server's version and settings.
    pub(crate) postgres: Option<PgInfo>,
}

impl Report {
    pub(crate) fn render(&self, info: &RunInfo) -> String {
        let mut o = String::new();
        let m = &info.machine;
        let _ = writeln!(o, "## Run\n");
        let _ = writeln!(o, "- command: `{}`", info.command_line);
        let _ = writeln!(
            o,
            "- machine: {} CPUs ({}), {} RAM, Linux {}",
            m.cpus, m.cpu_model, m.memory, m.kernel
        );
        let _ = writeln!(
            o,
            "- load average at start: {}; at the end: {}",
            m.load, info.load_after
        );
        let _ = writeln!(o, "- date: {}", m.date);
        let _ = writeln!(o, "- source: {}", m.source);
        let _ = writeln!(o, "- stele binary: `{}`", info.stele.display());
        match (&info.postgres, &info.args.database_url) {
            (Some(pg), Some(url)) => {
                let url = DatabaseUrl::parse(url).map_or_else(|_| url.clone(), |u| u.to_string());
                let _ = writeln!(
                    o,
                    "- backend: PostgreSQL {} at `{url}` (a fresh database)",
                    pg.version
                );
                let settings = pg
                    .settings
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(o, "- PostgreSQL settings: {settings}");
                if let Some(d) = self.analyze {
                    let _ = writeln!(
                        o,
                        "- `--analyze`: ANALYZE ran after the ingest, off the clock, in {:.2} s",
                        d.as_secs_f64()
                    );
                }
                if let Some(p) = &self.planner {
                    let _ = writeln!(o, "- planner statistics when the queries began: {p}");
                }
                let _ = writeln!(
                    o,
                    "- data directory: {} (the signing key only)",
                    info.data_dir.display()
                );
            }
            _ => {
                let _ = writeln!(o, "- backend: SQLite (`stele.db` in the data directory)");
                let _ = writeln!(o, "- data directory: {}", info.data_dir.display());
            }
        }
        let _ = writeln!(
            o,
            "- events: {} ingested in batches{}{}{}; {} more from the single-event scenario{}",
            thousands(info.ingested),
            match info.args.event_keys {
                Some(crate::EventKeys::Random) => " (each event with a random idempotency key)",
                Some(crate::EventKeys::Ordered) =>
                    " (each event with a time-ordered idempotency key)",
                None => "",
            },
            match info.preexisting {
                Some(0) | None => String::new(),
                Some(n) => format!(" (on top of {} already stored)", thousands(n)),
            },
            match info.backdate_days {
                Some(days) if info.ingested > 0 => format!(
                    " (occurred_at backdated by {days} days for the prune scenario: the 90 days \
                     end {days} days before the run)"
                ),
                _ => String::new(),
            },
            thousands(info.single_events),
            self.visibility
                .as_ref()
                .map(|v| format!(
                    "; {} more from the visibility scenario (its batches and {} probes)",
                    thousands(v.events),
                    v.visible_under_load.count() + v.visible_when_idle.count()
                ))
                .unwrap_or_default()
                + &match &self.prune {
                    Some(p) => format!(
                        "; {} more from the prune scenario's single-event loads; {} removed by the prune",
                        thousands(p.load_events()),
                        thousands(p.run.removed)
                    ),
                    None => String::new(),
                }
        );
        let _ = writeln!(
            o,
            "- reference event: {:.1} bytes of JSON on average (seed {})",
            info.average_bytes, info.args.seed
        );
        let _ = writeln!(
            o,
            "- server: `stele serve --checkpoint-every {}{}{}` (a signed checkpoint at least every {} s while entries arrive)",
            info.args.checkpoint_every,
            if self.prune.is_some() {
                " --no-prune"
            } else {
                ""
            },
            if info.postgres.is_some() {
                " --database-url …"
            } else {
                ""
            },
            info.args.checkpoint_every
        );
        let _ = writeln!(o, "- graceful server stop took {}", ms(info.stop_time));

        let _ = writeln!(o, "\n## Ingest and single-event requests\n");
        let _ = writeln!(o, "| scenario | figure | measured | target |");
        let _ = writeln!(o, "|---|---|---|---|");
        match &self.ingest {
            Some(r) => {
                let secs = r.elapsed.as_secs_f64();
                let name = format!(
                    "batch ingest ({} per request, {} clients)",
                    info.args.batch, info.args.ingest_clients
                );
                let _ = writeln!(
                    o,
                    "| {name} | events/s | {} | ≥ 100,000 events/s |",
                    thousands((r.events as f64 / secs) as u64)
                );
                let _ = writeln!(
                    o,
                    "| {name} | MB/s of JSON | {:.1} | — |",
                    r.json_bytes as f64 / secs / 1e6
                );
                let _ = writeln!(
                    o,
                    "| {name} | events, wall time | {} in {:.2} s | — |",
                    thousands(r.events),
                    secs
                );
                let _ = writeln!(
                    o,
                    "| {name} | request latency p50 / p99 / max | {} / {} / {} | — |",
                    ms(pct(&r.request_latencies, 0.50)),
                    ms(pct(&r.request_latencies, 0.99)),
                    ms(r.request_latencies.last().copied().unwrap_or_default())
                );
                let _ = writeln!(
                    o,
                    "| {name} | client time building bodies | {:.2} s over {} requests ({:.1}% of wall time × clients) | — |",
                    r.build_time.as_secs_f64(),
                    r.requests,
                    100.0 * r.build_time.as_secs_f64() / (secs * info.args.ingest_clients as f64)
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "| batch ingest | events/s | not run | ≥ 100,000 events/s |"
                );
            }
        }
        if let Some(c) = &self.raw_copy {
            let name = format!(
                "plain binary COPY of the same rows ({} per transaction, {} connections)",
                c.batch, c.connections
            );
            let _ = writeln!(
                o,
                "| {name} | rows/s ({} entries + {} key rows in {:.2} s) | {} | — |",
                thousands(c.entries),
                thousands(c.key_rows),
                c.batched.as_secs_f64(),
                thousands(c.batched_rate() as u64)
            );
            let _ = writeln!(
                o,
                "| plain binary COPY of the same rows, one COPY and one commit | rows/s ({:.2} s) | {} | — |",
                c.single.as_secs_f64(),
                thousands(c.single_rate() as u64)
            );
            if let Some(r) = &self.ingest {
                let stele = r.events as f64 / r.elapsed.as_secs_f64();
                let _ = writeln!(
                    o,
                    "| ratio: Stele's durable HTTP ingest / batched plain COPY | ratio | {:.2} | ≥ 1.0 |",
                    stele / c.batched_rate()
                );
                let _ = writeln!(
                    o,
                    "| ratio: Stele's durable HTTP ingest / one plain COPY | ratio | {:.2} | — |",
                    stele / c.single_rate()
                );
            }
        }
        if let Some(y) = &self.raw_sqlite {
            let _ = writeln!(
                o,
                "| plain SQLite, the same rows into the same table and three secondary indexes ({} per durable transaction, one thread) | rows/s ({} entries, {} with a description, in {:.2} s) | {} | — |",
                y.batch,
                thousands(y.entries),
                thousands(y.descriptions),
                y.batched.as_secs_f64(),
                thousands(y.batched_rate() as u64)
            );
            let _ = writeln!(
                o,
                "| plain SQLite, the same rows in one transaction | rows/s ({:.2} s) | {} | — |",
                y.single.as_secs_f64(),
                thousands(y.single_rate() as u64)
            );
            if let Some(r) = &self.ingest {
                let stele = r.events as f64 / r.elapsed.as_secs_f64();
                let _ = writeln!(
                    o,
                    "| ratio: Stele's durable HTTP ingest / plain SQLite, batched | ratio | {:.2} | ≥ 3.0 |",
                    stele / y.batched_rate()
                );
                let _ = writeln!(
                    o,
                    "| ratio: Stele's durable HTTP ingest / plain SQLite, one transaction | ratio | {:.2} | — |",
                    stele / y.single_rate()
                );
            }
            for b in &y.breakdown {
                let per_row = |d: std::time::Duration| d.as_secs_f64() * 1e6 / y.entries as f64;
                let _ = writeln!(
                    o,
                    "| plain SQLite into {} | rows/s, batched / one transaction (µs per row) | {} ({:.1}) / {} ({:.1}) | — |",
                    b.structures.describe(),
                    thousands((y.entries as f64 / b.batched.as_secs_f64()) as u64),
                    per_row(b.batched),
                    thousands((y.entries as f64 / b.single.as_secs_f64()) as u64),
                    per_row(b.single)
                );
            }
        }
        match &self.single {
            Some(r) => {
                let name = format!("single-event requests, {} clients", r.clients);
                let _ = writeln!(
                    o,
                    "| {name} | events/s | {} | ≥ 20,000 events/s |",
                    thousands((r.events as f64 / r.elapsed.as_secs_f64()) as u64)
                );
                let _ = writeln!(
                    o,
                    "| {name} | latency p50 | {} | — |",
                    ms(pct(&r.latencies, 0.50))
                );
                let _ = writeln!(
                    o,
                    "| {name} | latency p99 | {} | ≤ 10 ms |",
                    ms(pct(&r.latencies, 0.99))
                );
                let _ = writeln!(
                    o,
                    "| {name} | latency max | {} | — |",
                    ms(r.latencies.last().copied().unwrap_or_default())
                );
                let _ = writeln!(
                    o,
                    "| {name} | events, wall time | {} in {:.2} s | — |",
                    thousands(r.events),
                    r.elapsed.as_secs_f64()
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "| single-event requests | events/s | not run | ≥ 20,000 events/s |"
                );
            }
        }
        if let Some(r) = &self.visibility {
            let _ = writeln!(
                o,
                "| batch ingest beside the read-after-write probes ({} events, {} per request, {} clients) | events/s | {} | — |",
                thousands(r.events),
                info.args.batch,
                info.args.ingest_clients,
                thousands((r.events as f64 / r.elapsed.as_secs_f64()) as u64)
            );
            for (when, probes, target) in [
                (
                    "under that batch ingest",
                    &r.visible_under_load,
                    "p99 ≤ 1 s",
                ),
                (
                    "on the idle server after it",
                    &r.visible_when_idle,
                    "at once",
                ),
            ] {
                render_visibility(&mut o, when, probes, target);
            }
        }

        let _ = writeln!(
            o,
            "\n## First page (limit {PAGE_LIMIT}) over HTTP\n\nTargets at 10M entries: p95 ≤ 10 ms for any one filter, ≤ 100 ms for description search (`q`).\n"
        );
        match &self.query {
            Some(rows) => render_query_rows(&mut o, rows),
            None => {
                let _ = writeln!(o, "not run");
            }
        }

        let _ = writeln!(
            o,
            "\n## Count (`Store::count`, same filters and values, in-process)\n\nTarget: the count shown with a page never adds more than 20 ms.\n"
        );
        match &self.count {
            Some(rows) => {
                let _ = writeln!(
                    o,
                    "| filter | runs | p50 | p95 | max | median count | exact | target |"
                );
                let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
                for r in rows {
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | {} | {} | {} of {} | ≤ 20 ms |",
                        r.name,
                        r.latencies.len(),
                        ms(pct(&r.latencies, 0.50)),
                        ms(pct(&r.latencies, 0.95)),
                        ms(r.latencies.last().copied().unwrap_or_default()),
                        thousands(median(&r.counts)),
                        r.exact,
                        r.latencies.len()
                    );
                }
            }
            None => {
                let _ = writeln!(o, "not run");
            }
        }

        if let Some(s) = &self.streams {
            render_streams(&mut o, s);
        }

        let _ = writeln!(o, "\n## Integrity\n");
        let _ = writeln!(o, "| figure | measured | target |");
        let _ = writeln!(o, "|---|---|---|");
        if let Some(e) = &self.erasure {
            let _ = writeln!(
                o,
                "| erasure of the busiest user (`POST /v1/erasure`) | {} entries rewritten in {:.2} s, of which the clean-up of the database files {:.2} s | — |",
                e.entries,
                e.wall.as_secs_f64(),
                e.cleanup.as_secs_f64()
            );
        }
        match &self.verify {
            Some(v) => {
                let secs = v.wall.as_secs_f64();
                let _ = writeln!(
                    o,
                    "| `stele verify --full` (subprocess, after the graceful stop) | {} | — |",
                    if v.ok {
                        "succeeded".to_string()
                    } else {
                        format!("**FAILED** ({})", v.status)
                    }
                );
                let _ = writeln!(
                    o,
                    "| `stele verify` | wall time, start to exit | {secs:.2} s | seconds, not minutes, at 1M entries |"
                );
                let _ = writeln!(
                    o,
                    "| `stele verify` | entries verified, per second of wall time | {} in {secs:.2} s = {} entries/s | — |",
                    thousands(v.entries),
                    thousands((v.entries as f64 / secs) as u64)
                );
                if v.pruned > 0 || self.prune.is_some() {
                    let _ = writeln!(
                        o,
                        "| `stele verify` | entries pruned by retention (chain links kept), from its output | {} | — |",
                        thousands(v.pruned)
                    );
                }
                let cores = |c: Option<f64>| match c {
                    Some(c) => format!("{c:.2} s ({:.2} cores)", c / secs),
                    None => "unknown".into(),
                };
                match v.postgres {
                    Some(pg) => {
                        let _ = writeln!(
                            o,
                            "| `stele verify` | CPU of the verify process / of PostgreSQL / of everything else | {} / {} / {} | — |",
                            cores(v.cpu),
                            cores(Some(pg)),
                            cores(v.others)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            o,
                            "| `stele verify` | CPU of the verify process / of everything else | {} / {} | — |",
                            cores(v.cpu),
                            cores(v.others)
                        );
                    }
                }
                for line in &v.stdout {
                    let _ = writeln!(o, "| `stele verify` | output | `{line}` | — |");
                }
                if !v.ok {
                    for line in &v.stderr {
                        let _ = writeln!(o, "| `stele verify` | stderr | `{line}` | — |");
                    }
                }
                if let Some((wall, lines)) = &v.incremental {
                    let _ = writeln!(
                        o,
                        "| `stele verify` again, without `--full` (nothing new since) | wall time, start to exit | {} | — |",
                        ms(*wall)
                    );
                    for line in lines {
                        let _ = writeln!(
                            o,
                            "| `stele verify` without `--full` | output | `{line}` | — |"
                        );
                    }
                }
            }
            None => {
                let _ = writeln!(o, "| `stele verify` | not run | | |");
            }
        }
        match &self.proof {
            Some(p) => {
                let name = "`GET /v1/events/{id}/proof`";
                let _ = writeln!(
                    o,
                    "| {name} ({} entries, one client, sequential) | p50 / p95 / max | {} / {} / {} | — |",
                    p.latencies.len(),
                    ms(pct(&p.latencies, 0.50)),
                    ms(pct(&p.latencies, 0.95)),
                    ms(p.latencies.last().copied().unwrap_or_default())
                );
                let _ = writeln!(
                    o,
                    "| {name} | tree size (checkpoint seq), median answer size | {} entries, {} bytes | — |",
                    thousands(median(&p.tree_sizes)),
                    thousands(median(&p.bytes) as u64)
                );
                let _ = writeln!(
                    o,
                    "| {name} | proofs that verify with the public key | {} of {} | all |",
                    p.valid,
                    p.latencies.len()
                );
                let _ = writeln!(
                    o,
                    "| {name} | wait for a checkpoint covering the chosen entries (`--checkpoint-every {}`) | {:.1} s | — |",
                    p.checkpoint_every,
                    p.waited.as_secs_f64()
                );
                let c = &p.consistency;
                let name = "`GET /v1/integrity/consistency`";
                if c.latencies.is_empty() {
                    let _ = writeln!(o, "| {name} | not run: one checkpoint only | | |");
                } else {
                    let _ = writeln!(
                        o,
                        "| {name} ({} earlier checkpoints, seq {} to {}, to seq {}) | p50 / p95 / max | {} / {} / {} | — |",
                        c.latencies.len(),
                        thousands(c.from_min),
                        thousands(c.from_max),
                        thousands(c.to),
                        ms(pct(&c.latencies, 0.50)),
                        ms(pct(&c.latencies, 0.95)),
                        ms(c.latencies.last().copied().unwrap_or_default())
                    );
                    let _ = writeln!(
                        o,
                        "| {name} | proofs that verify with the public key | {} of {} | all |",
                        c.valid,
                        c.latencies.len()
                    );
                }
            }
            None => {
                let _ = writeln!(o, "| inclusion proofs | not run | | |");
            }
        }

        if let Some(m) = &self.orgs {
            m.render(&mut o, info.args);
        }

        if let Some(t) = &self.tenants {
            t.render(&mut o, info.args);
        }

        if let Some(c) = &self.compat {
            c.render(&mut o);
        }

        if let Some(s) = &self.startup {
            s.render(&mut o);
        }

        if let Some(e) = &self.export {
            let _ = writeln!(o, "\n## Export\n");
            let _ = writeln!(o, "| figure | measured | target |");
            let _ = writeln!(o, "|---|---|---|");
            let _ = writeln!(
                o,
                "| `GET /v1/export?format=csv&actor_type=all`: MB/s of CSV | {:.1} ({} bytes, {} lines, in {:.2} s; first byte after {}) | ≥ 100 MB/s |",
                e.mb_per_s(),
                thousands(e.bytes),
                thousands(e.lines),
                e.elapsed.as_secs_f64(),
                ms(e.time_to_first_byte)
            );
            let kb = |v: Option<u64>| {
                v.map_or("unknown".to_string(), |k| {
                    format!("{:.1} MB", k as f64 / 1024.0)
                })
            };
            let _ = writeln!(
                o,
                "| server anonymous memory (`RssAnon`: heap, stacks), peak sampled every 10 ms | {} (before the request: {}) | — |",
                kb(e.anon_peak_kb),
                kb(e.anon_before_kb)
            );
            let _ = writeln!(
                o,
                "| server peak RSS (`VmHWM`) {}, on a server started just before | {} (RSS before the request: {}) | ≤ 64 MB |",
                if e.peak_reset {
                    "during the export"
                } else {
                    "over the server's whole life (the peak could not be reset)"
                },
                kb(e.peak_kb),
                kb(e.rss_before_kb)
            );
        }

        if let Some(s) = &self.soak {
            s.render(&mut o);
        }

        if let Some(p) = &self.prune {
            p.render(&mut o, info.args);
        }

        let _ = writeln!(o, "\n## Disk\n");
        match &self.disk {
            Some(d) if d.database.is_some() => render_pg_disk(&mut o, d),
            Some(d) => {
                let per_event = |total: u64| {
                    if d.events_known && d.events > 0 {
                        format!("{:.1}", total as f64 / d.events as f64)
                    } else {
                        "unknown (the stored count was not exact)".to_string()
                    }
                };
                let _ = writeln!(o, "Events stored: {}.\n", thousands(d.events));
                let _ = writeln!(o, "| figure | measured | target |");
                let _ = writeln!(o, "|---|---|---|");
                let mut stages = vec![("as the stopped server left them", &d.as_left)];
                if let Some(c) = &d.checkpointed {
                    stages.push(("after checkpointing the WAL", c));
                }
                for (stage, files) in stages {
                    let total: u64 = files.iter().map(|(_, b)| b).sum();
                    for (name, bytes) in files {
                        let _ =
                            writeln!(o, "| {name}, {stage} | {} bytes | — |", thousands(*bytes));
                    }
                    let _ = writeln!(o, "| all files, {stage} | {} bytes | — |", thousands(total));
                    let _ = writeln!(
                        o,
                        "| bytes per event, {stage} | {} | ≤ 250 bytes |",
                        per_event(total)
                    );
                }
                let _ = writeln!(
                    o,
                    "| largest stele.db-wal seen while the server ran (sampled every 250 ms) | {} bytes | — |",
                    thousands(d.largest_wal)
                );
                if !d.objects.is_empty() && d.events > 0 {
                    let _ = writeln!(
                        o,
                        "\nWhere the pages go (sqlite3 `dbstat` on stele.db after the checkpoint):\n"
                    );
                    let _ = writeln!(o, "| table or index | bytes | bytes per event |");
                    let _ = writeln!(o, "|---|---|---|");
                    for (name, bytes) in &d.objects {
                        let _ = writeln!(
                            o,
                            "| {name} | {} | {:.1} |",
                            thousands(*bytes),
                            *bytes as f64 / d.events as f64
                        );
                    }
                }
            }
            None => {
                let _ = writeln!(o, "not run");
            }
        }

        if !self.cpu.is_empty() {
            let _ = writeln!(
                o,
                "\n## CPU used (the server and the bench client share the machine)\n"
            );
            let pg = info.postgres.is_some();
            let _ = writeln!(
                o,
                "| scenario | wall time | server CPU | bench client CPU | {}other processes | server threads (CPU s) |",
                if pg { "PostgreSQL processes | " } else { "" }
            );
            let _ = writeln!(
                o,
                "|---|---|---|---|---|---|{}",
                if pg { "---|" } else { "" }
            );
            let cores = |cpu: Option<f64>, wall: f64| match cpu {
                Some(c) => format!("{c:.2} s ({:.2} cores)", c / wall),
                None => "unknown".into(),
            };
            for (name, c) in &self.cpu {
                let threads = c
                    .threads
                    .iter()
                    .take(4)
                    .map(|(n, s)| format!("{n} {s:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let postgres = if pg {
                    format!("{} | ", cores(c.postgres, c.wall))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    "| {name} | {:.2} s | {} | {} | {postgres}{} | {threads} |",
                    c.wall,
                    cores(c.server, c.wall),
                    cores(c.bench, c.wall),
                    cores(c.others, c.wall)
                );
            }
        }
        o
    }
}

/// The disk section with PostgreSQL: the database's size, and where the bytes go.
fn render_pg_disk(o: &mut String, d: &DiskResult) {
    let Some(db) = &d.database else { return };
    let per_event = |bytes: u64| {
        if d.events_known && d.events > 0 {
            format!("{:.1}", bytes as f64 / d.events as f64)
        } else {
            "unknown (the stored count was not exact)".to_string()
        }
    };
    let stele: u64 = db.tables.iter().map(|t| t.total).sum();
    let _ = writeln!(o, "Events stored: {}.\n", thousands(d.events));
    let _ = writeln!(o, "| figure | measured | target |");
    let _ = writeln!(o, "|---|---|---|");
    let _ = writeln!(
        o,
        "| `pg_database_size`, as the stopped server left it | {} bytes | — |",
        thousands(db.database)
    );
    let _ = writeln!(
        o,
        "| bytes per event, `pg_database_size` | {} | ≤ 250 bytes |",
        per_event(db.database)
    );
    let _ = writeln!(
        o,
        "| Stele's tables with their TOAST and indexes (`pg_total_relation_size`, schema `public`) | {} bytes | — |",
        thousands(stele)
    );
    let _ = writeln!(
        o,
        "| bytes per event, Stele's tables only | {} | — |",
        per_event(stele)
    );
    let _ = writeln!(
        o,
        "| the rest of the database (system catalogs and the like) | {} bytes | — |",
        thousands(db.database.saturating_sub(stele))
    );
    for (name, bytes) in &d.as_left {
        let _ = writeln!(
            o,
            "| data directory: {name} | {} bytes | — |",
            thousands(*bytes)
        );
    }
    let _ = writeln!(
        o,
        "\nThe server's write-ahead log (`pg_wal`, shared by the whole cluster) is not counted.\n"
    );
    let _ = writeln!(
        o,
        "| table | total | bytes per event | table (heap, TOAST, maps) | of which TOAST | indexes |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for t in &db.tables {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            t.name,
            thousands(t.total),
            per_event(t.total),
            thousands(t.table),
            thousands(t.toast),
            thousands(t.indexes)
        );
    }
    let _ = writeln!(o, "\n| index | bytes | bytes per event |");
    let _ = writeln!(o, "|---|---|---|");
    for (name, bytes) in &db.indexes {
        let _ = writeln!(
            o,
            "| {name} | {} | {} |",
            thousands(*bytes),
            per_event(*bytes)
        );
    }
}

/// Nearest-rank percentile of a sorted sample.
/// The first-page table: one row per filter, with its target.
pub(crate) fn render_query_rows(o: &mut String, rows: &[QueryRow]) {
    let _ = writeln!(
        o,
        "| filter | example | runs | p50 | p95 | max | median rows | median total | total exact | target p95 |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let target = if r.name.starts_with("q,") {
            "≤ 100 ms"
        } else {
            "≤ 10 ms"
        };
        let _ = writeln!(
            o,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} of {} | {target} |",
            r.name,
            r.example,
            r.latencies.len(),
            ms(pct(&r.latencies, 0.50)),
            ms(pct(&r.latencies, 0.95)),
            ms(r.latencies.last().copied().unwrap_or_default()),
            median(&r.page_sizes),
            thousands(median(&r.totals)),
            r.exact,
            r.latencies.len()
        );
    }
}

/// A row of read-after-write probes (`scenarios::visibility`): how many every filter found at
/// its first request after the `201`, and the time until all of them had.
fn render_visibility(o: &mut String, when: &str, p: &Probes, target: &str) {
    let _ = writeln!(
        o,
        "| read-after-write {when} (actor, entity_id, correlation_id, q) | found at the first request after the 201; time until every filter found it p50 / p99 / max | {} of {}{}; {} / {} / {} | {target} |",
        p.found_at_once,
        p.count(),
        if p.missed > 0 {
            format!(", {} not found within 5 s", p.missed)
        } else {
            String::new()
        },
        ms(pct(&p.latencies, 0.50)),
        ms(pct(&p.latencies, 0.99)),
        ms(p.latencies.last().copied().unwrap_or_default())
    );
}

/// The `streams` scenario's section (`scenarios::streams`).
fn render_streams(o: &mut String, s: &crate::scenarios::streams::StreamsResult) {
    use crate::scenarios::streams::{STEADY_RATE, STEADY_SECONDS};
    let _ = writeln!(o, "\n## Log streams\n");
    let _ = writeln!(o, "| figure | measured |");
    let _ = writeln!(o, "|---|---|");
    for t in &s.throughput {
        let _ = writeln!(
            o,
            "| {} stream back-filling {} entries alone (batches of 1,000) | {} entries/s ({:.2} s) |",
            t.transport,
            thousands(t.entries),
            thousands((t.entries as f64 / t.elapsed.as_secs_f64()) as u64),
            t.elapsed.as_secs_f64()
        );
    }
    let lag_row = |o: &mut String, l: &crate::scenarios::streams::Lag, rate: f64, over: &str| {
        let at = |p: f64| {
            if l.samples.is_empty() {
                0.0
            } else {
                let rank = ((p * l.samples.len() as f64).ceil() as usize).clamp(1, l.samples.len());
                l.samples[rank - 1]
            }
        };
        let _ = writeln!(
            o,
            "| {} stream's lag (age of its oldest undelivered entry, sampled every 100 ms) under {} events/s{over} for {STEADY_SECONDS} s (aimed at {}) | p50 {:.2} s, p99 {:.2} s, max {:.2} s; caught up {:.2} s after the ingest |",
            l.transport,
            thousands(rate as u64),
            thousands(STEADY_RATE),
            at(0.50),
            at(0.99),
            l.samples.last().copied().unwrap_or(0.0),
            l.caught_up_after.as_secs_f64()
        );
    };
    for l in &s.lag {
        lag_row(o, l, s.steady_rate, "");
    }
    if let Some(platform) = &s.platform {
        let orgs = thousands(crate::scenarios::streams::PLATFORM_ORGS);
        lag_row(
            o,
            &platform.lag,
            platform.rate,
            &format!(" spread over {orgs} organizations"),
        );
        let b = &platform.backlog;
        let _ = writeln!(
            o,
            "| {} stream, paused through that ingest, delivering its {} entries over {orgs} organizations once resumed (batches of 100, the default) | {} entries/s ({:.2} s) |",
            b.transport,
            thousands(b.entries),
            thousands((b.entries as f64 / b.elapsed.as_secs_f64()) as u64),
            b.elapsed.as_secs_f64()
        );
    }
    for c in &s.cost {
        let _ = writeln!(
            o,
            "| batch ingest of {} events with {} webhook streams active | {} events/s; server CPU {} s ({} µs an event) |",
            thousands(c.events),
            c.streams,
            thousands((c.events as f64 / c.elapsed.as_secs_f64()) as u64),
            c.cpu.server.map_or("?".into(), |v| format!("{v:.2}")),
            c.cpu
                .server
                .map_or("?".into(), |v| format!("{:.1}", v * 1e6 / c.events as f64))
        );
    }
}

pub(crate) fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub(crate) fn median<T: Copy + Default>(sorted: &[T]) -> T {
    if sorted.is_empty() {
        T::default()
    } else {
        sorted[(sorted.len() - 1) / 2]
    }
}

pub(crate) fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && matches!((digits.len() - i) % 3, 0) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(pct(&v, 0.5), Duration::from_millis(50));
        assert_eq!(pct(&v, 0.99), Duration::from_millis(99));
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
