//! The errors of the Retraced door, in Retraced's shape: `{"status", "type": "Error", "error"}`
//! (and, for a refused bulk request, `invalid`: each bad event's index and violations), with an
//! `X-Retraced-RequestId` header, as Retraced's server answers. Its client library reads only
//! the status (`Unexpected HTTP response: 400 Bad Request`); people and other clients read the
//! message. Stele's native `{"error": {...}}` envelope is never sent here. (The request id header
//! is the router's, on every answer: [`super::REQUEST_ID_HEADER`].)

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stele_store::StoreError;

use crate::api::error::ApiError;

pub type Result<T, E = RetracedError> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum RetracedError {
    /// Bad input: the message (Retraced joins several with `\n--`) and, for a bulk request, one
    /// object per bad event (`{message, index, violations}`).
    BadRequest {
        message: String,
        invalid: Option<Vec<Value>>,
    },
    /// An unknown or revoked key, or one that is not this project's: Retraced's bare
    /// `Unauthorized`.
    Unauthorized,
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    PayloadTooLarge(String),
    /// The database is unavailable.
    Unavailable,
    /// A failure of the server's own: logged, said without its cause.
    Internal(String),
}

impl RetracedError {
    pub fn bad_request(message: impl Into<String>) -> RetracedError {
        RetracedError::BadRequest {
            message: message.into(),
            invalid: None,
        }
    }
}

impl From<ApiError> for RetracedError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest { message, .. } => RetracedError::bad_request(message),
            ApiError::Invalid { message, details } => RetracedError::bad_request(
                std::iter::once(message)
                    .chain(
                        details
                            .iter()
                            .map(|d| format!("{}: {}", d.field, d.message)),
                    )
                    .collect::<Vec<_>>()
                    .join("\n--"),
            ),
            ApiError::Unauthorized(_) => RetracedError::Unauthorized,
            ApiError::Forbidden(m) => RetracedError::Forbidden(m),
            ApiError::IpNotAllowed(_) => {
                RetracedError::Forbidden("this address is outside the IP allowlist".into())
            }
            ApiError::NotFound(m) => RetracedError::NotFound(m.to_string()),
            ApiError::NotFoundField { field, message } => {
                RetracedError::NotFound(format!("{field}: {message}"))
            }
            ApiError::Gone(m) => RetracedError::NotFound(m.to_string()),
            ApiError::Conflict(m) => RetracedError::Conflict(m),
            ApiError::PayloadTooLarge(m) => RetracedError::PayloadTooLarge(m),
            // The message names each event too large (its index in a batch) and the limit.
            ApiError::EventTooLarge { message, .. } => RetracedError::PayloadTooLarge(message),
            // Written by the accept loop itself, never through a door's handler.
            ApiError::RequestTimeout => {
                RetracedError::bad_request("the request's body did not arrive in time".to_string())
            }
            // Erasure and redaction are native endpoints only; an outage to this door.
            ApiError::Unavailable | ApiError::CleanupPending(_) => RetracedError::Unavailable,
            ApiError::Internal(cause) => RetracedError::Internal(cause),
        }
    }
}

impl From<StoreError> for RetracedError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for RetracedError {
    fn into_response(self) -> Response {
        let (status, message, invalid) = match self {
            RetracedError::BadRequest { message, invalid } => {
                (StatusCode::BAD_REQUEST, message, invalid)
            }
            RetracedError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "Unauthorized".to_string(), None)
            }
            RetracedError::Forbidden(m) => (StatusCode::FORBIDDEN, m, None),
            RetracedError::NotFound(m) => (StatusCode::NOT_FOUND, m, None),
            RetracedError::Conflict(m) => (StatusCode::CONFLICT, m, None),
            RetracedError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m, None),
            RetracedError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage is unavailable; nothing was recorded. Retry the request.".to_string(),
                None,
            ),
            RetracedError::Internal(cause) => {
                tracing::error!(%cause, "internal error on the Retraced door");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error".to_string(),
                    None,
                )
            }
        };
        let mut body = json!({"status": status.as_u16(), "type": "Error", "error": message});
        if let Some(invalid) = invalid {
            body["invalid"] = Value::Array(invalid);
        }
        (status, Json(body)).into_response()
    }
}

/// A request body, or, when it is over the server's limit (or cannot be read), this door's error
/// in its own JSON: the 413 a Retraced client can read, never axum's plain text.
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = RetracedError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|e| RetracedError::from(ApiError::from(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(e: RetracedError) -> (StatusCode, Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_are_retraced_shapes() {
        let (status, body) = parts(RetracedError::Unauthorized).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"status": 401, "type": "Error", "error": "Unauthorized"})
        );
        let (status, body) = parts(RetracedError::BadRequest {
            message: "One or more invalid inputs".into(),
            invalid: Some(vec![json!({"index": 1})]),
        })
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["invalid"], json!([{"index": 1}]));
        assert!(body.get("error").unwrap().is_string());
        let (status, body) = parts(ApiError::Unavailable.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], 503);
    }
}
