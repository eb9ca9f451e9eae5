//! Retraced's search language (its `search-query-parser` keywords), read into what Stele's stores
//! can answer: an [`EventFilter`] for every term a store applies itself, the `crud` letters to
//! keep, and the [`Check`]s of the terms no store filter expresses, applied entry by entry.
//!
//! | Retraced term | Stele |
//! |---|---|
//! | `action:x`, `action:x*` | `detailed_action` exact or prefix (one per search) |
//! | `crud:c,u,d` | the general action (`create`/`update`/`delete`, `r` every other), see [`Crud`] |
//! | `received:a,b`, `created:a,b` | `occurred_at` in `[a, b)`: Stele's canonical time (below) |
//! | `actor.id:x` | the actor filter (the actor's id, or email, exactly) |
//! | `target.id:x`, `target.type:x` | the entity id and type filters (any entity of the entry) |
//! | `description:x` | the description contains `x` (any case) |
//! | free text | the description contains it, as Stele's own `q` |
//! | `actor.name:`, `target.name:`, `external_id:`, `location:` | [`Check`]s, entry by entry |
//!
//! Stele orders and ranges entries by one time, `occurred_at`, which is Retraced's
//! `canonical_time` (the `created` the publisher sent, else the time received); `received:` and
//! `created:` both range over it, as the viewer means its date picker to. A keyword given twice
//! with different values (Retraced ORs them) is refused by name where Stele's filter holds one
//! value, never answered with a wrong count.

use stele_core::ActorType;
use stele_core::filter::{DetailedActionMatch, EventFilter};
use stele_core::time::Millis;

/// A search term that cannot be answered, named by its keyword.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{keyword}: {message}")]
pub struct QueryError {
    pub keyword: String,
    pub message: String,
}

/// Description searches shorter than the index can answer are refused as the native `q` is
/// (`stele_core::filter::check_search_text`).
fn searchable(keyword: &str, text: &str) -> Result<(), QueryError> {
    stele_core::filter::check_search_text(keyword, text).map_err(|e| refuse(keyword, e.message))
}

fn refuse(keyword: &str, message: impl Into<String>) -> QueryError {
    QueryError {
        keyword: keyword.into(),
        message: message.into(),
    }
}

/// Retraced's `crud` letters, as a set. An entry's letter is its origin's `crud` when a Retraced
/// publisher sent it, which the publisher also stored as the general action (c `create`, r
/// `view`, u `update`, d `delete`); for every other entry it is derived from the general action
/// (`create` c, `update` u, `delete` d, anything else r). So the letter is a function of the
/// general action alone, and a set of letters is a set of actions ([`Crud::actions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crud {
    pub c: bool,
    pub r: bool,
    pub u: bool,
    pub d: bool,
}

impl Crud {
    pub const ALL: Crud = Crud {
        c: true,
        r: true,
        u: true,
        d: true,
    };

    /// The letter of an entry whose general action is `action`.
    pub fn letter_of(action: &str) -> char {
        match action {
            "create" => 'c',
            "update" => 'u',
            "delete" => 'd',
            _ => 'r',
        }
    }

    pub fn contains(&self, letter: char) -> bool {
        match letter {
            'c' => self.c,
            'r' => self.r,
            'u' => self.u,
            'd' => self.d,
            _ => false,
        }
    }

    pub fn admits(&self, action: &str) -> bool {
        self.contains(Crud::letter_of(action))
    }

    pub fn is_all(&self) -> bool {
        *self == Crud::ALL
    }

    /// The general actions of the kept letters other than `r` (each one exactly one action).
    pub fn actions(&self) -> Vec<&'static str> {
        [(self.c, "create"), (self.u, "update"), (self.d, "delete")]
            .into_iter()
            .filter(|(kept, _)| *kept)
            .map(|(_, action)| action)
            .collect()
    }

    /// The actions of the letters other than `r` that are left out.
    pub fn excluded_actions(&self) -> Vec<&'static str> {
        [(self.c, "create"), (self.u, "update"), (self.d, "delete")]
            .into_iter()
            .filter(|(kept, _)| !*kept)
            .map(|(_, action)| action)
            .collect()
    }

    /// `c,u,d`
    pub fn letters(&self) -> String {
        ['c', 'r', 'u', 'd']
            .into_iter()
            .filter(|l| self.contains(*l))
            .map(String::from)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A term no store filter expresses, checked on each entry the store's filter selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `actor.name:` the actor's name contains it (any case): Retraced matches its words.
    ActorName(String),
    /// `target.name:` the primary entity's name contains it (any case).
    TargetName(String),
    /// `external_id:` the publisher's `external_id`, exactly.
    ExternalId(String),
    /// `location:` the request's location (`context.location`) contains it (any case).
    Location(String),
    /// Free text given beside `description:`: the description contains it too (any case).
    Text(String),
}

