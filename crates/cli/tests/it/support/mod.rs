//! Real `stele` processes on PostgreSQL, for the multi-process and outage tests: start
//! `stele serve` with the given flags and read its banner (with a deadline, so a server that hangs
//! fails the test instead of stalling it), stop it gracefully, run CLI commands, walk the API.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;

pub const STELE: &str = env!("CARGO_BIN_EXE_stele");

/// Generous: a debug build on a loaded 2-core machine, running migrations on a new database.
pub const START_DEADLINE: Duration = Duration::from_secs(90);

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub struct ServeOptions<'a> {
    pub data_dir: &'a Path,
    pub database_url: &'a str,
    pub signing_key_file: Option<&'a Path>,
    /// `--checkpoint-every` in seconds.
    pub checkpoint_every: u64,
}

impl<'a> ServeOptions<'a> {
    /// A server over `data_dir` and `database_url` without `--signing-key-file` (it makes or
    /// finds its key in the data directory), checkpointing every `checkpoint_every` seconds.
    pub fn new(data_dir: &'a Path, database_url: &'a str, checkpoint_every: u64) -> Self {
        ServeOptions {
            data_dir,
            database_url,
            signing_key_file: None,
            checkpoint_every,
        }
    }

    /// The same server with `--signing-key-file file`.
    pub fn with_signing_key_file(self, file: &'a Path) -> Self {
        ServeOptions {
            signing_key_file: Some(file),
            ..self
        }
    }
}

/// A `stele serve` process that was started and has not printed its banner yet. It is a
/// [`Server`] without a URL, so a test that fails before the banner still kills it.
pub struct Starting(Server);

/// A running `stele serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// Everything printed before the server was ready.
    pub banner: Vec<String>,
    /// Its standard error (the log).
    pub log: PathBuf,
    lines: mpsc::Receiver<String>,
}

/// The `stele serve` command on `listen` over `data_dir` (created if needed), with the signing
/// key and database chosen by flags only, and the path of its log: `serve.log` in the data
/// directory.
fn serve_command(data_dir: &Path, listen: &str) -> (Command, PathBuf) {
    std::fs::create_dir_all(data_dir).unwrap();
    let log = data_dir.join("serve.log");
    let mut command = Command::new(STELE);
    command
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(data_dir)
        .env_remove("STELE_SIGNING_KEY_FILE")
        .env_remove("STELE_DATABASE_URL")
        .env("STELE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    (command, log)
}

/// Starts `stele serve` on port 0. Its log goes to `serve.log` in the data directory.
pub fn spawn(options: &ServeOptions<'_>) -> Starting {
    spawn_with(options, &[])
}

/// [`spawn`] with the `extra` flags.
pub fn spawn_with(options: &ServeOptions<'_>, extra: &[&str]) -> Starting {
    let (mut command, log) = serve_command(options.data_dir, "127.0.0.1:0");
    command.args(extra);
    command
        .arg("--checkpoint-every")
        .arg(options.checkpoint_every.to_string())
        .args(["--database-url", options.database_url]);
    if let Some(key) = options.signing_key_file {
        command.arg("--signing-key-file").arg(key);
    }
    start(command, log)
}

/// Starts `stele serve` on port 0 over the embedded database in `data_dir`, with the `extra`
/// flags, and waits for its banner. Its log goes to `serve.log` in the data directory.
pub fn serve_sqlite(data_dir: &Path, extra: &[&str]) -> Server {
    serve_sqlite_with_env(data_dir, extra, &[])
}

/// [`serve_sqlite`] with these environment variables set as well.
pub fn serve_sqlite_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let (mut command, log) = serve_command(data_dir, "127.0.0.1:0");
    command.args(extra).envs(env.iter().copied());
    start(command, log).ready()
}

/// [`serve_sqlite`] on this port: a server started again where clients knew it.
pub fn serve_sqlite_on(data_dir: &Path, port: u16) -> Server {
    serve_sqlite_on_with(data_dir, port, &[])
}

/// [`serve_sqlite_on`] with the `extra` flags.
pub fn serve_sqlite_on_with(data_dir: &Path, port: u16, extra: &[&str]) -> Server {
    let (mut command, log) = serve_command(data_dir, &format!("127.0.0.1:{port}"));
    command.args(extra);
    start(command, log).ready()
}

/// Runs a prepared `stele serve` command whose standard error goes to `log`.
fn start(mut command: Command, log: PathBuf) -> Starting {
    let mut child = command.spawn().expect("stele serve starts");
    // A thread reads standard output, so waiting for the banner can have a deadline, and keeps
    // reading it afterwards, so the server never writes into a closed pipe.
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Starting(Server {
        child,
        url: String::new(),
        banner: vec![],
        log,
        lines,
    })
}

