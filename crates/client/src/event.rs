//! The event an application records: who did what, to which record, when, from where, and what
//! changed. [`Event::builder`] builds one field by field and [`EventBuilder::build`] checks it.
//!
//! The JSON an [`Event`] serializes to is the native event of `POST /v1/events` (docs/api.md,
//! "The event"), field for field. `build` refuses what the server would certainly refuse and
//! costs nothing to check here (a bad action word, a missing actor, a field over its length,
//! `changes` together with `before`/`after`), naming every problem at once, so that a mistake
//! shows where the event is written rather than later in a failure report. The server stays the
//! authority: what depends on it (how far in the future `occurred_at` may be by its clock, its
//! per-event size limit, the organization's settings) is checked there.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::context::RequestContext;

/// Who acted: the five actor types the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    User,
    Api,
    Webhook,
    System,
    Scheduler,
}

/// Whether the action succeeded (`success`, the server's default) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Success,
    Failure,
}

/// Where a request came from (`context.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Web,
    Api,
    Webhook,
    Scheduler,
    System,
    Cli,
}

/// The one who acted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Actor {
    #[serde(rename = "type")]
    kind: ActorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    href: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: Map<String, Value>,
}

impl Actor {
    /// An actor of this type, with no id yet.
    pub fn new(kind: ActorType) -> Actor {
        Actor {
            kind,
            id: None,
            name: None,
            email: None,
            href: None,
            metadata: Map::new(),
        }
    }

    /// A user, by your application's id for them.
    pub fn user(id: impl Into<String>) -> Actor {
        Actor::new(ActorType::User).id(id)
    }

    /// An API client (an API key or an OAuth client), by its id.
    pub fn api(id: impl Into<String>) -> Actor {
        Actor::new(ActorType::Api).id(id)
    }

    /// A webhook, by its id.
    pub fn webhook(id: impl Into<String>) -> Actor {
        Actor::new(ActorType::Webhook).id(id)
    }

    /// The system itself (the search hides `system` actors unless asked: `actor_type=all`).
    pub fn system() -> Actor {
        Actor::new(ActorType::System)
    }

    /// A scheduled job.
    pub fn scheduler() -> Actor {
        Actor::new(ActorType::Scheduler)
    }

    pub fn id(mut self, id: impl Into<String>) -> Actor {
        self.id = Some(id.into());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Actor {
        self.name = Some(name.into());
        self
    }

    pub fn email(mut self, email: impl Into<String>) -> Actor {
        self.email = Some(email.into());
        self
    }

    /// A link to the actor in your application (at most 2048 characters).
    pub fn href(mut self, href: impl Into<String>) -> Actor {
        self.href = Some(href.into());
        self
    }

    /// One metadata entry: a string, number, boolean or null.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Actor {
        self.metadata.insert(key.into(), value.into());
        self
    }

    pub fn kind(&self) -> ActorType {
        self.kind
    }
}

/// A record's id: a string or an integer, as your application has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum EntityId {
    Text(String),
    Number(Number),
}

impl From<&str> for EntityId {
    fn from(id: &str) -> EntityId {
        EntityId::Text(id.to_string())
    }
}

impl From<String> for EntityId {
    fn from(id: String) -> EntityId {
        EntityId::Text(id)
    }
}

impl From<&String> for EntityId {
    fn from(id: &String) -> EntityId {
        EntityId::Text(id.clone())
    }
}

macro_rules! integer_ids {
    ($($t:ty),*) => {$(
        impl From<$t> for EntityId {
            fn from(id: $t) -> EntityId {
                EntityId::Number(Number::from(id))
            }
        }
    )*};
}
integer_ids!(i32, i64, u32, u64, usize);

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityId::Text(s) => f.write_str(s),
            EntityId::Number(n) => write!(f, "{n}"),
        }
    }
}

/// The record an action was done to (or one of several: [`EventBuilder::related_entity`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<EntityId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    href: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: Map<String, Value>,
}

