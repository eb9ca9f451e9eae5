//! The print log page (`/console/print-log`): the organization's print log as the seed's Print
//! Log view shows it, read from the store and rendered as HTML that works with JavaScript off.
//!
//! Top to bottom: the title and toolbar (active-filter count, Clear filters, Clear log…), the
//! filter bar (a GET form with the API's parameters, so a view's URL and an API call select the
//! same rows), the figures of the filtered rows, the failure analysis (failures by cause), the
//! table (time, print, printer, user, a status badge with the cause under it, duration, filament
//! with a colour swatch, and per-row Edit and Delete where the member may), and the pages.
//!
//! Changes are plain HTML forms (POST with the session's CSRF token, which the console's guard
//! checks), answered with a redirect back to the same view: reclassify a row, delete a row, clear
//! the log (behind a confirmation). Each goes through the same checks and store calls as the API
//! ([`stele_service::print_log`]), so it is recorded in the trail the same way, with the member as
//! actor. Every value from a row is rendered through maud's escaping.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use stele_core::filter::FilterError;
use stele_core::time::Millis;
use stele_store::{FailureReason, Print, PrintId, PrintPage, PrintStats, PrintStatus};

use super::auth::{CSRF_FIELD, Client, ConsoleUser};
use super::render::{column_heads, decode_query, encode_component, group_thousands, time_cell};
use super::{ConsoleError, PageError, layout, page};
use crate::app::state::AppState;
use stele_service::access::roles::Permission;
use stele_service::print_log::{self as log, Caller, ChangeError, Denied, Query};

/// Where the page lives.
pub const PATH: &str = "/console/print-log";
/// The rows-per-page choices (the seed's), the default being the API's.
pub const ROWS_PER_PAGE: [u32; 4] = [10, 25, 50, 100];

/// The query parameters the page keeps in its URL, in the order links write them: the API's.
const KEYS: &[&str] = stele_service::print_log::QUERY_PARAMETERS;
/// Of those, the ones that filter (and count as active filters).
const FILTERS: [&str; 6] = stele_service::print_log::FILTER_PARAMETERS;

/// The view's query as the URL says it (trimmed, empty values dropped, other keys ignored), for
/// building links that keep every filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct View {
    values: Vec<(&'static str, String)>,
}

