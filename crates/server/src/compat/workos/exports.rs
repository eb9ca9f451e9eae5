//! `POST /audit_logs/exports` and `GET /audit_logs/exports/{id}` (`export` scope): WorkOS's
//! audit log exports over Stele's export jobs (`stele_service::export::jobs`), which write the
//! CSV of `GET /v1/export` in the background and hand out short-lived download links.
//!
//! - The request's filters become the native list filters: `range_start`/`range_end` → `from`
//!   (inclusive) / `to` (exclusive); `actions` → `detailed_action` (exact: WorkOS's dotted
//!   actions are Stele's detailed actions); `actor_ids` → `actor` (id or email); `targets`
//!   (target types) → `entity_type` (the entity's or a related entity's); every actor type,
//!   System included. A store filter holds one value: a list of one is that filter, a longer
//!   list (and `actor_names`, or the deprecated `actors`, for which no store filter exists) is
//!   tested entry by entry as the export walks the others' matches ([`AnyOf`]), so nothing asked
//!   for is ignored and nothing more is exported.
//! - The export's id is `audit_log_export_<organization><job>` (both ids' hex): a GET needs no
//!   organization named, yet looks the job up only within the organization its id names, which
//!   the key must be allowed to act for. Any other id, or a job of another organization, is a 404.
//! - `url`, once the job is ready, is an absolute link to the job's download
//!   (`/v1/exports/{job}/download?token=…`): a fresh random token per GET (the database keeps its
//!   SHA-256), no API key, valid while the job's download window lasts (`--export-link-ttl`, 10
//!   minutes by default, WorkOS's own lifetime for its URL). After the window the file is
//!   removed and the export reads `error`: create a new one.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use stele_core::time::{Millis, format_rfc3339, now_millis};
use stele_store::{ExportJob, ExportJobState, Scope};

use super::auth::WorkosKey;
use super::error::{Requirement, Result, WorkosError, json_object};
use crate::api::error::ApiError;
use crate::app::state::AppState;
use std::sync::Arc;
use stele_core::Entry;
use stele_service::action_schemas::check_action;
use stele_service::export::{ExportRequest, Pick};

/// What every export id starts with.
pub const ID_PREFIX: &str = "audit_log_export_";

/// The fields of an export request.
const FIELDS: [&str; 8] = [
    "organization_id",
    "range_start",
    "range_end",
    "actions",
    "actors",
    "actor_names",
    "actor_ids",
    "targets",
];

/// `POST /audit_logs/exports` → `201` with the pending export.
pub async fn create(
    State(state): State<AppState>,
    key: WorkosKey,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    key.require(Scope::Export)?;
    let body = json_object(&body.map_err(ApiError::from)?)?;
    let request = read_request(&body)?;
    let auth = key
        .for_organization(&state, &request.organization, "organization_id")
        .await?;
    let params: Vec<(&str, &str)> = request
        .params
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let mut export = ExportRequest::from_params(params).map_err(|e| {
        let field = match e.field.as_str() {
            "from" => "range_start",
            "to" => "range_end",
            "detailed_action" => "actions",
            "actor" => "actor_ids",
            "entity_type" => "targets",
            other => other,
        };
        WorkosError::requirement(Requirement::invalid(field, e.message))
    })?;
    if !request.any_of.is_empty() {
        // What the export was asked for, in its file and its trail entry, beside the store's.
        for (field, values) in request.any_of.fields() {
            if !values.is_empty() {
                export
                    .filters
                    .insert(field.to_string(), Value::String(values.join(",")));
            }
        }
        let any_of = request.any_of;
        export.pick = Some(Pick(Arc::new(move |entry| any_of.keeps(entry))));
    }
    let org_id = auth.key.org_id.clone();
    let job = state.exports.start(auth.key, export).await?;
    Ok((
        StatusCode::CREATED,
        Json(export_json(&state, &org_id, &job, now_millis(), None)),
    ))
}

