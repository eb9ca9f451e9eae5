//! `stele bench`: the benchmark harness behind `docs/benchmarks.md`.
//!
//! It starts the real server as a child process of this same binary (`stele serve` on a free port
//! and a throwaway data directory), drives it over HTTP the way clients do, and prints a Markdown
//! report with every figure next to its target from product.md section 4:
//!
//! - `ingest`: durable batch ingest (`--batch` events per request from `--ingest-clients`
//!   concurrent senders) until `--events` are stored;
//! - `single`: one event per request from `--single-clients` concurrent clients for
//!   `--single-seconds`;
//! - `query`: first-page latency (limit 50) for each filter on its own, no filter, and one
//!   three-filter combination, `--queries` times each with varying values that exist;
//! - `count`: the cost of the count alone, timed on the store opened in this process next to the
//!   running server (SQLite in WAL mode allows it; PostgreSQL is a server anyway);
//! - `proof`: `GET /v1/events/{id}/proof` for `--proofs` stored entries once a signed checkpoint
//!   covers them (each proof is also checked with the server's public key, off the clock);
//! - `prune` (opt-in, it removes the ingested entries): single-event latency with no prune
//!   running, then while `stele prune` (a subprocess) removes every ingested entry after the
//!   retention window was set to 30 days (`prune.rs`); selecting it backdates the ingest past that
//!   window, keeps the server's own daily retention schedule off, and implies `verify`;
//! - `verify`: `stele verify` over the data directory after the graceful stop, as a subprocess;
//! - `startup`: the server restarted on the trail: spawned to ready (`/readyz`), and its idle
//!   memory (`startup.rs`);
//! - `export`: the whole trail as one CSV download (`export.rs`): MB/s and the server's peak RSS;
//! - `copy` (PostgreSQL only): the yardstick for ingest, a plain binary `COPY` of the same rows
//!   into equally indexed tables (`raw_copy.rs`), and the ratio of Stele's ingest rate to it;
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
//! Reference events come from a deterministic generator (xorshift, `--seed`). To keep generation
//! off the measured path, a pool of distinct events is serialized once; each sent event is a pooled
//! event with a fresh `occurred_at`, correlation id, request id and entity number spliced in.
//! Progress goes to stderr; the report goes to stdout.

mod export;
mod prune;
mod raw_copy;
mod startup;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use stele_core::filter::PageRequest;
use stele_core::time::{format_rfc3339, now_millis};
use stele_server::storage::DatabaseUrl;
use stele_store::{Scope, Store};
use stele_store_sqlite::SqliteStore;

#[derive(clap::Parser)]
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
    /// Concurrent clients sending one event per request.
    #[arg(long, default_value_t = 64)]
    single_clients: usize,
    /// How long the single-event scenario runs.
    #[arg(long, default_value_t = 10)]
    single_seconds: u64,
    /// First-page requests per filter (and counts per filter).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Inclusion proofs to time (`proof` scenario).
    #[arg(long, default_value_t = 20)]
    proofs: usize,
    /// The server's `--checkpoint-every` (seconds), so that a signed checkpoint covers the
    /// ingested entries soon after ingest (the server's own default is 60).
    #[arg(long, default_value_t = 5)]
    checkpoint_every: u64,
    /// Scenarios to run, comma-separated: ingest, copy, single, query, count, proof, startup,
    /// export, prune, verify, disk. `copy` needs `--database-url` and is skipped without it. `prune`
    /// (not in the default list) removes what the ingest stored: it backdates the ingest past the
    /// 30-day retention window and runs after every other scenario but `verify` and `disk`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ingest,copy,single,query,count,proof,startup,export,verify,disk"
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
    /// `prune` scenario: run `stele prune` without `--archive-dir`.
    #[arg(long)]
    prune_no_archive: bool,
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
        stele_server::storage::open(self.url(), dir, None, Duration::from_secs(60)).await
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
    Export,
    Single,
    Query,
    Count,
    Proof,
    Startup,
    Prune,
    Verify,
    Disk,
}

/// Pool of distinct pre-serialized events the senders cycle through.
const POOL_SIZE: usize = 20_000;
/// The time span the ingested events cover, ending just before the run starts.
const SPAN_MS: i64 = 90 * 24 * 3600 * 1000;
const PAGE_LIMIT: &str = "50";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STELE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = <BenchArgs as clap::Parser>::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(args))
}

