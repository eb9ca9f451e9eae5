//! `POST /audit_logs/events` (`ingest` scope): one WorkOS event for one organization, recorded
//! through the same path as the native API's events (`crate::api::events::record`), answered
//! `200 {"success": true}` as WorkOS answers.
//!
//! The SDK sends an `Idempotency-Key` with every event (and the same one on each retry of it), so
//! the key is the native API's request key: kept at least 24 hours, a retry stores nothing twice.
//!
//! What maps to what (docs/platforms.md, "Moving from WorkOS"):
//!
//! | WorkOS | Stele |
//! |---|---|
//! | `organization_id` | the organization (an id `org_…` or an external id; a new external id creates one when the server allows it) |
//! | `event.action` (`user.signed_in`) | `detailed_action`, and `action` its general action (`login`, [`vocabulary::general_action`]) |
//! | `event.occurred_at` | `occurred_at` |
//! | `event.version` | `origin.version`, and the schema the event is checked against |
//! | `event.actor` `{id, type, name, metadata}` | `actor` `{id, type, name, metadata}`; a type that is not one of Stele's five maps onto one ([`vocabulary::actor_type`]) and is kept as `actor.original_type` |
//! | `event.targets[0]`, `targets[1..]` `{id, type, name, metadata}` | `entity`, and `related_entities` |
//! | `event.context.location` | `context.ip` when it is an IP address, else `context.location` |
//! | `event.context.user_agent` | `context.user_agent` |
//! | `event.metadata` | `metadata` |
//!
//! Every entry from this door has `origin.protocol = "workos"`.

use std::net::IpAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use stele_core::redact::RedactionRules;
use stele_core::time::now_millis;
use stele_core::{FieldError, parse_event};
use stele_store::Scope;

use super::error::{Requirement, Result, WorkosError, json_object};
use super::schemas;
use crate::api::auth::IngestKey;
use crate::api::error::ApiError;
use crate::api::events::record::{self, Checked, Recorded};
use crate::api::events::{RECORDING_DISABLED, RECORDING_HEADER};
use crate::app::state::AppState;
use crate::compat::vocabulary;

/// The longest `Idempotency-Key` kept (the native API's limit).
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The ingest key with WorkOS's answer to a bad or missing one.
pub struct WorkosIngestKey(IngestKey);

impl FromRequestParts<AppState> for WorkosIngestKey {
    type Rejection = WorkosError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        Ok(WorkosIngestKey(
            IngestKey::from_request_parts(parts, state).await?,
        ))
    }
}

pub async fn create(
    State(state): State<AppState>,
    WorkosIngestKey(auth): WorkosIngestKey,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<Value>)> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    auth.require(Scope::Ingest)?;
    let idempotency_key = idempotency_key(&headers)?;
    let mut request = json_object(&body)?;
    let organization = match request.remove("organization_id") {
        Some(Value::String(id)) if !id.trim().is_empty() => id,
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(WorkosError::requirement(Requirement::required(
                "organization_id",
                "organization_id is required",
            )));
        }
        Some(_) => {
            return Err(WorkosError::requirement(Requirement::invalid(
                "organization_id",
                "organization_id must be a string",
            )));
        }
    };
    let sent = match request.remove("event") {
        Some(Value::Object(event)) => event,
        None | Some(Value::Null) => {
            return Err(WorkosError::requirement(Requirement::required(
                "event",
                "event is required",
            )));
        }
        Some(_) => {
            return Err(WorkosError::requirement(Requirement::invalid(
                "event",
                "event must be an object",
            )));
        }
    };
    if let Some(key) = request.keys().next() {
        return Err(WorkosError::requirement(Requirement::invalid(
            key,
            "unknown field; the body holds organization_id and event",
        )));
    }

    let translated = translate(&sent)?;
    schemas::check_event(
        &state,
        &translated.action,
        translated.version,
        &Value::Object(sent),
    )
    .await?;
    // Checked only: `record` redacts it by its organization's rules.
    let mut event = parse_event(&translated.native, now_millis(), &RedactionRules::none())
        .map_err(|errors| {
            WorkosError::Validation(errors.iter().map(workos_requirement).collect())
        })?;
    event.actor.original_type = translated.original_actor_type;
    event.origin = translated.origin;

    // An organization's key records into its own organization only; a platform key names any.
    let references = if auth.key.platform {
        vec![Some(organization.as_str().into())]
    } else {
        own_organization(&state, &auth, &organization).await?;
        vec![]
    };
    let recorded = record::record(
        &state,
        &auth,
        Checked {
            events: vec![event],
            references,
            errors: vec![],
            sent: 1,
            batch: false,
        },
        record::Request::new(idempotency_key, &body),
    )
    .await
    .map_err(|e| match e {
        // The organization named is the request's `organization_id`, as WorkOS says it.
        crate::api::error::ApiError::Invalid { details, .. }
            if details.iter().any(|d| d.field == "organization") =>
        {
            WorkosError::not_found("Organization", &organization)
        }
        other => other.into(),
    })?;
    let mut response_headers = HeaderMap::new();
    if let Recorded::Disabled { .. } = recorded {
        // The SDK parses the body it gets: the answer stays WorkOS's, the header says it.
        response_headers.insert(RECORDING_HEADER, RECORDING_DISABLED);
    }
    Ok((
        StatusCode::OK,
        response_headers,
        Json(json!({"success": true})),
    ))
}