/// An export request: the organization it names, the native list parameters it means, and
/// the lists no store filter holds.
#[derive(Debug)]
struct Request {
    organization: String,
    params: Vec<(&'static str, String)>,
    any_of: AnyOf,
}

/// The lists of an export request that no store filter holds (more than one value, or a field
/// without a store filter): an entry is exported only if, for each list given, it matches one
/// of its values.
#[derive(Debug, Default, PartialEq)]
struct AnyOf {
    /// Detailed actions, exactly.
    actions: Vec<String>,
    /// Actor ids or emails.
    actor_ids: Vec<String>,
    /// Actor names, exactly.
    actor_names: Vec<String>,
    /// Types of the entity or of a related entity.
    targets: Vec<String>,
}

impl AnyOf {
    fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, values)| values.is_empty())
    }

    fn fields(&self) -> [(&'static str, &Vec<String>); 4] {
        [
            ("actions", &self.actions),
            ("actor_ids", &self.actor_ids),
            ("actor_names", &self.actor_names),
            ("targets", &self.targets),
        ]
    }

    fn keeps(&self, entry: &Entry) -> bool {
        let e = &entry.event;
        fn any<'a>(values: &[String], mut found: impl Iterator<Item = &'a str>) -> bool {
            values.is_empty() || found.any(|f| values.iter().any(|v| v == f))
        }
        any(&self.actions, e.detailed_action.as_deref().into_iter())
            && any(
                &self.actor_ids,
                [e.actor.id.as_deref(), e.actor.email.as_deref()]
                    .into_iter()
                    .flatten(),
            )
            && any(&self.actor_names, e.actor.name.as_deref().into_iter())
            && any(&self.targets, e.entities().map(|x| x.kind.as_str()))
    }
}

/// Reads an export request's body, naming the first field that is missing or cannot be honoured.
fn read_request(body: &Map<String, Value>) -> Result<Request> {
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(WorkosError::field(
            "invalid_request_body",
            unknown,
            format!(
                "is not a field of an export request ({})",
                FIELDS.join(", ")
            ),
        ));
    }
    let text = |field: &str| -> Result<String> {
        match body.get(field) {
            None | Some(Value::Null) => Err(WorkosError::requirement(Requirement::required(
                field,
                "is required",
            ))),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(_) => Err(WorkosError::requirement(Requirement::invalid(
                field,
                "must be a non-empty string",
            ))),
        }
    };
    let organization = text("organization_id")?;
    let mut params: Vec<(&'static str, String)> = vec![
        ("format", "csv".into()),
        // WorkOS exports every event; Stele's lists hide System actors unless asked.
        ("actor_type", "all".into()),
    ];
    for (field, param) in [("range_start", "from"), ("range_end", "to")] {
        let value = text(field)?;
        if stele_core::time::parse_rfc3339(&value).is_none() {
            return Err(WorkosError::requirement(Requirement::invalid(
                field,
                "must be an ISO 8601 timestamp with a time zone (2024-01-01T00:00:00.000Z)",
            )));
        }
        params.push((param, value));
    }
    let mut any_of = AnyOf {
        // `actors` is WorkOS's older name of `actor_names`.
        actor_names: [list(body, "actor_names")?, list(body, "actors")?].concat(),
        ..AnyOf::default()
    };
    for (field, param) in [
        ("actions", "detailed_action"),
        ("actor_ids", "actor"),
        ("targets", "entity_type"),
    ] {
        let values = list(body, field)?;
        if field == "actions" && values.iter().any(|a| check_action(a).is_err()) {
            return Err(WorkosError::requirement(Requirement::invalid(
                field,
                "must hold actions like user.signed_in (letters, digits, `.`, `_`, `-`)",
            )));
        }
        match values.as_slice() {
            [] => {}
            [one] => params.push((param, one.clone())),
            _ => {
                *match field {
                    "actions" => &mut any_of.actions,
                    "actor_ids" => &mut any_of.actor_ids,
                    _ => &mut any_of.targets,
                } = values;
            }
        }
    }
    Ok(Request {
        organization,
        params,
        any_of,
    })
}

