//! The audit log page and a record's history page: the data of one organization read from the
//! store and rendered as HTML that works with JavaScript off.
//!
//! The page reads the same query parameters as `GET /v1/events` with the same parser, so a view's
//! URL, an API call and an export select the same entries. What it renders, top to bottom: a
//! toolbar (active-filter count, Clear all, Refresh, Export CSV / JSON), the filter bar (a GET
//! form), the entry count, a chart of entries per day, the table (each entry a row plus an
//! expandable details row), and Newer / Older pagination with a rows-per-page choice.
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
use stele_store::{Facets, OrgKey, Page, Store, StoreError};

use super::render::{
    DAY_MS, DayCount, ViewQuery, action_badge, active_filter_count, activity_chart, column_heads,
    day_start, encode_component, entry_count_text, group_thousands, is_system_actor, long_text,
    mask_key_id, parse_actor_types, short_id, system_badge, time_cell, truncated, utc_text,
    value_cell,
};

/// The page's stylesheet (badges, the table, old/new values, the chart).
pub const LOG_CSS: &str = include_str!("assets/log.css");
/// The page's only script: local times on hover, whole-row expansion, auto-submitting selects.
pub const LOG_JS: &str = include_str!("assets/log.js");

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
/// merged). Invalid parameters render the page with an error naming the parameter.
pub async fn audit_log(
    store: &dyn Store,
    org: OrgKey,
    params: &[(String, String)],
    now: Millis,
    base_path: &str,
) -> Result<Markup, LogPageError> {
    let view = View {
        base: base_path.trim_end_matches('/'),
        record: None,
        now,
    };
    render_view(store, org, view, ViewQuery::from_params(params)).await
}

/// A record's history (`/console/entities/{type}/{id}`): every entry naming it as its primary
/// entity or among a bulk action's ids, with the same filters, where System actors are included
/// unless `actor_type` says otherwise (as `GET /v1/entities/{type}/{id}/events` does).
pub async fn entity_history(
    store: &dyn Store,
    org: OrgKey,
    entity_type: &str,
    entity_id: &str,
    params: &[(String, String)],
    now: Millis,
    base_path: &str,
) -> Result<Markup, LogPageError> {
    let view = View {
        base: base_path.trim_end_matches('/'),
        record: Some((entity_type, entity_id)),
        now,
    };
    let query = ViewQuery::from_params(params).without(&["entity_type", "entity_id"]);
    render_view(store, org, view, query).await
}

/// One entry's details as its row expands to them, correlated entries included, for the entry's
/// own page (`{base}/entries/{id}`).
pub async fn entry_details_page(
    store: &dyn Store,
    org: OrgKey,
    entry: &Entry,
    now: Millis,
    base_path: &str,
) -> Result<Markup, LogPageError> {
    let base = base_path.trim_end_matches('/');
    let correlated = gather_correlated(store, org, std::slice::from_ref(entry)).await?;
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
            let correlated = gather_correlated(store, org, &page.entries).await?;
            let chart = gather_chart(store, org, &request.filter, view.now).await?;
            Some(LogData {
                page,
                correlated,
                chart,
            })
        }
    };
    Ok(render_page(&view, &query, &facets, &request, data.as_ref()))
}

