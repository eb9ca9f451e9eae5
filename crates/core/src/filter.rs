//! The search filter of `GET /v1/events` and its keyset pagination cursor.
//!
//! Parsing lives here so every surface (HTTP API, export, CLI, console) reads the same parameters
//! the same way and rejects the same mistakes with the same field names.

use std::fmt;

use crate::event::{ActorType, Outcome};
use crate::seq::Seq;
use crate::time::Millis;

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
    /// Whether a text value of the filter holds U+0000. No stored text can (ingest refuses it),
    /// so such a filter matches nothing; stores answer it without asking their database.
    pub fn holds_nul(&self) -> bool {
        [
            self.action.as_deref(),
            self.actor.as_deref(),
            self.entity_type.as_deref(),
            self.entity_id.as_deref(),
            self.channel.as_deref(),
            self.correlation_id.as_deref(),
            self.ip.as_deref(),
            self.q.as_deref(),
            self.detailed_action.as_ref().map(|d| match d {
                DetailedActionMatch::Exact(v) | DetailedActionMatch::Prefix(v) => v.as_str(),
            }),
        ]
        .into_iter()
        .flatten()
        .any(|t| t.contains('\0'))
    }

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
            && self
                .entity_type
                .as_deref()
                .is_none_or(|t| e.entities().any(|x| x.kind == t))
            && self.entity_id.as_deref().is_none_or(|id| {
                e.entities().any(|x| x.id.as_deref() == Some(id))
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

/// A trailing `*` makes a prefix (`printJob.*`).
pub(crate) fn parse_detailed_action(value: &str) -> DetailedActionMatch {
    match value.strip_suffix('*') {
        Some(prefix) => DetailedActionMatch::Prefix(prefix.to_string()),
        None => DetailedActionMatch::Exact(value.to_string()),
    }
}

/// The fewest characters a description search may have. The indexes find a substring by its
/// three-character pieces (SQLite's FTS5 trigram table, PostgreSQL's `pg_trgm`); a shorter one
/// has none, so it would be checked against every entry of the organization (about a second per
/// million entries), and it is in most descriptions anyway.
pub const MIN_SEARCH_CHARS: usize = 3;

/// Refuses a description search shorter than [`MIN_SEARCH_CHARS`], naming `field` (each door
/// calls it where its own search text becomes [`EventFilter::q`]).
pub fn check_search_text(field: &str, text: &str) -> Result<(), FilterError> {
    let chars = text.chars().count();
    if chars < MIN_SEARCH_CHARS {
        return Err(FilterError::new(
            field,
            format!(
                "the text to search for must be at least {MIN_SEARCH_CHARS} characters \
                 ({text:?} has {chars}); filters such as `action:update` need no text"
            ),
        ));
    }
    Ok(())
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
    pub seq: Seq,
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

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let c = Cursor {
            direction: CursorDirection::Newer,
            occurred_at: 1_767_322_245_678,
            seq: Seq::new(42),
        };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        for bad in ["", "x1.2", "o12", "o1.x", "o.1"] {
            assert_eq!(bad.parse::<Cursor>().unwrap_err().field, "cursor");
        }
    }
}
