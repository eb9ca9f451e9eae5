//! The search query language of the `q` parameter, GitHub/Retraced style:
//! `action:update actor:ada@example.com entity:Printer:42 created:>2026-01-01 "exact phrase"`.
//!
//! `key:value` terms set the list's filters; every other word or quoted phrase is free text,
//! searched for in the description. This module only reads the text into filter settings;
//! [`crate::filter`] decides how they combine with the other query parameters. Every mistake is a
//! [`FilterError`] naming the field `q` and quoting the term at fault, never a silent guess.
//!
//! Grammar (whitespace separates tokens):
//!
//! ```text
//! query   = { token }
//! token   = term | phrase | word
//! term    = key ":" ( quoted | bare )          key: ASCII letters, digits, `_`; any case
//! phrase  = quoted                             always free text, colons and all
//! quoted  = '"' { char | '\"' | '\\' } '"'
//! word    = any other run of non-whitespace    (a `"` inside a word is an ordinary character)
//! ```
//!
//! A word shaped like `key:value` whose value starts with `//` (`https://example.com`) is free
//! text, so pasted URLs need no quotes.

use crate::event::{ActorType, Outcome};
use crate::filter::{
    DetailedActionMatch, EventFilter, FilterError, check_search_text, parse_actor_types,
    parse_detailed_action,
};
use crate::time::{DayBound, Millis, parse_range_bound};

/// The keys, as written in the documentation and in error messages.
const KEYS: &str = "action, detailed_action, actor_type, actor, entity, entity_type, entity_id, \
                    channel, outcome, correlation_id (or correlation), ip, created";

/// A parsed `q`: filter settings and the free text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    /// Each filter a term sets, with the term as written (for error messages). `entity:T:id` and
    /// some `created:` forms set two filters.
    pub settings: Vec<(String, Setting)>,
    /// Every free word and quoted phrase, in order, joined by single spaces: one case-insensitive
    /// substring of the description. `None` when the query is only terms.
    pub text: Option<String>,
}

/// One filter a term sets, in the filter's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Action(String),
    DetailedAction(DetailedActionMatch),
    ActorTypes(Vec<ActorType>),
    Actor(String),
    EntityType(String),
    EntityId(String),
    Channel(String),
    Outcome(Outcome),
    CorrelationId(String),
    Ip(String),
    /// Inclusive lower bound on `occurred_at`, as [`EventFilter::from`].
    From(Millis),
    /// Exclusive upper bound on `occurred_at`, as [`EventFilter::to`].
    To(Millis),
}

impl Setting {
    /// The query parameter of `GET /v1/events` that sets the same filter.
    pub fn parameter(&self) -> &'static str {
        match self {
            Setting::Action(_) => "action",
            Setting::DetailedAction(_) => "detailed_action",
            Setting::ActorTypes(_) => "actor_type",
            Setting::Actor(_) => "actor",
            Setting::EntityType(_) => "entity_type",
            Setting::EntityId(_) => "entity_id",
            Setting::Channel(_) => "channel",
            Setting::Outcome(_) => "outcome",
            Setting::CorrelationId(_) => "correlation_id",
            Setting::Ip(_) => "ip",
            Setting::From(_) => "from",
            Setting::To(_) => "to",
        }
    }

    /// Whether the filter already holds exactly this value.
    fn agrees_with(&self, f: &EventFilter) -> bool {
        let same = |have: &Option<String>, want: &String| have.as_ref() == Some(want);
        match self {
            Setting::Action(v) => same(&f.action, v),
            Setting::DetailedAction(m) => f.detailed_action.as_ref() == Some(m),
            Setting::ActorTypes(types) => &f.actor_types == types,
            Setting::Actor(v) => same(&f.actor, v),
            Setting::EntityType(v) => same(&f.entity_type, v),
            Setting::EntityId(v) => same(&f.entity_id, v),
            Setting::Channel(v) => same(&f.channel, v),
            Setting::Outcome(o) => f.outcome == Some(*o),
            Setting::CorrelationId(v) => same(&f.correlation_id, v),
            Setting::Ip(v) => same(&f.ip, v),
            Setting::From(ms) => f.from == Some(*ms),
            Setting::To(ms) => f.to == Some(*ms),
        }
    }

    fn write(self, f: &mut EventFilter) {
        match self {
            Setting::Action(v) => f.action = Some(v),
            Setting::DetailedAction(m) => f.detailed_action = Some(m),
            Setting::ActorTypes(types) => f.actor_types = types,
            Setting::Actor(v) => f.actor = Some(v),
            Setting::EntityType(v) => f.entity_type = Some(v),
            Setting::EntityId(v) => f.entity_id = Some(v),
            Setting::Channel(v) => f.channel = Some(v),
            Setting::Outcome(o) => f.outcome = Some(o),
            Setting::CorrelationId(v) => f.correlation_id = Some(v),
            Setting::Ip(v) => f.ip = Some(v),
            Setting::From(ms) => f.from = Some(ms),
            Setting::To(ms) => f.to = Some(ms),
        }
    }
}

