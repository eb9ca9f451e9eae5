//! `POST /auditlog/publisher/v1/project/{projectId}/graphql`: Retraced's search for a publisher
//! (`@retracedhq/retraced`'s `query()`), with a platform key with the `read` scope
//! ([`super::auth`]).
//!
//! Retraced's publisher search reads the whole project, every group at once, and so does this
//! one (`stele_service::retraced::project`: each group's search merged in one order, up to 100
//! groups). Stele's own `group.id:<group>` term narrows it to one group's trail, the cheaper
//! search. Nothing is recorded: Retraced records the viewer's searches, not the publisher's.

use super::error::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use stele_service::access::viewer::FixedFilters;
use stele_service::retraced::query::take_group;
use stele_store::{Organization, Scope, StoreError};

use super::auth::RetracedKey;
use super::error::RetracedError;
use super::graphql::{self, SearchScope};
use crate::app::state::AppState;

/// The search: in the group the query's `group.id:` names, or in every group of the project.
pub async fn search(State(state): State<AppState>, key: RetracedKey, Body(body): Body) -> Response {
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
    // A group named: its trail alone. Otherwise the whole project, every group at once, as
    // Retraced searches (the client library's `query()` cannot name a group).
    let (org, project) = match group {
        Some(group) => match state.directory.resolve(state.store.as_ref(), &group).await {
            Ok(Some(org)) if !org.platform => (org, None),
            Ok(_) => {
                return graphql::errors(
                    StatusCode::BAD_REQUEST,
                    &format!("group.id: no group '{group}'"),
                );
            }
            Err(e) => return RetracedError::from(e).into_response(),
        },
        None => {
            let store = state.store.as_ref();
            match (state.directory.platform(store).await, groups(&state).await) {
                (Ok(platform), Ok(groups)) => (platform, Some(groups)),
                (Err(e), _) | (_, Err(e)) => return RetracedError::from(e).into_response(),
            }
        }
    };
    request["variables"]["query"] = Value::String(rest);
    let body = serde_json::to_vec(&request).unwrap_or_default();
    let scope = SearchScope {
        store: state.store.clone(),
        org,
        project,
        fixed: FixedFilters::default(),
        recorded_as: None,
        now: state.clock.now(),
    };
    graphql::execute(super::viewer::schema(), &body, scope).await
}

/// The project's groups: its organizations known by an external id (as Retraced's groups are
/// made), so the organization a first start makes for Stele's own use is none.
async fn groups(state: &AppState) -> Result<Vec<Organization>, StoreError> {
    Ok(state
        .store
        .list_orgs()
        .await?
        .into_iter()
        .filter(|org| !org.platform && org.external_id.is_some())
        .collect())
}
