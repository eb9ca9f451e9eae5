//! The filter bar: every filter as a control, the active-filter count and Clear all; a filter set
//! by a search term shows its value, disabled, marked as set in Search.

use super::*;

pub(super) fn filter_bar(
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

pub(super) fn actor_type_label(t: ActorType) -> &'static str {
    match t {
        ActorType::User => "User",
        ActorType::Api => "API",
        ActorType::Webhook => "Webhook",
        ActorType::System => "System",
        ActorType::Scheduler => "Scheduler",
    }
}

/// One form control's parameter, current value and validity.
pub(super) struct Field {
    name: String,
    value: Option<String>,
    invalid: bool,
    /// Set by a term of the search box: shown, not editable here.
    searched: bool,
}

/// Under a control whose filter a search term sets.
pub(super) const SET_BY_SEARCH: &str = "Set in Search";

/// The query parameters whose filters the search box's terms set (none if it does not parse: the
/// page then shows the error).
pub(super) fn searched_parameters(query: &ViewQuery) -> Vec<&'static str> {
    query
        .get("q")
        .and_then(|q| SearchQuery::parse(q).ok())
        .map(|s| s.settings.iter().map(|(_, s)| s.parameter()).collect())
        .unwrap_or_default()
}

/// A filter's value in effect, written as its query parameter would be.
pub(super) fn filter_value(f: &EventFilter, name: &str) -> Option<String> {
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

pub(super) fn text_input(
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
pub(super) fn date_input(field: &Field, label: &str) -> Markup {
    let is_date = field
        .value
        .as_deref()
        .is_none_or(|v| v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok());
    let kind = if is_date { "date" } else { "text" };
    text_input(field, label, kind, "", None)
}

pub(super) fn select(field: &Field, label: &str, any: &str, options: &[String]) -> Markup {
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
