//! The daily retention schedule inside `stele serve`: at a fixed UTC time of day (03:00 unless
//! configured otherwise), one server runs the prune. Servers sharing a database each keep the
//! schedule, and the store lets exactly one of them claim each day's run.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use stele_core::time::Millis;
use stele_store::Store;

use crate::clock::SharedClock;
use crate::retention::{self, ArchiveSink, SharedStatus, Trigger};

const DAY_MS: Millis = 24 * 3600 * 1000;
const MINUTE_MS: Millis = 60 * 1000;

/// The name a day's run is claimed under (`Retention::claim_scheduled_run`).
pub const PRUNE_JOB: &str = "retention.prune";

/// A time of day in UTC, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyAt {
    minute_of_day: u32,
}

impl DailyAt {
    pub const DEFAULT: DailyAt = DailyAt {
        minute_of_day: 3 * 60,
    };

    /// The first time at this time of day strictly after `now`.
    pub fn next_after(self, now: Millis) -> Millis {
        let day_start = now.div_euclid(DAY_MS) * DAY_MS;
        let today = day_start + Millis::from(self.minute_of_day) * MINUTE_MS;
        if today > now { today } else { today + DAY_MS }
    }
}

impl FromStr for DailyAt {
    type Err = String;

    /// `HH:MM`, 24-hour, UTC; a trailing ` UTC` (as [`DailyAt`] displays itself) is allowed.
    fn from_str(s: &str) -> Result<DailyAt, String> {
        let bad = || format!("`{s}` is not a time of day: use HH:MM in UTC, such as 03:00");
        let mut text = s.trim();
        if let Some(i) = text.len().checked_sub(3)
            && text.is_char_boundary(i)
            && text[i..].eq_ignore_ascii_case("utc")
        {
            text = text[..i].trim_end();
        }
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 || text.len() != 5 {
            return Err(bad());
        }
        Ok(DailyAt {
            minute_of_day: h * 60 + m,
        })
    }
}

impl fmt::Display for DailyAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02} UTC",
            self.minute_of_day / 60,
            self.minute_of_day % 60
        )
    }
}

/// Runs the prune every day at `at` until the task is dropped. A run that fails (the database
/// is down) is logged; the next day's run tries again. Missed days (the process was suspended,
/// or a test moved the clock by several days) collapse into one run.
pub async fn run_daily_prune(
    store: Arc<dyn Store>,
    clock: SharedClock,
    at: DailyAt,
    archive: Option<Arc<dyn ArchiveSink>>,
    status: SharedStatus,
) {
    let mut due = at.next_after(clock.now());
    loop {
        clock.sleep_until(due).await;
        match store.claim_scheduled_run(PRUNE_JOB, due).await {
            Ok(true) => {
                let now = clock.now();
                if let Err(e) = retention::prune_all(
                    store.as_ref(),
                    archive.clone(),
                    now,
                    Trigger::Schedule,
                    Some(&status),
                )
                .await
                {
                    tracing::error!(error = %e, "the scheduled retention run failed");
                }
            }
            Ok(false) => tracing::debug!(due, "another server ran today's retention"),
            Err(e) => tracing::error!(error = %e, "could not claim the retention run"),
        }
        due = at.next_after(clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn the_next_run_is_today_if_still_ahead_otherwise_tomorrow() {
        let at: DailyAt = "03:00".parse().unwrap();
        assert_eq!(at, DailyAt::DEFAULT);
        let three = T0 + 3 * 3600 * 1000;
        assert_eq!(at.next_after(T0), three);
        assert_eq!(at.next_after(three - 1), three);
        assert_eq!(at.next_after(three), three + DAY_MS, "strictly after");
        assert_eq!(at.next_after(three + 5), three + DAY_MS);
        let late: DailyAt = "23:59".parse().unwrap();
        assert_eq!(late.next_after(T0), T0 + DAY_MS - MINUTE_MS);
        assert_eq!(late.to_string(), "23:59 UTC");
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        // What `--help` shows as the default reads back as that default.
        assert_eq!(DailyAt::DEFAULT.to_string().parse(), Ok(DailyAt::DEFAULT));
        assert_eq!(
            "23:59 utc".parse::<DailyAt>().unwrap().to_string(),
            "23:59 UTC"
        );
        for bad in [
            "3",
            "24:00",
            "03:60",
            "3:00",
            "03:00:00",
            "ab:cd",
            "",
            "UTC",
            "03:00 GMT",
        ] {
            assert!(bad.parse::<DailyAt>().is_err(), "{bad}");
        }
        assert!("00:00".parse::<DailyAt>().is_ok());
    }
}
