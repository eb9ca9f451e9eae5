//! `stele-bench`: the benchmark harness behind `docs/benchmarks.md`, a binary of its own that is
//! not shipped.
//!
//! It starts the `stele` binary it measures (`--stele PATH`; by default the `stele` built next to
//! it, `cargo build --release -p stele -p stele-bench`) as a child process (`stele serve` on a free
//! port and a throwaway data directory), drives it over HTTP the way clients do, and prints a
//! Markdown report with every figure next to its target (docs/benchmarks.md). The scenarios,
//! each a module of `scenarios/`:
//!
//! - `ingest`: durable batch ingest (`--batch` events per request from `--ingest-clients`
//!   concurrent senders) until `--events` are stored;
//! - `orgs` (opt-in): a platform key's batches whose events each name one of `--orgs`
//!   organizations against its single-organization batches, in the order single, mixed, mixed,
//!   single, `--orgs-events` of each;
//! - `tenants` (opt-in): `--tenants-events` spread over `--tenants` organizations by a platform
//!   key, then the first pages of one large and one small tenant, and what naming the
//!   organization (external id, organization id, the organization's own key) costs a request;
//! - `single`: one event per request from `--single-clients` concurrent clients for
//!   `--single-seconds`;
//! - `visibility`: read-after-write, a batch ingest of its own with probes beside it and after it
//!   (`scenarios/visibility.rs`);
//! - `streams` (not in the default list): log streams' delivery throughput per transport, their
//!   lag under a steady ingest and what active streams cost the ingest (`scenarios/streams.rs`);
//! - `query`: first-page latency (limit 50) for each filter on its own, no filter, and one
//!   three-filter combination, `--queries` times each with varying values that exist;
//! - `count`: the cost of the count alone, timed on the store opened in this process next to the
//!   running server (SQLite in WAL mode allows it; PostgreSQL is a server anyway);
//! - `proof`: `GET /v1/events/{id}/proof` for `--proofs` stored entries once a signed checkpoint
//!   covers them, and `GET /v1/integrity/consistency` from up to `--proofs` earlier checkpoints
//!   to the newest (each proof is also checked with the server's public key, off the clock);
//! - `prune` (opt-in, it removes the ingested entries): single-event latency with no prune
//!   running, then while `stele prune` (a subprocess) removes every ingested entry after the
//!   retention window was set to 30 days; selecting it backdates the ingest past that window,
//!   keeps the server's own daily retention schedule off, and implies `verify`;
//! - `verify`: `stele verify` over the data directory after the graceful stop, as a subprocess;
//! - `startup`: the server restarted on the trail: spawned to ready (`/readyz`), and its idle
//!   memory;
//! - `export`: the whole trail as one CSV download: MB/s and the server's peak RSS;
//! - `soak` (opt-in): `--soak-minutes` of paced mixed load (single events and batches, first
//!   pages with filters, searches, cursor walks, entries by id, exports, console pages) on a
//!   freshly restarted server, its resident memory read every 10 s: is it flat after warm-up?
//! - `copy`: the yardstick for ingest, and the ratio of Stele's ingest rate to it: on PostgreSQL a
//!   plain binary `COPY` of the same rows into equally indexed tables; on SQLite the same rows
//!   written by plain SQLite into the same table and the same three secondary indexes
//!   (`raw_sqlite.rs`);
//! - `disk`: bytes on disk per stored event after a graceful stop (the data directory's files, or
//!   with PostgreSQL `pg_database_size` and where the bytes go, read with `psql`).
//!
//! With `--database-url postgres://…` every scenario runs against PostgreSQL: the child server,
//! the in-process count and `stele verify` use that database (the data directory then holds only
//! the checkpoint signing key). The URL must name a fresh database; the harness refuses one that
//! already holds an organization, and does not drop it afterwards. The report records the
//! planner's statistics of `entries` when the queries begin; `--analyze` runs `ANALYZE` after the
//! ingest, for servers where autovacuum is off.
//!
//! Reference events come from a deterministic generator (`generator.rs`: xorshift, `--seed`). To
//! keep generation off the measured path, a pool of distinct events is serialized once; each sent
//! event is a pooled event with a fresh `occurred_at`, correlation id, request id and entity number
//! spliced in.
//! Progress goes to stderr; the report goes to stdout.

