//! Retraced's GraphQL search (`search(query, last, before, first, after)`), served to the
//! embedded viewer (`POST /auditlog/viewer/v1/graphql`) and to the publisher SDK's `query()`
//! (`POST …/publisher/v1/project/{projectId}/graphql`). Clients send any selection of Retraced's
//! schema, so a real engine (`async-graphql`) executes it; the search itself is
//! `stele_service::retraced`. Field names are Retraced's (`canonical_time`, `is_failure`, but
//! `totalCount`, `pageInfo`).
//!
//! A request is `{query, variables, operationName}`. As Retraced answers: 200 with `data`, or
//! 400 with `errors` when anything failed (a bad query, a refused search term, a bad cursor);
//! a store failure is 503 with `errors`.

use std::sync::Arc;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, ErrorExtensions, Object, Schema, SimpleObject,
    Variables,
};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stele_core::time::Millis;
use stele_service::access::viewer::FixedFilters;
use stele_service::retraced::search::{Paging, SearchError};
use stele_service::retraced::view::EventView;
use stele_service::retraced::{self, Reader};
use stele_store::{Organization, Store};

/// What a search may see and who asks: set by the route from its token or key.
pub struct SearchScope {
    pub store: Arc<dyn Store>,
    pub org: Organization,
    /// A publisher's search over the whole project: these groups at once (`org`, then the
    /// platform's own, is not searched; `retraced::project`). `None` for a search of `org`.
    pub project: Option<Vec<Organization>>,
    pub fixed: FixedFilters,
    /// The viewer whose searches are recorded (`audit.log.view`); `None` records nothing (the
    /// publisher's searches, and a viewer's with `skipViewLogEvent`).
    pub recorded_as: Option<Reader>,
    pub now: Millis,
}

/// The error code a store failure's GraphQL error carries, so the answer can be a 503.
const UNAVAILABLE: &str = "UNAVAILABLE";

pub struct Query;

#[Object]
impl Query {
    /// Retraced's search: `last`/`before` newest first, `first`/`after` oldest first.
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        last: Option<i32>,
        before: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<EventsConnection> {
        let scope = ctx.data::<SearchScope>()?;
        if let Some(groups) = &scope.project {
            return project_search(scope, groups, query, last, before, first, after).await;
        }
        let paging = Paging::from_arguments(
            first.map(i64::from),
            after.as_deref(),
            last.map(i64::from),
            before.as_deref(),
        )
        .map_err(search_error)?;
        let store = scope.store.as_ref();
        let page = match &scope.recorded_as {
            Some(reader) => {
                retraced::view_events(
                    store,
                    &scope.org,
                    &scope.fixed,
                    &query,
                    &paging,
                    reader,
                    scope.now,
                )
                .await
            }
            None => retraced::search_events(store, &scope.org, &scope.fixed, &query, &paging).await,
        }
        .map_err(search_error)?;
        let edges = page
            .found
            .entries
            .iter()
            .zip(page.events)
            .map(|(entry, event)| EventEdge {
                cursor: retraced::search::Position::of(entry).encode(),
                node: Event::from(event),
            })
            .collect();
        Ok(EventsConnection {
            total_count: i64::try_from(page.found.total).unwrap_or(i64::MAX),
            total_count_exact: page.found.total_exact,
            page_info: PageInfo {
                has_previous_page: page.found.has_previous_page(),
                has_next_page: page.found.has_next_page(),
            },
            edges,
        })
    }
}

