//! The audit log page and a record's history page: the data of one organization read from the
//! store and rendered as HTML that works with JavaScript off.
//!
//! The page reads the same query parameters as `GET /v1/events` with the same parser, so a view's
//! URL, an API call and an export select the same entries. What it renders, top to bottom: a
//! toolbar (active-filter count, Clear all, Refresh, Export CSV / JSON), the filter bar (a GET
//! form), the entry count, a chart of entries per day, the table (a row per entry, or per
//! correlated group on the page, plus an expandable details row), and Newer / Older pagination
//! with a rows-per-page choice.
//!
//! Entries of one correlation id (one request that changed several things) that fall on the same
//! page are one row, as Printago's audit log shows them: the group's first entry with the group's
//! size, "(3)", expanding to every entry of the group with its own changes (`table_rows`).
//! Paging is the store's, entry by entry, so counts and cursors stay those of `GET /v1/events`.
//!
//! An embedded viewer's fixed filters (`fixed`) also narrow the correlated entries a row lists:
//! a viewer never sees an entry outside them, whatever request it shared.
//!
//! The functions return the page's content only; the console's layout wraps it and serves
//! [`LOG_CSS`] and [`LOG_JS`]. Event data is only ever rendered through maud's escaping.

use std::collections::HashMap;

use maud::{Markup, html};
use stele_core::filter::{EventFilter, FilterError, default_actor_types};
use stele_core::params::PageRequest;
use stele_core::query::SearchQuery;
use stele_core::time::{Millis, format_rfc3339};
use stele_core::{Actor, ActorType, Change, Entity, Entry};
use stele_service::access::viewer::FixedFilters;
use stele_store::{Facets, OrgKey, Page, Store, StoreError};

use super::render::{
    DAY_MS, DayCount, ViewQuery, action_badge, active_filter_count, activity_chart, column_heads,
    day_start, encode_component, entry_count_text, group_thousands, is_system_actor, long_text,
    mask_key_id, parse_actor_types, short_id, system_badge, time_cell, truncated, utc_text,
    value_cell,
};

/// The page's stylesheet (badges, the table, old/new values, the chart).
pub const LOG_CSS: &str = include_str!("../assets/log.css");
/// The page's only script: local times on hover, whole-row expansion, auto-submitting selects.
pub const LOG_JS: &str = include_str!("../assets/log.js");

/// The rows-per-page choices, and the default.
pub const ROWS_PER_PAGE: [usize; 4] = [10, 25, 50, 100];
pub const DEFAULT_ROWS: usize = 25;
/// The most correlated entries one row lists (as `GET /v1/events/{id}` does).
pub const MAX_CORRELATED: usize = 100;
/// How many of the chart's per-day counts run at once (SQLite has four read connections; a
/// PostgreSQL pool a few more).
const CHART_CONCURRENT_COUNTS: usize = 4;
/// The chart's span without a date range, and its cap with one.
pub const CHART_DAYS: i64 = 30;
pub const CHART_MAX_DAYS: i64 = 90;
/// Bulk entity ids shown before the rest is folded away.
const BULK_IDS_SHOWN: usize = 50;
/// Characters of the description shown on the line that expands a row.
const SUMMARY_CHARS: usize = 140;

