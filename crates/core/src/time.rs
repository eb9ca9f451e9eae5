//! Timestamps: Stele stores milliseconds since the Unix epoch (UTC) and shows RFC 3339 with a `Z`.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// The current time in milliseconds. Only the edges (server, store) call this; rules take `now` as
/// an argument.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// `2026-01-02T03:04:05.678Z`: RFC 3339, UTC, millisecond precision.
pub fn format_rfc3339(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp with any offset; sub-millisecond digits are truncated.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Which end of a day a bare `YYYY-MM-DD` stands for in a range filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayBound {
    /// `from=2026-01-02` starts at 00:00:00.000 of that day.
    Start,
    /// `to=2026-01-02` includes the whole day, so it ends before 00:00 of the next.
    End,
}

/// Parses a range bound: RFC 3339, or a bare date meaning the start or the whole of that UTC day.
/// Returns an inclusive lower bound for `Start` and an exclusive upper bound for `End`.
pub fn parse_range_bound(s: &str, bound: DayBound) -> Option<Millis> {
    if let Some(ms) = parse_rfc3339(s) {
        return Some(match bound {
            DayBound::Start => ms,
            DayBound::End => ms + 1,
        });
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let day = match bound {
        DayBound::Start => day,
        DayBound::End => day.succ_opt()?,
    };
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        assert_eq!(
            format_rfc3339(1_767_322_245_678),
            "2026-01-02T02:50:45.678Z"
        );
    }

    #[test]
    fn parses_offsets_into_utc() {
        assert_eq!(
            parse_rfc3339("2026-01-02T04:50:45.678+02:00"),
            Some(1_767_322_245_678)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn a_bare_to_date_includes_the_whole_day() {
        let start = parse_range_bound("2026-01-02", DayBound::Start).unwrap();
        let end = parse_range_bound("2026-01-02", DayBound::End).unwrap();
        assert_eq!(end - start, 86_400_000);
        assert_eq!(format_rfc3339(start), "2026-01-02T00:00:00.000Z");
    }
}