impl Entity {
    /// A record of this type (`Printer`, `Invoice`) with this id.
    pub fn new(kind: impl Into<String>, id: impl Into<EntityId>) -> Entity {
        Entity::of_type(kind).id(id)
    }

    /// A record of this type without an id (a singleton, such as the settings).
    pub fn of_type(kind: impl Into<String>) -> Entity {
        Entity {
            kind: kind.into(),
            id: None,
            name: None,
            href: None,
            metadata: Map::new(),
        }
    }

    pub fn id(mut self, id: impl Into<EntityId>) -> Entity {
        self.id = Some(id.into());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Entity {
        self.name = Some(name.into());
        self
    }

    /// A link to the record in your application (at most 2048 characters).
    pub fn href(mut self, href: impl Into<String>) -> Entity {
        self.href = Some(href.into());
        self
    }

    /// One metadata entry: a string, number, boolean or null.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Entity {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// One changed field. A value left out (`added`, `removed`) is absent, which is not the same as
/// `null`: `Change::new("nickname", "Al", Value::Null)` records that it was set to null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<Value>,
}

impl Change {
    /// `field` went from `old` to `new` (the server drops a change whose values are equal).
    pub fn new(field: impl Into<String>, old: impl Into<Value>, new: impl Into<Value>) -> Change {
        Change {
            field: field.into(),
            old: Some(old.into()),
            new: Some(new.into()),
        }
    }

    /// `field` was set where it had no value (a create).
    pub fn added(field: impl Into<String>, new: impl Into<Value>) -> Change {
        Change {
            field: field.into(),
            old: None,
            new: Some(new.into()),
        }
    }

    /// `field` was taken away (a delete).
    pub fn removed(field: impl Into<String>, old: impl Into<Value>) -> Change {
        Change {
            field: field.into(),
            old: Some(old.into()),
            new: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct Impersonator {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// The event's `context`: where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct Context {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonator: Option<Impersonator>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
}

impl Context {
    fn is_empty(&self) -> bool {
        *self == Context::default()
    }
}

/// A checked event, ready for [`Client::record`](crate::Client::record).
///
/// `occurred_at` is the time given to [`EventBuilder::occurred_at`], or else the moment the event
/// is recorded (handed to the client), not the moment it reaches the server. Its idempotency key
/// is the one given to [`EventBuilder::idempotency_key`], or else a UUID v7 made when it is
/// recorded; either way it is sent with every attempt, so the server stores it once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(
        serialize_with = "rfc3339_millis",
        skip_serializing_if = "Option::is_none"
    )]
    occurred_at: Option<DateTime<Utc>>,
    action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detailed_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    actor: Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<Entity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entity_ids: Vec<EntityId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_entities: Vec<Entity>,
    #[serde(skip_serializing_if = "Context::is_empty")]
    context: Context,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changes: Vec<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<String>,
}

fn rfc3339_millis<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => s.serialize_none(),
    }
}

impl Event {
    /// Starts an event with its action: a lowercase word (`create`, `update`, `login`, or any
    /// `[a-z][a-z0-9_]*` of at most 64).
    pub fn builder(action: impl Into<String>) -> EventBuilder {
        EventBuilder {
            event: Event {
                occurred_at: None,
                action: action.into(),
                detailed_action: None,
                channel: None,
                description: None,
                outcome: None,
                actor: Actor::system(),
                entity: None,
                entity_ids: Vec::new(),
                related_entities: Vec::new(),
                context: Context::default(),
                changes: Vec::new(),
                before: None,
                after: None,
                metadata: Map::new(),
                idempotency_key: None,
                organization: None,
            },
            actor_set: false,
        }
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    /// The organization a platform key records this event into, if it names one.
    pub fn organization(&self) -> Option<&str> {
        self.organization.as_deref()
    }

    /// The idempotency key, if one was given or the event was recorded already.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.occurred_at
    }

