//! Stele's own activity, recorded in the organization's trail as real entries: console sign-ins
//! (`login`), sign-outs (`logout`) and failed sign-ins (`login_failed`) on channel `auth`;
//! members added, members' roles changed and API keys created or revoked on channel `security`.
//! Settings changes and exports build their entries where they happen (`http::api::settings`,
//! `export`), and so does the console's `view` of one entry (`console::entry_page`).
//!
//! These functions only build the entries; [`crate::export::record`] appends one. The actor is
//! the member for what a member does in the console (type `user`), and a System actor named after
//! the command, with source `cli`, for what an operator does on the command line (the operator is
//! not identified to Stele).

use std::collections::BTreeMap;

use serde_json::json;
use stele_core::event::{Actor, ActorType, Change, Context, Entity, NewEvent, Outcome};
use stele_core::time::Millis;
use stele_store::{ApiKeyInfo, Member, Scope};

/// The channel of sign-ins and sign-outs.
pub const AUTH_CHANNEL: &str = "auth";
/// The channel of changes to who may do what: members and API keys.
pub const SECURITY_CHANNEL: &str = "security";

/// The detailed actions, so that Stele's own entries can be told from an application's logins.
pub const LOGIN: &str = "console.login";
pub const LOGOUT: &str = "console.logout";
pub const LOGIN_FAILED: &str = "console.login_failed";
pub const MEMBER_ADDED: &str = "member.add";
pub const MEMBER_ROLE_CHANGED: &str = "member.role_change";
pub const KEY_CREATED: &str = "api_key.create";
pub const KEY_REVOKED: &str = "api_key.revoke";

/// A member, as Stele's entries name them.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// `mem_…`
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub email: &'a str,
}

impl<'a> From<&'a Member> for Who<'a> {
    fn from(member: &'a Member) -> Self {
        Who {
            id: &member.id,
            name: member.name.as_deref(),
            email: &member.email,
        }
    }
}

impl Who<'_> {
    /// The name, or the email for a member without one.
    fn label(&self) -> &str {
        self.name.unwrap_or(self.email)
    }
}

/// A member acting in the console.
pub fn member_actor(who: Who<'_>) -> Actor {
    Actor {
        kind: ActorType::User,
        id: Some(who.id.to_string()),
        name: who.name.map(str::to_string),
        email: Some(who.email.to_string()),
    }
}

/// Stele itself, on behalf of an operator's command (`stele key create`).
pub fn system_actor(command: &str) -> Actor {
    Actor {
        kind: ActorType::System,
        id: None,
        name: Some(command.to_string()),
        email: None,
    }
}

/// The context of an operator's command.
pub fn cli_context() -> Context {
    Context {
        source: Some("cli".into()),
        ..Context::default()
    }
}

/// The context of a console request.
pub fn web_context(ip: Option<String>, user_agent: Option<String>) -> Context {
    Context {
        ip,
        user_agent,
        source: Some("web".into()),
        ..Context::default()
    }
}

fn member_entity(who: Who<'_>) -> Entity {
    Entity {
        kind: "Member".into(),
        id: Some(who.id.to_string()),
        name: Some(who.label().to_string()),
    }
}

fn key_entity(key: &ApiKeyInfo) -> Entity {
    Entity {
        kind: "ApiKey".into(),
        id: Some(key.id.clone()),
        name: Some(key.name.clone()),
    }
}

fn added(field: &str, value: serde_json::Value) -> Change {
    Change {
        field: field.into(),
        old: None,
        new: Some(value),
    }
}

struct Parts {
    action: &'static str,
    detailed_action: &'static str,
    channel: &'static str,
    description: String,
    outcome: Outcome,
    actor: Actor,
    entity: Entity,
    context: Context,
    changes: Vec<Change>,
}

fn entry(p: Parts, now: Millis) -> NewEvent {
    NewEvent {
        occurred_at: now,
        action: p.action.into(),
        detailed_action: Some(p.detailed_action.into()),
        channel: p.channel.into(),
        description: Some(p.description),
        outcome: p.outcome,
        actor: p.actor,
        entity: Some(p.entity),
        entity_ids: vec![],
        context: p.context,
        changes: p.changes,
        metadata: BTreeMap::new(),
        idempotency_key: None,
    }
}

