//! A real `stele serve` for the client's tests, on a port of its own (or the one it had before,
//! for a restart) and a temporary data directory, read through its banner with a deadline.
//! Killed when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: a debug build on a loaded 2-core machine.
const START_DEADLINE: Duration = Duration::from_secs(90);

/// The `stele` binary of this package.
fn stele_bin() -> &'static Path {
    Path::new(crate::support::STELE)
}

/// A running `stele serve`.
pub struct Server {
    child: Child,
    pub url: String,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts a server on a free port over `data_dir` (a first start there creates the `default`
    /// organization and its admin key).
    pub fn start(data_dir: &Path) -> Server {
        Server::start_on(data_dir, 0)
    }

    /// Starts a server on this port (0: any free one).
    pub fn start_on(data_dir: &Path, port: u16) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("serve.log"))
            .unwrap();
        let mut child = Command::new(stele_bin())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            // No `stele.toml` of the machine's, no settings from the environment.
            .current_dir(data_dir)
            .env_remove("STELE_CONFIG")
            .env_remove("STELE_DATABASE_URL")
            .env_remove("STELE_SIGNING_KEY_FILE")
            .env_remove("STELE_DATA_DIR")
            .env_remove("STELE_LISTEN")
            .env("STELE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("stele serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // Keeps reading after the banner, so the server never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_DEADLINE;
        let mut url = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "stele serve did not start; log:\n{}",
                    std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default()
                )
            });
            if let Some(u) = line.strip_prefix("Stele is listening on ") {
                url = Some(u.trim().to_string());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        let url = url.expect("the banner names the URL");
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Server {
            child,
            url,
            port,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The `default` organization's admin key, which the first start wrote to a file (its
    /// output is not a terminal).
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("first-admin-key"))
            .expect("the first start wrote its admin key")
            .trim()
            .to_string()
    }

    /// Kills the process (SIGKILL: no graceful stop) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a `stele` command over `data_dir`; it must succeed. Returns its standard output.
pub fn stele(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(stele_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .current_dir(data_dir)
        .env_remove("STELE_CONFIG")
        .env_remove("STELE_DATABASE_URL")
        .env_remove("STELE_SIGNING_KEY_FILE")
        .env_remove("STELE_DATA_DIR")
        .output()
        .expect("stele runs");
    assert!(
        out.status.success(),
        "stele {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every entry the key may read (of the organization `Stele-Organization` names, if given),
/// walking every page of `GET /v1/events` (all actor types).
pub async fn list_all(url: &str, key: &str, organization: Option<&str>) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = http
            .get(format!("{url}/v1/events"))
            .bearer_auth(key)
            .query(&[("actor_type", "all"), ("limit", "500")]);
        if let Some(org) = organization {
            request = request.header("stele-organization", org);
        }
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c.as_str())]);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "listing the events");
        let page: Value = response.json().await.unwrap();
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return entries,
        }
    }
}

/// The `metadata.n` of the entries whose `metadata.run` is `run`, sorted (duplicates kept, so
/// that a duplicate shows).
pub fn markers(entries: &[Value], run: &str) -> Vec<u64> {
    let mut ns: Vec<u64> = entries
        .iter()
        .filter(|e| e["metadata"]["run"] == run)
        .map(|e| e["metadata"]["n"].as_u64().expect("a marker"))
        .collect();
    ns.sort_unstable();
    ns
}

/// Polls `f` every 20 ms until it is true, or panics with `what` after `deadline`.
pub async fn until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