#[derive(Debug, thiserror::Error)]
pub enum LogPageError {
    /// The store failed (`Unavailable` is worth a 503 and a retry).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the audit log page lives under the console's base path.
pub fn log_path(base_path: &str) -> String {
    format!("{}/log", base_path.trim_end_matches('/'))
}

/// Where a record's history page lives: `{base}/entities/{type}/{id}`, each segment encoded.
pub fn entity_path(base_path: &str, entity_type: &str, entity_id: &str) -> String {
    format!(
        "{}/entities/{}/{}",
        base_path.trim_end_matches('/'),
        encode_component(entity_type),
        encode_component(entity_id)
    )
}

/// Where the session-authenticated export lives: `{base}/export?format=…&<filters>`.
pub fn export_href(base_path: &str, format: &str, filters: &ViewQuery) -> String {
    let base = base_path.trim_end_matches('/');
    let query = filters.filters().query_string();
    if query.is_empty() {
        format!("{base}/export?format={format}")
    } else {
        format!("{base}/export?format={format}&{query}")
    }
}

/// The organization's audit log page for the query parameters `params` (those of
/// `GET /v1/events`; repeated `actor_type` values, as the filter form's checkboxes send them, are
/// merged). Invalid parameters render the page with an error naming the parameter. `fixed`: an
/// embedded viewer's fixed filters (already applied to `params`), which correlated entries obey
/// too.
pub async fn audit_log(
    store: &dyn Store,
    org: OrgKey,
    params: &[(String, String)],
    now: Millis,
    base_path: &str,
    fixed: Option<&FixedFilters>,
) -> Result<Markup, LogPageError> {
    let view = View {
        base: base_path.trim_end_matches('/'),
        record: None,
        now,
        fixed,
    };
    render_view(store, org, view, ViewQuery::from_params(params)).await
}

/// A record's history (`/console/entities/{type}/{id}`): every entry naming it as its primary
/// entity or among a bulk action's ids, with the same filters, where System actors are included
/// unless `actor_type` says otherwise (as `GET /v1/entities/{type}/{id}/events` does).
pub async fn entity_history(
    store: &dyn Store,
    org: OrgKey,
    (entity_type, entity_id): (&str, &str),
    params: &[(String, String)],
    now: Millis,
    base_path: &str,
    fixed: Option<&FixedFilters>,
) -> Result<Markup, LogPageError> {
    let view = View {
        base: base_path.trim_end_matches('/'),
        record: Some((entity_type, entity_id)),
        now,
        fixed,
    };
    let query = ViewQuery::from_params(params).without(&["entity_type", "entity_id"]);
    render_view(store, org, view, query).await
}

/// One entry's details as its row expands to them, correlated entries included (within `fixed`,
/// an embedded viewer's fixed filters), for the entry's own page (`{base}/entries/{id}`).
pub async fn entry_details_page(
    store: &dyn Store,
    org: OrgKey,
    entry: &Entry,
    now: Millis,
    base_path: &str,
    fixed: Option<&FixedFilters>,
) -> Result<Markup, LogPageError> {
    let base = base_path.trim_end_matches('/');
    let correlated = gather_correlated(store, org, std::slice::from_ref(entry), fixed).await?;
    Ok(entry_details(base, entry, correlated.get(&entry.id), now))
}

/// The notice over the audit log while the organization's recording is off, so that no one reads
/// a quiet log as a quiet application. `settings_href`: a link to turn it on, for a member who may.
pub fn recording_off_banner(settings_href: Option<&str>) -> Markup {
    html! {
        div.alert.alert-warning.recording-off role="status" {
            strong { "Recording is off." }
            " Events your applications send are not stored; entries already here stay, and "
            "Stele's own activity is still recorded."
            @if let Some(href) = settings_href {
                " " a href=(href) { "Turn recording on in Settings" } "."
            }
        }
    }
}

/// Where one entry's own page lives: `{base}/entries/{id}`.
pub fn entry_path(base_path: &str, id: &str) -> String {
    format!(
        "{}/entries/{}",
        base_path.trim_end_matches('/'),
        encode_component(id)
    )
}

/// Which page is rendered, and where it lives.
struct View<'a> {
    base: &'a str,
    /// The record of a history page (type, id); `None` for the audit log.
    record: Option<(&'a str, &'a str)>,
    now: Millis,
    /// An embedded viewer's fixed filters: the correlated entries shown stay within them.
    fixed: Option<&'a FixedFilters>,
}