mod cpu;
mod generator;
mod http;
mod report;
mod scenarios;
mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use stele_core::Seq;
use stele_core::time::now_millis;
use stele_server::app::backend::DatabaseUrl;
use stele_store::{Scope, Store};

use cpu::{CpuMeter, Machine, watch_wal};
use generator::Pool;
use http::{Http, params};
use report::{Report, RunInfo};
use scenarios::count::count;
use scenarios::disk::{DiskResult, PgInfo, data_files, disk, pg_sizes, planner_statistics, psql};
use scenarios::ingest::ingest;
use scenarios::proof::proofs;
use scenarios::query::{Samples, query, query_specs};
use scenarios::single::single;
use scenarios::verify::verify;
use scenarios::{copy, export, prune, raw_sqlite, startup};
use server::{DirCleanup, Server, bench_key};

/// The kind of per-event idempotency keys the `ingest` scenario sends (`--event-keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EventKeys {
    Random,
    Ordered,
}

#[derive(clap::Parser, Clone)]
#[command(
    name = "stele-bench",
    version,
    about = "Measure ingest and query performance of a `stele` binary against a throwaway server"
)]
pub struct BenchArgs {
    /// Events to ingest before the query scenarios (10M: `--events 10000000`).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per ingest request (at most 1000).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent batch senders.
    #[arg(long, default_value_t = 4)]
    ingest_clients: usize,
    /// `ingest` scenario: give every event an `idempotency_key` of its own, to measure what the
    /// server's per-event records cost: `random` (as a UUID v4 is) or `ordered` (as a UUID v7 is:
    /// the time in milliseconds first, then random bits).
    #[arg(long, value_enum)]
    event_keys: Option<EventKeys>,
    /// Concurrent clients sending one event per request.
    #[arg(long, default_value_t = 64)]
    single_clients: usize,
    /// How long the single-event scenario runs.
    #[arg(long, default_value_t = 10)]
    single_seconds: u64,
    /// First-page requests per filter (and counts per filter).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Inclusion proofs to time, and at most as many consistency proofs (`proof` scenario).
    #[arg(long, default_value_t = 20)]
    proofs: usize,
    /// The server's `--checkpoint-every` (seconds), so that a signed checkpoint covers the
    /// ingested entries soon after ingest (the server's own default is 60).
    #[arg(long, default_value_t = 5)]
    checkpoint_every: u64,
    /// Scenarios to run, comma-separated: ingest, copy, orgs, tenants, compat, single, query,
    /// count, proof, startup, export, visibility, soak, prune, erasure, verify, disk. `compat` (not in the default list)
    /// measures the WorkOS and Retraced doors beside the native API. `copy` is the ingest's
    /// yardstick (a plain binary `COPY` on PostgreSQL, plain SQLite writes of the same rows
    /// otherwise). `prune` (not in the default list) removes what the ingest stored: it backdates the
    /// ingest past the 30-day retention window and runs after every other scenario but `verify`
    /// and `disk`. `orgs` and `tenants` (not in the default list either) write into
    /// organizations of their own, so they cannot run with `disk`. `erasure` (not in the default
    /// list) erases the generator's busiest user after the other scenarios, before `verify`.
    /// `soak` (not in the default list) runs `--soak-minutes` of mixed load on a restarted server
    /// and reports its resident memory; it writes entries of its own, so not with `disk`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ingest,copy,single,query,count,proof,startup,export,visibility,verify,disk"
    )]
    scenarios: Vec<Scenario>,
    /// Seed of the reference event generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Use (and keep) this data directory instead of a fresh temporary one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the temporary data directory at the end.
    #[arg(long)]
    keep: bool,
    /// Run against PostgreSQL instead of SQLite (postgres://user@host/db). The database must be
    /// fresh and empty (the harness refuses one that holds an organization) and is left as the run
    /// leaves it; the data directory still holds the signing key. Deliberately not read from
    /// STELE_DATABASE_URL, which the child processes do not inherit either.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// With --database-url: run `ANALYZE` after the ingest (off the clock), as autovacuum would
    /// have done by then, for a server where autovacuum is off (without planner statistics
    /// PostgreSQL plans every query for an empty table).
    #[arg(long)]
    analyze: bool,
    /// `orgs` scenario: how many organizations the mixed batches spread their events over (at
    /// most 999, the width of their external ids).
    #[arg(long, default_value_t = 100)]
    orgs: u64,
    /// `orgs` scenario: events sent in each kind of batch (single-organization, mixed).
    #[arg(long, default_value_t = 200_000)]
    orgs_events: u64,
    /// `compat` scenario: seconds of load in all, shared by its four passes of each pair (native
    /// single events and WorkOS's, native batches of 50 and Retraced's bulks).
    #[arg(long, default_value_t = 20)]
    compat_seconds: u64,
    /// `tenants` scenario: the organizations its events spread over (a fifth to one of them).
    #[arg(long, default_value_t = 10_000)]
    tenants: u64,
    /// `tenants` scenario: events sent, all in batches mixing organizations.
    #[arg(long, default_value_t = 1_000_000)]
    tenants_events: u64,
    /// `copy` scenario on SQLite: also write the rows into fewer structures (`entries` alone, with
    /// its index, with each search table), batched and in one transaction, to show what each costs.
    #[arg(long)]
    copy_breakdown: bool,
    /// `soak` scenario: minutes of mixed load (the first 20%, at most 5 minutes, are warm-up).
    #[arg(long, default_value_t = 30)]
    soak_minutes: u64,
    /// `soak` scenario: draws of a request kind per second, all clients together (a cursor walk
    /// is one draw of up to five pages).
    #[arg(long, default_value_t = 100)]
    soak_rate: u64,
    /// `soak` scenario: concurrent clients.
    #[arg(long, default_value_t = 16)]
    soak_clients: usize,
    /// `prune` scenario: run `stele prune` without `--archive-dir`.
    #[arg(long)]
    prune_no_archive: bool,
    /// The `stele` binary to measure, run as `stele serve`, `stele verify` and `stele prune`.
    /// Default: the `stele` next to this executable (the same target directory). Name another
    /// build (`--stele /tmp/stele-old`) to measure it side by side.
    #[arg(long, env = "STELE_BIN", value_name = "PATH")]
    stele: Option<PathBuf>,
}

