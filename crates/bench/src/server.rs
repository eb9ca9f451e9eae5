//! The server child process: `stele serve` on a free port and a throwaway data directory, read
//! from its first-start banner (address, admin key, organization, checkpoint public key), ready
//! when `/readyz` says so, restarted on the same data and stopped gracefully.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use stele_store::{Scope, Store};

use crate::Backend;

pub(crate) struct Server {
    /// The `stele` binary it runs (`--stele`); a restart runs the same.
    stele: PathBuf,
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) key: String,
    /// The organization the key belongs to (its public id).
    pub(crate) org: String,
    /// The checkpoint public key (hex) from the banner.
    pub(crate) public_key: String,
    /// From being spawned to its first `200` from `/readyz`.
    pub(crate) ready_after: Duration,
}

impl Server {
    /// Starts `stele serve` on a free port. On a fresh store the admin key comes from the
    /// first-start banner; on a reused one `existing` is the (organization, key) the bench made
    /// through the store.
    pub(crate) async fn start(
        stele: &Path,
        dir: &Path,
        checkpoint_every: u64,
        no_prune: bool,
        backend: &Backend,
        existing: Option<(String, String)>,
    ) -> anyhow::Result<Server> {
        let checkpoint_every = checkpoint_every.to_string();
        let serve = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--checkpoint-every",
            &checkpoint_every,
        ];
        let mut command = backend.command(stele, &serve, dir, Stdio::inherit());
        if no_prune {
            command.arg("--no-prune");
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
            stele: stele.to_path_buf(),
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
            // Older builds print the key; newer ones write it to a file when, as here, their
            // output is not a terminal, and name the file.
            if let Some(key) = find_key(&line) {
                server.key = key;
            }
            if let Some(path) = line
                .strip_prefix("Its admin API key is in ")
                .and_then(|rest| rest.split(" (readable only").next())
            {
                server.key = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the first admin key from {path}"))?
                    .trim()
                    .to_string();
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
    pub(crate) async fn restart(
        &mut self,
        dir: &Path,
        checkpoint_every: u64,
        no_prune: bool,
        backend: &Backend,
    ) -> anyhow::Result<()> {
        self.stop()?;
        let existing = Some((self.org.clone(), self.key.clone()));
        let stele = self.stele.clone();
        *self = Server::start(&stele, dir, checkpoint_every, no_prune, backend, existing).await?;
        Ok(())
    }

    /// SIGTERM (graceful: requests in flight finish, the database closes and checkpoints), then
    /// waits; kills after 120 s.
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
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
pub(crate) async fn bench_key(store: &dyn Store) -> anyhow::Result<(String, String)> {
    let org = store
        .list_orgs()
        .await?
        .into_iter()
        .next()
        .context("the data directory has no organization")?;
    let key = stele_service::access::api_keys::generate(
        "stele bench",
        vec![Scope::Ingest, Scope::Read, Scope::Admin],
    );
    store.create_api_key(org.key, key.record).await?;
    Ok((org.id, key.secret))
}

/// A platform key that may ingest and read (the `orgs` and `tenants` scenarios), made through the
/// store next to the running server as [`bench_key`] makes its key.
pub(crate) async fn platform_key(store: &dyn Store) -> anyhow::Result<String> {
    platform_key_with(store, &[Scope::Ingest, Scope::Read]).await
}

/// A platform key with these scopes (the streams scenario's also manages the platform's streams).
pub(crate) async fn platform_key_with(
    store: &dyn Store,
    scopes: &[Scope],
) -> anyhow::Result<String> {
    let platform = store.platform_org().await?;
    let key = stele_service::access::api_keys::generate("stele bench platform", scopes.to_vec());
    store.create_api_key(platform.key, key.record).await?;
    Ok(key.secret)
}

pub(crate) struct DirCleanup {
    pub(crate) dir: Option<PathBuf>,
}

impl Drop for DirCleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_the_banner() {
        let key = format!("stele_{}", "ab12".repeat(12));
        assert_eq!(find_key(&format!("    {key}")), Some(key.clone()));
        assert_eq!(
            find_key("Try: curl -H 'Authorization: Bearer stele_12'"),
            None
        );
    }
}