/// The publisher's search of every group of the project ([`SearchScope::project`]): the same
/// arguments, a cursor of its own (where each group's walk stands).
async fn project_search(
    scope: &SearchScope,
    groups: &[Organization],
    query: String,
    last: Option<i32>,
    before: Option<String>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<EventsConnection> {
    // The paging rules (exclusive arguments, the page size) are the group search's; the cursor
    // is read by the project's search.
    let paging = Paging::from_arguments(first.map(i64::from), None, last.map(i64::from), None)
        .map_err(search_error)?;
    if after.as_deref().is_some_and(|a| !a.is_empty())
        && before.as_deref().is_some_and(|b| !b.is_empty())
    {
        return Err(async_graphql::Error::new(
            "Arguments 'before' and 'after' are exclusive",
        ));
    }
    let cursor = after.as_deref().or(before.as_deref());
    let page = retraced::project::search_project(
        scope.store.as_ref(),
        groups,
        &query,
        paging.newest_first,
        paging.size,
        cursor,
    )
    .await
    .map_err(search_error)?;
    Ok(EventsConnection {
        total_count: i64::try_from(page.total).unwrap_or(i64::MAX),
        total_count_exact: page.total_exact,
        page_info: PageInfo {
            has_previous_page: page.has_previous_page(),
            has_next_page: page.has_next_page(),
        },
        edges: page
            .events
            .into_iter()
            .map(|(cursor, event)| EventEdge {
                cursor,
                node: Event::from(event),
            })
            .collect(),
    })
}

fn search_error(e: SearchError) -> async_graphql::Error {
    match e {
        SearchError::Invalid(message) => async_graphql::Error::new(message),
        SearchError::Store(cause) => {
            tracing::error!(%cause, "Retraced search: the store failed");
            async_graphql::Error::new("The audit log is unavailable right now; retry shortly.")
                .extend_with(|_, ext| ext.set("code", UNAVAILABLE))
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "EventsConnection")]
pub struct EventsConnection {
    /// Every match, whatever the cursor (Retraced's meaning).
    total_count: i64,
    /// Stele's addition: false when `totalCount` is a lower bound (the store stops counting at
    /// 10,000 matches so that a page is never slow).
    total_count_exact: bool,
    page_info: PageInfo,
    edges: Vec<EventEdge>,
}

#[derive(SimpleObject)]
#[graphql(name = "PageInfo")]
pub struct PageInfo {
    has_previous_page: bool,
    has_next_page: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "EventEdge")]
pub struct EventEdge {
    cursor: String,
    node: Event,
}

#[derive(SimpleObject)]
#[graphql(name = "Field")]
pub struct Field {
    key: String,
    value: String,
}

fn fields(pairs: Vec<(String, String)>) -> Vec<Field> {
    pairs
        .into_iter()
        .map(|(key, value)| Field { key, value })
        .collect()
}

#[derive(SimpleObject)]
#[graphql(name = "Actor")]
pub struct Actor {
    id: Option<String>,
    name: Option<String>,
    href: Option<String>,
    fields: Vec<Field>,
}

impl Actor {
    fn none() -> Actor {
        Actor {
            id: None,
            name: None,
            href: None,
            fields: Vec::new(),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Group")]
pub struct Group {
    id: String,
    name: String,
}

#[derive(SimpleObject)]
#[graphql(name = "Target")]
pub struct Target {
    id: Option<String>,
    name: Option<String>,
    href: Option<String>,
    #[graphql(name = "type")]
    kind: Option<String>,
    fields: Vec<Field>,
}

impl Target {
    fn none() -> Target {
        Target {
            id: None,
            name: None,
            href: None,
            kind: None,
            fields: Vec::new(),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Display")]
pub struct Display {
    markdown: String,
}

#[derive(SimpleObject)]
#[graphql(name = "Event", rename_fields = "snake_case")]
pub struct Event {
    id: String,
    action: String,
    crud: String,
    created: String,
    received: String,
    canonical_time: String,
    description: Option<String>,
    /// Always an object, as Retraced's (whose code reads `event.actor.fields` and
    /// `event.target.fields` unguarded): an entry without one has one with null members.
    actor: Actor,
    group: Group,
    target: Target,
    display: Display,
    fields: Vec<Field>,
    metadata: Vec<Field>,
    is_failure: bool,
    is_anonymous: bool,
    source_ip: Option<String>,
    /// Retraced fills these from GeoIP, which Stele does not do: always null.
    country: Option<String>,
    #[graphql(name = "loc_subdiv1")]
    loc_subdiv1: Option<String>,
    #[graphql(name = "loc_subdiv2")]
    loc_subdiv2: Option<String>,
    external_id: Option<String>,
    component: Option<String>,
    version: Option<String>,
}

impl From<EventView> for Event {
    fn from(e: EventView) -> Event {
        Event {
            id: e.id,
            action: e.action,
            crud: e.crud,
            created: e.created,
            received: e.received,
            canonical_time: e.canonical_time,
            description: e.description,
            actor: e.actor.map_or_else(Actor::none, |a| Actor {
                id: a.id,
                name: a.name,
                href: a.href,
                fields: fields(a.fields),
            }),
            group: Group {
                id: e.group.id,
                name: e.group.name,
            },
            target: e.target.map_or_else(Target::none, |t| Target {
                id: t.id,
                name: t.name,
                href: t.href,
                kind: t.kind,
                fields: fields(t.fields),
            }),
            display: Display {
                markdown: e.markdown,
            },
            fields: fields(e.fields),
            metadata: fields(e.metadata),
            is_failure: e.is_failure,
            is_anonymous: e.is_anonymous,
            source_ip: e.source_ip,
            country: None,
            loc_subdiv1: None,
            loc_subdiv2: None,
            external_id: e.external_id,
            component: e.component,
            version: e.version,
        }
    }
}

pub type SearchSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema, with limits that keep a hostile query cheap (the search's own selection is four
/// levels deep and about 60 fields).
pub fn schema() -> SearchSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .limit_depth(12)
        .limit_complexity(500)
        .finish()
}

/// Executes a GraphQL request body in `scope` and answers as Retraced does (module docs).
pub async fn execute(schema: &SearchSchema, body: &[u8], scope: SearchScope) -> Response {
    let request = match read_request(body) {
        Ok(request) => request,
        Err(message) => return errors(StatusCode::BAD_REQUEST, &message),
    };
    let response = schema.execute(request.data(scope)).await;
    let status = if response.errors.is_empty() {
        StatusCode::OK
    } else if response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == async_graphql::Value::from(UNAVAILABLE))
    }) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = serde_json::to_value(&response)
        .unwrap_or_else(|_| json!({"errors": [{"message": "the answer could not be encoded"}]}));
    (status, Json(body)).into_response()
}

fn read_request(body: &[u8]) -> Result<async_graphql::Request, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON object: {e}"))?;
    let query = value
        .get("query")
        .and_then(Value::as_str)
        .ok_or("the body needs a `query` string")?;
    let mut request = async_graphql::Request::new(query);
    match value.get("variables") {
        None | Some(Value::Null) => {}
        Some(vars @ Value::Object(_)) => {
            request = request.variables(Variables::from_json(vars.clone()));
        }
        Some(_) => return Err("`variables` must be an object".into()),
    }
    if let Some(name) = value.get("operationName").and_then(Value::as_str) {
        request = request.operation_name(name);
    }
    Ok(request)
}

/// A GraphQL answer with only errors.
pub fn errors(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"errors": [{"message": message}]}))).into_response()
}
