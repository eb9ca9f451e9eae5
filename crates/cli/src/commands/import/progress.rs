//! The progress line: rows read, events sent and the rate, rewritten in place on standard error
//! at most four times a second, and only while standard error is a terminal (a log file or a
//! pipe gets the summary alone).

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(250);

pub struct Progress {
    terminal: bool,
    started: Instant,
    shown_at: Option<Instant>,
    /// Rows imported by earlier runs.
    before: u64,
    read: u64,
    sent: u64,
}

impl Progress {
    pub fn new(before: u64) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            shown_at: None,
            before,
            read: 0,
            sent: 0,
        }
    }

    /// The row at this position of the source has been read.
    pub fn read(&mut self, ordinal: u64) {
        self.read = ordinal;
        self.show(false);
    }

    /// `sent` events have been sent in this run.
    pub fn sent(&mut self, sent: u64) {
        self.sent = sent;
        self.show(false);
    }

    /// Clears the line, before the summary.
    pub fn finish(&mut self) {
        if self.terminal && self.shown_at.is_some() {
            self.show(true);
            eprintln!();
        }
    }

    fn show(&mut self, now: bool) {
        if !self.terminal {
            return;
        }
        if !now && self.shown_at.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.shown_at = Some(Instant::now());
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            self.sent as f64 / seconds
        } else {
            0.0
        };
        let resumed = if self.before > 0 {
            format!(" (resumed after row {})", self.before)
        } else {
            String::new()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kat row {}{resumed} · sent {} events · {rate:.0} events/s · {seconds:.0} s",
            self.read, self.sent
        );
        let _ = err.flush();
    }
}