/// Where the server under test keeps its data.
enum Backend {
    /// The embedded database, `stele.db` in the data directory.
    Sqlite,
    Postgres(DatabaseUrl),
}

impl Backend {
    fn url(&self) -> Option<&DatabaseUrl> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(url) => Some(url),
        }
    }

    /// The same store the server opens, without the signing key (the server signs checkpoints).
    async fn open(&self, dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
        stele_server::app::backend::open(
            self.url(),
            dir,
            None,
            stele_server::app::backend::StoreTuning::default(),
        )
        .await
    }

    /// `stele <args> --data-dir DIR` on the measured binary for this backend: quiet unless
    /// `STELE_LOG` says otherwise, no standard input, standard output piped, standard error as
    /// given.
    fn command(&self, stele: &Path, args: &[&str], dir: &Path, stderr: Stdio) -> Command {
        let mut command = Command::new(stele);
        command.args(args).arg("--data-dir").arg(dir);
        self.configure(&mut command);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // The `streams` scenario's receivers are the bench's own, on loopback.
        command.env("STELE_STREAMS_ALLOW_PRIVATE_TARGETS", "true");
        if std::env::var_os("STELE_LOG").is_none() {
            command.env("STELE_LOG", "warn");
        }
        command
    }

    /// Passes the backend to a child `stele` command.
    fn configure(&self, command: &mut Command) {
        // An inherited STELE_DATABASE_URL must not send a SQLite run to PostgreSQL (or the other
        // way round): only `--database-url` chooses.
        command.env_remove("STELE_DATABASE_URL");
        if let Backend::Postgres(url) = self {
            command.arg("--database-url").arg(url.expose());
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Ingest,
    Copy,
    Orgs,
    Tenants,
    Compat,
    Export,
    Single,
    Soak,
    Query,
    Count,
    Proof,
    Startup,
    Prune,
    Erasure,
    Verify,
    Disk,
    Visibility,
    Streams,
}

/// Pool of distinct pre-serialized events the senders cycle through.
const POOL_SIZE: usize = 20_000;
/// The time span the ingested events cover, ending just before the run starts.
const SPAN_MS: i64 = 90 * 24 * 3600 * 1000;
const PAGE_LIMIT: &str = "50";

fn main() -> anyhow::Result<()> {
    stele_server::app::logging::init();
    let args = <BenchArgs as clap::Parser>::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(args))
}

