//! Building blocks of the console's audit log page: action badge colours, time and number
//! formatting, value truncation, masked key ids, the page's query string (every filter lives in
//! the URL) and the server-rendered activity chart.
//!
//! Everything here is a pure function of its arguments (the caller passes "now"), and every piece
//! of event data goes through maud's escaping: nothing in this module uses `PreEscaped`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use stele_core::ActorType;
use stele_core::params::PageRequest;
use stele_core::query::SearchQuery;
use stele_core::time::{Millis, format_rfc3339};

use stele_core::params::PAGE_PARAMETERS;

pub const DAY_MS: Millis = 86_400_000;

/// Values longer than this many characters are cut, with the rest behind a click.
pub const TRUNCATE_AT: usize = 80;

// --- action badges -------------------------------------------------------------------------------

/// The colour family of an action badge (seed 004: created emerald, updated sky, deleted rose,
/// anything else slate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadgeColour {
    Emerald,
    Sky,
    Rose,
    Slate,
}

impl BadgeColour {
    /// The CSS class `log.css` styles.
    pub fn class(self) -> &'static str {
        match self {
            BadgeColour::Emerald => "badge-emerald",
            BadgeColour::Sky => "badge-sky",
            BadgeColour::Rose => "badge-rose",
            BadgeColour::Slate => "badge-slate",
        }
    }
}

/// The actions the console knows: the action, its label, its colour. Bulk variants share the
/// colour of the single one. Any other action is shown slate with its raw name.
pub const ACTION_BADGES: &[(&str, &str, BadgeColour)] = &[
    ("create", "Create", BadgeColour::Emerald),
    ("bulk_create", "Bulk create", BadgeColour::Emerald),
    ("update", "Update", BadgeColour::Sky),
    ("bulk_update", "Bulk update", BadgeColour::Sky),
    ("delete", "Delete", BadgeColour::Rose),
    ("bulk_delete", "Bulk delete", BadgeColour::Rose),
    ("login", "Login", BadgeColour::Slate),
    ("logout", "Logout", BadgeColour::Slate),
    ("login_failed", "Failed login", BadgeColour::Slate),
    ("view", "View", BadgeColour::Slate),
    ("sync", "Sync", BadgeColour::Slate),
    ("archive", "Archive", BadgeColour::Slate),
    ("restore", "Restore", BadgeColour::Slate),
    ("export", "Export", BadgeColour::Slate),
    ("import", "Import", BadgeColour::Slate),
    ("access", "Access", BadgeColour::Slate),
    ("permission_change", "Permission change", BadgeColour::Slate),
];

/// A table's header row: a `th scope="col"` per column and, with `actions`, a last column for
/// the row's buttons whose name only screen readers hear.
pub fn column_heads(columns: &[&str], actions: bool) -> Markup {
    html! {
        thead {
            tr {
                @for column in columns {
                    th scope="col" { (column) }
                }
                @if actions {
                    th scope="col" { span.visually-hidden { "Actions" } }
                }
            }
        }
    }
}

pub fn action_colour(action: &str) -> BadgeColour {
    ACTION_BADGES
        .iter()
        .find(|(a, _, _)| *a == action)
        .map_or(BadgeColour::Slate, |(_, _, c)| *c)
}

/// The badge text: a label for known actions, the raw name for any other.
pub fn action_label(action: &str) -> &str {
    ACTION_BADGES
        .iter()
        .find(|(a, _, _)| *a == action)
        .map_or(action, |(_, label, _)| label)
}

pub fn action_badge(action: &str) -> Markup {
    html! {
        span.badge.(action_colour(action).class()) title=(action) { (action_label(action)) }
    }
}

/// The badge that stands for an automated actor (System or Scheduler) instead of a person.
pub fn system_badge(kind: ActorType) -> Markup {
    html! {
        span.badge.badge-system title=(format!("{kind} actor")) { "System" }
    }
}

pub fn is_system_actor(kind: ActorType) -> bool {
    matches!(kind, ActorType::System | ActorType::Scheduler)
}

// --- time ------------------------------------------------------------------------------------------

