//! Retraced's publisher API, as `@retracedhq/retraced` (and `retraced-go`) call it under
//! `/auditlog/publisher/v1/project/{projectId}`:
//!
//! - `POST …/event`: one event → `201 {"id", "hash"}`;
//! - `POST …/event/bulk` `{"events": [...]}` (at most 50, all or nothing) → `201 [{"id",
//!   "hash"}, …]` in the order sent;
//! - `GET …/viewertoken?group_id=&actor_id=` → `201 {"token"}`: a viewer token for the group's
//!   embedded log (`crate::compat::retraced` viewer routes, and Stele's own `/embed/log`).
//!
//! Events are checked as Retraced's server checks them (same rules, same messages), then mapped
//! onto Stele's event model ([`translate`]) and recorded through the native path
//! (`crate::api::events::record`). Each receipt carries Retraced's receipt hash of the event as
//! the client sent it ([`super::hash`]), which the client library recomputes and compares.
//!
//! What maps to what (docs/platforms.md, "Moving from Retraced"):
//!
//! | Retraced | Stele |
//! |---|---|
//! | `group.id` | the organization (its external id; created on first use when the server creates organizations on ingest) |
//! | `group.name` | `origin.group_name` |
//! | `action` (`document.update`) | `detailed_action` |
//! | `crud` `c`/`r`/`u`/`d` | `action` `create`/`view`/`update`/`delete`, and `origin.crud` |
//! | `created` | `occurred_at` (absent: when it was received) |
//! | `actor` `{id, name, href, fields}` | `actor` `{type: user, id, name, href, metadata}` |
//! | `target` `{id, name, href, type, fields}` | `entity` `{type, id, name, href, metadata}` (type `unknown` when none was sent, with `origin.target_type_absent`) |
//! | `source_ip` | `context.ip` |
//! | `description` | `description` |
//! | `is_failure` | `outcome: failure` |
//! | `is_anonymous` | `origin.is_anonymous` |
//! | `fields` | `metadata` |
//! | `metadata`, `external_id`, `component`, `version`, `displayTitle` | `origin.metadata`, `origin.external_id`, `origin.component`, `origin.version`, `origin.display_title` |

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};
use stele_core::event::Metadata;
use stele_core::redact::RedactionRules;
use stele_core::time::now_millis;
use stele_core::{FieldError, NewEvent, parse_event};
use stele_service::access::viewer::{self, FixedFilters, MintRequest, Permission, Theme, Viewer};
use stele_service::trail::By;
use stele_store::Scope;

use super::auth::RetracedKey;
use super::error::{Result, RetracedError};
use super::hash::{is_empty, is_truthy, receipt_hash};
use crate::api::auth::org_error;
use crate::api::error::ApiError;
use crate::api::events::record::{self, Checked, Recorded};
use crate::api::events::{RECORDING_DISABLED, RECORDING_HEADER};
use crate::app::state::AppState;

/// The most events one bulk request may carry (Retraced's default
/// `PUBLISHER_BULK_CREATE_MAX_EVENTS`).
pub const MAX_BULK_EVENTS: usize = 50;

/// How long a viewer token waits to be opened, as Retraced's viewer descriptors live.
const VIEWER_TOKEN_SECONDS: u64 = 300;

/// One broken rule of one event, as Retraced reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub message: String,
    pub field: String,
    /// `missing` or `invalid`.
    pub violation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<Value>,
}

impl Violation {
    fn missing(field: &str, message: String) -> Violation {
        Violation {
            message,
            field: field.to_string(),
            violation: "missing",
            received: None,
        }
    }

    fn invalid(field: &str, message: String, received: Option<&Value>) -> Violation {
        Violation {
            message,
            field: field.to_string(),
            violation: "invalid",
            received: received.cloned(),
        }
    }
}

