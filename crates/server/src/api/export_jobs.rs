//! `/v1/exports`: export jobs (export scope). `create` starts one, `show` reports it and, once it
//! is ready, hands out a fresh download link; `download` serves the file to whoever holds a link
//! (no API key, like a presigned URL), from an address the organization's IP allowlist
//! includes. The jobs themselves run in [`stele_service::export::jobs`].

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use stele_core::time::{Millis, format_rfc3339, now_millis};
use stele_core::{Actor, ActorType, Context};
use stele_store::{ExportJob, ExportJobState, Scope};
use tokio::io::AsyncReadExt;

use super::{Params, params};
use crate::api::auth::{Authenticated, ClientIp};
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::download;
use crate::app::state::AppState;
use stele_core::params::FILTER_PARAMETERS;
use stele_service::access::org_policy::Attempt;
use stele_service::export::jobs::token_hash;
use stele_service::export::{ExportRequest, Format};

/// Bytes read from the file per chunk of the download.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// `POST /v1/exports`: `{"format": "csv"|"json"|"ndjson", "filters": {…}}`, both optional (CSV of
/// everything `GET /v1/events` lists by default). Answers `202` with the pending job.
#[utoipa::path(
    post, path = "/v1/exports", tag = "export", operation_id = "createExportJob",
    summary = "Start an export job",
    description = "Exports in the background to a file; poll the job for its download link. Needs the `export` scope.",
    request_body = schemas::ExportJobRequest,
    responses(
        (status = 202, description = "The job, queued; poll it", body = schemas::ExportJob),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<Value>)> {
    auth.require(Scope::Export)?;
    let body = body?;
    let request = export_request(&body)?;
    let job = state.exports.start(auth.key, request).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/v1/exports/{}", job.id))
            .map_err(|e| ApiError::Internal(format!("location header: {e}")))?,
    );
    Ok((
        StatusCode::ACCEPTED,
        headers,
        Json(job_json(&job, now_millis(), None)),
    ))
}

/// Reads an export job's body into the request `GET /v1/export` would build from its query: the
/// filters are its query parameters (same names, values as strings), parsed by the same code.
/// Unlike the query, the body refuses names it does not know, so a typo never widens an export.
fn export_request(body: &[u8]) -> Result<ExportRequest> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}"))
        })?
    };
    let Value::Object(fields) = value else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object: {\"format\": …, \"filters\": {…}}",
        ));
    };
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in &fields {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            ("format", Value::String(format)) => params.push(("format".into(), format.clone())),
            ("format", _) => {
                return Err(ApiError::field(
                    "invalid_parameter",
                    "format",
                    "must be `csv`, `json` or `ndjson`",
                ));
            }
            ("filters", Value::Object(filters)) => {
                for (filter, value) in filters {
                    let field = format!("filters.{filter}");
                    if !FILTER_PARAMETERS.contains(&filter.as_str()) {
                        return Err(ApiError::field(
                            "invalid_parameter",
                            &field,
                            format!(
                                "is not a filter; filters are {}",
                                FILTER_PARAMETERS.join(", ")
                            ),
                        ));
                    }
                    let text = match value {
                        Value::Null => continue,
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => {
                            return Err(ApiError::field(
                                "invalid_parameter",
                                &field,
                                "must be a string, as in the query of GET /v1/events",
                            ));
                        }
                    };
                    params.push((filter.clone(), text));
                }
            }
            ("filters", _) => {
                return Err(ApiError::field(
                    "invalid_parameter",
                    "filters",
                    "must be an object of GET /v1/events filters",
                ));
            }
            (other, _) => {
                return Err(ApiError::field(
                    "invalid_body",
                    other,
                    "is not a field of an export request (`format`, `filters`)",
                ));
            }
        }
    }
    ExportRequest::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| {
        let field = if e.field == "format" {
            e.field
        } else {
            format!("filters.{}", e.field)
        };
        ApiError::field("invalid_parameter", &field, e.message)
    })
}

/// `GET /v1/exports/{id}`: the organization's job; while it is ready, with a new download link.
#[utoipa::path(
    get, path = "/v1/exports/{id}", tag = "export", operation_id = "getExportJob",
    summary = "Poll an export job",
    description = "The job's state; once ready, with a download link (a new token each time, valid for a limited window).",
    responses(
        (status = 200, description = "The job", body = schemas::ExportJob),
        (status = 404, description = "No such job in the organization", body = schemas::Error),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    auth.require(Scope::Export)?;
    let job = state
        .store
        .export_job(auth.key.org, &id)
        .await?
        .ok_or(ApiError::NotFound("no such export"))?;
    let now = now_millis();
    let token = match job.state_at(now) {
        ExportJobState::Ready => Some(state.exports.mint_link(&job, now).await?),
        _ => None,
    };
    Ok(Json(job_json(&job, now, token.as_deref())))
}