impl View<'_> {
    fn self_path(&self) -> String {
        match self.record {
            None => log_path(self.base),
            Some((t, id)) => entity_path(self.base, t, id),
        }
    }

    fn default_actor_types(&self) -> Vec<ActorType> {
        match self.record {
            None => default_actor_types(),
            Some(_) => ActorType::ALL.to_vec(),
        }
    }

    /// The query an export of this view needs: its filters, plus the record and its actor types
    /// on a history page (the export's own default leaves System out).
    fn export_query(&self, query: &ViewQuery) -> ViewQuery {
        let mut q = query.filters();
        if let Some((t, id)) = self.record {
            q.set("entity_type", t);
            q.set("entity_id", id);
            // The export's own default leaves System out; a search term may choose instead.
            let searched = q
                .get("q")
                .and_then(|text| SearchQuery::parse(text).ok())
                .is_some_and(|s| s.sets("actor_type"));
            if q.get("actor_type").is_none() && !searched {
                q.set("actor_type", "all");
            }
        }
        q
    }

    /// The page request the query asks for, with the page's defaults.
    fn page_request(&self, query: &ViewQuery) -> Result<PageRequest, FilterError> {
        let mut request = match self.record {
            None => query.page_request()?,
            Some((t, id)) => {
                PageRequest::for_record(query.pairs().map(|(k, v)| (k as &str, v)), t, id)?
            }
        };
        if query.get("limit").is_none() {
            request.limit = DEFAULT_ROWS;
        }
        Ok(request)
    }
}

/// The other entries of a row's correlation id, newest first.
#[derive(Debug, Clone, Default)]
struct Correlated {
    entries: Vec<Entry>,
    /// More than [`MAX_CORRELATED`] others exist.
    more: bool,
}

/// What a valid query reads from the store.
struct LogData {
    page: Page,
    /// The correlated entries of each entry on the page, by entry id.
    correlated: HashMap<String, Correlated>,
    chart: Vec<DayCount>,
    /// Whether a correlation id's entries on the page are one row. Not when the view lists one
    /// correlation id (the link a group's details give): there each entry is its own row.
    collapse: bool,
}

/// One row of the table: the entry it shows, and the newer entries of its correlation id on the
/// same page that it stands for (newest first), folded into it.
struct TableRow<'a> {
    entry: &'a Entry,
    folded: Vec<&'a Entry>,
}

impl TableRow<'_> {
    /// The ids of every entry on the page the row stands for, newest first.
    fn entry_ids(&self) -> String {
        let ids: Vec<&str> = self
            .folded
            .iter()
            .chain(std::iter::once(&self.entry))
            .map(|e| e.id.as_str())
            .collect();
        ids.join(" ")
    }
}

/// The page's rows, newest first. With `collapse`, the entries of one correlation id on the page
/// are one row: the group's primary entry is its earliest on the page (the last in this
/// newest-first order), because that is the one the request started with (the slot assignment,
/// not the print job it then updated), and the row sits where that entry sits, so the times in
/// the Time column stay in order. The group's newer entries on the page are folded into it.
///
/// Paging is by entries, not rows, so a group may reach over a page boundary: each page then has
/// one row for the group's entries on that page, and each such row's details list the whole group.
/// A page may so show fewer rows than its limit; its counts and Newer/Older cursors are the
/// store's, exactly those of `GET /v1/events` for the same filters.
fn table_rows(entries: &[Entry], collapse: bool) -> Vec<TableRow<'_>> {
    // A fn, not a closure: the id borrows from the entry, which a closure's signature cannot say.
    fn group(e: &Entry, collapse: bool) -> Option<&str> {
        e.event
            .context
            .correlation_id
            .as_deref()
            .filter(|_| collapse)
    }
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(cid) = group(entry, collapse) {
            last.insert(cid, i);
        }
    }
    let mut rows = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let folded = match group(entry, collapse) {
            None => Vec::new(),
            // A newer entry of a group: shown in the group's row further down.
            Some(cid) if last[cid] != i => continue,
            Some(cid) => entries[..i]
                .iter()
                .filter(|e| group(e, collapse) == Some(cid))
                .collect(),
        };
        rows.push(TableRow { entry, folded });
    }
    rows
}