pub async fn create_event(
    State(state): State<AppState>,
    key: RetracedKey,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<Value>)> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    key.require(Scope::Ingest)?;
    let sent = match serde_json::from_slice::<stele_core::sent::Json>(&body).map(|j| j.0) {
        Ok(Value::Object(event)) => event,
        Ok(_) => {
            return Err(RetracedError::bad_request(
                "The event must be a JSON object",
            ));
        }
        Err(e) => return Err(RetracedError::bad_request(format!("Invalid JSON: {e}"))),
    };
    let (event, group) = translate(&sent).map_err(|violations| {
        RetracedError::bad_request(
            violations
                .iter()
                .map(|v| v.message.as_str())
                .collect::<Vec<_>>()
                .join("\n--"),
        )
    })?;
    let (headers, mut ids) = record_all(&state, key, vec![(event, group)], false, &body).await?;
    let id = ids.remove(0);
    let hash = receipt_hash(&id, &sent);
    Ok((
        StatusCode::CREATED,
        headers,
        Json(json!({"id": id, "hash": hash})),
    ))
}

pub async fn create_events(
    State(state): State<AppState>,
    key: RetracedKey,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<Value>)> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    key.require(Scope::Ingest)?;
    let events = match serde_json::from_slice::<stele_core::sent::Json>(&body).map(|j| j.0) {
        Ok(Value::Object(mut request)) => match request.remove("events") {
            Some(Value::Array(events)) => events,
            _ => {
                return Err(RetracedError::bad_request(
                    "The body must be {\"events\": [...]}",
                ));
            }
        },
        Ok(_) => {
            return Err(RetracedError::bad_request(
                "The body must be {\"events\": [...]}",
            ));
        }
        Err(e) => return Err(RetracedError::bad_request(format!("Invalid JSON: {e}"))),
    };
    if events.len() > MAX_BULK_EVENTS {
        return Err(RetracedError::bad_request(format!(
            "A maximum of {MAX_BULK_EVENTS} events may be created at once, received {}",
            events.len()
        )));
    }
    let mut translated = Vec::with_capacity(events.len());
    let mut invalid = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let outcome = match event {
            Value::Object(event) => translate(event),
            _ => Err(vec![Violation::invalid(
                "event",
                "The event must be a JSON object".into(),
                None,
            )]),
        };
        match outcome {
            Ok(t) => translated.push(t),
            Err(violations) => invalid.push(json!({
                "message": format!(
                    "Invalid event input at index {index}:\n-- {}",
                    violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("\n-- ")
                ),
                "index": index,
                "violations": violations,
            })),
        }
    }
    if !invalid.is_empty() {
        let messages: Vec<&str> = invalid
            .iter()
            .filter_map(|i| i["message"].as_str())
            .collect();
        return Err(RetracedError::BadRequest {
            message: format!(
                "One or more invalid inputs, no events were logged:\n- {}",
                messages.join("\n- ")
            ),
            invalid: Some(invalid),
        });
    }
    let (headers, receipts) = record_all(&state, key, translated, true, &body).await?;
    let answer: Vec<Value> = receipts
        .iter()
        .zip(&events)
        .map(|(id, sent)| {
            let sent = sent.as_object().expect("checked to be objects");
            json!({"id": id, "hash": receipt_hash(id, sent)})
        })
        .collect();
    Ok((StatusCode::CREATED, headers, Json(Value::Array(answer))))
}

