//! Retraced's reading side over Stele's trail: the search its publisher SDK and its embedded
//! viewer (`@retracedhq/logs-viewer`) send, the viewer's saved exports and its API tokens. The
//! server's Retraced door (`crate::compat::retraced` in stele-server) reads the wire format and
//! calls these use cases; nothing here knows HTTP or GraphQL.
//!
//! - [`query`]: Retraced's search language, read into a store filter and entry checks.
//! - [`search`]: the paging (Retraced's cursor, `totalCount`, `hasPreviousPage`) over the store.
//! - [`view`]: an entry as Retraced's event (crud, times, group, the display markdown).
//! - [`project`]: the publisher's search over every group of the project at once.
//! - Here: the use cases, each recording what Retraced records (a search as `audit.log.view`,
//!   the API tokens' changes as `eitapi_token.*`).
//!
//! Every use case takes the organization and the viewer's fixed filters, and reads nothing
//! outside them: an organization never sees another's entries, exports or tokens.

pub mod project;
pub mod query;
pub mod search;
pub mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stele_core::event::{Actor, ActorType, Context, Entity, NewEvent, Outcome};
use stele_core::filter::EventFilter;
use stele_core::time::Millis;
use stele_store::{
    NewViewerApiToken, Organization, SavedExport, Store, StoreError, ViewerApiToken,
};

use crate::access::viewer::FixedFilters;
use crate::export::{ExportRequest, Format, Pick};
use crate::random;
use crate::trail;
use query::{Plan, QueryError};
use search::{Found, Paging, SearchError};
use view::EventView;

/// The detailed action of a viewing, as Retraced names it (its default `viewLogAction`).
pub const LOG_VIEWED: &str = "audit.log.view";
pub const TOKEN_CREATED: &str = "eitapi_token.create";
pub const TOKEN_UPDATED: &str = "eitapi_token.update";
pub const TOKEN_DELETED: &str = "eitapi_token.delete";
/// The entity type of the viewer's API tokens in the entries about them.
pub const TOKEN_ENTITY_TYPE: &str = "RetracedApiToken";
/// The most saved exports a list returns.
pub const MAX_SAVED_EXPORTS: usize = 100;

/// Who reads through Retraced's door: the viewer a token names (recorded as the actor of what
/// they do), or a publisher key.
#[derive(Debug, Clone)]
pub struct Reader {
    pub actor: Actor,
    pub context: Context,
}

impl Reader {
    /// The viewer of a viewer token, as Retraced records them (a user, by the `actor_id` the
    /// token was minted for).
    pub fn viewer(viewer: &crate::access::viewer::Viewer, context: Context) -> Reader {
        Reader {
            actor: Actor {
                kind: ActorType::User,
                id: Some(viewer.id.clone()),
                name: viewer.name.clone(),
                email: viewer.email.clone(),
                href: None,
                metadata: Default::default(),
                original_type: None,
            },
            context,
        }
    }
}

/// One page of a search, with each entry as Retraced's event.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub found: Found,
    pub events: Vec<EventView>,
}

/// The filter of everything `fixed` lets a viewer see (Retraced has no actor types: all shown).
fn scope(fixed: &FixedFilters) -> EventFilter {
    EventFilter {
        entity_type: fixed.entity_type.clone(),
        entity_id: fixed.entity_id.clone(),
        actor: fixed.actor.clone(),
        channel: fixed.channel.clone(),
        ..query::every_entry()
    }
}

/// The plan of search text `text` within `fixed`; `None` when a term contradicts a fixed
/// filter (the search can match nothing the viewer may see).
pub fn plan_within(text: &str, fixed: &FixedFilters) -> Result<Option<Plan>, QueryError> {
    let plan = query::plan(text, query::every_entry())?;
    let within = scope(fixed);
    let mut filter = plan.filter.clone();
    for (slot, pinned) in [
        (&mut filter.entity_type, &within.entity_type),
        (&mut filter.entity_id, &within.entity_id),
        (&mut filter.actor, &within.actor),
        (&mut filter.channel, &within.channel),
    ] {
        if let Some(pinned) = pinned {
            match slot {
                Some(asked) if asked != pinned => return Ok(None),
                _ => *slot = Some(pinned.clone()),
            }
        }
    }
    Ok(Some(Plan { filter, ..plan }))
}

