//! `/v1/streams`: log streams (admin scope, or a platform key naming the organization in
//! `Stele-Organization`). Each delivers the organization's trail to a receiver of its own: a
//! webhook signed per Standard Webhooks, a syslog server or the operator's NATS
//! (docs/streams.md). A platform key without `Stele-Organization` manages the platform's own
//! streams, which are platform-wide: every organization's trail.
//!
//! ```json
//! {"name": "Splunk", "transport": {"type": "webhook", "url": "https://siem.example.com/stele"},
//!  "filter": {"channels": ["security"]}, "from_seq": 1}
//! ```
//! The answer to a webhook stream's create (and to a secret rotation) carries its secret
//! (`whsec_…`), shown then only. The rules, the recorded changes and the deliveries are
//! `stele_service::streams`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use stele_store::Scope;

use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;
use stele_service::streams::{
    self, DEFAULT_ROTATION_OVERLAP, MAX_ROTATION_OVERLAP, StreamError, StreamFields,
};
use stele_service::trail::By;

/// Who changes a stream: the key, for the organization (and the platform, for a platform key).
fn admin(auth: &Authenticated) -> Result<By> {
    auth.require(Scope::Admin)?;
    let (actor, context) = auth.actor();
    Ok(if auth.key.platform {
        By::platform(actor, context)
    } else {
        By::new(actor, context)
    })
}

fn stream_error(e: StreamError) -> ApiError {
    match e {
        StreamError::Invalid(problem) => {
            ApiError::field("invalid_stream", &problem.field, problem.message)
        }
        StreamError::NotFound => ApiError::NotFound("no such stream"),
        StreamError::Store(e) => e.into(),
    }
}

/// A JSON object body (empty means `{}`), read whatever the Content-Type says.
fn object(body: std::result::Result<Bytes, BytesRejection>) -> Result<Map<String, Value>> {
    let body = body?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Refuses what is left of a body once its known fields were taken out, naming the first.
fn nothing_else(rest: &Map<String, Value>, what: &str) -> Result<()> {
    match rest.keys().next() {
        Some(other) => Err(ApiError::field(
            "invalid_body",
            other,
            format!("is not a field of {what}"),
        )),
        None => Ok(()),
    }
}

fn fields(body: std::result::Result<Bytes, BytesRejection>) -> Result<StreamFields> {
    StreamFields::from_object(object(body)?)
        .map_err(|p| ApiError::field("invalid_stream", &p.field, p.message))
}

#[utoipa::path(
    get, path = "/v1/streams", tag = "streams", operation_id = "listStreams",
    summary = "List log streams",
    description = "The organization's streams with their health: state, lag, last error, last delivery. Needs the `admin` scope.",
    responses(
        (status = 200, description = "The streams, oldest first", body = schemas::StreamList),
    ),
)]
pub async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Value>> {
    admin(&auth)?;
    let views = streams::list(state.store.as_ref(), auth.key.org, state.clock.now())
        .await
        .map_err(stream_error)?;
    let data: Vec<Value> = views.iter().map(|v| v.to_json()).collect();
    Ok(Json(json!({ "data": data })))
}