/// An organization key's `organization_id` must name its own organization; any other is not
/// found (whether it exists is not this key's to learn).
async fn own_organization(state: &AppState, auth: &IngestKey, reference: &str) -> Result<()> {
    if reference == auth.key.org_id {
        return Ok(());
    }
    match state
        .directory
        .resolve(state.store.as_ref(), reference)
        .await?
    {
        Some(org) if org.key == auth.key.org => Ok(()),
        _ => Err(WorkosError::not_found("Organization", reference)),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
        .map(|k| Some(k.to_string()))
        .ok_or_else(|| {
            WorkosError::field(
                "invalid_idempotency_key",
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )
        })
}

/// A WorkOS event as a native one, and what the native contract has no field for.
struct Translated {
    /// The event in the native API's JSON, for the native checks.
    native: Value,
    /// WorkOS's action (`user.signed_in`), for its schema.
    action: String,
    version: Option<u32>,
    original_actor_type: Option<String>,
    origin: stele_core::event::Metadata,
}

/// Reads a WorkOS event into the native contract ([the table above](self)). Its own checks are
/// WorkOS's required fields and shapes; the native checks then apply to what they map to.
fn translate(sent: &Map<String, Value>) -> Result<Translated> {
    let mut problems = Vec::new();
    for key in sent.keys() {
        if !matches!(
            key.as_str(),
            "action" | "version" | "occurred_at" | "actor" | "targets" | "context" | "metadata"
        ) {
            problems.push(Requirement::invalid(
                &format!("event.{key}"),
                "unknown field; a WorkOS event holds action, version, occurred_at, actor, \
                 targets, context and metadata",
            ));
        }
    }
    let action = match sent.get("action") {
        Some(Value::String(a)) if !a.is_empty() => a.clone(),
        None | Some(Value::Null) => {
            problems.push(Requirement::required("event.action", "is required"));
            String::new()
        }
        Some(_) => {
            problems.push(Requirement::invalid(
                "event.action",
                "must be a non-empty string",
            ));
            String::new()
        }
    };
    let version = match sent.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(v) if v >= 1 => Some(v),
            _ => {
                problems.push(Requirement::invalid(
                    "event.version",
                    "must be a positive integer",
                ));
                None
            }
        },
    };
    if matches!(sent.get("occurred_at"), None | Some(Value::Null)) {
        problems.push(Requirement::required("event.occurred_at", "is required"));
    }

    let mut native = Map::new();
    native.insert("action".into(), json!(vocabulary::general_action(&action)));
    native.insert("detailed_action".into(), json!(action));
    if let Some(at) = sent.get("occurred_at") {
        native.insert("occurred_at".into(), at.clone());
    }

    let mut original_actor_type = None;
    match sent.get("actor") {
        Some(Value::Object(actor)) => {
            let mut out = Map::new();
            for (key, value) in actor {
                match key.as_str() {
                    "type" => match value {
                        Value::String(t) if !t.trim().is_empty() => {
                            let kind = vocabulary::actor_type(t);
                            if kind.as_str() != t {
                                original_actor_type = Some(t.clone());
                            }
                            out.insert("type".into(), json!(kind.as_str()));
                        }
                        _ => problems.push(Requirement::invalid(
                            "event.actor.type",
                            "must be a non-empty string",
                        )),
                    },
                    "id" | "name" | "metadata" => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => problems.push(Requirement::invalid(
                        &format!("event.actor.{key}"),
                        "unknown field; an actor holds id, type, name and metadata",
                    )),
                }
            }
            for required in ["id", "type"] {
                if matches!(actor.get(required), None | Some(Value::Null)) {
                    problems.push(Requirement::required(
                        &format!("event.actor.{required}"),
                        "is required",
                    ));
                }
            }
            native.insert("actor".into(), Value::Object(out));
        }
        None | Some(Value::Null) => {
            problems.push(Requirement::required("event.actor", "is required"));
        }
        Some(_) => problems.push(Requirement::invalid("event.actor", "must be an object")),
    }

    match sent.get("targets") {
        Some(Value::Array(targets)) => {
            let mut entities = Vec::with_capacity(targets.len());
            for (i, target) in targets.iter().enumerate() {
                let field = format!("event.targets[{i}]");
                let Value::Object(target) = target else {
                    problems.push(Requirement::invalid(&field, "must be an object"));
                    continue;
                };
                let mut out = Map::new();
                for (key, value) in target {
                    match key.as_str() {
                        "id" | "type" | "name" | "metadata" => {
                            out.insert(key.clone(), value.clone());
                        }
                        _ => problems.push(Requirement::invalid(
                            &format!("{field}.{key}"),
                            "unknown field; a target holds id, type, name and metadata",
                        )),
                    }
                }
                for required in ["id", "type"] {
                    if matches!(target.get(required), None | Some(Value::Null)) {
                        problems.push(Requirement::required(
                            &format!("{field}.{required}"),
                            "is required",
                        ));
                    }
                }
                entities.push(Value::Object(out));
            }
            let mut entities = entities.into_iter();
            if let Some(first) = entities.next() {
                native.insert("entity".into(), first);
            }
            let related: Vec<Value> = entities.collect();
            if !related.is_empty() {
                native.insert("related_entities".into(), Value::Array(related));
            }
        }
        None | Some(Value::Null) => {
            problems.push(Requirement::required("event.targets", "is required"));
        }
        Some(_) => problems.push(Requirement::invalid("event.targets", "must be an array")),
    }

    match sent.get("context") {
        Some(Value::Object(context)) => {
            let mut out = Map::new();
            for (key, value) in context {
                match (key.as_str(), value) {
                    // WorkOS's location is the client's address as a rule; anything else (a
                    // place name) is kept as Stele's location.
                    ("location", Value::String(l)) => {
                        let field = if l.trim().parse::<IpAddr>().is_ok() {
                            "ip"
                        } else {
                            "location"
                        };
                        out.insert(field.into(), json!(l.trim()));
                    }
                    ("location", _) => problems.push(Requirement::invalid(
                        "event.context.location",
                        "must be a string",
                    )),
                    ("user_agent", _) => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => problems.push(Requirement::invalid(
                        &format!("event.context.{key}"),
                        "unknown field; a context holds location and user_agent",
                    )),
                }
            }
            if matches!(context.get("location"), None | Some(Value::Null)) {
                problems.push(Requirement::required(
                    "event.context.location",
                    "is required",
                ));
            }
            native.insert("context".into(), Value::Object(out));
        }
        None | Some(Value::Null) => {
            problems.push(Requirement::required("event.context", "is required"));
        }
        Some(_) => problems.push(Requirement::invalid("event.context", "must be an object")),
    }
    if let Some(metadata) = sent.get("metadata") {
        native.insert("metadata".into(), metadata.clone());
    }

    if !problems.is_empty() {
        return Err(WorkosError::Validation(problems));
    }
    let mut origin = stele_core::event::Metadata::new();
    origin.insert("protocol".into(), json!("workos"));
    if let Some(version) = version {
        origin.insert("version".into(), json!(version));
    }
    Ok(Translated {
        native: Value::Object(native),
        action,
        version,
        original_actor_type,
        origin,
    })
}

