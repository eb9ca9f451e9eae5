//! One entry's details and the record of a member reading them: a `view` entry (channel
//! `pii-read`, the member as actor), because an entry's details can hold personal data and a
//! trail should answer "who read this".
//!
//! Two ways to read one entry, both recorded:
//! - on the log page (and a record's history), opening a row's details: the details are in the
//!   page already, so the browser reports the opening (`view.js` posts to
//!   `/console/entries/{id}/view`, once per entry per page load, with the CSRF header);
//! - `/console/entries/{id}`, the entry on its own page, linked from every row's details, which
//!   records the view as it renders, so a reader with JavaScript off is recorded too.
//!
//! The view is recorded before the entry is shown: when recording fails, the page fails.
//!
//! The entry is built here with `stele_service::trail::activity`'s pieces (the member actor, the
//! web context); the API's `GET /v1/events/{id}` records its own reads elsewhere.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use stele_core::Entry;
use stele_core::event::{Context, NewEvent};
use stele_core::time::Millis;

use super::auth::Client;
use super::log_page::{self, LogPageError};
use super::render::{action_badge, time_cell};
use super::{ConsoleError, ConsoleUser, PageError, layout, page};
use crate::app::state::AppState;
use stele_service::access::roles::Permission;
use stele_service::trail::activity::{self, Who, member_actor};

/// Where a member opened the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A row's details on the log page or a record's history.
    Details,
    /// `/console/entries/{id}`.
    EntryPage,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Details => "details",
            Via::EntryPage => "entry_page",
        }
    }
}

/// `who` read the details of `entry` (the entry is built by [`activity::entry_viewed`], as the
/// API's reads are).
pub fn view_record(
    who: Who<'_>,
    context: Context,
    entry: &Entry,
    via: Via,
    now: Millis,
) -> NewEvent {
    activity::entry_viewed(member_actor(who), context, entry, via.as_str(), now)
}

/// The organization's entry `id`, recorded as viewed by `user`; `None` when the organization
/// has no such entry (another organization's entry included).
async fn read_and_record(
    state: &AppState,
    user: &ConsoleUser,
    client: &Client,
    id: &str,
    via: Via,
) -> Result<Option<Entry>, ConsoleError> {
    let store = state.store.as_ref();
    let Some(entry) = store.get(user.org, id).await? else {
        return Ok(None);
    };
    let event = view_record(user.who(), client.context(), &entry, via, state.clock.now());
    stele_service::trail::record(store, user.org, event).await?;
    Ok(Some(entry))
}

/// `POST /console/entries/{id}/view`: a row's details were opened on a page (204), or 404.
pub async fn viewed(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogView)?;
    Ok(
        match read_and_record(&state, &user, &client, &id, Via::Details).await? {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    )
}

/// `GET /console/entries/{id}`: the entry on its own page, recorded as viewed.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogView)?;
    let Some(entry) = read_and_record(&state, &user, &client, &id, Via::EntryPage).await? else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            layout(
                "No such entry",
                Some(&user),
                html! {
                    section.notice {
                        h1 { "No such entry" }
                        p { "This organization's trail has no entry with that id." }
                        p { a href=(log_page::log_path(super::BASE_PATH)) { "Back to the audit log" } }
                    }
                },
            ),
        ));
    };
    let body = entry_body(&state, &user, &entry)
        .await
        .map_err(|LogPageError::Store(e)| ConsoleError::from(e))?;
    Ok(page(
        StatusCode::OK,
        layout(&format!("Entry {}", entry.seq), Some(&user), body),
    ))
}

async fn entry_body(
    state: &AppState,
    user: &ConsoleUser,
    entry: &Entry,
) -> Result<Markup, LogPageError> {
    let now = state.clock.now();
    let details = log_page::entry_details_page(
        state.store.as_ref(),
        user.org,
        entry,
        now,
        super::BASE_PATH,
        None,
    )
    .await?;
    let redactions =
        stele_service::erasure::redactions_of(state.store.as_ref(), user.org, &entry.id)
            .await
            .map_err(LogPageError::Store)?;
    let e = &entry.event;
    Ok(html! {
        section.stele-log.entry-page {
            p.back { a href=(log_page::log_path(super::BASE_PATH)) { "← Audit log" } }
            @for r in &redactions {
                p.notice.redacted {
                    "Redacted after it was recorded: " (r.fields.join(", ")) ", at " (r.at)
                    @if let Some(reason) = &r.reason { " (" (reason) ")" }
                    " · " a href=(format!("{}/entries/{}", super::BASE_PATH, r.record)) { "the redaction's record" }
                }
            }
            h1 {
                (action_badge(&e.action)) " "
                @if let Some(d) = &e.detailed_action { code { (d) } " " }
                span.description { (e.description.as_deref().unwrap_or("Entry")) }
            }
            p.when { (time_cell(e.occurred_at, now)) }
            (details)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stele_core::event::{Entity, Outcome};

    use super::*;

    #[test]
    fn a_view_names_the_member_the_entry_and_what_it_was_about() {
        let entry = Entry {
            id: "01a2-entry".into(),
            seq: stele_core::Seq::new(42),
            recorded_at: 5,
            event: NewEvent {
                occurred_at: 1,
                action: "update".into(),
                detailed_action: None,
                channel: "default".into(),
                description: Some("Changed Ada's address".into()),
                outcome: Outcome::Success,
                actor: stele_service::trail::activity::system_actor("an app"),
                entity: Some(Entity::new(
                    "User",
                    Some("u_ada".into()),
                    Some("Ada".into()),
                )),
                entity_ids: vec![],
                context: Context::default(),
                changes: vec![],
                metadata: Default::default(),
                idempotency_key: None,
                origin: Default::default(),
                related_entities: Vec::new(),
            },
        };
        let who = Who {
            id: "mem_1",
            name: None,
            email: "rita@example.com",
        };
        let view = view_record(who, Context::default(), &entry, Via::Details, 9);
        assert_eq!(
            (view.action.as_str(), view.channel.as_str()),
            ("view", "pii-read")
        );
        assert_eq!(view.actor.kind, stele_core::ActorType::User);
        assert_eq!(view.actor.id.as_deref(), Some("mem_1"));
        let entity = view.entity.unwrap();
        assert_eq!(
            (entity.kind.as_str(), entity.id.as_deref()),
            ("AuditLogEntry", Some("01a2-entry"))
        );
        assert_eq!(view.metadata["entry_entity_id"], json!("u_ada"));
        assert_eq!(view.metadata["via"], json!("details"));
        assert_eq!(
            view.description.as_deref(),
            Some("Viewed the details of audit log entry #42")
        );
        assert!(
            !view.description.unwrap().contains("address"),
            "the read entry's description (personal data) is not copied"
        );
    }
}
