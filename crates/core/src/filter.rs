//! The search filter of `GET /v1/events` and its keyset pagination cursor.
//!
//! Parsing lives here so every surface (HTTP API, export, CLI, console) reads the same parameters
//! the same way and rejects the same mistakes with the same field names.

use std::fmt;

use crate::event::{ActorType, Outcome};
use crate::query::SearchQuery;
use crate::time::{DayBound, Millis, parse_range_bound};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// How `detailed_action` matches: exactly, or as a prefix (`printJob.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailedActionMatch {
    Exact(String),
    Prefix(String),
}

impl DetailedActionMatch {
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (DetailedActionMatch::Exact(want), Some(v)) => v == want,
            (DetailedActionMatch::Prefix(p), Some(v)) => v.starts_with(p.as_str()),
            (_, None) => false,
        }
    }
}

/// Every filter of the event list. All present filters must match (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    pub action: Option<String>,
    pub detailed_action: Option<DetailedActionMatch>,
    /// The actor types to include. Never empty; the default is every type but `system`.
    pub actor_types: Vec<ActorType>,
    /// Matches the actor's email or id exactly.
    pub actor: Option<String>,
    pub entity_type: Option<String>,
    /// Matches the entity's id or any of the bulk `entity_ids`.
    pub entity_id: Option<String>,
    pub channel: Option<String>,
    pub outcome: Option<Outcome>,
    pub correlation_id: Option<String>,
    pub ip: Option<String>,
    /// Inclusive lower bound on `occurred_at`.
    pub from: Option<Millis>,
    /// Exclusive upper bound on `occurred_at`.
    pub to: Option<Millis>,
    /// Case-insensitive substring of the description: the free text of the `q` parameter once
    /// its `key:value` terms are taken out (see [`crate::query`]).
    pub q: Option<String>,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            action: None,
            detailed_action: None,
            actor_types: default_actor_types(),
            actor: None,
            entity_type: None,
            entity_id: None,
            channel: None,
            outcome: None,
            correlation_id: None,
            ip: None,
            from: None,
            to: None,
            q: None,
        }
    }
}

impl EventFilter {
    /// The reference meaning of the filter, entry by entry. Stores answer with indexes instead;
    /// the conformance suite checks them against this.
    pub fn matches(&self, entry: &crate::Entry) -> bool {
        let e = &entry.event;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.action, Some(&e.action))
            && self
                .detailed_action
                .as_ref()
                .is_none_or(|m| m.matches(e.detailed_action.as_deref()))
            && self.actor_types.contains(&e.actor.kind)
            && self.actor.as_deref().is_none_or(|a| {
                e.actor.id.as_deref() == Some(a) || e.actor.email.as_deref() == Some(a)
            })
            && eq(
                &self.entity_type,
                e.entity.as_ref().map(|x| x.kind.as_str()),
            )
            && self.entity_id.as_deref().is_none_or(|id| {
                e.entity.as_ref().and_then(|x| x.id.as_deref()) == Some(id)
                    || e.entity_ids.iter().any(|x| x == id)
            })
            && eq(&self.channel, Some(&e.channel))
            && self.outcome.is_none_or(|o| o == e.outcome)
            && eq(&self.correlation_id, e.context.correlation_id.as_deref())
            && eq(&self.ip, e.context.ip.as_deref())
            && self.from.is_none_or(|f| e.occurred_at >= f)
            && self.to.is_none_or(|t| e.occurred_at < t)
            && self.q.as_deref().is_none_or(|q| {
                e.description
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&q.to_lowercase()))
            })
    }
}

/// System actors are noise for people reading the log, so they are hidden unless asked for
/// (seed 000: "System events are excluded by default").
pub fn default_actor_types() -> Vec<ActorType> {
    ActorType::ALL
        .into_iter()
        .filter(|t| *t != ActorType::System)
        .collect()
}

/// A query parameter that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FilterError {
    pub field: String,
    pub message: String,
}

impl FilterError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FilterError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// One page request: filter, page size and an optional cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub filter: EventFilter,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// Reads the list parameters. Parameters this function does not know are left to the caller
    /// (export adds `format`); empty values count as absent, as an HTML form sends them. `q` is
    /// read with the query language of [`crate::query`]; its terms may only repeat a filter the
    /// parameters set with the same value.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<PageRequest, FilterError> {
        let read = ReadParams::read(params, EventFilter::default())?;
        read.finish()
    }

    /// Reads the list parameters for one record's history: every actor type unless asked
    /// otherwise (the history should be complete), and the record's type and id in place of any
    /// `entity_type` or `entity_id` parameter. A `q` term naming another record is an error,
    /// as it would be against those parameters.
    pub fn for_record<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        entity_type: &str,
        entity_id: &str,
    ) -> Result<PageRequest, FilterError> {
        let every_actor = EventFilter {
            actor_types: ActorType::ALL.to_vec(),
            ..EventFilter::default()
        };
        let mut read = ReadParams::read(params, every_actor)?;
        read.request.filter.entity_type = Some(entity_type.to_string());
        read.request.filter.entity_id = Some(entity_id.to_string());
        for pinned in ["entity_type", "entity_id"] {
            if !read.given.contains(&pinned) {
                read.given.push(pinned);
            }
        }
        read.finish()
    }
}

