//! Stele's own activity, recorded in the organization's trail as real entries: console sign-ins
//! (`login`), sign-outs (`logout`) and failed sign-ins (`login_failed`) on channel `auth`;
//! members added, members' roles changed, API keys created or revoked, and requests the IP
//! allowlist refused (`access_denied`) on channel `security`; one entry's details read (`view`,
//! through the API or the console) on channel `pii-read`. Settings changes and exports build
//! their entries where they happen (the settings and export modules).
//!
//! These functions only build the entries; [`crate::trail::record`] appends one. The actor is
//! the member for what a member does in the console (type `user`), and a System actor named after
//! the command, with source `cli`, for what an operator does on the command line (the operator is
//! not identified to Stele).

use std::collections::BTreeMap;

use serde_json::json;
use stele_core::event::{Actor, ActorType, Change, Context, Entity, Entry, NewEvent, Outcome};
use stele_core::time::Millis;
use stele_store::{ApiKeyInfo, Member, Organization, Scope};

/// The channel of sign-ins and sign-outs.
pub const AUTH_CHANNEL: &str = "auth";
/// The channel of changes to who may do what: members and API keys.
pub const SECURITY_CHANNEL: &str = "security";
/// The channel of reads of personal records: an entry's details name people.
pub const PII_READ_CHANNEL: &str = "pii-read";

/// The detailed actions, so that Stele's own entries can be told from an application's logins.
pub const LOGIN: &str = "console.login";
pub const LOGOUT: &str = "console.logout";
pub const LOGIN_FAILED: &str = "console.login_failed";
/// A sign-in by moving a session here from another organization of the same person.
pub const SWITCHED_IN: &str = "console.switch_organization";
pub const MEMBER_ADDED: &str = "member.add";
pub const MEMBER_ROLE_CHANGED: &str = "member.role_change";
pub const MEMBER_DISABLED: &str = "member.disable";
pub const MEMBER_ENABLED: &str = "member.enable";
pub const MEMBER_REMOVED: &str = "member.remove";
pub const MEMBER_PASSWORD_LINK: &str = "member.password_link";
pub const MEMBER_PASSWORD_SET: &str = "member.password_set";
pub const KEY_CREATED: &str = "api_key.create";
pub const KEY_REVOKED: &str = "api_key.revoke";
pub const IP_DENIED: &str = "ip_allowlist.deny";
pub const ENTRY_VIEWED: &str = "entry.view";
pub const ORGANIZATION_CREATED: &str = "organization.create";
pub const ORGANIZATION_UPDATED: &str = "organization.update";
pub const ORGANIZATION_DELETED: &str = "organization.delete";
pub const VIEWER_TOKEN_CREATED: &str = "viewer_token.create";
pub const VIEWER_SESSION_STARTED: &str = "viewer.session_start";
pub const ACTION_SCHEMA_CREATED: &str = "audit_log_schema.create";

/// The entity type of an organization in the entries about it.
pub const ORGANIZATION_ENTITY_TYPE: &str = "Organization";

/// The entity type of an entry that another entry is about (a `view`): its id is the viewed
/// entry's, so that entity's history lists everyone who read it.
pub const ENTRY_ENTITY_TYPE: &str = "AuditLogEntry";

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
        href: None,
        metadata: Default::default(),
        original_type: None,
    }
}

/// Stele itself, on behalf of an operator's command (`stele key create`).
pub fn system_actor(command: &str) -> Actor {
    Actor {
        kind: ActorType::System,
        id: None,
        name: Some(command.to_string()),
        email: None,
        href: None,
        metadata: Default::default(),
        original_type: None,
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
    Entity::new(
        "Member",
        Some(who.id.to_string()),
        Some(who.label().to_string()),
    )
}

fn key_entity(key: &ApiKeyInfo) -> Entity {
    Entity::new("ApiKey", Some(key.id.clone()), Some(key.name.clone()))
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
    entity: Option<Entity>,
    context: Context,
    changes: Vec<Change>,
    metadata: BTreeMap<String, serde_json::Value>,
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
        entity: p.entity,
        entity_ids: vec![],
        context: p.context,
        changes: p.changes,
        metadata: p.metadata,
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    }
}

/// A member signed in to the console.
pub fn login(who: Who<'_>, context: Context, now: Millis) -> NewEvent {
    session_entry(who, context, now, "login", LOGIN, "signed in to")
}