impl SearchQuery {
    /// Reads a query. Errors name the field `q` and quote the term at fault.
    pub fn parse(q: &str) -> Result<SearchQuery, FilterError> {
        let mut query = SearchQuery::default();
        let mut text: Vec<String> = Vec::new();
        let mut lexer = Lexer { src: q, pos: 0 };
        while let Some(token) = lexer.next_token()? {
            match token {
                Token::Text(t) => {
                    if !t.is_empty() {
                        text.push(t)
                    }
                }
                Token::Term {
                    key,
                    value,
                    written,
                    negated,
                } => {
                    let key = Key::parse(key).ok_or_else(|| {
                        problem(
                            written,
                            format!(
                                "unknown search key `{key}`; the keys are {KEYS}. To search for \
                                 the text itself, put it in double quotes"
                            ),
                        )
                    })?;
                    if negated {
                        return Err(problem(
                            written,
                            "excluding with `-` is not supported; search for what to include",
                        ));
                    }
                    if value.is_empty() {
                        return Err(problem(
                            written,
                            "has no value; write it right after the colon, with no space",
                        ));
                    }
                    for setting in key.settings(&value).map_err(|m| problem(written, m))? {
                        query.settings.push((written.to_string(), setting));
                    }
                }
            }
        }
        query.text = (!text.is_empty()).then(|| text.join(" "));
        if let Some(text) = &query.text {
            check_search_text("q", text)?;
        }
        Ok(query)
    }

    /// Whether a term of the query sets the filter of this query parameter.
    pub fn sets(&self, parameter: &str) -> bool {
        self.settings
            .iter()
            .any(|(_, s)| s.parameter() == parameter)
    }

    /// Writes the query into `f`, whose filters named in `given` were set by query parameters.
    /// A filter may be asked for more than once (by a parameter and a term, or by two terms) only
    /// with the same value; otherwise it is an error naming `q`, not a silent choice of one.
    /// Returns the parameters the query set.
    pub fn apply(
        self,
        f: &mut EventFilter,
        given: &[&str],
    ) -> Result<Vec<&'static str>, FilterError> {
        let mut set: Vec<(&'static str, String)> = Vec::new();
        for (written, setting) in self.settings {
            let parameter = setting.parameter();
            if !setting.agrees_with(f) {
                if given.contains(&parameter) {
                    return Err(problem(
                        &written,
                        format!(
                            "asks for a different value than the `{parameter}` parameter; \
                             give each filter once"
                        ),
                    ));
                }
                if let Some((_, earlier)) = set.iter().find(|(p, _)| *p == parameter) {
                    return Err(problem(
                        &written,
                        format!(
                            "asks for a different `{parameter}` than `{earlier}`; give each \
                             filter once"
                        ),
                    ));
                }
            }
            setting.write(f);
            if !set.iter().any(|(p, _)| *p == parameter) {
                set.push((parameter, written));
            }
        }
        f.q = self.text;
        Ok(set.into_iter().map(|(p, _)| p).collect())
    }
}