/// An optional array of non-empty strings (absent or null: empty).
fn list(body: &Map<String, Value>, field: &str) -> Result<Vec<String>> {
    let invalid = || {
        WorkosError::requirement(Requirement::invalid(
            field,
            "must be an array of non-empty strings",
        ))
    };
    match body.get(field) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(invalid()),
            })
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// `GET /audit_logs/exports/{id}` → `200` with the export; once it is ready, with a fresh `url`.
pub async fn show(
    State(state): State<AppState>,
    key: WorkosKey,
    id: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    key.require(Scope::Export)?;
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let not_found = || WorkosError::not_found("Audit Log Export", &id);
    let (org_id, job_id) = split_id(&id).ok_or_else(not_found)?;
    // Whether the organization is unknown or not the key's to act for, the export is not found.
    let auth = match key.for_organization(&state, &org_id, "id").await {
        Ok(auth) => auth,
        Err(WorkosError::NotFound(_))
        | Err(WorkosError::Forbidden {
            code: "forbidden", ..
        }) => {
            return Err(not_found());
        }
        Err(e) => return Err(e),
    };
    let job = state
        .store
        .export_job(auth.key.org, &job_id)
        .await?
        .ok_or_else(not_found)?;
    let now = now_millis();
    let token = match job.state_at(now) {
        ExportJobState::Ready => Some(state.exports.mint_link(&job, now).await?),
        _ => None,
    };
    Ok(Json(export_json(
        &state,
        &auth.key.org_id,
        &job,
        now,
        token.as_deref(),
    )))
}

/// The export id of a job of the organization `org_id`: `audit_log_export_` and both ids' hex.
fn export_id(org_id: &str, job_id: &str) -> String {
    let hex = |id: &str| id.split_once('_').map_or(id, |(_, hex)| hex).to_string();
    format!("{ID_PREFIX}{}{}", hex(org_id), hex(job_id))
}

/// The organization id and job id an export id names, if it is one.
fn split_id(id: &str) -> Option<(String, String)> {
    let hex = id.strip_prefix(ID_PREFIX)?;
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex.len() != 64 || !lower_hex(hex) {
        return None;
    }
    let (org, job) = hex.split_at(32);
    Some((format!("org_{org}"), format!("exp_{job}")))
}