/// Searches `org`'s trail with Retraced search text `text` within `fixed`, a page at `paging`.
pub async fn search_events(
    store: &dyn Store,
    org: &Organization,
    fixed: &FixedFilters,
    text: &str,
    paging: &Paging,
) -> Result<SearchPage, SearchError> {
    let plan = plan_within(text, fixed).map_err(|e| SearchError::Invalid(e.to_string()))?;
    let found = match plan {
        Some(plan) => search::search(store, org.key, &plan, paging).await?,
        None => Found {
            entries: Vec::new(),
            total: 0,
            total_exact: true,
            newest_first: paging.newest_first,
        },
    };
    let events = found
        .entries
        .iter()
        .map(|e| view::event_view(e, org))
        .collect();
    Ok(SearchPage { found, events })
}

/// The embedded viewer's search: [`search_events`], then the viewing recorded in the
/// organization's trail as Retraced records it (`audit.log.view`, crud `r`). A viewer that asked
/// to skip the record (its `skipViewLogEvent`) calls [`search_events`] instead. A search that
/// fails is not recorded.
pub async fn view_events(
    store: &dyn Store,
    org: &Organization,
    fixed: &FixedFilters,
    text: &str,
    paging: &Paging,
    reader: &Reader,
    now: Millis,
) -> Result<SearchPage, SearchError> {
    let page = search_events(store, org, fixed, text, paging).await?;
    trail::record(store, org.key, log_viewed(reader, text, &page, now)).await?;
    Ok(page)
}

/// The origin of the entries this door writes, so that Retraced's view shows their crud letter.
fn origin(crud: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        (
            view::ORIGIN_PROTOCOL.to_string(),
            json!(view::RETRACED_PROTOCOL),
        ),
        ("crud".to_string(), json!(crud)),
    ])
}

fn log_viewed(reader: &Reader, text: &str, page: &SearchPage, now: Millis) -> NewEvent {
    let who = reader
        .actor
        .name
        .clone()
        .or_else(|| reader.actor.id.clone())
        .unwrap_or_else(|| "A viewer".into());
    NewEvent {
        occurred_at: now,
        action: "view".into(),
        detailed_action: Some(LOG_VIEWED.into()),
        channel: trail::activity::PII_READ_CHANNEL.into(),
        description: Some(format!("{who} viewed the audit log")),
        outcome: Outcome::Success,
        actor: reader.actor.clone(),
        entity: None,
        entity_ids: vec![],
        context: reader.context.clone(),
        changes: vec![],
        metadata: BTreeMap::from([
            ("query".to_string(), json!(text)),
            ("results".to_string(), json!(page.events.len())),
        ]),
        idempotency_key: None,
        origin: origin("r"),
        related_entities: Vec::new(),
    }
}

/// A request that cannot be kept as it is, named by its field.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// One line of 1 to `max` characters, without control characters.
fn one_line(field: &str, value: &str, max: usize) -> Result<String, RequestError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("must be one line of 1 to {max} characters"),
        ));
    }
    Ok(value.to_string())
}

/// What the viewer's export button sends (`exportBody`): the search box's text, which crud
/// letters to show, and the date range if one is picked (times as ISO text or milliseconds).
#[derive(Debug, Clone, Default)]
pub struct ExportBody {
    pub search_query: String,
    pub show_create: bool,
    pub show_read: bool,
    pub show_update: bool,
    pub show_delete: bool,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
}

impl ExportBody {
    /// The search the export renders, in Retraced's language (what its server composes too).
    pub fn query(&self) -> String {
        let letters: Vec<&str> = [
            (self.show_create, "c"),
            (self.show_read, "r"),
            (self.show_update, "u"),
            (self.show_delete, "d"),
        ]
        .into_iter()
        .filter(|(shown, _)| *shown)
        .map(|(_, l)| l)
        .collect();
        let mut text = self.search_query.trim().to_string();
        let mut push = |term: String| {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&term);
        };
        // No letter shown is `crud:` (no letter kept): the export is empty, as Retraced's is.
        push(format!("crud:{}", letters.join(",")));
        if let (Some(start), Some(end)) = (self.start_time, self.end_time) {
            push(format!(
                "received:{},{}",
                stele_core::time::format_rfc3339(start),
                stele_core::time::format_rfc3339(end)
            ));
        }
        text
    }
}

