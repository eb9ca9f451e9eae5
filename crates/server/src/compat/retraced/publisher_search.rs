//! `POST /auditlog/publisher/v1/project/{projectId}/graphql`: Retraced's search for a publisher
//! (`@retracedhq/retraced`'s `query()`), with a platform key with the `read` scope
//! ([`super::auth`]).
//!
//! Retraced's publisher search reads the whole project, every group at once. Stele's trail is
//! one per organization, and a search reads one: the query names its group with Stele's
//! `group.id:<group>` term (the group's id, as events name it). A search without one reads the
//! project's only group when it has one, and is refused with a GraphQL error that says so when
//! it has several. Nothing is recorded: Retraced records the
//! viewer's searches, not the publisher's.

use axum::body::Bytes;
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
    let org = match group {
        Some(group) => match state.directory.resolve(state.store.as_ref(), &group).await {
            Ok(Some(org)) if !org.platform => org,
            Ok(_) => {
                return graphql::errors(
                    StatusCode::BAD_REQUEST,
                    &format!("group.id: no group '{group}'"),
                );
            }
            Err(e) => return RetracedError::from(e).into_response(),
        },
        // Without a group, a project of one group is searched whole, as Retraced would (the
        // client library's `query()` cannot name a group); with several, the search must.
        None => match only_group(&state).await {
            Ok(Some(org)) => org,
            Ok(None) => {
                return graphql::errors(
                    StatusCode::BAD_REQUEST,
                    "group.id: Stele searches one group's trail at a time, and this project has \
                     several; add group.id:<group> to the search",
                );
            }
            Err(e) => return RetracedError::from(e).into_response(),
        },
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

/// The project's one group, if it has exactly one: a group is an organization known by an
/// external id (as Retraced's groups are made), so the organization a first start makes for
/// Stele's own use is none.
async fn only_group(state: &AppState) -> Result<Option<Organization>, StoreError> {
    let mut tenants = state
        .store
        .list_orgs()
        .await?
        .into_iter()
        .filter(|org| !org.platform && org.external_id.is_some());
    Ok(match (tenants.next(), tenants.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    })
}
