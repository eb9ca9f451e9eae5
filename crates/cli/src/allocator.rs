//! The `stele` binary's allocator, jemalloc (the Rust code's and, as the process's `malloc`,
//! SQLite's): its background purging, and its figures on `/metrics` (the names are described
//! with the rest in `stele_server::app::metrics`).
//!
//! Why a background thread: jemalloc hands memory that requests freed back to the system after a
//! decay time (10 s), but without one it only does so while the arena that holds it allocates;
//! an arena of a thread that went quiet (a blocking thread SQLite reads ran on) keeps its dirty
//! pages. With the thread, they are returned on time, whichever thread freed them.

#![cfg(not(target_env = "msvc"))]

use std::time::Duration;

use stele_server::app::metrics::{ALLOCATOR_ALLOCATED, ALLOCATOR_RESIDENT};
use tikv_jemalloc_ctl::{background_thread, epoch, stats};

/// How often the figures are read.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Turns on jemalloc's background purging thread.
pub(crate) fn purge_in_background() {
    if let Err(error) = background_thread::write(true) {
        tracing::warn!(%error, "jemalloc's background thread could not start; freed memory returns to the system more slowly");
    }
}

/// Sets the allocator's gauges now and every [`REPORT_EVERY`] (on the current tokio runtime).
pub(crate) fn report_periodically() {
    tokio::spawn(async {
        let mut ticks = tokio::time::interval(REPORT_EVERY);
        loop {
            ticks.tick().await;
            report();
        }
    });
}

fn report() {
    // jemalloc's statistics are a snapshot taken when the epoch advances.
    if epoch::advance().is_err() {
        return;
    }
    if let Ok(bytes) = stats::allocated::read() {
        metrics::gauge!(ALLOCATOR_ALLOCATED).set(bytes as f64);
    }
    if let Ok(bytes) = stats::resident::read() {
        metrics::gauge!(ALLOCATOR_RESIDENT).set(bytes as f64);
    }
}
