//! The errors of the WorkOS door, in WorkOS's shapes (docs/platforms.md, "Moving from WorkOS"):
//! what `@workos-inc/node` turns into its own exceptions with the message kept. Stele's native
//! `{"error": {...}}` envelope is never sent here: the SDK reads its `error` key as an OAuth
//! error and shows `Error: [object Object]`.
//!
//! | status | body | the SDK throws |
//! |---|---|---|
//! | 400 | `{"message", "code", "errors": [...]}` | `BadRequestException` (keeps `code`, `errors`) |
//! | 401 | `{"message", "code"}` | `UnauthorizedException` |
//! | 403 | `{"message", "code"}` | `GenericServerException` |
//! | 404 | `{"message": "Audit Log Export not found: 'audit_log_export_…'.", "code"}` | `NotFoundException` |
//! | 409, 410, 413 | `{"message", "code"}` | `ConflictException` / `GenericServerException` |
//! | 422 | `{"message": "Validation failed.", "errors": [{"code", "field", "message"}]}` | `UnprocessableEntityException` |
//! | 429 | `{"message": "Too many requests.", "code": "rate_limit_exceeded"}`, `Retry-After` | `RateLimitExceededException` |
//! | 500 | `{"message", "code"}` | retried by the 8.x SDK (a JSON 500), then `GenericServerException` |
//!
//! The database being unavailable is a 500, not the native API's 503: the 8.x SDK retries a 500
//! with a JSON body and never a 503, and a retry is what an outage calls for.
//!
//! Every handler of the door returns [`Result`]; the server's own [`ApiError`] (from the shared
//! extractors and the `?` on store calls) converts into it, so handlers use `?` throughout.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stele_store::StoreError;

use crate::api::error::ApiError;

pub type Result<T, E = WorkosError> = std::result::Result<T, E>;

/// One unmet requirement of a 422: WorkOS's `{code, field}`, with a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// `required` for a missing field, `invalid` for one whose value is not accepted.
    pub code: &'static str,
    /// The field in WorkOS's dotted form: `organization_id`, `event.action`.
    pub field: String,
    pub message: String,
}