/// A member signed in by switching their session here from another of their organizations (the
/// console's organization switcher): a `login` like any other, told apart by its detailed action.
/// It does not name the organization they came from, which is no business of this one.
pub fn switched_in(who: Who<'_>, context: Context, now: Millis) -> NewEvent {
    session_entry(
        who,
        context,
        now,
        "login",
        SWITCHED_IN,
        "switched organization and signed in to",
    )
}

/// A member signed out.
pub fn logout(who: Who<'_>, context: Context, now: Millis) -> NewEvent {
    session_entry(who, context, now, "logout", LOGOUT, "signed out of")
}

/// A member's own sign-in or sign-out, on channel `auth`.
fn session_entry(
    who: Who<'_>,
    context: Context,
    now: Millis,
    action: &'static str,
    detailed_action: &'static str,
    verb: &str,
) -> NewEvent {
    entry(
        Parts {
            action,
            detailed_action,
            channel: AUTH_CHANNEL,
            description: format!("{} {verb} the console", who.label()),
            outcome: Outcome::Success,
            actor: member_actor(who),
            entity: Some(member_entity(who)),
            context,
            changes: vec![],
            metadata: BTreeMap::new(),
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
                href: None,
                metadata: Default::default(),
                original_type: None,
            },
            entity: Some(member_entity(who)),
            context,
            changes: vec![],
            metadata: BTreeMap::new(),
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
            entity: Some(member_entity(member.into())),
            context,
            changes,
            metadata: BTreeMap::new(),
        },
        now,
    )
}

/// What happened to a member, besides being added or given another role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Disabled,
    Enabled,
    Removed,
    /// A one-time link to set their password was made.
    PasswordLink,
    /// They set their password.
    PasswordSet,
}

/// `by` changed `member` as `change` says.
pub fn member_changed(
    by: Actor,
    context: Context,
    member: &Member,
    change: MemberChange,
    now: Millis,
) -> NewEvent {
    let (action, detailed_action, description, changes) = match change {
        MemberChange::Disabled => (
            "update",
            MEMBER_DISABLED,
            format!("Disabled {}", member.email),
            vec![Change {
                field: "disabled".into(),
                old: Some(json!(false)),
                new: Some(json!(true)),
            }],
        ),
        MemberChange::Enabled => (
            "update",
            MEMBER_ENABLED,
            format!("Enabled {}", member.email),
            vec![Change {
                field: "disabled".into(),
                old: Some(json!(true)),
                new: Some(json!(false)),
            }],
        ),
        MemberChange::Removed => (
            "delete",
            MEMBER_REMOVED,
            format!("Removed {} ({})", member.email, member.role),
            vec![],
        ),
        MemberChange::PasswordLink => (
            "create",
            MEMBER_PASSWORD_LINK,
            format!("Made a link for {} to set their password", member.email),
            vec![],
        ),
        MemberChange::PasswordSet => (
            "update",
            MEMBER_PASSWORD_SET,
            format!("{} set their password", member.email),
            vec![],
        ),
    };
    entry(
        Parts {
            action,
            detailed_action,
            channel: SECURITY_CHANNEL,
            description,
            outcome: Outcome::Success,
            actor: by,
            entity: Some(member_entity(member.into())),
            context,
            changes,
            metadata: BTreeMap::new(),
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
            entity: Some(member_entity(member.into())),
            context,
            changes: vec![Change {
                field: "role".into(),
                old: Some(json!(old_role)),
                new: Some(json!(member.role)),
            }],
            metadata: BTreeMap::new(),
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
            entity: Some(key_entity(key)),
            context,
            changes: vec![
                added("name", json!(key.name)),
                added("scopes", json!(Scope::join(&key.scopes))),
            ],
            metadata: BTreeMap::new(),
        },
        now,
    )
}

fn organization_entity(org: &Organization) -> Entity {
    Entity::new(
        ORGANIZATION_ENTITY_TYPE,
        Some(org.id.clone()),
        Some(org.name.clone()),
    )
}

/// `by` created an organization (recorded in its own trail and in the platform's).
pub fn organization_created(
    by: Actor,
    context: Context,
    org: &Organization,
    now: Millis,
) -> NewEvent {
    let mut changes = vec![added("name", json!(org.name))];
    if let Some(external_id) = &org.external_id {
        changes.push(added("external_id", json!(external_id)));
    }
    entry(
        Parts {
            action: "create",
            detailed_action: ORGANIZATION_CREATED,
            channel: SECURITY_CHANNEL,
            description: format!("Created organization \"{}\"", org.name),
            outcome: Outcome::Success,
            actor: by,
            entity: Some(organization_entity(org)),
            context,
            changes,
            metadata: BTreeMap::new(),
        },
        now,
    )
}