/// A native check's problem, named as the WorkOS field it came from.
fn workos_requirement(e: &FieldError) -> Requirement {
    Requirement::invalid(&workos_field(&e.field), e.message.clone())
}

/// The WorkOS name of a native field of a translated event.
fn workos_field(native: &str) -> String {
    let (head, rest) = match native.find(['.', '[']) {
        Some(i) => native.split_at(i),
        None => (native, ""),
    };
    match head {
        "action" | "detailed_action" => "event.action".to_string(),
        "entity" => format!("event.targets[0]{rest}"),
        "related_entities" => {
            // `related_entities[i]…` is `targets[i + 1]…`.
            let index = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(i, after)| i.parse::<usize>().ok().map(|i| (i, after)));
            match index {
                Some((i, after)) => format!("event.targets[{}]{after}", i + 1),
                None => "event.targets".to_string(),
            }
        }
        "context" if rest == ".ip" => "event.context.location".to_string(),
        _ => format!("event.{native}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_fields_are_named_as_workos_sent_them() {
        for (native, workos) in [
            ("detailed_action", "event.action"),
            ("occurred_at", "event.occurred_at"),
            ("actor.metadata.role", "event.actor.metadata.role"),
            ("entity.id", "event.targets[0].id"),
            ("related_entities[0].name", "event.targets[1].name"),
            ("related_entities[4]", "event.targets[5]"),
            ("related_entities", "event.targets"),
            ("context.ip", "event.context.location"),
            ("context.user_agent", "event.context.user_agent"),
            ("metadata.extra", "event.metadata.extra"),
        ] {
            assert_eq!(workos_field(native), workos, "{native}");
        }
    }

    #[test]
    fn a_workos_event_translates_into_the_native_contract() {
        let sent = json!({
            "action": "user.signed_in", "version": 2, "occurred_at": "2024-05-01T12:34:56.789Z",
            "actor": {"id": "user_1", "type": "Service Account", "name": "Jon",
                      "metadata": {"role": "admin"}},
            "targets": [{"id": "team_1", "type": "team", "name": "Team"},
                        {"id": "doc_1", "type": "doc", "metadata": {"size": 3}}],
            "context": {"location": "203.0.113.7", "user_agent": "Mozilla/5.0"},
            "metadata": {"extra": "x"},
        });
        let t = translate(sent.as_object().unwrap()).unwrap();
        assert_eq!(
            t.native,
            json!({
                "action": "login", "detailed_action": "user.signed_in",
                "occurred_at": "2024-05-01T12:34:56.789Z",
                "actor": {"id": "user_1", "type": "api", "name": "Jon",
                          "metadata": {"role": "admin"}},
                "entity": {"id": "team_1", "type": "team", "name": "Team"},
                "related_entities": [{"id": "doc_1", "type": "doc", "metadata": {"size": 3}}],
                "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
                "metadata": {"extra": "x"},
            })
        );
        assert_eq!(t.original_actor_type.as_deref(), Some("Service Account"));
        assert_eq!(t.version, Some(2));
        assert_eq!(
            Value::Object(t.origin.into_iter().collect()),
            json!({"protocol": "workos", "version": 2})
        );
    }

    #[test]
    fn every_missing_required_field_is_named() {
        let sent = json!({"actor": {"name": "x"}, "targets": [{"name": "t"}], "context": {},
                          "extra": 1});
        let Err(WorkosError::Validation(problems)) = translate(sent.as_object().unwrap()) else {
            panic!("refused")
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for field in [
            "event.extra",
            "event.action",
            "event.occurred_at",
            "event.actor.id",
            "event.actor.type",
            "event.targets[0].id",
            "event.targets[0].type",
            "event.context.location",
        ] {
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
    }
}