async fn gather_correlated(
    store: &dyn Store,
    org: OrgKey,
    entries: &[Entry],
) -> Result<HashMap<String, Correlated>, StoreError> {
    let mut groups: HashMap<String, Vec<Entry>> = HashMap::new();
    for entry in entries {
        let Some(cid) = entry.event.context.correlation_id.as_deref() else {
            continue;
        };
        if !groups.contains_key(cid) {
            // Itself, up to MAX_CORRELATED others, and one more to know whether more exist.
            let group = store.correlated(org, cid, MAX_CORRELATED + 2).await?;
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

// --- rendering -----------------------------------------------------------------------------------

/// People's names for the parameters, for error messages.
fn parameter_label(field: &str) -> &str {
    match field {
        "action" => "Action",
        "detailed_action" => "Detailed action",
        "actor_type" => "Actor type",
        "actor" => "Actor",
        "entity_type" => "Entity type",
        "entity_id" => "Entity ID",
        "channel" => "Channel",
        "outcome" => "Outcome",
        "correlation_id" => "Correlation ID",
        "ip" => "IP",
        "from" => "From",
        "to" => "To",
        "q" => "Search",
        "limit" => "Rows per page",
        "cursor" => "Page position",
        other => other,
    }
}

fn render_page(
    view: &View<'_>,
    query: &ViewQuery,
    facets: &Facets,
    request: &Result<PageRequest, FilterError>,
    data: Option<&LogData>,
) -> Markup {
    let self_path = view.self_path();
    let defaults = view.default_actor_types();
    let active = active_filter_count(query, &defaults);
    let error = request.as_ref().err();
    // Clear all keeps the page size, unless the page size is what is wrong.
    let cleared = match error {
        Some(_) => self_path.clone(),
        None => query
            .without(&["cursor"])
            .filters_cleared()
            .href(&self_path),
    };
    let export = view.export_query(query);
    let record_name = data.and_then(|d| record_name(view, &d.page.entries));
    html! {
        section.stele-log aria-labelledby="log-title" {
            header.log-header {
                @match view.record {
                    None => h1 #log-title { "Audit log" },
                    Some((t, id)) => {
                        p.breadcrumb { a href=(log_path(view.base)) { "Audit log" } " › History" }
                        h1 #log-title {
                            "History of " span.entity-type { (t) } " "
                            @match record_name {
                                Some(name) => { (name) " " span.muted { "(" (id) ")" } },
                                None => code { (id) },
                            }
                        }
                    }
                }
                nav.toolbar aria-label="Audit log actions" {
                    @if active > 0 {
                        span.filter-status {
                            span.count-badge { (active) }
                            @if active == 1 { " filter active" } @else { " filters active" }
                        }
                    }
                    @if active > 0 || error.is_some() {
                        a.button.clear-all href=(cleared) { "Clear all" }
                    }
                    a.button.refresh href=(query.href(&self_path)) { "Refresh" }
                    a.button.export href=(export_href(view.base, "csv", &export)) { "Export CSV" }
                    a.button.export href=(export_href(view.base, "json", &export)) { "Export JSON" }
                }
            }
            @if let Some(e) = error {
                div.alert.alert-error role="alert" {
                    strong {
                        "The " (parameter_label(&e.field)) " filter (" code { (e.field) } ") is not valid: "
                    }
                    (e.message) ". "
                    "Correct it below, or " a href=(self_path) { "clear all filters" } "."
                }
            }
            (filter_bar(view, query, facets, request, active))
            @if let (Some(data), Ok(request)) = (data, request) {
                p.entry-count aria-live="polite" {
                    (entry_count_text(data.page.total, data.page.total_exact))
                    @if view.record.is_none() && !request.filter.actor_types.contains(&ActorType::System) {
                        span.muted { " (System actors hidden)" }
                    }
                }
                (activity_chart(&data.chart))
                (entries_table(view, query, &data.page, &data.correlated, &self_path))
                (pagination(query, &data.page, request.limit, &self_path))
            }
        }
    }
}

/// A history page's record name, from the newest entry on the page that names it.
fn record_name<'a>(view: &View<'_>, entries: &'a [Entry]) -> Option<&'a str> {
    let (t, id) = view.record?;
    entries.iter().find_map(|e| {
        e.event
            .entity
            .as_ref()
            .filter(|x| x.kind == t && x.id.as_deref() == Some(id))
            .and_then(|x| x.name.as_deref())
    })
}

fn filter_bar(
    view: &View<'_>,
    query: &ViewQuery,
    facets: &Facets,
    request: &Result<PageRequest, FilterError>,
    active: usize,
) -> Markup {
    let invalid = request.as_ref().err().map(|e| e.field.as_str());
    let checked: Vec<ActorType> = match request {
        Ok(r) => r.filter.actor_types.clone(),
        Err(_) => query
            .get("actor_type")
            .and_then(parse_actor_types)
            .unwrap_or_else(|| view.default_actor_types()),
    };
    // Filters a term in the search box sets (`action:update`) show the value in effect, disabled
    // (so the form never sends a second value for them) and say where it comes from.
    let searched = searched_parameters(query);
    let field = |name: &str| {
        let searched = searched.contains(&name);
        Field {
            name: name.to_string(),
            value: match (searched, request) {
                (true, Ok(r)) => filter_value(&r.filter, name),
                _ => query.get(name).map(str::to_string),
            },
            invalid: invalid == Some(name),
            searched,
        }
    };
    let actor_types_searched = searched.contains(&"actor_type");
    html! {
        details.filter-bar open {
            summary {
                "Filters"
                @if active > 0 {
                    " " span.count-badge aria-label=(format!("{active} active")) { (active) }
                }
            }
            form.filters method="get" action=(view.self_path()) {
                (text_input(&field("q"), "Search", "search", r#"e.g. action:update "paper jam""#, None))
                (select(&field("action"), "Action", "All actions", &facets.actions))
                (text_input(&field("detailed_action"), "Detailed action", "text",
                    "e.g. printJob.retry or printJob.*", Some("f-detailed-actions")))
                datalist #f-detailed-actions {
                    @for d in &facets.detailed_actions { option value=(d) {} }
                }
                fieldset.actor-types aria-invalid=[(invalid == Some("actor_type")).then_some("true")]
                    disabled[actor_types_searched] {
                    legend { "Actor type" }
                    @for t in ActorType::ALL {
                        label.checkbox {
                            input type="checkbox" name="actor_type" value=(t.as_str())
                                checked[checked.contains(&t)];
                            " " (actor_type_label(t))
                        }
                    }
                    @if actor_types_searched { p.hint { (SET_BY_SEARCH) } }
                }
                (text_input(&field("actor"), "Actor", "text", "email or id", None))
                @if view.record.is_none() {
                    (select(&field("entity_type"), "Entity type", "All types", &facets.entity_types))
                    (text_input(&field("entity_id"), "Entity ID", "text", "matches bulk ids too", None))
                }
                (select(&field("channel"), "Channel", "All channels", &facets.channels))
                (select(&field("outcome"), "Outcome", "Any outcome",
                    &["success".to_string(), "failure".to_string()]))
                (date_input(&field("from"), "From"))
                (date_input(&field("to"), "To"))
                (text_input(&field("correlation_id"), "Correlation ID", "text", "", None))
                (text_input(&field("ip"), "IP", "text", "", None))
                @if let Some(limit) = query.get("limit") {
                    input type="hidden" name="limit" value=(limit);
                }
                div.form-actions {
                    button type="submit" { "Apply filters" }
                }
            }
        }
    }
}

fn actor_type_label(t: ActorType) -> &'static str {
    match t {
        ActorType::User => "User",
        ActorType::Api => "API",
        ActorType::Webhook => "Webhook",
        ActorType::System => "System",
        ActorType::Scheduler => "Scheduler",
    }
}

/// One form control's parameter, current value and validity.
struct Field {
    name: String,
    value: Option<String>,
    invalid: bool,
    /// Set by a term of the search box: shown, not editable here.
    searched: bool,
}

/// Under a control whose filter a search term sets.
const SET_BY_SEARCH: &str = "Set in Search";

/// The query parameters whose filters the search box's terms set (none if it does not parse: the
/// page then shows the error).
fn searched_parameters(query: &ViewQuery) -> Vec<&'static str> {
    query
        .get("q")
        .and_then(|q| SearchQuery::parse(q).ok())
        .map(|s| s.settings.iter().map(|(_, s)| s.parameter()).collect())
        .unwrap_or_default()
}

/// A filter's value in effect, written as its query parameter would be.
fn filter_value(f: &EventFilter, name: &str) -> Option<String> {
    use stele_core::filter::DetailedActionMatch;
    match name {
        "action" => f.action.clone(),
        "detailed_action" => f.detailed_action.as_ref().map(|m| match m {
            DetailedActionMatch::Exact(v) => v.clone(),
            DetailedActionMatch::Prefix(p) => format!("{p}*"),
        }),
        "actor" => f.actor.clone(),
        "entity_type" => f.entity_type.clone(),
        "entity_id" => f.entity_id.clone(),
        "channel" => f.channel.clone(),
        "outcome" => f.outcome.map(|o| o.as_str().to_string()),
        "correlation_id" => f.correlation_id.clone(),
        "ip" => f.ip.clone(),
        "from" => f.from.map(format_rfc3339),
        "to" => f.to.map(format_rfc3339),
        _ => None,
    }
}

impl Field {
    fn id(&self) -> String {
        format!("f-{}", self.name.replace('_', "-"))
    }
}

fn text_input(
    field: &Field,
    label: &str,
    kind: &str,
    placeholder: &str,
    list: Option<&str>,
) -> Markup {
    html! {
        div.field {
            label for=(field.id()) { (label) }
            input type=(kind) id=(field.id()) name=(field.name) value=[field.value.as_deref()]
                placeholder=[(!placeholder.is_empty()).then_some(placeholder)] list=[list]
                aria-invalid=[field.invalid.then_some("true")] disabled[field.searched];
            @if field.searched { p.hint { (SET_BY_SEARCH) } }
        }
    }
}

/// A date input when the value is a date (or absent); a text input keeps any other value the URL
/// holds (an RFC 3339 instant) instead of a date picker silently dropping it.
fn date_input(field: &Field, label: &str) -> Markup {
    let is_date = field
        .value
        .as_deref()
        .is_none_or(|v| v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok());
    let kind = if is_date { "date" } else { "text" };
    text_input(field, label, kind, "", None)
}

fn select(field: &Field, label: &str, any: &str, options: &[String]) -> Markup {
    let current = field.value.as_deref();
    let missing = current.filter(|c| !options.iter().any(|o| o == c));
    html! {
        div.field {
            label for=(field.id()) { (label) }
            select id=(field.id()) name=(field.name) aria-invalid=[field.invalid.then_some("true")]
                disabled[field.searched] {
                option value="" { (any) }
                @for o in options {
                    option value=(o) selected[current == Some(o.as_str())] { (o) }
                }
                @if let Some(m) = missing {
                    option value=(m) selected { (m) }
                }
            }
            @if field.searched { p.hint { (SET_BY_SEARCH) } }
        }
    }
}

fn entries_table(
    view: &View<'_>,
    query: &ViewQuery,
    page: &Page,
    correlated: &HashMap<String, Correlated>,
    self_path: &str,
) -> Markup {
    html! {
        table.log-table {
            caption.visually-hidden { "Audit log entries, newest first" }
            (column_heads(&["Time", "Actor", "Action", "Detailed action", "Entity", "IP"], false))
            @if page.entries.is_empty() {
                tbody {
                    tr {
                        td.empty colspan="6" {
                            "No entries match these filters."
                            @if query.get("cursor").is_some() {
                                " "
                                a href=(query.without(&["cursor"]).href(self_path)) {
                                    "Back to the newest entries"
                                }
                            }
                        }
                    }
                }
            }
            @for entry in &page.entries {
                (entry_rows(view.base, entry, correlated.get(&entry.id), view.now))
            }
        }
    }
}

/// One entry: its row, and the row below that expands to its details (a `<details>`, so it
/// works without JavaScript; `log.js` also lets a click anywhere on the row toggle it).
fn entry_rows(base: &str, entry: &Entry, correlated: Option<&Correlated>, now: Millis) -> Markup {
    let e = &entry.event;
    let others = correlated.map_or(0, |c| c.entries.len());
    let more = correlated.is_some_and(|c| c.more);
    let summary = e
        .description
        .as_deref()
        .map(|d| match truncated(d, SUMMARY_CHARS) {
            Some(head) => format!("{head}…"),
            None => d.to_string(),
        });
    html! {
        tbody.entry #(format!("entry-{}", entry.id)) {
            tr.log-row.failure[e.outcome == stele_core::Outcome::Failure] {
                td.time { (time_cell(e.occurred_at, now)) }
                td.actor { (actor_cell(&e.actor)) }
                td.action {
                    (action_badge(&e.action))
                    @if others > 0 {
                        " "
                        span.correlated-count title=(correlated_title(others, more)) {
                            "(" (others) @if more { "+" } ")"
                        }
                    }
                    @if e.outcome == stele_core::Outcome::Failure {
                        " " span.badge.badge-rose.outcome { "failed" }
                    }
                }
                td.detailed-action {
                    @match &e.detailed_action {
                        Some(d) => code { (d) },
                        None => span.absent { "—" },
                    }
                }
                td.entity { (entity_cell(base, e.entity.as_ref(), e.entity_ids.len())) }
                td.ip {
                    @match &e.context.ip {
                        Some(ip) => (ip),
                        None => span.absent { "—" },
                    }
                }
            }
            tr.details-row {
                td colspan="6" {
                    details.entry-details {
                        summary {
                            @match &summary {
                                Some(s) => span.description { (s) },
                                None => span.description.muted { "Details" },
                            }
                        }
                        (entry_details(base, entry, correlated, now))
                    }
                }
            }
        }
    }
}