/// A job as the API shows it. Every key is always there, `null` when it does not apply yet.
fn job_json(job: &ExportJob, now: Millis, token: Option<&str>) -> Value {
    json!({
        "id": job.id,
        "state": job.state_at(now).as_str(),
        "format": job.format,
        "filters": serde_json::from_str::<Value>(&job.filters).unwrap_or(Value::Null),
        "created_at": format_rfc3339(job.created_at),
        "finished_at": job.finished_at.map(format_rfc3339),
        "entries": job.entries,
        "bytes": job.bytes,
        "url": token.map(|t| format!("/v1/exports/{}/download?token={t}", job.id)),
        "url_expires_at": job.expires_at.map(format_rfc3339),
        "error": job.error,
    })
}

/// `GET /v1/exports/{id}/download?token=…`: the file, streamed from disk. An unknown token is a
/// 404 (whether or not the job exists); a link of an expired job is a 410, and its file is removed
/// if the sweep has not done so yet.
#[utoipa::path(
    get, path = "/v1/exports/{id}/download", tag = "export", security(()), operation_id = "downloadExportJob",
    summary = "Download an export",
    description = "The job's file. The link's token is the credential: no API key. An unknown token is a 404; an expired link a 410.",
    responses(
        (status = 200, description = "The file (the link's token is the credential)", content( (String = "text/csv"), (Vec<schemas::Entry> = "application/json"), (String = "application/x-ndjson"))),
        (status = 404, description = "No such link", body = schemas::Error),
        (status = 410, description = "The download window has ended", body = schemas::Error),
    ),
)]
pub async fn download(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    method: Method,
    Path(id): Path<String>,
    query: Params,
) -> Result<Response> {
    let params = params(query)?;
    let token = params
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let job = match token {
        "" => None,
        token => {
            state
                .store
                .export_job_by_link(&id, token_hash(token))
                .await?
        }
    }
    .ok_or(ApiError::NotFound("no such export link"))?;
    // The link stands in for a key; the organization's allowlist applies to it the same.
    let link = Actor {
        kind: ActorType::Api,
        id: None,
        name: Some(format!("download link of export {}", job.id)),
        email: None,
        href: None,
        metadata: Default::default(),
        original_type: None,
    };
    let context = Context {
        ip: client_ip.map(|ip| ip.to_string()),
        source: Some("api".into()),
        ..Context::default()
    };
    let path = format!("/v1/exports/{}/download", job.id);
    state
        .policies
        .admit(
            job.org,
            client_ip,
            Attempt {
                actor: link,
                context,
                method: method.as_str(),
                path: &path,
            },
        )
        .await?;
    match job.state_at(now_millis()) {
        ExportJobState::Ready => {}
        ExportJobState::Expired => {
            state.exports.expire(&job).await;
            return Err(ApiError::Gone(
                "this export's download window has ended and its file was removed; create a new \
                 export",
            ));
        }
        ExportJobState::Pending | ExportJobState::Error => {
            return Err(ApiError::NotFound("no such export link"));
        }
    }
    let format = Format::parse(&job.format)
        .ok_or_else(|| ApiError::Internal(format!("export job format `{}`", job.format)))?;
    let file = match tokio::fs::File::open(state.exports.path(&job)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::NotFound(
                "this export's file is not on this server: download it through the server that \
                 made it (docs/scaling.md)",
            ));
        }
        Err(e) => return Err(ApiError::Internal(format!("opening an export file: {e}"))),
    };
    let length = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(format!("reading an export file: {e}")))?
        .len();

    // Read chunk by chunk as the connection takes them: memory stays flat whatever the size.
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; DOWNLOAD_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            // The body ends with the error: a broken transfer, never a file that looks complete.
            Err(e) => Some((Err(e), None)),
        }
    });
    download::file_response(
        format,
        job.created_at,
        Some(length),
        Body::from_stream(chunks),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        match export_request(body.as_bytes()).unwrap_err() {
            ApiError::BadRequest { details, .. } => details[0]["field"].as_str().unwrap().into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_body_reads_like_the_query_and_names_bad_fields() {
        let r = export_request(
            br#"{"format": "json", "filters": {"action": "update", "entity_id": 42, "q": null}}"#,
        )
        .unwrap();
        assert_eq!(r.format, Format::Json);
        assert_eq!(r.filters["action"], "update");
        assert_eq!(r.filters["entity_id"], "42");
        assert!(!r.filters.contains_key("q"));
        let empty = export_request(b"").unwrap();
        assert_eq!(empty.format, Format::Csv);

        assert_eq!(field_of(r#"{"format": "xml"}"#), "format");
        assert_eq!(field_of(r#"{"format": 1}"#), "format");
        assert_eq!(
            field_of(r#"{"filters": {"from": "yesterday"}}"#),
            "filters.from"
        );
        assert_eq!(field_of(r#"{"filters": {"acton": "x"}}"#), "filters.acton");
        assert_eq!(field_of(r#"{"filters": {"limit": "5"}}"#), "filters.limit");
        assert_eq!(
            field_of(r#"{"filters": {"actor": ["a"]}}"#),
            "filters.actor"
        );
        assert_eq!(field_of(r#"{"filters": "action=update"}"#), "filters");
        assert_eq!(field_of(r#"{"fromat": "csv"}"#), "fromat");
    }
}