/// "just now", "5 minutes ago", "2 hours ago", "3 days ago", "4 months ago", "2 years ago"; a time
/// ahead of `now` (a client clock running fast) reads "in 3 minutes".
pub fn relative_age(then: Millis, now: Millis) -> String {
    let seconds = (now - then) / 1000;
    let (ahead, seconds) = (seconds < 0, seconds.unsigned_abs());
    if seconds < 60 {
        return "just now".into();
    }
    let days = seconds / 86_400;
    let (n, unit) = if seconds < 3600 {
        (seconds / 60, "minute")
    } else if seconds < 86_400 {
        (seconds / 3600, "hour")
    } else if days < 30 {
        (days, "day")
    } else if days < 365 {
        (days / 30, "month")
    } else {
        (days / 365, "year")
    };
    let plural = if n == 1 { "" } else { "s" };
    if ahead {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

fn utc(ms: Millis) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// `2026-01-02 02:50:45 UTC`.
pub fn utc_text(ms: Millis) -> String {
    utc(ms).format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2026-01-02`, the UTC day.
pub fn utc_date(ms: Millis) -> String {
    utc(ms).format("%Y-%m-%d").to_string()
}

/// The start (00:00 UTC) of the day holding `ms`.
pub fn day_start(ms: Millis) -> Millis {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// A `<time>` in UTC with its relative age. The `title` holds the exact UTC time; `log.js` turns
/// it into the viewer's local time on hover.
pub fn time_cell(ms: Millis, now: Millis) -> Markup {
    let exact = format_rfc3339(ms);
    html! {
        time datetime=(exact) title=(format!("{exact} (UTC)")) { (utc_text(ms)) }
        br;
        span.age { (relative_age(ms, now)) }
    }
}

// --- numbers ---------------------------------------------------------------------------------------

/// `1234567` → `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count that fits under a chart bar: `999`, `1.2k`, `12k`, `1.5M`.
pub fn compact_count(n: u64) -> String {
    match n {
        0..1000 => n.to_string(),
        1000..10_000 => format!("{:.1}k", n as f64 / 1000.0).replace(".0k", "k"),
        10_000..1_000_000 => format!("{}k", n / 1000),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0).replace(".0M", "M"),
    }
}

/// "1 entry", "1,234 entries", or "at least 10,000 entries" when the count is a lower bound.
pub fn entry_count_text(total: u64, exact: bool) -> String {
    let noun = if total == 1 { "entry" } else { "entries" };
    if exact {
        format!("{} {noun}", group_thousands(total))
    } else {
        format!("at least {} {noun}", group_thousands(total))
    }
}

// --- values ----------------------------------------------------------------------------------------

/// The first `max` characters of `text`, or `None` when it is not longer than that.
pub fn truncated(text: &str, max: usize) -> Option<&str> {
    text.char_indices().nth(max).map(|(at, _)| &text[..at])
}

/// A text that is cut at [`TRUNCATE_AT`] characters when longer, the rest behind a `<details>`
/// (click to expand, no JavaScript needed).
pub fn long_text(text: &str) -> Markup {
    match truncated(text, TRUNCATE_AT) {
        None => html! { span.value { (text) } },
        Some(head) => html! {
            details.long-value {
                summary {
                    span.preview { (head) "…" }
                    span.less { "Show less" }
                }
                span.value.full { (text) }
            }
        },
    }
}

/// A JSON value as people read it: strings as they are, anything else as compact JSON.
pub fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// One side of a field change: absent (the field did not exist on that side), `null`, an empty
/// string, or the value (truncated when long).
pub fn value_cell(value: Option<&Value>) -> Markup {
    match value {
        None => html! { span.absent title="absent" { "—" } },
        Some(Value::Null) => html! { span.null { "null" } },
        Some(Value::String(s)) if s.is_empty() => html! { span.null { "(empty)" } },
        Some(v) => long_text(&value_text(v)),
    }
}

/// An API key id with only its first characters shown: `key_019a••••`.
pub fn mask_key_id(id: &str) -> String {
    let len = id.chars().count();
    let keep = if len >= 16 { 8 } else { len / 2 };
    let head: String = id.chars().take(keep).collect();
    format!("{head}••••")
}

/// A long id shortened for a table cell: its first 8 characters and an ellipsis.
pub fn short_id(id: &str) -> Cow<'_, str> {
    match truncated(id, 12) {
        None => Cow::Borrowed(id),
        Some(_) => Cow::Owned(format!("{}…", truncated(id, 8).unwrap_or(id))),
    }
}

// --- the page's query string -----------------------------------------------------------------------

/// The parameters the page keeps in its URL, in the order links write them: the filters of
/// `GET /v1/events`, then the page size and the cursor.
pub const QUERY_KEYS: [&str; 15] = PAGE_PARAMETERS;

/// The view's query: what the URL says, trimmed, empty values dropped (as the API ignores them),
/// the `actor_type` checkboxes of the filter form merged into one comma list, and everything
/// else the page does not use left out. Links built from it preserve every filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewQuery {
    values: [Option<String>; QUERY_KEYS.len()],
}