impl Check {
    /// The keyword of the term, for a refusal that names it.
    pub fn keyword(&self) -> &'static str {
        match self {
            Check::ActorName(_) => "actor.name",
            Check::TargetName(_) => "target.name",
            Check::ExternalId(_) => "external_id",
            Check::Location(_) => "location",
            Check::Text(_) => "text",
        }
    }

    pub fn admits(&self, entry: &stele_core::Entry) -> bool {
        let e = &entry.event;
        let contains = |have: Option<&str>, want: &str| {
            have.is_some_and(|h| h.to_lowercase().contains(&want.to_lowercase()))
        };
        match self {
            Check::ActorName(name) => contains(e.actor.name.as_deref(), name),
            Check::TargetName(name) => {
                contains(e.entity.as_ref().and_then(|t| t.name.as_deref()), name)
            }
            Check::ExternalId(id) => {
                e.origin.get("external_id").and_then(|v| v.as_str()) == Some(id.as_str())
            }
            Check::Location(place) => contains(e.context.location.as_deref(), place),
            Check::Text(text) => contains(e.description.as_deref(), text),
        }
    }
}

/// What a search asks of the store: `filter` (the store applies it), `crud` (the letters kept),
/// `checks` (applied to each entry the filter selects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub filter: EventFilter,
    pub crud: Crud,
    pub checks: Vec<Check>,
}

impl Plan {
    /// Whether an entry the filter selected is a match.
    pub fn admits(&self, entry: &stele_core::Entry) -> bool {
        self.crud.admits(&entry.event.action) && self.checks.iter().all(|c| c.admits(entry))
    }
}

/// One `keyword:value` or free-text token of the search text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Term {
        keyword: String,
        values: Vec<String>,
    },
    Text(String),
}

/// The keywords of the language; any other `x:y` is free text, as `search-query-parser` reads it.
const KEYWORDS: [&str; 12] = [
    "action",
    "crud",
    "received",
    "created",
    "actor.id",
    "actor.name",
    "description",
    "location",
    "external_id",
    "target.id",
    "target.name",
    "target.type",
];

/// Splits the text into tokens: `keyword:value`, where the value may be `"quoted"` (kept whole)
/// or is split at commas (`crud:c,u,d`, `received:a,b`), and free text (quotes removed).
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        // A word runs to the next space outside quotes.
        let mut end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            if c == '"' {
                quoted = !quoted;
            } else if c.is_whitespace() && !quoted {
                end = i;
                break;
            }
        }
        let word = &rest[..end];
        rest = rest[end..].trim_start();
        let term = word.split_once(':').filter(|(k, _)| KEYWORDS.contains(k));
        match term {
            Some((keyword, value)) => {
                let values = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    Some(inner) => vec![inner.to_string()],
                    None => value
                        .split(',')
                        .map(|v| v.trim_matches('"').to_string())
                        .collect(),
                };
                out.push(Token::Term {
                    keyword: keyword.to_string(),
                    values,
                });
            }
            None => out.push(Token::Text(word.replace('"', ""))),
        }
    }
    out
}

/// Takes Stele's `group.id:<group>` term out of search text: the group (organization) a
/// publisher's search reads, since Stele searches one organization's trail at a time. Returns the
/// group, if named, and the rest of the text.
pub fn take_group(text: &str) -> (Option<String>, String) {
    let mut group = None;
    let mut rest = Vec::new();
    let mut remaining = text.trim_start();
    while !remaining.is_empty() {
        let mut end = remaining.len();
        let mut quoted = false;
        for (i, c) in remaining.char_indices() {
            if c == '"' {
                quoted = !quoted;
            } else if c.is_whitespace() && !quoted {
                end = i;
                break;
            }
        }
        let word = &remaining[..end];
        remaining = remaining[end..].trim_start();
        match word.strip_prefix("group.id:") {
            Some(value) => group = Some(value.trim_matches('"').to_string()),
            None => rest.push(word),
        }
    }
    (group.filter(|g| !g.is_empty()), rest.join(" "))
}