/// `by` deleted an organization with everything it held (recorded in the platform's trail: the
/// organization's own is gone). `removed` is how many entries its trail held.
pub fn organization_deleted(
    by: Actor,
    context: Context,
    org: &Organization,
    removed: u64,
    now: Millis,
) -> NewEvent {
    let mut metadata = BTreeMap::new();
    metadata.insert("entries_removed".to_string(), json!(removed));
    let mut changes = vec![Change {
        field: "name".into(),
        old: Some(json!(org.name)),
        new: None,
    }];
    if let Some(external_id) = &org.external_id {
        changes.push(Change {
            field: "external_id".into(),
            old: Some(json!(external_id)),
            new: None,
        });
    }
    entry(
        Parts {
            action: "delete",
            detailed_action: ORGANIZATION_DELETED,
            channel: SECURITY_CHANNEL,
            description: format!(
                "Deleted organization \"{}\" and its {removed} entries",
                org.name
            ),
            outcome: Outcome::Success,
            actor: by,
            entity: Some(organization_entity(org)),
            context,
            changes,
            metadata,
        },
        now,
    )
}

/// `by` renamed an organization or changed its external id; `old` is how it was.
pub fn organization_updated(
    by: Actor,
    context: Context,
    old: &Organization,
    new: &Organization,
    now: Millis,
) -> NewEvent {
    let mut changes = Vec::new();
    if old.name != new.name {
        changes.push(Change {
            field: "name".into(),
            old: Some(json!(old.name)),
            new: Some(json!(new.name)),
        });
    }
    if old.external_id != new.external_id {
        changes.push(Change {
            field: "external_id".into(),
            old: old.external_id.as_ref().map(|e| json!(e)),
            new: new.external_id.as_ref().map(|e| json!(e)),
        });
    }
    entry(
        Parts {
            action: "update",
            detailed_action: ORGANIZATION_UPDATED,
            channel: SECURITY_CHANNEL,
            description: format!("Updated organization \"{}\"", new.name),
            outcome: Outcome::Success,
            actor: by,
            entity: Some(organization_entity(new)),
            context,
            changes,
            metadata: BTreeMap::new(),
        },
        now,
    )
}

/// `by` minted a viewer token for `claims.viewer` (recorded in the organization's trail, and in the
/// platform's when a platform key minted it).
pub fn viewer_token_created(
    by: Actor,
    context: Context,
    claims: &crate::access::viewer::Claims,
    now: Millis,
) -> NewEvent {
    let viewer = &claims.viewer;
    let metadata = viewer_metadata(claims);
    entry(
        Parts {
            action: "create",
            detailed_action: VIEWER_TOKEN_CREATED,
            channel: SECURITY_CHANNEL,
            description: format!(
                "Issued a viewer token for {}",
                viewer.name.as_deref().unwrap_or(&viewer.id)
            ),
            outcome: Outcome::Success,
            actor: by,
            entity: Some(viewer_entity(viewer)),
            context,
            changes: vec![],
            metadata,
        },
        now,
    )
}