impl View {
    fn from_params(params: &[(String, String)]) -> View {
        let mut values = vec![];
        for &key in KEYS {
            if let Some((_, v)) = params
                .iter()
                .rev()
                .find(|(k, v)| k == key && !v.trim().is_empty())
            {
                values.push((key, v.trim().to_string()));
            }
        }
        View { values }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    fn with(&self, key: &'static str, value: &str) -> View {
        let mut view = self.without(&[key]);
        view.values.push((key, value.to_string()));
        view.values
            .sort_by_key(|(k, _)| KEYS.iter().position(|x| x == k));
        view
    }

    fn without(&self, keys: &[&str]) -> View {
        View {
            values: self
                .values
                .iter()
                .filter(|(k, _)| !keys.contains(k))
                .cloned()
                .collect(),
        }
    }

    fn active_filters(&self) -> usize {
        self.values
            .iter()
            .filter(|(k, _)| FILTERS.contains(k))
            .count()
    }

    fn query_string(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn href(&self) -> String {
        let query = self.query_string();
        if query.is_empty() {
            PATH.to_string()
        } else {
            format!("{PATH}?{query}")
        }
    }

    fn parse(&self) -> Result<Query, FilterError> {
        log::parse_query(self.values.iter().map(|(k, v)| (*k, v.as_str())))
    }
}

/// What a change just did, shown once above the table after its redirect.
fn notice_text(notice: &str) -> Option<String> {
    let (what, n) = notice.split_once('-')?;
    let n: u64 = n.parse().ok()?;
    Some(match what {
        "classified" => format!("Print {n} was reclassified."),
        "unchanged" => format!("Print {n} already had that classification; nothing changed."),
        "deleted" => format!("Print {n} was deleted from the print log."),
        "cleared" => format!(
            "The print log was cleared: {} {} deleted.",
            group_thousands(n),
            if n == 1 { "entry" } else { "entries" }
        ),
        _ => return None,
    })
}

fn caller(user: &ConsoleUser, client: &Client) -> Caller {
    Caller::for_member(user.who(), user.role, client.context())
}

/// `GET /console/print-log`: the page, with every filter in the URL.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    user.require(Permission::PrintlogView)?;
    let params = raw.as_deref().map(decode_query).unwrap_or_default();
    let view = View::from_params(&params);
    let notice = params
        .iter()
        .find(|(k, _)| k == "notice")
        .and_then(|(_, v)| notice_text(v));
    let query = view.parse();
    let data = match &query {
        Ok(q) => {
            let page = state
                .store
                .list_prints(user.org, &q.filter, q.limit, q.offset)
                .await
                .map_err(ConsoleError::from)?;
            let stats = state
                .store
                .print_stats(user.org, &q.filter)
                .await
                .map_err(ConsoleError::from)?;
            Some((page, stats))
        }
        Err(_) => None,
    };
    let caller = caller(&user, &client);
    let body = render(
        &PageParts {
            caller: &caller,
            csrf: &user.csrf_token,
            view: &view,
            query: &query,
            data: data.as_ref(),
            notice: notice.as_deref(),
        },
        state.clock.now(),
    );
    Ok(layout("Print log", Some(&user), body))
}

/// The fields of the forms that change something: where to go back to, and the classification.
#[derive(Deserialize)]
pub struct ChangeForm {
    /// The page's query string, to come back to the same view.
    #[serde(default)]
    back: String,
    status: Option<String>,
    failure_reason: Option<String>,
}

/// Back to the view the form was sent from (only the page's own parameters are kept, so the
/// redirect never leaves the page), with a notice of what happened.
fn back_to(back: &str, notice: &str) -> Response {
    let view = View::from_params(&decode_query(back));
    let mut href = view.href();
    href.push(if href.contains('?') { '&' } else { '?' });
    href.push_str("notice=");
    href.push_str(notice);
    Redirect::to(&href).into_response()
}

/// A page that says why a change was refused, with a way back.
fn refused(
    user: &ConsoleUser,
    status: StatusCode,
    title: &str,
    message: &str,
    back: &str,
) -> Response {
    let view = View::from_params(&decode_query(back));
    page(
        status,
        layout(
            title,
            Some(user),
            html! {
                section.notice.denied {
                    h1 { (title) }
                    p { (message) }
                    p { a href=(view.href()) { "Back to the print log" } }
                }
            },
        ),
    )
}

fn denied(user: &ConsoleUser, e: Denied, back: &str) -> Response {
    refused(
        user,
        StatusCode::FORBIDDEN,
        "You may not change this print",
        &format!("{}.", e.0),
        back,
    )
}

fn not_found(user: &ConsoleUser, id: &str, back: &str) -> Response {
    refused(
        user,
        StatusCode::NOT_FOUND,
        "No such print",
        &format!("The print log has no entry {id} (it may have been deleted meanwhile)."),
        back,
    )
}

/// A row id as the page's forms send it; anything else names no row.
fn parse_id(id: &str) -> Option<PrintId> {
    id.parse::<i64>().ok().map(PrintId::new)
}

/// A change that was refused or failed, as a page.
fn change_failed(user: &ConsoleUser, id: &str, back: &str, e: ChangeError) -> Response {
    match e {
        ChangeError::Denied(denied_why) => denied(user, denied_why, back),
        ChangeError::NotFound => not_found(user, id, back),
        ChangeError::Store(other) => ConsoleError::from(other).into_response(),
    }
}

/// `POST /console/print-log/{id}`: the Edit dialog's Save (status and failure cause).
pub async fn classify(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let caller = caller(&user, &client);
    if let Err(e) = caller.may_update_some() {
        return denied(&user, e, &form.back);
    }
    // The form's fields read exactly as the API's body: an empty cause clears it.
    let mut body = serde_json::Map::new();
    if let Some(status) = &form.status {
        body.insert("status".into(), status.clone().into());
    }
    if let Some(reason) = &form.failure_reason {
        body.insert("failure_reason".into(), reason.clone().into());
    }
    let classification = match log::parse_classification(&body.into()) {
        Ok(c) => c,
        Err(e) => {
            return refused(
                &user,
                StatusCode::BAD_REQUEST,
                "That classification is not valid",
                &format!("{}: {}. Nothing was changed.", e.field, e.message),
                &form.back,
            );
        }
    };
    let Some(print_id) = parse_id(&id) else {
        return not_found(&user, &id, &form.back);
    };
    match log::classify(
        state.store.as_ref(),
        user.org,
        &caller,
        print_id,
        classification,
        &state.clock,
    )
    .await
    {
        Ok((before, after)) if before == after => {
            back_to(&form.back, &format!("unchanged-{}", after.id))
        }
        Ok((_, after)) => back_to(&form.back, &format!("classified-{}", after.id)),
        Err(e) => change_failed(&user, &id, &form.back, e),
    }
}

/// `POST /console/print-log/{id}/delete`: a row's Delete button.
pub async fn delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let caller = caller(&user, &client);
    if let Err(e) = caller.may_delete_some() {
        return denied(&user, e, &form.back);
    }
    let Some(print_id) = parse_id(&id) else {
        return not_found(&user, &id, &form.back);
    };
    match log::delete(
        state.store.as_ref(),
        user.org,
        &caller,
        print_id,
        &state.clock,
    )
    .await
    {
        Ok(print) => back_to(&form.back, &format!("deleted-{}", print.id)),
        Err(e) => change_failed(&user, &id, &form.back, e),
    }
}