/// Reads Retraced search text into a [`Plan`], on top of `base` (the scope the caller may see).
pub fn plan(text: &str, base: EventFilter) -> Result<Plan, QueryError> {
    let mut filter = base;
    let mut crud = Crud::ALL;
    let mut checks = Vec::new();
    let mut free_text: Vec<String> = Vec::new();
    let set_once = |slot: &mut Option<String>, keyword: &str, value: String| match slot {
        Some(existing) if *existing != value => Err(refuse(
            keyword,
            "give one value per search (Stele's filter holds one)",
        )),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    };
    let mut given: Vec<String> = Vec::new();
    for token in tokens(text) {
        let (keyword, values) = match token {
            Token::Text(word) => {
                if !word.is_empty() {
                    free_text.push(word);
                }
                continue;
            }
            Token::Term { keyword, values } => (keyword, values),
        };
        let one = || -> Result<String, QueryError> {
            match values.as_slice() {
                [v] if !v.is_empty() => Ok(v.clone()),
                [] | [_] => Err(refuse(&keyword, "needs a value")),
                _ => Err(refuse(&keyword, "give one value per search")),
            }
        };
        match keyword.as_str() {
            "action" => {
                if given.iter().any(|k| k == "action") {
                    return Err(refuse(
                        "action",
                        "give one action (or one prefix such as `document.*`) per search",
                    ));
                }
                let value = one()?;
                filter.detailed_action = Some(match value.strip_suffix('*') {
                    Some(prefix) => DetailedActionMatch::Prefix(prefix.to_string()),
                    None => DetailedActionMatch::Exact(value),
                });
            }
            "crud" => {
                let mut letters = Crud {
                    c: false,
                    r: false,
                    u: false,
                    d: false,
                };
                // `crud:` with no letter keeps none.
                for v in values.iter().filter(|v| !v.trim().is_empty()) {
                    match v.trim() {
                        "c" => letters.c = true,
                        "r" => letters.r = true,
                        "u" => letters.u = true,
                        "d" => letters.d = true,
                        other => {
                            return Err(refuse(
                                "crud",
                                format!("`{other}` is not one of c, r, u, d"),
                            ));
                        }
                    }
                }
                // Two crud terms must both hold.
                crud = Crud {
                    c: crud.c && letters.c,
                    r: crud.r && letters.r,
                    u: crud.u && letters.u,
                    d: crud.d && letters.d,
                };
            }
            "received" | "created" => {
                let (from, to) = range(&keyword, &values)?;
                filter.from = Some(filter.from.map_or(from, |f| f.max(from)));
                filter.to = Some(filter.to.map_or(to, |t| t.min(to)));
            }
            "actor.id" => set_once(&mut filter.actor, "actor.id", one()?)?,
            "target.id" => set_once(&mut filter.entity_id, "target.id", one()?)?,
            "target.type" => set_once(&mut filter.entity_type, "target.type", one()?)?,
            "description" => {
                let text = one()?;
                searchable("description", &text)?;
                set_once(&mut filter.q, "description", text)?
            }
            "actor.name" => checks.push(Check::ActorName(one()?)),
            "target.name" => checks.push(Check::TargetName(one()?)),
            "external_id" => checks.push(Check::ExternalId(one()?)),
            "location" => checks.push(Check::Location(one()?)),
            _ => unreachable!("tokens() keeps only KEYWORDS"),
        }
        given.push(keyword);
    }
    if !free_text.is_empty() {
        let text = free_text.join(" ");
        searchable("text", &text)?;
        match &filter.q {
            None => filter.q = Some(text),
            Some(_) => checks.push(Check::Text(text)),
        }
    }
    Ok(Plan {
        filter,
        crud,
        checks,
    })
}

/// A `received:a,b` range: both ends required, each an ISO 8601 time (any offset; a time
/// without one is UTC, as `moment.utc` reads it) or a date; `[a, b)`.
fn range(keyword: &str, values: &[String]) -> Result<(Millis, Millis), QueryError> {
    let [from, to] = values else {
        return Err(refuse(
            keyword,
            format!("The {keyword} field requires a range of two datetimes."),
        ));
    };
    let at = |text: &str| {
        time(text).ok_or_else(|| refuse(keyword, format!("Cannot parse {keyword} datetime {text}")))
    };
    Ok((at(from)?, at(to)?))
}