impl Requirement {
    pub fn required(field: &str, message: impl Into<String>) -> Requirement {
        Requirement {
            code: "required",
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Requirement {
        Requirement {
            code: "invalid",
            field: field.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub enum WorkosError {
    /// The body cannot be read, or breaks a rule beyond its required fields: `errors` says where
    /// (objects with `field` or, for an event against its schema, `instancePath`).
    BadRequest {
        message: String,
        code: &'static str,
        errors: Vec<Value>,
    },
    /// Required fields missing or invalid: WorkOS's `Validation failed.`
    Validation(Vec<Requirement>),
    Unauthorized(String),
    Forbidden {
        message: String,
        code: &'static str,
    },
    /// What the request names does not exist (or is not the key's to see): the whole message,
    /// in WorkOS's words (`Organization not found: 'org_1'.`).
    NotFound(String),
    Gone(String),
    Conflict(String),
    PayloadTooLarge(String),
    /// Too many requests; retry after this many seconds.
    RateLimited {
        retry_after_seconds: u64,
    },
    /// The database is unavailable: a 500, which the SDK retries.
    Unavailable,
    /// A failure of the server's own: logged, said without its cause.
    Internal(String),
}

impl WorkosError {
    /// A 400 naming one field of the body.
    pub fn field(code: &'static str, field: &str, message: impl Into<String>) -> WorkosError {
        let message = message.into();
        WorkosError::BadRequest {
            message: format!("{field}: {message}"),
            code,
            errors: vec![json!({"field": field, "message": message})],
        }
    }

    /// A 422 for one requirement.
    pub fn requirement(requirement: Requirement) -> WorkosError {
        WorkosError::Validation(vec![requirement])
    }

    /// A 404 in WorkOS's words: `<what> not found: '<id>'.`
    pub fn not_found(what: &str, id: &str) -> WorkosError {
        WorkosError::NotFound(format!("{what} not found: '{id}'."))
    }
}

impl From<ApiError> for WorkosError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest {
                code,
                message,
                details,
            } => WorkosError::BadRequest {
                message,
                code,
                errors: details,
            },
            ApiError::Invalid { details, .. } => WorkosError::Validation(
                details
                    .into_iter()
                    .map(|d| Requirement::invalid(&d.field, d.message))
                    .collect(),
            ),
            ApiError::Unauthorized(m) => WorkosError::Unauthorized(m.to_string()),
            ApiError::Forbidden(message) => WorkosError::Forbidden {
                message,
                code: "forbidden",
            },
            ApiError::IpNotAllowed(ip) => WorkosError::Forbidden {
                message: format!(
                    "this organization's IP allowlist does not include {}, the address this \
                     request comes from",
                    ip.map_or("an unknown address".to_string(), |ip| ip.to_string())
                ),
                code: "ip_not_allowed",
            },
            ApiError::NotFound(m) => WorkosError::NotFound(m.to_string()),
            ApiError::NotFoundField { field, message } => {
                WorkosError::NotFound(format!("{field}: {message}"))
            }
            ApiError::Gone(m) => WorkosError::Gone(m.to_string()),
            ApiError::Conflict(m) => WorkosError::Conflict(m),
            ApiError::PayloadTooLarge(m) => WorkosError::PayloadTooLarge(m),
            // The message names each event too large (its index in a batch) and the limit.
            ApiError::EventTooLarge { message, .. } => WorkosError::PayloadTooLarge(message),
            // Written by the accept loop itself, never through a door's handler.
            ApiError::RequestTimeout => WorkosError::BadRequest {
                message: "the request's body did not arrive in time".to_string(),
                code: "request_timeout",
                errors: vec![],
            },
            // Erasure and redaction are native endpoints only; an outage to this door.
            ApiError::Unavailable | ApiError::CleanupPending(_) => WorkosError::Unavailable,
            ApiError::Internal(cause) => WorkosError::Internal(cause),
        }
    }
}

impl From<StoreError> for WorkosError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WorkosError {
    fn into_response(self) -> Response {
        let plain = |status: StatusCode, code: &str, message: String| {
            (status, json!({"message": message, "code": code}))
        };
        let (status, body) = match self {
            WorkosError::BadRequest {
                message,
                code,
                errors,
            } => (
                StatusCode::BAD_REQUEST,
                json!({"message": message, "code": code, "errors": errors}),
            ),
            WorkosError::Validation(requirements) => {
                let errors: Vec<Value> = requirements
                    .iter()
                    .map(|r| json!({"code": r.code, "field": r.field, "message": r.message}))
                    .collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"message": "Validation failed.", "errors": errors}),
                )
            }
            WorkosError::Unauthorized(m) => plain(StatusCode::UNAUTHORIZED, "unauthorized", m),
            WorkosError::Forbidden { message, code } => plain(StatusCode::FORBIDDEN, code, message),
            WorkosError::NotFound(m) => plain(StatusCode::NOT_FOUND, "not_found", m),
            WorkosError::Gone(m) => plain(StatusCode::GONE, "gone", m),
            WorkosError::Conflict(m) => plain(StatusCode::CONFLICT, "conflict", m),
            WorkosError::PayloadTooLarge(m) => {
                plain(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m)
            }
            WorkosError::RateLimited {
                retry_after_seconds,
            } => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"message": "Too many requests.", "code": "rate_limit_exceeded"})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
                return response;
            }
            WorkosError::Unavailable => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "database_unavailable",
                // Not "nothing was done": when the connection breaks during a commit, the outcome
                // is unknown; the SDK's retry (with the same Idempotency-Key on events) settles it.
                "Storage is unavailable; retry the request.".to_string(),
            ),
            WorkosError::Internal(cause) => {
                tracing::error!(%cause, "internal error on the WorkOS door");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal error.".to_string(),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// The body of a request as a JSON object, read whatever the `Content-Type` says (the SDK sends
/// `application/json`; curl users often do not). An empty body is `{}`. A key repeated in any
/// object is refused, as the native API refuses it (an audit event must not be ambiguous).
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<stele_core::sent::Json>(body).map(|j| j.0) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(WorkosError::BadRequest {
            message: "The request body must be a JSON object.".into(),
            code: "invalid_request_body",
            errors: vec![],
        }),
        Err(e) => Err(WorkosError::BadRequest {
            message: format!("The request body is not valid JSON: {e}"),
            code: "invalid_request_body",
            errors: vec![],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(e: WorkosError) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = e.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_error_is_a_workos_shape_and_never_the_native_envelope() {
        let cases = [
            WorkosError::field("invalid_request_body", "range_start", "must be a date"),
            WorkosError::requirement(Requirement::required("organization_id", "is required")),
            ApiError::Unauthorized("unknown or revoked API key").into(),
            ApiError::Forbidden("no".into()).into(),
            ApiError::IpNotAllowed(None).into(),
            WorkosError::not_found("Organization", "org_1"),
            ApiError::Gone("over").into(),
            ApiError::Conflict("taken".into()).into(),
            ApiError::PayloadTooLarge("big".into()).into(),
            WorkosError::RateLimited {
                retry_after_seconds: 7,
            },
            StoreError::Unavailable("connection refused".into()).into(),
            ApiError::Internal("disk on fire".into()).into(),
        ];
        for e in cases {
            let (status, _, body) = parts(e).await;
            assert!(body.get("error").is_none(), "{status}: {body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{status}: {body}"
            );
        }
    }

    #[tokio::test]
    async fn the_statuses_and_bodies_are_what_the_sdk_maps() {
        let (status, _, body) = parts(WorkosError::field(
            "invalid_request_body",
            "targets",
            "must be an array",
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_request_body");
        assert_eq!(body["errors"][0]["field"], "targets");

        let (status, _, body) = parts(WorkosError::requirement(Requirement::required(
            "organization_id",
            "is required",
        )))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["message"], "Validation failed.");
        assert_eq!(
            body["errors"][0],
            json!({"code": "required", "field": "organization_id", "message": "is required"})
        );

        let (status, _, body) = parts(WorkosError::not_found("Organization", "org_1")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], "Organization not found: 'org_1'.");

        let (status, headers, body) = parts(WorkosError::RateLimited {
            retry_after_seconds: 7,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "7");
        assert_eq!(body["code"], "rate_limit_exceeded");

        // An outage is a JSON 500 (retried by the 8.x SDK), without the driver's words.
        let (status, _, body) =
            parts(StoreError::Unavailable("connection refused".into()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["code"], "database_unavailable");
        assert!(!body.to_string().contains("refused"), "{body}");

        let (status, _, body) = parts(ApiError::Internal("disk on fire".into()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("fire"), "{body}");
    }

    #[test]
    fn a_body_is_a_json_object_or_a_400() {
        assert_eq!(json_object(b"").unwrap(), Map::new());
        assert_eq!(json_object(br#"{"a":1}"#).unwrap()["a"], 1);
        for bad in [&b"[1]"[..], b"{", b"\"x\""] {
            match json_object(bad) {
                Err(WorkosError::BadRequest { code, .. }) => {
                    assert_eq!(code, "invalid_request_body")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
