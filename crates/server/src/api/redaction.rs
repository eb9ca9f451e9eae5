//! `POST /v1/redaction/test` (admin scope): what an event would be stored as, and where
//! redaction would replace a value, without storing anything.
//!
//! ```json
//! {"event": {"action": "update", "actor": {...}, "metadata": {"token": "..."}},
//!  "rules": {"name_words": ["pin"], "detect_values": false}}
//! ```
//! `rules` is optional: left out (or `null`), the organization's current rules apply, as the
//! ingest applies them. The event is read and checked exactly as `POST /v1/events` reads one
//! event (the same reader and `check_event`, through `stele_service::redaction::preview`), so an
//! invalid one gets the same 400 or 422 naming the field. The answer:
//!
//! ```json
//! {"event": {...the entry as it would be stored, without id, seq, recorded_at...},
//!  "redacted": ["metadata.token"]}
//! ```

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use stele_core::sent::SentEvent;
use stele_core::time::now_millis;
use stele_service::redaction::preview;
use stele_store::Scope;

use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::api::events::record::invalid;
use crate::api::openapi::schemas;
use crate::api::settings::read_rules;
use crate::app::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
    #[serde(default)]
    rules: Option<Value>,
}

#[utoipa::path(
    post, path = "/v1/redaction/test", tag = "settings", operation_id = "testRedaction",
    summary = "Preview redaction",
    description = "What the organization's redaction rules (or the rules sent) would do to an event. Nothing is stored. Needs the `admin` scope.",
    request_body = schemas::RedactionTestRequest,
    responses(
        (status = 200, description = "What the rules would redact; nothing is stored", body = schemas::RedactionPreview),
        (status = 422, description = "The event or the rules break the rules", body = schemas::Error),
    ),
)]
pub async fn test(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    auth.require(Scope::Admin)?;
    let body: TestBody = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request(
                "invalid_body",
                format!("the body must be {{\"event\": {{...}}, \"rules\": {{...}}}}: {e}"),
            )
        } else {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
    })?;
    // The event is read as `POST /v1/events` reads it (a key sent twice is refused the same way).
    let event = SentEvent::from_json(body.event.get().as_bytes()).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    let rules = match body.rules {
        None | Some(Value::Null) => state
            .policies
            .get(auth.key.org)
            .await?
            .settings
            .redaction
            .clone(),
        Some(v) => read_rules("rules", &v)?,
    };
    let preview =
        preview(event, now_millis(), &rules).map_err(|errors| invalid(errors, false, 1))?;
    Ok(Json(json!({
        "event": preview.event,
        "redacted": preview.redacted,
    })))
}