impl ViewQuery {
    pub fn from_params(params: &[(String, String)]) -> ViewQuery {
        let mut query = ViewQuery::default();
        let mut actor_types: Vec<String> = Vec::new();
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if key == "actor_type" {
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    if !actor_types.iter().any(|t| t.eq_ignore_ascii_case(part)) {
                        actor_types.push(part.to_string());
                    }
                }
            } else {
                query.set(key, value);
            }
        }
        if let Some(types) = canonical_actor_types(actor_types) {
            query.set("actor_type", &types);
        }
        query
    }

    fn index(key: &str) -> Option<usize> {
        QUERY_KEYS.iter().position(|k| *k == key)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        Self::index(key).and_then(|i| self.values[i].as_deref())
    }

    /// Sets a parameter (an empty value removes it). Keys the page does not use are ignored.
    pub fn set(&mut self, key: &str, value: &str) {
        if let Some(i) = Self::index(key) {
            let value = value.trim();
            self.values[i] = (!value.is_empty()).then(|| value.to_string());
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(i) = Self::index(key) {
            self.values[i] = None;
        }
    }

    pub fn with(&self, key: &str, value: &str) -> ViewQuery {
        let mut q = self.clone();
        q.set(key, value);
        q
    }

    pub fn without(&self, keys: &[&str]) -> ViewQuery {
        let mut q = self.clone();
        for key in keys {
            q.remove(key);
        }
        q
    }

    /// Only the filters: no page size, no cursor (what an export or the chart needs).
    pub fn filters(&self) -> ViewQuery {
        self.without(&["limit", "cursor"])
    }

    /// Every filter removed, the page size kept (what Clear all links to).
    pub fn filters_cleared(&self) -> ViewQuery {
        let mut q = ViewQuery::default();
        if let Some(limit) = self.get("limit") {
            q.set("limit", limit);
        }
        q
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        QUERY_KEYS
            .iter()
            .zip(&self.values)
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
    }

    pub fn owned_pairs(&self) -> Vec<(String, String)> {
        self.pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// `action=update&from=2026-01-01`, percent-encoded.
    pub fn query_string(&self) -> String {
        self.pairs()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `path?query`, or just `path` when there are no parameters.
    pub fn href(&self, path: &str) -> String {
        if self.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", self.query_string())
        }
    }

    /// Parses the filter and page exactly as `GET /v1/events` would.
    pub fn page_request(&self) -> Result<PageRequest, stele_core::FilterError> {
        PageRequest::from_params(self.pairs().map(|(k, v)| (k as &str, v)))
    }
}

/// Actor types in the order of [`ActorType::ALL`], or `all` when every type is named; names that
/// are not actor types are kept (after the known ones) so that the parser reports them.
fn canonical_actor_types(parts: Vec<String>) -> Option<String> {
    if parts.is_empty() {
        return None;
    }
    if parts.iter().any(|p| p.eq_ignore_ascii_case("all")) {
        return Some("all".into());
    }
    let known: Vec<ActorType> = ActorType::ALL
        .into_iter()
        .filter(|t| parts.iter().any(|p| p.parse() == Ok(*t)))
        .collect();
    let unknown: Vec<&str> = parts
        .iter()
        .filter(|p| p.parse::<ActorType>().is_err())
        .map(String::as_str)
        .collect();
    if unknown.is_empty() && known.len() == ActorType::ALL.len() {
        return Some("all".into());
    }
    let mut names: Vec<&str> = known.iter().map(|t| t.as_str()).collect();
    names.extend(unknown);
    Some(names.join(","))
}

/// The actor types an `actor_type` value names, or `None` if it is not readable.
pub fn parse_actor_types(value: &str) -> Option<Vec<ActorType>> {
    PageRequest::from_params([("actor_type", value)])
        .ok()
        .map(|p| p.filter.actor_types)
}

/// How many filters narrow the view: each filter parameter given, with `actor_type` counting only
/// when it differs from the page's default set, and in the search box each filter its terms set
/// (that no parameter sets too) and its free text. Page size and cursor are not filters.
pub fn active_filter_count(query: &ViewQuery, default_actor_types: &[ActorType]) -> usize {
    let filters = query.filters();
    filters
        .pairs()
        .map(|(key, value)| match key {
            "actor_type" => usize::from(
                parse_actor_types(value).is_none_or(|types| types != default_actor_types),
            ),
            "q" => match SearchQuery::parse(value) {
                Ok(search) => {
                    let mut set: Vec<&str> = search
                        .settings
                        .iter()
                        .map(|(_, s)| s.parameter())
                        .filter(|p| filters.get(p).is_none())
                        .collect();
                    set.sort_unstable();
                    set.dedup();
                    set.len() + usize::from(search.text.is_some())
                }
                Err(_) => 1,
            },
            _ => 1,
        })
        .sum()
}

/// Every byte but the unreserved characters of RFC 3986 (letters, digits, `-._~`).
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes everything but the unreserved characters of RFC 3986, so the result is safe
/// in a query value and in a path segment (a `/` in an entity id stays inside its segment).
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Reads a query string (`a=1&b=x%20y`, `+` as a space, a leading `?` ignored) into pairs, in
/// order and with repeated names kept, as a browser's form submission or a server's query
/// extractor would.
pub fn decode_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .into_owned()
        .collect()
}

