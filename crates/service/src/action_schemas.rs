//! Action schemas: what the events of one action must carry, in versions. The WorkOS door's
//! `POST /audit_logs/actions/{action}/schemas` defines them (for the platform, as WorkOS defines
//! them for an environment), and its event ingest checks each event against the version it names
//! or the latest.
//!
//! A schema document is `{"actor": {"metadata": S}, "targets": [{"type": T, "metadata": S}],
//! "metadata": S}` (each part optional but `targets`), where each `S` is a JSON Schema of an
//! object of scalars: the subset WorkOS's own schema editor produces. Only that subset is
//! accepted ([`ObjectSchema::parse`]): `type: "object"`, `properties` whose values have a `type`
//! of `string`, `number`, `integer` or `boolean`, `required`, `additionalProperties` (a boolean),
//! and the annotations `title`, `description`, `$comment` and `$schema`. Any other keyword is
//! refused, naming it, rather than stored and then silently not enforced. Without
//! `additionalProperties: false` a property the schema does not name is accepted, as JSON Schema
//! says.
//!
//! The subset is small enough to check here: the `jsonschema` crate (0.61), even with its
//! default features off, brings some 70 crates (two regex engines, big-number arithmetic, URI
//! and email parsers) for keywords this subset refuses anyway.
//!
//! An event ([`check_event`]) is checked part by part: its actor's metadata, each target's type
//! (one of the schema's target types, when it names any) and metadata, and its metadata. A part
//! the schema leaves out is not checked. Problems come back as JSON pointers into the event
//! (`/metadata/extra`), for the door to answer in its own words.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};
use stele_core::time::Millis;
use stele_store::{ActionSchema, NewActionSchema, OrgKey, Store, StoreError};

use crate::clock::SharedClock;
use crate::trail::{self, By, activity};

/// The longest action name a schema is defined for.
pub const MAX_ACTION_CHARS: usize = 128;
/// The most properties one object schema may name: WorkOS's limit on metadata keys.
pub const MAX_PROPERTIES: usize = 50;
/// The longest property name: WorkOS's limit on a metadata key.
pub const MAX_PROPERTY_CHARS: usize = 40;
/// The most target types one schema may name.
pub const MAX_TARGETS: usize = 50;

/// A part of a schema request that cannot be accepted: where (`targets[1].metadata.properties.size
/// .type`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SchemaProblem {
    pub field: String,
    pub message: String,
    /// The field is required and missing (a door may answer this differently from a bad value).
    pub missing: bool,
}

fn problem(field: &str, message: impl Into<String>) -> SchemaProblem {
    SchemaProblem {
        field: field.to_string(),
        message: message.into(),
        missing: false,
    }
}

/// Checks an action's name: 1 to [`MAX_ACTION_CHARS`] of letters, digits, `.`, `_` and `-`
/// (WorkOS's dotted actions, `user.signed_in`).
pub fn check_action(action: &str) -> Result<(), SchemaProblem> {
    let ok = !action.is_empty()
        && action.chars().count() <= MAX_ACTION_CHARS
        && action
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(problem(
            "action",
            format!(
                "must be 1 to {MAX_ACTION_CHARS} letters, digits, `.`, `_` or `-` (like \
                 user.signed_in)"
            ),
        ))
    }
}

/// The type of one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Number,
    Integer,
    Boolean,
}

impl ScalarType {
    fn parse(name: &str) -> Option<ScalarType> {
        match name {
            "string" => Some(ScalarType::String),
            "number" => Some(ScalarType::Number),
            "integer" => Some(ScalarType::Integer),
            "boolean" => Some(ScalarType::Boolean),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ScalarType::String => "string",
            ScalarType::Number => "number",
            ScalarType::Integer => "integer",
            ScalarType::Boolean => "boolean",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (ScalarType::String, Value::String(_)) => true,
            (ScalarType::Number, Value::Number(_)) => true,
            (ScalarType::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            (ScalarType::Boolean, Value::Bool(_)) => true,
            _ => false,
        }
    }
}

/// Keywords that only annotate a schema: accepted anywhere, and without effect.
const ANNOTATIONS: [&str; 4] = ["title", "description", "$comment", "$schema"];

/// A JSON Schema of an object of scalars (see the module docs), and the document it was read
/// from, kept as sent so that it is shown back as it was given.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSchema {
    properties: Vec<(String, ScalarType)>,
    required: Vec<String>,
    additional_properties: bool,
    source: Value,
}

