//! `/v1/events`: record (`create`), search (`list`) and inspect one entry (`show`).
//!
//! `create` is an ingest endpoint: the IP allowlist does not apply to it, and while the
//! organization has recording turned off it answers 202 with `"recorded": false` and stores
//! nothing. A platform key's events may each name their organization, so one request may record
//! into many organizations, still all or nothing ([`organizations`]). `show` records who read
//! the entry (`view`, channel `pii-read`).

mod organizations;
pub mod record;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use stele_core::redact::RedactionRules;
use stele_core::sent::{List, SentBody, SentEvent, Shaped};
use stele_core::time::now_millis;
use stele_core::{FieldError, check_event};
use stele_store::Scope;

use super::{PageBody, Params, page_request, params};
use crate::api::auth::{IngestKey, Reader};
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;
use axum::http::{HeaderName, HeaderValue};
use record::{Checked, Recorded};
use stele_service::trail::activity;

/// The response header by which an ingest endpoint says that recording is off
/// (`Stele-Recording: disabled`). Compatible endpoints (WorkOS, Retraced: not built yet), whose
/// success bodies their SDKs parse, are to say it this way only.
pub const RECORDING_HEADER: HeaderName = HeaderName::from_static("stele-recording");
pub const RECORDING_DISABLED: HeaderValue = HeaderValue::from_static("disabled");

/// The most events one request may carry (the contract's batch limit, NDJSON included).
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// How many correlated entries one entry shows.
const MAX_CORRELATED: usize = 100;

#[utoipa::path(
    post, path = "/v1/events", tag = "events", operation_id = "createEvents",
    summary = "Record events",
    description = "One event, a batch of up to 1000, or NDJSON. All or nothing: if any event is invalid nothing is stored and the 422 names each problem. A 201 comes only after the events are committed, chained and synced to disk.",
    request_body(
        description = "One event, a batch of up to 1000 (`events`), or NDJSON (one event a line)",
        content(
            (schemas::EventRequest = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key replays the first receipts and writes nothing"),
    ),
    responses(
        (status = 201, description = "Committed and synced to disk", body = schemas::Receipts),
        (status = 202, description = "Recording is off for the organization: checked, not stored", body = schemas::Receipts),
        (status = 409, description = "The Idempotency-Key was used with another body", body = schemas::Error),
        (status = 413, description = "The body or an event is too large", body = schemas::Error),
        (status = 422, description = "Events break the rules: details name each by index and field; nothing was recorded", body = schemas::Error),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    auth: IngestKey,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<Value>)> {
    auth.require(Scope::Ingest)?;
    let body = body?;
    let idempotency_key = idempotency_key(&headers)?;
    // Read straight into typed fields that borrow from the body; checked below, each once.
    let (values, batch) = if is_ndjson(&headers) {
        (read_ndjson(&body)?, true)
    } else {
        read_json(&body)?
    };
    if values.is_empty() {
        return Err(ApiError::field("invalid_body", "events", "holds no event"));
    }
    if values.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::field(
            "too_many_events",
            "events",
            format!(
                "holds {} events; the limit is {MAX_EVENTS_PER_REQUEST} per request",
                values.len()
            ),
        ));
    }

    let now = now_millis();
    // Checked only: each event is redacted by its organization's rules once `record` knows
    // which organization that is.
    let rules = RedactionRules::none();
    let count = values.len();
    let index = |i: usize| batch.then_some(i);
    let mut events = Vec::with_capacity(count);
    // Per event, the organization it names (`None`: the request's own); platform keys only.
    let mut references = Vec::with_capacity(count);
    let mut errors: Vec<FieldError> = Vec::new();
    for (i, mut value) in values.into_iter().enumerate() {
        // A platform key's `organization` is taken out before the event is checked: it says
        // where the entry goes, not what it is. An organization key's stays for `check_event`
        // to refuse, among the event's other problems.
        if auth.key.platform {
            let named = organizations::take(&mut value);
            match organizations::reference(named, auth.acts_for_tenant) {
                Ok(reference) => references.push(reference),
                Err(e) => {
                    references.push(None);
                    errors.push(FieldError {
                        index: index(i),
                        ..e
                    });
                }
            }
        }
        match check_event(value, now, &rules) {
            Ok(event) => events.push(event),
            Err(field_errors) => errors.extend(field_errors.into_iter().map(|mut e| {
                e.index = index(i);
                e
            })),
        }
    }
    let recorded = record::record(
        &state,
        &auth,
        Checked {
            events,
            references,
            errors,
            sent: count,
            batch,
        },
        record::Request::new(idempotency_key, &body),
    )
    .await?;
    let (replayed, receipts) = match recorded {
        Recorded::Disabled { several } => return Ok(not_recorded(several)),
        Recorded::Stored { replayed, receipts } => (replayed, receipts),
    };
    let mut response_headers = HeaderMap::new();
    if replayed {
        response_headers.insert(
            "idempotent-replayed",
            "true".parse().expect("static header"),
        );
    }
    let events: Vec<Value> = if auth.key.platform {
        // Each receipt names its organization; an event whose organization has recording
        // turned off was not stored, and says so.
        receipts
            .into_iter()
            .map(|r| match r.stored {
                Some(stored) => {
                    json!({"id": stored.id, "seq": stored.seq, "organization_id": r.organization_id})
                }
                None => json!({"organization_id": r.organization_id, "recorded": false}),
            })
            .collect()
    } else {
        // An organization key's answer is as it always was: `{id, seq}` per event.
        receipts
            .into_iter()
            .filter_map(|r| r.stored)
            .map(|stored| json!(stored))
            .collect()
    };
    Ok((
        StatusCode::CREATED,
        response_headers,
        Json(json!({ "events": events })),
    ))
}