/// Records translated events (each with its group) through the native path; the id of each
/// event's entry (empty when its organization has recording turned off, which the
/// `Stele-Recording: disabled` header then says), in the order sent.
async fn record_all(
    state: &AppState,
    key: RetracedKey,
    events: Vec<(NewEvent, String)>,
    batch: bool,
    body: &[u8],
) -> Result<(HeaderMap, Vec<String>)> {
    let auth = key.ingest();
    let sent = events.len();
    let (events, groups): (Vec<NewEvent>, Vec<String>) = events.into_iter().unzip();
    let recorded = record::record(
        state,
        &auth,
        Checked {
            events,
            references: groups.into_iter().map(|g| Some(Cow::Owned(g))).collect(),
            errors: vec![],
            sent,
            batch,
        },
        // Retraced's clients send no idempotency key (and do not retry).
        record::Request::new(None, body),
    )
    .await?;
    let mut headers = HeaderMap::new();
    let ids = match recorded {
        Recorded::Disabled { .. } => {
            headers.insert(RECORDING_HEADER, RECORDING_DISABLED);
            vec![String::new(); sent]
        }
        Recorded::Stored { receipts, .. } => {
            if receipts.iter().any(|r| r.stored.is_none()) {
                headers.insert(RECORDING_HEADER, RECORDING_DISABLED);
            }
            receipts
                .into_iter()
                .map(|r| r.stored.map(|s| s.id).unwrap_or_default())
                .collect()
        }
    };
    Ok((headers, ids))
}

/// `GET …/viewertoken?group_id=&actor_id=&is_admin=` (`viewer` scope): a viewer token for the
/// group's audit log, read and export, to be opened within five minutes (Retraced's viewer
/// descriptors live as long). `team_id` is the older name of `group_id`.
pub async fn viewer_token(
    State(state): State<AppState>,
    key: RetracedKey,
    Query(query): Query<HashMap<String, String>>,
) -> Result<(StatusCode, Json<Value>)> {
    key.require(Scope::Viewer)?;
    let group = query
        .get("group_id")
        .or_else(|| query.get("team_id"))
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .ok_or_else(|| RetracedError::bad_request("Missing required field 'group_id'"))?;
    let actor = query
        .get("actor_id")
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| RetracedError::bad_request("Missing required field 'actor_id'"))?;
    let auth = key.ingest();
    let (by_actor, context) = auth.actor();
    let by = By::platform(by_actor, context);
    let store = state.store.as_ref();
    let org = state
        .directory
        .resolve_or_create(
            store,
            group,
            state.auto_create_organizations,
            by.clone(),
            state.clock.now(),
        )
        .await
        .map_err(org_error)?
        .ok_or_else(|| RetracedError::NotFound(format!("group not found: '{group}'")))?;
    let request = MintRequest {
        viewer: Viewer {
            id: actor.to_string(),
            name: None,
            email: None,
        },
        permissions: vec![Permission::Read, Permission::Export],
        filters: FixedFilters::default(),
        theme: Theme::default(),
        ttl_seconds: Some(VIEWER_TOKEN_SECONDS),
        session_seconds: None,
    };
    let (token, _) = viewer::mint(
        store,
        &state.viewer_tokens,
        &org,
        &auth.key.id,
        request,
        by,
        state.clock.now(),
    )
    .await
    .map_err(|e| match e {
        viewer::MintError::Invalid(p) => {
            RetracedError::bad_request(format!("Invalid value for '{}': {}", p.field, p.message))
        }
        viewer::MintError::Store(e) => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))))
}

/// The keys a Retraced event may have, and those of its objects (Retraced refuses others).
const EVENT_KEYS: &[&str] = &[
    "action",
    "crud",
    "group",
    "displayTitle",
    "created",
    "actor",
    "target",
    "source_ip",
    "description",
    "is_anonymous",
    "is_failure",
    "fields",
    "component",
    "version",
    "external_id",
    "metadata",
];
const GROUP_KEYS: &[&str] = &["id", "name"];
const ACTOR_KEYS: &[&str] = &["id", "name", "href", "fields"];
const TARGET_KEYS: &[&str] = &["id", "name", "href", "type", "fields"];