fn correlated_title(others: usize, more: bool) -> String {
    match (others, more) {
        (_, true) => format!("More than {MAX_CORRELATED} other entries share this correlation id"),
        (1, false) => "1 other entry shares this correlation id".into(),
        (n, false) => format!("{n} other entries share this correlation id"),
    }
}

fn actor_cell(actor: &Actor) -> Markup {
    html! {
        @if is_system_actor(actor.kind) {
            (system_badge(actor.kind))
            @if let Some(name) = actor.name.as_deref().or(actor.id.as_deref()) {
                " " span.actor-name.muted { (name) }
            }
        } @else {
            @let primary = actor.name.as_deref().or(actor.email.as_deref()).or(actor.id.as_deref());
            span.actor-name { (primary.unwrap_or("Unknown")) }
            @if actor.kind != ActorType::User {
                " " span.actor-type { (actor_type_label(actor.kind)) }
            }
            @if let (Some(_), Some(email)) = (&actor.name, &actor.email) {
                br;
                span.actor-email { (email) }
            }
        }
    }
}

fn entity_cell(base: &str, entity: Option<&Entity>, bulk: usize) -> Markup {
    html! {
        @match entity {
            None => span.absent { "—" },
            Some(x) => {
                span.entity-type { (x.kind) }
                " "
                @let label = x.name.clone().or_else(|| x.id.as_deref().map(|id| short_id(id).into_owned()));
                @match (&x.id, label) {
                    (Some(id), Some(label)) => a.entity-link href=(entity_path(base, &x.kind, id))
                        title=(format!("History of {} {id}", x.kind)) { (label) },
                    (None, Some(label)) => span { (label) },
                    (_, None) => {},
                }
            }
        }
        @if bulk > 0 {
            " " span.bulk-count { "(" (group_thousands(bulk as u64)) " ids)" }
        }
    }
}