impl ObjectSchema {
    /// Reads one object schema; `field` is where it is in the request, for the problems.
    pub fn parse(field: &str, value: &Value) -> Result<ObjectSchema, SchemaProblem> {
        let Value::Object(map) = value else {
            return Err(problem(
                field,
                "must be a JSON Schema object: {\"type\": \"object\", \"properties\": {…}}",
            ));
        };
        let mut schema = ObjectSchema {
            properties: vec![],
            required: vec![],
            additional_properties: true,
            source: value.clone(),
        };
        for (keyword, value) in map {
            let at = format!("{field}.{keyword}");
            match keyword.as_str() {
                "type" => {
                    if value != "object" {
                        return Err(problem(&at, "must be \"object\""));
                    }
                }
                "properties" => schema.properties = properties(&at, value)?,
                "required" => {
                    let names = value.as_array().ok_or_else(|| {
                        problem(&at, "must be an array of the names of required properties")
                    })?;
                    for (i, name) in names.iter().enumerate() {
                        let name = name
                            .as_str()
                            .ok_or_else(|| problem(&format!("{at}[{i}]"), "must be a string"))?;
                        schema.required.push(name.to_string());
                    }
                }
                "additionalProperties" => {
                    schema.additional_properties = value.as_bool().ok_or_else(|| {
                        problem(
                            &at,
                            "must be true or false (a schema for the other properties is not \
                             supported)",
                        )
                    })?;
                }
                k if ANNOTATIONS.contains(&k) => {}
                _ => return Err(unsupported(&at)),
            }
        }
        for (i, name) in schema.required.iter().enumerate() {
            if !schema.properties.iter().any(|(p, _)| p == name) {
                return Err(problem(
                    &format!("{field}.required[{i}]"),
                    format!("names `{name}`, which is not one of the properties"),
                ));
            }
        }
        Ok(schema)
    }

    /// The schema as it was sent.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// The problems of `value` (absent counts as `{}`), as pointers under `path`.
    fn check(&self, path: &str, value: Option<&Value>, out: &mut Vec<Violation>) {
        let empty = Map::new();
        let object = match value {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(object)) => object,
            Some(_) => {
                out.push(Violation::new(path, "must be object"));
                return;
            }
        };
        for name in &self.required {
            if !object.contains_key(name) {
                out.push(Violation::new(
                    path,
                    format!("must have required property '{name}'"),
                ));
            }
        }
        for (key, value) in object {
            let at = format!("{path}/{}", pointer_token(key));
            match self.properties.iter().find(|(p, _)| p == key) {
                Some((_, kind)) if !kind.admits(value) => {
                    out.push(Violation::new(&at, format!("must be {}", kind.as_str())));
                }
                Some(_) => {}
                None if !self.additional_properties => {
                    out.push(Violation::new(&at, "must NOT have additional properties"));
                }
                None => {}
            }
        }
    }
}

fn unsupported(field: &str) -> SchemaProblem {
    problem(
        field,
        "is not supported: a schema may use type, properties (each of type string, number, \
         integer or boolean), required, additionalProperties, title and description",
    )
}