// --- the activity chart ----------------------------------------------------------------------------

/// One bar of the activity chart: the entries of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    /// 00:00 UTC of the day.
    pub day: Millis,
    pub count: u64,
    /// False when the store stopped counting early: `count` is a lower bound, shown with "≥".
    pub exact: bool,
}

const BAR_PITCH: i64 = 36;
const BAR_WIDTH: i64 = 26;
const PLOT_HEIGHT: i64 = 110;
const TOP_MARGIN: i64 = 18;
const BOTTOM_MARGIN: i64 = 32;

fn count_label(day: &DayCount) -> String {
    let bound = if day.exact { "" } else { "≥" };
    format!("{bound}{}", compact_count(day.count))
}

/// Entries per day as an inline SVG bar chart: each bar carries its count above it and its day
/// below (the month under the first day and under each 1st), so it reads without hovering; each
/// bar's `<title>` gives the full date and exact count for those who do hover. The SVG is as wide
/// as its days need and scrolls sideways in a narrow window (`log.css`).
pub fn activity_chart(days: &[DayCount]) -> Markup {
    let max = days.iter().map(|d| d.count).max().unwrap_or(0).max(1);
    let width = BAR_PITCH * days.len().max(1) as i64;
    let height = TOP_MARGIN + PLOT_HEIGHT + BOTTOM_MARGIN;
    let baseline = TOP_MARGIN + PLOT_HEIGHT;
    let total: u64 = days.iter().map(|d| d.count).sum();
    let exact = days.iter().all(|d| d.exact);
    let range = match (days.first(), days.last()) {
        (Some(first), Some(last)) => format!("{} to {}", utc_date(first.day), utc_date(last.day)),
        _ => String::new(),
    };
    let summary = format!(
        "Entries per day (UTC), {range}: {} in total",
        entry_count_text(total, exact)
    );
    html! {
        figure.activity {
            figcaption {
                "Entries per day (UTC), " (range) ": "
                strong { (entry_count_text(total, exact)) }
            }
            div.chart-scroll {
                svg.activity-chart xmlns="http://www.w3.org/2000/svg" role="img"
                    aria-label=(summary) width=(width) height=(height)
                    viewBox=(format!("0 0 {width} {height}")) {
                    @for (i, day) in days.iter().enumerate() {
                        @let x = i as i64 * BAR_PITCH + (BAR_PITCH - BAR_WIDTH) / 2;
                        @let centre = i as i64 * BAR_PITCH + BAR_PITCH / 2;
                        @let h = bar_height(day.count, max);
                        @let date = utc(day.day);
                        g.day {
                            title {
                                (utc_date(day.day)) ": "
                                (entry_count_text(day.count, day.exact))
                            }
                            rect.bar.zero[day.count == 0] x=(x) y=(baseline - h)
                                width=(BAR_WIDTH) height=(h) rx="2" {}
                            text.count x=(centre) y=(baseline - h - 4) text-anchor="middle" {
                                (count_label(day))
                            }
                            text.day-label x=(centre) y=(baseline + 14) text-anchor="middle" {
                                (date.format("%-d").to_string())
                            }
                            @if i == 0 || date.format("%d").to_string() == "01" {
                                text.month-label x=(centre) y=(baseline + 28)
                                    text-anchor="middle" {
                                    (date.format("%b").to_string())
                                }
                            }
                        }
                    }
                    line.baseline x1="0" y1=(baseline) x2=(width) y2=(baseline) {}
                }
            }
        }
    }
}