    /// The event's JSON as `POST /v1/events` takes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event's fields are all serializable")
    }

    /// Fills what recording decides: `occurred_at` (now, unless given) and the idempotency key
    /// (a UUID v7, unless given: time-ordered keys land side by side in the server's index of
    /// keys, where random ones cost it a page write each; docs/benchmarks.md, "Per-event
    /// idempotency keys").
    pub(crate) fn stamp(&mut self, now: DateTime<Utc>) -> &str {
        self.occurred_at.get_or_insert(now);
        self.idempotency_key
            .get_or_insert_with(|| uuid::Uuid::now_v7().to_string())
    }
}

/// Builds an [`Event`]; see [`Event::builder`].
#[derive(Debug, Clone)]
pub struct EventBuilder {
    event: Event,
    actor_set: bool,
}

impl EventBuilder {
    /// Who acted (required).
    pub fn actor(mut self, actor: Actor) -> Self {
        self.event.actor = actor;
        self.actor_set = true;
        self
    }

    /// When it happened. Default: the moment the event is recorded. Anything `Into<DateTime<Utc>>`,
    /// a `std::time::SystemTime` too.
    pub fn occurred_at(mut self, at: impl Into<DateTime<Utc>>) -> Self {
        self.event.occurred_at = Some(at.into());
        self
    }

    /// The specific operation: `printJob.retry`, `license_reset` (letters, digits, `_ . : / -`).
    pub fn detailed_action(mut self, detailed_action: impl Into<String>) -> Self {
        self.event.detailed_action = Some(detailed_action.into());
        self
    }