/// The answer while the organization (every organization the events are for) has recording
/// turned off: accepted (202) but not stored, said in the body and in the
/// `Stele-Recording: disabled` header.
fn not_recorded(several: bool) -> (StatusCode, HeaderMap, Json<Value>) {
    let mut headers = HeaderMap::new();
    headers.insert(RECORDING_HEADER, RECORDING_DISABLED);
    let message = if several {
        "recording is disabled for every organization the events are for: the events were \
         accepted but not stored (GET /v1/settings shows `enabled`)"
    } else {
        "recording is disabled for this organization: the events were accepted but not stored \
         (GET /v1/settings shows `enabled`)"
    };
    (
        StatusCode::ACCEPTED,
        headers,
        Json(json!({
            "events": [],
            "recorded": false,
            "reason": "recording_disabled",
            "message": message,
        })),
    )
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
        .ok_or_else(|| {
            ApiError::field(
                "invalid_header",
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_string()))
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.trim().to_ascii_lowercase();
            ct.starts_with("application/x-ndjson") || ct.starts_with("application/ndjson")
        })
}

/// One event object, or `{"events": [...]}`. Returns the events and whether it was a batch.
fn read_json(body: &[u8]) -> Result<(Vec<Shaped<SentEvent<'_>>>, bool)> {
    let sent = SentBody::from_json(body).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    match sent {
        SentBody::Batch {
            events: List::Items(events),
            alone: true,
        } => Ok((events, true)),
        SentBody::Batch {
            events: List::Items(_),
            alone: false,
        } => Err(ApiError::field(
            "invalid_body",
            "events",
            "a batch object holds only `events`",
        )),
        SentBody::Batch { .. } => Err(ApiError::field(
            "invalid_body",
            "events",
            "must be an array of events",
        )),
        SentBody::One(event) => Ok((vec![Shaped::Object(*event)], false)),
        SentBody::NotObject => Err(ApiError::field(
            "invalid_body",
            "body",
            "must be an event object or {\"events\": [...]}",
        )),
    }
}

fn read_ndjson(body: &[u8]) -> Result<Vec<Shaped<SentEvent<'_>>>> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match SentEvent::from_json(line) {
            Ok(v) => values.push(v),
            Err(e) => errors.push(json!({"line": i + 1, "message": e.to_string()})),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(ApiError::BadRequest {
            code: "malformed_json",
            message: format!(
                "{} NDJSON lines are not valid JSON; nothing was recorded",
                errors.len()
            ),
            details: errors,
        })
    }
}

#[utoipa::path(
    get, path = "/v1/events", tag = "events", operation_id = "listEvents",
    summary = "Search the trail",
    description = "A page of the organization's entries, newest first, with every filter combined. System actors are left out unless `actor_type` asks for them. Walk pages with `next_cursor`.",
    responses(
        (status = 200, description = "A page of entries, newest first", body = schemas::Page),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    reader: Reader,
    query: Params,
) -> Result<Json<PageBody>> {
    reader.require(Scope::Read)?;
    let request = page_request(&reader.params(params(query)?))?;
    let page = state.store.list(reader.org(), &request).await?;
    Ok(Json(PageBody::from(page)))
}

#[utoipa::path(
    get, path = "/v1/events/{id}", tag = "events", operation_id = "getEvent",
    summary = "Read one entry",
    description = "The entry and the entries sharing its correlation id. Reading an entry is a read of personal data: it is recorded (action `view`, channel `pii-read`) before the answer is sent.",
    responses(
        (status = 200, description = "The entry (the read is recorded, channel pii-read)", body = schemas::EntryWithCorrelated),
        (status = 404, description = "No such entry in the organization", body = schemas::Error),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    reader: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    reader.require(Scope::Read)?;
    let org = reader.org();
    let entry = state
        .store
        .get(org, &id)
        .await?
        .filter(|entry| reader.admits(entry))
        .ok_or(ApiError::NotFound(
            "no entry with this id in your organization",
        ))?;
    let correlated = match entry.event.context.correlation_id.as_deref() {
        Some(cid) => state
            .store
            .correlated(org, cid, MAX_CORRELATED + 1)
            .await?
            .into_iter()
            .filter(|e| e.id != entry.id && reader.admits(e))
            .take(MAX_CORRELATED)
            .map(|e| e.to_json())
            .collect(),
        None => vec![],
    };
    // Reading an entry's details is reading personal data: recorded before the answer goes out,
    // and no answer if it cannot be.
    let (actor, context) = reader.actor();
    let viewed = activity::entry_viewed(
        actor,
        context,
        &entry,
        activity::VIEWED_VIA_API,
        state.clock.now(),
    );
    stele_service::trail::record(state.store.as_ref(), org, viewed).await?;
    let redactions =
        stele_service::erasure::redactions_of(state.store.as_ref(), org, &entry.id).await?;
    let mut body = entry.to_json();
    body["correlated"] = Value::Array(correlated);
    if !redactions.is_empty() {
        // Which fields were redacted after the fact, when and why (their records say by whom).
        body["redactions"] = serde_json::to_value(redactions).expect("JSON into memory");
    }
    Ok(Json(body))
}