fn entry_details(
    base: &str,
    entry: &Entry,
    correlated: Option<&Correlated>,
    now: Millis,
) -> Markup {
    let e = &entry.event;
    let c = &e.context;
    html! {
        div.details-body {
            section.context {
                h3 { "Request context" }
                dl.kv {
                    dt { "IP" } dd { (c.ip.as_deref().unwrap_or("—")) }
                    dt { "User agent" } dd { (long_text(c.user_agent.as_deref().unwrap_or("—"))) }
                    @if let Some(key) = &c.api_key_id {
                        dt { "API key" } dd { code { (mask_key_id(key)) } }
                    }
                    @if let Some(imp) = &c.impersonator {
                        dt { "Impersonated by" }
                        dd {
                            (imp.email.as_deref().or(imp.id.as_deref()).unwrap_or("—"))
                            @if let (Some(_), Some(id)) = (&imp.email, &imp.id) {
                                " " span.muted { "(" (id) ")" }
                            }
                        }
                    }
                    @if let Some(reason) = &c.reason { dt { "Reason" } dd { (long_text(reason)) } }
                    @if let Some(cid) = &c.correlation_id {
                        dt { "Correlation ID" }
                        dd {
                            a href=(correlation_href(base, cid)) {
                                code { (cid) }
                            }
                        }
                    }
                    @if let Some(r) = &c.request_id { dt { "Request ID" } dd { code { (r) } } }
                    @if let Some(s) = &c.source { dt { "Source" } dd { (s) } }
                    @if let Some(l) = &c.location { dt { "Location" } dd { (l) } }
                }
            }
            section.facts {
                h3 { "Entry" }
                dl.kv {
                    dt { "Time" } dd { (format_rfc3339(e.occurred_at)) }
                    @if let Some(d) = &e.description { dt { "Description" } dd { (long_text(d)) } }
                    dt { "Actor" }
                    dd {
                        (actor_type_label(e.actor.kind))
                        @for part in [&e.actor.name, &e.actor.email, &e.actor.id].into_iter().flatten() {
                            " · " (part)
                        }
                    }
                    @if let Some(x) = &e.entity {
                        dt { "Entity" }
                        dd {
                            (x.kind)
                            @if let Some(id) = &x.id { " " code { (id) } }
                            @if let Some(name) = &x.name { " · " (name) }
                        }
                    }
                    dt { "Channel" } dd { (e.channel) }
                    dt { "Outcome" } dd { (e.outcome.as_str()) }
                    dt { "Entry ID" }
                    dd {
                        a.entry-link href=(entry_path(base, &entry.id))
                            title="This entry on its own page" { code { (entry.id) } }
                        " · seq " (entry.seq)
                    }
                    dt { "Recorded" } dd { (utc_text(entry.recorded_at)) }
                }
            }
            @if !e.changes.is_empty() {
                section.changes {
                    h3 { "Changes" }
                    (changes_table(&e.changes))
                }
            }
            @if !e.entity_ids.is_empty() {
                section.bulk-ids {
                    h3 { "Entity IDs (" (group_thousands(e.entity_ids.len() as u64)) ")" }
                    ul.id-list {
                        @for id in e.entity_ids.iter().take(BULK_IDS_SHOWN) { li { code { (id) } } }
                    }
                    @if e.entity_ids.len() > BULK_IDS_SHOWN {
                        details.more-ids {
                            summary {
                                "Show "
                                (group_thousands((e.entity_ids.len() - BULK_IDS_SHOWN) as u64))
                                " more"
                            }
                            ul.id-list {
                                @for id in e.entity_ids.iter().skip(BULK_IDS_SHOWN) { li { code { (id) } } }
                            }
                        }
                    }
                }
            }
            @if !e.metadata.is_empty() {
                section.metadata {
                    h3 { "Metadata" }
                    dl.kv {
                        @for (k, v) in &e.metadata { dt { (k) } dd { (value_cell(Some(v))) } }
                    }
                }
            }
            @if let Some(group) = correlated.filter(|g| !g.entries.is_empty()) {
                section.correlated {
                    h3 { "Correlated entries (" (group.entries.len()) @if group.more { "+" } ")" }
                    ol.correlated-list {
                        @for other in &group.entries {
                            li {
                                div.correlated-head {
                                    (time_cell(other.event.occurred_at, now)) " "
                                    (action_badge(&other.event.action)) " "
                                    @if let Some(d) = &other.event.detailed_action { code { (d) } " " }
                                    (actor_cell(&other.event.actor)) " "
                                    (entity_cell(base, other.event.entity.as_ref(),
                                        other.event.entity_ids.len()))
                                }
                                @if let Some(d) = &other.event.description {
                                    p.description { (long_text(d)) }
                                }
                                @if !other.event.changes.is_empty() { (changes_table(&other.event.changes)) }
                            }
                        }
                    }
                    @if group.more {
                        p.muted { "Showing the newest " (MAX_CORRELATED) "." }
                    }
                }
            }
        }
    }
}

/// Every entry of a correlation id, whoever the actor, on the audit log page.
fn correlation_href(base: &str, correlation_id: &str) -> String {
    ViewQuery::default()
        .with("correlation_id", correlation_id)
        .with("actor_type", "all")
        .href(&log_path(base))
}

/// Field changes: old values in red, new in green. A column is shown only when some change has
/// that side, so a create shows only new values and a delete only old ones.
fn changes_table(changes: &[Change]) -> Markup {
    let show_old = changes.iter().any(|c| c.old.is_some());
    let show_new = changes.iter().any(|c| c.new.is_some());
    html! {
        table.changes {
            thead {
                tr {
                    th scope="col" { "Field" }
                    @if show_old { th scope="col" { "Old value" } }
                    @if show_new { th scope="col" { "New value" } }
                }
            }
            tbody {
                @for c in changes {
                    tr {
                        th scope="row" { code { (c.field) } }
                        @if show_old { td.old { del { (value_cell(c.old.as_ref())) } } }
                        @if show_new { td.new { ins { (value_cell(c.new.as_ref())) } } }
                    }
                }
            }
        }
    }
}