/// A member signed in to the console.
pub fn login(who: Who<'_>, context: Context, now: Millis) -> NewEvent {
    entry(
        Parts {
            action: "login",
            detailed_action: LOGIN,
            channel: AUTH_CHANNEL,
            description: format!("{} signed in to the console", who.label()),
            outcome: Outcome::Success,
            actor: member_actor(who),
            entity: member_entity(who),
            context,
            changes: vec![],
        },
        now,
    )
}

/// A member signed out.
pub fn logout(who: Who<'_>, context: Context, now: Millis) -> NewEvent {
    entry(
        Parts {
            action: "logout",
            detailed_action: LOGOUT,
            channel: AUTH_CHANNEL,
            description: format!("{} signed out of the console", who.label()),
            outcome: Outcome::Success,
            actor: member_actor(who),
            entity: member_entity(who),
            context,
            changes: vec![],
        },
        now,
    )
}

/// Someone tried to sign in as the member `who` with `email_tried` and failed (`reason`: "wrong
/// password", "the account is disabled"). The actor is who tried, known only by the email typed.
pub fn login_failed(
    email_tried: &str,
    who: Who<'_>,
    reason: &str,
    context: Context,
    now: Millis,
) -> NewEvent {
    entry(
        Parts {
            action: "login_failed",
            detailed_action: LOGIN_FAILED,
            channel: AUTH_CHANNEL,
            description: format!("Failed sign-in as {email_tried}: {reason}"),
            outcome: Outcome::Failure,
            actor: Actor {
                kind: ActorType::User,
                id: None,
                name: None,
                email: Some(email_tried.to_string()),
            },
            entity: member_entity(who),
            context,
            changes: vec![],
        },
        now,
    )
}

/// `by` added `member` to the organization.
pub fn member_added(by: Actor, context: Context, member: &Member, now: Millis) -> NewEvent {
    let mut changes = vec![added("email", json!(member.email))];
    if let Some(name) = &member.name {
        changes.push(added("name", json!(name)));
    }
    changes.push(added("role", json!(member.role)));
    entry(
        Parts {
            action: "create",
            detailed_action: MEMBER_ADDED,
            channel: SECURITY_CHANNEL,
            description: format!("Added {} as {}", member.email, member.role),
            outcome: Outcome::Success,
            actor: by,
            entity: member_entity(member.into()),
            context,
            changes,
        },
        now,
    )
}

/// `by` changed `member`'s role from `old_role` to the one it has now: what they may do changed,
/// so the action is `permission_change`.
pub fn member_role_changed(
    by: Actor,
    context: Context,
    member: &Member,
    old_role: &str,
    now: Millis,
) -> NewEvent {
    entry(
        Parts {
            action: "permission_change",
            detailed_action: MEMBER_ROLE_CHANGED,
            channel: SECURITY_CHANNEL,
            description: format!(
                "Changed the role of {} from {old_role} to {}",
                member.email, member.role
            ),
            outcome: Outcome::Success,
            actor: by,
            entity: member_entity(member.into()),
            context,
            changes: vec![Change {
                field: "role".into(),
                old: Some(json!(old_role)),
                new: Some(json!(member.role)),
            }],
        },
        now,
    )
}

/// `by` created an API key.
pub fn key_created(by: Actor, context: Context, key: &ApiKeyInfo, now: Millis) -> NewEvent {
    entry(
        Parts {
            action: "create",
            detailed_action: KEY_CREATED,
            channel: SECURITY_CHANNEL,
            description: format!(
                "Created API key \"{}\" with scopes {}",
                key.name,
                Scope::join(&key.scopes)
            ),
            outcome: Outcome::Success,
            actor: by,
            entity: key_entity(key),
            context,
            changes: vec![
                added("name", json!(key.name)),
                added("scopes", json!(Scope::join(&key.scopes))),
            ],
        },
        now,
    )
}

/// `by` revoked an API key: requests with it are refused from now on.
pub fn key_revoked(by: Actor, context: Context, key: &ApiKeyInfo, now: Millis) -> NewEvent {
    entry(
        Parts {
            action: "delete",
            detailed_action: KEY_REVOKED,
            channel: SECURITY_CHANNEL,
            description: format!("Revoked API key \"{}\"", key.name),
            outcome: Outcome::Success,
            actor: by,
            entity: key_entity(key),
            context,
            changes: vec![],
        },
        now,
    )
}
