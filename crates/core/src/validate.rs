//! Checking what a client sends and turning it into a [`NewEvent`].
//!
//! The body is read once, straight into the typed fields of [`crate::sent`] (no `Value` tree
//! for the event itself); [`check_event`] then checks one event against the event contract
//! (docs/api.md) and
//! collects **every** problem it finds, each as a [`FieldError`] naming the field in dotted form
//! (`actor.type`, `context.impersonator.email`, `metadata.plan`; array items as `changes[3].field`
//! or `entity_ids[7]`), so a client can fix everything in one round trip. A batch caller fills in
//! [`FieldError::index`].
//!
//! The rules, in short (limits count characters, not bytes):
//!
//! - the event is an object; unknown keys are errors (a typo must not vanish silently), and `id`,
//!   `seq`, `recorded_at` are refused because the server assigns them;
//! - an optional field sent as `null` counts as absent;
//! - `occurred_at`: RFC 3339, default `now`, not before 1970, at most 5 minutes after `now`;
//! - `action`: required, `^[a-z][a-z0-9_]{0,63}$`;
//! - `detailed_action`: 1..=128 of `[A-Za-z0-9_.:/-]` (so never ending in the filter's `*`);
//! - `channel`: default `default`, `^[a-z0-9][a-z0-9_.-]{0,63}$`;
//! - `description`: at most 4096; `outcome`: `success` (default) or `failure`;
//! - `actor`: required `{type, id, name, email}`, type one of user, api, webhook, system,
//!   scheduler (any case), the others strings of at most 256;
//! - `entity`: `{type (1..=128), id (string or integer, at most 256), name (at most 512)}`;
//! - `entity_ids`: at most 10,000 strings or integers, each at most 256;
//! - `context`: `ip` (any IPv4/IPv6 address, stored canonical), `user_agent` (1024), `reason`
//!   (1024), `source` (web, api, webhook, scheduler, system, cli), `correlation_id`,
//!   `request_id`, `api_key_id`, `location` (256 each), `impersonator: {id, email}` (256 each);
//! - `changes`: at most 1000 `{field (1..=256), old, new}`; entries with neither value, or with
//!   `old == new`, are dropped, since only changed fields are recorded;
//! - `before`/`after`: objects, instead of `changes`; the changes are their [`diff`], computed on
//!   the raw values (so a changed password is still seen to change), with the same limits;
//! - `metadata`: at most 64 keys of at most 128, each value a scalar (strings at most 4096) or a
//!   binary value;
//! - `idempotency_key`: 1..=255.
//!
//! Redaction ([`RedactionRules`]) is applied to `changes` and `metadata` before returning, so a
//! [`NewEvent`] never holds a sensitive or binary value.
//!
//! Nested objects are walked recursively; the JSON parser's nesting limit (128 for serde_json)
//! bounds the depth of anything that arrives over the wire.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::diff::diff;
use crate::event::{Actor, ActorType, Change, Context, Entity, Impersonator, NewEvent, Outcome};
use crate::redact::{RedactionRules, is_binary};
use crate::sent::{
    List, Scalar, Sent, SentActor, SentChange, SentContext, SentEntity, SentEvent,
    SentImpersonator, Shaped, type_name,
};
use crate::time::{Millis, parse_rfc3339};

/// How far ahead of the server's clock `occurred_at` may be (5 minutes).
pub const MAX_FUTURE_SKEW_MS: Millis = 300_000;
/// At most this many entries in `changes`, sent or computed from `before`/`after`.
pub const MAX_CHANGES: usize = 1000;
/// At most this many bulk `entity_ids`.
pub const MAX_ENTITY_IDS: usize = 10_000;
/// At most this many `metadata` keys.
pub const MAX_METADATA_KEYS: usize = 64;
/// The most `related_entities` one event may name.
pub const MAX_RELATED_ENTITIES: usize = 100;
/// The longest `href` (of the actor or an entity), in characters.
pub const MAX_HREF_LEN: usize = 2048;
/// Per array, at most this many item errors are listed; the rest are summed up in one more error.
pub const MAX_ITEM_ERRORS: usize = 20;

/// The channel of an event that names none.
pub const DEFAULT_CHANNEL: &str = "default";

/// The values `context.source` may take.
pub const SOURCES: [&str; 6] = ["web", "api", "webhook", "scheduler", "system", "cli"];

const SERVER_ASSIGNED_KEYS: &[&str] = &["id", "seq", "recorded_at"];
/// One problem with one field of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The event's position in a batch; [`parse_event`] leaves it `None` for the caller to fill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The field in dotted form: `action`, `actor.type`, `changes[2].field`, `metadata.plan`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses and validates one event object held as a `Value`, then redacts it with `rules`: the
/// same as [`check_event`] on what the value says.
pub fn parse_event(
    value: &Value,
    now: Millis,
    rules: &RedactionRules,
) -> Result<NewEvent, Vec<FieldError>> {
    match Shaped::<SentEvent>::deserialize(value) {
        Ok(sent) => check_event(sent, now, rules),
        // A `Value` is always well-formed JSON, and the sent types accept any of it.
        Err(e) => Err(vec![FieldError::new("event", e.to_string())]),
    }
}

/// Validates one event as sent, then redacts it with `rules`. `now` is the server's clock (the
/// default `occurred_at` and the reference for the future-skew check). Returns every error
/// found, never an empty list.
pub fn check_event(
    sent: Shaped<SentEvent<'_>>,
    now: Millis,
    rules: &RedactionRules,
) -> Result<NewEvent, Vec<FieldError>> {
    let sent = match sent {
        Shaped::Object(sent) => sent,
        Shaped::Other(_) => return Err(vec![FieldError::new("event", "must be a JSON object")]),
    };
    // NUL is valid JSON but not text everywhere Stele stores it (PostgreSQL refuses it, and a
    // C string ends there), so it is refused up front wherever it hides.
    let mut nul = Vec::new();
    sent.find_nul("", &mut nul);
    if !nul.is_empty() {
        return Err(nul);
    }
    let mut p = Parser::default();

    for (key, _) in &sent.unknown {
        if SERVER_ASSIGNED_KEYS.contains(&key.as_str()) {
            p.err(
                key.as_str(),
                "is assigned by the server and must not be sent",
            );
        } else {
            p.err(
                shown(key),
                format!(
                    "unknown field; known fields are {}",
                    SentEvent::KEYS.join(", ")
                ),
            );
        }
    }

    // The organization an event is for is the request's business, not the event's: a platform
    // key's ingest takes `organization` out before checking the event. Sent anywhere else, it is
    // refused rather than dropped, so a client never believes it chose an organization it did
    // not.
    if present(&sent.organization).is_some() {
        p.err(
            "organization",
            "names the organization the event is for, which only a platform key may do \
             (an organization's key records into its own organization)",
        );
    }

    let occurred_at = p.occurred_at(present(&sent.occurred_at), now);
    let action = p.action(present(&sent.action));
    let detailed_action = present(&sent.detailed_action).and_then(|v| p.detailed_action(v));
    let channel = match present(&sent.channel) {
        Some(v) => p.channel(v),
        None => DEFAULT_CHANNEL.to_string(),
    };
    let description = present(&sent.description).and_then(|v| p.text("description", v, 0, 4096));
    let outcome = present(&sent.outcome)
        .and_then(|v| p.outcome(v))
        .unwrap_or_default();
    let actor = p.actor(present(&sent.actor));
    let entity = present(&sent.entity).and_then(|v| p.entity("entity", v));
    let entity_ids = present(&sent.entity_ids)
        .map(|v| p.entity_ids(v))
        .unwrap_or_default();
    let related_entities = present(&sent.related_entities)
        .map(|v| p.related_entities(v))
        .unwrap_or_default();
    let context = present(&sent.context)
        .map(|v| p.context(v))
        .unwrap_or_default();
    let changes = p.changes(
        present(&sent.changes),
        present(&sent.before).map(|j| &j.0),
        present(&sent.after).map(|j| &j.0),
    );
    let metadata = present(&sent.metadata)
        .map(|v| p.metadata("metadata", v))
        .unwrap_or_default();
    let idempotency_key =
        present(&sent.idempotency_key).and_then(|v| p.text("idempotency_key", v, 1, 255));

    match actor {
        Some(actor) if p.errors.is_empty() => {
            let mut event = NewEvent {
                occurred_at,
                action,
                detailed_action,
                channel,
                description,
                outcome,
                actor,
                entity,
                entity_ids,
                related_entities,
                context,
                changes,
                metadata,
                origin: Default::default(),
                idempotency_key,
            };
            rules.redact_event(&mut event);
            Ok(event)
        }
        _ => {
            if p.errors.is_empty() {
                // Unreachable by construction (a missing actor always records why), but an
                // empty error list must never be returned.
                p.err("actor", "is invalid");
            }
            Err(p.errors)
        }
    }
}

