//! The log page as a whole: its heading, the recording-off banner's place, the chart, the filter
//! bar, the table and the pager, put together from the data `render_view` gathered.

use super::*;

/// People's names for the parameters, for error messages.
pub(super) fn parameter_label(field: &str) -> &str {
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

pub(super) fn render_page(
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
                (entries_table(view, query, data, &self_path))
                (pagination(query, &data.page, request.limit, &self_path))
            }
        }
    }
}

/// A history page's record name, from the newest entry on the page that names it.
pub(super) fn record_name<'a>(view: &View<'_>, entries: &'a [Entry]) -> Option<&'a str> {
    let (t, id) = view.record?;
    entries.iter().find_map(|e| {
        e.event
            .entity
            .as_ref()
            .filter(|x| x.kind == t && x.id.as_deref() == Some(id))
            .and_then(|x| x.name.as_deref())
    })
}