/// The parameters read, before `q` is applied on top of them.
struct ReadParams<'a> {
    request: PageRequest,
    /// The filters a parameter set (by parameter name).
    given: Vec<&'static str>,
    q: Option<&'a str>,
}

impl<'a> ReadParams<'a> {
    fn read(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        defaults: EventFilter,
    ) -> Result<ReadParams<'a>, FilterError> {
        let mut f = defaults;
        let mut given: Vec<&'static str> = Vec::new();
        let mut limit = DEFAULT_LIMIT;
        let mut cursor = None;
        let mut q = None;
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let text = || Some(value.to_string());
            let filter: &'static str = match key {
                "action" => {
                    f.action = text();
                    "action"
                }
                "detailed_action" => {
                    f.detailed_action = Some(parse_detailed_action(value));
                    "detailed_action"
                }
                "actor_type" => {
                    f.actor_types = parse_actor_types(value)?;
                    "actor_type"
                }
                "actor" => {
                    f.actor = text();
                    "actor"
                }
                "entity_type" => {
                    f.entity_type = text();
                    "entity_type"
                }
                "entity_id" => {
                    f.entity_id = text();
                    "entity_id"
                }
                "channel" => {
                    f.channel = text();
                    "channel"
                }
                "outcome" => {
                    f.outcome = Some(value.parse().map_err(|()| {
                        FilterError::new("outcome", "must be `success` or `failure`")
                    })?);
                    "outcome"
                }
                "correlation_id" => {
                    f.correlation_id = text();
                    "correlation_id"
                }
                "ip" => {
                    f.ip = text();
                    "ip"
                }
                "from" => {
                    f.from = Some(parse_bound("from", value, DayBound::Start)?);
                    "from"
                }
                "to" => {
                    f.to = Some(parse_bound("to", value, DayBound::End)?);
                    "to"
                }
                "q" => {
                    q = Some(value);
                    continue;
                }
                "limit" => {
                    limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            FilterError::new(
                                "limit",
                                format!("must be an integer from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                    continue;
                }
                "cursor" => {
                    cursor = Some(value.parse::<Cursor>()?);
                    continue;
                }
                _ => continue,
            };
            if !given.contains(&filter) {
                given.push(filter);
            }
        }
        Ok(ReadParams {
            request: PageRequest {
                filter: f,
                limit,
                cursor,
            },
            given,
            q,
        })
    }

    /// Applies `q` (which is read only now, so that it meets every parameter whatever their
    /// order) and checks the time range.
    fn finish(mut self) -> Result<PageRequest, FilterError> {
        let f = &mut self.request.filter;
        let set_by_q = match self.q {
            Some(q) => SearchQuery::parse(q)?.apply(f, &self.given)?,
            None => Vec::new(),
        };
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from >= to
        {
            return Err(if set_by_q.contains(&"from") || set_by_q.contains(&"to") {
                FilterError::new(
                    "q",
                    "the `created` range is empty: it must start before it ends \
                     (including the `from` and `to` parameters)",
                )
            } else {
                FilterError::new("from", "must be earlier than `to`")
            });
        }
        Ok(self.request)
    }
}

/// A trailing `*` makes a prefix (`printJob.*`).
pub(crate) fn parse_detailed_action(value: &str) -> DetailedActionMatch {
    match value.strip_suffix('*') {
        Some(prefix) => DetailedActionMatch::Prefix(prefix.to_string()),
        None => DetailedActionMatch::Exact(value.to_string()),
    }
}

fn parse_bound(field: &str, value: &str, bound: DayBound) -> Result<Millis, FilterError> {
    parse_range_bound(value, bound).ok_or_else(|| {
        FilterError::new(
            field,
            "must be an RFC 3339 timestamp or a date (YYYY-MM-DD)",
        )
    })
}

pub(crate) fn parse_actor_types(value: &str) -> Result<Vec<ActorType>, FilterError> {
    if value.eq_ignore_ascii_case("all") {
        return Ok(ActorType::ALL.to_vec());
    }
    let mut types = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let t: ActorType = part.parse().map_err(|()| {
            FilterError::new(
                "actor_type",
                format!(
                    "unknown actor type `{part}`; use user, api, webhook, system, scheduler or all"
                ),
            )
        })?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if types.is_empty() {
        return Err(FilterError::new("actor_type", "names no actor type"));
    }
    types.sort();
    Ok(types)
}

/// Which way a cursor walks from its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorDirection {
    /// Entries strictly older than the position (`next_cursor`).
    Older,
    /// Entries strictly newer than the position (`prev_cursor`).
    Newer,
}

/// A keyset position: entries sort newest first by `(occurred_at, seq)`, and `seq` is unique within
/// an organization, so the pair names one place in the order that survives concurrent inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub direction: CursorDirection,
    pub occurred_at: Millis,
    pub seq: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = match self.direction {
            CursorDirection::Older => 'o',
            CursorDirection::Newer => 'n',
        };
        write!(f, "{d}{}.{}", self.occurred_at, self.seq)
    }
}

