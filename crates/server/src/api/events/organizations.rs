//! The organization each event of an ingest request is for. An organization's key records into
//! its own. A platform key's event may name its organization in `organization` (an id `org_…`
//! or an external id), which wins over the `Stele-Organization` header; an event that names none
//! goes to the header's, and without the header it is an error of that event.
//!
//! The references are checked with the events (a bad or missing one is an error of its event,
//! in the same 422), looked up once each, and unknown ones created (when the server allows it)
//! only after every event of the request is known to be good: a refused batch leaves no
//! organization behind either.

use std::borrow::Cow;
use std::collections::HashMap;

use stele_core::FieldError;
use stele_core::sent::{Scalar, SentEvent, Shaped};
use stele_service::organizations::check_reference;
use stele_service::trail::By;
use stele_store::{OrgKey, Organization};

use crate::api::auth::{IngestKey, org_error};
use crate::api::error::Result;
use crate::app::state::AppState;

/// How errors name the field.
const FIELD: &str = "organization";

/// Takes a platform key's `organization` out of the event before the event is checked: it names
/// where the entry goes, and is neither stored nor part of the chain.
pub fn take<'a>(sent: &mut Shaped<SentEvent<'a>>) -> Option<Scalar<'a>> {
    match sent {
        Shaped::Object(event) => event.organization.take(),
        Shaped::Other(_) => None,
    }
}

/// The reference an event names (`None`: the request's own organization), or the error of its
/// `organization`. `has_default` says whether the request has an organization of its own for
/// the events that name none (see [`IngestKey::acts_for_tenant`]).
pub fn reference<'a>(
    named: Option<Scalar<'a>>,
    has_default: bool,
) -> Result<Option<Cow<'a, str>>, FieldError> {
    match named {
        None | Some(Scalar::Null) if has_default => Ok(None),
        None | Some(Scalar::Null) => Err(FieldError::new(
            FIELD,
            "is required: a platform key names the organization each event is for, here (its \
             id org_… or external id) or for the whole request in the Stele-Organization header",
        )),
        Some(Scalar::Str(reference)) => match check_reference(&reference) {
            Ok(_) => Ok(Some(reference)),
            // The rule is the external id's; the field is this one.
            Err(e) => Err(FieldError::new(FIELD, invalid_message(e))),
        },
        Some(other) => Err(FieldError::new(
            FIELD,
            format!(
                "must be a string (an organization id org_… or external id), not {}",
                other.type_name()
            ),
        )),
    }
}

fn invalid_message(e: stele_service::organizations::OrgError) -> String {
    match e {
        stele_service::organizations::OrgError::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

/// An organization events are recorded for: its store key and public id.
#[derive(Debug, Clone)]
pub struct Target {
    pub key: OrgKey,
    pub id: String,
}

impl From<&Organization> for Target {
    fn from(org: &Organization) -> Target {
        Target {
            key: org.key,
            id: org.id.clone(),
        }
    }
}

/// The organizations a request's events name, looked up once each.
pub struct Named {
    /// Each distinct reference and its organization; `None`: none has it yet.
    found: HashMap<String, Option<Target>>,
}

impl Named {
    /// Looks up every reference of `references` (an event's, by index), creating none. Adds an
    /// error for each event whose reference cannot be used: the platform's own organization, or
    /// an unknown one when the server does not create organizations on ingest. `index` gives an
    /// event's index as errors show it (`None` for a lone event).
    pub async fn look_up(
        state: &AppState,
        references: &[Option<Cow<'_, str>>],
        index: impl Fn(usize) -> Option<usize>,
        errors: &mut Vec<FieldError>,
    ) -> Result<Named> {
        let store = state.store.as_ref();
        let mut found: HashMap<String, Option<Target>> = HashMap::new();
        let mut platform = None;
        for (i, reference) in references.iter().enumerate() {
            let Some(reference) = reference.as_deref() else {
                continue;
            };
            if !found.contains_key(reference) {
                let org = state.directory.resolve(store, reference).await?;
                found.insert(reference.to_string(), org.as_ref().map(Target::from));
            }
            if found[reference].is_some() {
                continue;
            }
            // The platform's own organization is not a tenant (no lookup finds it), but it is no
            // unknown one to create either: its trail records what is done to organizations.
            let platform = match &platform {
                Some(p) => p,
                None => platform.insert(state.directory.platform(store).await?),
            };
            let message = if reference == platform.id {
                "names the platform's own organization, whose trail records what is done to \
                 organizations; name a tenant organization"
                    .to_string()
            } else if stele_store::is_org_id(reference) {
                // An id names an organization that exists; one that names none (a deleted
                // organization's, say) is never made.
                format!("no organization has the id `{reference}`")
            } else if !state.auto_create_organizations {
                // A 422 naming the event, not the header's 404: the reference is one event's
                // field, so its error is listed with the batch's other problems and the client
                // learns of every bad event at once, as the batch is all-or-nothing anyway.
                format!(
                    "no organization has the id or external id `{reference}`, and this server \
                     does not create organizations on ingest"
                )
            } else {
                continue;
            };
            errors.push(FieldError {
                index: index(i),
                ..FieldError::new(FIELD, message)
            });
        }
        Ok(Named { found })
    }

    /// Creates the organizations no one has yet (their name and external id are the reference),
    /// each recorded as any creation is, with the key as the actor. Called once every event is
    /// known to be good.
    pub async fn create_missing(&mut self, state: &AppState, auth: &IngestKey) -> Result<()> {
        let store = state.store.as_ref();
        for (reference, target) in self.found.iter_mut().filter(|(_, t)| t.is_none()) {
            let (actor, context) = auth.actor();
            let org = state
                .directory
                .resolve_or_create(
                    store,
                    reference,
                    true,
                    By::platform(actor, context),
                    state.clock.now(),
                )
                .await
                .map_err(org_error)?
                .expect("created when missing");
            *target = Some(Target::from(&org));
        }
        Ok(())
    }

    /// The organization of a reference [`Named::look_up`] saw (and [`Named::create_missing`]
    /// created, if it had to).
    pub fn get(&self, reference: &str) -> Option<&Target> {
        self.found.get(reference).and_then(Option::as_ref)
    }

    /// Every organization found, for naming receipts.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.found.values().flatten()
    }
}