/// Saves an export of `org` under `name`: the search of `body`, checked now (a saved export
/// that could never render is refused when it is made).
pub async fn create_saved_export(
    store: &dyn Store,
    org: &Organization,
    name: &str,
    body: &ExportBody,
    now: Millis,
) -> Result<SavedExport, RequestError> {
    let name = one_line("name", name, 200)?;
    let text = body.query();
    if text.chars().any(char::is_control) || text.chars().count() > 2000 {
        return Err(invalid(
            "exportBody.searchQuery",
            "must be one line of at most 2000 characters",
        ));
    }
    query::plan(&text, query::every_entry())
        .map_err(|e| invalid("exportBody.searchQuery", e.to_string()))?;
    let export = SavedExport {
        id: random::token("rse_", 12),
        name,
        query: text,
        created_at: now,
    };
    store.create_saved_export(org.key, export.clone()).await?;
    Ok(export)
}

/// The organization's saved exports, newest first, at most `limit` (and [`MAX_SAVED_EXPORTS`]).
pub async fn saved_exports(
    store: &dyn Store,
    org: &Organization,
    limit: Option<usize>,
) -> Result<Vec<SavedExport>, StoreError> {
    let limit = limit
        .filter(|l| *l > 0)
        .unwrap_or(MAX_SAVED_EXPORTS)
        .min(MAX_SAVED_EXPORTS);
    store.saved_exports(org.key, limit).await
}

/// The export request that renders saved export `id` of `org` as CSV within `fixed`: Stele's
/// export (its CSV, its own entry in the trail) of the saved search, the store filtering what it
/// can and the rest picked entry by entry. `None` when a term contradicts a fixed filter (an
/// empty export).
pub async fn saved_export_request(
    store: &dyn Store,
    org: &Organization,
    fixed: &FixedFilters,
    id: &str,
) -> Result<(SavedExport, ExportRequest), RequestError> {
    let saved = store
        .saved_export(org.key, id)
        .await?
        .ok_or(RequestError::NotFound)?;
    let plan = plan_within(&saved.query, fixed)
        .map_err(|e| invalid("query", e.to_string()))?
        // Nothing the viewer may see matches: a crud set that keeps no letter selects nothing.
        .unwrap_or(Plan {
            filter: scope(fixed),
            crud: query::Crud {
                c: false,
                r: false,
                u: false,
                d: false,
            },
            checks: Vec::new(),
        });
    let mut filters = serde_json::Map::new();
    filters.insert("retraced_query".into(), json!(saved.query));
    filters.insert("saved_export".into(), json!(saved.id));
    let picked = plan.clone();
    let pick = (!plan.crud.is_all() || !plan.checks.is_empty()).then(|| {
        Pick(Arc::new(move |entry: &stele_core::Entry| {
            picked.admits(entry)
        }))
    });
    let request = ExportRequest {
        format: Format::Csv,
        filter: plan.filter,
        filters,
        pick,
    };
    Ok((saved, request))
}

/// A new API token of `org`: its secret, shown this once (only its SHA-256 is kept), and the
/// stored token; recorded as `eitapi_token.create`.
pub async fn create_api_token(
    store: &dyn Store,
    org: &Organization,
    display_name: &str,
    by: &Reader,
    now: Millis,
) -> Result<(ViewerApiToken, String), RequestError> {
    let display_name = one_line("displayName", display_name, 200)?;
    let secret = random::token("eit_", 24);
    let token = NewViewerApiToken {
        id: random::token("eti_", 12),
        display_name: display_name.clone(),
        secret_hash: Sha256::digest(secret.as_bytes()).into(),
        created_at: now,
    };
    store
        .create_viewer_api_token(org.key, token.clone())
        .await?;
    let stored = ViewerApiToken {
        id: token.id,
        display_name,
        created_at: now,
    };
    let event = token_event(by, "create", TOKEN_CREATED, "Created", &stored, now);
    trail::record(store, org.key, event).await?;
    Ok((stored, secret))
}