impl std::str::FromStr for Cursor {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, FilterError> {
        let bad = || FilterError::new("cursor", "is not a cursor this server issued");
        let direction = match s.as_bytes().first() {
            Some(b'o') => CursorDirection::Older,
            Some(b'n') => CursorDirection::Newer,
            _ => return Err(bad()),
        };
        let (ms, seq) = s[1..].split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            direction,
            occurred_at: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<PageRequest, FilterError> {
        PageRequest::from_params(q.iter().copied())
    }

    #[test]
    fn defaults_hide_system_actors_and_page_by_fifty() {
        let p = parse(&[]).unwrap();
        assert_eq!(p.limit, 50);
        assert!(!p.filter.actor_types.contains(&ActorType::System));
        assert_eq!(p.filter.actor_types.len(), 4);
    }

    #[test]
    fn actor_type_all_and_lists() {
        assert_eq!(
            parse(&[("actor_type", "all")]).unwrap().filter.actor_types,
            ActorType::ALL.to_vec()
        );
        assert_eq!(
            parse(&[("actor_type", "system, api")])
                .unwrap()
                .filter
                .actor_types,
            vec![ActorType::Api, ActorType::System]
        );
        assert_eq!(
            parse(&[("actor_type", "robot")]).unwrap_err().field,
            "actor_type"
        );
    }

    #[test]
    fn detailed_action_trailing_star_is_a_prefix() {
        let p = parse(&[("detailed_action", "printJob.*")]).unwrap();
        assert_eq!(
            p.filter.detailed_action,
            Some(DetailedActionMatch::Prefix("printJob.".into()))
        );
    }

    #[test]
    fn limit_out_of_range_names_the_field() {
        for bad in ["0", "501", "-1", "ten"] {
            assert_eq!(parse(&[("limit", bad)]).unwrap_err().field, "limit");
        }
        assert_eq!(parse(&[("limit", "500")]).unwrap().limit, 500);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let c = Cursor {
            direction: CursorDirection::Newer,
            occurred_at: 1_767_322_245_678,
            seq: 42,
        };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        for bad in ["", "x1.2", "o12", "o1.x", "o.1"] {
            assert_eq!(bad.parse::<Cursor>().unwrap_err().field, "cursor");
        }
    }

    #[test]
    fn q_terms_meet_the_parameters_whatever_their_order() {
        for params in [
            [("q", "action:update paper jam"), ("channel", "auth")],
            [("channel", "auth"), ("q", "action:update paper jam")],
        ] {
            let f = parse(&params).unwrap().filter;
            assert_eq!(f.action.as_deref(), Some("update"));
            assert_eq!(f.channel.as_deref(), Some("auth"));
            assert_eq!(f.q.as_deref(), Some("paper jam"));
        }
        for params in [
            [("q", "action:update"), ("action", "create")],
            [("action", "create"), ("q", "action:update")],
        ] {
            assert_eq!(parse(&params).unwrap_err().field, "q");
        }
        // An empty parameter is absent, so it is no conflict.
        assert!(parse(&[("action", " "), ("q", "action:update")]).is_ok());
    }

    #[test]
    fn q_actor_types_replace_the_default() {
        let f = parse(&[("q", "actor_type:system")]).unwrap().filter;
        assert_eq!(f.actor_types, vec![ActorType::System]);
    }

    #[test]
    fn an_empty_range_names_q_when_a_term_made_it() {
        let e = parse(&[("to", "2026-01-01"), ("q", "created:>2026-01-01")]).unwrap_err();
        assert_eq!(e.field, "q");
        assert!(e.message.contains("range is empty"), "{}", e.message);
        let f = parse(&[("q", "created:2026-01-01")]).unwrap().filter;
        assert_eq!(f.to.unwrap() - f.from.unwrap(), 86_400_000);
    }

    #[test]
    fn a_record_pins_its_entity_and_shows_every_actor_type() {
        let r = PageRequest::for_record([("entity_type", "Other")], "Printer", "42").unwrap();
        assert_eq!(r.filter.entity_type.as_deref(), Some("Printer"));
        assert_eq!(r.filter.entity_id.as_deref(), Some("42"));
        assert_eq!(r.filter.actor_types, ActorType::ALL.to_vec());
        let r = PageRequest::for_record(
            [("q", "actor_type:user entity:Printer:42")],
            "Printer",
            "42",
        )
        .unwrap();
        assert_eq!(r.filter.actor_types, vec![ActorType::User]);
        let e = PageRequest::for_record([("q", "entity_id:7")], "Printer", "42").unwrap_err();
        assert_eq!(e.field, "q");
    }

    #[test]
    fn from_must_precede_to() {
        assert_eq!(
            parse(&[("from", "2026-02-01"), ("to", "2026-01-01")])
                .unwrap_err()
                .field,
            "from"
        );
        assert!(parse(&[("from", "2026-01-01"), ("to", "2026-01-01")]).is_ok());
    }
}