fn pagination(query: &ViewQuery, page: &Page, limit: usize, self_path: &str) -> Markup {
    let at = |c: stele_core::Cursor| query.with("cursor", &c.to_string()).href(self_path);
    html! {
        nav.pagination aria-label="Pages" {
            @match page.prev_cursor {
                Some(c) => a.page-newer rel="prev" href=(at(c)) { "← Newer" },
                None => span.page-newer.disabled aria-disabled="true" { "← Newer" },
            }
            @match page.next_cursor {
                Some(c) => a.page-older rel="next" href=(at(c)) { "Older →" },
                None => span.page-older.disabled aria-disabled="true" { "Older →" },
            }
            span.rows-per-page {
                "Rows per page: "
                @for n in ROWS_PER_PAGE {
                    @if n == limit {
                        strong.rows-current aria-current="true" { (n) }
                    } @else {
                        @let q = if n == DEFAULT_ROWS {
                            query.without(&["cursor", "limit"])
                        } else {
                            query.without(&["cursor"]).with("limit", &n.to_string())
                        };
                        a.rows-choice href=(q.href(self_path)) { (n) }
                    }
                    " "
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde_json::{Value, json};
    use stele_core::{Context, Impersonator, NewEvent};
    use stele_store::conformance::{event, request};
    use stele_store_sqlite::SqliteStore;

    use super::*;
    use crate::console::render::decode_query;

    const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const MINUTE: Millis = 60_000;
    const NOW: Millis = T0 + 2 * DAY_MS + 5 * 3_600_000; // 2026-01-03T05:00:00Z
    const BASE: &str = "/console";
    const EVIL: &str = "<script>alert(1)</script>\"onmouseover=alert(2) x=\"";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        org: OrgKey,
    }

    async fn fixture(events: Vec<NewEvent>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("stele.db")).unwrap());
        let org = store.create_org("acme").await.unwrap().key;
        // Another organization's entries must never show.
        let other = store.create_org("other").await.unwrap().key;
        store
            .append(other, request(vec![described("create", T0, "not yours")]))
            .await
            .unwrap();
        if !events.is_empty() {
            store.append(org, request(events)).await.unwrap();
        }
        Fixture {
            _dir: dir,
            store,
            org,
        }
    }

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    async fn log(f: &Fixture, list: &[(&str, &str)]) -> String {
        audit_log(f.store.as_ref(), f.org, &params(list), NOW, BASE)
            .await
            .unwrap()
            .into_string()
    }

    async fn history(f: &Fixture, t: &str, id: &str, list: &[(&str, &str)]) -> String {
        entity_history(f.store.as_ref(), f.org, t, id, &params(list), NOW, BASE)
            .await
            .unwrap()
            .into_string()
    }

    fn described(action: &str, at: Millis, description: &str) -> NewEvent {
        let mut e = event(action, at);
        e.description = Some(description.to_string());
        e
    }

    fn system(action: &str, at: Millis, description: &str) -> NewEvent {
        let mut e = described(action, at, description);
        e.actor = Actor {
            kind: ActorType::System,
            id: None,
            name: Some("retention".into()),
            email: None,
        };
        e
    }

    fn printer(mut e: NewEvent, id: &str, name: Option<&str>) -> NewEvent {
        e.entity = Some(Entity {
            kind: "Printer".into(),
            id: Some(id.into()),
            name: name.map(str::to_string),
        });
        e
    }

    fn unescape(s: &str) -> String {
        s.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// The `href` of the link whose class list is exactly `class`.
    fn href(html: &str, class: &str) -> Option<String> {
        let at = html.find(&format!("<a class=\"{class}\""))?;
        let tag = &html[at..at + html[at..].find('>')?];
        let start = tag.find("href=\"")? + 6;
        let end = start + tag[start..].find('"')?;
        Some(unescape(&tag[start..end]))
    }

    /// The query parameters of a link.
    fn link_params(href: &str) -> Vec<(String, String)> {
        decode_query(href.split_once('?').map_or("", |(_, q)| q))
    }

    fn rows(html: &str) -> usize {
        html.matches("<tr class=\"log-row").count()
    }

    fn checkbox_checked(html: &str, value: &str) -> bool {
        let marker = format!("name=\"actor_type\" value=\"{value}\"");
        let at = html.find(&marker).expect("checkbox");
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        tag.contains(" checked")
    }

    fn filter_of(list: &[(String, String)]) -> EventFilter {
        PageRequest::from_params(list.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap()
            .filter
    }

    fn evil_event(at: Millis) -> NewEvent {
        let mut e = described("update", at, EVIL);
        e.detailed_action = Some(EVIL.into());
        e.channel = EVIL.into();
        e.actor = Actor {
            kind: ActorType::User,
            id: Some(EVIL.into()),
            name: Some(EVIL.into()),
            email: Some(EVIL.into()),
        };
        e.entity = Some(Entity {
            kind: EVIL.into(),
            id: Some(EVIL.into()),
            name: Some(EVIL.into()),
        });
        e.entity_ids = vec![EVIL.into()];
        e.context = Context {
            ip: Some(EVIL.into()),
            user_agent: Some(EVIL.into()),
            correlation_id: Some(EVIL.into()),
            request_id: Some(EVIL.into()),
            reason: Some(EVIL.into()),
            source: Some(EVIL.into()),
            api_key_id: Some(EVIL.into()),
            impersonator: Some(Impersonator {
                id: Some(EVIL.into()),
                email: Some(EVIL.into()),
            }),
            location: Some(EVIL.into()),
        };
        e.changes = vec![Change {
            field: EVIL.into(),
            old: Some(json!(EVIL)),
            new: Some(json!({ "html": EVIL })),
        }];
        e.metadata = BTreeMap::from([(EVIL.to_string(), Value::from(EVIL))]);
        e
    }

    fn stored(e: NewEvent, seq: i64) -> Entry {
        Entry {
            id: format!("01a20098-2011-7173-bda2-{seq:012}"),
            seq,
            recorded_at: e.occurred_at,
            event: e,
        }
    }

    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script"), "raw <script in {html}");
        assert!(
            !html.contains("\"onmouseover="),
            "raw attribute break-out in {html}"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&quot;onmouseover=alert(2)"));
    }

    #[test]
    fn event_data_is_rendered_as_text_in_a_row_and_its_details() {
        let entry = stored(evil_event(T0), 1);
        let other = stored(evil_event(T0 + 1), 2);
        let group = Correlated {
            entries: vec![other],
            more: false,
        };
        let html = entry_rows(BASE, &entry, Some(&group), NOW).into_string();
        assert_escaped(&html);
        // Entity ids are path segments: encoded, never able to leave the attribute.
        assert!(html.contains("/console/entities/%3Cscript%3E"), "{html}");
    }

    #[tokio::test]
    async fn event_data_is_rendered_as_text_on_the_whole_page() {
        let f = fixture(vec![evil_event(T0), evil_event(T0 + 1)]).await;
        let html = log(&f, &[]).await;
        assert_eq!(rows(&html), 2);
        assert_escaped(&html);
        // The facets (entity types, channels) in the filter bar too.
        let html = log(&f, &[("channel", EVIL), ("q", EVIL), ("actor", EVIL)]).await;
        assert_eq!(rows(&html), 2);
        assert_escaped(&html);
        let html = history(&f, EVIL, EVIL, &[]).await;
        assert_eq!(rows(&html), 2);
        assert_escaped(&html);
    }

    #[tokio::test]
    async fn the_table_shows_time_actor_action_entity_and_ip() {
        let mut e = printer(
            described("update", NOW - 2 * 3_600_000, "Renamed"),
            "42",
            Some("Alpha"),
        );
        e.detailed_action = Some("printer.rename".into());
        e.context.ip = Some("203.0.113.7".into());
        let nameless = printer(
            described("delete", NOW - 5 * MINUTE, "Removed"),
            "01a20098-2011-7173",
            None,
        );
        let f = fixture(vec![e, nameless, system("login", NOW - 3 * DAY_MS, "sys")]).await;
        let html = log(&f, &[]).await;
        assert_eq!(rows(&html), 2, "System actors are hidden by default");
        assert!(html.contains("2 entries"));
        assert!(
            html.contains("datetime=\"2026-01-03T03:00:00.000Z\""),
            "{html}"
        );
        assert!(html.contains("2026-01-03 03:00:00 UTC"));
        assert!(html.contains("2 hours ago") && html.contains("5 minutes ago"));
        assert!(html.contains(">Ada<") && html.contains(">ada@example.com<"));
        assert!(html.contains("badge badge-sky") && html.contains("badge badge-rose"));
        assert!(html.contains("<code>printer.rename</code>"));
        assert!(html.contains(">Alpha</a>"));
        assert!(html.contains("href=\"/console/entities/Printer/42\""));
        assert!(
            html.contains(">01a20098…</a>"),
            "a shortened id when there is no name"
        );
        assert!(html.contains(">203.0.113.7<"));
        assert!(html.contains(">Renamed<"));
        assert!(!html.contains("not yours"));
        let html = log(&f, &[("actor_type", "all")]).await;
        assert_eq!(rows(&html), 3);
        assert!(html.contains("badge badge-system") && html.contains(">System<"));
        assert!(html.contains("3 days ago"));
    }

    #[tokio::test]
    async fn newer_and_older_links_appear_only_where_there_is_more() {
        let events = (0..30)
            .map(|i| described("update", T0 + i * MINUTE, &format!("event {i:02}")))
            .collect();
        let f = fixture(events).await;
        let first = log(&f, &[("limit", "10")]).await;
        assert_eq!(rows(&first), 10);
        assert!(first.find("event 29").unwrap() < first.find("event 28").unwrap());
        assert_eq!(href(&first, "page-newer"), None);
        assert!(first.contains("class=\"page-newer disabled\""));
        let older = href(&first, "page-older").expect("an Older link");
        assert!(older.starts_with("/console/log?"), "{older}");

        let second = log_at(&f, &older).await;
        assert_eq!(rows(&second), 10);
        assert!(second.contains("event 19") && !second.contains("event 20"));
        let back = href(&second, "page-newer").expect("a Newer link");
        let third = log_at(&f, &href(&second, "page-older").expect("an Older link")).await;
        assert!(third.contains("event 00") && third.contains("event 09"));
        assert_eq!(href(&third, "page-older"), None);
        assert!(third.contains("class=\"page-older disabled\""));
        assert!(href(&third, "page-newer").is_some());

        let again = log_at(&f, &back).await;
        assert!(again.contains("event 29") && again.contains("event 20"));
        assert_eq!(rows(&again), 10);
    }

    async fn log_at(f: &Fixture, href: &str) -> String {
        let list = link_params(href);
        let list: Vec<(&str, &str)> = list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        log(f, &list).await
    }

    #[tokio::test]
    async fn rows_per_page_default_to_25_and_the_choice_stays_in_the_url() {
        let events = (0..30).map(|i| event("update", T0 + i)).collect();
        let f = fixture(events).await;
        let html = log(&f, &[]).await;
        assert_eq!(rows(&html), 25);
        assert!(html.contains("<strong class=\"rows-current\" aria-current=\"true\">25</strong>"));
        let choices: Vec<String> = html
            .match_indices("<a class=\"rows-choice\" href=\"")
            .map(|(at, _)| href(&html[at..], "rows-choice").unwrap())
            .collect();
        assert_eq!(
            choices,
            [
                "/console/log?limit=10",
                "/console/log?limit=50",
                "/console/log?limit=100"
            ]
        );
        let html = log(&f, &[("limit", "10"), ("action", "update")]).await;
        assert_eq!(rows(&html), 10);
        assert!(html.contains("<strong class=\"rows-current\" aria-current=\"true\">10</strong>"));
        let older = href(&html, "page-older").unwrap();
        assert!(
            older.contains("limit=10") && older.contains("action=update"),
            "{older}"
        );
        assert!(html.contains("<input type=\"hidden\" name=\"limit\" value=\"10\">"));
        // Choosing 25 again drops the parameter, and any cursor (back to the first page).
        assert!(
            html.contains("href=\"/console/log?action=update\">25</a>"),
            "{html}"
        );
        let page2 = log_at(&f, &older).await;
        assert!(page2.contains("href=\"/console/log?action=update&amp;limit=50\">50</a>"));
    }

    #[tokio::test]
    async fn system_is_unchecked_by_default_and_shown_when_asked_for() {
        let f = fixture(vec![
            described("create", T0, "by a person"),
            system("delete", T0 + 1, "by the system"),
        ])
        .await;
        let html = log(&f, &[]).await;
        assert!(!checkbox_checked(&html, "system"));
        for t in ["user", "api", "webhook", "scheduler"] {
            assert!(checkbox_checked(&html, t), "{t}");
        }
        assert_eq!(rows(&html), 1);
        assert!(!html.contains("by the system"));
        assert!(html.contains("System actors hidden"));

        let html = log(&f, &[("actor_type", "system")]).await;
        assert!(checkbox_checked(&html, "system") && !checkbox_checked(&html, "user"));
        assert_eq!(rows(&html), 1);
        assert!(html.contains("by the system") && html.contains("badge-system"));
        assert!(html.contains("<span class=\"count-badge\">1</span>"));

        // The form sends one parameter per checkbox.
        let html = log(&f, &[("actor_type", "user"), ("actor_type", "system")]).await;
        assert_eq!(rows(&html), 2);

        // Ticking exactly the default is no filter, and links stay short.
        let default = [
            ("actor_type", "user"),
            ("actor_type", "api"),
            ("actor_type", "webhook"),
            ("actor_type", "scheduler"),
        ];
        let html = log(&f, &default).await;
        assert!(!html.contains("count-badge"));
        assert!(!html.contains("actor_type="), "{html}");
    }

    #[tokio::test]
    async fn correlated_rows_show_how_many_others_and_list_them() {
        let mut events = Vec::new();
        for (i, action) in ["update", "create", "delete"].into_iter().enumerate() {
            let mut e = described(action, T0 + i as Millis, &format!("step {i}"));
            e.context.correlation_id = Some("req-1".into());
            e.changes = vec![Change {
                field: format!("field{i}"),
                old: Some(json!("before")),
                new: Some(json!("after")),
            }];
            events.push(e);
        }
        events.push(described("login", T0 + 10, "alone"));
        let f = fixture(events).await;
        let html = log(&f, &[]).await;
        assert_eq!(rows(&html), 4);
        assert_eq!(html.matches("<span class=\"correlated-count\"").count(), 3);
        assert_eq!(html.matches(">(2)</span>").count(), 3);
        assert_eq!(html.matches("Correlated entries (2)").count(), 3);
        // The newest row (step 2) lists step 1 and step 0 with their own actions and changes.
        let details = &html[html.find("step 2").unwrap()..];
        let details = &details[..details.find("<tbody class=\"entry\"").unwrap()];
        for needle in [
            "step 1",
            "step 0",
            "field1",
            "field0",
            "badge-emerald",
            "badge-sky",
        ] {
            assert!(details.contains(needle), "{needle} in {details}");
        }
        assert!(details.contains("href=\"/console/log?actor_type=all&amp;correlation_id=req-1\""));
    }

    #[tokio::test]
    async fn invalid_parameters_render_an_error_naming_the_parameter() {
        let f = fixture(vec![event("update", T0)]).await;
        let html = log(&f, &[("from", "yesterday"), ("action", "update")]).await;
        assert!(html.contains("role=\"alert\""));
        assert!(
            html.contains("The From filter (<code>from</code>) is not valid"),
            "{html}"
        );
        assert!(html.contains("must be an RFC 3339 timestamp or a date"));
        assert!(!html.contains("log-table"));
        assert!(
            html.contains("id=\"f-from\" name=\"from\" value=\"yesterday\" aria-invalid=\"true\""),
            "{html}"
        );
        // The rest of the form keeps its values so the mistake can be corrected.
        assert!(html.contains("<option value=\"update\" selected>update</option>"));

        let html = log(&f, &[("actor_type", "<script>")]).await;
        assert!(html.contains("<code>actor_type</code>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("`&lt;script&gt;`"));
        for (key, value) in [("limit", "1000"), ("cursor", "x"), ("outcome", "maybe")] {
            let html = log(&f, &[(key, value)]).await;
            assert!(
                html.contains(&format!("(<code>{key}</code>) is not valid")),
                "{key}"
            );
            // Clear all goes back to the plain page.
            assert_eq!(
                href(&html, "button clear-all").as_deref(),
                Some("/console/log")
            );
        }
    }

    #[tokio::test]
    async fn every_filter_survives_the_links_of_the_page() {
        let mut e = printer(
            described("update", T0 + DAY_MS, "Renamed printer"),
            "42",
            None,
        );
        e.detailed_action = Some("printJob.retry".into());
        e.channel = "hardware".into();
        e.context.correlation_id = Some("req 1".into());
        e.context.ip = Some("203.0.113.7".into());
        let f = fixture(vec![e.clone(), e]).await;
        let given = [
            ("action", "update"),
            ("detailed_action", "printJob.*"),
            ("actor_type", "user"),
            ("actor_type", "api"),
            ("actor", "ada@example.com"),
            ("entity_type", "Printer"),
            ("entity_id", "42"),
            ("channel", "hardware"),
            ("outcome", "success"),
            ("correlation_id", "req 1"),
            ("ip", "203.0.113.7"),
            ("from", "2026-01-01"),
            ("to", "2026-01-05T00:00:00Z"),
            ("q", "renamed"),
            ("limit", "1"),
        ];
        let html = log(&f, &given).await;
        assert_eq!(rows(&html), 1);
        assert!(html.contains("<span class=\"count-badge\">13</span>"));
        let mut expected = filter_of(&params(&given));
        expected.actor_types = vec![ActorType::User, ActorType::Api];
        let older = href(&html, "page-older").unwrap();
        assert_eq!(filter_of(&link_params(&older)), expected);
        let refresh = href(&html, "button refresh").unwrap();
        assert_eq!(filter_of(&link_params(&refresh)), expected);
        let next = log_at(&f, &older).await;
        let newer = href(&next, "page-newer").unwrap();
        assert_eq!(filter_of(&link_params(&newer)), expected);
        for format in ["csv", "json"] {
            let export = html
                .match_indices("<a class=\"button export\"")
                .map(|(at, _)| href(&html[at..], "button export").unwrap())
                .find(|h| h.contains(&format!("format={format}")))
                .unwrap();
            assert!(
                export.starts_with(&format!("/console/export?format={format}&")),
                "{export}"
            );
            let export_params = link_params(&export);
            assert!(
                !export_params
                    .iter()
                    .any(|(k, _)| k == "limit" || k == "cursor")
            );
            assert_eq!(filter_of(&export_params), expected);
        }
    }

    #[tokio::test]
    async fn active_filters_are_counted_and_cleared() {
        let f = fixture(vec![event("update", T0)]).await;
        let html = log(&f, &[]).await;
        assert!(!html.contains("count-badge") && !html.contains("Clear all"));
        assert!(html.contains("href=\"/console/export?format=csv\""));
        let html = log(&f, &[("action", "update"), ("q", "x"), ("limit", "10")]).await;
        assert!(html.contains("<span class=\"count-badge\">2</span> filters active"));
        assert_eq!(
            href(&html, "button clear-all").as_deref(),
            Some("/console/log?limit=10")
        );
        assert!(html.contains("No entries match these filters."));
        assert!(html.contains("0 entries"));
    }

    #[tokio::test]
    async fn filters_set_by_search_terms_show_their_value_and_count() {
        let f = fixture(vec![event("update", T0)]).await;
        let html = log(
            &f,
            &[
                (
                    "q",
                    r#"action:update channel:auth actor_type:user created:>2026-01-01 "jam""#,
                ),
                ("channel", "auth"),
            ],
        )
        .await;
        // action, actor_type and created from the terms, the text, and the channel parameter.
        assert!(
            html.contains("<span class=\"count-badge\">5</span> filters active"),
            "{html}"
        );
        let select = |id: &str| {
            let at = html.find(&format!("<select id=\"{id}\"")).unwrap();
            html[at..at + html[at..].find("</select>").unwrap()].to_string()
        };
        let action = select("f-action");
        assert!(action.contains(" disabled>"), "{action}");
        assert!(action.contains("<option value=\"update\" selected>update</option>"));
        assert!(
            select("f-channel").contains(" disabled>"),
            "a term sets it too"
        );
        assert!(!select("f-outcome").contains("disabled"), "no term sets it");
        assert!(
            html.contains("<fieldset class=\"actor-types\" disabled>"),
            "{html}"
        );
        assert!(
            html.contains("name=\"from\" value=\"2026-01-02T00:00:00.000Z\" disabled>"),
            "{html}"
        );
        assert_eq!(html.matches("Set in Search").count(), 4, "{html}");
    }

    #[test]
    fn the_chart_spans_30_days_or_the_range_capped_at_90() {
        let filter = |from: Option<&str>, to: Option<&str>| {
            let mut list = vec![];
            list.extend(from.map(|v| ("from", v)));
            list.extend(to.map(|v| ("to", v)));
            PageRequest::from_params(list).unwrap().filter
        };
        let jan3 = T0 + 2 * DAY_MS;
        assert_eq!(
            chart_days(&filter(None, None), NOW),
            (jan3 - 29 * DAY_MS, 30)
        );
        assert_eq!(
            chart_days(&filter(Some("2026-01-01"), Some("2026-01-03")), NOW),
            (T0, 3)
        );
        assert_eq!(
            chart_days(&filter(Some("2026-01-02"), None), NOW),
            (T0 + DAY_MS, 2)
        );
        assert_eq!(
            chart_days(&filter(None, Some("2026-01-01")), NOW),
            (T0 - 29 * DAY_MS, 30)
        );
        assert_eq!(
            chart_days(&filter(Some("2025-01-01"), Some("2026-01-03")), NOW),
            (jan3 - 89 * DAY_MS, 90)
        );
        assert_eq!(
            chart_days(
                &filter(Some("2026-01-01T12:00:00Z"), Some("2026-01-01T13:00:00Z")),
                NOW
            ),
            (T0, 1)
        );
    }

    #[tokio::test]
    async fn the_chart_counts_entries_per_day_for_the_current_filters() {
        let f = fixture(vec![
            event("update", T0 + 5),
            event("update", T0 + 6),
            event("create", T0 + 2 * DAY_MS),
        ])
        .await;
        let html = log(&f, &[]).await;
        assert_eq!(html.matches("<rect").count(), 30);
        assert!(html.contains("2026-01-01: 2 entries"));
        assert!(html.contains("2026-01-02: 0 entries"));
        assert!(html.contains("2026-01-03: 1 entry"));
        assert!(html.contains("2025-12-05 to 2026-01-03"));
        let html = log(
            &f,
            &[
                ("action", "update"),
                ("from", "2026-01-01"),
                ("to", "2026-01-03"),
            ],
        )
        .await;
        assert_eq!(html.matches("<rect").count(), 3);
        assert!(html.contains("2026-01-01: 2 entries") && html.contains("2026-01-03: 0 entries"));
        let html = log(&f, &[("from", "2025-01-01"), ("to", "2026-01-03")]).await;
        assert_eq!(html.matches("<rect").count(), 90);
    }

    #[tokio::test]
    async fn a_record_history_shows_every_entry_naming_it() {
        let mut bulk = described("bulk_update", T0 + 3, "bulk");
        bulk.entity = Some(Entity {
            kind: "Printer".into(),
            id: None,
            name: None,
        });
        bulk.entity_ids = vec!["41".into(), "42".into(), "43".into()];
        let f = fixture(vec![
            printer(described("create", T0, "created"), "42", Some("Alpha")),
            printer(
                system("update", T0 + 1, "went offline"),
                "42",
                Some("Alpha"),
            ),
            printer(described("update", T0 + 2, "another printer"), "7", None),
            bulk,
        ])
        .await;
        let html = history(&f, "Printer", "42", &[]).await;
        assert_eq!(rows(&html), 3);
        assert!(html.contains("created") && html.contains("went offline") && html.contains("bulk"));
        assert!(!html.contains("another printer"));
        assert!(html.contains("History of <span class=\"entity-type\">Printer</span> Alpha"));
        assert!(checkbox_checked(&html, "system"));
        assert!(!html.contains("count-badge"));
        assert!(
            !html.contains("name=\"entity_id\""),
            "the record is fixed by the path"
        );
        assert!(html.contains("action=\"/console/entities/Printer/42\""));
        assert!(html.contains(
            "href=\"/console/export?format=csv&amp;actor_type=all&amp;entity_type=Printer&amp;entity_id=42\""
        ), "{html}");
        assert!(html.contains("(3 ids)"));

        let html = history(
            &f,
            "Printer",
            "42",
            &[("actor_type", "user"), ("actor_type", "api")],
        )
        .await;
        assert_eq!(rows(&html), 2);
        assert!(!checkbox_checked(&html, "system"));
        assert!(html.contains("<span class=\"count-badge\">1</span>"));
        let older_free = href(&html, "button refresh").unwrap();
        assert!(
            older_free.starts_with("/console/entities/Printer/42?actor_type=user%2Capi"),
            "{older_free}"
        );
        // The log page links each entity to its history.
        let log_html = log(&f, &[]).await;
        assert!(log_html.contains("href=\"/console/entities/Printer/42\""));
    }

    #[tokio::test]
    async fn the_search_box_takes_the_query_language_on_the_log_and_on_a_history() {
        let f = fixture(vec![
            printer(described("create", T0, "created"), "42", Some("Alpha")),
            printer(
                system("update", T0 + 1, "went offline"),
                "42",
                Some("Alpha"),
            ),
            printer(described("update", T0 + 2, "status: done"), "7", None),
        ])
        .await;
        let html = log(&f, &[]).await;
        assert!(html.contains("placeholder=\"e.g. action:update &quot;paper jam&quot;\""));

        let html = log(&f, &[("q", "action:update entity:Printer")]).await;
        assert_eq!(rows(&html), 1);
        assert!(html.contains("status: done"));
        let html = log(&f, &[("q", "\"status: done\"")]).await;
        assert_eq!(rows(&html), 1);

        // On a history, a term may show System actors, and the export keeps that choice.
        let html = history(&f, "Printer", "42", &[("q", "actor_type:system")]).await;
        assert_eq!(rows(&html), 1);
        assert!(html.contains("went offline"));
        let export = link_params(&href(&html, "button export").unwrap());
        assert!(
            export.contains(&("q".to_string(), "actor_type:system".to_string())),
            "{export:?}"
        );
        assert!(!export.iter().any(|(k, _)| k == "actor_type"), "{export:?}");

        let html = log(&f, &[("q", "printer foo:bar")]).await;
        assert_eq!(rows(&html), 0);
        assert!(html.contains("The Search filter (<code>q</code>) is not valid"));
        assert!(
            html.contains("`foo:bar`: unknown search key `foo`"),
            "{html}"
        );
        assert!(html.contains("id=\"f-q\" name=\"q\" value=\"printer foo:bar\""));
        let html = history(&f, "Printer", "42", &[("q", "entity:Printer:7")]).await;
        assert_eq!(rows(&html), 0);
        assert!(html.contains("`entity:Printer:7`"));
    }

    #[test]
    fn changes_show_old_in_red_and_new_in_green_and_only_the_sides_there_are() {
        let change = |old: Option<Value>, new: Option<Value>| Change {
            field: "name".into(),
            old,
            new,
        };
        let update = changes_table(&[change(Some(json!("A")), Some(json!("Alpha")))]).into_string();
        assert!(update.contains("Old value") && update.contains("New value"));
        assert!(
            update.contains("<td class=\"old\"><del><span class=\"value\">A</span></del></td>")
        );
        assert!(
            update.contains("<td class=\"new\"><ins><span class=\"value\">Alpha</span></ins></td>")
        );
        let create = changes_table(&[change(None, Some(json!("Alpha")))]).into_string();
        assert!(!create.contains("Old value") && !create.contains("class=\"old\""));
        assert!(create.contains("class=\"new\""));
        let delete = changes_table(&[change(Some(json!("A")), None)]).into_string();
        assert!(!delete.contains("New value") && !delete.contains("class=\"new\""));
        assert!(delete.contains("class=\"old\""));
        let redacted = changes_table(&[Change {
            field: "password".into(),
            old: Some(json!("[REDACTED]")),
            new: Some(json!("[REDACTED]")),
        }])
        .into_string();
        assert_eq!(redacted.matches("[REDACTED]").count(), 2);
    }

    #[test]
    fn details_show_context_masked_key_bulk_ids_metadata_and_long_values() {
        let mut e = described("bulk_delete", T0, "cleanup");
        e.context = Context {
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0".into()),
            correlation_id: Some("req-9".into()),
            api_key_id: Some("key_019a2b3c4d5e6f7081920a1b2c3d4e5f".into()),
            impersonator: Some(Impersonator {
                id: Some("u9".into()),
                email: Some("support@example.com".into()),
            }),
            reason: Some("ticket 12".into()),
            ..Context::default()
        };
        e.entity_ids = (0..60).map(|i| format!("id-{i}")).collect();
        e.metadata = BTreeMap::from([("site".to_string(), json!("Berlin"))]);
        let long = "y".repeat(200);
        e.changes = vec![Change {
            field: "notes".into(),
            old: Some(json!(long)),
            new: None,
        }];
        let html = entry_rows(BASE, &stored(e, 1), None, NOW).into_string();
        for needle in [
            "Mozilla/5.0",
            "key_019a••••",
            "support@example.com",
            "(u9)",
            "ticket 12",
            ">req-9<",
            "Entity IDs (60)",
            "id-49",
            "Show 10 more",
            "id-59",
            ">site<",
            ">Berlin<",
            "<details class=\"long-value\">",
            "<details class=\"entry-details\">",
            "<span class=\"description\">cleanup</span>",
        ] {
            assert!(html.contains(needle), "{needle} in {html}");
        }
        assert!(!html.contains("2b3c4d"), "the key id is masked");
        assert!(!html.contains("correlated-count"));
    }
}