/// A new version of an action's schema (what that action's events must carry) was stored: the
/// schema is the entity (`AuditLogSchema`, id `<action>@v<version>`), the document its metadata.
pub fn action_schema_created(
    by: Actor,
    context: Context,
    schema: &stele_store::ActionSchema,
    now: Millis,
) -> NewEvent {
    let metadata = [
        ("action", json!(schema.action)),
        ("version", json!(schema.version)),
        ("schema", json!(schema.document)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    entry(
        Parts {
            action: "create",
            detailed_action: ACTION_SCHEMA_CREATED,
            channel: SECURITY_CHANNEL,
            description: format!(
                "Defined version {} of the schema of action {}",
                schema.version, schema.action
            ),
            outcome: Outcome::Success,
            actor: by,
            entity: Some(Entity::new(
                "AuditLogSchema",
                Some(format!("{}@v{}", schema.action, schema.version)),
                None,
            )),
            context,
            changes: vec![],
            metadata,
        },
        now,
    )
}

/// A viewer opened the embedded audit log: recorded under the viewer's own identity (as the
/// platform named them), with the key that minted the token in the context.
pub fn viewer_session_started(
    claims: &crate::access::viewer::Claims,
    ip: Option<String>,
    user_agent: Option<String>,
    now: Millis,
) -> NewEvent {
    let viewer = &claims.viewer;
    let metadata = viewer_metadata(claims);
    entry(
        Parts {
            action: "view",
            detailed_action: VIEWER_SESSION_STARTED,
            channel: PII_READ_CHANNEL,
            description: format!(
                "{} opened the embedded audit log",
                viewer.name.as_deref().unwrap_or(&viewer.id)
            ),
            outcome: Outcome::Success,
            actor: Actor {
                kind: ActorType::User,
                id: Some(viewer.id.clone()),
                name: viewer.name.clone(),
                email: viewer.email.clone(),
                href: None,
                metadata: Default::default(),
                original_type: None,
            },
            entity: None,
            context: Context {
                ip,
                user_agent,
                api_key_id: Some(claims.minted_by.clone()),
                source: Some("web".into()),
                ..Context::default()
            },
            changes: vec![],
            metadata,
        },
        now,
    )
}

/// What a viewer token allows, as the metadata of the entries about it: its permissions and
/// each fixed filter (`filter.entity_id`, …).
fn viewer_metadata(claims: &crate::access::viewer::Claims) -> BTreeMap<String, serde_json::Value> {
    let mut metadata = BTreeMap::new();
    metadata.insert("permissions".to_string(), json!(permissions_text(claims)));
    for (name, value) in claims.filters.params() {
        metadata.insert(format!("filter.{name}"), json!(value));
    }
    metadata
}

fn permissions_text(claims: &crate::access::viewer::Claims) -> String {
    claims
        .permissions
        .iter()
        .map(|p| match p {
            crate::access::viewer::Permission::Read => "read",
            crate::access::viewer::Permission::Export => "export",
            crate::access::viewer::Permission::Streams => "streams",
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn viewer_entity(viewer: &crate::access::viewer::Viewer) -> Entity {
    Entity::new(
        "Viewer",
        Some(viewer.id.clone()),
        viewer.name.clone().or_else(|| viewer.email.clone()),
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
            entity: Some(key_entity(key)),
            context,
            changes: vec![],
            metadata: BTreeMap::new(),
        },
        now,
    )
}

/// The IP allowlist refused a request by `by` (an API key, or a member in the console) to
/// `method path`. The refused address is the context's `ip`; the query string is left out (it can
/// hold search terms about people).
pub fn access_denied(
    by: Actor,
    context: Context,
    method: &str,
    path: &str,
    now: Millis,
) -> NewEvent {
    let ip = context.ip.as_deref().unwrap_or("an unknown address");
    entry(
        Parts {
            action: "access_denied",
            detailed_action: IP_DENIED,
            channel: SECURITY_CHANNEL,
            description: format!(
                "Refused {method} {path} from {ip}: not on the organization's IP allowlist"
            ),
            outcome: Outcome::Failure,
            actor: by,
            entity: None,
            context,
            changes: vec![],
            metadata: [
                ("method".to_string(), json!(method)),
                ("path".to_string(), json!(path)),
            ]
            .into_iter()
            .collect(),
        },
        now,
    )
}

/// `by` read the details of one entry, `via` one of [`VIEWED_VIA_API`] (`GET /v1/events/{id}`),
/// `details` (a row opened in the console) or `entry_page` (the console's page of one entry).
/// The entity is the entry read (type [`ENTRY_ENTITY_TYPE`], its id), so that entity's history
/// lists who read it; the metadata names the read entry's own entity, so the reads of every entry
/// about one record are a metadata search away. Nothing else of the entry is copied, so erasing a
/// person from it leaves nothing of them here.
pub fn entry_viewed(
    by: Actor,
    context: Context,
    viewed: &Entry,
    via: &str,
    now: Millis,
) -> NewEvent {
    let mut metadata: std::collections::BTreeMap<String, serde_json::Value> = [
        ("entry_seq".to_string(), json!(viewed.seq)),
        ("via".to_string(), json!(via)),
    ]
    .into_iter()
    .collect();
    if let Some(read) = &viewed.event.entity {
        metadata.insert("entry_entity_type".into(), json!(read.kind));
        if let Some(id) = &read.id {
            metadata.insert("entry_entity_id".into(), json!(id));
        }
    }
    entry(
        Parts {
            action: "view",
            detailed_action: ENTRY_VIEWED,
            channel: PII_READ_CHANNEL,
            description: format!("Viewed the details of audit log entry #{}", viewed.seq),
            outcome: Outcome::Success,
            actor: by,
            entity: Some(Entity::new(
                ENTRY_ENTITY_TYPE,
                Some(viewed.id.clone()),
                None,
            )),
            context,
            changes: vec![],
            metadata,
        },
        now,
    )
}

/// The `via` of a `view` through the API.
pub const VIEWED_VIA_API: &str = "api";