fn bar_height(count: u64, max: u64) -> i64 {
    if count == 0 {
        return 1;
    }
    ((count as f64 / max as f64) * PLOT_HEIGHT as f64)
        .round()
        .max(2.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_core::filter::default_actor_types;

    const NOW: Millis = 1_767_322_245_678; // 2026-01-02T02:50:45.678Z
    const MIN: Millis = 60_000;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn badges_colour_create_update_delete_and_slate_for_the_rest() {
        assert_eq!(action_colour("create"), BadgeColour::Emerald);
        assert_eq!(action_colour("bulk_create"), BadgeColour::Emerald);
        assert_eq!(action_colour("update"), BadgeColour::Sky);
        assert_eq!(action_colour("bulk_update"), BadgeColour::Sky);
        assert_eq!(action_colour("delete"), BadgeColour::Rose);
        assert_eq!(action_colour("bulk_delete"), BadgeColour::Rose);
        for other in ["login", "export", "printer_reboot", "Create", ""] {
            assert_eq!(action_colour(other), BadgeColour::Slate, "{other}");
        }
        let badge = action_badge("delete").into_string();
        assert!(badge.contains("badge-rose"), "{badge}");
        assert!(badge.contains(">Delete<"), "{badge}");
        assert!(
            action_badge("create")
                .into_string()
                .contains("badge-emerald")
        );
        assert!(action_badge("update").into_string().contains("badge-sky"));
    }

    #[test]
    fn unknown_actions_show_their_raw_name() {
        assert_eq!(action_label("login_failed"), "Failed login");
        assert_eq!(action_label("printer_reboot"), "printer_reboot");
        let badge = action_badge("printer_reboot").into_string();
        assert!(badge.contains("badge-slate") && badge.contains(">printer_reboot<"));
    }

    #[test]
    fn relative_ages_read_like_people_say_them() {
        assert_eq!(relative_age(NOW, NOW), "just now");
        assert_eq!(relative_age(NOW - 59_000, NOW), "just now");
        assert_eq!(relative_age(NOW - MIN, NOW), "1 minute ago");
        assert_eq!(relative_age(NOW - 5 * MIN, NOW), "5 minutes ago");
        assert_eq!(relative_age(NOW - 5 * MIN - 30_000, NOW), "5 minutes ago");
        assert_eq!(relative_age(NOW - 60 * MIN, NOW), "1 hour ago");
        assert_eq!(relative_age(NOW - 2 * 60 * MIN, NOW), "2 hours ago");
        assert_eq!(relative_age(NOW - 3 * DAY_MS, NOW), "3 days ago");
        assert_eq!(relative_age(NOW - 29 * DAY_MS, NOW), "29 days ago");
        assert_eq!(relative_age(NOW - 65 * DAY_MS, NOW), "2 months ago");
        assert_eq!(relative_age(NOW - 800 * DAY_MS, NOW), "2 years ago");
        assert_eq!(relative_age(NOW + 3 * MIN, NOW), "in 3 minutes");
        assert_eq!(relative_age(NOW + 10_000, NOW), "just now");
    }

    #[test]
    fn times_show_utc_with_the_exact_instant_for_scripts() {
        assert_eq!(utc_text(NOW), "2026-01-02 02:50:45 UTC");
        let cell = time_cell(NOW, NOW + 2 * 3_600_000).into_string();
        assert!(
            cell.contains(r#"datetime="2026-01-02T02:50:45.678Z""#),
            "{cell}"
        );
        assert!(cell.contains("title=\"2026-01-02T02:50:45.678Z (UTC)\""));
        assert!(cell.contains("2 hours ago"));
        assert_eq!(day_start(NOW), 1_767_312_000_000);
        assert_eq!(day_start(-1), -DAY_MS);
    }

    #[test]
    fn numbers_group_and_compact() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(compact_count(999), "999");
        assert_eq!(compact_count(1000), "1k");
        assert_eq!(compact_count(1250), "1.2k");
        assert_eq!(compact_count(10_000), "10k");
        assert_eq!(compact_count(2_500_000), "2.5M");
        assert_eq!(entry_count_text(1, true), "1 entry");
        assert_eq!(entry_count_text(1234, true), "1,234 entries");
        assert_eq!(entry_count_text(10_000, false), "at least 10,000 entries");
    }

    #[test]
    fn long_values_are_cut_with_the_rest_behind_a_click() {
        assert_eq!(truncated("short", 10), None);
        assert_eq!(truncated("exactly10!", 10), None);
        assert_eq!(truncated("élan vital", 4), Some("élan"));
        let long = "x".repeat(TRUNCATE_AT) + "TAIL";
        let markup = long_text(&long).into_string();
        assert!(
            markup.starts_with("<details class=\"long-value\">"),
            "{markup}"
        );
        assert!(markup.contains(&format!("{}…", "x".repeat(TRUNCATE_AT))));
        assert!(markup.contains(&format!("{long}</span>")));
        assert!(!long_text("short").into_string().contains("details"));
    }

    #[test]
    fn values_show_absent_null_and_json() {
        assert!(value_cell(None).into_string().contains("—"));
        assert!(
            value_cell(Some(&Value::Null))
                .into_string()
                .contains("null")
        );
        let s = Value::from("Alpha");
        assert!(value_cell(Some(&s)).into_string().contains(">Alpha<"));
        let n = serde_json::json!({"a": [1, 2]});
        let cell = value_cell(Some(&n)).into_string();
        assert!(cell.contains("{&quot;a&quot;:[1,2]}"), "{cell}");
    }

    #[test]
    fn key_ids_are_masked_to_their_first_characters() {
        assert_eq!(
            mask_key_id("key_019a2b3c4d5e6f7081920a1b2c3d4e5f"),
            "key_019a••••"
        );
        assert_eq!(mask_key_id("key_1"), "ke••••");
        assert_eq!(mask_key_id(""), "••••");
        assert!(!mask_key_id("key_019a2b3c4d5e6f70").contains("2b3c"));
    }

    #[test]
    fn long_ids_are_shortened() {
        assert_eq!(short_id("42"), "42");
        assert_eq!(short_id("123456789012"), "123456789012");
        assert_eq!(short_id("01a20098-2011-7173-bda2"), "01a20098…");
    }

    #[test]
    fn the_query_keeps_filters_in_order_and_merges_actor_type_checkboxes() {
        let q = ViewQuery::from_params(&pairs(&[
            ("q", " alpha "),
            ("action", "update"),
            ("actor_type", "user"),
            ("actor_type", "system"),
            ("actor", ""),
            ("format", "csv"),
            ("limit", "10"),
        ]));
        assert_eq!(
            q.query_string(),
            "action=update&actor_type=user%2Csystem&q=alpha&limit=10"
        );
        assert_eq!(q.filters().get("limit"), None);
        assert_eq!(
            q.href("/console/log"),
            format!("/console/log?{}", q.query_string())
        );
        assert_eq!(ViewQuery::default().href("/console/log"), "/console/log");
        let every = ViewQuery::from_params(&pairs(&[
            ("actor_type", "scheduler,api"),
            ("actor_type", "webhook"),
            ("actor_type", "user"),
            ("actor_type", "system"),
        ]));
        assert_eq!(every.get("actor_type"), Some("all"));
        let bad = ViewQuery::from_params(&pairs(&[("actor_type", "robot,user")]));
        assert_eq!(bad.get("actor_type"), Some("user,robot"));
        assert_eq!(bad.page_request().unwrap_err().field, "actor_type");
    }

    #[test]
    fn query_strings_encode_and_decode_any_text() {
        let text = "a b&c=d/é%+<\"x\">";
        let q = ViewQuery::default().with("q", text);
        let back = decode_query(&q.query_string());
        assert_eq!(back, pairs(&[("q", text)]));
        assert_eq!(encode_component("Printer/42"), "Printer%2F42");
        assert_eq!(
            decode_query("?a=x+y&b=%41%4&c"),
            pairs(&[("a", "x y"), ("b", "A%4"), ("c", "")])
        );
    }

    #[test]
    fn filter_round_trip_through_links() {
        let params = pairs(&[
            ("action", "update"),
            ("detailed_action", "printJob.*"),
            ("actor_type", "system"),
            ("actor_type", "api"),
            ("actor", "ada@example.com"),
            ("entity_type", "Printer"),
            ("entity_id", "42/7"),
            ("channel", "hardware"),
            ("outcome", "failure"),
            ("correlation_id", "req 1"),
            ("ip", "203.0.113.7"),
            ("from", "2026-01-01"),
            ("to", "2026-01-31T12:00:00+02:00"),
            ("q", "Renamed & \"moved\""),
            ("limit", "10"),
        ]);
        let query = ViewQuery::from_params(&params);
        let direct = PageRequest::from_params(
            params
                .iter()
                .filter(|(k, _)| k != "actor_type")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain([("actor_type", "system,api")]),
        )
        .unwrap();
        let href = query.href("/console/log");
        let (_, qs) = href.split_once('?').unwrap();
        let reparsed = ViewQuery::from_params(&decode_query(qs));
        assert_eq!(reparsed, query);
        assert_eq!(reparsed.page_request().unwrap(), direct);
    }

    #[test]
    fn active_filters_are_counted_and_the_default_actor_types_are_not() {
        let default = default_actor_types();
        let count = |list: &[(&str, &str)]| {
            active_filter_count(&ViewQuery::from_params(&pairs(list)), &default)
        };
        assert_eq!(count(&[]), 0);
        assert_eq!(count(&[("limit", "10"), ("cursor", "o1.2")]), 0);
        assert_eq!(count(&[("action", "update"), ("q", "xyz")]), 2);
        assert_eq!(count(&[("actor_type", "user,api,webhook,scheduler")]), 0);
        assert_eq!(count(&[("actor_type", "all")]), 1);
        assert_eq!(count(&[("actor_type", "robot")]), 1);
        assert_eq!(count(&[("action", "")]), 0);
        let everyone = ActorType::ALL.to_vec();
        let q = ViewQuery::from_params(&pairs(&[("actor_type", "all")]));
        assert_eq!(active_filter_count(&q, &everyone), 0);
    }

    #[test]
    fn the_chart_labels_every_day_and_flags_lower_bounds() {
        let jan1 = 1_767_225_600_000;
        let days: Vec<DayCount> = (0..3)
            .map(|i| DayCount {
                day: jan1 + i * DAY_MS,
                count: [3, 0, 1500][i as usize],
                exact: i != 2,
            })
            .collect();
        let svg = activity_chart(&days).into_string();
        assert!(svg.contains("<svg"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 3);
        for label in [">3<", ">0<", ">≥1.5k<", ">1<", ">2<", ">Jan<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        assert!(svg.contains("2026-01-03: at least 1,500 entries"));
        assert!(svg.contains("at least 1,503 entries"));
        assert!(svg.contains("2026-01-01 to 2026-01-03"));
        // A month label under the first day only (none of the others is a 1st).
        assert_eq!(svg.matches("month-label").count(), 1);
    }

    #[test]
    fn the_tallest_bar_fills_the_plot_and_others_scale() {
        assert_eq!(bar_height(10, 10), PLOT_HEIGHT);
        assert_eq!(bar_height(5, 10), PLOT_HEIGHT / 2);
        assert_eq!(bar_height(1, 1_000_000), 2);
        assert_eq!(bar_height(0, 10), 1);
    }
}