    /// The channel (`auth`, `security`, `billing`); the server's default is `default`.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.event.channel = Some(channel.into());
        self
    }

    /// What happened, in words (what the search's free text looks in); at most 4096 characters.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.event.description = Some(description.into());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.event.outcome = Some(outcome);
        self
    }

    /// The record acted on.
    pub fn entity(mut self, entity: Entity) -> Self {
        self.event.entity = Some(entity);
        self
    }

    /// For a bulk action: one more of the records it affected (at most 10,000).
    pub fn entity_id(mut self, id: impl Into<EntityId>) -> Self {
        self.event.entity_ids.push(id.into());
        self
    }

    /// For a bulk action: the records it affected.
    pub fn entity_ids<I>(mut self, ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<EntityId>,
    {
        self.event
            .entity_ids
            .extend(ids.into_iter().map(Into::into));
        self
    }

    /// One more record the action touched (at most 100); the entity filters find them too.
    pub fn related_entity(mut self, entity: Entity) -> Self {
        self.event.related_entities.push(entity);
        self
    }

    /// The request's context as [`SteleContextLayer`](crate::SteleContextLayer) found it: the
    /// client's address, user agent, request id and correlation id (each only if known; a value
    /// set before is kept when the request has none). A user agent longer than the server takes
    /// (1024 characters) is cut there, so that a client's odd header never costs the event.
    pub fn context(mut self, request: &RequestContext) -> Self {
        let c = &mut self.event.context;
        if request.ip.is_some() {
            c.ip = request.ip;
        }
        if let Some(ua) = &request.user_agent {
            c.user_agent = Some(truncate_chars(ua, MAX_CONTEXT_TEXT));
        }
        if let Some(id) = &request.request_id {
            c.request_id = Some(id.clone());
        }
        if let Some(id) = &request.correlation_id {
            c.correlation_id = Some(id.clone());
        }
        self
    }

    /// `context.ip`: the client's address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.event.context.ip = Some(ip);
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.event.context.user_agent = Some(user_agent.into());
        self
    }

    /// `context.correlation_id`: ties together the entries one operation wrote.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.event.context.correlation_id = Some(id.into());
        self
    }

    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.event.context.request_id = Some(id.into());
        self
    }

    /// `context.reason`: why, in the actor's words (a support ticket, a change request).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.event.context.reason = Some(reason.into());
        self
    }

    pub fn source(mut self, source: Source) -> Self {
        self.event.context.source = Some(source);
        self
    }

    /// `context.api_key_id`: the id (never the secret) of the key the actor used.
    pub fn api_key_id(mut self, id: impl Into<String>) -> Self {
        self.event.context.api_key_id = Some(id.into());
        self
    }

    /// `context.impersonator`: the one acting as the actor (support staff signed in as a user).
    pub fn impersonator(mut self, id: Option<String>, email: Option<String>) -> Self {
        self.event.context.impersonator = Some(Impersonator { id, email });
        self
    }

    /// `context.location`: a place, as your application names it.
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.event.context.location = Some(location.into());
        self
    }

    /// One changed field. Not together with [`before`](Self::before)/[`after`](Self::after).
    pub fn change(mut self, change: Change) -> Self {
        self.event.changes.push(change);
        self
    }

    /// The record as it was; with [`after`](Self::after) the server records the fields that
    /// changed. Anything that serializes to a JSON object (a struct, a map, a `json!({..})`).
    pub fn before(mut self, before: impl Serialize) -> Self {
        self.event.before = Some(to_value(before));
        self
    }

    /// The record as it is now; see [`before`](Self::before).
    pub fn after(mut self, after: impl Serialize) -> Self {
        self.event.after = Some(to_value(after));
        self
    }

    /// One metadata entry: a string, number, boolean or null (at most 64 entries).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.event.metadata.insert(key.into(), value.into());
        self
    }

    /// Your own idempotency key for this event (1 to 255 characters), for instance derived from
    /// the row it describes, so that recording it again, even from another process, stores it
    /// once within the server's idempotency window (at least 24 hours). Default: a UUID v7 made
    /// when the event is recorded. Keys that grow with time (a UUID v7, a ULID, a row's id) cost
    /// the server much less to keep than random ones.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.event.idempotency_key = Some(key.into());
        self
    }

    /// With a platform key: the organization the event is for, its id (`org_…`) or your own
    /// tenant id (its external id). One batch may hold the events of many organizations. An
    /// organization's own key must not name one (the server refuses it).
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.event.organization = Some(organization.into());
        self
    }

    /// Checks the event and returns it, or every problem found.
    pub fn build(self) -> Result<Event, BuildError> {
        let mut c = Checker::default();
        let e = &self.event;
        if !is_action(&e.action) {
            c.err(
                "action",
                "must be a lowercase word: a letter a-z, then a-z, 0-9 or _, at most 64",
            );
        }
        if !self.actor_set {
            c.err("actor", "is required");
        }
        if let Some(at) = e.occurred_at
            && at.timestamp_millis() < 0
        {
            c.err("occurred_at", "must not be before 1970");
        }
        if let Some(d) = &e.detailed_action
            && !is_detailed_action(d)
        {
            c.err(
                "detailed_action",
                "must be 1 to 128 letters, digits or _ . : / -",
            );
        }
        if let Some(ch) = &e.channel
            && !is_channel(ch)
        {
            c.err(
                "channel",
                "must be a lowercase letter or digit, then a-z, 0-9 or _ . -, at most 64",
            );
        }
        c.text("description", e.description.as_deref(), 4096);
        c.actor(&e.actor);
        if let Some(entity) = &e.entity {
            c.entity("entity", entity);
        }
        if e.entity_ids.len() > 10_000 {
            c.err("entity_ids", "holds more than 10000 ids");
        }
        for (i, id) in e.entity_ids.iter().enumerate() {
            c.entity_id(&format!("entity_ids[{i}]"), id);
        }
        if e.related_entities.len() > 100 {
            c.err("related_entities", "holds more than 100 entities");
        }
        for (i, entity) in e.related_entities.iter().enumerate() {
            c.entity(&format!("related_entities[{i}]"), entity);
        }
        c.context(&e.context);
        if !e.changes.is_empty() && (e.before.is_some() || e.after.is_some()) {
            c.err(
                "changes",
                "cannot be sent together with `before`/`after`; send one or the other",
            );
        }
        if e.changes.len() > 1000 {
            c.err("changes", "holds more than 1000 changes");
        }
        for (i, change) in e.changes.iter().enumerate() {
            let field = format!("changes[{i}]");
            c.text_between(&format!("{field}.field"), Some(&change.field), 1, 256);
            for value in change.old.iter().chain(change.new.iter()) {
                c.no_nul(&field, value);
            }
        }
        for (name, side) in [("before", &e.before), ("after", &e.after)] {
            if let Some(value) = side {
                if !value.is_object() {
                    c.err(name, "must be a JSON object");
                }
                c.no_nul(name, value);
            }
        }
        c.metadata("metadata", &e.metadata);
        if let Some(key) = &e.idempotency_key
            && !(1..=255).contains(&key.chars().count())
        {
            c.err("idempotency_key", "must be 1 to 255 characters");
        }
        if let Some(org) = &e.organization {
            let len = org.chars().count();
            if !(1..=256).contains(&len)
                || org.chars().any(|ch| ch.is_whitespace() || ch.is_control())
            {
                c.err(
                    "organization",
                    "must be 1 to 256 characters without spaces or control characters",
                );
            }
        }
        if c.problems.is_empty() {
            Ok(self.event)
        } else {
            Err(BuildError {
                problems: c.problems,
            })
        }
    }
}