/// Checks a Retraced event as Retraced's server does and maps it onto Stele's model (the table
/// in the module docs). Returns the event and its group's id, or every broken rule, in
/// Retraced's words.
pub fn translate(
    sent: &Map<String, Value>,
) -> std::result::Result<(NewEvent, String), Vec<Violation>> {
    let mut v = Vec::new();
    for key in sent.keys() {
        if !EVENT_KEYS.contains(&key.as_str()) {
            v.push(Violation::invalid(
                key,
                format!("\"{key}\" is not allowed"),
                None,
            ));
        }
    }
    // lodash's isEmpty, as Retraced's checks use it: absent, null, "", {} and [] are empty
    // (and so is any number or boolean, which the type checks below name).
    let empty = |value: Option<&Value>| value.is_none_or(is_empty);
    for field in ["action", "crud"] {
        if empty(sent.get(field)) {
            v.push(Violation::missing(
                field,
                format!("Missing required field '{field}'"),
            ));
        }
    }
    let object = |field: &str, v: &mut Vec<Violation>| -> Option<Map<String, Value>> {
        match sent.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) if o.is_empty() => None,
            Some(Value::Object(o)) => Some(o.clone()),
            Some(other) => {
                v.push(Violation::invalid(
                    field,
                    format!("\"{field}\" must be an object"),
                    Some(other),
                ));
                None
            }
        }
    };
    let group = object("group", &mut v);
    let actor = object("actor", &mut v);
    let target = object("target", &mut v);
    for (field, value, keys) in [
        ("group", &group, GROUP_KEYS),
        ("actor", &actor, ACTOR_KEYS),
        ("target", &target, TARGET_KEYS),
    ] {
        let Some(value) = value else { continue };
        if empty(value.get("id")) {
            v.push(Violation::missing(
                &format!("{field}.id"),
                format!("Field '{field}.id' is required if '{field}' is present"),
            ));
        }
        for key in value.keys() {
            if !keys.contains(&key.as_str()) {
                v.push(Violation::invalid(
                    &format!("{field}.{key}"),
                    format!("\"{field}.{key}\" is not allowed"),
                    None,
                ));
            }
        }
    }
    let is_anonymous = sent.get("is_anonymous").is_some_and(is_truthy);
    if !is_anonymous && actor.is_none() {
        v.push(Violation::missing(
            "actor",
            "Event is not marked anonymous, and missing required field 'actor'".into(),
        ));
    }
    let crud = sent.get("crud").and_then(Value::as_str);
    let general_action = match crud {
        Some("c") => "create",
        Some("r") => "view",
        Some("u") => "update",
        Some("d") => "delete",
        _ => {
            let shown = sent.get("crud").map_or("undefined".to_string(), |c| {
                c.as_str().map_or(c.to_string(), str::to_string)
            });
            v.push(Violation::invalid(
                "crud",
                format!("Invalid value for 'crud' field: {shown}"),
                sent.get("crud"),
            ));
            ""
        }
    };
    if let Some(ip) = sent.get("source_ip").filter(|ip| !empty(Some(ip)))
        && ip.as_str().and_then(|s| s.parse::<IpAddr>().ok()).is_none()
    {
        v.push(Violation::invalid(
            "source_ip",
            format!(
                "Unable to parse 'source_ip' field as valid IPV4 or IPV6 address: {}",
                shown(ip)
            ),
            Some(ip),
        ));
    }
    // Strings where Retraced's schema has strings, booleans where it has booleans, and maps of
    // strings for the fields.
    for field in [
        "action",
        "crud",
        "created",
        "source_ip",
        "description",
        "displayTitle",
        "component",
        "version",
        "external_id",
    ] {
        if let Some(value) = sent.get(field).filter(|x| !x.is_null() && !x.is_string()) {
            v.push(Violation::invalid(
                field,
                format!("\"{field}\" must be a string"),
                Some(value),
            ));
        }
    }
    for field in ["is_anonymous", "is_failure"] {
        if let Some(value) = sent.get(field).filter(|x| !x.is_null() && !x.is_boolean()) {
            v.push(Violation::invalid(
                field,
                format!("\"{field}\" must be a boolean"),
                Some(value),
            ));
        }
    }
    for (object, field, keys) in [
        (&group, "group", GROUP_KEYS),
        (&actor, "actor", ACTOR_KEYS),
        (&target, "target", TARGET_KEYS),
    ] {
        let Some(object) = object else { continue };
        for key in keys.iter().filter(|k| **k != "fields") {
            if let Some(value) = object.get(*key).filter(|x| !x.is_null() && !x.is_string()) {
                v.push(Violation::invalid(
                    &format!("{field}.{key}"),
                    format!("\"{field}.{key}\" must be a string"),
                    Some(value),
                ));
            }
        }
    }
    let fields = string_map(sent.get("fields"), "fields", &mut v);
    let metadata = string_map(sent.get("metadata"), "metadata", &mut v);
    let actor_fields = string_map(
        actor.as_ref().and_then(|a| a.get("fields")),
        "actor.fields",
        &mut v,
    );
    let target_fields = string_map(
        target.as_ref().and_then(|t| t.get("fields")),
        "target.fields",
        &mut v,
    );
    let Some(group_id) = group
        .as_ref()
        .and_then(|g| g.get("id"))
        .and_then(Value::as_str)
    else {
        if group.is_none() {
            // Retraced keeps group-less events in the project; Stele records every event in an
            // organization, which the group names.
            v.push(Violation::missing(
                "group",
                "Missing required field 'group': Stele records each event in the organization \
                 its group names"
                    .into(),
            ));
        }
        return Err(v);
    };
    if !v.is_empty() {
        return Err(v);
    }

    // The native event, which the native checks then read.
    let text = |o: &Map<String, Value>, k: &str| o.get(k).filter(|x| !x.is_null()).cloned();
    let mut native = Map::new();
    native.insert("action".into(), json!(general_action));
    native.insert("detailed_action".into(), sent["action"].clone());
    if let Some(created) = sent.get("created").filter(|c| !empty(Some(c))) {
        native.insert("occurred_at".into(), created.clone());
    }
    if let Some(description) = sent.get("description").filter(|d| !d.is_null()) {
        native.insert("description".into(), description.clone());
    }
    if sent.get("is_failure").is_some_and(is_truthy) {
        native.insert("outcome".into(), json!("failure"));
    }
    let mut native_actor = Map::new();
    native_actor.insert("type".into(), json!("user"));
    if let Some(actor) = &actor {
        for key in ["id", "name", "href"] {
            if let Some(value) = text(actor, key) {
                native_actor.insert(key.into(), value);
            }
        }
        if !actor_fields.is_empty() {
            native_actor.insert(
                "metadata".into(),
                Value::Object(actor_fields.into_iter().collect()),
            );
        }
    }
    native.insert("actor".into(), Value::Object(native_actor));
    let mut origin = Metadata::new();
    origin.insert("protocol".into(), json!("retraced"));
    if let Some(crud) = crud {
        origin.insert("crud".into(), json!(crud));
    }
    if let Some(target) = &target {
        let mut entity = Map::new();
        match text(target, "type") {
            Some(kind) if !empty(Some(&kind)) => {
                entity.insert("type".into(), kind);
            }
            _ => {
                entity.insert("type".into(), json!("unknown"));
                origin.insert("target_type_absent".into(), json!(true));
            }
        }
        for key in ["id", "name", "href"] {
            if let Some(value) = text(target, key) {
                entity.insert(key.into(), value);
            }
        }
        if !target_fields.is_empty() {
            entity.insert(
                "metadata".into(),
                Value::Object(target_fields.into_iter().collect()),
            );
        }
        native.insert("entity".into(), Value::Object(entity));
    }
    if let Some(ip) = sent.get("source_ip").filter(|ip| !empty(Some(ip))) {
        native.insert("context".into(), json!({"ip": ip}));
    }
    if !fields.is_empty() {
        native.insert(
            "metadata".into(),
            Value::Object(fields.into_iter().collect()),
        );
    }

    if let Some(name) = group
        .as_ref()
        .and_then(|g| g.get("name"))
        .filter(|n| !empty(Some(n)))
    {
        origin.insert("group_name".into(), name.clone());
    }
    if is_anonymous {
        origin.insert("is_anonymous".into(), json!(true));
    }
    if !metadata.is_empty() {
        origin.insert(
            "metadata".into(),
            Value::Object(metadata.into_iter().collect()),
        );
    }
    for (key, stored) in [
        ("external_id", "external_id"),
        ("component", "component"),
        ("version", "version"),
        ("displayTitle", "display_title"),
    ] {
        if let Some(value) = sent.get(key).filter(|x| !empty(Some(x))) {
            origin.insert(stored.into(), value.clone());
        }
    }

    // Checked only: `record` redacts it by its organization's rules.
    let mut event = parse_event(
        &Value::Object(native),
        now_millis(),
        &RedactionRules::none(),
    )
    .map_err(|errors| errors.iter().map(retraced_violation).collect::<Vec<_>>())?;
    event.origin = origin;
    Ok((event, group_id.to_string()))
}