/// `POST /console/print-log/clear`: Clear log, once confirmed.
pub async fn clear(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Form(form): Form<ChangeForm>,
) -> Response {
    let caller = caller(&user, &client);
    match log::clear(state.store.as_ref(), user.org, &caller, &state.clock).await {
        // Back to the first page of the same filters: there is nothing left to page through.
        Ok(n) => back_to(
            &View::from_params(&decode_query(&form.back))
                .without(&["offset"])
                .query_string(),
            &format!("cleared-{n}"),
        ),
        Err(e) => change_failed(&user, "", &form.back, e),
    }
}

// --- rendering -------------------------------------------------------------------------------------

struct PageParts<'a> {
    caller: &'a Caller,
    csrf: &'a str,
    view: &'a View,
    query: &'a Result<Query, FilterError>,
    data: Option<&'a (PrintPage, PrintStats)>,
    notice: Option<&'a str>,
}

fn status_label(status: PrintStatus) -> &'static str {
    match status {
        PrintStatus::Completed => "Completed",
        PrintStatus::Failed => "Failed",
        PrintStatus::Stopped => "Stopped",
        PrintStatus::Cancelled => "Cancelled",
        PrintStatus::Skipped => "Skipped",
    }
}

/// The seed's names of the failure causes.
fn reason_label(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::AdhesionFailure => "Adhesion failure",
        FailureReason::SpaghettiDetached => "Spaghetti / Detached",
        FailureReason::LayerShift => "Layer shift",
        FailureReason::CloggedNozzle => "Clogged nozzle",
        FailureReason::FilamentRunout => "Filament runout",
        FailureReason::Warping => "Warping",
        FailureReason::Stringing => "Stringing",
        FailureReason::UnderExtrusion => "Under-extrusion",
        FailureReason::PowerFailure => "Power failure",
        FailureReason::UserCancelled => "User cancelled",
        FailureReason::Other => "Other",
    }
}

/// The badge colour the seed gives each status (`print_log.css`): completed green, failed red,
/// stopped orange, cancelled grey, skipped purple.
fn status_badge(status: PrintStatus) -> Markup {
    html! {
        span class=(format!("status-badge status-{}", status.as_str())) { (status_label(status)) }
    }
}