async fn render_view(
    store: &dyn Store,
    org: OrgKey,
    view: View<'_>,
    mut query: ViewQuery,
) -> Result<Markup, LogPageError> {
    let facets = store.facets(org).await?;
    let request = view.page_request(&query);
    let data = match &request {
        Err(_) => None,
        Ok(request) => {
            // The page's default actor types need no parameter: links stay short.
            if query
                .get("actor_type")
                .and_then(parse_actor_types)
                .is_some_and(|types| types == view.default_actor_types())
            {
                query.remove("actor_type");
            }
            let page = store.list(org, request).await?;
            let correlated = gather_correlated(store, org, &page.entries, view.fixed).await?;
            let chart = gather_chart(store, org, &request.filter, view.now).await?;
            Some(LogData {
                page,
                correlated,
                chart,
                collapse: request.filter.correlation_id.is_none(),
            })
        }
    };
    Ok(render_page(&view, &query, &facets, &request, data.as_ref()))
}

/// The other entries of each entry's correlation id (within `fixed`, an embedded viewer's fixed
/// filters), by entry id: one store read per correlation id on the page.
async fn gather_correlated(
    store: &dyn Store,
    org: OrgKey,
    entries: &[Entry],
    fixed: Option<&FixedFilters>,
) -> Result<HashMap<String, Correlated>, StoreError> {
    let mut groups: HashMap<String, Vec<Entry>> = HashMap::new();
    for entry in entries {
        let Some(cid) = entry.event.context.correlation_id.as_deref() else {
            continue;
        };
        if !groups.contains_key(cid) {
            // Itself, up to MAX_CORRELATED others, and one more to know whether more exist.
            let mut group = store.correlated(org, cid, MAX_CORRELATED + 2).await?;
            // As `GET /v1/events/{id}` does for a viewer token: what the token may not see is
            // not listed, whatever request it shared (a per-record view shows no other record).
            if let Some(fixed) = fixed {
                group.retain(|e| fixed.admits(e));
            }
            groups.insert(cid.to_string(), group);
        }
    }
    let mut out = HashMap::new();
    for entry in entries {
        let Some(cid) = entry.event.context.correlation_id.as_deref() else {
            continue;
        };
        let mut others: Vec<Entry> = groups[cid]
            .iter()
            .filter(|e| e.id != entry.id)
            .cloned()
            .collect();
        let more = others.len() > MAX_CORRELATED;
        others.truncate(MAX_CORRELATED);
        out.insert(
            entry.id.clone(),
            Correlated {
                entries: others,
                more,
            },
        );
    }
    Ok(out)
}

/// The days the chart shows: the last [`CHART_DAYS`] up to today, or the filter's From/To range
/// (its most recent [`CHART_MAX_DAYS`] days when longer). Returns the first day and the count.
fn chart_days(filter: &EventFilter, now: Millis) -> (Millis, i64) {
    let last = day_start(filter.to.map_or(now, |to| to - 1));
    let first = match filter.from {
        Some(from) => day_start(from).min(last),
        None => last - (CHART_DAYS - 1) * DAY_MS,
    };
    let days = ((last - first) / DAY_MS + 1).min(CHART_MAX_DAYS);
    (last - (days - 1) * DAY_MS, days)
}

async fn gather_chart(
    store: &dyn Store,
    org: OrgKey,
    filter: &EventFilter,
    now: Millis,
) -> Result<Vec<DayCount>, StoreError> {
    use futures_util::{StreamExt, TryStreamExt};
    let (first, days) = chart_days(filter, now);
    // One count per day, a few at a time: each is capped in time by the store, and the page waits
    // for the slowest group rather than for the sum of 30.
    futures_util::stream::iter(0..days)
        .map(|i| async move {
            let day = first + i * DAY_MS;
            let mut f = filter.clone();
            f.from = Some(filter.from.map_or(day, |from| from.max(day)));
            f.to = Some(filter.to.map_or(day + DAY_MS, |to| to.min(day + DAY_MS)));
            let (count, exact) = if f.from < f.to {
                store.count(org, &f).await?
            } else {
                (0, true)
            };
            Ok::<_, StoreError>(DayCount { day, count, exact })
        })
        .buffered(CHART_CONCURRENT_COUNTS)
        .try_collect()
        .await
}

mod details;
mod filter_bar;
mod page;
mod table;
#[cfg(test)]
mod tests;

use details::*;
use filter_bar::*;
use page::*;
use table::*;