/// The organization's API tokens, oldest first (names and ids; secrets are never kept).
pub async fn api_tokens(
    store: &dyn Store,
    org: &Organization,
) -> Result<Vec<ViewerApiToken>, StoreError> {
    store.viewer_api_tokens(org.key).await
}

/// Renames the organization's token `id`; recorded as `eitapi_token.update`.
pub async fn rename_api_token(
    store: &dyn Store,
    org: &Organization,
    id: &str,
    display_name: &str,
    by: &Reader,
    now: Millis,
) -> Result<ViewerApiToken, RequestError> {
    let display_name = one_line("displayName", display_name, 200)?;
    let token = store
        .viewer_api_tokens(org.key)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(RequestError::NotFound)?;
    if !store
        .rename_viewer_api_token(org.key, id, &display_name)
        .await?
    {
        return Err(RequestError::NotFound);
    }
    let renamed = ViewerApiToken {
        display_name,
        ..token
    };
    let event = token_event(by, "update", TOKEN_UPDATED, "Renamed", &renamed, now);
    trail::record(store, org.key, event).await?;
    Ok(renamed)
}

/// Deletes the organization's token `id`; recorded as `eitapi_token.delete`.
pub async fn delete_api_token(
    store: &dyn Store,
    org: &Organization,
    id: &str,
    by: &Reader,
    now: Millis,
) -> Result<(), RequestError> {
    let token = store
        .viewer_api_tokens(org.key)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(RequestError::NotFound)?;
    if !store.delete_viewer_api_token(org.key, id).await? {
        return Err(RequestError::NotFound);
    }
    let event = token_event(by, "delete", TOKEN_DELETED, "Deleted", &token, now);
    trail::record(store, org.key, event).await?;
    Ok(())
}

fn token_event(
    by: &Reader,
    action: &str,
    detailed_action: &str,
    verb: &str,
    token: &ViewerApiToken,
    now: Millis,
) -> NewEvent {
    let crud = query::Crud::letter_of(action).to_string();
    NewEvent {
        occurred_at: now,
        action: action.into(),
        detailed_action: Some(detailed_action.into()),
        channel: trail::activity::SECURITY_CHANNEL.into(),
        description: Some(format!("{verb} API token \"{}\"", token.display_name)),
        outcome: Outcome::Success,
        actor: by.actor.clone(),
        entity: Some(Entity::new(
            TOKEN_ENTITY_TYPE,
            Some(token.id.clone()),
            Some(token.display_name.clone()),
        )),
        entity_ids: vec![],
        context: by.context.clone(),
        changes: vec![],
        metadata: BTreeMap::new(),
        idempotency_key: None,
        origin: origin(&crud),
        related_entities: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_body_reads_as_the_search_it_renders() {
        let body = ExportBody {
            search_query: "printer".into(),
            show_create: true,
            show_update: true,
            show_delete: true,
            start_time: Some(0),
            end_time: Some(86_400_000),
            ..ExportBody::default()
        };
        assert_eq!(
            body.query(),
            "printer crud:c,u,d received:1970-01-01T00:00:00.000Z,1970-01-02T00:00:00.000Z"
        );
    }

    #[test]
    fn a_term_against_a_fixed_filter_matches_nothing_and_others_narrow_within_it() {
        let fixed = FixedFilters {
            actor: Some("u1".into()),
            ..FixedFilters::default()
        };
        assert_eq!(plan_within("actor.id:u2", &fixed).unwrap(), None);
        let plan = plan_within("actor.id:u1 crud:c", &fixed).unwrap().unwrap();
        assert_eq!(plan.filter.actor.as_deref(), Some("u1"));
        let plan = plan_within("crud:c", &fixed).unwrap().unwrap();
        assert_eq!(plan.filter.actor.as_deref(), Some("u1"));
    }
}
