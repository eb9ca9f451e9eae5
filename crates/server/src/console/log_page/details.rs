//! One entry's details, shown when its row expands: request context, field changes (old in red,
//! new in green), correlated entries, bulk ids and metadata.

use super::*;

pub(super) fn entry_details(
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
                        @if let Some(sent) = &e.actor.original_type {
                            " " span.muted { "(sent as “" (sent) "”)" }
                        }
                        @for part in [&e.actor.name, &e.actor.email, &e.actor.id].into_iter().flatten() {
                            " · " (part)
                        }
                        @if let Some(href) = &e.actor.href { " · " (outside_link(href)) }
                    }
                    @if let Some(x) = &e.entity {
                        dt { "Entity" }
                        dd { (entity_text(x)) }
                    }
                    @for x in &e.related_entities {
                        dt { "Related entity" }
                        dd { (entity_text(x)) }
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
                    (metadata_list(&e.metadata))
                }
            }
            @if !e.actor.metadata.is_empty() {
                section.metadata {
                    h3 { "Actor metadata" }
                    (metadata_list(&e.actor.metadata))
                }
            }
            @for x in e.entities().filter(|x| !x.metadata.is_empty()) {
                section.metadata {
                    h3 { "Metadata of " (x.kind) @if let Some(id) = &x.id { " " code { (id) } } }
                    (metadata_list(&x.metadata))
                }
            }
            @if let Some(protocol) = e.origin.get("protocol").and_then(|p| p.as_str()) {
                section.origin {
                    h3 { "Sent through " (protocol_label(protocol)) }
                    (metadata_list(&e.origin))
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

/// An entity as one line: its type, id, name and link.
fn entity_text(x: &Entity) -> Markup {
    html! {
        (x.kind)
        @if let Some(id) = &x.id { " " code { (id) } }
        @if let Some(name) = &x.name { " · " (name) }
        @if let Some(href) = &x.href { " · " (outside_link(href)) }
    }
}

/// A link the sender gave (to the actor or a record in its own application): a link only when
/// it is a web address, so a `javascript:` or `data:` one is shown as text, never followed.
fn outside_link(href: &str) -> Markup {
    let web = href.starts_with("https://") || href.starts_with("http://");
    html! {
        @if web {
            a.outside href=(href) rel="noopener noreferrer nofollow" target="_blank" { (long_text(href)) }
        } @else {
            code { (long_text(href)) }
        }
    }
}

/// A map of scalars (or, in an origin, small objects) as a definition list.
fn metadata_list(map: &stele_core::event::Metadata) -> Markup {
    html! {
        dl.kv {
            @for (k, v) in map { dt { (k) } dd { (value_cell(Some(v))) } }
        }
    }
}

/// The name of a compatible door, as people know the service.
fn protocol_label(protocol: &str) -> &str {
    match protocol {
        "workos" => "the WorkOS API",
        "retraced" => "the Retraced API",
        other => other,
    }
}

/// Every entry of a correlation id, whoever the actor, on the audit log page.
pub(super) fn correlation_href(base: &str, correlation_id: &str) -> String {
    ViewQuery::default()
        .with("correlation_id", correlation_id)
        .with("actor_type", "all")
        .href(&log_path(base))
}

/// Field changes: old values in red, new in green. A column is shown only when some change has
/// that side, so a create shows only new values and a delete only old ones.
pub(super) fn changes_table(changes: &[Change]) -> Markup {
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