/// `null` counts as absent.
fn present<T: Sent>(value: &Option<T>) -> Option<&T> {
    value.as_ref().filter(|v| !v.is_null())
}

/// A client-chosen key as it appears in an error: cut short if absurdly long.
fn shown(key: &str) -> String {
    const MAX: usize = 64;
    match key.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_string(),
    }
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `^[a-z][a-z0-9_]{0,63}$`
fn is_action(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// `^[a-z0-9][a-z0-9_.-]{0,63}$`
/// Whether `s` is a valid channel name (see the module docs).
pub fn is_channel(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
        })
}

/// `^[A-Za-z0-9_.:/-]{1,128}$`
fn is_detailed_action(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'/' | b'-'))
}

#[derive(Default)]
struct Parser {
    errors: Vec<FieldError>,
}

impl Parser {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A string of `min..=max` characters.
    fn text(&mut self, field: &str, v: &Scalar, min: usize, max: usize) -> Option<String> {
        let Some(s) = v.as_str() else {
            self.err(field, format!("must be a string, not {}", v.type_name()));
            return None;
        };
        self.length(field, s, min, max).map(str::to_owned)
    }

    /// `s` if it has `min..=max` characters.
    fn length<'s>(&mut self, field: &str, s: &'s str, min: usize, max: usize) -> Option<&'s str> {
        // Bytes are at least as many as chars: only count chars when the byte length is over.
        if s.len() > max && char_len(s) > max {
            self.err(field, format!("must be at most {max} characters long"));
            None
        } else if s.chars().take(min).count() < min {
            let message = if min == 1 {
                "must not be empty".to_string()
            } else {
                format!("must be at least {min} characters long")
            };
            self.err(field, message);
            None
        } else {
            Some(s)
        }
    }

    /// An optional string member of an object.
    fn opt_text(&mut self, v: &Option<Scalar>, field: &str, max: usize) -> Option<String> {
        present(v).and_then(|v| self.text(field, v, 0, max))
    }

    /// An object, with an error for each key it should not have.
    fn object<'v, T>(
        &mut self,
        field: &str,
        v: &'v Shaped<T>,
        unknown: impl Fn(&T) -> &[(String, Value)],
        allowed: &[&str],
    ) -> Option<&'v T> {
        let obj = match v {
            Shaped::Object(obj) => obj,
            Shaped::Other(v) => {
                self.err(field, format!("must be an object, not {}", type_name(v)));
                return None;
            }
        };
        for (key, _) in unknown(obj) {
            self.err(
                format!("{field}.{}", shown(key)),
                format!("unknown field; known fields are {}", allowed.join(", ")),
            );
        }
        Some(obj)
    }

    /// A string or an integer, as a string of at most `max` characters.
    fn id(&mut self, field: &str, v: &Scalar, max: usize) -> Option<String> {
        match v {
            Scalar::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Scalar::Str(_) => self.text(field, v, 0, max),
            _ => {
                self.err(
                    field,
                    format!("must be a string or an integer, not {}", v.type_name()),
                );
                None
            }
        }
    }

    fn occurred_at(&mut self, v: Option<&Scalar>, now: Millis) -> Millis {
        let Some(v) = v else { return now };
        let Some(ms) = v.as_str().and_then(parse_rfc3339) else {
            self.err(
                "occurred_at",
                "must be an RFC 3339 timestamp string, like 2026-01-02T03:04:05.678Z",
            );
            return now;
        };
        if ms < 0 {
            self.err("occurred_at", "must not be before 1970-01-01T00:00:00Z");
        } else if ms > now.saturating_add(MAX_FUTURE_SKEW_MS) {
            self.err(
                "occurred_at",
                "must not be more than 5 minutes in the future",
            );
        }
        ms
    }

    fn action(&mut self, v: Option<&Scalar>) -> String {
        let Some(v) = v else {
            self.err("action", "is required");
            return String::new();
        };
        match self.text("action", v, 1, 64) {
            Some(s) if is_action(&s) => s,
            Some(_) => {
                self.err(
                    "action",
                    "must be a lowercase word: a letter a-z, then up to 63 of a-z, 0-9 and _",
                );
                String::new()
            }
            None => String::new(),
        }
    }

    fn detailed_action(&mut self, v: &Scalar) -> Option<String> {
        let s = self.text("detailed_action", v, 1, 128)?;
        if s.ends_with('*') {
            self.err(
                "detailed_action",
                "must not end with `*` (that is the prefix syntax of the search filter)",
            );
            None
        } else if !is_detailed_action(&s) {
            self.err(
                "detailed_action",
                "may only contain letters, digits and _ . : / -",
            );
            None
        } else if s.starts_with(crate::chain::RESERVED_DETAILED_ACTION_PREFIX) {
            self.err(
                "detailed_action",
                "`stele.` is reserved for the entries Stele records itself",
            );
            None
        } else {
            Some(s)
        }
    }

    fn channel(&mut self, v: &Scalar) -> String {
        match self.text("channel", v, 1, 64) {
            Some(s) if is_channel(&s) => s,
            Some(_) => {
                self.err(
                    "channel",
                    "must be a lowercase a-z or 0-9, then up to 63 of a-z, 0-9, _ . -",
                );
                String::new()
            }
            None => String::new(),
        }
    }

    fn outcome(&mut self, v: &Scalar) -> Option<Outcome> {
        let outcome = v
            .as_str()
            .and_then(|s| s.to_ascii_lowercase().parse::<Outcome>().ok());
        if outcome.is_none() {
            self.err("outcome", "must be `success` or `failure`");
        }
        outcome
    }

    fn actor(&mut self, v: Option<&Shaped<SentActor>>) -> Option<Actor> {
        let Some(v) = v else {
            self.err("actor", "is required: an object with at least `type`");
            return None;
        };
        let obj = self.object("actor", v, |o| &o.unknown, SentActor::KEYS)?;
        let allowed = || {
            ActorType::ALL
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = match present(&obj.kind) {
            None => {
                self.err("actor.type", format!("is required; one of {}", allowed()));
                None
            }
            Some(t) => {
                let kind = t.as_str().and_then(|s| s.parse::<ActorType>().ok());
                if kind.is_none() {
                    self.err("actor.type", format!("must be one of {}", allowed()));
                }
                kind
            }
        };
        let id = self.opt_text(&obj.id, "actor.id", 256);
        let name = self.opt_text(&obj.name, "actor.name", 256);
        let email = self.opt_text(&obj.email, "actor.email", 256);
        let href = self.opt_text(&obj.href, "actor.href", MAX_HREF_LEN);
        let metadata = present(&obj.metadata)
            .map(|v| self.metadata("actor.metadata", v))
            .unwrap_or_default();
        Some(Actor {
            kind: kind?,
            id,
            name,
            email,
            href,
            metadata,
            original_type: None,
        })
    }

    /// The entity or a related entity; `field` names it in errors (`entity`,
    /// `related_entities[2]`).
    fn entity(&mut self, field: &str, v: &Shaped<SentEntity>) -> Option<Entity> {
        let obj = self.object(field, v, |o| &o.unknown, SentEntity::KEYS)?;
        let kind = match present(&obj.kind) {
            None => {
                self.err(format!("{field}.type"), "is required");
                None
            }
            Some(t) => self.text(&format!("{field}.type"), t, 1, 128),
        };
        let id = present(&obj.id).and_then(|v| self.id(&format!("{field}.id"), v, 256));
        let name = self.opt_text(&obj.name, &format!("{field}.name"), 512);
        let href = self.opt_text(&obj.href, &format!("{field}.href"), MAX_HREF_LEN);
        let metadata = present(&obj.metadata)
            .map(|v| self.metadata(&format!("{field}.metadata"), v))
            .unwrap_or_default();
        Some(Entity {
            kind: kind?,
            id,
            name,
            href,
            metadata,
        })
    }

    fn related_entities(&mut self, v: &List<Shaped<SentEntity>>) -> Vec<Entity> {
        let items = match v {
            List::Items(items) => items,
            List::Other(v) => {
                self.err(
                    "related_entities",
                    format!("must be an array, not {}", type_name(v)),
                );
                return Vec::new();
            }
        };
        if items.len() > MAX_RELATED_ENTITIES {
            self.err(
                "related_entities",
                format!(
                    "must have at most {MAX_RELATED_ENTITIES} items, not {}",
                    items.len()
                ),
            );
            return Vec::new();
        }
        let mut entities = Vec::with_capacity(items.len());
        let mut bad = 0;
        for (i, item) in items.iter().enumerate() {
            let mut item_parser = Parser::default();
            match item_parser.entity(&format!("related_entities[{i}]"), item) {
                Some(entity) if item_parser.errors.is_empty() => entities.push(entity),
                _ => {
                    bad += 1;
                    if bad <= MAX_ITEM_ERRORS {
                        self.errors.append(&mut item_parser.errors);
                    }
                }
            }
        }
        self.too_many_item_errors("related_entities", bad);
        entities
    }

    fn entity_ids(&mut self, v: &List<Scalar>) -> Vec<String> {
        let items = match v {
            List::Items(items) => items,
            List::Other(v) => {
                self.err(
                    "entity_ids",
                    format!("must be an array, not {}", type_name(v)),
                );
                return Vec::new();
            }
        };
        if items.len() > MAX_ENTITY_IDS {
            self.err(
                "entity_ids",
                format!(
                    "must have at most {MAX_ENTITY_IDS} items, not {}",
                    items.len()
                ),
            );
            return Vec::new();
        }
        let mut ids = Vec::with_capacity(items.len());
        let mut bad = 0;
        for (i, item) in items.iter().enumerate() {
            let mut item_parser = Parser::default();
            match item_parser.id(&format!("entity_ids[{i}]"), item, 256) {
                Some(id) => ids.push(id),
                None => {
                    bad += 1;
                    if bad <= MAX_ITEM_ERRORS {
                        self.errors.append(&mut item_parser.errors);
                    }
                }
            }
        }
        self.too_many_item_errors("entity_ids", bad);
        ids
    }

    /// Sums up the item errors of an array beyond [`MAX_ITEM_ERRORS`].
    fn too_many_item_errors(&mut self, field: &str, bad: usize) {
        if bad > MAX_ITEM_ERRORS {
            self.err(
                field,
                format!("{} more items are invalid", bad - MAX_ITEM_ERRORS),
            );
        }
    }

    fn context(&mut self, v: &Shaped<SentContext>) -> Context {
        let Some(obj) = self.object("context", v, |o| &o.unknown, SentContext::KEYS) else {
            return Context::default();
        };
        let ip = present(&obj.ip).and_then(|v| {
            let s = self.text("context.ip", v, 0, 256)?;
            match s.trim().parse::<IpAddr>() {
                Ok(ip) => Some(ip.to_canonical().to_string()),
                Err(_) => {
                    self.err("context.ip", "must be an IPv4 or IPv6 address");
                    None
                }
            }
        });
        let source = present(&obj.source).and_then(|v| {
            let s = v.as_str().map(str::to_ascii_lowercase);
            match s {
                Some(s) if SOURCES.contains(&s.as_str()) => Some(s),
                _ => {
                    self.err(
                        "context.source",
                        format!("must be one of {}", SOURCES.join(", ")),
                    );
                    None
                }
            }
        });
        let impersonator = present(&obj.impersonator).and_then(|v| {
            let obj = self.object(
                "context.impersonator",
                v,
                |o| &o.unknown,
                SentImpersonator::KEYS,
            )?;
            let id = self.opt_text(&obj.id, "context.impersonator.id", 256);
            let email = self.opt_text(&obj.email, "context.impersonator.email", 256);
            (id.is_some() || email.is_some()).then_some(Impersonator { id, email })
        });
        Context {
            ip,
            user_agent: self.opt_text(&obj.user_agent, "context.user_agent", 1024),
            correlation_id: self.opt_text(&obj.correlation_id, "context.correlation_id", 256),
            request_id: self.opt_text(&obj.request_id, "context.request_id", 256),
            reason: self.opt_text(&obj.reason, "context.reason", 1024),
            source,
            api_key_id: self.opt_text(&obj.api_key_id, "context.api_key_id", 256),
            impersonator,
            location: self.opt_text(&obj.location, "context.location", 256),
        }
    }

    /// `changes` as sent, or the diff of `before`/`after`.
    fn changes(
        &mut self,
        changes: Option<&List<Shaped<SentChange>>>,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Vec<Change> {
        if before.is_none() && after.is_none() {
            return changes.map(|v| self.sent_changes(v)).unwrap_or_default();
        }
        if changes.is_some() {
            self.err(
                "changes",
                "cannot be sent together with `before`/`after`; send one or the other",
            );
        }
        let before_obj = before.and_then(|v| self.object_any("before", v));
        let after_obj = after.and_then(|v| self.object_any("after", v));
        if before.is_some() != before_obj.is_some() || after.is_some() != after_obj.is_some() {
            return Vec::new();
        }
        let changes = diff(before_obj, after_obj);
        let side = |c: &Change| if c.new.is_some() { "after" } else { "before" };
        if changes.len() > MAX_CHANGES {
            let field = if after.is_some() { "after" } else { "before" };
            self.err(
                field,
                format!(
                    "`before` and `after` differ in {} fields; at most {MAX_CHANGES} changed fields are recorded",
                    changes.len()
                ),
            );
            return Vec::new();
        }
        let mut bad = 0;
        for c in &changes {
            let len = char_len(&c.field);
            if !(1..=256).contains(&len) {
                bad += 1;
                if bad <= MAX_ITEM_ERRORS {
                    self.err(
                        side(c),
                        format!(
                            "the field path `{}` must be 1 to 256 characters long",
                            shown(&c.field)
                        ),
                    );
                }
            }
        }
        self.too_many_item_errors(if after.is_some() { "after" } else { "before" }, bad);
        changes
    }

    /// Any object (its keys are the client's own).
    fn object_any<'v>(&mut self, field: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(obj) => Some(obj),
            _ => {
                self.err(field, format!("must be an object, not {}", type_name(v)));
                None
            }
        }
    }

    fn sent_changes(&mut self, v: &List<Shaped<SentChange>>) -> Vec<Change> {
        let items = match v {
            List::Items(items) => items,
            List::Other(v) => {
                self.err("changes", format!("must be an array, not {}", type_name(v)));
                return Vec::new();
            }
        };
        if items.len() > MAX_CHANGES {
            self.err(
                "changes",
                format!("must have at most {MAX_CHANGES} items, not {}", items.len()),
            );
            return Vec::new();
        }
        let mut changes = Vec::with_capacity(items.len());
        let mut bad = 0;
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("changes[{i}]");
            let mut item_parser = Parser::default();
            if let Some(obj) = item_parser.object(&prefix, item, |o| &o.unknown, SentChange::KEYS) {
                let field = match present(&obj.field) {
                    None => {
                        item_parser.err(format!("{prefix}.field"), "is required");
                        None
                    }
                    Some(f) => item_parser.text(&format!("{prefix}.field"), f, 1, 256),
                };
                let old = obj.old.clone().map(|j| j.0);
                let new = obj.new.clone().map(|j| j.0);
                if let Some(field) = field
                    && item_parser.errors.is_empty()
                    && (old.is_some() || new.is_some())
                    && old != new
                {
                    changes.push(Change { field, old, new });
                }
            }
            if !item_parser.errors.is_empty() {
                bad += 1;
                if bad <= MAX_ITEM_ERRORS {
                    self.errors.append(&mut item_parser.errors);
                }
            }
        }
        self.too_many_item_errors("changes", bad);
        changes
    }

    /// A flat map of scalars: the event's `metadata`, or the actor's or an entity's (`field`).
    fn metadata(&mut self, field: &str, v: &Value) -> BTreeMap<String, Value> {
        let Value::Object(obj) = v else {
            self.err(field, format!("must be an object, not {}", type_name(v)));
            return BTreeMap::new();
        };
        if obj.len() > MAX_METADATA_KEYS {
            self.err(
                field,
                format!(
                    "must have at most {MAX_METADATA_KEYS} keys, not {}",
                    obj.len()
                ),
            );
            return BTreeMap::new();
        }
        let mut out = BTreeMap::new();
        for (key, value) in obj {
            let field = format!("{field}.{}", shown(key));
            if char_len(key) > 128 {
                self.err(field, "the key must be at most 128 characters long");
                continue;
            }
            let ok = match value {
                Value::Null | Value::Bool(_) | Value::Number(_) => true,
                Value::String(s) => self.length(&field, s, 0, 4096).is_some(),
                _ if is_binary(value) => true,
                _ => {
                    self.err(
                        field,
                        format!(
                            "must be a string, number, boolean or null, not {}",
                            type_name(value)
                        ),
                    );
                    false
                }
            };
            if ok {
                out.insert(key.clone(), value.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{BINARY_DATA, REDACTED};
    use crate::time::format_rfc3339;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: Millis = 1_767_322_245_678; // 2026-01-02T02:50:45.678Z

    fn parse(v: Value) -> Result<NewEvent, Vec<FieldError>> {
        parse_event(&v, NOW, &RedactionRules::default())
    }

    fn ok(v: Value) -> NewEvent {
        match parse(v) {
            Ok(e) => e,
            Err(errors) => panic!("expected a valid event, got {errors:?}"),
        }
    }

    /// The fields named by the errors of an invalid event.
    fn fields(v: Value) -> Vec<String> {
        match parse(v) {
            Ok(e) => panic!("expected errors, got {e:?}"),
            Err(errors) => {
                assert!(!errors.is_empty());
                assert!(errors.iter().all(|e| e.index.is_none()));
                errors.into_iter().map(|e| e.field).collect()
            }
        }
    }

    /// A minimal valid event with `extra` merged in (a `null` in `extra` removes the key).
    fn event(extra: Value) -> Value {
        let mut base = json!({"action": "update", "actor": {"type": "user", "id": "u1"}});
        for (k, v) in extra.as_object().unwrap() {
            base.as_object_mut().unwrap().insert(k.clone(), v.clone());
        }
        base
    }

    fn bad(extra: Value) -> Vec<String> {
        fields(event(extra))
    }

    fn good(extra: Value) -> NewEvent {
        ok(event(extra))
    }

    #[test]
    fn a_minimal_event_gets_the_defaults() {
        let e = good(json!({}));
        assert_eq!(e.occurred_at, NOW);
        assert_eq!(e.action, "update");
        assert_eq!(e.channel, "default");
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.actor.kind, ActorType::User);
        assert_eq!(e.actor.id.as_deref(), Some("u1"));
        assert_eq!(e.detailed_action, None);
        assert_eq!(e.entity, None);
        assert!(e.entity_ids.is_empty() && e.changes.is_empty() && e.metadata.is_empty());
        assert!(e.context.is_empty());
        assert_eq!(e.idempotency_key, None);
    }

    #[test]
    fn a_full_event_is_read_whole() {
        let e = ok(json!({
            "occurred_at": "2026-01-02T02:00:00.123Z",
            "action": "bulk_update",
            "detailed_action": "printJob.retry",
            "channel": "pii-read",
            "description": "Retried 2 jobs",
            "outcome": "failure",
            "actor": {"type": "API", "id": "key_1", "name": "CI", "email": "ci@example.com"},
            "entity": {"type": "PrintJob", "id": 42, "name": "Job 42"},
            "entity_ids": ["42", 43],
            "context": {
                "ip": "2001:DB8:0:0:0:0:0:1",
                "user_agent": "curl/8",
                "correlation_id": "c1",
                "request_id": "r1",
                "reason": "support ticket",
                "source": "cli",
                "api_key_id": "key_1",
                "impersonator": {"id": "admin", "email": "root@example.com"},
                "location": "Paris"
            },
            "changes": [{"field": "status", "old": "failed", "new": "queued"}],
            "metadata": {"attempt": 2, "dry_run": false, "note": "x", "none": null},
            "idempotency_key": "abc-123"
        }));
        assert_eq!(format_rfc3339(e.occurred_at), "2026-01-02T02:00:00.123Z");
        assert_eq!(e.action, "bulk_update");
        assert_eq!(e.detailed_action.as_deref(), Some("printJob.retry"));
        assert_eq!(e.channel, "pii-read");
        assert_eq!(e.description.as_deref(), Some("Retried 2 jobs"));
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.actor.kind, ActorType::Api);
        assert_eq!(e.actor.email.as_deref(), Some("ci@example.com"));
        assert_eq!(
            e.entity,
            Some(Entity::new(
                "PrintJob",
                Some("42".into()),
                Some("Job 42".into())
            ))
        );
        assert_eq!(e.entity_ids, ["42", "43"]);
        assert_eq!(e.context.ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(e.context.source.as_deref(), Some("cli"));
        assert_eq!(
            e.context.impersonator,
            Some(Impersonator {
                id: Some("admin".into()),
                email: Some("root@example.com".into())
            })
        );
        assert_eq!(e.context.location.as_deref(), Some("Paris"));
        assert_eq!(e.changes.len(), 1);
        assert_eq!(e.metadata.len(), 4);
        assert_eq!(e.idempotency_key.as_deref(), Some("abc-123"));
    }

    #[test]
    fn organization_is_refused_unless_its_caller_takes_it_out_first() {
        assert_eq!(bad(json!({"organization": "tenant-1"})), ["organization"]);
        assert_eq!(bad(json!({"organization": 7})), ["organization"]);
        // `null` is absent, as for every optional field.
        assert_eq!(good(json!({"organization": null})), good(json!({})));
        // Taken out (as a platform key's ingest does), it leaves no trace in the event.
        let text = event(json!({"organization": "tenant-1"})).to_string();
        let Shaped::Object(mut sent) = SentEvent::from_json(text.as_bytes()).unwrap() else {
            panic!("an object")
        };
        assert_eq!(
            sent.organization.take(),
            Some(crate::sent::Scalar::Str("tenant-1".into()))
        );
        let checked = check_event(Shaped::Object(sent), NOW, &RedactionRules::default());
        assert_eq!(checked, Ok(good(json!({}))));
    }

    #[test]
    fn the_event_must_be_an_object() {
        for v in [json!([]), json!("x"), json!(null), json!(1)] {
            assert_eq!(fields(v), ["event"]);
        }
    }

    #[test]
    fn nul_anywhere_is_the_only_error_and_names_its_field() {
        let errors = parse(json!({
            "action": "Not An Action",
            "actor": {"type": "user", "name": "a\u{0}b"},
            "metadata": {"note\u{0}": "x"},
            "changes": [{"field": "f", "old": ["\u{0}"]}],
        }))
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["actor.name", "changes[0].old[0]", "metadata.note\\u0000"]
        );
        assert!(errors.iter().all(|e| e.message.contains("NUL")));
    }

    #[test]
    fn unknown_and_server_assigned_keys_are_named() {
        let errors = parse(event(
            json!({"acton": "x", "id": "e1", "seq": 1, "recorded_at": "x"}),
        ))
        .unwrap_err();
        let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            named,
            ["acton", "id", "seq", "recorded_at"],
            "in the order sent"
        );
        assert!(errors[0].message.contains("unknown field"));
        assert!(errors[1].message.contains("assigned by the server"));
        // An absurdly long unknown key is cut short in the error.
        let long = "k".repeat(10_000);
        let f = bad(json!({ long.clone(): 1 }));
        assert!(f[0].len() < 100 && f[0].starts_with("kkk"));
    }

    #[test]
    fn null_optional_fields_count_as_absent() {
        let e = good(json!({
            "occurred_at": null, "detailed_action": null, "channel": null, "description": null,
            "outcome": null, "entity": null, "entity_ids": null, "context": null,
            "changes": null, "before": null, "after": null, "metadata": null,
            "idempotency_key": null
        }));
        assert_eq!(e.occurred_at, NOW);
        assert_eq!(e.channel, "default");
        assert_eq!(bad(json!({"action": null})), ["action"]);
        assert_eq!(bad(json!({"actor": null})), ["actor"]);
    }

    #[test]
    fn occurred_at_rules() {
        let five_min = format_rfc3339(NOW + MAX_FUTURE_SKEW_MS);
        assert_eq!(
            good(json!({"occurred_at": five_min})).occurred_at,
            NOW + 300_000
        );
        let e = good(json!({"occurred_at": "2026-01-02T04:50:45.678+02:00"}));
        assert_eq!(e.occurred_at, NOW);
        for v in [
            json!(format_rfc3339(NOW + MAX_FUTURE_SKEW_MS + 1)),
            json!("1969-12-31T23:59:59.999Z"),
            json!("yesterday"),
            json!("2026-01-02"),
            json!(NOW),
            json!(""),
        ] {
            assert_eq!(bad(json!({"occurred_at": v})), ["occurred_at"], "{v}");
        }
        assert_eq!(
            good(json!({"occurred_at": "1970-01-01T00:00:00Z"})).occurred_at,
            0
        );
    }

    #[test]
    fn action_rules() {
        for a in [
            "update",
            "login_failed",
            "x",
            "archive2",
            &"a".repeat(64),
            "frobnicate",
        ] {
            assert_eq!(good(json!({ "action": a })).action, a);
        }
        for a in [
            json!("Update"),
            json!("1st"),
            json!("_x"),
            json!("bulk-update"),
            json!("a b"),
            json!(""),
            json!("a".repeat(65)),
            json!(1),
            json!(["update"]),
        ] {
            assert_eq!(bad(json!({ "action": a })), ["action"], "{a}");
        }
        let missing = json!({"actor": {"type": "user"}});
        assert_eq!(fields(missing), ["action"]);
    }

    #[test]
    fn detailed_action_rules() {
        for d in [
            "printJob.retry",
            "license_reset",
            "pii.read.user",
            "a:b/c-d",
            &"x".repeat(128),
        ] {
            assert_eq!(
                good(json!({ "detailed_action": d }))
                    .detailed_action
                    .as_deref(),
                Some(d)
            );
        }
        for d in [
            json!(""),
            json!("printJob.*"),
            json!("*"),
            json!("has space"),
            json!("é"),
            json!("x".repeat(129)),
            json!(3),
        ] {
            assert_eq!(
                bad(json!({ "detailed_action": d })),
                ["detailed_action"],
                "{d}"
            );
        }
    }

    #[test]
    fn channel_rules() {
        for c in ["auth", "pii-read", "0day", "a.b_c-d", &"c".repeat(64)] {
            assert_eq!(good(json!({ "channel": c })).channel, c);
        }
        for c in [
            json!(""),
            json!("Auth"),
            json!("-x"),
            json!("a b"),
            json!("c".repeat(65)),
            json!(true),
        ] {
            assert_eq!(bad(json!({ "channel": c })), ["channel"], "{c}");
        }
    }

    #[test]
    fn description_counts_characters_not_bytes() {
        let ok_text = "é".repeat(4096);
        assert_eq!(
            good(json!({ "description": ok_text }))
                .description
                .unwrap()
                .chars()
                .count(),
            4096
        );
        assert_eq!(
            bad(json!({ "description": "é".repeat(4097) })),
            ["description"]
        );
        assert_eq!(
            bad(json!({ "description": {"text": "x"} })),
            ["description"]
        );
        assert_eq!(
            good(json!({ "description": "" })).description.as_deref(),
            Some("")
        );
    }

    #[test]
    fn outcome_rules() {
        assert_eq!(
            good(json!({"outcome": "failure"})).outcome,
            Outcome::Failure
        );
        assert_eq!(
            good(json!({"outcome": "Success"})).outcome,
            Outcome::Success
        );
        for o in [json!("failed"), json!(""), json!(false)] {
            assert_eq!(bad(json!({ "outcome": o })), ["outcome"]);
        }
    }

    #[test]
    fn actor_rules() {
        for (t, want) in [
            ("user", ActorType::User),
            ("SYSTEM", ActorType::System),
            ("Scheduler", ActorType::Scheduler),
            ("webhook", ActorType::Webhook),
        ] {
            assert_eq!(good(json!({"actor": {"type": t}})).actor.kind, want);
        }
        let errors = parse(event(json!({"actor": {"type": "robot"}}))).unwrap_err();
        assert_eq!(errors[0].field, "actor.type");
        assert!(
            errors[0]
                .message
                .contains("user, api, webhook, system, scheduler")
        );
        assert_eq!(bad(json!({"actor": {"id": "u1"}})), ["actor.type"]);
        assert_eq!(bad(json!({"actor": {"type": 1}})), ["actor.type"]);
        assert_eq!(bad(json!({"actor": "user"})), ["actor"]);
        assert_eq!(
            bad(json!({"actor": {"type": "user", "mail": "x"}})),
            ["actor.mail"]
        );
        assert_eq!(
            bad(json!({"actor": {"type": "user", "email": "e".repeat(257)}})),
            ["actor.email"]
        );
        assert_eq!(
            bad(json!({"actor": {"type": "user", "id": 7}})),
            ["actor.id"]
        );
        assert_eq!(
            bad(json!({"actor": {"type": "user", "name": ["x"]}})),
            ["actor.name"]
        );
        assert_eq!(fields(json!({"action": "update"})), ["actor"]);
        let a =
            good(json!({"actor": {"type": "user", "email": "e".repeat(256), "name": null}})).actor;
        assert_eq!(a.email.map(|e| e.len()), Some(256));
        assert_eq!(a.name, None);
    }

    #[test]
    fn entity_rules() {
        let e = good(json!({"entity": {"type": "Printer", "id": "p-1"}}))
            .entity
            .unwrap();
        assert_eq!(
            (e.kind.as_str(), e.id.as_deref(), e.name),
            ("Printer", Some("p-1"), None)
        );
        let big = good(json!({"entity": {"type": "T", "id": u64::MAX}}))
            .entity
            .unwrap();
        assert_eq!(big.id.as_deref(), Some("18446744073709551615"));
        let neg = good(json!({"entity": {"type": "T", "id": -5}}))
            .entity
            .unwrap();
        assert_eq!(neg.id.as_deref(), Some("-5"));
        assert_eq!(bad(json!({"entity": {"id": "1"}})), ["entity.type"]);
        assert_eq!(bad(json!({"entity": {"type": ""}})), ["entity.type"]);
        assert_eq!(
            bad(json!({"entity": {"type": "t".repeat(129)}})),
            ["entity.type"]
        );
        assert_eq!(
            bad(json!({"entity": {"type": "T", "id": 1.5}})),
            ["entity.id"]
        );
        assert_eq!(
            bad(json!({"entity": {"type": "T", "id": true}})),
            ["entity.id"]
        );
        assert_eq!(
            bad(json!({"entity": {"type": "T", "name": "n".repeat(513)}})),
            ["entity.name"]
        );
        assert_eq!(
            bad(json!({"entity": {"type": "T", "kind": "x"}})),
            ["entity.kind"]
        );
        assert_eq!(bad(json!({"entity": "Printer:1"})), ["entity"]);
    }

    #[test]
    fn links_metadata_and_related_entities_rules() {
        let e = good(json!({
            "actor": {"type": "user", "id": "u1", "href": "https://app.test/u/1",
                      "metadata": {"role": "admin", "password": "hunter2"}},
            "entity": {"type": "Team", "id": 7, "href": "https://app.test/t/7",
                       "metadata": {"size": 3}},
            "related_entities": [{"type": "Doc", "id": "d1", "name": "Plan",
                                  "metadata": {"token": "abc"}}, {"type": "Folder"}],
        }));
        assert_eq!(e.actor.href.as_deref(), Some("https://app.test/u/1"));
        assert_eq!(e.actor.metadata["role"], json!("admin"));
        // The default rules redact secrets in every metadata map, not only the event's.
        assert_eq!(e.actor.metadata["password"], json!(REDACTED));
        assert_eq!(e.related_entities[0].metadata["token"], json!(REDACTED));
        let entity = e.entity.unwrap();
        assert_eq!(entity.href.as_deref(), Some("https://app.test/t/7"));
        assert_eq!(entity.metadata["size"], json!(3));
        assert_eq!(
            e.related_entities
                .iter()
                .map(|r| (r.kind.as_str(), r.id.as_deref()))
                .collect::<Vec<_>>(),
            [("Doc", Some("d1")), ("Folder", None)]
        );
        assert_eq!(
            bad(json!({"actor": {"type": "user", "href": "h".repeat(MAX_HREF_LEN + 1)}})),
            ["actor.href"]
        );
        assert_eq!(
            bad(json!({"actor": {"type": "user", "metadata": {"nested": {"a": 1}}}})),
            ["actor.metadata.nested"]
        );
        assert_eq!(
            bad(json!({"entity": {"type": "T", "metadata": []}})),
            ["entity.metadata"]
        );
        assert_eq!(
            bad(
                json!({"related_entities": [{"type": "T"}, {"id": "x"}, {"type": "U", "id": 1.5}]})
            ),
            ["related_entities[1].type", "related_entities[2].id"]
        );
        assert_eq!(
            bad(json!({"related_entities": {"type": "T"}})),
            ["related_entities"]
        );
        let many: Vec<Value> = (0..=MAX_RELATED_ENTITIES)
            .map(|_| json!({"type": "T"}))
            .collect();
        assert_eq!(
            bad(json!({ "related_entities": many })),
            ["related_entities"]
        );
        // Only the compatible doors set what an entry's origin is; the native API refuses it,
        // as it refuses an original actor type.
        assert_eq!(bad(json!({"origin": {"protocol": "workos"}})), ["origin"]);
        assert_eq!(
            bad(json!({"actor": {"type": "user", "original_type": "admin"}})),
            ["actor.original_type"]
        );
    }

    #[test]
    fn entity_ids_rules() {
        assert_eq!(
            good(json!({"entity_ids": ["a", 2, -3]})).entity_ids,
            ["a", "2", "-3"]
        );
        assert_eq!(bad(json!({"entity_ids": "a"})), ["entity_ids"]);
        assert_eq!(
            bad(json!({"entity_ids": ["a", 1.5, "x".repeat(257), null]})),
            ["entity_ids[1]", "entity_ids[2]", "entity_ids[3]"]
        );
        let many: Vec<u32> = (0..=MAX_ENTITY_IDS as u32).collect();
        assert_eq!(bad(json!({"entity_ids": many})), ["entity_ids"]);
        let max: Vec<u32> = (0..MAX_ENTITY_IDS as u32).collect();
        assert_eq!(
            good(json!({"entity_ids": max})).entity_ids.len(),
            MAX_ENTITY_IDS
        );
        // A flood of bad items is summed up rather than listed item by item.
        let floats = vec![0.5; 100];
        let f = bad(json!({"entity_ids": floats}));
        assert_eq!(f.len(), MAX_ITEM_ERRORS + 1);
        assert_eq!(f.last().unwrap(), "entity_ids");
    }

    #[test]
    fn context_rules() {
        let ctx = |c: Value| good(json!({ "context": c })).context;
        assert_eq!(
            ctx(json!({"ip": "203.0.113.9"})).ip.as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            ctx(json!({"ip": "::ffff:203.0.113.9"})).ip.as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            ctx(json!({"ip": "FE80:0000::0001"})).ip.as_deref(),
            Some("fe80::1")
        );
        assert_eq!(ctx(json!({"source": "Web"})).source.as_deref(), Some("web"));
        assert_eq!(ctx(json!({"impersonator": {}})).impersonator, None);
        assert!(ctx(json!({})).is_empty());
        assert_eq!(
            ctx(json!({"user_agent": "u".repeat(1024)}))
                .user_agent
                .map(|u| u.len()),
            Some(1024)
        );

        let c = |c: Value| bad(json!({ "context": c }));
        assert_eq!(c(json!({"ip": "203.0.113.300"})), ["context.ip"]);
        assert_eq!(c(json!({"ip": "example.com"})), ["context.ip"]);
        assert_eq!(c(json!({"ip": 3405803785u32})), ["context.ip"]);
        assert_eq!(c(json!({"source": "mobile"})), ["context.source"]);
        assert_eq!(
            c(json!({"user_agent": "u".repeat(1025)})),
            ["context.user_agent"]
        );
        assert_eq!(c(json!({"reason": "r".repeat(1025)})), ["context.reason"]);
        assert_eq!(
            c(json!({"correlation_id": "c".repeat(257)})),
            ["context.correlation_id"]
        );
        assert_eq!(c(json!({"request_id": 5})), ["context.request_id"]);
        assert_eq!(
            c(json!({"api_key_id": "k".repeat(257)})),
            ["context.api_key_id"]
        );
        assert_eq!(c(json!({"location": {"city": "x"}})), ["context.location"]);
        assert_eq!(c(json!({"ipaddress": "1.2.3.4"})), ["context.ipaddress"]);
        assert_eq!(
            c(json!({"impersonator": {"name": "x"}})),
            ["context.impersonator.name"]
        );
        assert_eq!(
            c(json!({"impersonator": {"email": "e".repeat(257)}})),
            ["context.impersonator.email"]
        );
        assert_eq!(c(json!({"impersonator": "root"})), ["context.impersonator"]);
        assert_eq!(c(json!(["ip"])), ["context"]);
    }

    #[test]
    fn changes_keep_only_changed_fields() {
        let e = good(json!({"changes": [
            {"field": "status", "old": "a", "new": "b"},
            {"field": "same", "old": 1, "new": 1},
            {"field": "nothing"},
            {"field": "created", "new": {"x": 1}},
            {"field": "deleted", "old": [1]},
            {"field": "nulled", "old": "x", "new": null},
        ]}));
        let kept: Vec<_> = e.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(kept, ["status", "created", "deleted", "nulled"]);
        assert_eq!(e.changes[1].old, None);
        assert_eq!(e.changes[2].new, None);
        assert_eq!(e.changes[3].new, Some(Value::Null));
    }

    #[test]
    fn changes_rules() {
        assert_eq!(bad(json!({"changes": {"status": "x"}})), ["changes"]);
        assert_eq!(
            bad(
                json!({"changes": [{"old": 1, "new": 2}, {"field": "", "new": 1}, {"field": 3}, "x", {"field": "a", "new": 1, "type": "t"}, {"field": "f".repeat(257), "new": 1}]})
            ),
            [
                "changes[0].field",
                "changes[1].field",
                "changes[2].field",
                "changes[3]",
                "changes[4].type",
                "changes[5].field"
            ]
        );
        let many: Vec<Value> = (0..=MAX_CHANGES)
            .map(|i| json!({"field": format!("f{i}"), "new": i}))
            .collect();
        assert_eq!(bad(json!({ "changes": many })), ["changes"]);
        let max: Vec<Value> = (0..MAX_CHANGES)
            .map(|i| json!({"field": format!("f{i}"), "new": i}))
            .collect();
        assert_eq!(good(json!({ "changes": max })).changes.len(), MAX_CHANGES);
    }

    #[test]
    fn sent_changes_are_redacted() {
        let e = good(json!({"changes": [
            {"field": "user.password", "old": "hunter2", "new": "hunter3"},
            {"field": "avatar", "new": {"$binary": "AAEC"}},
        ]}));
        assert_eq!(e.changes[0].old, Some(json!(REDACTED)));
        assert_eq!(e.changes[0].new, Some(json!(REDACTED)));
        assert_eq!(e.changes[1].new, Some(json!(BINARY_DATA)));
    }

    #[test]
    fn before_and_after_are_diffed_then_redacted() {
        let e = good(json!({
            "before": {"name": "Ada", "password": "old", "address": {"city": "Paris"}, "role": "admin"},
            "after": {"name": "Ada", "password": "new", "address": {"city": "Lyon"}, "photo": {"$binary": "AA"}}
        }));
        let got: Vec<_> = e
            .changes
            .iter()
            .map(|c| (c.field.as_str(), c.old.clone(), c.new.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("address.city", Some(json!("Paris")), Some(json!("Lyon"))),
                ("password", Some(json!(REDACTED)), Some(json!(REDACTED))),
                ("photo", None, Some(json!(BINARY_DATA))),
                ("role", Some(json!("admin")), None),
            ]
        );
        // Unchanged password: no change at all.
        let same = good(json!({"before": {"password": "x"}, "after": {"password": "x"}}));
        assert!(same.changes.is_empty());
    }

    #[test]
    fn before_or_after_alone_is_a_delete_or_a_create() {
        let created = good(json!({"action": "create", "after": {"name": "P1", "api_key": "sk"}}));
        assert!(
            created
                .changes
                .iter()
                .all(|c| c.old.is_none() && c.new.is_some())
        );
        assert_eq!(created.changes[0].field, "api_key");
        assert_eq!(created.changes[0].new, Some(json!(REDACTED)));
        let deleted = good(json!({"action": "delete", "before": {"name": "P1"}}));
        assert_eq!(deleted.changes.len(), 1);
        assert!(deleted.changes[0].new.is_none());
    }

    #[test]
    fn before_and_after_rules() {
        assert_eq!(
            bad(json!({"before": {"a": 1}, "after": {"a": 2}, "changes": []})),
            ["changes"]
        );
        assert_eq!(bad(json!({"before": [1], "after": {"a": 2}})), ["before"]);
        assert_eq!(bad(json!({"after": "x"})), ["after"]);
        let wide: Map<String, Value> = (0..=MAX_CHANGES)
            .map(|i| (format!("f{i}"), json!(i)))
            .collect();
        assert_eq!(bad(json!({ "after": wide })), ["after"]);
        assert_eq!(bad(json!({"after": {"k".repeat(257): 1}})), ["after"]);
        assert_eq!(bad(json!({"before": {"": 1}})), ["before"]);
    }

    #[test]
    fn metadata_rules() {
        let e = good(json!({"metadata": {
            "plan": "pro", "seats": 5, "ratio": 0.5, "trial": true, "none": null,
            "blob": {"$binary": "AAEC"}, "webhook_secret": "whsec_1"
        }}));
        assert_eq!(e.metadata["plan"], json!("pro"));
        assert_eq!(e.metadata["blob"], json!(BINARY_DATA));
        assert_eq!(e.metadata["webhook_secret"], json!(REDACTED));
        assert_eq!(e.metadata.len(), 7);

        assert_eq!(bad(json!({"metadata": [1]})), ["metadata"]);
        assert_eq!(
            bad(
                json!({"metadata": {"obj": {"a": 1}, "arr": [1], "ok": 1, "long": "x".repeat(4097)}})
            ),
            ["metadata.obj", "metadata.arr", "metadata.long"]
        );
        assert_eq!(bad(json!({"metadata": {"k".repeat(129): 1}})).len(), 1);
        assert!(bad(json!({"metadata": {"k".repeat(129): 1}}))[0].starts_with("metadata.k"));
        let many: Map<String, Value> = (0..=MAX_METADATA_KEYS)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        assert_eq!(bad(json!({ "metadata": many })), ["metadata"]);
        let max: Map<String, Value> = (0..MAX_METADATA_KEYS)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        assert_eq!(
            good(json!({ "metadata": max })).metadata.len(),
            MAX_METADATA_KEYS
        );
    }

    #[test]
    fn idempotency_key_rules() {
        assert_eq!(
            good(json!({"idempotency_key": "k".repeat(255)}))
                .idempotency_key
                .map(|k| k.len()),
            Some(255)
        );
        for k in [json!(""), json!("k".repeat(256)), json!(12)] {
            assert_eq!(bad(json!({ "idempotency_key": k })), ["idempotency_key"]);
        }
    }

    #[test]
    fn every_error_of_an_event_is_reported() {
        let errors = parse(json!({
            "occurred_at": "soon",
            "action": "Update",
            "detailed_action": "x*",
            "channel": "Auth",
            "outcome": "ok",
            "actor": {"type": "robot", "email": 5},
            "entity": {"id": 1},
            "context": {"ip": "nope", "source": "fax"},
            "metadata": {"nested": {}},
            "idempotency_key": "",
            "extra": 1
        }))
        .unwrap_err();
        let mut named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        named.sort_unstable();
        assert_eq!(
            named,
            [
                "action",
                "actor.email",
                "actor.type",
                "channel",
                "context.ip",
                "context.source",
                "detailed_action",
                "entity.type",
                "extra",
                "idempotency_key",
                "metadata.nested",
                "occurred_at",
                "outcome",
            ]
        );
        assert!(errors.iter().all(|e| !e.message.is_empty()));
    }

    #[test]
    fn field_errors_serialize_without_an_empty_index() {
        let e = FieldError::new("actor.type", "must be one of user");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"field": "actor.type", "message": "must be one of user"})
        );
        assert_eq!(e.to_string(), "actor.type: must be one of user");
        let batch = FieldError {
            index: Some(3),
            ..e
        };
        assert_eq!(serde_json::to_value(&batch).unwrap()["index"], json!(3));
    }

    // ---- properties ----

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "password", "newPassword", "api_key", "user.reset_token", "mfa_secret",
                "encrypted_ssn", "name", "city", "$binary", "$type", "field", "old", "new",
                "type", "id", "ip", "a.b", "",
            ])
            .prop_map(String::from),
            1 => "[a-zA-Z_.$-]{0,10}",
            1 => any::<String>(),
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        arb_json_with(arb_key().boxed())
    }

    fn arb_json_with(keys: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z_]{0,8}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            Just(json!("2026-01-02T02:50:45.678Z")),
            Just(json!("user")),
        ];
        leaf.prop_recursive(5, 96, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// JSON whose keys are short (so flattened paths stay within the 256-character limit) and
    /// often sensitive.
    fn arb_json_short_keys() -> impl Strategy<Value = Value> {
        let keys = prop_oneof![
            prop::sample::select(vec!["password", "token", "$binary", "$type", "name", "x"])
                .prop_map(String::from),
            "[a-zA-Z_$-]{0,8}",
        ];
        arb_json_with(keys.boxed())
    }

    /// An event whose top-level keys are mostly known ones, with arbitrary values, on top of a
    /// valid skeleton; with arbitrary `before`/`after`, `changes` or `metadata` most of the time.
    fn arb_event() -> impl Strategy<Value = Value> {
        let top_key = prop::sample::select(SentEvent::KEYS.to_vec());
        let change = (
            arb_key(),
            prop::option::of(arb_json()),
            prop::option::of(arb_json()),
        )
            .prop_map(|(field, old, new)| {
                let mut m = Map::new();
                m.insert("field".into(), field.into());
                if let Some(old) = old {
                    m.insert("old".into(), old);
                }
                if let Some(new) = new {
                    m.insert("new".into(), new);
                }
                Value::Object(m)
            });
        let object = || {
            prop::collection::btree_map(arb_key(), arb_json(), 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        };
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::from),
            Just(json!({"$binary": "AAEC"})),
        ];
        let metadata = prop::collection::btree_map(arb_key(), scalar, 0..8)
            .prop_map(|m| Value::Object(m.into_iter().collect()));
        (
            prop::option::weighted(0.5, prop::collection::btree_map(top_key, arb_json(), 1..3)),
            prop::option::of(object()),
            prop::option::of(object()),
            prop::option::of(prop::collection::vec(change, 0..6)),
            prop::option::of(metadata),
        )
            .prop_map(|(noise, before, after, changes, metadata)| {
                let mut e = event(json!({}));
                let o = e.as_object_mut().unwrap();
                if let Some(b) = before {
                    o.insert("before".into(), b);
                }
                if let Some(a) = after {
                    o.insert("after".into(), a);
                }
                if let Some(c) = changes
                    && !o.contains_key("before")
                    && !o.contains_key("after")
                {
                    o.insert("changes".into(), Value::Array(c));
                }
                if let Some(m) = metadata {
                    o.insert("metadata".into(), m);
                }
                // Half the time, overwrite a few fields with arbitrary values.
                for (k, v) in noise.into_iter().flatten() {
                    o.insert(k.to_string(), v);
                }
                e
            })
    }

    /// No binary value, and nothing but [`REDACTED`] under a sensitive key, at any depth.
    fn clean(rules: &RedactionRules, v: &Value) -> bool {
        if is_binary(v) {
            return false;
        }
        match v {
            Value::Object(m) => m.iter().all(|(k, v)| {
                if rules.is_sensitive(k) {
                    v == REDACTED
                } else {
                    clean(rules, v)
                }
            }),
            Value::Array(items) => items.iter().all(|v| clean(rules, v)),
            _ => true,
        }
    }

    fn assert_redacted(rules: &RedactionRules, e: &NewEvent) -> Result<(), TestCaseError> {
        for c in &e.changes {
            for v in [&c.old, &c.new].into_iter().flatten() {
                if rules.is_sensitive(&c.field) {
                    prop_assert_eq!(v, &json!(REDACTED), "change {}", c.field);
                } else {
                    prop_assert!(clean(rules, v), "change {} holds {}", c.field, v);
                }
            }
            prop_assert!(c.old.is_some() || c.new.is_some());
            prop_assert!(!c.field.is_empty());
        }
        for (k, v) in &e.metadata {
            if rules.is_sensitive(k) {
                prop_assert_eq!(v, &json!(REDACTED), "metadata {}", k);
            } else {
                prop_assert!(clean(rules, v), "metadata {} holds {}", k, v);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_json_never_panics(v in arb_json(), now in any::<i64>()) {
            let rules = RedactionRules::default();
            match parse_event(&v, now, &rules) {
                Ok(e) => assert_redacted(&rules, &e)?,
                Err(errors) => prop_assert!(!errors.is_empty()),
            }
        }

        #[test]
        fn an_event_read_from_text_checks_as_its_value_does(v in arb_event(), now in any::<i64>()) {
            let rules = RedactionRules::default();
            let text = serde_json::to_vec(&v).unwrap();
            let sent = SentEvent::from_json(&text).unwrap();
            prop_assert_eq!(check_event(sent, now, &rules), parse_event(&v, now, &rules));
        }

        #[test]
        fn parsed_events_hold_no_sensitive_value(v in arb_event()) {
            let rules = RedactionRules::default();
            match parse_event(&v, NOW, &rules) {
                Ok(e) => {
                    assert_redacted(&rules, &e)?;
                    prop_assert!(e.occurred_at >= 0 && e.occurred_at <= NOW + MAX_FUTURE_SKEW_MS);
                    prop_assert!(is_action(&e.action) && is_channel(&e.channel));
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    prop_assert!(errors.iter().all(|e| e.index.is_none() && !e.field.is_empty()));
                }
            }
        }

        #[test]
        fn valid_skeletons_with_before_and_after_always_parse(
            before in prop::option::of(prop::collection::btree_map("[a-z_]{1,12}", arb_json_short_keys(), 0..8)),
            after in prop::option::of(prop::collection::btree_map("[a-z_]{1,12}", arb_json_short_keys(), 0..8)),
        ) {
            let mut e = event(json!({}));
            let o = e.as_object_mut().unwrap();
            if let Some(b) = before {
                o.insert("before".into(), Value::Object(b.into_iter().collect()));
            }
            if let Some(a) = after {
                o.insert("after".into(), Value::Object(a.into_iter().collect()));
            }
            let rules = RedactionRules::default();
            let parsed = parse_event(&e, NOW, &rules);
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
            assert_redacted(&rules, &parsed.unwrap())?;
        }
    }
}