fn parameter_label(field: &str) -> &str {
    match field {
        "search" => "Search",
        "printer_id" => "Printer",
        "created_by_username" => "User",
        "status" => "Status",
        "date_from" => "Date from",
        "date_to" => "Date to",
        "limit" => "Rows per page",
        "offset" => "Page position",
        other => other,
    }
}

/// `2h 05m`, `42m 10s`, `35s`.
pub fn duration_text(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `12.5 g`, `1,250 g`.
fn grams_text(grams: f64) -> String {
    if grams >= 1000.0 {
        format!("{} g", group_thousands(grams.round() as u64))
    } else {
        format!("{} g", trim_decimal(grams))
    }
}

/// A number with at most two decimals and no trailing zeros: `12.5`, `3`, `0.25`.
fn trim_decimal(n: f64) -> String {
    let text = format!("{n:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A filament colour the swatch may paint: hex (`#FF8800`, `FF8800FF` as Bambu writes it, with
/// or without `#`, 3, 4, 6 or 8 digits), written as `#rrggbb[aa]`; anything else is shown as
/// text only. (It goes into an SVG `fill` attribute, escaped like every value, and only a colour
/// ever reaches it.)
pub fn swatch_colour(colour: &str) -> Option<String> {
    let hex = colour.trim().trim_start_matches('#');
    (matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("#{}", hex.to_ascii_lowercase()))
}

fn render(parts: &PageParts<'_>, now: Millis) -> Markup {
    let view = parts.view;
    let active = view.active_filters();
    let error = parts.query.as_ref().err();
    let cleared = view.without(&FILTERS).without(&["offset"]);
    html! {
        section.stele-log.print-log aria-labelledby="print-log-title" {
            header.log-header {
                h1 #print-log-title { "Print log" }
                nav.toolbar aria-label="Print log actions" {
                    @if active > 0 {
                        span.filter-status {
                            span.count-badge { (active) }
                            @if active == 1 { " filter active" } @else { " filters active" }
                        }
                    }
                    @if active > 0 || error.is_some() {
                        a.button.clear-filters href=(if error.is_some() { PATH.to_string() } else { cleared.href() }) {
                            "Clear filters"
                        }
                    }
                    a.button.refresh href=(view.href()) { "Refresh" }
                    @if parts.caller.may_clear().is_ok() {
                        @if let Some((page, _)) = parts.data {
                            (clear_control(parts, page.total))
                        }
                    }
                }
            }
            @if let Some(notice) = parts.notice {
                div.alert.alert-done role="status" { (notice) }
            }
            @if let Some(e) = error {
                div.alert.alert-error role="alert" {
                    strong {
                        "The " (parameter_label(&e.field)) " filter (" code { (e.field) } ") is not valid: "
                    }
                    (e.message) ". Correct it below, or " a href=(PATH) { "clear all filters" } "."
                }
            }
            (filter_bar(view, error.map(|e| e.field.as_str()), active))
            @if let (Some((page, stats)), Ok(query)) = (parts.data, parts.query) {
                (figures(stats))
                (failure_chart(stats))
                (table(parts, page, now))
                (pagination(view, query, page.total, page.items.len()))
            }
        }
    }
}

/// Clear log, behind a confirmation that says what it does (works without JavaScript).
fn clear_control(parts: &PageParts<'_>, total: u64) -> Markup {
    html! {
        details.clear-log {
            summary.button.danger { "Clear log…" }
            div.confirm role="group" aria-label="Confirm clearing the print log" {
                p {
                    "This permanently deletes "
                    strong { "every entry" }
                    " of the print log, not only the ones these filters show"
                    @if total > 0 { " (" (group_thousands(total)) " match them)" }
                    ". Archives and the audit trail are not affected; the trail records the clear."
                }
                form method="post" action=(format!("{PATH}/clear")) {
                    input type="hidden" name=(CSRF_FIELD) value=(parts.csrf);
                    input type="hidden" name="back" value=(parts.view.query_string());
                    button.danger.confirm-clear type="submit" { "Yes, clear the print log" }
                }
            }
        }
    }
}

fn filter_bar(view: &View, invalid: Option<&str>, active: usize) -> Markup {
    let value = |key: &str| view.get(key).map(str::to_string);
    let bad = |key: &str| (invalid == Some(key)).then_some("true");
    let status = view.get("status");
    html! {
        details.filter-bar open {
            summary {
                "Filters"
                @if active > 0 {
                    " " span.count-badge aria-label=(format!("{active} active")) { (active) }
                }
            }
            form.filters.print-filters method="get" action=(PATH) {
                div.field {
                    label for="f-search" { "Search" }
                    input type="search" id="f-search" name="search" value=[value("search")]
                        placeholder="Print name contains…" aria-invalid=[bad("search")];
                }
                div.field {
                    label for="f-printer" { "Printer ID" }
                    input type="text" inputmode="numeric" id="f-printer" name="printer_id"
                        value=[value("printer_id")] aria-invalid=[bad("printer_id")];
                }
                div.field {
                    label for="f-user" { "User" }
                    input type="text" id="f-user" name="created_by_username"
                        value=[value("created_by_username")] aria-invalid=[bad("created_by_username")];
                }
                div.field {
                    label for="f-status" { "Status" }
                    select id="f-status" name="status" aria-invalid=[bad("status")] {
                        option value="" { "Any status" }
                        @for s in PrintStatus::ALL {
                            option value=(s.as_str()) selected[status == Some(s.as_str())] { (status_label(s)) }
                        }
                        @if let Some(other) = status.filter(|s| PrintStatus::parse(s).is_none()) {
                            option value=(other) selected { (other) }
                        }
                    }
                }
                (date_field("f-date-from", "date_from", "Date from", value("date_from"), bad("date_from")))
                (date_field("f-date-to", "date_to", "Date to", value("date_to"), bad("date_to")))
                @if let Some(limit) = view.get("limit") {
                    input type="hidden" name="limit" value=(limit);
                }
                div.form-actions {
                    button type="submit" { "Apply filters" }
                }
            }
        }
    }
}

/// A date input for a date (or nothing); a text input keeps any other value the URL holds (a
/// date-time) instead of a date picker silently dropping it.
fn date_field(
    id: &str,
    name: &str,
    label: &str,
    value: Option<String>,
    bad: Option<&str>,
) -> Markup {
    let is_date = value
        .as_deref()
        .is_none_or(|v| v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok());
    html! {
        div.field {
            label for=(id) { (label) }
            input type=(if is_date { "date" } else { "text" }) id=(id) name=(name)
                value=[value] aria-invalid=[bad];
        }
    }
}

/// The figures of the filtered rows, as the stats API gives them.
fn figures(stats: &PrintStats) -> Markup {
    let count = |s: PrintStatus| {
        stats
            .by_status
            .iter()
            .find(|(x, _)| *x == s)
            .map_or(0, |(_, n)| *n)
    };
    let other =
        count(PrintStatus::Stopped) + count(PrintStatus::Cancelled) + count(PrintStatus::Skipped);
    html! {
        dl.print-figures aria-label="Figures of the prints these filters match" {
            div { dt { "Prints" } dd.total-prints { (group_thousands(stats.total)) } }
            div { dt { "Completed" } dd.completed-prints { (group_thousands(count(PrintStatus::Completed))) } }
            div { dt { "Failed" } dd.failed-prints { (group_thousands(count(PrintStatus::Failed))) } }
            div { dt { "Stopped, cancelled, skipped" } dd.other-prints { (group_thousands(other)) } }
            div {
                dt { "Print time" }
                dd.print-time {
                    (duration_text(stats.total_duration_seconds))
                    @if let Some(avg) = stats.average_duration_seconds() {
                        " " span.muted { "(avg " (duration_text(avg.round() as i64)) ")" }
                    }
                }
            }
            div { dt { "Filament" } dd.filament-total { (grams_text(stats.total_filament_grams)) } }
            div { dt { "Cost" } dd.cost-total { (trim_decimal(stats.total_cost)) } }
            div { dt { "Energy" } dd.energy-total { (trim_decimal(stats.total_energy_kwh)) " kWh" } }
        }
    }
}

const CHART_LABEL_WIDTH: i64 = 170;
const CHART_BAR_SPACE: i64 = 300;
const CHART_ROW: i64 = 20;

/// Failures by cause: a bar per cause that the filtered prints carry (most first), and one for
/// failed prints without a cause yet. An SVG with its numbers written out, so it reads without
/// hovering; causes no print carries are left out, so the table stays in view.
fn failure_chart(stats: &PrintStats) -> Markup {
    let mut bars: Vec<(&str, &str, u64)> = stats
        .by_failure_reason
        .iter()
        .map(|(r, n)| (r.as_str(), reason_label(*r), *n))
        .collect();
    bars.push((
        "unclassified",
        "Unclassified failure",
        stats.unclassified_failures,
    ));
    bars.retain(|(_, _, n)| *n > 0);
    // Stable: equal counts keep the vocabulary's order.
    bars.sort_by_key(|(_, _, n)| std::cmp::Reverse(*n));
    let total: u64 = bars.iter().map(|(_, _, n)| n).sum();
    let max = bars.first().map_or(1, |(_, _, n)| *n).max(1);
    let width = CHART_LABEL_WIDTH + CHART_BAR_SPACE + 50;
    let height = CHART_ROW * bars.len() as i64 + 4;
    let summary = format!(
        "Failure analysis: {} failures by cause",
        group_thousands(total)
    );
    html! {
        figure.failure-analysis {
            figcaption {
                "Failure analysis: " strong { (group_thousands(total)) }
                @if total == 1 { " failure" } @else { " failures" }
                " by cause"
                @if total == 0 { " (none among these prints)" }
            }
            @if !bars.is_empty() {
                div.chart-scroll {
                    svg.failure-chart xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(summary)
                        width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) {
                        @for (i, (key, label, n)) in bars.iter().enumerate() {
                            @let y = i as i64 * CHART_ROW + 2;
                            @let w = ((*n as f64 / max as f64) * CHART_BAR_SPACE as f64).round().max(2.0) as i64;
                            g.cause data-cause=(key) data-count=(n) {
                                title { (label) ": " (n) }
                                text.cause-label x=(CHART_LABEL_WIDTH - 8) y=(y + 13) text-anchor="end" { (label) }
                                rect.bar x=(CHART_LABEL_WIDTH) y=(y + 3) width=(w) height=(CHART_ROW - 8) rx="2" {}
                                text.cause-count x=(CHART_LABEL_WIDTH + w + 6) y=(y + 13) { (n) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn table(parts: &PageParts<'_>, page: &PrintPage, now: Millis) -> Markup {
    html! {
        table.log-table.print-table {
            caption.visually-hidden { "Print log entries, newest first" }
            (column_heads(&["Date/Time", "Print name", "Printer", "User", "Status", "Duration", "Filament"], true))
            tbody {
                @if page.items.is_empty() {
                    tr { td.empty colspan="8" { "No prints match these filters." } }
                }
                @for print in &page.items {
                    (row(parts, print, now))
                }
            }
        }
    }
}

fn row(parts: &PageParts<'_>, print: &Print, now: Millis) -> Markup {
    let f = &print.fields;
    let absent = html! { span.absent { "—" } };
    html! {
        tr.print-row data-id=(print.id) {
            td.time { (time_cell(f.created_at, now)) }
            td.print-name {
                @match f.print_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(name) => span.name { (name) },
                    None => span.absent { "Unnamed print" },
                }
                br;
                span.print-id.muted { "#" (print.id) }
            }
            td.printer {
                @match (&f.printer_name, f.printer_id) {
                    (Some(name), Some(id)) => { (name) br; span.muted { "ID " (id) } },
                    (Some(name), None) => { (name) },
                    (None, Some(id)) => { "Printer " (id) },
                    (None, None) => { (absent) },
                }
            }
            td.user {
                @match &f.created_by_username {
                    Some(user) => { (user) },
                    None => { (absent) },
                }
            }
            td.status {
                (status_badge(f.status))
                @if let Some(reason) = f.failure_reason {
                    br;
                    span.failure-cause data-reason=(reason.as_str()) { (reason_label(reason)) }
                }
            }
            td.duration {
                @match f.duration_seconds {
                    Some(s) => { (duration_text(s)) },
                    None => { (absent) },
                }
            }
            td.filament {
                @if let Some(colour) = f.filament_color.as_deref().and_then(swatch_colour) {
                    svg.swatch xmlns="http://www.w3.org/2000/svg" width="14" height="14"
                        viewBox="0 0 14 14" role="img" aria-label=(format!("colour {colour}")) {
                        rect x="0.5" y="0.5" width="13" height="13" rx="3" fill=(colour) {}
                    }
                    " "
                }
                @match &f.filament_type {
                    Some(t) => { span.filament-type { (t) } },
                    None => {},
                }
                @if f.filament_type.is_none() && f.filament_color.is_none() && f.filament_used_grams.is_none() {
                    (absent)
                }
                @if let Some(colour) = f.filament_color.as_deref().filter(|c| swatch_colour(c).is_none()) {
                    " " span.muted { (colour) }
                }
                @if let Some(g) = f.filament_used_grams {
                    br; span.muted { (grams_text(g)) }
                }
            }
            td.actions { (actions(parts, print)) }
        }
    }
}

/// Edit (a dialog with the classification form) and Delete, where the member may.
fn actions(parts: &PageParts<'_>, print: &Print) -> Markup {
    let f = &print.fields;
    let back = parts.view.query_string();
    html! {
        @if parts.caller.may_update(print).is_ok() {
            details.row-edit {
                summary.icon-button title="Edit classification" aria-label=(format!("Edit print {}", print.id)) { (pencil_icon()) }
                form.edit-form method="post" action=(format!("{PATH}/{}", print.id))
                    aria-label=(format!("Classify print {}", print.id)) {
                    input type="hidden" name=(CSRF_FIELD) value=(parts.csrf);
                    input type="hidden" name="back" value=(back);
                    label {
                        "Status"
                        select name="status" {
                            @for s in PrintStatus::ALL {
                                option value=(s.as_str()) selected[f.status == s] { (status_label(s)) }
                            }
                        }
                    }
                    label {
                        "Failure cause"
                        select name="failure_reason" {
                            option value="" selected[f.failure_reason.is_none()] { "None" }
                            @for r in FailureReason::ALL {
                                option value=(r.as_str()) selected[f.failure_reason == Some(r)] { (reason_label(r)) }
                            }
                        }
                    }
                    button type="submit" { "Save" }
                }
            }
        }
        @if parts.caller.may_delete(print).is_ok() {
            form.row-delete method="post" action=(format!("{PATH}/{}/delete", print.id)) {
                input type="hidden" name=(CSRF_FIELD) value=(parts.csrf);
                input type="hidden" name="back" value=(back);
                button.icon-button.danger type="submit" title="Delete from the print log"
                    aria-label=(format!("Delete print {}", print.id)) { (trash_icon()) }
            }
        }
    }
}

/// The seed's pencil, drawn here (an SVG in the page: no icon font, no inline style).
fn pencil_icon() -> Markup {
    html! {
        svg.icon xmlns="http://www.w3.org/2000/svg" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true" {
            polygon points="2,14 2.8,10.6 10.8,2.6 13.4,5.2 5.4,13.2" fill="currentColor" {}
            polygon points="11.6,1.8 12.6,0.8 15.2,3.4 14.2,4.4" fill="currentColor" {}
        }
    }
}

/// The seed's trash can, drawn here.
fn trash_icon() -> Markup {
    html! {
        svg.icon xmlns="http://www.w3.org/2000/svg" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true" {
            rect x="6" y="1" width="4" height="1.6" fill="currentColor" {}
            rect x="2.5" y="2.6" width="11" height="1.6" rx="0.5" fill="currentColor" {}
            polygon points="3.8,5.2 12.2,5.2 11.4,15 4.6,15" fill="currentColor" {}
        }
    }
}

/// Showing 1–25 of 120, Previous / Next, and the rows per page.
fn pagination(view: &View, query: &Query, total: u64, shown: usize) -> Markup {
    let (limit, offset) = (u64::from(query.limit), query.offset);
    let previous = (offset > 0).then(|| {
        let to = offset.saturating_sub(limit);
        if to == 0 {
            view.without(&["offset"]).href()
        } else {
            view.with("offset", &to.to_string()).href()
        }
    });
    let next =
        (offset + limit < total).then(|| view.with("offset", &(offset + limit).to_string()).href());
    let range = if shown == 0 {
        format!("0 of {}", group_thousands(total))
    } else {
        format!(
            "{}–{} of {}",
            group_thousands(offset + 1),
            group_thousands(offset + shown as u64),
            group_thousands(total)
        )
    };
    html! {
        nav.pagination aria-label="Pages" {
            @match previous {
                Some(href) => a.page-previous rel="prev" href=(href) { "← Previous" },
                None => span.page-previous.disabled aria-disabled="true" { "← Previous" },
            }
            span.page-range aria-live="polite" { "Showing " (range) }
            @match next {
                Some(href) => a.page-next rel="next" href=(href) { "Next →" },
                None => span.page-next.disabled aria-disabled="true" { "Next →" },
            }
            span.rows-per-page {
                "Rows per page: "
                @for n in ROWS_PER_PAGE {
                    @if n == query.limit {
                        strong.rows-current aria-current="true" { (n) }
                    } @else {
                        @let v = if n == log::DEFAULT_LIMIT {
                            view.without(&["offset", "limit"])
                        } else {
                            view.without(&["offset"]).with("limit", &n.to_string())
                        };
                        a.rows-choice href=(v.href()) { (n) }
                    }
                    " "
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_view_keeps_only_its_parameters_in_order() {
        let view = View::from_params(&pairs(&[
            ("offset", "25"),
            ("status", " failed "),
            ("search", ""),
            ("next", "https://evil.example"),
            ("search", "benchy & co"),
        ]));
        assert_eq!(
            view.query_string(),
            "search=benchy%20%26%20co&status=failed&offset=25"
        );
        assert_eq!(view.active_filters(), 2);
        assert_eq!(
            view.with("limit", "50").without(&["offset"]).href(),
            "/console/print-log?search=benchy%20%26%20co&status=failed&limit=50"
        );
        assert_eq!(View::default().href(), PATH);
    }

    #[test]
    fn colours_become_swatches_only_when_they_are_colours() {
        assert_eq!(swatch_colour("#FF8800").as_deref(), Some("#ff8800"));
        assert_eq!(swatch_colour("FF8800FF").as_deref(), Some("#ff8800ff"));
        assert_eq!(swatch_colour("fff").as_deref(), Some("#fff"));
        for text in ["red", "#12345", "\" onload=\"x", "url(x)", ""] {
            assert_eq!(swatch_colour(text), None, "{text}");
        }
    }

    #[test]
    fn durations_and_numbers_read_briefly() {
        assert_eq!(duration_text(35), "35s");
        assert_eq!(duration_text(2530), "42m 10s");
        assert_eq!(duration_text(7500), "2h 05m");
        assert_eq!(grams_text(12.5), "12.5 g");
        assert_eq!(grams_text(1250.4), "1,250 g");
        assert_eq!(trim_decimal(3.0), "3");
        assert_eq!(trim_decimal(0.25), "0.25");
    }

    #[test]
    fn notices_are_only_what_the_page_itself_says() {
        assert_eq!(
            notice_text("deleted-7").as_deref(),
            Some("Print 7 was deleted from the print log.")
        );
        assert_eq!(
            notice_text("cleared-1200").as_deref(),
            Some("The print log was cleared: 1,200 entries deleted.")
        );
        assert_eq!(notice_text("<script>-1"), None);
        assert_eq!(notice_text("deleted-x"), None);
    }
}