/// The `properties` of an object schema: each a scalar type.
fn properties(field: &str, value: &Value) -> Result<Vec<(String, ScalarType)>, SchemaProblem> {
    let map = value.as_object().ok_or_else(|| {
        problem(
            field,
            "must be an object of property names to {\"type\": …}",
        )
    })?;
    if map.len() > MAX_PROPERTIES {
        return Err(problem(
            field,
            format!("names {} properties; at most {MAX_PROPERTIES}", map.len()),
        ));
    }
    let mut out = Vec::with_capacity(map.len());
    for (name, property) in map {
        let at = format!("{field}.{name}");
        let name_ok = !name.is_empty()
            && name.chars().count() <= MAX_PROPERTY_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !name_ok {
            return Err(problem(
                &at,
                format!(
                    "is not a metadata key: 1 to {MAX_PROPERTY_CHARS} letters, digits, `_` or `-`"
                ),
            ));
        }
        let Value::Object(keywords) = property else {
            return Err(problem(&at, "must be an object: {\"type\": \"string\"}"));
        };
        let mut kind = None;
        for (keyword, value) in keywords {
            let at = format!("{at}.{keyword}");
            match keyword.as_str() {
                "type" => {
                    kind = Some(value.as_str().and_then(ScalarType::parse).ok_or_else(|| {
                        problem(
                            &at,
                            "must be \"string\", \"number\", \"integer\" or \"boolean\"",
                        )
                    })?);
                }
                k if ANNOTATIONS.contains(&k) => {}
                _ => return Err(unsupported(&at)),
            }
        }
        let kind = kind.ok_or_else(|| SchemaProblem {
            missing: true,
            ..problem(
                &format!("{at}.type"),
                "is required: \"string\", \"number\", \"integer\" or \"boolean\"",
            )
        })?;
        out.push((name.clone(), kind));
    }
    Ok(out)
}

/// One target type of a schema, with the schema of its metadata if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSchema {
    pub kind: String,
    pub metadata: Option<ObjectSchema>,
}

/// A schema document (see the module docs), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDocument {
    /// The actor's metadata.
    pub actor: Option<ObjectSchema>,
    pub targets: Vec<TargetSchema>,
    pub metadata: Option<ObjectSchema>,
}

