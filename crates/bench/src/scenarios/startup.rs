//! The `startup` scenario: the server is stopped and started again on the trail the run left, and
//! the harness measures how long `stele serve` takes from being spawned to its first `200` from
//! `/readyz` (which asks the database), polled every 2 ms, and its resident memory once it has
//! been idle for 2 s. The targets (docs/benchmarks.md): ready within 200 ms at 10M entries, idle
//! RSS ≤ 30 MB.
//!
//! The data directory's pages are in the kernel's cache (the run just wrote or read them), so
//! this is a restart on a warm machine, not the first start after a reboot.

use std::fmt::Write as _;
use std::time::Duration;

use stele_core::Seq;

use super::export::status_kb;
use crate::report::{ms, thousands};

/// How long the server waits, idle, before its memory is read.
pub const IDLE: Duration = Duration::from_secs(2);

pub struct StartupResult {
    /// Spawned to the first `200` from `/readyz`.
    pub ready_after: Duration,
    /// `VmRSS` and `RssAnon` after [`IDLE`], in kB.
    pub rss_kb: Option<u64>,
    pub anon_kb: Option<u64>,
    /// The organization's newest `seq` when it started: how long its trail is.
    pub newest_seq: Option<Seq>,
}

impl StartupResult {
    /// Reads the idle server's memory.
    pub fn measure(ready_after: Duration, pid: u32) -> StartupResult {
        StartupResult {
            ready_after,
            rss_kb: status_kb(pid, "VmRSS"),
            anon_kb: status_kb(pid, "RssAnon"),
            newest_seq: None,
        }
    }

    pub fn render(&self, o: &mut String) {
        let mb = |v: Option<u64>| {
            v.map_or("unknown".to_string(), |k| {
                format!("{:.1} MB", k as f64 / 1024.0)
            })
        };
        let _ = writeln!(o, "\n## Startup\n");
        let _ = writeln!(
            o,
            "A restart on the trail the run left (its newest `seq`: {}), with the data in the page \
             cache.\n",
            self.newest_seq
                .map_or("unknown".into(), |seq| thousands(seq.tree_size()))
        );
        let _ = writeln!(o, "| figure | measured | target |");
        let _ = writeln!(o, "|---|---|---|");
        let _ = writeln!(
            o,
            "| `stele serve` spawned to its first `200` from `/readyz` | {} | ≤ 200 ms at 10M entries |",
            ms(self.ready_after)
        );
        let _ = writeln!(
            o,
            "| resident memory (`VmRSS`) after {} s idle | {} (`RssAnon`, heap and stacks: {}) | ≤ 30 MB |",
            IDLE.as_secs(),
            mb(self.rss_kb),
            mb(self.anon_kb)
        );
    }
}