/// The server's limit for the context's free texts (`user_agent`, `reason`).
const MAX_CONTEXT_TEXT: usize = 1024;

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => s[..cut].to_string(),
        None => s.to_string(),
    }
}

fn to_value(value: impl Serialize) -> Value {
    // A type whose `Serialize` fails (a map with non-string keys) is kept as a string saying so,
    // which `build` then refuses as not an object.
    serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("unserializable: {e}")))
}

/// What is wrong with an event: every problem [`EventBuilder::build`] found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct BuildError {
    pub problems: Vec<Problem>,
}

/// One problem with one field, named as the server names it (`actor.email`, `changes[2].field`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Problem {
    pub field: String,
    pub message: String,
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn err(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// At most `max` characters, no NUL.
    fn text(&mut self, field: &str, value: Option<&str>, max: usize) {
        self.text_between(field, value, 0, max);
    }

    fn text_between(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) {
        let Some(value) = value else { return };
        let len = value.chars().count();
        if len < min || len > max {
            if min > 0 {
                self.err(field, format!("must be {min} to {max} characters"));
            } else {
                self.err(field, format!("must be at most {max} characters"));
            }
        }
        if value.contains('\0') {
            self.err(field, "must not contain NUL characters");
        }
    }

    /// The server refuses NUL anywhere (PostgreSQL cannot store it), keys included.
    fn no_nul(&mut self, field: &str, value: &Value) {
        if has_nul(value) {
            self.err(field, "must not contain NUL characters");
        }
    }

    fn actor(&mut self, actor: &Actor) {
        self.text("actor.id", actor.id.as_deref(), 256);
        self.text("actor.name", actor.name.as_deref(), 256);
        self.text("actor.email", actor.email.as_deref(), 256);
        self.text("actor.href", actor.href.as_deref(), 2048);
        self.metadata("actor.metadata", &actor.metadata);
    }

    fn entity(&mut self, field: &str, entity: &Entity) {
        self.text_between(&format!("{field}.type"), Some(&entity.kind), 1, 128);
        if let Some(id) = &entity.id {
            self.entity_id(&format!("{field}.id"), id);
        }
        self.text(&format!("{field}.name"), entity.name.as_deref(), 512);
        self.text(&format!("{field}.href"), entity.href.as_deref(), 2048);
        self.metadata(&format!("{field}.metadata"), &entity.metadata);
    }

    fn entity_id(&mut self, field: &str, id: &EntityId) {
        match id {
            EntityId::Text(s) => self.text(field, Some(s), 256),
            EntityId::Number(n) => {
                if !(n.is_i64() || n.is_u64()) {
                    self.err(field, "must be a string or an integer");
                }
            }
        }
    }

    fn context(&mut self, c: &Context) {
        self.text("context.user_agent", c.user_agent.as_deref(), 1024);
        self.text("context.reason", c.reason.as_deref(), 1024);
        for (name, value) in [
            ("context.correlation_id", &c.correlation_id),
            ("context.request_id", &c.request_id),
            ("context.api_key_id", &c.api_key_id),
            ("context.location", &c.location),
        ] {
            self.text(name, value.as_deref(), 256);
        }
        if let Some(imp) = &c.impersonator {
            self.text("context.impersonator.id", imp.id.as_deref(), 256);
            self.text("context.impersonator.email", imp.email.as_deref(), 256);
        }
    }

    fn metadata(&mut self, field: &str, metadata: &Map<String, Value>) {
        if metadata.len() > 64 {
            self.err(field, "holds more than 64 keys");
        }
        for (key, value) in metadata {
            let name = format!("{field}.{key}");
            if !(1..=128).contains(&key.chars().count()) {
                self.err(&name, "a key must be 1 to 128 characters");
            }
            match value {
                Value::String(s) => self.text(&name, Some(s), 4096),
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
                Value::Array(_) | Value::Object(_) => {
                    self.err(&name, "must be a string, number, boolean or null")
                }
            }
            if key.contains('\0') {
                self.err(&name, "must not contain NUL characters");
            }
        }
    }
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// `[a-z][a-z0-9_]{0,63}`
fn is_action(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// 1 to 128 of `[A-Za-z0-9_.:/-]`
fn is_detailed_action(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.:/-".contains(&c))
}

/// `[a-z0-9][a-z0-9_.-]{0,63}`
fn is_channel(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_of(event: &Event) -> Value {
        serde_json::from_str(&event.to_json()).unwrap()
    }

    #[test]
    fn a_full_event_serializes_to_the_native_event() {
        let at: DateTime<Utc> = "2026-01-02T03:04:05.678Z".parse().unwrap();
        let event = Event::builder("update")
            .occurred_at(at)
            .detailed_action("printer.rename")
            .channel("hardware")
            .description("Renamed printer A to Alpha")
            .outcome(Outcome::Failure)
            .actor(
                Actor::user("u1")
                    .name("Ada")
                    .email("ada@example.com")
                    .metadata("plan", "pro"),
            )
            .entity(Entity::new("Printer", 42).name("Alpha"))
            .entity_ids(["a", "b"])
            .related_entity(Entity::new("Site", "berlin"))
            .ip("203.0.113.7".parse().unwrap())
            .correlation_id("req-1")
            .source(Source::Web)
            .before(json!({"name": "A"}))
            .after(json!({"name": "Alpha"}))
            .metadata("site", "Berlin")
            .metadata("floor", 3)
            .idempotency_key("row-7")
            .organization("tenant-1842")
            .build()
            .unwrap();
        assert_eq!(
            json_of(&event),
            json!({
                "occurred_at": "2026-01-02T03:04:05.678Z",
                "action": "update",
                "detailed_action": "printer.rename",
                "channel": "hardware",
                "description": "Renamed printer A to Alpha",
                "outcome": "failure",
                "actor": {"type": "user", "id": "u1", "name": "Ada", "email": "ada@example.com",
                          "metadata": {"plan": "pro"}},
                "entity": {"type": "Printer", "id": 42, "name": "Alpha"},
                "entity_ids": ["a", "b"],
                "related_entities": [{"type": "Site", "id": "berlin"}],
                "context": {"ip": "203.0.113.7", "correlation_id": "req-1", "source": "web"},
                "before": {"name": "A"},
                "after": {"name": "Alpha"},
                "metadata": {"site": "Berlin", "floor": 3},
                "idempotency_key": "row-7",
                "organization": "tenant-1842"
            })
        );
    }

    #[test]
    fn a_minimal_event_sends_only_what_was_set() {
        let event = Event::builder("login")
            .actor(Actor::user("u7"))
            .build()
            .unwrap();
        assert_eq!(
            json_of(&event),
            json!({"action": "login", "actor": {"type": "user", "id": "u7"}})
        );
    }

    #[test]
    fn recording_stamps_the_time_and_a_key_once_and_keeps_given_ones() {
        let now: DateTime<Utc> = "2026-05-01T00:00:00Z".parse().unwrap();
        let mut event = Event::builder("login")
            .actor(Actor::user("u7"))
            .build()
            .unwrap();
        let key = event.stamp(now).to_string();
        assert_eq!(key.len(), 36, "a UUID: {key}");
        assert_eq!(event.stamp(now + chrono::Duration::hours(1)), key);
        assert_eq!(event.occurred_at(), Some(now));
        // Time-ordered (UUID v7): each key sorts after the one recorded before it.
        let mut previous = key;
        for _ in 0..1000 {
            let mut next = event.clone();
            next.idempotency_key = None;
            let next = next.stamp(now).to_string();
            assert_eq!(next.as_bytes()[14], b'7', "a UUID v7: {next}");
            assert!(next > previous, "{next} after {previous}");
            previous = next;
        }

        let given: DateTime<Utc> = "2025-05-01T00:00:00Z".parse().unwrap();
        let mut mine = Event::builder("login")
            .actor(Actor::user("u7"))
            .occurred_at(given)
            .idempotency_key("mine")
            .build()
            .unwrap();
        assert_eq!(mine.stamp(now), "mine");
        assert_eq!(mine.occurred_at(), Some(given));
    }

    #[test]
    fn build_names_every_problem() {
        let err = Event::builder("Update")
            .channel("Auth")
            .detailed_action("printer rename")
            .entity(Entity::of_type(""))
            .change(Change::new("name", "a", "b"))
            .after(json!({"name": "b"}))
            .before(json!(["not", "an", "object"]))
            .metadata("nested", json!({"a": 1}))
            .organization("two words")
            .build()
            .unwrap_err();
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "action",
                "actor",
                "detailed_action",
                "channel",
                "entity.type",
                "changes",
                "before",
                "metadata.nested",
                "organization"
            ],
            "{err}"
        );
        assert!(
            err.to_string().starts_with("invalid event: action: "),
            "{err}"
        );
    }

    #[test]
    fn an_empty_action_is_refused() {
        let err = Event::builder("")
            .actor(Actor::system())
            .build()
            .unwrap_err();
        assert_eq!(err.problems[0].field, "action");
    }

    #[test]
    fn the_request_context_fills_the_event_context_and_cuts_a_long_user_agent() {
        let request = RequestContext {
            ip: Some("2001:db8::1".parse().unwrap()),
            user_agent: Some("x".repeat(5000)),
            request_id: Some("r-1".into()),
            correlation_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
        };
        let event = Event::builder("view")
            .actor(Actor::user("u1"))
            .reason("ticket 7")
            .context(&request)
            .build()
            .unwrap();
        let context = &json_of(&event)["context"];
        assert_eq!(context["ip"], "2001:db8::1");
        assert_eq!(context["user_agent"].as_str().unwrap().len(), 1024);
        assert_eq!(context["request_id"], "r-1");
        assert_eq!(
            context["correlation_id"],
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(context["reason"], "ticket 7");
    }

    #[test]
    fn nul_characters_are_refused_wherever_they_hide() {
        let err = Event::builder("update")
            .actor(Actor::user("a\0b"))
            .after(json!({"deep": {"x": ["ok", "n\0l"]}}))
            .build()
            .unwrap_err();
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["actor.id", "after"]);
    }
}