/// The `stele` binary built next to this one (`target/release/stele` beside
/// `target/release/stele-bench`): the one the harness starts as `stele serve`, `stele verify` and
/// `stele prune`.
fn stele_exe() -> anyhow::Result<PathBuf> {
    let bench = std::env::current_exe().context("locating the stele-bench binary")?;
    let stele = bench.with_file_name(format!("stele{}", std::env::consts::EXE_SUFFIX));
    if !stele.is_file() {
        bail!(
            "no `stele` binary next to {} (build both: `cargo build --release -p stele -p stele-bench`)",
            bench.display()
        );
    }
    Ok(stele)
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
    let mut server =
        Server::start(&dir, args.checkpoint_every, no_prune, &backend, existing).await?;
    eprintln!("bench: server pid {} at {}", server.child.id(), server.url);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(256)
        .build()?;
    let mut http = Http {
        client,
        url: server.url.clone(),
        key: server.key.clone(),
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
        report.ingest = Some(ingest(&http, &args, pool.clone(), base_ms, wal).await?);
        report.cpu.push(("batch ingest", cpu.stop()));
    }
    let ingested = report.ingest.as_ref().map_or(0, |r| r.events);
    if let Backend::Postgres(url) = &backend
        && wants(Scenario::Copy)
        && ingested > 0
    {
        report.raw_copy =
            Some(raw_copy::run(url, ingested, args.batch, args.ingest_clients).await?);
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
        report
            .cpu
            .push(("inclusion proofs (one client, sequential)", cpu.stop()));
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
            newest_seq: newest["entries"][0]["seq"].as_u64(),
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
    if wants(Scenario::Prune) {
        let backdated = ingested > 0;
        report.prune = Some(
            prune::run(
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
        report.verify = Some(verify(&dir, &backend)?);
    }
    if wants(Scenario::Disk) {
        // After a prune: plus its loads' events, the settings change and each run's own entry,
        // minus what it removed.
        let (added, removed) = report.prune.as_ref().map_or((0, 0), |p| {
            (p.load_events() + 1 + p.run.orgs as u64, p.run.removed)
        });
        let events =
            (preexisting.unwrap_or(0) + ingested + single_events + added).saturating_sub(removed);
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

// --- the server child process --------------------------------------------------------------------

struct Server {
    child: Child,
    url: String,
    key: String,
    /// The organization the key belongs to (its public id).
    org: String,
    /// The checkpoint public key (hex) from the banner.
    public_key: String,
    /// From being spawned to its first `200` from `/readyz`.
    ready_after: Duration,
}

impl Server {
    /// Starts `stele serve` on a free port. On a fresh store the admin key comes from the
    /// first-start banner; on a reused one `existing` is the (organization, key) the bench made
    /// through the store.
    async fn start(
        dir: &Path,
        checkpoint_every: u64,
        no_prune: bool,
        backend: &Backend,
        existing: Option<(String, String)>,
    ) -> anyhow::Result<Server> {
        let mut command = Command::new(stele_exe()?);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--checkpoint-every"])
            .arg(checkpoint_every.to_string())
            .arg("--data-dir")
            .arg(dir);
        if no_prune {
            command.arg("--no-prune");
        }
        backend.configure(&mut command);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("STELE_LOG").is_none() {
            command.env("STELE_LOG", "warn");
        }
        let spawned = Instant::now();
        let mut child = command.spawn().context("starting `stele serve`")?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let (lines_tx, lines) = mpsc::channel::<String>();
        // Reads the banner, then keeps draining stdout so the child never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });

        let mut server = Server {
            child,
            url: String::new(),
            key: String::new(),
            org: String::new(),
            public_key: String::new(),
            ready_after: Duration::ZERO,
        };
        if let Some((org, key)) = existing {
            server.org = org;
            server.key = key;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.url.is_empty()
            || server.key.is_empty()
            || server.org.is_empty()
            || server.public_key.is_empty()
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    if let Some(status) = server.child.try_wait()? {
                        bail!("`stele serve` exited during startup: {status}");
                    }
                    bail!("`stele serve` did not print its address and key within 60 s");
                }
            };
            if let Some(url) = line.split("listening on ").nth(1) {
                server.url = url.trim().to_string();
            }
            if let Some(rest) = line.split("Checkpoint public key: ").nth(1) {
                server.public_key = rest.split_whitespace().next().unwrap_or("").to_string();
            }
            if let Some(key) = find_key(&line) {
                server.key = key;
            }
            if let Some(rest) = line.split("First start: created organization `").nth(1)
                && let Some(id) = rest.split('(').nth(1)
            {
                server.org = id.trim_end_matches(").").trim_end_matches(')').to_string();
            }
        }

        // Ready when `/readyz` (which asks the database) says so, polled closely: the `startup`
        // scenario reports how long that took.
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", server.url)).send().await
                && r.status().is_success()
            {
                server.ready_after = spawned.elapsed();
                break;
            }
            if Instant::now() > deadline {
                bail!("{}/readyz did not answer 200 within 60 s", server.url);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(server)
    }

    /// Stops the server and starts a new one on the same data, with the same organization and key.
    async fn restart(
        &mut self,
        dir: &Path,
        checkpoint_every: u64,
        no_prune: bool,
        backend: &Backend,
    ) -> anyhow::Result<()> {
        self.stop()?;
        let existing = Some((self.org.clone(), self.key.clone()));
        *self = Server::start(dir, checkpoint_every, no_prune, backend, existing).await?;
        Ok(())
    }

    /// SIGTERM (graceful: requests in flight finish, the database closes and checkpoints), then
    /// waits; kills after 120 s.
    fn stop(&mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !signalled {
            self.child.kill()?;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() && signalled {
                    eprintln!("bench: the server exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                eprintln!("bench: the server did not stop within 120 s; killing it");
                self.child.kill()?;
                self.child.wait()?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `stele_` followed by 48 hex digits, anywhere in the line.
fn find_key(line: &str) -> Option<String> {
    let start = line.find("stele_")?;
    let candidate: String = line[start + 6..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (candidate.len() == 48).then(|| format!("stele_{candidate}"))
}

/// On a reused data directory: a fresh ingest+read+admin key for the first organization (admin:
/// the prune scenario sets the retention window).
async fn bench_key(store: &dyn Store) -> anyhow::Result<(String, String)> {
    let org = store
        .list_orgs()
        .await?
        .into_iter()
        .next()
        .context("the data directory has no organization")?;
    let key = stele_server::keys::generate(
        "stele bench",
        vec![Scope::Ingest, Scope::Read, Scope::Admin],
    );
    store.create_api_key(org.key, key.record).await?;
    Ok((org.id, key.secret))
}

struct DirCleanup {
    dir: Option<PathBuf>,
}

impl Drop for DirCleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

// --- HTTP helpers ------------------------------------------------------------------------------

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Http {
    async fn post(&self, body: String) -> anyhow::Result<Vec<u8>> {
        let response = self
            .client
            .post(format!("{}/v1/events", self.url))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .context("POST /v1/events")?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the POST answer")?;
        if status != StatusCode::CREATED {
            bail!(
                "POST /v1/events answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(bytes.to_vec())
    }

    /// GET /v1/events; returns the raw body (timed by callers without the JSON parse).
    async fn get(&self, params: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
        let response = self
            .client
            .get(format!("{}/v1/events", self.url))
            .bearer_auth(&self.key)
            .query(params)
            .send()
            .await
            .context("GET /v1/events")?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the GET answer")?;
        if status != StatusCode::OK {
            bail!(
                "GET /v1/events?{} answered {status}: {}",
                query_string(params),
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(bytes.to_vec())
    }

    async fn get_json(&self, params: &[(String, String)]) -> anyhow::Result<Value> {
        let body = self.get(params).await?;
        serde_json::from_slice(&body).context("parsing the GET answer")
    }

    /// How many events the organization holds before the run, if the count is exact.
    async fn total_events(&self) -> anyhow::Result<Option<u64>> {
        let page = self
            .get_json(&params(&[("actor_type", "all"), ("limit", "1")]))
            .await?;
        Ok(page["total_exact"]
            .as_bool()
            .unwrap_or(false)
            .then(|| page["total"].as_u64().unwrap_or(0)))
    }
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn query_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

// --- scenario: ingest --------------------------------------------------------------------------

struct IngestResult {
    events: u64,
    elapsed: Duration,
    json_bytes: u64,
    requests: usize,
    request_latencies: Vec<Duration>,
    /// Time the senders spent building bodies, summed over senders.
    build_time: Duration,
}

async fn ingest(
    http: &Http,
    args: &BenchArgs,
    pool: Arc<Pool>,
    base_ms: i64,
    wal: Option<PathBuf>,
) -> anyhow::Result<IngestResult> {
    let total = args.events;
    let batch = args.batch as u64;
    eprintln!(
        "bench: ingest: {total} events in batches of {batch} from {} clients",
        args.ingest_clients
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

    let mut tasks = Vec::new();
    for _ in 0..args.ingest_clients {
        let http = http.clone();
        let (next_batch, stored, pool) = (next_batch.clone(), stored.clone(), pool.clone());
        let seed = args.seed;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            let mut build_time = Duration::ZERO;
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
                    assembler.write(&mut body, template, ms);
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

// --- scenario: single-event requests -------------------------------------------------------------

struct SingleResult {
    /// Events stored (requests answered 201 with one receipt).
    events: u64,
    elapsed: Duration,
    clients: usize,
    /// Every request's latency, sorted, failed ones included.
    latencies: Vec<Duration>,
    /// When each request was answered, from the start of the load (in no particular order).
    answered_at: Vec<Duration>,
    /// When the slowest request was sent, from the start of the load.
    worst_sent_at: Duration,
    /// Requests that failed (no answer, or not 201 with one receipt), and the first few reasons.
    failed: u64,
    failures: Vec<String>,
}

async fn single(http: &Http, args: &BenchArgs, pool: Arc<Pool>) -> anyhow::Result<SingleResult> {
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
fn stop_after(after: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// One event per request (`occurred_at` = now) from `clients` concurrent clients until `stop` is
/// set; client `c` draws its events from `seed` and `salt + c`. A failed request is counted and the client goes on (after 10 ms, so that a server that
/// is down is not hammered); callers decide what failures mean.
async fn single_load(
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

// --- scenario: queries -----------------------------------------------------------------------------

/// Values seen in the stored data, with repetitions (so common values are picked more often).
#[derive(Default)]
struct Samples {
    oldest_ms: i64,
    newest_ms: i64,
    actions: Vec<String>,
    detailed: Vec<String>,
    emails: Vec<String>,
    entity_types: Vec<String>,
    entity_ids: Vec<String>,
    correlation_ids: Vec<String>,
    ips: Vec<String>,
    /// (action, channel, entity type) of entries that have all three.
    triples: Vec<(String, String, String)>,
    /// (id, seq) of the sampled entries, for the inclusion proofs.
    entries: Vec<(String, i64)>,
}

impl Samples {
    /// Finds the stored time range, then reads short pages at random points in it.
    async fn collect(http: &Http, queries: usize, seed: u64) -> anyhow::Result<Samples> {
        eprintln!("bench: query: sampling values from the stored data");
        let mut s = Samples::default();
        let newest = http
            .get_json(&params(&[("actor_type", "all"), ("limit", "1")]))
            .await?;
        let Some(newest) = newest["entries"][0]["occurred_at"]
            .as_str()
            .and_then(stele_core::time::parse_rfc3339)
        else {
            eprintln!("bench: query: the organization holds no entry");
            return Ok(s);
        };
        // The oldest entry: the smallest `to` (exclusive) with an entry before it, to 1 s.
        let (mut lo, mut hi) = (0i64, newest + 1);
        while hi - lo > 1000 {
            let mid = lo + (hi - lo) / 2;
            let page = http
                .get_json(&params(&[
                    ("actor_type", "all"),
                    ("limit", "1"),
                    ("to", &format_rfc3339(mid)),
                ]))
                .await?;
            if page["entries"].as_array().is_some_and(|e| !e.is_empty()) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        s.oldest_ms = lo;
        s.newest_ms = newest;

        let mut rng = Rng::new(seed ^ 0x5a3b1e);
        let pages = queries.clamp(50, 400);
        for _ in 0..pages {
            let t = s.oldest_ms + (rng.unit() * (s.newest_ms - s.oldest_ms + 1) as f64) as i64;
            let page = http
                .get_json(&params(&[
                    ("limit", "20"),
                    ("to", &format_rfc3339(t.max(s.oldest_ms + 1))),
                ]))
                .await?;
            for e in page["entries"].as_array().into_iter().flatten() {
                s.add(e);
            }
        }
        Ok(s)
    }

    fn add(&mut self, e: &Value) {
        let text = |v: &Value| v.as_str().map(str::to_string);
        if let (Some(id), Some(seq)) = (text(&e["id"]), e["seq"].as_i64()) {
            self.entries.push((id, seq));
        }
        if let Some(a) = text(&e["action"]) {
            self.actions.push(a);
        }
        if let Some(d) = text(&e["detailed_action"]) {
            self.detailed.push(d);
        }
        if let Some(m) = text(&e["actor"]["email"]) {
            self.emails.push(m);
        }
        if let Some(t) = text(&e["entity"]["type"]) {
            self.entity_types.push(t);
        }
        match &e["entity"]["id"] {
            Value::String(id) => self.entity_ids.push(id.clone()),
            Value::Number(n) => self.entity_ids.push(n.to_string()),
            _ => {}
        }
        // Bulk ids are found by the same filter; take one per bulk entry.
        if let Some(id) = e["entity_ids"].as_array().and_then(|a| a.first()) {
            self.entity_ids
                .push(id.as_str().map_or_else(|| id.to_string(), str::to_string));
        }
        if let Some(c) = text(&e["context"]["correlation_id"]) {
            self.correlation_ids.push(c);
        }
        if let Some(ip) = text(&e["context"]["ip"]) {
            self.ips.push(ip);
        }
        if let (Some(a), Some(c), Some(t)) = (
            text(&e["action"]),
            text(&e["channel"]),
            text(&e["entity"]["type"]),
        ) {
            self.triples.push((a, c, t));
        }
    }
}

/// Query parameters as sent.
type Params = Vec<(String, String)>;

/// One row of the query and count tables: a filter and the parameter sets it is run with.
struct QuerySpec {
    name: &'static str,
    runs: Vec<Vec<(String, String)>>,
}

fn query_specs(s: &Samples, n: usize, seed: u64) -> Vec<QuerySpec> {
    let mut rng = Rng::new(seed ^ 0x09e3_70e7);
    let mut specs = Vec::new();
    let mut add = |name: &'static str, rng: &mut Rng, make: &dyn Fn(&mut Rng) -> Option<Params>| {
        let mut runs = Vec::with_capacity(n);
        for _ in 0..n {
            match make(rng) {
                Some(mut p) => {
                    p.push(("limit".into(), PAGE_LIMIT.into()));
                    runs.push(p);
                }
                None => break,
            }
        }
        if runs.is_empty() {
            eprintln!("bench: query: no value found for `{name}`; skipped");
        } else {
            specs.push(QuerySpec { name, runs });
        }
    };
    let one = |k: &str, v: &str| Some(vec![(k.to_string(), v.to_string())]);
    let pick = |rng: &mut Rng, from: &[String]| -> Option<String> {
        (!from.is_empty()).then(|| from[rng.below(from.len() as u64) as usize].clone())
    };

    add("no filter", &mut rng, &|_| Some(vec![]));
    add("action", &mut rng, &|r| {
        one("action", &pick(r, &s.actions)?)
    });
    add("detailed_action (exact)", &mut rng, &|r| {
        one("detailed_action", &pick(r, &s.detailed)?)
    });
    add("detailed_action (prefix `x.*`)", &mut rng, &|r| {
        let d = pick(r, &s.detailed)?;
        let prefix = match d.find('.') {
            Some(dot) => &d[..=dot],
            None => &d[..d.len().min(4)],
        };
        one("detailed_action", &format!("{prefix}*"))
    });
    add("actor_type=system", &mut rng, &|_| {
        one("actor_type", "system")
    });
    add("actor (email)", &mut rng, &|r| {
        one("actor", &pick(r, &s.emails)?)
    });
    add("entity_type", &mut rng, &|r| {
        one("entity_type", &pick(r, &s.entity_types)?)
    });
    add("entity_id", &mut rng, &|r| {
        one("entity_id", &pick(r, &s.entity_ids)?)
    });
    add("channel=default (common)", &mut rng, &|_| {
        one("channel", "default")
    });
    add("channel=compliance (rare, ~1%)", &mut rng, &|_| {
        one("channel", "compliance")
    });
    add("outcome=failure", &mut rng, &|_| one("outcome", "failure"));
    add("correlation_id", &mut rng, &|r| {
        one("correlation_id", &pick(r, &s.correlation_ids)?)
    });
    add("ip", &mut rng, &|r| one("ip", &pick(r, &s.ips)?));
    add("from/to (1 day, middle of the range)", &mut rng, &|r| {
        if s.newest_ms <= s.oldest_ms {
            return None;
        }
        let span = (s.newest_ms - s.oldest_ms) as f64;
        let mid = s.oldest_ms + (span * (0.25 + 0.5 * r.unit())) as i64;
        Some(vec![
            ("from".into(), format_rfc3339(mid - 12 * 3600 * 1000)),
            ("to".into(), format_rfc3339(mid + 12 * 3600 * 1000)),
        ])
    });
    add("q, common word", &mut rng, &|r| {
        one("q", VOCAB[r.below(COMMON_WORDS as u64) as usize])
    });
    add("q, rare token (~0.01%)", &mut rng, &|r| {
        one("q", RARE_TOKENS[r.below(RARE_TOKENS.len() as u64) as usize])
    });
    add("action + channel + entity_type", &mut rng, &|r| {
        if s.triples.is_empty() {
            return None;
        }
        let (a, c, t) = &s.triples[r.below(s.triples.len() as u64) as usize];
        Some(vec![
            ("action".into(), a.clone()),
            ("channel".into(), c.clone()),
            ("entity_type".into(), t.clone()),
        ])
    });
    specs
}

struct QueryRow {
    name: &'static str,
    example: String,
    latencies: Vec<Duration>,
    totals: Vec<u64>,
    exact: usize,
    page_sizes: Vec<usize>,
}

async fn query(http: &Http, specs: &[QuerySpec]) -> anyhow::Result<Vec<QueryRow>> {
    let mut rows = Vec::new();
    for spec in specs {
        let mut row = QueryRow {
            name: spec.name,
            example: query_string(&spec.runs[0]),
            latencies: Vec::with_capacity(spec.runs.len()),
            totals: Vec::new(),
            exact: 0,
            page_sizes: Vec::new(),
        };
        for p in &spec.runs {
            let started = Instant::now();
            let body = http.get(p).await?;
            row.latencies.push(started.elapsed());
            let page: Value = serde_json::from_slice(&body)?;
            row.totals.push(page["total"].as_u64().unwrap_or(0));
            row.exact += usize::from(page["total_exact"].as_bool() == Some(true));
            row.page_sizes
                .push(page["entries"].as_array().map_or(0, Vec::len));
        }
        row.latencies.sort();
        row.totals.sort();
        row.page_sizes.sort();
        eprintln!(
            "bench: query: {:<40} p50 {} p95 {}",
            spec.name,
            ms(pct(&row.latencies, 0.50)),
            ms(pct(&row.latencies, 0.95))
        );
        rows.push(row);
    }
    Ok(rows)
}

// --- scenario: count -------------------------------------------------------------------------------

struct CountRow {
    name: &'static str,
    latencies: Vec<Duration>,
    counts: Vec<u64>,
    exact: usize,
}

async fn count(
    backend: &Backend,
    dir: &Path,
    org: &str,
    specs: &[QuerySpec],
) -> anyhow::Result<Vec<CountRow>> {
    eprintln!("bench: count: timing Store::count on the store opened in this process");
    let store = backend.open(dir).await?;
    let org = store.find_org(org).await?.key;
    let mut rows = Vec::new();
    for spec in specs {
        let mut row = CountRow {
            name: spec.name,
            latencies: Vec::with_capacity(spec.runs.len()),
            counts: Vec::new(),
            exact: 0,
        };
        for p in &spec.runs {
            let filter = PageRequest::from_params(p.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .filter;
            let started = Instant::now();
            let (n, exact) = store.count(org, &filter).await?;
            row.latencies.push(started.elapsed());
            row.counts.push(n);
            row.exact += usize::from(exact);
        }
        row.latencies.sort();
        row.counts.sort();
        rows.push(row);
    }
    drop(store);
    if matches!(backend, Backend::Sqlite) {
        // The store's writer and checkpoint threads close their connections shortly after the
        // drop; let them, so the server is the last connection when it stops.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    Ok(rows)
}

// --- scenario: inclusion proofs -------------------------------------------------------------------

struct ProofResult {
    latencies: Vec<Duration>,
    /// The tree size (checkpoint `seq`) the proofs lead to.
    tree_sizes: Vec<u64>,
    /// Response bodies, bytes.
    bytes: Vec<usize>,
    /// Proofs that verified with the server's public key (checked after timing).
    valid: usize,
    /// How long the harness waited for a checkpoint covering the chosen entries.
    waited: Duration,
    checkpoint_every: u64,
}

/// The newest signed checkpoint's `seq`, if there is one.
async fn newest_checkpoint(http: &Http) -> anyhow::Result<Option<i64>> {
    let response = http
        .client
        .get(format!("{}/v1/integrity/checkpoints?limit=1", http.url))
        .bearer_auth(&http.key)
        .send()
        .await
        .context("GET /v1/integrity/checkpoints")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the checkpoints")?;
    if status != StatusCode::OK {
        bail!("GET /v1/integrity/checkpoints answered {status}: {body}");
    }
    Ok(body["checkpoints"]
        .as_array()
        .and_then(|c| c.iter().filter_map(|c| c["seq"].as_i64()).max()))
}

/// Times `GET /v1/events/{id}/proof` for `--proofs` sampled entries, sequentially, once the
/// newest checkpoint covers all of them; then checks every proof with the public key.
async fn proofs(
    http: &Http,
    public_key: &str,
    samples: &Samples,
    args: &BenchArgs,
) -> anyhow::Result<ProofResult> {
    let key = stele_core::checkpoint::PublicKey::from_hex(public_key)
        .with_context(|| format!("the banner's public key `{public_key}`"))?;
    let mut rng = Rng::new(args.seed ^ 0x9400f);
    let mut pool: Vec<&(String, i64)> = samples.entries.iter().collect();
    pool.sort_by_key(|e| e.1);
    pool.dedup_by_key(|e| e.1);
    if pool.is_empty() {
        bail!("proof: no stored entry was sampled");
    }
    let mut chosen = Vec::new();
    while chosen.len() < args.proofs.min(pool.len()) {
        let e = pool.swap_remove(rng.below(pool.len() as u64) as usize);
        chosen.push(e.clone());
    }
    let highest = chosen.iter().map(|e| e.1).max().unwrap_or(0);
    eprintln!(
        "bench: proof: waiting for a signed checkpoint at or past seq {highest} (--checkpoint-every {})",
        args.checkpoint_every
    );
    let waiting = Instant::now();
    let limit = Duration::from_secs(args.checkpoint_every.max(60) * 2 + 30);
    loop {
        if newest_checkpoint(http)
            .await?
            .is_some_and(|seq| seq >= highest)
        {
            break;
        }
        if waiting.elapsed() > limit {
            bail!(
                "proof: no checkpoint covered seq {highest} after {:.0} s",
                limit.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let waited = waiting.elapsed();
    eprintln!(
        "bench: proof: timing {} inclusion proofs (waited {:.1} s for the checkpoint)",
        chosen.len(),
        waited.as_secs_f64()
    );
    let mut result = ProofResult {
        latencies: Vec::new(),
        tree_sizes: Vec::new(),
        bytes: Vec::new(),
        valid: 0,
        waited,
        checkpoint_every: args.checkpoint_every,
    };
    let mut bodies = Vec::new();
    for (id, seq) in &chosen {
        let started = Instant::now();
        let response = http
            .client
            .get(format!("{}/v1/events/{id}/proof", http.url))
            .bearer_auth(&http.key)
            .send()
            .await
            .with_context(|| format!("GET /v1/events/{id}/proof"))?;
        let status = response.status();
        let body = response.bytes().await.context("reading the proof")?;
        result.latencies.push(started.elapsed());
        if status != StatusCode::OK {
            bail!(
                "GET /v1/events/{id}/proof (seq {seq}) answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        result.bytes.push(body.len());
        bodies.push(body);
    }
    for body in bodies {
        let proof: stele_core::proof::InclusionProof =
            serde_json::from_slice(&body).context("parsing an inclusion proof")?;
        result.tree_sizes.push(proof.tree_size);
        match proof.verify(&key) {
            Ok(()) => result.valid += 1,
            Err(e) => eprintln!(
                "bench: proof: the proof of seq {} does not verify: {e}",
                proof.entry["seq"]
            ),
        }
    }
    result.latencies.sort();
    result.tree_sizes.sort();
    result.bytes.sort();
    eprintln!(
        "bench: proof: p50 {} p95 {}, {} of {} verified",
        ms(pct(&result.latencies, 0.50)),
        ms(pct(&result.latencies, 0.95)),
        result.valid,
        result.latencies.len()
    );
    Ok(result)
}

// --- scenario: verify ------------------------------------------------------------------------------

struct VerifyResult {
    ok: bool,
    /// How the subprocess exited.
    status: String,
    wall: Duration,
    /// CPU seconds of the `stele verify` process (read from /proc before it was reaped).
    cpu: Option<f64>,
    /// With PostgreSQL: CPU seconds of its processes meanwhile.
    postgres: Option<f64>,
    /// CPU seconds of everything else on the machine meanwhile (this process included).
    others: Option<f64>,
    /// Entries verified, from the OK lines.
    entries: u64,
    /// Entries pruned by retention (their content gone, their chain links kept), from the OK lines.
    pruned: u64,
    /// The lines the command printed (stdout, then stderr).
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// Runs `stele verify --data-dir DIR [--database-url URL]` (this same binary) after the server
/// has stopped and times it from spawning to exit.
fn verify(dir: &Path, backend: &Backend) -> anyhow::Result<VerifyResult> {
    eprintln!("bench: verify: running `stele verify` on the stopped server's store");
    let mut command = Command::new(stele_exe()?);
    command.arg("verify").arg("--data-dir").arg(dir);
    backend.configure(&mut command);
    let pg = matches!(backend, Backend::Postgres(_));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("STELE_LOG").is_none() {
        command.env("STELE_LOG", "warn");
    }
    let machine_before = machine_busy_seconds();
    let postgres_before = if pg { postgres_seconds() } else { None };
    let started = Instant::now();
    let mut child = command.spawn().context("starting `stele verify`")?;
    // Drain both pipes on threads so the child never blocks on them.
    let stdout = read_lines(child.stdout.take());
    let stderr = read_lines(child.stderr.take());
    let (status, cpu) = wait_measured(&mut child, Duration::from_secs(3600))
        .context("waiting for `stele verify`")?;
    let wall = started.elapsed();
    if pg {
        // Its server process exits with the connection; let the postmaster reap it, which adds
        // its CPU time to the postmaster's children's time.
        std::thread::sleep(Duration::from_millis(100));
    }
    let postgres = (|| Some(postgres_seconds()? - postgres_before?))();
    let others = (|| {
        Some((machine_busy_seconds()? - machine_before? - cpu? - postgres.unwrap_or(0.0)).max(0.0))
    })();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let oks: Vec<u64> = stdout.iter().filter_map(|l| verified_entries(l)).collect();
    let ok = status.success()
        && !oks.is_empty()
        && oks.len() == stdout.iter().filter(|l| l.contains("): ")).count();
    eprintln!(
        "bench: verify: {} in {:.2} s: {}",
        if ok { "OK" } else { "FAILED" },
        wall.as_secs_f64(),
        stdout.join(" / ")
    );
    Ok(VerifyResult {
        ok,
        status: status.to_string(),
        wall,
        cpu,
        postgres,
        others,
        entries: oks.iter().sum(),
        pruned: stdout.iter().filter_map(|l| pruned_entries(l)).sum(),
        stdout,
        stderr,
    })
}

/// Waits for a child process to exit and returns its exit status and CPU seconds. Until the child
/// is a zombie its /proc entry stays readable; its CPU time is read there every 5 ms, then it is
/// reaped. Kills it after `limit`.
fn wait_measured(
    child: &mut Child,
    limit: Duration,
) -> std::io::Result<(std::process::ExitStatus, Option<f64>)> {
    let stat_path = format!("/proc/{}/stat", child.id());
    let mut cpu = None;
    let deadline = Instant::now() + limit;
    while let Ok(stat) = std::fs::read_to_string(&stat_path) {
        cpu = stat_seconds(&stat).or(cpu);
        if stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next()) == Some('Z') {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((child.wait()?, cpu))
}

/// The entry count of one organization's OK line of `stele verify`:
/// `name (org_…): OK, 1067629 entries (seq 1..=1067629), 3 checkpoints, in 4.2s`.
fn verified_entries(line: &str) -> Option<u64> {
    line.split("): OK, ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// How many entries retention pruned, from an OK line of `stele verify`:
/// `… OK, 6 entries (seq 4..=9); 3 entries pruned by retention (every entry up to seq 3), …`.
fn pruned_entries(line: &str) -> Option<u64> {
    let (before, _) = line.split_once(" entries pruned by retention")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// Reads a child's pipe to its end on a thread.
fn read_lines<R: std::io::Read + Send + 'static>(
    pipe: Option<R>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        pipe.map(|p| BufReader::new(p).lines().map_while(Result::ok).collect())
            .unwrap_or_default()
    })
}

// --- scenario: disk --------------------------------------------------------------------------------

struct DiskResult {
    /// The files as the stopped server left them.
    as_left: Vec<(String, u64)>,
    /// The files after the write-ahead log was checkpointed into the database and removed.
    checkpointed: Option<Vec<(String, u64)>>,
    events: u64,
    events_known: bool,
    objects: Vec<(String, u64)>,
    /// The largest stele.db-wal seen while the server ran (sampled every 250 ms).
    largest_wal: u64,
    /// With PostgreSQL: the database's size and where the bytes go.
    database: Option<PgSizes>,
}

/// Sizes read from PostgreSQL after the graceful stop.
struct PgSizes {
    /// `pg_database_size(current_database())`.
    database: u64,
    /// Stele's tables in the `public` schema, largest first.
    tables: Vec<PgTable>,
    /// Their indexes (TOAST indexes are in the TOAST figure), largest first.
    indexes: Vec<(String, u64)>,
}

struct PgTable {
    name: String,
    /// `pg_table_size`: heap, TOAST, free space and visibility maps.
    table: u64,
    /// Of which TOAST (with its index).
    toast: u64,
    /// `pg_indexes_size`.
    indexes: u64,
    /// `pg_total_relation_size`.
    total: u64,
}

/// Runs one statement with `psql` and returns its rows, fields split at `|`.
fn psql(url: &DatabaseUrl, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(url.expose())
        .stdin(Stdio::null())
        .output()
        .context("running psql (needed with --database-url)")?;
    if !out.status.success() {
        bail!(
            "psql on {url} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect())
}

fn pg_sizes(url: &DatabaseUrl) -> anyhow::Result<PgSizes> {
    eprintln!("bench: disk: reading the database's size with psql");
    let number = |v: &str| -> anyhow::Result<u64> {
        v.trim()
            .parse()
            .with_context(|| format!("psql printed `{v}`, not a number"))
    };
    let database = psql(url, "select pg_database_size(current_database())")?
        .first()
        .and_then(|r| r.first().cloned())
        .context("psql printed no database size")?;
    let database = number(&database)?;
    let mut tables = Vec::new();
    for r in psql(
        url,
        "select c.relname, pg_table_size(c.oid), \
         coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0), \
         pg_indexes_size(c.oid), pg_total_relation_size(c.oid) \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind in ('r', 'p', 'm') order by 5 desc, 1",
    )? {
        anyhow::ensure!(r.len() == 5, "psql printed `{}`", r.join("|"));
        tables.push(PgTable {
            name: r[0].clone(),
            table: number(&r[1])?,
            toast: number(&r[2])?,
            indexes: number(&r[3])?,
            total: number(&r[4])?,
        });
    }
    let mut indexes = Vec::new();
    for r in psql(
        url,
        "select c.relname, pg_relation_size(c.oid) \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind = 'i' order by 2 desc, 1",
    )? {
        anyhow::ensure!(r.len() == 2, "psql printed `{}`", r.join("|"));
        indexes.push((r[0].clone(), number(&r[1])?));
    }
    Ok(PgSizes {
        database,
        tables,
        indexes,
    })
}

/// What PostgreSQL's planner knows about `entries` (from its last ANALYZE, by autovacuum or by
/// hand), next to the live row count of the statistics system (not a `count(*)`, which would
/// read the whole table into the cache before the queries).
fn planner_statistics(url: &DatabaseUrl) -> anyhow::Result<String> {
    // `entries` is partitioned by month: its rows and statistics are its partitions'.
    let rows = psql(
        url,
        "select count(*) filter (where c.reltuples < 0), count(*), \
         coalesce(sum(greatest(c.reltuples, 0))::int8, 0), coalesce(sum(s.n_live_tup), 0), \
         coalesce(sum(s.analyze_count), 0), coalesce(sum(s.autoanalyze_count), 0), \
         coalesce(sum(s.vacuum_count), 0) \
         from pg_inherits i join pg_class c on c.oid = i.inhrelid \
         join pg_stat_user_tables s on s.relid = c.oid \
         where i.inhparent = 'entries'::regclass",
    )?;
    let Some([never, partitions, estimate, actual, by_hand, auto, vacuums]) =
        rows.first().map(Vec::as_slice)
    else {
        bail!("psql printed no statistics for the partitions of entries");
    };
    Ok(format!(
        "the planner estimates `entries` at {estimate} rows over {partitions} monthly partitions \
         ({never} never analyzed, which the planner takes for empty); the statistics system counts \
         {actual} live rows; partitions analyzed {by_hand} times by ANALYZE or VACUUM (ANALYZE), \
         {auto} times by autovacuum, vacuumed {vacuums} times by VACUUM"
    ))
}

/// The PostgreSQL server's version and the settings that bear on the figures.
struct PgInfo {
    version: String,
    settings: Vec<(String, String)>,
}

impl PgInfo {
    fn probe(url: &DatabaseUrl) -> anyhow::Result<PgInfo> {
        let version = psql(url, "show server_version")?
            .first()
            .and_then(|r| r.first().cloned())
            .unwrap_or_else(|| "unknown".into());
        let settings = psql(
            url,
            "select name, current_setting(name) from pg_settings where name in \
             ('autovacuum', 'shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes', 'wal_level', \
             'max_wal_size', 'checkpoint_timeout', 'work_mem', 'effective_cache_size', 'jit', \
             'wal_compression', 'commit_delay') order by name",
        )?
        .into_iter()
        .filter_map(|r| Some((r.first()?.clone(), r.get(1)?.clone())))
        .collect();
        Ok(PgInfo { version, settings })
    }
}

fn data_files(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata()?.len(),
            ));
        }
    }
    files.sort();
    Ok(files)
}

async fn disk(
    dir: &Path,
    as_left: Vec<(String, u64)>,
    events: u64,
    events_known: bool,
) -> anyhow::Result<DiskResult> {
    let db = dir.join("stele.db");
    let wal = dir.join("stele.db-wal");
    // If the server left its write-ahead log behind, checkpoint it the way the next start would:
    // open the database and close it as its last connection (SQLite then folds the log into the
    // database file and deletes it).
    // (`stele verify` may already have done so.)
    let mut checkpointed = None;
    if wal.exists() || as_left.iter().any(|(name, _)| name == "stele.db-wal") {
        eprintln!("bench: disk: the stopped server left stele.db-wal; checkpointing it");
        drop(SqliteStore::open(&db)?);
        // SQLite deletes the log, then the shared-memory index, then releases its lock.
        let shm = dir.join("stele.db-shm");
        let deadline = Instant::now() + Duration::from_secs(300);
        while (wal.exists() || shm.exists()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        checkpointed = Some(data_files(dir)?);
    }
    // Optional: where the pages go, if the sqlite3 shell (with dbstat) is installed.
    let mut objects = Vec::new();
    let dbstat = Command::new("sqlite3")
        .args(["-readonly", "-cmd", ".timeout 10000"])
        .arg(&db)
        .arg("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC;")
        .output();
    match &dbstat {
        Ok(out) if !out.status.success() => eprintln!(
            "bench: disk: sqlite3 dbstat failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("bench: disk: no page breakdown (sqlite3: {e})"),
        _ => {}
    }
    if let Ok(out) = dbstat
        && out.status.success()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((name, bytes)) = line.rsplit_once('|')
                && let Ok(bytes) = bytes.trim().parse()
            {
                objects.push((name.to_string(), bytes));
            }
        }
    }
    Ok(DiskResult {
        as_left,
        checkpointed,
        events,
        events_known,
        objects,
        largest_wal: 0,
        database: None,
    })
}

// --- CPU accounting ----------------------------------------------------------------------------------

/// CPU seconds used over a scenario, from /proc: by the server (and per server thread name), by
/// this process, and by the whole machine (so other processes' load shows).
struct CpuMeter {
    server_pid: u32,
    started: Instant,
    server: Option<f64>,
    bench: Option<f64>,
    /// With PostgreSQL: its processes' CPU seconds (see [`postgres_seconds`]).
    postgres: Option<f64>,
    machine: Option<f64>,
    threads: HashMap<u32, (String, f64)>,
}

struct CpuUse {
    wall: f64,
    server: Option<f64>,
    bench: Option<f64>,
    /// The PostgreSQL server's processes (with `--database-url` only).
    postgres: Option<f64>,
    /// Everything else running on the machine meanwhile.
    others: Option<f64>,
    /// Server CPU seconds per thread name, largest first.
    threads: Vec<(String, f64)>,
}

impl CpuMeter {
    fn start(server_pid: u32, postgres: bool) -> CpuMeter {
        CpuMeter {
            server_pid,
            started: Instant::now(),
            server: cpu_seconds(&server_pid.to_string()),
            bench: cpu_seconds("self"),
            postgres: if postgres { postgres_seconds() } else { None },
            machine: machine_busy_seconds(),
            threads: thread_seconds(server_pid),
        }
    }

    fn stop(self) -> CpuUse {
        let delta = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
        let server = delta(self.server, cpu_seconds(&self.server_pid.to_string()));
        let bench = delta(self.bench, cpu_seconds("self"));
        let postgres = match self.postgres {
            Some(_) => delta(self.postgres, postgres_seconds()),
            None => None,
        };
        let machine = delta(self.machine, machine_busy_seconds());
        let mut by_name: HashMap<String, f64> = HashMap::new();
        for (tid, (name, after)) in thread_seconds(self.server_pid) {
            let before = self.threads.get(&tid).map_or(0.0, |t| t.1);
            *by_name.entry(name).or_default() += after - before;
        }
        let mut threads: Vec<(String, f64)> = by_name.into_iter().filter(|t| t.1 > 0.0).collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        CpuUse {
            wall: self.started.elapsed().as_secs_f64(),
            others: (|| Some((machine? - server? - bench? - postgres.unwrap_or(0.0)).max(0.0)))(),
            server,
            bench,
            postgres,
            threads,
        }
    }
}

/// Linux reports CPU time in ticks of 1/100 s (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of a process or thread (fields 14 and 15 of its stat file).
fn stat_seconds(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

/// CPU seconds of every process named `postgres` (the postmaster, its background processes and
/// one server process per connection), plus the time of the children the postmaster has reaped,
/// so that a connection's server process still counts after it exits. Assumes the PostgreSQL
/// server runs on this machine and its processes are visible in /proc; `None` if none is.
fn postgres_seconds() -> Option<f64> {
    let mut ticks = 0u64;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if head.split_once(" (").map(|(_, comm)| comm) != Some("postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime (fields 14 to 17).
        for i in 11..=14 {
            ticks += fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        }
        seen = true;
    }
    seen.then(|| ticks as f64 / TICKS_PER_SECOND)
}

fn cpu_seconds(pid: &str) -> Option<f64> {
    stat_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Each live thread of `pid`: its name and CPU seconds.
fn thread_seconds(pid: u32) -> HashMap<u32, (String, f64)> {
    let mut threads = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for entry in dir.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let name = stat
            .split_once(" (")
            .and_then(|(_, rest)| rest.rsplit_once(") "))
            .map_or("?", |(name, _)| name)
            .to_string();
        if let Some(seconds) = stat_seconds(&stat) {
            threads.insert(tid, (name, seconds));
        }
    }
    threads
}

/// Busy CPU seconds of the whole machine, all cores (the `cpu` line of /proc/stat minus idle
/// and iowait).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    Some(busy as f64 / TICKS_PER_SECOND)
}

/// Samples the size of the write-ahead log every 250 ms; the largest size seen is kept.
/// (SQLite only; `None` watches nothing.)
fn watch_wal(wal: Option<PathBuf>) -> (Arc<AtomicU64>, Arc<AtomicBool>) {
    let largest = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let Some(wal) = wal else {
        return (largest, stop);
    };
    let (l, s) = (largest.clone(), stop.clone());
    tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            if let Ok(m) = std::fs::metadata(&wal) {
                l.fetch_max(m.len(), Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (largest, stop)
}

// --- the report --------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    ingest: Option<IngestResult>,
    raw_copy: Option<raw_copy::RawCopyResult>,
    export: Option<export::ExportResult>,
    single: Option<SingleResult>,
    query: Option<Vec<QueryRow>>,
    count: Option<Vec<CountRow>>,
    proof: Option<ProofResult>,
    prune: Option<prune::PruneResult>,
    startup: Option<startup::StartupResult>,
    verify: Option<VerifyResult>,
    disk: Option<DiskResult>,
    cpu: Vec<(&'static str, CpuUse)>,
    /// With `--analyze`: how long PostgreSQL's ANALYZE took (after the ingest, off the clock).
    analyze: Option<Duration>,
    /// With PostgreSQL: the planner's statistics of `entries` before the query scenarios.
    planner: Option<String>,
}

struct RunInfo<'a> {
    command_line: String,
    machine: Machine,
    load_after: String,
    data_dir: PathBuf,
    preexisting: Option<u64>,
    ingested: u64,
    single_events: u64,
    /// With the prune scenario: how many days before the run the ingested events end.
    backdate_days: Option<i64>,
    average_bytes: f64,
    stop_time: Duration,
    args: &'a BenchArgs,
    /// With `--database-url`: the PostgreSQL server's version and settings.
    postgres: Option<PgInfo>,
}

impl Report {
    fn render(&self, info: &RunInfo) -> String {
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
            "- events: {} ingested in batches{}{}; {} more from the single-event scenario{}",
            thousands(info.ingested),
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
            match &self.prune {
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

        let _ = writeln!(
            o,
            "\n## First page (limit {PAGE_LIMIT}) over HTTP\n\nTargets at 10M entries: p95 ≤ 10 ms for any one filter, ≤ 100 ms for description search (`q`).\n"
        );
        match &self.query {
            Some(rows) => {
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

        let _ = writeln!(o, "\n## Integrity\n");
        let _ = writeln!(o, "| figure | measured | target |");
        let _ = writeln!(o, "|---|---|---|");
        match &self.verify {
            Some(v) => {
                let secs = v.wall.as_secs_f64();
                let _ = writeln!(
                    o,
                    "| `stele verify` (subprocess, after the graceful stop) | {} | — |",
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
            }
            None => {
                let _ = writeln!(o, "| inclusion proofs | not run | | |");
            }
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

struct Machine {
    cpus: usize,
    cpu_model: String,
    memory: String,
    kernel: String,
    date: String,
    load: String,
    /// The git revision of the working directory, if it is a checkout.
    source: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| "unknown".into())
        };
        let memory = field(&meminfo, "MemTotal")
            .trim_end_matches(" kB")
            .parse::<f64>()
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|_| "unknown".into());
        let kernel = Command::new("uname")
            .arg("-r")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: field(&cpuinfo, "model name"),
            memory,
            kernel,
            date: format_rfc3339(now_millis()),
            load: Machine::loadavg(),
            source: git_revision().unwrap_or_else(|| "unknown (not run in a git checkout)".into()),
        }
    }

    fn loadavg() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    }
}

/// `abc1234`, or `abc1234 with uncommitted changes to a, b` (run from the checkout).
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    let changed: Vec<String> = git(&["status", "--porcelain", "--untracked-files=no"])?
        .lines()
        .filter_map(|l| l.get(3..).map(str::to_string))
        .collect();
    Some(if changed.is_empty() {
        head
    } else {
        format!("{head} with uncommitted changes to {}", changed.join(", "))
    })
}

/// Nearest-rank percentile of a sorted sample.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn median<T: Copy + Default>(sorted: &[T]) -> T {
    if sorted.is_empty() {
        T::default()
    } else {
        sorted[(sorted.len() - 1) / 2]
    }
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn thousands(n: u64) -> String {
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

// --- the reference event generator ------------------------------------------------------------------

/// xorshift64*, seeded through splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// In `0..n`, skewed towards small values (a few hot items, a long tail).
    fn skewed(&mut self, n: u64, power: f64) -> u64 {
        ((n as f64 * self.unit().powf(power)) as u64).min(n - 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| *w as u64).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < *w as u64 {
                return item;
            }
            x -= *w as u64;
        }
        &items[items.len() - 1].0
    }
}

/// splitmix64's finalizer: a good 64-bit hash.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const ACTIONS: &[(&str, u32)] = &[
    ("view", 28),
    ("update", 24),
    ("create", 12),
    ("login", 13),
    ("logout", 7),
    ("login_failed", 3),
    ("delete", 4),
    ("export", 3),
    ("bulk_update", 4),
];

/// (action, detailed action, entity type, weight within the action).
type Detailed = (&'static str, &'static str, &'static str, u32);
const DETAILED: &[Detailed] = &[
    ("create", "user.invite", "user", 3),
    ("create", "printer.add", "printer", 2),
    ("create", "printJob.create", "printJob", 10),
    ("create", "document.upload", "document", 6),
    ("create", "apiKey.create", "apiKey", 1),
    ("create", "webhook.create", "webhook", 1),
    ("create", "project.create", "project", 2),
    ("create", "invoice.create", "invoice", 3),
    ("create", "team.create", "team", 1),
    ("create", "device.register", "device", 2),
    ("update", "printer.rename", "printer", 2),
    ("update", "printJob.retry", "printJob", 6),
    ("update", "printJob.cancel", "printJob", 4),
    ("update", "user.role_change", "user", 2),
    ("update", "settings.update", "settings", 3),
    ("update", "license_reset", "license", 1),
    ("update", "document.edit", "document", 6),
    ("update", "billing.plan_change", "subscription", 1),
    ("update", "project.rename", "project", 1),
    ("update", "user.profile_update", "user", 4),
    ("update", "printer.firmware_update", "printer", 1),
    ("update", "ticket.close", "ticket", 3),
    ("update", "location.update", "location", 1),
    ("update", "folder.share", "folder", 2),
    ("update", "role.assign", "role", 1),
    ("delete", "user.remove", "user", 1),
    ("delete", "document.delete", "document", 4),
    ("delete", "printer.remove", "printer", 1),
    ("delete", "apiKey.revoke", "apiKey", 1),
    ("delete", "project.archive", "project", 1),
    ("delete", "comment.delete", "comment", 3),
    ("bulk_update", "printJob.bulk_cancel", "printJob", 3),
    ("bulk_update", "user.bulk_disable", "user", 1),
    ("bulk_update", "document.bulk_move", "document", 2),
    ("bulk_update", "printer.bulk_reassign", "printer", 1),
    ("login", "session.password", "session", 5),
    ("login", "session.sso", "session", 4),
    ("login", "session.mfa", "session", 2),
    ("logout", "session.end", "session", 5),
    ("logout", "session.timeout", "session", 3),
    ("login_failed", "session.bad_password", "session", 5),
    ("login_failed", "session.mfa_failed", "session", 2),
    ("login_failed", "session.locked", "session", 1),
    ("view", "document.view", "document", 10),
    ("view", "report.view", "report", 5),
    ("view", "user.view", "user", 3),
    ("view", "pii.view_ssn", "user", 1),
    ("view", "audit.view", "report", 1),
    ("view", "ticket.view", "ticket", 3),
    ("view", "comment.view", "comment", 2),
    ("export", "report.export", "report", 3),
    ("export", "user.export_csv", "user", 1),
    ("export", "audit.export", "report", 1),
];

/// (entity type, id prefix, how many ids): about 200k entity ids in all.
const ENTITY_TYPES: &[(&str, &str, u64)] = &[
    ("user", "usr", 20_000),
    ("printer", "prn", 5_000),
    ("printJob", "pjb", 60_000),
    ("document", "doc", 40_000),
    ("invoice", "inv", 15_000),
    ("project", "prj", 3_000),
    ("apiKey", "key", 500),
    ("webhook", "whk", 300),
    ("license", "lic", 2_000),
    ("settings", "cfg", 200),
    ("report", "rpt", 5_000),
    ("team", "tem", 800),
    ("role", "rol", 60),
    ("session", "ses", 20_000),
    ("device", "dev", 6_000),
    ("location", "loc", 400),
    ("subscription", "sub", 3_000),
    ("folder", "fld", 4_000),
    ("comment", "cmt", 12_000),
    ("ticket", "tkt", 8_000),
];

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Carla", "Diego", "Emil", "Fatima", "Gustav",
    "Hana", "Ivan", "Julia", "Kofi", "Lucia", "Mateo", "Nora",
];
const LAST_NAMES: &[&str] = &[
    "Abbott",
    "Berger",
    "Castro",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Olsen",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yamamoto",
    "Zimmer",
    "Alvarez",
    "Brandt",
    "Costa",
    "Dalton",
    "Engel",
    "Ferreira",
    "Gomez",
    "Huber",
    "Iqbal",
    "Jovanovic",
    "Keller",
    "Lindqvist",
    "Meyer",
    "Novak",
    "Okafor",
    "Perez",
    "Richter",
    "Silva",
    "Torres",
];
const DOMAINS: &[&str] = &[
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
];
const SERVICES: &[&str] = &[
    "billing-sync",
    "crm-bridge",
    "ci-deploy",
    "warehouse-etl",
    "support-desk",
    "hr-import",
    "print-fleet",
    "sso-provisioner",
    "backup-agent",
    "analytics",
];
const SYSTEM_ACTORS: &[&str] = &[
    "retention",
    "indexer",
    "billing",
    "backup",
    "mailer",
    "scheduler",
    "license-check",
    "quota",
    "firmware",
    "cleanup",
];
const WEBHOOK_PROVIDERS: &[&str] = &["Stripe", "GitHub", "Okta", "Slack", "Zendesk"];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "PrintFleet-Desktop/5.2.1 (Windows 11)",
];
const API_AGENTS: &[&str] = &[
    "stele-sdk-python/2.3.1",
    "stele-sdk-go/1.8.0",
    "stele-sdk-node/3.0.2",
];

/// Description vocabulary, most common first (picked with a skew towards the front).
const VOCAB: &[&str] = &[
    "request",
    "account",
    "queue",
    "policy",
    "access",
    "settings",
    "network",
    "billing",
    "review",
    "default",
    "tray",
    "paper",
    "toner",
    "quota",
    "workspace",
    "member",
    "invoice",
    "customer",
    "support",
    "manual",
    "automatic",
    "scheduled",
    "retry",
    "timeout",
    "limit",
    "changed",
    "approved",
    "pending",
    "after",
    "before",
    "during",
    "because",
    "via",
    "portal",
    "mobile",
    "desktop",
    "office",
    "floor",
    "branch",
    "region",
    "primary",
    "secondary",
    "backup",
    "color",
    "mono",
    "duplex",
    "staple",
    "finisher",
    "driver",
    "firmware",
    "certificate",
    "password",
    "token",
    "role",
    "group",
    "team",
    "folder",
    "share",
    "link",
    "external",
    "internal",
    "guest",
    "admin",
    "owner",
    "viewer",
    "editor",
    "audit",
    "compliance",
    "export",
    "import",
    "sync",
    "webhook",
    "integration",
    "license",
    "seat",
    "renewal",
    "trial",
    "upgrade",
    "downgrade",
    "refund",
    "credit",
    "charge",
    "receipt",
    "ticket",
    "escalated",
    "resolved",
    "reopened",
    "comment",
    "mention",
    "draft",
    "published",
    "archived",
    "restored",
    "deleted",
    "moved",
    "copied",
    "renamed",
    "tagged",
    "flagged",
    "locked",
    "unlocked",
    "expired",
    "rotated",
    "verified",
    "invited",
    "joined",
    "removed",
    "suspended",
    "reactivated",
    "warning",
    "error",
    "notice",
    "jam",
    "offline",
    "online",
    "maintenance",
    "calibration",
    "nightly",
    "weekly",
    "monthly",
    "quarterly",
    "migration",
    "cleanup",
];
/// The top of [`VOCAB`] used for the common-word search.
const COMMON_WORDS: usize = 5;
/// Each appears in about 0.01% of events, for the rare-substring search.
const RARE_TOKENS: &[&str] = &["subpoena", "quarantined", "exfiltration", "tribunal"];

const CHANGE_FIELDS: &[&str] = &[
    "status",
    "role",
    "name",
    "copies",
    "duplex",
    "paper_size",
    "color_mode",
    "tray",
    "priority",
    "quota",
    "plan",
    "seats",
    "timezone",
    "locale",
    "owner",
    "title",
    "due_date",
    "location",
    "email",
    "tags",
];

fn change_value(rng: &mut Rng, field: &str) -> Value {
    let one = |rng: &mut Rng, items: &[&str]| Value::from(*rng.pick(items));
    match field {
        "status" => one(
            rng,
            &["active", "suspended", "pending", "archived", "failed"],
        ),
        "role" => one(rng, &["viewer", "editor", "admin", "owner", "billing"]),
        "name" | "title" => Value::from(format!(
            "{} {} {}",
            VOCAB[rng.skewed(VOCAB.len() as u64, 2.0) as usize],
            VOCAB[rng.below(VOCAB.len() as u64) as usize],
            rng.range(1, 999)
        )),
        "copies" | "seats" | "quota" => Value::from(rng.range(1, 500)),
        "tray" => Value::from(rng.range(1, 4)),
        "duplex" => Value::from(rng.chance(0.5)),
        "paper_size" => one(rng, &["A4", "Letter", "A3", "Legal"]),
        "color_mode" => one(rng, &["mono", "color", "auto"]),
        "priority" => one(rng, &["low", "normal", "high", "urgent"]),
        "plan" => one(rng, &["free", "team", "business", "enterprise"]),
        "timezone" => one(
            rng,
            &[
                "Europe/Berlin",
                "America/New_York",
                "Asia/Tokyo",
                "UTC",
                "America/Sao_Paulo",
            ],
        ),
        "locale" => one(rng, &["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"]),
        "owner" => Value::from(format!("usr_{:05}", rng.below(20_000))),
        "due_date" => Value::from(format!(
            "2026-{:02}-{:02}",
            rng.range(1, 12),
            rng.range(1, 28)
        )),
        "location" => Value::from(format!("loc_{}", rng.below(400))),
        "email" => {
            let u = rng.below(2000) as usize;
            Value::from(person(u).2)
        }
        _ => Value::from(format!(
            "{},{}",
            VOCAB[rng.below(VOCAB.len() as u64) as usize],
            VOCAB[rng.below(VOCAB.len() as u64) as usize]
        )),
    }
}

/// (id, name, email) of the `n`th of 1,800 user actors.
fn person(n: usize) -> (String, String, String) {
    let first = FIRST_NAMES[n % FIRST_NAMES.len()];
    let last = LAST_NAMES[(n / FIRST_NAMES.len()) % LAST_NAMES.len()];
    (
        format!("usr_{n:05}"),
        format!("{first} {last}"),
        format!(
            "{}.{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            DOMAINS[n % DOMAINS.len()]
        ),
    )
}

fn ip_address(n: u64) -> String {
    match n % 10 {
        9 => format!("2001:db8::{:x}", n + 1),
        7 => format!("203.0.113.{}", n % 250 + 1),
        8 => format!("198.51.100.{}", n % 250 + 1),
        _ => format!("10.{}.{}.{}", n / 100, n % 100, (n * 37) % 250 + 1),
    }
}

/// Where an event's spliced values go.
#[derive(Clone, Copy)]
enum Slot {
    Time,
    Correlation,
    Request,
    /// The entity number (the same in every place of one event).
    Entity,
}

/// A serialized event cut at its slots: `parts[0] slot[0] parts[1] … parts[n]`.
struct Template {
    parts: Vec<String>,
    slots: Vec<Slot>,
    entity_space: u64,
}

struct Pool {
    templates: Vec<Template>,
    average_bytes: f64,
}

impl Pool {
    fn generate(seed: u64) -> Pool {
        let mut rng = Rng::new(seed);
        let templates: Vec<Template> = (0..POOL_SIZE)
            .map(|j| reference_event(&mut rng, j))
            .collect();
        let mut assembler = Assembler::new(seed ^ 0xa11);
        let mut body = String::new();
        let now = now_millis();
        for t in &templates {
            assembler.write(&mut body, t, now);
        }
        Pool {
            average_bytes: body.len() as f64 / templates.len() as f64,
            templates,
        }
    }

    fn pick(&self, hash: u64) -> &Template {
        &self.templates[(hash % self.templates.len() as u64) as usize]
    }
}

/// Fills a template's slots. Correlation ids come in groups of 1 to 5 consecutive uses.
struct Assembler {
    rng: Rng,
    correlation: String,
    correlation_left: u64,
}

impl Assembler {
    fn new(seed: u64) -> Assembler {
        Assembler {
            rng: Rng::new(seed),
            correlation: String::new(),
            correlation_left: 0,
        }
    }

    fn write(&mut self, out: &mut String, t: &Template, occurred_ms: i64) {
        let entity = t.entity_space.max(1);
        let entity = self.rng.skewed(entity, 1.5);
        for (i, part) in t.parts.iter().enumerate() {
            out.push_str(part);
            let Some(slot) = t.slots.get(i) else { break };
            match slot {
                Slot::Time => out.push_str(&format_rfc3339(occurred_ms)),
                Slot::Correlation => {
                    if self.correlation_left == 0 {
                        self.correlation_left = self.rng.range(1, 5);
                        self.correlation.clear();
                        let _ = write!(self.correlation, "corr_{:016x}", self.rng.next());
                    }
                    self.correlation_left -= 1;
                    out.push_str(&self.correlation);
                }
                Slot::Request => {
                    let _ = write!(out, "req_{:016x}", self.rng.next());
                }
                Slot::Entity => {
                    let _ = write!(out, "{entity}");
                }
            }
        }
    }
}

fn split_template(json: &str, entity_space: u64) -> Template {
    let mut parts = Vec::new();
    let mut slots = Vec::new();
    let mut rest = json;
    while let Some(at) = rest.find("@@") {
        let slot = match &rest[at..at + 5] {
            "@@T@@" => Slot::Time,
            "@@C@@" => Slot::Correlation,
            "@@R@@" => Slot::Request,
            "@@E@@" => Slot::Entity,
            other => unreachable!("unknown slot marker {other}"),
        };
        parts.push(rest[..at].to_string());
        slots.push(slot);
        rest = &rest[at + 5..];
    }
    parts.push(rest.to_string());
    Template {
        parts,
        slots,
        entity_space,
    }
}

/// The `j`th pooled reference event.
fn reference_event(rng: &mut Rng, j: usize) -> Template {
    let action = *rng.weighted(ACTIONS);
    let choices: Vec<(&Detailed, u32)> = DETAILED
        .iter()
        .filter(|d| d.0 == action)
        .map(|d| (d, d.3))
        .collect();
    let (_, detailed, mut entity_type, _) = **rng.weighted(&choices);
    // About 8% of events name no detailed action; their entity is any type.
    let detailed = if rng.chance(0.08) {
        entity_type = rng.pick(ENTITY_TYPES).0;
        None
    } else {
        Some(detailed)
    };
    let (_, prefix, space) = *ENTITY_TYPES
        .iter()
        .find(|t| t.0 == entity_type)
        .expect("every detailed action names a known entity type");
    let auth = matches!(action, "login" | "logout" | "login_failed");

    // The actor: ~2,000 of them, a few very busy.
    let actor_type = if auth {
        "user"
    } else {
        *rng.weighted(&[
            ("user", 70),
            ("api", 17),
            ("system", 12),
            ("webhook", 1),
            ("scheduler", 1),
        ])
    };
    let mut actor = Map::new();
    actor.insert("type".into(), actor_type.into());
    let mut user_agent = None;
    let source;
    match actor_type {
        "user" => {
            let (id, name, email) = person(rng.skewed(1800, 1.6) as usize);
            actor.insert("id".into(), id.into());
            if rng.chance(0.7) {
                actor.insert("name".into(), name.into());
            }
            actor.insert("email".into(), email.into());
            // Browsers' user agents are long; most integrations record them on sign-ins only.
            if rng.chance(if auth { 0.4 } else { 0.05 }) {
                user_agent = Some(*rng.pick(USER_AGENTS));
            }
            source = if rng.chance(0.85) { "web" } else { "cli" };
        }
        "api" => {
            let n = rng.skewed(150, 1.5) as usize;
            actor.insert("id".into(), format!("key_{n:04}").into());
            actor.insert(
                "name".into(),
                format!("{} integration", SERVICES[n % SERVICES.len()]).into(),
            );
            user_agent = Some(*rng.pick(API_AGENTS));
            source = "api";
        }
        "system" => {
            let n = rng.below(SYSTEM_ACTORS.len() as u64) as usize;
            actor.insert("id".into(), format!("sys_{}", SYSTEM_ACTORS[n]).into());
            actor.insert("name".into(), format!("Stele {}", SYSTEM_ACTORS[n]).into());
            source = "system";
        }
        "webhook" => {
            let n = rng.below(20) as usize;
            actor.insert("id".into(), format!("whk_{n:03}").into());
            actor.insert(
                "name".into(),
                format!("{} webhook", WEBHOOK_PROVIDERS[n % WEBHOOK_PROVIDERS.len()]).into(),
            );
            source = "webhook";
        }
        _ => {
            let n = rng.below(20);
            actor.insert("id".into(), format!("cron_{n:02}").into());
            actor.insert("name".into(), format!("nightly job {n}").into());
            source = "scheduler";
        }
    }

    let channel = if rng.chance(0.01) {
        "compliance"
    } else if auth {
        if rng.chance(0.85) { "auth" } else { "security" }
    } else if detailed.is_some_and(|d| d.starts_with("pii.")) {
        "pii-read"
    } else if matches!(entity_type, "printer" | "printJob" | "device") {
        "hardware"
    } else if detailed
        .is_some_and(|d| d.starts_with("apiKey.") || d == "role.assign" || d == "user.role_change")
    {
        "security"
    } else {
        "default"
    };
    let outcome = if action == "login_failed" || rng.chance(0.03) {
        "failure"
    } else {
        "success"
    };

    // The entity, or for bulk actions its type and 5 to 20 ids.
    let bulk = action == "bulk_update";
    let mut entity = Map::new();
    entity.insert("type".into(), entity_type.into());
    let mut entity_ids = Vec::new();
    if bulk {
        for _ in 0..rng.range(5, 20) {
            entity_ids.push(Value::from(format!("{prefix}_{}", rng.skewed(space, 1.5))));
        }
    } else {
        entity.insert("id".into(), format!("{prefix}_@@E@@").into());
        if rng.chance(0.3) {
            entity.insert(
                "name".into(),
                format!("{} {}-@@E@@", entity_type, VOCAB[rng.below(40) as usize]).into(),
            );
        }
    }

    let verb = match action {
        "create" => "Created",
        "update" => "Updated",
        "delete" => "Deleted",
        "bulk_update" => "Bulk-updated",
        "login" => "Signed in to",
        "logout" => "Signed out of",
        "login_failed" => "Failed sign-in to",
        "view" => "Viewed",
        _ => "Exported",
    };
    let mut description = if bulk {
        format!("{verb} {} {entity_type} records:", entity_ids.len())
    } else {
        format!("{verb} {entity_type} {prefix}_@@E@@:")
    };
    let words = rng.range(2, 5);
    let rare = matches!(j % 2500, 0).then(|| RARE_TOKENS[(j / 2500) % RARE_TOKENS.len()]);
    let rare_at = rng.below(words);
    for w in 0..words {
        if w == rare_at
            && let Some(token) = rare
        {
            description.push(' ');
            description.push_str(token);
        }
        description.push(' ');
        description.push_str(VOCAB[rng.skewed(VOCAB.len() as u64, 2.0) as usize]);
    }

    let mut context = Map::new();
    if rng.chance(0.97) {
        context.insert("ip".into(), ip_address(rng.skewed(1000, 1.3)).into());
    }
    if let Some(ua) = user_agent {
        context.insert("user_agent".into(), ua.into());
    }
    if rng.chance(0.5) {
        context.insert("correlation_id".into(), "@@C@@".into());
    }
    if rng.chance(0.25) {
        context.insert("request_id".into(), "@@R@@".into());
    }
    if rng.chance(0.4) {
        context.insert("source".into(), source.into());
    }
    if actor_type == "api" {
        context.insert("api_key_id".into(), actor["id"].clone());
    }
    if rng.chance(0.05) {
        context.insert(
            "reason".into(),
            (*rng.pick(&[
                "customer support ticket",
                "quarterly access review",
                "requested by manager",
                "automated remediation",
            ]))
            .into(),
        );
    }

    // Field changes for writes; a sign-in records one.
    let n_changes = match action {
        "update" => rng.range(2, 4),
        "create" | "delete" | "bulk_update" => rng.range(2, 3),
        "login" => 1,
        _ => 0,
    };
    let mut changes = Vec::new();
    let mut used = Vec::new();
    while (changes.len() as u64) < n_changes {
        let field = if action == "login" {
            "last_login_at"
        } else {
            *rng.pick(CHANGE_FIELDS)
        };
        if used.contains(&field) {
            continue;
        }
        used.push(field);
        let new = if field == "last_login_at" {
            Value::from("@@T@@")
        } else {
            change_value(rng, field)
        };
        let mut old = change_value(rng, field);
        while old == new {
            old = change_value(rng, field);
        }
        let change = match action {
            "create" | "login" => json!({"field": field, "new": new}),
            "delete" => json!({"field": field, "old": old}),
            _ => json!({"field": field, "old": old, "new": new}),
        };
        changes.push(change);
    }

    let mut metadata = Map::new();
    let keys = [
        "app_version",
        "region",
        "client",
        "plan",
        "duration_ms",
        "retries",
        "feature_flag",
        "tenant",
    ];
    let n_meta = rng.range(2, 3) as usize;
    while metadata.len() < n_meta {
        let key = *rng.pick(&keys);
        let value = match key {
            "app_version" => Value::from(format!("4.{}.{}", rng.below(20), rng.below(10))),
            "region" => {
                (*rng.pick(&["eu-west-1", "us-east-1", "ap-northeast-1", "eu-central-1"])).into()
            }
            "client" => (*rng.pick(&["web", "ios", "android", "cli", "desktop"])).into(),
            "plan" => (*rng.pick(&["free", "team", "business", "enterprise"])).into(),
            "duration_ms" => Value::from(rng.skewed(5000, 2.0)),
            "retries" => Value::from(rng.below(4)),
            "feature_flag" => (*rng.pick(&["new_queue", "fast_export", "sso_v2"])).into(),
            _ => Value::from(format!("tenant-{}", rng.below(300))),
        };
        metadata.insert(key.into(), value);
    }

    let mut event = Map::new();
    event.insert("occurred_at".into(), "@@T@@".into());
    event.insert("action".into(), action.into());
    if let Some(d) = detailed {
        event.insert("detailed_action".into(), d.into());
    }
    // Most clients leave out what is the default anyway.
    if channel != "default" || rng.chance(0.2) {
        event.insert("channel".into(), channel.into());
    }
    event.insert("description".into(), description.into());
    if outcome == "failure" || rng.chance(0.3) {
        event.insert("outcome".into(), outcome.into());
    }
    event.insert("actor".into(), Value::Object(actor));
    event.insert("entity".into(), Value::Object(entity));
    if bulk {
        event.insert("entity_ids".into(), Value::Array(entity_ids));
    }
    event.insert("context".into(), Value::Object(context));
    if !changes.is_empty() {
        event.insert("changes".into(), Value::Array(changes));
    }
    event.insert("metadata".into(), Value::Object(metadata));
    let text = Value::Object(event).to_string();
    split_template(&text, space)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_core::redact::RedactionRules;

    #[test]
    fn reference_events_are_valid() {
        let pool = Pool::generate(7);
        let mut a = Assembler::new(1);
        let now = now_millis();
        for t in pool.templates.iter().take(3000) {
            let mut s = String::new();
            a.write(&mut s, t, now - 1000);
            let v: Value = serde_json::from_str(&s).unwrap();
            stele_core::parse_event(&v, now, &RedactionRules::default())
                .unwrap_or_else(|e| panic!("{s}: {e:?}"));
        }
        assert!(pool.average_bytes > 300.0 && pool.average_bytes < 800.0);
    }

    #[test]
    fn keys_are_found_in_the_banner() {
        let key = format!("stele_{}", "ab12".repeat(12));
        assert_eq!(find_key(&format!("    {key}")), Some(key.clone()));
        assert_eq!(
            find_key("Try: curl -H 'Authorization: Bearer stele_12'"),
            None
        );
    }

    #[test]
    fn verify_ok_lines_are_read() {
        let ok =
            "default (org_01a2): OK, 1067629 entries (seq 1..=1067629), 3 checkpoints, in 4.2s";
        assert_eq!(verified_entries(ok), Some(1_067_629));
        let failed =
            "default (org_01a2): FAILED at seq 7: Changed: hash (6 entries verified before it)";
        assert_eq!(verified_entries(failed), None);
        assert_eq!(pruned_entries(ok), None);
        let pruned = "default (org_01a2): OK, 6 entries (seq 1000001..=1000006); 1000000 entries \
                      pruned by retention (every entry up to seq 1000000), anchored by the \
                      checkpoint at seq 1000002, 40 checkpoints, in 1.2s";
        assert_eq!(verified_entries(pruned), Some(6));
        assert_eq!(pruned_entries(pruned), Some(1_000_000));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(pct(&v, 0.5), Duration::from_millis(50));
        assert_eq!(pct(&v, 0.99), Duration::from_millis(99));
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