/// An export as WorkOS shows it. `url` only when ready (and a token was minted for it).
fn export_json(
    state: &AppState,
    org_id: &str,
    job: &ExportJob,
    now: Millis,
    token: Option<&str>,
) -> Value {
    let workos_state = match job.state_at(now) {
        ExportJobState::Pending => "pending",
        ExportJobState::Ready => "ready",
        // WorkOS has no `expired`: the file is gone, so the export can no longer be had.
        ExportJobState::Error | ExportJobState::Expired => "error",
    };
    let mut out = json!({
        "object": "audit_log_export",
        "id": export_id(org_id, &job.id),
        "state": workos_state,
        "created_at": format_rfc3339(job.created_at),
        "updated_at": format_rfc3339(job.finished_at.unwrap_or(job.created_at)),
    });
    if let (ExportJobState::Ready, Some(token)) = (job.state_at(now), token) {
        out["url"] = json!(format!(
            "{}/v1/exports/{}/download?token={token}",
            state.public_url, job.id
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<Request> {
        read_request(body.as_object().unwrap())
    }

    fn refused_field(body: Value) -> (StatusCode, String) {
        match read(body).unwrap_err() {
            WorkosError::Validation(r) => (StatusCode::UNPROCESSABLE_ENTITY, r[0].field.clone()),
            WorkosError::BadRequest { errors, .. } => (
                StatusCode::BAD_REQUEST,
                errors[0]["field"].as_str().unwrap().into(),
            ),
            other => panic!("{other:?}"),
        }
    }

    const RANGE: [(&str, &str); 2] = [
        ("range_start", "2024-01-01T00:00:00.000Z"),
        ("range_end", "2024-02-01T00:00:00.000Z"),
    ];

    fn body(extra: Value) -> Value {
        let mut body = json!({"organization_id": "org_1"});
        for (k, v) in RANGE {
            body[k] = json!(v);
        }
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn the_sdks_body_becomes_the_native_filters() {
        let r = read(body(
            json!({"actions": ["user.signed_in"], "actor_ids": ["user_1"],
            "targets": ["team"], "actor_names": []}),
        ))
        .unwrap();
        assert_eq!(r.organization, "org_1");
        let params: Vec<(&str, &str)> = r.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            params,
            [
                ("format", "csv"),
                ("actor_type", "all"),
                ("from", "2024-01-01T00:00:00.000Z"),
                ("to", "2024-02-01T00:00:00.000Z"),
                ("detailed_action", "user.signed_in"),
                ("actor", "user_1"),
                ("entity_type", "team"),
            ]
        );
    }

    #[test]
    fn lists_no_store_filter_holds_are_tested_entry_by_entry() {
        let r = read(body(
            json!({"actions": ["a.b", "c.d"], "actor_names": ["Jon"],
            "actors": ["Ann"], "targets": ["team"]}),
        ))
        .unwrap();
        assert_eq!(
            r.any_of,
            AnyOf {
                actions: vec!["a.b".into(), "c.d".into()],
                actor_names: vec!["Jon".into(), "Ann".into()],
                ..AnyOf::default()
            }
        );
        // A list of one is the store's filter.
        assert!(r.params.contains(&("entity_type", "team".into())));
        let entry = |action: &str, name: &str, related: &str| {
            let mut e = stele_core::NewEvent {
                detailed_action: Some(action.into()),
                ..plain_event()
            };
            e.actor.name = Some(name.into());
            e.related_entities = vec![stele_core::Entity::new(related, None, None)];
            Entry {
                id: "e".into(),
                seq: stele_core::Seq::new(1),
                recorded_at: 0,
                event: e,
            }
        };
        assert!(r.any_of.keeps(&entry("c.d", "Ann", "doc")));
        assert!(!r.any_of.keeps(&entry("x.y", "Ann", "doc")));
        assert!(!r.any_of.keeps(&entry("a.b", "Bob", "doc")));
        let types = AnyOf {
            targets: vec!["team".into(), "doc".into()],
            ..AnyOf::default()
        };
        // A related entity's type counts, as the entity-type filter's does.
        assert!(types.keeps(&entry("a.b", "Ann", "doc")));
        assert!(!types.keeps(&entry("a.b", "Ann", "file")));
    }

    /// An event with nothing set but what every event has.
    pub(super) fn plain_event() -> stele_core::NewEvent {
        stele_core::parse_event(
            &json!({"action": "update", "actor": {"type": "user"}}),
            0,
            &stele_core::redact::RedactionRules::default(),
        )
        .unwrap()
    }

    #[test]
    fn what_stele_cannot_honour_is_refused_naming_the_field() {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        assert_eq!(
            refused_field(json!({"range_start": "2024-01-01T00:00:00Z"})),
            (unprocessable, "organization_id".into())
        );
        assert_eq!(
            refused_field(json!({"organization_id": "o", "range_end": "2024-01-01T00:00:00Z"})),
            (unprocessable, "range_start".into())
        );
        assert_eq!(
            refused_field(body(json!({"range_end": "last week"}))),
            (unprocessable, "range_end".into())
        );

        assert_eq!(
            refused_field(body(json!({"actions": ["printJob.*"]}))),
            (unprocessable, "actions".into())
        );
        assert_eq!(
            refused_field(body(json!({"targets": "team"}))),
            (unprocessable, "targets".into())
        );
        assert_eq!(
            refused_field(body(json!({"actor_ids": [1]}))),
            (unprocessable, "actor_ids".into())
        );
        assert_eq!(
            refused_field(body(json!({"format": "csv"}))),
            (StatusCode::BAD_REQUEST, "format".into())
        );
    }

    #[test]
    fn export_ids_name_the_organization_and_the_job_and_nothing_else_parses() {
        let org = format!("org_{}", "a".repeat(32));
        let job = format!("exp_{}", "0123456789abcdef".repeat(2));
        let id = export_id(&org, &job);
        assert_eq!(id.len(), ID_PREFIX.len() + 64);
        assert_eq!(split_id(&id), Some((org, job)));
        for bad in [
            "",
            "audit_log_export_",
            "audit_log_export_01GBZK5MP7TD1YCFQHFR22180V",
            &format!("audit_log_export_{}", "A".repeat(64)),
            &format!("audit_log_export_{}", "a".repeat(65)),
            &format!("exp_{}", "a".repeat(64)),
        ] {
            assert_eq!(split_id(bad), None, "{bad}");
        }
    }
}