fn time(text: &str) -> Option<Millis> {
    let text = text.trim();
    if let Some(ms) = stele_core::time::parse_rfc3339(text) {
        return Some(ms);
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// The scope of a Retraced search before its terms: every actor type (Retraced has no actor
/// types, and hides none).
pub fn every_entry() -> EventFilter {
    EventFilter {
        actor_types: ActorType::ALL.to_vec(),
        ..EventFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Plan, QueryError> {
        plan(text, every_entry())
    }

    #[test]
    fn description_searches_shorter_than_three_characters_are_refused() {
        assert_eq!(p("ab crud:c").unwrap_err().keyword, "text");
        assert_eq!(p("description:ab").unwrap_err().keyword, "description");
        assert_eq!(p("abc crud:c").unwrap().filter.q.as_deref(), Some("abc"));
        assert!(p("crud:c,u,d").is_ok());
    }

    #[test]
    fn the_viewers_default_query_keeps_create_update_and_delete() {
        let plan = p("crud:c,u,d").unwrap();
        assert_eq!(plan.crud.actions(), ["create", "update", "delete"]);
        assert!(!plan.crud.r);
        assert!(plan.crud.admits("update") && !plan.crud.admits("view"));
        assert_eq!(plan.filter, every_entry());
    }

    #[test]
    fn the_viewers_search_box_query_reads_free_text_crud_and_a_local_time_range() {
        let plan =
            p("printer crud:c,u,d received:2024-05-01T00:00:00+02:00,2024-05-02T00:00:00+02:00")
                .unwrap();
        assert_eq!(plan.filter.q.as_deref(), Some("printer"));
        assert_eq!(plan.filter.from, Some(1_714_514_400_000));
        assert_eq!(plan.filter.to, Some(1_714_600_800_000));
    }

    #[test]
    fn keywords_map_onto_the_filter_or_a_check() {
        let plan = p(
            r#"action:document.* actor.id:u1 target.id:doc:42 target.type:document description:"the plan" actor.name:"Jo User" external_id:e1 location:Berlin target.name:Q2"#,
        )
        .unwrap();
        assert_eq!(
            plan.filter.detailed_action,
            Some(DetailedActionMatch::Prefix("document.".into()))
        );
        assert_eq!(plan.filter.actor.as_deref(), Some("u1"));
        assert_eq!(plan.filter.entity_id.as_deref(), Some("doc:42"));
        assert_eq!(plan.filter.entity_type.as_deref(), Some("document"));
        assert_eq!(plan.filter.q.as_deref(), Some("the plan"));
        assert_eq!(
            plan.checks,
            [
                Check::ActorName("Jo User".into()),
                Check::ExternalId("e1".into()),
                Check::Location("Berlin".into()),
                Check::TargetName("Q2".into()),
            ]
        );
    }

    #[test]
    fn what_the_filter_cannot_hold_is_refused_by_keyword() {
        assert_eq!(p("action:a action:b").unwrap_err().keyword, "action");
        assert_eq!(p("actor.id:a,b").unwrap_err().keyword, "actor.id");
        assert_eq!(p("actor.id:a actor.id:b").unwrap_err().keyword, "actor.id");
        assert_eq!(p("crud:x").unwrap_err().keyword, "crud");
        assert_eq!(
            p("received:2024-05-01T00:00:00.000Z,").unwrap_err().keyword,
            "received"
        );
        assert_eq!(p("created:yesterday,today").unwrap_err().keyword, "created");
        // The same value twice is no conflict.
        assert!(p("actor.id:a actor.id:a").is_ok());
    }

    #[test]
    fn free_text_beside_a_description_term_is_checked_too_and_unknown_keys_are_text() {
        let plan = p("description:jam foo:bar paper").unwrap();
        assert_eq!(plan.filter.q.as_deref(), Some("jam"));
        assert_eq!(plan.checks, [Check::Text("foo:bar paper".into())]);
    }

    #[test]
    fn a_group_term_is_taken_out() {
        assert_eq!(
            take_group(r#"crud:c group.id:"acme" printer"#),
            (Some("acme".into()), "crud:c printer".into())
        );
        assert_eq!(take_group("crud:c"), (None, "crud:c".into()));
    }

    #[test]
    fn two_crud_terms_both_hold() {
        let plan = p("crud:c,u crud:u,d").unwrap();
        assert_eq!(plan.crud.letters(), "u");
        assert_eq!(p("crud:").unwrap().crud.letters(), "");
    }
}
