//! CPU accounting, read from /proc: what the server (per thread name), this process, PostgreSQL
//! and the rest of the machine used over a scenario; the write-ahead log's size while the server
//! runs; and the machine the run is on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stele_core::time::{format_rfc3339, now_millis};

/// CPU seconds used over a scenario, from /proc: by the server (and per server thread name), by
/// this process, and by the whole machine (so other processes' load shows).
pub(crate) struct CpuMeter {
    server_pid: u32,
    started: Instant,
    server: Option<f64>,
    bench: Option<f64>,
    /// With PostgreSQL: its processes' CPU seconds (see [`postgres_seconds`]).
    postgres: Option<f64>,
    machine: Option<f64>,
    threads: HashMap<u32, (String, f64)>,
}

pub(crate) struct CpuUse {
    pub(crate) wall: f64,
    pub(crate) server: Option<f64>,
    pub(crate) bench: Option<f64>,
    /// The PostgreSQL server's processes (with `--database-url` only).
    pub(crate) postgres: Option<f64>,
    /// Everything else running on the machine meanwhile.
    pub(crate) others: Option<f64>,
    /// Server CPU seconds per thread name, largest first.
    pub(crate) threads: Vec<(String, f64)>,
}

impl CpuMeter {
    pub(crate) fn start(server_pid: u32, postgres: bool) -> CpuMeter {
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

    pub(crate) fn stop(self) -> CpuUse {
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
pub(crate) fn stat_seconds(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

/// CPU seconds of every process named `postgres` (the postmaster, its background processes and
/// one server process per connection), plus the time of the children the postmaster has reaped,
/// so that a connection's server process still counts after it exits. Assumes the PostgreSQL
/// server runs on this machine and its processes are visible in /proc; `None` if none is.
pub(crate) fn postgres_seconds() -> Option<f64> {
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
pub(crate) fn machine_busy_seconds() -> Option<f64> {
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
pub(crate) fn watch_wal(wal: Option<PathBuf>) -> (Arc<AtomicU64>, Arc<AtomicBool>) {
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

pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory: String,
    pub(crate) kernel: String,
    pub(crate) date: String,
    pub(crate) load: String,
    /// The git revision of the working directory, if it is a checkout.
    pub(crate) source: String,
}

impl Machine {
    pub(crate) fn probe() -> Machine {
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

    pub(crate) fn loadavg() -> String {
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