fn problem(written: &str, message: impl std::fmt::Display) -> FilterError {
    FilterError::new("q", format!("`{written}`: {message}"))
}

/// The keys of the language. Aliases map onto the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Action,
    DetailedAction,
    ActorType,
    Actor,
    Entity,
    EntityType,
    EntityId,
    Channel,
    Outcome,
    CorrelationId,
    Ip,
    Created,
}

impl Key {
    fn parse(name: &str) -> Option<Key> {
        Some(match name.to_ascii_lowercase().as_str() {
            "action" => Key::Action,
            "detailed_action" => Key::DetailedAction,
            "actor_type" => Key::ActorType,
            "actor" => Key::Actor,
            "entity" => Key::Entity,
            "entity_type" => Key::EntityType,
            "entity_id" => Key::EntityId,
            "channel" => Key::Channel,
            "outcome" => Key::Outcome,
            "correlation_id" | "correlation" => Key::CorrelationId,
            "ip" => Key::Ip,
            "created" => Key::Created,
            _ => return None,
        })
    }

    /// What a non-empty value of this key sets, or why it cannot be read.
    fn settings(self, value: &str) -> Result<Vec<Setting>, String> {
        let text = || value.to_string();
        Ok(vec![match self {
            Key::Action => Setting::Action(text()),
            Key::DetailedAction => Setting::DetailedAction(parse_detailed_action(value)),
            Key::ActorType => Setting::ActorTypes(parse_actor_types(value).map_err(|e| e.message)?),
            Key::Actor => Setting::Actor(text()),
            Key::Entity => return entity(value),
            Key::EntityType => Setting::EntityType(text()),
            Key::EntityId => Setting::EntityId(text()),
            Key::Channel => Setting::Channel(text()),
            Key::Outcome => Setting::Outcome(
                value
                    .parse()
                    .map_err(|()| "the outcome must be `success` or `failure`".to_string())?,
            ),
            Key::CorrelationId => Setting::CorrelationId(text()),
            Key::Ip => Setting::Ip(text()),
            Key::Created => return created(value),
        }])
    }
}

/// `Type` or `Type:id`; ids may hold colons, types are taken up to the first.
fn entity(value: &str) -> Result<Vec<Setting>, String> {
    let (kind, id) = match value.split_once(':') {
        Some((kind, id)) => (kind, Some(id)),
        None => (value, None),
    };
    if kind.is_empty() {
        return Err("the entity type is missing; write `entity:Type` or `entity:Type:id`".into());
    }
    let mut settings = vec![Setting::EntityType(kind.to_string())];
    match id {
        Some("") => {
            return Err("the entity id is missing after `Type:`; write `entity:Type:id`".into());
        }
        Some(id) => settings.push(Setting::EntityId(id.to_string())),
        None => {}
    }
    Ok(settings)
}

/// `>X`, `>=X`, `<X`, `<=X`, `X` or `A..B` (either side may be `*`), where each point is a
/// date (a whole UTC day) or an RFC 3339 instant (one millisecond). The bounds it yields have the
/// filter's meaning: `from` inclusive, `to` exclusive.
fn created(value: &str) -> Result<Vec<Setting>, String> {
    let start = |point: &str| instant(point, DayBound::Start);
    let past = |point: &str| instant(point, DayBound::End);
    if let Some(point) = value.strip_prefix(">=") {
        return Ok(vec![Setting::From(start(point)?)]);
    }
    if let Some(point) = value.strip_prefix("<=") {
        return Ok(vec![Setting::To(past(point)?)]);
    }
    if let Some(point) = value.strip_prefix('>') {
        return Ok(vec![Setting::From(past(point)?)]);
    }
    if let Some(point) = value.strip_prefix('<') {
        return Ok(vec![Setting::To(start(point)?)]);
    }
    if let Some((a, b)) = value.split_once("..") {
        let mut settings = Vec::new();
        if a != "*" {
            settings.push(Setting::From(start(a)?));
        }
        if b != "*" {
            settings.push(Setting::To(past(b)?));
        }
        if settings.is_empty() {
            return Err("`*..*` names no bound; leave the term out instead".into());
        }
        return Ok(settings);
    }
    Ok(vec![
        Setting::From(start(value)?),
        Setting::To(past(value)?),
    ])
}

