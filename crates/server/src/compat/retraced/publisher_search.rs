//! `POST /auditlog/publisher/v1/project/{projectId}/graphql`: Retraced's search for a publisher
//! (`@retracedhq/retraced`'s `query()`), with a platform key with the `read` scope
//! ([`super::auth`]).
//!
//! Retraced's publisher search reads the whole project, every group at once. Stele's trail is
//! one per organization, and a search reads one: the query names its group with Stele's
//! `group.id:<group>` term (the group's id, as events name it), and a search without one is
//! refused with a GraphQL error that says so. Nothing is recorded: Retraced records the
//! viewer's searches, not the publisher's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use stele_service::access::viewer::FixedFilters;
use stele_service::retraced::query::take_group;
use stele_store::Scope;

use super::auth::RetracedKey;
use super::error::RetracedError;
use super::graphql::{self, SearchScope};
use crate::app::state::AppState;

/// The search, in the organization the query's `group.id:` names.
pub async fn search(State(state): State<AppState>, key: RetracedKey, body: Bytes) -> Response {
    if let Err(e) = key.require(Scope::Read) {
        return e.into_response();
    }
    // The group is in the search text, the `query` variable (where the SDK puts it) or inline.
    let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
        return graphql::errors(StatusCode::BAD_REQUEST, "the body is not a JSON object");
    };
    let Some(text) = request
        .pointer("/variables/query")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return graphql::errors(
            StatusCode::BAD_REQUEST,
            "Stele reads the search text from the `query` variable (as the Retraced client sends it)",
        );
    };
    let (group, rest) = take_group(&text);
    let Some(group) = group else {
        return graphql::errors(
            StatusCode::BAD_REQUEST,
            "group.id: Stele searches one group's trail at a time; add group.id:<group> to the search",
        );
    };
    let org = match state.directory.resolve(state.store.as_ref(), &group).await {
        Ok(Some(org)) if !org.platform => org,
        Ok(_) => {
            return graphql::errors(
                StatusCode::BAD_REQUEST,
                &format!("group.id: no group '{group}'"),
            );
        }
        Err(e) => return RetracedError::from(e).into_response(),
    };
    request["variables"]["query"] = Value::String(rest);
    let body = serde_json::to_vec(&request).unwrap_or_default();
    let scope = SearchScope {
        store: state.store.clone(),
        org,
        fixed: FixedFilters::default(),
        recorded_as: None,
        now: state.clock.now(),
    };
    graphql::execute(super::viewer::schema(), &body, scope).await
}
