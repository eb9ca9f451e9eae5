//! The `verify` scenario: `stele verify --full` over the data directory after the graceful stop,
//! as a subprocess, then `stele verify` (what is new since: nothing); and the helpers that wait for a subprocess and read its output, which the `prune`
//! scenario uses too.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::Backend;
use crate::cpu::{machine_busy_seconds, postgres_seconds, stat_seconds};

pub(crate) struct VerifyResult {
    pub(crate) ok: bool,
    /// How the subprocess exited.
    pub(crate) status: String,
    pub(crate) wall: Duration,
    /// CPU seconds of the `stele verify` process (read from /proc before it was reaped).
    pub(crate) cpu: Option<f64>,
    /// With PostgreSQL: CPU seconds of its processes meanwhile.
    pub(crate) postgres: Option<f64>,
    /// CPU seconds of everything else on the machine meanwhile (this process included).
    pub(crate) others: Option<f64>,
    /// Entries verified, from the OK lines.
    pub(crate) entries: u64,
    /// Entries pruned by retention (their content gone, their chain links kept), from the OK lines.
    pub(crate) pruned: u64,
    /// The lines the command printed (stdout, then stderr).
    pub(crate) stdout: Vec<String>,
    pub(crate) stderr: Vec<String>,
    /// `stele verify` without `--full` right after: its wall time and what it printed.
    pub(crate) incremental: Option<(Duration, Vec<String>)>,
}

/// Runs `stele verify --data-dir DIR [--database-url URL]` (the measured binary) after the server
/// has stopped and times it from spawning to exit.
pub(crate) fn verify(stele: &Path, dir: &Path, backend: &Backend) -> anyhow::Result<VerifyResult> {
    eprintln!("bench: verify: running `stele verify --full` on the stopped server's store");
    let mut command = backend.command(stele, &["verify", "--full"], dir, Stdio::piped());
    let pg = matches!(backend, Backend::Postgres(_));
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
        incremental: ok
            .then(|| verify_what_is_new(stele, dir, backend))
            .transpose()?,
    })
}

/// `stele verify` (what came after the checkpoint the full run passed last), timed.
fn verify_what_is_new(
    stele: &Path,
    dir: &Path,
    backend: &Backend,
) -> anyhow::Result<(Duration, Vec<String>)> {
    let started = Instant::now();
    let out = backend
        .command(stele, &["verify"], dir, Stdio::piped())
        .output()
        .context("running `stele verify`")?;
    let wall = started.elapsed();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    eprintln!(
        "bench: verify: what is new since, in {:.3} s: {}",
        wall.as_secs_f64(),
        lines.join(" / ")
    );
    Ok((wall, lines))
}

/// Waits for a child process to exit and returns its exit status and CPU seconds. Until the child
/// is a zombie its /proc entry stays readable; its CPU time is read there every 5 ms, then it is
/// reaped. Kills it after `limit`.
pub(crate) fn wait_measured(
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
pub(crate) fn read_lines<R: std::io::Read + Send + 'static>(
    pipe: Option<R>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        pipe.map(|p| BufReader::new(p).lines().map_while(Result::ok).collect())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