impl Starting {
    /// Waits for the banner, which ends with how to stop the server and is printed once the port
    /// is bound and the database is ready.
    pub fn ready(self) -> Server {
        let mut server = self.0;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = server.lines.recv_timeout(left) else {
                panic!(
                    "stele serve did not become ready (exited: {:?}); banner {:?}; log:\n{}",
                    server.child.try_wait(),
                    server.banner,
                    server.log_text()
                );
            };
            if let Some(u) = line.strip_prefix("Stele is listening on ") {
                server.url = u.to_string();
            }
            let done = line.starts_with("Press Ctrl-C");
            server.banner.push(line);
            if done {
                break;
            }
        }
        assert!(!server.url.is_empty(), "the server prints its URL");
        server
    }

    /// Waits for the process to exit without serving; returns its status and log.
    pub fn refused(self) -> (ExitStatus, String) {
        let mut server = self.0;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                return (status, server.log_text());
            }
            if let Ok(line) = server.lines.try_recv() {
                assert!(
                    !line.starts_with("Press Ctrl-C"),
                    "the server started serving; log:\n{}",
                    server.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the server neither served nor exited; log:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// The admin key of the organization its first start made (printed in its banner).
    pub fn admin_key(&self) -> String {
        key_in(&self.banner).expect("a first start names its admin key")
    }

    /// Kills the process (SIGKILL: no graceful stop) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running (it must never have exited or restarted).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        read(&self.log)
    }

    /// Asks for a graceful stop (SIGTERM) without waiting.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit after [`Server::terminate`]; it must exit 0.
    pub fn wait_stopped(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "a graceful stop exits 0, not {status}; log:\n{}",
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        self.terminate();
        self.wait_stopped();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The admin key a first start prints, if this banner has one.
pub fn key_in(banner: &[String]) -> Option<String> {
    // Standard output is a pipe here, so the first start writes the key to a file and names it.
    let line = banner
        .iter()
        .find_map(|l| l.strip_prefix("Its admin API key is in "))?;
    let path = line.split(" (readable only").next()?;
    let key = std::fs::read_to_string(path).ok()?;
    Some(key.trim().to_string())
}

/// The first word after `prefix` on the banner line that starts with it.
pub fn banner_value(banner: &[String], prefix: &str) -> String {
    banner
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `{prefix}` in {banner:?}"))
        .to_string()
}

/// Runs a `stele` command; it must succeed. Returns standard output.
pub fn stele_ok(args: &[&str]) -> String {
    let out = stele(args);
    assert!(
        out.status.success(),
        "stele {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `stele verify --full` on the database at `database_url` with the key in `data_dir`; it
/// must succeed. Returns its report.
pub fn verify_ok(database_url: &str, data_dir: &Path) -> String {
    stele_ok(&[
        "verify",
        "--full",
        "--database-url",
        database_url,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ])
}

/// Posts each body to `POST /v1/events` of the server at `url` with this key, each answered 201.
pub fn record_batches(url: &str, key: &str, bodies: Vec<Value>) {
    runtime().block_on(async {
        let client = Client::new();
        for body in bodies {
            let r = client
                .post(format!("{url}/v1/events"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    });
}

pub fn stele(args: &[&str]) -> Output {
    Command::new(STELE)
        .args(args)
        .env_remove("STELE_SIGNING_KEY_FILE")
        .env_remove("STELE_DATABASE_URL")
        .env_remove("STELE_DATA_DIR")
        .output()
        .expect("stele runs")
}

/// Every entry of the key's organization as the server lists them, `id -> seq`, walking every page
/// of `GET /v1/events` (all actor types).
pub async fn list_all(client: &Client, url: &str, key: &str) -> BTreeMap<String, i64> {
    let mut all = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client
            .get(format!("{url}/v1/events"))
            .bearer_auth(key)
            .query(&[("actor_type", "all"), ("limit", "500")]);
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c.as_str())]);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "listing through {url}");
        let page: Value = response.json().await.unwrap();
        for entry in page["entries"].as_array().unwrap() {
            let id = entry["id"].as_str().unwrap().to_string();
            let seq = entry["seq"].as_i64().unwrap();
            assert!(
                all.insert(id.clone(), seq).is_none(),
                "{id} listed twice through {url}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

/// `seq`s must be exactly 1..=n: unique, gap-free.
pub fn assert_gap_free(entries: &BTreeMap<String, i64>, what: &str) {
    let mut seqs: Vec<i64> = entries.values().copied().collect();
    seqs.sort_unstable();
    let expected: Vec<i64> = (1..=entries.len() as i64).collect();
    assert!(
        seqs == expected,
        "{what}: seq is not exactly 1..={}: {seqs:?}",
        entries.len()
    );
}

/// The receipts (`id`, `seq`) of a 201 answer to `POST /v1/events`.
pub fn receipts(body: &Value) -> Vec<(String, i64)> {
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no receipts in {body}"))
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["seq"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The name of the database a URL points at.
pub fn database_name(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    config
        .get_dbname()
        .expect("the URL names a database")
        .to_string()
}

/// Terminates every connection to database `name` (but the one asking), as an administrator
/// would; returns how many there were.
pub async fn terminate_backends(admin_url: &str, name: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .expect("an administrator's connection");
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

/// Polls `f` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = f().await {
            return value;
        }
        assert!(Instant::now() < until, "not within {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