#[utoipa::path(
    post, path = "/v1/streams", tag = "streams", operation_id = "createStream",
    summary = "Create a log stream",
    description = "Starts delivering the organization's entries after the newest one, or from `from_seq` (a back-fill). A platform key without `Stele-Organization` makes a platform-wide stream: every organization's entries, each organization's in `seq` order, after each one's newest entry or (`from_seq: 1`) from each one's first. The answer holds the webhook secret, shown this once. Needs the `admin` scope.",
    request_body = schemas::StreamRequest,
    responses(
        (status = 201, description = "The stream, with its secret", body = schemas::StreamWithSecret),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    let by = admin(&auth)?;
    let fields = fields(body)?;
    let created = streams::create(
        state.store.as_ref(),
        &state.stream_secrets,
        state.stream_guard,
        auth.key.org,
        fields,
        &by,
        state.clock.now(),
    )
    .await
    .map_err(stream_error)?;
    let mut body = created.view.to_json();
    if let Some(secret) = created.secret {
        body["secret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get, path = "/v1/streams/{id}", tag = "streams", operation_id = "getStream",
    summary = "Show a log stream",
    description = "Its configuration and health: state (`active`, `failing`, `paused`), lag in entries and seconds, last error, last delivery. Needs the `admin` scope.",
    responses(
        (status = 200, description = "The stream", body = schemas::Stream),
        (status = 404, description = "No such stream", body = schemas::Error),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    admin(&auth)?;
    let view = streams::show(state.store.as_ref(), auth.key.org, &id, state.clock.now())
        .await
        .map_err(stream_error)?;
    Ok(Json(view.to_json()))
}

#[utoipa::path(
    patch, path = "/v1/streams/{id}", tag = "streams", operation_id = "updateStream",
    summary = "Change a log stream",
    description = "Changes the fields sent, keeping the others; `from_seq` delivers again from that entry on. Needs the `admin` scope.",
    request_body = schemas::StreamRequest,
    responses(
        (status = 200, description = "The stream as it is now", body = schemas::Stream),
        (status = 404, description = "No such stream", body = schemas::Error),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let by = admin(&auth)?;
    let fields = fields(body)?;
    let view = streams::edit(
        state.store.as_ref(),
        &state.stream_secrets,
        state.stream_guard,
        auth.key.org,
        &id,
        fields,
        &by,
        state.clock.now(),
    )
    .await
    .map_err(stream_error)?;
    Ok(Json(view.to_json()))
}

#[utoipa::path(
    delete, path = "/v1/streams/{id}", tag = "streams", operation_id = "deleteStream",
    summary = "Delete a log stream",
    description = "Its deliveries stop; what it delivered stays delivered. Needs the `admin` scope.",
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such stream", body = schemas::Error),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let by = admin(&auth)?;
    streams::delete(
        state.store.as_ref(),
        auth.key.org,
        &id,
        &by,
        state.clock.now(),
    )
    .await
    .map_err(stream_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/v1/streams/{id}/pause", tag = "streams", operation_id = "pauseStream",
    summary = "Pause a log stream",
    description = "Delivery stops at the cursor until the stream is resumed; `{\"reason\": …}` is optional. Needs the `admin` scope.",
    request_body(content = Option<schemas::PauseRequest>),
    responses(
        (status = 200, description = "The stream, paused", body = schemas::Stream),
        (status = 404, description = "No such stream", body = schemas::Error),
    ),
)]
pub async fn pause(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let by = admin(&auth)?;
    let mut body = object(body)?;
    let reason = match body.remove("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(reason)) => Some(reason),
        Some(_) => {
            return Err(ApiError::field(
                "invalid_body",
                "reason",
                "must be a string",
            ));
        }
    };
    nothing_else(&body, "a pause (`reason`)")?;
    let view = streams::pause(
        state.store.as_ref(),
        auth.key.org,
        &id,
        reason,
        &by,
        state.clock.now(),
    )
    .await
    .map_err(stream_error)?;
    Ok(Json(view.to_json()))
}

#[utoipa::path(
    post, path = "/v1/streams/{id}/resume", tag = "streams", operation_id = "resumeStream",
    summary = "Resume a log stream",
    description = "Delivery goes on from the cursor at once (a failing stream's back-off is cleared). Needs the `admin` scope.",
    responses(
        (status = 200, description = "The stream, active", body = schemas::Stream),
        (status = 404, description = "No such stream", body = schemas::Error),
    ),
)]
pub async fn resume(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let by = admin(&auth)?;
    let view = streams::resume(
        state.store.as_ref(),
        auth.key.org,
        &id,
        &by,
        state.clock.now(),
    )
    .await
    .map_err(stream_error)?;
    Ok(Json(view.to_json()))
}

#[utoipa::path(
    post, path = "/v1/streams/{id}/rotate-secret", tag = "streams", operation_id = "rotateStreamSecret",
    summary = "Rotate a log stream's secret",
    description = "A new secret signs from now; the previous one signs beside it for `overlap_seconds` (default a day, at most a week), so the receiver can switch without losing a delivery. The answer holds the new secret, shown this once. Needs the `admin` scope.",
    request_body(content = Option<schemas::RotateSecretRequest>),
    responses(
        (status = 200, description = "The stream, with its new secret", body = schemas::StreamWithSecret),
        (status = 404, description = "No such stream", body = schemas::Error),
    ),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let by = admin(&auth)?;
    let mut body = object(body)?;
    let overlap = match body.remove("overlap_seconds") {
        None | Some(Value::Null) => DEFAULT_ROTATION_OVERLAP,
        Some(value) => value
            .as_u64()
            .filter(|s| *s <= MAX_ROTATION_OVERLAP.as_secs())
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| {
                ApiError::field(
                    "invalid_body",
                    "overlap_seconds",
                    format!(
                        "must be a number of seconds from 0 to {}",
                        MAX_ROTATION_OVERLAP.as_secs()
                    ),
                )
            })?,
    };
    nothing_else(&body, "a rotation (`overlap_seconds`)")?;
    let rotated = streams::rotate_secret(
        state.store.as_ref(),
        &state.stream_secrets,
        auth.key.org,
        &id,
        overlap,
        &by,
        state.clock.now(),
    )
    .await
    .map_err(stream_error)?;
    let mut body = rotated.view.to_json();
    if let Some(secret) = rotated.secret {
        body["secret"] = json!(secret);
    }
    Ok(Json(body))
}