/// The `stele` binary the harness starts as `stele serve`, `stele verify` and `stele prune`:
/// `--stele` (or STELE_BIN), else the one built next to this executable (`target/release/stele`
/// beside `target/release/stele-bench`). Made absolute, so that the report names it and a bare
/// name is not looked up in PATH.
fn stele_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => {
            if !path.is_file() {
                bail!("--stele {}: no such file", path.display());
            }
            path.to_path_buf()
        }
        None => {
            let bench = std::env::current_exe().context("locating the stele-bench binary")?;
            let stele = bench.with_file_name(format!("stele{}", std::env::consts::EXE_SUFFIX));
            if !stele.is_file() {
                bail!(
                    "no `stele` binary next to {}: build both (`cargo build --release -p stele -p \
                     stele-bench`), or name the binary to measure with --stele PATH (or STELE_BIN)",
                    bench.display()
                );
            }
            stele
        }
    };
    std::fs::canonicalize(&path).with_context(|| format!("resolving {}", path.display()))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !(1..=1000).contains(&args.batch) {
        bail!("--batch must be from 1 to 1000");
    }
    if args.ingest_clients == 0 || args.single_clients == 0 || args.queries == 0 || args.proofs == 0
    {
        bail!("--ingest-clients, --single-clients, --queries and --proofs must be at least 1");
    }
    let wants = |s: Scenario| args.scenarios.contains(&s);
    if wants(Scenario::Orgs) {
        if wants(Scenario::Disk) {
            bail!(
                "the orgs scenario writes into organizations of its own, which disk's bytes per \
                 event would count without their events: run it without disk"
            );
        }
        if !(1..=999).contains(&args.orgs) || args.orgs_events == 0 {
            bail!("--orgs must be from 1 to 999 and --orgs-events at least 1");
        }
    }
    if wants(Scenario::Streams) && wants(Scenario::Disk) {
        bail!("the streams scenario records events of its own: run it without disk");
    }
    if wants(Scenario::Compat) && wants(Scenario::Disk) {
        bail!("the compat scenario writes into an organization of its own: run it without disk");
    }
    if wants(Scenario::Tenants) {
        if wants(Scenario::Disk) {
            bail!("the tenants scenario writes into organizations of its own: run it without disk");
        }
        if args.tenants < 2 || args.tenants_events == 0 {
            bail!("--tenants must be at least 2 and --tenants-events at least 1");
        }
    }
    if wants(Scenario::Soak) {
        if wants(Scenario::Disk) {
            bail!("the soak scenario writes entries of its own: run it without disk");
        }
        if args.soak_minutes == 0 || args.soak_rate == 0 || args.soak_clients == 0 {
            bail!("--soak-minutes, --soak-rate and --soak-clients must be at least 1");
        }
    }
    let stele = stele_binary(args.stele.as_deref())?;
    let command_line = std::env::args()
        .enumerate()
        .map(|(i, a)| if i == 0 { "stele-bench".to_string() } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    let machine = Machine::probe();
    let backend = match &args.database_url {
        Some(url) => Backend::Postgres(DatabaseUrl::parse(url)?),
        None => Backend::Sqlite,
    };
    if args.analyze && args.database_url.is_none() {
        bail!("--analyze needs --database-url (it runs PostgreSQL's ANALYZE)");
    }

    let (dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("stele-bench-{}", std::process::id())),
            true,
        ),
    };
    if temporary && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let _cleanup = DirCleanup {
        dir: (temporary && !args.keep).then(|| dir.clone()),
    };

    eprintln!(
        "bench: generating {POOL_SIZE} reference events (seed {})",
        args.seed
    );
    let pool = Arc::new(Pool::generate(args.seed));
    eprintln!(
        "bench: average reference event: {:.1} bytes of JSON",
        pool.average_bytes
    );

    // What the server will find: on a reused SQLite data directory the first start's key is not
    // printed again, so the bench makes one; a PostgreSQL database must be fresh.
    let mut existing = None;
    let mut postgres = None;
    match &backend {
        Backend::Sqlite => {
            if dir.join("stele.db").exists() {
                existing = Some(bench_key(backend.open(&dir).await?.as_ref()).await?);
            }
        }
        Backend::Postgres(url) => {
            let store = backend.open(&dir).await?;
            let orgs = store.list_orgs().await?;
            if !orgs.is_empty() {
                bail!(
                    "{url} already holds {} organization(s); --database-url must name a fresh, empty \
                     database (CREATE DATABASE …), so that the figures are those of this run alone",
                    orgs.len()
                );
            }
            drop(store);
            postgres = Some(PgInfo::probe(url)?);
        }
    }

    // The prune scenario runs retention itself; the server's daily run must not interfere.
    let no_prune = wants(Scenario::Prune);
    let mut server = Server::start(
        &stele,
        &dir,
        args.checkpoint_every,
        no_prune,
        &backend,
        existing,
    )
    .await?;
    eprintln!("bench: server pid {} at {}", server.child.id(), server.url);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(256)
        .build()?;
    let mut http = Http {
        client,
        url: server.url.clone(),
        key: server.key.clone(),
        organization: None,
    };
    let preexisting = http.total_events().await?;

    let mut report = Report::default();
    // With the prune scenario every ingested event must be past the (minimum) retention window.
    let backdate_ms = if wants(Scenario::Prune) {
        prune::BACKDATE_DAYS * 24 * 3600 * 1000
    } else {
        0
    };
    let base_ms = now_millis() - SPAN_MS - 60_000 - backdate_ms;

    let mut server_pid = server.child.id();
    let pg = postgres.is_some();
    let wal = matches!(backend, Backend::Sqlite).then(|| dir.join("stele.db-wal"));
    let (largest_wal, stop_wal_watch) = watch_wal(wal.clone());
    if wants(Scenario::Ingest) {
        let cpu = CpuMeter::start(server_pid, pg);
        report.ingest = Some(ingest(&http, &args, pool.clone(), base_ms, wal, false).await?);
        report.cpu.push(("batch ingest", cpu.stop()));
    }
    if wants(Scenario::Orgs) {
        let key = server::platform_key(backend.open(&dir).await?.as_ref()).await?;
        let cpu = CpuMeter::start(server_pid, pg);
        report.orgs = Some(scenarios::orgs::run(&http, &key, &args, pool.clone(), base_ms).await?);
        report
            .cpu
            .push(("batches of one and of many organizations", cpu.stop()));
    }
    if wants(Scenario::Tenants) {
        let store = backend.open(&dir).await?;
        let key = server::platform_key(store.as_ref()).await?;
        let cpu = CpuMeter::start(server_pid, pg);
        // With --analyze, between the scenario's ingest and its pages, as for the query scenario.
        let analyze = || match &backend {
            Backend::Postgres(url) if args.analyze => {
                eprintln!("bench: running ANALYZE (--analyze)");
                psql(url, "ANALYZE").map(drop)
            }
            _ => Ok(()),
        };
        report.tenants = Some(
            scenarios::tenants::run(
                &http,
                store.as_ref(),
                &key,
                &args,
                pool.clone(),
                base_ms,
                analyze,
            )
            .await?,
        );
        report
            .cpu
            .push(("one organization among many: ingest and pages", cpu.stop()));
    }
    if wants(Scenario::Compat) {
        let store = backend.open(&dir).await?;
        let key = server::platform_key(store.as_ref()).await?;
        let project = store.platform_org().await?.id;
        let cpu = CpuMeter::start(server_pid, pg);
        report.compat = Some(
            scenarios::compat::run(
                scenarios::compat::Target {
                    http: &http,
                    platform_key: &key,
                    project: &project,
                },
                &args,
            )
            .await?,
        );
        report.cpu.push((
            "the WorkOS and Retraced doors beside the native API",
            cpu.stop(),
        ));
    }
    let ingested = report.ingest.as_ref().map_or(0, |r| r.events);
    if wants(Scenario::Copy) && ingested > 0 {
        match &backend {
            Backend::Postgres(url) => {
                report.raw_copy =
                    Some(copy::run(url, ingested, args.batch, args.ingest_clients).await?);
            }
            Backend::Sqlite => {
                let (dir, batch, breakdown) = (dir.clone(), args.batch, args.copy_breakdown);
                report.raw_sqlite = Some(
                    tokio::task::spawn_blocking(move || {
                        raw_sqlite::run(&dir, ingested, batch, breakdown)
                    })
                    .await??,
                );
            }
        }
    }
    if let Backend::Postgres(url) = &backend {
        if args.analyze {
            eprintln!("bench: running ANALYZE (--analyze)");
            let started = Instant::now();
            psql(url, "ANALYZE")?;
            report.analyze = Some(started.elapsed());
        }
        report.planner = Some(planner_statistics(url)?);
    }

    let mut specs = Vec::new();
    let mut samples = Samples::default();
    if wants(Scenario::Query) || wants(Scenario::Count) || wants(Scenario::Proof) {
        samples = Samples::collect(&http, args.queries, args.seed).await?;
        specs = query_specs(&samples, args.queries, args.seed);
    }
    if wants(Scenario::Query) {
        let cpu = CpuMeter::start(server_pid, pg);
        report.query = Some(query(&http, &specs).await?);
        report
            .cpu
            .push(("first-page queries (one client, sequential)", cpu.stop()));
    }
    if wants(Scenario::Count) {
        report.count = Some(count(&backend, &dir, &server.org, &specs).await?);
    }
    if wants(Scenario::Proof) {
        let cpu = CpuMeter::start(server_pid, pg);
        report.proof = Some(proofs(&http, &server.public_key, &samples, &args).await?);
        report.cpu.push((
            "inclusion and consistency proofs (one client, sequential)",
            cpu.stop(),
        ));
    }
    if wants(Scenario::Startup) {
        eprintln!("bench: restarting the server to time its start");
        server
            .restart(&dir, args.checkpoint_every, no_prune, &backend)
            .await?;
        server_pid = server.child.id();
        http.url = server.url.clone();
        tokio::time::sleep(startup::IDLE).await;
        let result = startup::StartupResult::measure(server.ready_after, server_pid);
        // The trail's length: its newest `seq` (the count the list gives is capped).
        let newest = http
            .get_json(&params(&[("actor_type", "all"), ("limit", "1")]))
            .await?;
        report.startup = Some(startup::StartupResult {
            newest_seq: newest["entries"][0]["seq"].as_i64().map(Seq::new),
            ..result
        });
    }
    if wants(Scenario::Export) {
        // On a freshly started server: its memory is then the export's, not what an ingest of
        // millions of events left allocated in the process (the later scenarios use it too).
        eprintln!("bench: restarting the server before the export");
        server
            .restart(&dir, args.checkpoint_every, no_prune, &backend)
            .await?;
        server_pid = server.child.id();
        http.url = server.url.clone();
        eprintln!("bench: server pid {server_pid} at {}", server.url);
        let cpu = CpuMeter::start(server_pid, pg);
        report.export = Some(export::run(&http.client, &http.url, &http.key, server_pid).await?);
        report.cpu.push(("CSV export (one client)", cpu.stop()));
    }
    if wants(Scenario::Single) {
        let cpu = CpuMeter::start(server_pid, pg);
        report.single = Some(single(&http, &args, pool.clone()).await?);
        report.cpu.push(("single-event requests", cpu.stop()));
    }
    let single_events = report.single.as_ref().map_or(0, |r| r.events);
    if wants(Scenario::Visibility) {
        let cpu = CpuMeter::start(server_pid, pg);
        report.visibility =
            Some(scenarios::visibility::run(&http, &args, pool.clone(), base_ms).await?);
        report
            .cpu
            .push(("batch ingest with read-after-write probes", cpu.stop()));
    }
    // The visibility scenario's load and probes, one event each probe.
    let probed = report.visibility.as_ref().map_or(0, |r| {
        r.events + (r.visible_under_load.count() + r.visible_when_idle.count()) as u64
    });
    if wants(Scenario::Soak) {
        // On a freshly started server, as for the export: the curve starts from the server's
        // own idle memory, not from what earlier scenarios left allocated.
        eprintln!("bench: restarting the server before the soak");
        server
            .restart(&dir, args.checkpoint_every, no_prune, &backend)
            .await?;
        server_pid = server.child.id();
        http.url = server.url.clone();
        let store = backend.open(&dir).await?;
        let console = scenarios::soak::console_session(store.as_ref(), &server.org, &http).await?;
        drop(store);
        let cpu = CpuMeter::start(server_pid, pg);
        report.soak = Some(
            scenarios::soak::run(
                &http,
                console,
                pool.clone(),
                server_pid,
                &scenarios::soak::Options {
                    minutes: args.soak_minutes,
                    rate: args.soak_rate,
                    clients: args.soak_clients,
                    seed: args.seed,
                },
            )
            .await?,
        );
        report.cpu.push(("soak (mixed load)", cpu.stop()));
    }
    if wants(Scenario::Prune) {
        let backdated = ingested > 0;
        report.prune = Some(
            prune::run(
                &stele,
                &http,
                &args,
                pool.clone(),
                &backend,
                &dir,
                backdated,
                server_pid,
                &mut report.cpu,
            )
            .await?,
        );
    }

    if wants(Scenario::Erasure) {
        let cpu = CpuMeter::start(server_pid, pg);
        report.erasure = Some(scenarios::erasure::run(&http).await?);
        report.cpu.push(("erasure (one request)", cpu.stop()));
    }

    if wants(Scenario::Streams) {
        let scopes = [Scope::Ingest, Scope::Read, Scope::Admin];
        let key = server::platform_key_with(backend.open(&dir).await?.as_ref(), &scopes).await?;
        report.streams = Some(
            scenarios::streams::run(&http, &key, &args, pool.clone(), base_ms, server_pid, pg)
                .await?,
        );
    }

    stop_wal_watch.store(true, Ordering::Relaxed);
    eprintln!("bench: stopping the server (graceful)");
    let stop_started = Instant::now();
    server.stop()?;
    let stop_time = stop_started.elapsed();
    // The files as the stopped server left them, before `stele verify` opens the database (its
    // last connection folds a leftover write-ahead log into the file).
    let as_left = data_files(&dir)?;
    // PostgreSQL's size as the stopped server left it, before `stele verify` reads it.
    let database = match &backend {
        Backend::Postgres(url) if wants(Scenario::Disk) => Some(pg_sizes(url)?),
        _ => None,
    };
    if wants(Scenario::Verify) || wants(Scenario::Prune) {
        report.verify = Some(verify(&stele, &dir, &backend)?);
    }
    if wants(Scenario::Disk) {
        // After a prune: plus its loads' events, the settings change and each run's own entry,
        // minus what it removed.
        let (added, removed) = report.prune.as_ref().map_or((0, 0), |p| {
            (p.load_events() + 1 + p.run.orgs as u64, p.run.removed)
        });
        let events = (preexisting.unwrap_or(0) + ingested + single_events + probed + added)
            .saturating_sub(removed);
        let mut d = match database {
            Some(database) => DiskResult {
                as_left,
                checkpointed: None,
                events,
                events_known: preexisting.is_some(),
                objects: Vec::new(),
                largest_wal: 0,
                database: Some(database),
            },
            None => disk(&dir, as_left, events, preexisting.is_some()).await?,
        };
        d.largest_wal = largest_wal.load(Ordering::Relaxed);
        report.disk = Some(d);
    }

    let load_after = Machine::loadavg();
    print!(
        "{}",
        report.render(&RunInfo {
            command_line,
            machine,
            stele,
            load_after,
            data_dir: dir.clone(),
            preexisting,
            ingested,
            single_events,
            backdate_days: (backdate_ms > 0).then_some(prune::BACKDATE_DAYS),
            average_bytes: pool.average_bytes,
            stop_time,
            args: &args,
            postgres,
        })
    );
    if !temporary || args.keep {
        eprintln!("bench: data kept in {}", dir.display());
    }
    if let Some(p) = &report.prune
        && !p.run.ok
    {
        bail!(
            "`stele prune` failed ({}); its output is in the report",
            p.run.status
        );
    }
    if let Some(s) = &report.soak
        && s.failed() > 0
    {
        bail!(
            "the soak had {} failed requests; the first are in the report",
            s.failed()
        );
    }
    if let Some(v) = &report.verify
        && !v.ok
    {
        bail!(
            "`stele verify` failed ({}); its output is in the report",
            v.status
        );
    }
    Ok(())
}
