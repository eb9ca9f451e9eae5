//! The entries table (a row per entry, or per correlated group on the page, expandable to its
//! details) and the Newer/Older pager.

use super::*;

pub(super) fn entries_table(
    view: &View<'_>,
    query: &ViewQuery,
    data: &LogData,
    self_path: &str,
) -> Markup {
    let page = &data.page;
    html! {
        div.table-scroll {
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
                @for row in table_rows(&page.entries, data.collapse) {
                    (entry_rows(view.base, &row, data.correlated.get(&row.entry.id), view.now))
                }
            }
        }
    }
}

/// One entry: its row, and the row below that expands to its details (a `<details>`, so it
/// works without JavaScript; `log.js` also lets a click anywhere on the row toggle it). A
/// correlated entry's row counts the entries of its group, itself included, as "(3)"; its details
/// list the others. `data-entries` names every entry on the page the row stands for (the group's
/// entries folded into it, newest first), so a script or a test can match rows to the API's page.
pub(super) fn entry_rows(
    base: &str,
    row: &TableRow<'_>,
    correlated: Option<&Correlated>,
    now: Millis,
) -> Markup {
    let entry = row.entry;
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
        tbody.entry.grouped[!row.folded.is_empty()] #(format!("entry-{}", entry.id))
            data-entries=(row.entry_ids()) {
            tr.log-row.failure[e.outcome == stele_core::Outcome::Failure] {
                td.time { (time_cell(e.occurred_at, now)) }
                td.actor { (actor_cell(&e.actor)) }
                td.action {
                    (action_badge(&e.action))
                    @if others > 0 {
                        " "
                        span.correlated-count title=(correlated_title(others, more)) {
                            "(" (others + 1) @if more { "+" } ")"
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

/// The count's tooltip: how many entries one request made, this one included.
pub(super) fn correlated_title(others: usize, more: bool) -> String {
    if more {
        format!(
            "More than {} entries share this correlation id; expand to see them",
            MAX_CORRELATED + 1
        )
    } else {
        format!(
            "{} entries share this correlation id; expand to see them",
            others + 1
        )
    }
}

pub(super) fn actor_cell(actor: &Actor) -> Markup {
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

pub(super) fn entity_cell(base: &str, entity: Option<&Entity>, bulk: usize) -> Markup {
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

pub(super) fn pagination(query: &ViewQuery, page: &Page, limit: usize, self_path: &str) -> Markup {
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
