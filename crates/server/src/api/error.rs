//! The one error type every handler returns. The status mapping lives here and nowhere else;
//! internal causes are logged, never sent to the client.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use stele_core::FieldError;
use stele_core::filter::FilterError;
use stele_store::StoreError;

use stele_service::access::org_policy::AccessError;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum ApiError {
    /// The request could not be read: malformed JSON, a bad query parameter, a bad cursor.
    BadRequest {
        code: &'static str,
        message: String,
        details: Vec<Value>,
    },
    /// The request was read but its events break the rules; `details` names each one.
    Invalid {
        message: String,
        details: Vec<FieldError>,
    },
    Unauthorized(&'static str),
    Forbidden(String),
    /// The organization's IP allowlist does not include the client's address (`None`: unknown).
    IpNotAllowed(Option<std::net::IpAddr>),
    NotFound(&'static str),
    /// What a field of the request names does not exist (an organization): the field and why.
    NotFoundField {
        field: &'static str,
        message: String,
    },
    /// It existed, but is no longer available (an expired export link).
    Gone(&'static str),
    Conflict(String),
    PayloadTooLarge(String),
    /// Events of the request are larger than the per-event limit (`Config::max_event_bytes`):
    /// `details` names each one (its index in a batch) and its size.
    EventTooLarge {
        message: String,
        details: Vec<FieldError>,
    },
    /// The request's body did not arrive within the request timeout (`crate::app::serve`).
    RequestTimeout,
    Unavailable,
    /// An erasure or redaction is made and recorded, but its clean-up of the database's files
    /// waits for older transactions (`StoreError::CleanupPending`).
    CleanupPending(String),
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            details: vec![],
        }
    }

    pub fn field(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::BadRequest {
            code,
            message: format!("{field}: {message}"),
            details: vec![json!({"field": field, "message": message})],
        }
    }
}

impl ApiError {
    /// The JSON text of an error without details, for answers written outside axum
    /// (`crate::app::serve`).
    pub(crate) fn body_text(code: &str, message: &str) -> String {
        json!({"error": Body { code, message, details: json!([]) }}).to_string()
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the request body is larger than this server accepts".into())
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    }
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        ApiError::field("invalid_parameter", &e.field, e.message)
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::NotAllowed { ip } => ApiError::IpNotAllowed(ip),
            AccessError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found"),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(cause = %m, "storage unavailable");
                ApiError::Unavailable
            }
            StoreError::CleanupPending(m) => ApiError::CleanupPending(m),
            StoreError::Other(m) => ApiError::Internal(m),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    details: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, details) = match &self {
            ApiError::BadRequest {
                code,
                message,
                details,
            } => (
                StatusCode::BAD_REQUEST,
                *code,
                message.clone(),
                json!(details),
            ),
            ApiError::Invalid { message, details } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_event",
                message.clone(),
                json!(details),
            ),
            ApiError::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                m.to_string(),
                json!([]),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone(), json!([])),
            ApiError::IpNotAllowed(ip) => {
                let shown = ip.map_or("an unknown address".to_string(), |ip| ip.to_string());
                (
                    StatusCode::FORBIDDEN,
                    "ip_not_allowed",
                    format!(
                        "this organization's IP allowlist does not include {shown}, the address \
                         this request comes from"
                    ),
                    json!([{"ip": ip.map(|ip| ip.to_string())}]),
                )
            }
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.to_string(), json!([])),
            ApiError::NotFoundField { field, message } => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{field}: {message}"),
                json!([{"field": field, "message": message}]),
            ),
            ApiError::Gone(m) => (StatusCode::GONE, "gone", m.to_string(), json!([])),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), json!([])),
            ApiError::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                m.clone(),
                json!([]),
            ),
            ApiError::EventTooLarge { message, details } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "event_too_large",
                message.clone(),
                json!(details),
            ),
            ApiError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request's body did not arrive in time; the connection is closed".to_string(),
                json!([]),
            ),
            ApiError::CleanupPending(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "cleanup_pending",
                message.clone(),
                json!([]),
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                // Not "nothing was recorded": when the database connection breaks while a
                // commit is in flight, the outcome is unknown. A retry with the same
                // Idempotency-Key settles it either way.
                "storage is unavailable; retry later (with the same Idempotency-Key, a retry \
                 cannot record an event twice)"
                    .to_string(),
                json!([]),
            ),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_string(),
                    json!([]),
                )
            }
        };
        let body = json!({"error": Body { code, message: &message, details }});
        (status, Json(body)).into_response()
    }
}