/// A point's first millisecond (`Start`) or the millisecond after it ends (`End`).
fn instant(point: &str, bound: DayBound) -> Result<Millis, String> {
    if point.is_empty() {
        return Err(
            "a date is missing; write `created:>2026-01-01`, `created:2026-01-01..2026-01-31` \
             or similar"
                .into(),
        );
    }
    parse_range_bound(point, bound)
        .ok_or_else(|| format!("`{point}` is not a date (YYYY-MM-DD) or an RFC 3339 timestamp"))
}

enum Token<'a> {
    /// A free word or quoted phrase.
    Text(String),
    Term {
        key: &'a str,
        value: String,
        /// The term as it appears in the query, for messages.
        written: &'a str,
        /// Written with a leading `-`.
        negated: bool,
    },
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn next_token(&mut self) -> Result<Option<Token<'a>>, FilterError> {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
        let start = self.pos;
        let rest = self.rest();
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.starts_with('"') {
            return Ok(Some(Token::Text(self.quoted(start)?)));
        }
        let negated = rest.starts_with('-');
        let after_sign = &rest[usize::from(negated)..];
        let key_len = after_sign
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after_sign.len());
        let key = &after_sign[..key_len];
        let after_key = &after_sign[key_len..];
        let is_term = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && after_key.starts_with(':')
            && !after_key.starts_with("://");
        if !is_term {
            return Ok(Some(Token::Text(self.bare().to_string())));
        }
        self.pos += usize::from(negated) + key_len + 1;
        let value = if self.rest().starts_with('"') {
            self.quoted(start)?
        } else {
            self.bare().to_string()
        };
        Ok(Some(Token::Term {
            key,
            value,
            written: &self.src[start..self.pos],
            negated,
        }))
    }

    /// Up to the next whitespace.
    fn bare(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// A double-quoted string at the current position; `\"` and `\\` are escapes, any other
    /// backslash is itself (so `"C:\temp"` means what it says).
    fn quoted(&mut self, token_start: usize) -> Result<String, FilterError> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match self.rest()[i + 1..].chars().next() {
                    Some(escaped @ ('"' | '\\')) => {
                        out.push(escaped);
                        chars.next();
                    }
                    _ => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        Err(problem(
            &self.src[token_start..],
            "the double quote is never closed; close it, or write `\\\"` for a literal quote \
             inside a quoted phrase",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn parse(q: &str) -> SearchQuery {
        SearchQuery::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn settings(q: &str) -> Vec<Setting> {
        parse(q).settings.into_iter().map(|(_, s)| s).collect()
    }

    fn error(q: &str) -> String {
        let e = SearchQuery::parse(q).expect_err(q);
        assert_eq!(e.field, "q", "{q}");
        e.message
    }

    fn ms(rfc3339: &str) -> Millis {
        parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn the_product_example_reads_into_filters_and_a_phrase() {
        let q = parse(
            r#"action:update actor:ada@example.com entity:Printer:42 channel:auth created:>2026-01-01 "exact phrase""#,
        );
        assert_eq!(
            q.settings
                .iter()
                .map(|(_, s)| s.clone())
                .collect::<Vec<_>>(),
            vec![
                Setting::Action("update".into()),
                Setting::Actor("ada@example.com".into()),
                Setting::EntityType("Printer".into()),
                Setting::EntityId("42".into()),
                Setting::Channel("auth".into()),
                Setting::From(ms("2026-01-02T00:00:00Z")),
            ]
        );
        assert_eq!(q.text.as_deref(), Some("exact phrase"));
        assert_eq!(q.settings[2].0, "entity:Printer:42");
    }

    #[test]
    fn text_shorter_than_three_characters_is_refused_and_terms_need_none() {
        for short in ["x", "ab", "é", "\"ab\""] {
            let message = error(short);
            assert!(
                message.contains("at least 3 characters"),
                "{short}: {message}"
            );
        }
        assert!(error("action:update ab").contains("\"ab\" has 2"));
        assert_eq!(parse("abc").text.as_deref(), Some("abc"));
        assert_eq!(parse("a b").text.as_deref(), Some("a b"));
        assert_eq!(parse("éèà").text.as_deref(), Some("éèà"));
        assert_eq!(parse("action:update").text, None);
    }

    #[test]
    fn plain_text_is_one_substring_as_before() {
        assert_eq!(parse("printer").text.as_deref(), Some("printer"));
        assert_eq!(
            parse("  Retried   PRINT job ").text.as_deref(),
            Some("Retried PRINT job")
        );
        assert_eq!(parse("").text, None);
        assert_eq!(parse("   ").text, None);
        assert!(parse("   ").settings.is_empty());
    }

    #[test]
    fn free_words_and_phrases_join_in_order_around_terms() {
        let q = parse(r#"paper action:update "jam  in" outcome:failure tray 2"#);
        assert_eq!(q.text.as_deref(), Some("paper jam  in tray 2"));
        assert_eq!(q.settings.len(), 2);
        assert_eq!(parse("action:update").text, None);
        assert_eq!(parse(r#"action:update """#).text, None);
    }

    #[test]
    fn quoted_text_is_always_free_text() {
        for (q, text) in [
            (r#""http://x""#, "http://x"),
            (r#""action:update""#, "action:update"),
            (r#""foo:bar baz""#, "foo:bar baz"),
            (r#""say \"hi\"""#, r#"say "hi""#),
            (r#""back\\slash""#, r"back\slash"),
            (r#""C:\temp""#, r"C:\temp"),
        ] {
            let parsed = parse(q);
            assert!(parsed.settings.is_empty(), "{q}");
            assert_eq!(parsed.text.as_deref(), Some(text), "{q}");
        }
    }

    #[test]
    fn urls_and_colons_that_are_not_keys_are_free_text() {
        for q in [
            "https://example.com/a?b=c",
            "12:30",
            "ns-1:x",
            ":::",
            ":action",
            "- -",
            r#"the 5" nozzle"#,
            "9lives:x",
        ] {
            let parsed = parse(q);
            assert!(parsed.settings.is_empty(), "{q}");
            assert_eq!(parsed.text.as_deref(), Some(q), "{q}");
        }
    }

    #[test]
    fn quoted_values_may_hold_spaces_colons_and_quotes() {
        assert_eq!(
            settings(r#"actor:"Ada Lovelace""#),
            vec![Setting::Actor("Ada Lovelace".into())]
        );
        assert_eq!(
            settings(r#"entity:"Print Job:a b:c""#),
            vec![
                Setting::EntityType("Print Job".into()),
                Setting::EntityId("a b:c".into())
            ]
        );
        assert_eq!(
            settings(r#"correlation:"req \"7\"""#),
            vec![Setting::CorrelationId(r#"req "7""#.into())]
        );
        let q = parse(r#"actor:"Ada Lovelace" rest"#);
        assert_eq!(q.settings[0].0, r#"actor:"Ada Lovelace""#);
        assert_eq!(q.text.as_deref(), Some("rest"));
    }

    #[test]
    fn every_key_maps_onto_its_filter() {
        let cases: Vec<(&str, Vec<Setting>)> = vec![
            ("action:create", vec![Setting::Action("create".into())]),
            (
                "detailed_action:printJob.retry",
                vec![Setting::DetailedAction(DetailedActionMatch::Exact(
                    "printJob.retry".into(),
                ))],
            ),
            (
                "detailed_action:printJob.*",
                vec![Setting::DetailedAction(DetailedActionMatch::Prefix(
                    "printJob.".into(),
                ))],
            ),
            (
                "actor_type:system,api",
                vec![Setting::ActorTypes(vec![ActorType::Api, ActorType::System])],
            ),
            (
                "actor_type:all",
                vec![Setting::ActorTypes(ActorType::ALL.to_vec())],
            ),
            ("actor:u1", vec![Setting::Actor("u1".into())]),
            (
                "entity:Printer",
                vec![Setting::EntityType("Printer".into())],
            ),
            (
                "entity_type:Printer",
                vec![Setting::EntityType("Printer".into())],
            ),
            ("entity_id:job-7", vec![Setting::EntityId("job-7".into())]),
            (
                "channel:pii-read",
                vec![Setting::Channel("pii-read".into())],
            ),
            ("outcome:failure", vec![Setting::Outcome(Outcome::Failure)]),
            ("outcome:success", vec![Setting::Outcome(Outcome::Success)]),
            (
                "correlation_id:req-1",
                vec![Setting::CorrelationId("req-1".into())],
            ),
            (
                "correlation:req-1",
                vec![Setting::CorrelationId("req-1".into())],
            ),
            ("ip:2001:db8::1", vec![Setting::Ip("2001:db8::1".into())]),
            ("ACTION:Update", vec![Setting::Action("Update".into())]),
        ];
        for (q, expected) in cases {
            assert_eq!(settings(q), expected, "{q}");
        }
    }

    #[test]
    fn created_bounds_are_exact_for_dates_and_instants() {
        let day = ms("2026-01-01T00:00:00Z");
        let next = ms("2026-01-02T00:00:00Z");
        let t = ms("2026-01-01T10:00:00.250Z");
        let cases: Vec<(&str, Vec<Setting>)> = vec![
            ("created:>=2026-01-01", vec![Setting::From(day)]),
            ("created:>2026-01-01", vec![Setting::From(next)]),
            ("created:<2026-01-01", vec![Setting::To(day)]),
            ("created:<=2026-01-01", vec![Setting::To(next)]),
            (
                "created:2026-01-01",
                vec![Setting::From(day), Setting::To(next)],
            ),
            (
                "created:2026-01-01..2026-01-01",
                vec![Setting::From(day), Setting::To(next)],
            ),
            (
                "created:2025-12-01..2026-01-01",
                vec![Setting::From(ms("2025-12-01T00:00:00Z")), Setting::To(next)],
            ),
            ("created:2026-01-01..*", vec![Setting::From(day)]),
            ("created:*..2026-01-01", vec![Setting::To(next)]),
            ("created:>=2026-01-01T10:00:00.250Z", vec![Setting::From(t)]),
            (
                "created:>2026-01-01T10:00:00.250Z",
                vec![Setting::From(t + 1)],
            ),
            ("created:<2026-01-01T10:00:00.250Z", vec![Setting::To(t)]),
            (
                "created:<=2026-01-01T10:00:00.250Z",
                vec![Setting::To(t + 1)],
            ),
            (
                "created:2026-01-01T10:00:00.250Z",
                vec![Setting::From(t), Setting::To(t + 1)],
            ),
            (
                "created:2026-01-01T12:00:00.250+02:00..2026-01-01T10:00:01Z",
                vec![
                    Setting::From(t),
                    Setting::To(ms("2026-01-01T10:00:01.001Z")),
                ],
            ),
        ];
        for (q, expected) in cases {
            assert_eq!(settings(q), expected, "{q}");
        }
    }

    #[test]
    fn unknown_keys_name_the_term_and_suggest_quotes() {
        let m = error("printer foo:bar");
        assert!(m.starts_with("`foo:bar`: unknown search key `foo`"), "{m}");
        assert!(m.contains("double quotes"), "{m}");
        assert!(error("error: timeout").starts_with("`error:`"));
        assert!(error("http:example").starts_with("`http:example`"));
    }

    #[test]
    fn malformed_values_name_the_term() {
        for (q, says) in [
            (
                "created:>2026-13-01",
                "`created:>2026-13-01`: `2026-13-01` is not a date",
            ),
            ("created:yesterday", "`yesterday` is not a date"),
            ("created:>", "a date is missing"),
            ("created:2026-01-01..", "a date is missing"),
            ("created:*..*", "names no bound"),
            ("outcome:maybe", "`outcome:maybe`: the outcome must be"),
            (
                "actor_type:robot",
                "`actor_type:robot`: unknown actor type `robot`",
            ),
            ("actor_type:,", "names no actor type"),
            ("action:", "`action:`: has no value"),
            ("action: update", "`action:`: has no value"),
            (r#"actor:"""#, "has no value"),
            ("entity::42", "the entity type is missing"),
            ("entity:Printer:", "the entity id is missing"),
            (
                "-action:update",
                "`-action:update`: excluding with `-` is not supported",
            ),
            ("-foo:bar", "unknown search key `foo`"),
        ] {
            let m = error(q);
            assert!(m.contains(says), "{q}: {m}");
        }
    }

    #[test]
    fn an_unclosed_quote_is_an_error_naming_the_rest() {
        let m = error(r#"action:update "paper jam"#);
        assert!(
            m.starts_with(r#"`"paper jam`: the double quote is never closed"#),
            "{m}"
        );
        assert!(error(r#"actor:"Ada"#).starts_with(r#"`actor:"Ada`"#));
        assert!(error(r#""ends with escape\""#).contains("never closed"));
    }

    #[test]
    fn multibyte_text_survives_the_tokenizer() {
        let q = parse(r#"Größe "ärger über" actor:jürgen@example.com"#);
        assert_eq!(q.text.as_deref(), Some("Größe ärger über"));
        assert_eq!(
            settings(r#"actor:jürgen@example.com"#)[0],
            Setting::Actor("jürgen@example.com".into())
        );
    }

    #[test]
    fn sets_reports_the_parameters_the_terms_touch() {
        let q = parse("entity:Printer:42 created:2026-01-01 words");
        for p in ["entity_type", "entity_id", "from", "to"] {
            assert!(q.sets(p), "{p}");
        }
        assert!(!q.sets("actor_type"));
    }

    #[test]
    fn applying_checks_each_filter_is_asked_for_once() {
        let mut f = EventFilter {
            action: Some("create".into()),
            ..EventFilter::default()
        };
        let e = parse("action:update")
            .apply(&mut f.clone(), &["action"])
            .unwrap_err();
        assert_eq!(e.field, "q");
        assert!(
            e.message
                .contains("different value than the `action` parameter"),
            "{}",
            e.message
        );
        // The same value twice is no conflict.
        assert!(parse("action:create").apply(&mut f, &["action"]).is_ok());

        let e = parse("action:update action:create")
            .apply(&mut EventFilter::default(), &[])
            .unwrap_err();
        assert!(
            e.message
                .starts_with("`action:create`: asks for a different `action` than `action:update`"),
            "{}",
            e.message
        );
        assert!(
            parse("action:update action:update")
                .apply(&mut EventFilter::default(), &[])
                .is_ok()
        );
        // `created:` and the date parameters are the same filters.
        let mut f = EventFilter {
            from: Some(ms("2026-01-01T00:00:00Z")),
            ..EventFilter::default()
        };
        assert!(
            parse("created:>=2026-01-01")
                .apply(&mut f.clone(), &["from"])
                .is_ok()
        );
        assert!(
            parse("created:>2026-01-01")
                .apply(&mut f, &["from"])
                .is_err()
        );
        let e = parse("created:>2026-01-01 created:>=2026-03-01")
            .apply(&mut EventFilter::default(), &[])
            .unwrap_err();
        assert!(e.message.contains("different `from`"), "{}", e.message);
    }

    #[test]
    fn applying_writes_terms_and_text_and_reports_what_it_set() {
        let mut f = EventFilter::default();
        let set = parse("entity:Printer:42 outcome:failure jam")
            .apply(&mut f, &[])
            .unwrap();
        assert_eq!(set, vec!["entity_type", "entity_id", "outcome"]);
        assert_eq!(f.entity_type.as_deref(), Some("Printer"));
        assert_eq!(f.entity_id.as_deref(), Some("42"));
        assert_eq!(f.outcome, Some(Outcome::Failure));
        assert_eq!(f.q.as_deref(), Some("jam"));
    }
}