impl SchemaDocument {
    /// Reads a schema request's body: `{"actor": {"metadata": S}?, "targets": [...],
    /// "metadata": S?}`; unknown fields are refused, naming them.
    pub fn parse(body: &Value) -> Result<SchemaDocument, SchemaProblem> {
        let Value::Object(map) = body else {
            return Err(problem(
                "body",
                "must be a JSON object: {\"actor\", \"targets\", \"metadata\"}",
            ));
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "actor" | "targets" | "metadata"))
        {
            return Err(problem(
                unknown,
                "is not a field of a schema (actor, targets, metadata)",
            ));
        }
        let actor = match map.get("actor") {
            None | Some(Value::Null) => None,
            Some(Value::Object(actor)) => {
                if let Some(unknown) = actor.keys().find(|k| *k != "metadata") {
                    return Err(problem(
                        &format!("actor.{unknown}"),
                        "is not a field of the actor's schema (metadata)",
                    ));
                }
                optional_object(actor, "metadata", "actor.metadata")?
            }
            Some(_) => return Err(problem("actor", "must be an object: {\"metadata\": …}")),
        };
        let targets = match map.get("targets") {
            None | Some(Value::Null) => {
                return Err(SchemaProblem {
                    missing: true,
                    ..problem("targets", "is required: an array of {\"type\": …}")
                });
            }
            Some(Value::Array(targets)) => targets,
            Some(_) => return Err(problem("targets", "must be an array of {\"type\": …}")),
        };
        if targets.len() > MAX_TARGETS {
            return Err(problem(
                "targets",
                format!(
                    "names {} target types; at most {MAX_TARGETS}",
                    targets.len()
                ),
            ));
        }
        let mut target_schemas: Vec<TargetSchema> = Vec::with_capacity(targets.len());
        for (i, target) in targets.iter().enumerate() {
            let at = format!("targets[{i}]");
            let Value::Object(target) = target else {
                return Err(problem(
                    &at,
                    "must be an object: {\"type\": …, \"metadata\": …}",
                ));
            };
            if let Some(unknown) = target
                .keys()
                .find(|k| !matches!(k.as_str(), "type" | "metadata"))
            {
                return Err(problem(
                    &format!("{at}.{unknown}"),
                    "is not a field of a target's schema (type, metadata)",
                ));
            }
            let kind = match target.get("type") {
                Some(Value::String(kind)) if !kind.trim().is_empty() && kind.len() <= 256 => {
                    kind.clone()
                }
                None | Some(Value::Null) => {
                    return Err(SchemaProblem {
                        missing: true,
                        ..problem(&format!("{at}.type"), "is required: the target's type")
                    });
                }
                Some(_) => {
                    return Err(problem(
                        &format!("{at}.type"),
                        "must be a string of 1 to 256 characters",
                    ));
                }
            };
            if target_schemas.iter().any(|t| t.kind == kind) {
                return Err(problem(
                    &format!("{at}.type"),
                    format!("`{kind}` is named twice"),
                ));
            }
            let metadata = optional_object(target, "metadata", &format!("{at}.metadata"))?;
            target_schemas.push(TargetSchema { kind, metadata });
        }
        let metadata = optional_object(map, "metadata", "metadata")?;
        Ok(SchemaDocument {
            actor,
            targets: target_schemas,
            metadata,
        })
    }

    /// The document as stored and shown: the parts as they were sent, `actor` always there (with
    /// an empty object schema when it has none, as WorkOS shows it), `metadata` when given.
    pub fn to_json(&self) -> Value {
        let empty = json!({"type": "object", "properties": {}});
        let mut out = Map::new();
        out.insert(
            "actor".into(),
            json!({"metadata": self.actor.as_ref().map_or(empty, |a| a.source().clone())}),
        );
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| {
                let mut target = Map::new();
                target.insert("type".into(), json!(t.kind));
                if let Some(metadata) = &t.metadata {
                    target.insert("metadata".into(), metadata.source().clone());
                }
                Value::Object(target)
            })
            .collect();
        out.insert("targets".into(), Value::Array(targets));
        if let Some(metadata) = &self.metadata {
            out.insert("metadata".into(), metadata.source().clone());
        }
        Value::Object(out)
    }
}

fn optional_object(
    map: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<ObjectSchema>, SchemaProblem> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => ObjectSchema::parse(field, value).map(Some),
    }
}

/// A stored version of an action's schema, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedSchema {
    pub action: String,
    pub version: u32,
    pub document: SchemaDocument,
    pub created_at: Millis,
}

impl VersionedSchema {
    fn read(stored: ActionSchema) -> Result<VersionedSchema, StoreError> {
        let corrupt = |e: String| {
            StoreError::Other(format!(
                "stored schema {} v{} does not read back: {e}",
                stored.action, stored.version
            ))
        };
        let value: Value =
            serde_json::from_str(&stored.document).map_err(|e| corrupt(e.to_string()))?;
        let document = SchemaDocument::parse(&value).map_err(|e| corrupt(e.to_string()))?;
        Ok(VersionedSchema {
            action: stored.action,
            version: stored.version,
            document,
            created_at: stored.created_at,
        })
    }
}

/// Stores `document` as the next version of `action`'s schema for `org` (the platform's own
/// organization, for the WorkOS door) and records it there (`audit_log_schema.create`).
pub async fn create(
    store: &dyn Store,
    org: OrgKey,
    action: &str,
    document: SchemaDocument,
    by: By,
    now: Millis,
) -> Result<VersionedSchema, StoreError> {
    let stored = store
        .create_action_schema(
            org,
            NewActionSchema {
                action: action.to_string(),
                document: document.to_json().to_string(),
                created_at: now,
            },
        )
        .await?;
    let event = activity::action_schema_created(by.actor.clone(), by.context.clone(), &stored, now);
    trail::record_by(store, org, event, &by).await?;
    Ok(VersionedSchema {
        action: stored.action,
        version: stored.version,
        document,
        created_at: stored.created_at,
    })
}