/// A value as Retraced's messages show it (strings without quotes).
fn shown(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// A map of strings (`fields`, `metadata`); anything else is a violation.
fn string_map(value: Option<&Value>, field: &str, v: &mut Vec<Violation>) -> Map<String, Value> {
    match value {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if !value.is_string() {
                    v.push(Violation::invalid(
                        &format!("{field}.{key}"),
                        format!("\"{field}.{key}\" must be a string"),
                        Some(value),
                    ));
                }
            }
            map.clone()
        }
        Some(other) => {
            v.push(Violation::invalid(
                field,
                format!("\"{field}\" must be an object"),
                Some(other),
            ));
            Map::new()
        }
    }
}

/// A native check's problem with a translated event, named as the Retraced field it came from.
fn retraced_violation(e: &FieldError) -> Violation {
    let field = retraced_field(&e.field);
    let message = if field == "created" {
        format!(
            "Unable to parse 'created' field as valid time: {}",
            e.message
        )
    } else {
        format!("Invalid value for '{field}' field: {}", e.message)
    };
    Violation::invalid(&field, message, None)
}

/// The Retraced name of a native field of a translated event.
fn retraced_field(native: &str) -> String {
    let (head, rest) = match native.find('.') {
        Some(i) => native.split_at(i),
        None => (native, ""),
    };
    match (head, rest) {
        ("detailed_action" | "action", _) => "action".into(),
        ("occurred_at", _) => "created".into(),
        ("context", ".ip") => "source_ip".into(),
        ("metadata", rest) => format!("fields{rest}"),
        ("actor", rest) if rest.starts_with(".metadata") => {
            format!("actor.fields{}", &rest[".metadata".len()..])
        }
        ("entity", rest) if rest.starts_with(".metadata") => {
            format!("target.fields{}", &rest[".metadata".len()..])
        }
        ("entity", rest) => format!("target{rest}"),
        _ => native.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn messages(v: Value) -> Vec<String> {
        translate(&event(v))
            .unwrap_err()
            .into_iter()
            .map(|v| v.message)
            .collect()
    }

    #[test]
    fn a_full_event_maps_onto_the_model_and_keeps_everything() {
        let sent = json!({"action":"document.update","group":{"id":"acme","name":"Acme Inc"},"crud":"u",
            "created":"2024-05-01T12:34:56.789Z",
            "actor":{"id":"user@acme.test","name":"Jo User","href":"https://acme.test/u/1","fields":{"dept":"ops"}},
            "target":{"id":"doc:42","name":"Q2 plan","href":"https://acme.test/d/42","type":"document","fields":{"size":"10"}},
            "source_ip":"203.0.113.7","description":"Updated the doc","is_failure":false,"is_anonymous":false,
            "fields":{"b;k":"v=1","a":"50%"},"component":"web","version":"abc123","external_id":"ext:1","metadata":{"trace":"abc"}});
        let (e, group) = translate(&event(sent)).unwrap();
        assert_eq!(group, "acme");
        assert_eq!(e.action, "update");
        assert_eq!(e.detailed_action.as_deref(), Some("document.update"));
        assert_eq!(e.description.as_deref(), Some("Updated the doc"));
        assert_eq!(e.actor.id.as_deref(), Some("user@acme.test"));
        assert_eq!(e.actor.href.as_deref(), Some("https://acme.test/u/1"));
        assert_eq!(e.actor.metadata["dept"], json!("ops"));
        let entity = e.entity.as_ref().unwrap();
        assert_eq!(
            (entity.kind.as_str(), entity.id.as_deref()),
            ("document", Some("doc:42"))
        );
        assert_eq!(entity.metadata["size"], json!("10"));
        assert_eq!(e.context.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(e.metadata["a"], json!("50%"));
        assert_eq!(
            Value::Object(e.origin.clone().into_iter().collect()),
            json!({"protocol": "retraced", "crud": "u", "group_name": "Acme Inc",
                   "metadata": {"trace": "abc"}, "external_id": "ext:1", "component": "web",
                   "version": "abc123"})
        );
    }

    #[test]
    fn retraced_rules_with_retraced_messages() {
        assert_eq!(
            messages(json!({"group": {"id": "g"}, "actor": {"id": "u"}})),
            [
                "Missing required field 'action'",
                "Missing required field 'crud'",
                "Invalid value for 'crud' field: undefined",
            ]
        );
        assert_eq!(
            messages(
                json!({"action": "a.b", "crud": "x", "group": {"id": "g"}, "actor": {"name": "n"}})
            ),
            [
                "Field 'actor.id' is required if 'actor' is present",
                "Invalid value for 'crud' field: x",
            ]
        );
        assert_eq!(
            messages(json!({"action": "a.b", "crud": "c", "group": {"id": "g"}})),
            ["Event is not marked anonymous, and missing required field 'actor'"]
        );
        assert!(
            translate(&event(
                json!({"action": "a.b", "crud": "c", "group": {"id": "g"},
            "is_anonymous": true})
            ))
            .is_ok()
        );
        assert_eq!(
            messages(
                json!({"action": "a.b", "crud": "c", "group": {"id": "g"}, "actor": {"id": "u"},
                "source_ip": "300.1.1.1"})
            ),
            ["Unable to parse 'source_ip' field as valid IPV4 or IPV6 address: 300.1.1.1"]
        );
        assert_eq!(
            messages(json!({"action": "a.b", "crud": "c", "group": {"id": "g"},
                "actor": {"id": "u", "phone": "1"}, "colour": "red"})),
            [
                "\"colour\" is not allowed",
                "\"actor.phone\" is not allowed"
            ]
        );
        assert_eq!(
            messages(
                json!({"action": "a.b", "crud": "c", "group": {"id": "g"}, "actor": {"id": "u"},
                "fields": {"n": 1}})
            ),
            ["\"fields.n\" must be a string"]
        );
        // The native checks, in Retraced's words and names.
        let created = messages(json!({"action": "a.b", "crud": "c", "group": {"id": "g"},
            "actor": {"id": "u"}, "created": "yesterday"}));
        assert_eq!(created.len(), 1, "{created:?}");
        assert!(
            created[0].starts_with("Unable to parse 'created' field as valid time: "),
            "{created:?}"
        );
        let action = messages(json!({"action": "a b", "crud": "c", "group": {"id": "g"},
            "actor": {"id": "u"}}));
        assert_eq!(action.len(), 1, "{action:?}");
        assert!(
            action[0].starts_with("Invalid value for 'action' field: "),
            "{action:?}"
        );
        assert_eq!(retraced_field("entity.metadata.size"), "target.fields.size");
        assert_eq!(retraced_field("actor.metadata.x"), "actor.fields.x");
        assert_eq!(retraced_field("occurred_at"), "created");
        assert_eq!(retraced_field("detailed_action"), "action");
        assert_eq!(retraced_field("context.ip"), "source_ip");
        // Stele records every event in an organization: the group is required.
        assert_eq!(
            messages(json!({"action": "a.b", "crud": "c", "actor": {"id": "u"}})).len(),
            1
        );
    }
}