/// Every version of `action`'s schema for `org`, oldest first.
pub async fn list(
    store: &dyn Store,
    org: OrgKey,
    action: &str,
) -> Result<Vec<VersionedSchema>, StoreError> {
    store
        .action_schemas(org, action)
        .await?
        .into_iter()
        .map(VersionedSchema::read)
        .collect()
}

/// Why an event's schema could not be found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The event names a version the action does not have.
    #[error("action `{action}` has no schema version {version}")]
    NoSuchVersion { action: String, version: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The schema an event of `action` is checked against, among the action's versions (oldest
/// first): the `version` it names, or the latest. `None` when the action has no schema: then
/// anything goes. A version the action does not have is an error only if the action has schemas
/// at all: an application sends `version: 1` from its first event on, before (or without ever)
/// defining one, and WorkOS takes those events.
fn pick(
    versions: &[VersionedSchema],
    action: &str,
    version: Option<u32>,
) -> Result<Option<VersionedSchema>, LookupError> {
    match version {
        None => Ok(versions.last().cloned()),
        Some(version) => match versions.iter().find(|v| v.version == version) {
            Some(found) => Ok(Some(found.clone())),
            None if versions.is_empty() => Ok(None),
            None => Err(LookupError::NoSuchVersion {
                action: action.to_string(),
                version,
            }),
        },
    }
}

/// Past this many cached actions, the cache starts afresh (distinct actions are few; this only
/// bounds what a client sending endless made-up actions can make it hold).
const MAX_CACHED_ACTIONS: usize = 10_000;

/// Each action's schemas as events are checked against them, cached in this process so that
/// an event costs no database read: for the settings' TTL (`Config::settings_cache_ttl`, 5
/// seconds by default), as organization settings are cached
/// (`crate::access::org_policy`). A schema defined through this server is seen at once; one
/// defined through another server sharing the database, within the TTL.
pub struct SchemaCache {
    clock: SharedClock,
    ttl_ms: Millis,
    entries: Mutex<CachedActions>,
}

/// Per (organization, action): when its versions were read, and the versions.
type CachedActions = HashMap<(OrgKey, String), (Millis, Arc<Vec<VersionedSchema>>)>;

impl SchemaCache {
    pub fn new(clock: SharedClock, ttl: std::time::Duration) -> SchemaCache {
        SchemaCache {
            clock,
            ttl_ms: ttl.as_millis() as Millis,
            entries: Mutex::default(),
        }
    }

    /// The schema an event of `action` is checked against ([`pick`]'s rule).
    pub async fn for_event(
        &self,
        store: &dyn Store,
        org: OrgKey,
        action: &str,
        version: Option<u32>,
    ) -> Result<Option<VersionedSchema>, LookupError> {
        let versions = self.versions(store, org, action).await?;
        pick(&versions, action, version)
    }

    /// Defines the next version of `action`'s schema ([`create`]) and forgets the cached
    /// versions, so this server's next event is checked against it.
    pub async fn create(
        &self,
        store: &dyn Store,
        org: OrgKey,
        action: &str,
        document: SchemaDocument,
        by: By,
        now: Millis,
    ) -> Result<VersionedSchema, StoreError> {
        let created = create(store, org, action, document, by, now).await?;
        self.lock().remove(&(org, action.to_string()));
        Ok(created)
    }

    async fn versions(
        &self,
        store: &dyn Store,
        org: OrgKey,
        action: &str,
    ) -> Result<Arc<Vec<VersionedSchema>>, StoreError> {
        let now = self.clock.now();
        let key = (org, action.to_string());
        if let Some((fetched, versions)) = self.lock().get(&key)
            && now - fetched < self.ttl_ms
        {
            return Ok(versions.clone());
        }
        let versions = Arc::new(list(store, org, action).await?);
        let mut entries = self.lock();
        if entries.len() >= MAX_CACHED_ACTIONS {
            entries.clear();
        }
        entries.insert(key, (now, versions.clone()));
        Ok(versions)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CachedActions> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One way an event breaks its schema: where, as a JSON pointer into the event
/// (`/targets/0/metadata/size`), and what is wrong, in JSON Schema validators' usual words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

impl Violation {
    fn new(pointer: &str, message: impl Into<String>) -> Violation {
        Violation {
            pointer: pointer.to_string(),
            message: message.into(),
        }
    }
}

/// Checks an event (`{"actor": {"metadata"}, "targets": [{"type", "metadata"}], "metadata"}`,
/// other fields ignored) against a schema document; every problem, empty when it conforms.
pub fn check_event(schema: &SchemaDocument, event: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(actor) = &schema.actor {
        let metadata = event.get("actor").and_then(|a| a.get("metadata"));
        actor.check("/actor/metadata", metadata, &mut out);
    }
    if let Some(targets) = event.get("targets").and_then(Value::as_array) {
        for (i, target) in targets.iter().enumerate() {
            let kind = target.get("type").and_then(Value::as_str).unwrap_or("");
            match schema.targets.iter().find(|t| t.kind == kind) {
                Some(TargetSchema {
                    metadata: Some(metadata),
                    ..
                }) => {
                    metadata.check(
                        &format!("/targets/{i}/metadata"),
                        target.get("metadata"),
                        &mut out,
                    );
                }
                Some(_) => {}
                None if schema.targets.is_empty() => {}
                None => {
                    let kinds: Vec<&str> = schema.targets.iter().map(|t| t.kind.as_str()).collect();
                    out.push(Violation::new(
                        &format!("/targets/{i}/type"),
                        format!(
                            "must be one of the schema's target types: {}",
                            kinds.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    if let Some(metadata) = &schema.metadata {
        metadata.check("/metadata", event.get("metadata"), &mut out);
    }
    out
}

/// A JSON pointer's escaping of one key (RFC 6901: `~` as `~0`, `/` as `~1`).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(body: Value) -> SchemaDocument {
        SchemaDocument::parse(&body).unwrap()
    }

    fn refused(body: Value) -> SchemaProblem {
        SchemaDocument::parse(&body).unwrap_err()
    }

    fn pointers(schema: &SchemaDocument, event: Value) -> Vec<String> {
        check_event(schema, &event)
            .into_iter()
            .map(|v| v.pointer)
            .collect()
    }

    /// The body `@workos-inc/node`'s `createSchema` sends (interop-wire.md A4).
    fn sdk_schema() -> SchemaDocument {
        document(json!({
            "actor": {"metadata": {"type": "object", "properties": {"role": {"type": "string"}}}},
            "targets": [
                {"type": "team", "metadata": {"type": "object",
                    "properties": {"size": {"type": "number"}}}},
                {"type": "doc"}
            ],
            "metadata": {"type": "object", "properties": {"extra": {"type": "boolean"}}}
        }))
    }

    #[test]
    fn a_conforming_event_passes_and_each_wrong_part_is_named_by_pointer() {
        let schema = sdk_schema();
        let good = json!({
            "action": "user.signed_in",
            "actor": {"id": "u1", "type": "user", "metadata": {"role": "admin"}},
            "targets": [{"id": "t1", "type": "team", "metadata": {"size": 3}}, {"id": "d", "type": "doc"}],
            "metadata": {"extra": true}
        });
        assert_eq!(check_event(&schema, &good), []);
        let bad = json!({
            "actor": {"metadata": {"role": 7}},
            "targets": [{"type": "team", "metadata": {"size": "big"}}, {"type": "folder"}],
            "metadata": {"extra": "yes"}
        });
        assert_eq!(
            pointers(&schema, bad),
            [
                "/actor/metadata/role",
                "/targets/0/metadata/size",
                "/targets/1/type",
                "/metadata/extra"
            ]
        );
        let v = check_event(&schema, &json!({"metadata": {"extra": 1}}));
        assert_eq!(v[0].message, "must be boolean");
    }

    #[test]
    fn required_and_additional_properties_are_enforced_and_types_are_exact() {
        let schema = document(json!({
            "targets": [],
            "metadata": {"type": "object", "properties": {
                "n": {"type": "integer"}, "x": {"type": "number"}, "s": {"type": "string"}},
                "required": ["n"], "additionalProperties": false}
        }));
        assert_eq!(
            pointers(&schema, json!({"metadata": {"n": 2, "x": 1.5, "s": "a"}})),
            Vec::<String>::new()
        );
        // 2.0 is an integer, as JSON Schema counts them; 2.5 is not.
        assert_eq!(
            pointers(&schema, json!({"metadata": {"n": 2.0}})),
            Vec::<String>::new()
        );
        assert_eq!(
            pointers(&schema, json!({"metadata": {"n": 2.5}})),
            ["/metadata/n"]
        );
        assert_eq!(pointers(&schema, json!({"metadata": {}})), ["/metadata"]);
        // Absent metadata is an empty object: the required property is missing.
        let missing = check_event(&schema, &json!({}));
        assert_eq!(missing[0].pointer, "/metadata");
        assert_eq!(missing[0].message, "must have required property 'n'");
        assert_eq!(
            pointers(&schema, json!({"metadata": {"n": 1, "a/b": 1}})),
            ["/metadata/a~1b"]
        );
        assert_eq!(
            pointers(&schema, json!({"metadata": {"n": "1"}})),
            ["/metadata/n"]
        );
        assert_eq!(pointers(&schema, json!({"metadata": [1]})), ["/metadata"]);
        // Without additionalProperties: false, another key is accepted, as JSON Schema says.
        let open = document(json!({"targets": [], "metadata": {"type": "object",
            "properties": {"n": {"type": "integer"}}}}));
        assert_eq!(
            pointers(&open, json!({"metadata": {"other": "x"}})),
            Vec::<String>::new()
        );
    }

    #[test]
    fn parts_the_schema_leaves_out_are_not_checked() {
        let schema = document(json!({"targets": []}));
        let anything = json!({"actor": {"metadata": {"a": [1]}}, "targets": [{"type": "x",
            "metadata": {"b": {}}}], "metadata": {"c": null}});
        assert_eq!(check_event(&schema, &anything), []);
        // A target type without a metadata schema takes any metadata.
        assert_eq!(
            pointers(
                &sdk_schema(),
                json!({"targets": [{"type": "doc", "metadata": {"any": "x"}}]})
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn keywords_outside_the_subset_are_refused_naming_the_field() {
        let p = refused(json!({"targets": [], "metadata": {"type": "object",
            "properties": {"s": {"type": "string", "maxLength": 3}}}}));
        assert_eq!(p.field, "metadata.properties.s.maxLength");
        assert!(p.message.contains("not supported"), "{}", p.message);
        let p = refused(
            json!({"targets": [{"type": "team", "metadata": {"type": "object",
            "patternProperties": {}}}]}),
        );
        assert_eq!(p.field, "targets[0].metadata.patternProperties");
        let p = refused(json!({"targets": [], "actor": {"metadata": {"type": "array"}}}));
        assert_eq!(p.field, "actor.metadata.type");
        let p =
            refused(json!({"targets": [], "metadata": {"properties": {"o": {"type": "object"}}}}));
        assert_eq!(p.field, "metadata.properties.o.type");
        let p = refused(json!({"targets": [], "metadata": {"properties": {"o": {}}}}));
        assert_eq!(
            (p.field.as_str(), p.missing),
            ("metadata.properties.o.type", true)
        );
        let p = refused(
            json!({"targets": [], "metadata": {"properties": {"n": {"type": "string"}},
            "required": ["m"]}}),
        );
        assert_eq!(p.field, "metadata.required[0]");
        let p = refused(json!({"targets": [], "metadata": {"additionalProperties": {}}}));
        assert_eq!(p.field, "metadata.additionalProperties");
        let p = refused(
            json!({"targets": [], "metadata": {"properties": {"bad key": {"type": "string"}}}}),
        );
        assert_eq!(p.field, "metadata.properties.bad key");
    }

    #[test]
    fn the_document_shape_is_checked_naming_the_field() {
        let p = refused(json!({"actor": {}}));
        assert_eq!((p.field.as_str(), p.missing), ("targets", true));
        assert_eq!(refused(json!({"targets": {}})).field, "targets");
        assert_eq!(refused(json!({"targets": [{}]})).field, "targets[0].type");
        assert_eq!(
            refused(json!({"targets": [{"type": "a"}, {"type": "a"}]})).field,
            "targets[1].type"
        );
        assert_eq!(
            refused(json!({"targets": [{"type": "a", "name": "x"}]})).field,
            "targets[0].name"
        );
        assert_eq!(refused(json!({"targets": [], "extra": 1})).field, "extra");
        assert_eq!(
            refused(json!({"targets": [], "actor": {"meta": {}}})).field,
            "actor.meta"
        );
        assert_eq!(refused(json!([])).field, "body");
        assert!(check_action("user.signed_in").is_ok());
        assert!(check_action("").is_err());
        assert!(check_action("user signed in").is_err());
        assert!(check_action(&"a".repeat(MAX_ACTION_CHARS + 1)).is_err());
    }

    #[test]
    fn the_document_is_shown_as_sent_with_the_actor_always_there() {
        let schema = sdk_schema();
        let shown = schema.to_json();
        assert_eq!(
            shown["targets"],
            json!([{"type": "team", "metadata": {"type": "object",
                "properties": {"size": {"type": "number"}}}}, {"type": "doc"}])
        );
        assert_eq!(SchemaDocument::parse(&shown).unwrap(), schema);
        let bare = document(json!({"targets": [{"type": "doc"}]}));
        assert_eq!(
            bare.to_json(),
            json!({"actor": {"metadata": {"type": "object", "properties": {}}},
                   "targets": [{"type": "doc"}]})
        );
    }

    #[tokio::test]
    async fn events_are_checked_against_cached_schemas_which_another_server_sees_within_the_ttl() {
        use crate::clock::ManualClock;
        use std::time::Duration;
        use stele_core::event::{Actor, ActorType, Context};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(stele_store_sqlite::SqliteStore::open(&dir.path().join("stele.db")).unwrap());
        let org = store.platform_org().await.unwrap().key;
        let clock = ManualClock::starting_at(1_000_000);
        let this = SchemaCache::new(SharedClock(clock.clone()), Duration::from_secs(5));
        let other = SchemaCache::new(SharedClock(clock.clone()), Duration::from_secs(5));
        let by = || By::new(Actor::of_kind(ActorType::System), Context::default());
        let action = "user.signed_in";
        // No schema: anything goes, whatever version the event names.
        assert!(
            other
                .for_event(store.as_ref(), org, action, None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            other
                .for_event(store.as_ref(), org, action, Some(1))
                .await
                .unwrap()
                .is_none()
        );
        // Defined through this server: seen here at once.
        let schema = document(json!({"targets": []}));
        this.create(store.as_ref(), org, action, schema, by(), 1_000_000)
            .await
            .unwrap();
        let found = this
            .for_event(store.as_ref(), org, action, None)
            .await
            .unwrap();
        assert_eq!(found.map(|s| s.version), Some(1));
        assert!(matches!(
            this.for_event(store.as_ref(), org, action, Some(2)).await,
            Err(LookupError::NoSuchVersion { version: 2, .. })
        ));
        // The other server read before the schema existed; it sees it once its copy expires.
        assert!(
            other
                .for_event(store.as_ref(), org, action, None)
                .await
                .unwrap()
                .is_none()
        );
        clock.advance(Duration::from_secs(5));
        let found = other
            .for_event(store.as_ref(), org, action, Some(1))
            .await
            .unwrap();
        assert_eq!(found.map(|s| s.version), Some(1));
    }
}
