//! `/console/settings/keys`: the organization's API keys, for members with `audit.keys.manage`.
//! A list (name, the secret's first characters, id, scopes, created, revoked), a form to create
//! one, and revocation after a confirmation page.
//!
//! A new key's secret is shown once, on the answer to the form that created it: never in a URL,
//! a cookie or the server's log, and never again (the store keeps only its SHA-256, as for
//! `stele key create`). Creating and revoking are recorded like the command line's
//! (`api_key.create`, `api_key.revoke`, channel `security`), with the member as the actor.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use stele_service::access::roles::Role;
use stele_store::{ApiKeyInfo, Scope};

use super::{
    DoneQuery, FormPairs, KEYS_PATH, Notice, Problems, csrf_field, done, problem, refused_notice,
    settings_page,
};
use crate::app::state::AppState;
use crate::console::auth::Client;
use crate::console::render::{column_heads, encode_component, utc_text};
use crate::console::{ConsoleError, ConsoleUser, PageError, page};
use stele_service::access::api_keys;
use stele_service::access::roles::Permission;
use stele_service::trail::By;
use stele_service::trail::activity::member_actor;

/// Key names are for people telling keys apart.
const MAX_NAME_CHARS: usize = 100;

/// What each scope lets a key do, for the checkboxes.
fn scope_hint(scope: Scope) -> &'static str {
    match scope {
        Scope::Ingest => "record events",
        Scope::Read => "read the trail, its facets and settings",
        Scope::Export => "export the trail",
        Scope::Admin => "everything, including changing settings and erasure",
        Scope::PrintlogUpdateOwn => "reclassify the print log rows the key recorded (its name)",
        Scope::PrintlogUpdateAll => "reclassify any print log row",
        Scope::PrintlogDeleteOwn => "delete the print log rows the key recorded (its name)",
        Scope::PrintlogDeleteAll => "delete any print log row, or clear the print log",
        Scope::Viewer => "open this organization's audit log inside another product",
        Scope::Organizations => "manage organizations (platform keys only)",
    }
}

/// The create form as sent (or empty).
#[derive(Debug, Default)]
struct KeyForm {
    name: String,
    scopes: Vec<String>,
}

impl KeyForm {
    /// The new key's name and scopes, or the problems by control (`name`, `scopes`).
    fn check(&self, role: Role) -> Result<(String, Vec<Scope>), Problems> {
        let mut problems = Problems::new();
        let name = self.name.trim();
        if name.is_empty() {
            problems.insert(
                "name".into(),
                "Give the key a name, such as the service that will use it.".into(),
            );
        } else if name.chars().count() > MAX_NAME_CHARS {
            problems.insert(
                "name".into(),
                format!("The name must be at most {MAX_NAME_CHARS} characters long."),
            );
        } else if name.chars().any(char::is_control) {
            problems.insert("name".into(), "The name must be one line of text.".into());
        }
        let scopes = match Scope::parse_list(&self.scopes.join(","))
            .and_then(|scopes| Scope::check_for(&scopes, false).map(|()| scopes))
            .and_then(|scopes| match role.may_grant(&scopes) {
                Ok(()) => Ok(scopes),
                // A key can do no more than the member who makes it.
                Err((scope, missing)) => Err(format!(
                    "your role ({role}) may not give a key `{}`, which needs the permission to {}",
                    scope.as_str(),
                    missing.map_or("manage organizations", |p| p.describe())
                )),
            }) {
            Ok(scopes) => scopes,
            Err(_) if self.scopes.is_empty() => {
                problems.insert("scopes".into(), "Choose at least one scope.".into());
                vec![]
            }
            Err(e) => {
                problems.insert("scopes".into(), format!("Scopes: {e}."));
                vec![]
            }
        };
        if problems.is_empty() {
            Ok((name.to_string(), scopes))
        } else {
            Err(problems)
        }
    }
}

/// The organization's keys, newest first.
async fn org_keys(state: &AppState, user: &ConsoleUser) -> Result<Vec<ApiKeyInfo>, ConsoleError> {
    let mut keys = state.store.list_api_keys(user.org).await?;
    keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(keys)
}

/// `GET /console/settings/keys`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<DoneQuery>,
) -> Result<Markup, PageError> {
    user.require(Permission::AuditKeysManage)?;
    let keys = org_keys(&state, &user).await?;
    let named = |id: &Option<String>| {
        id.as_deref()
            .and_then(|id| keys.iter().find(|k| k.id == id))
            .map(|k| k.name.clone())
    };
    let notice = match (query.done.as_deref(), named(&query.id)) {
        (Some("revoked"), Some(name)) => Some(Notice::Done(format!(
            "Revoked the key \"{name}\": requests with it are refused from now on."
        ))),
        (Some("already_revoked"), Some(name)) => Some(Notice::Done(format!(
            "The key \"{name}\" was revoked already."
        ))),
        _ => None,
    };
    Ok(render(
        &user,
        &keys,
        &KeyForm::default(),
        &Problems::new(),
        notice.as_ref(),
    ))
}

/// `POST /console/settings/keys`: creates a key and shows its secret, once.
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Form(form): Form<FormPairs>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditKeysManage)?;
    let sent = KeyForm {
        name: form.text("name"),
        scopes: form.all("scope").map(str::to_string).collect(),
    };
    let (name, scopes) = match sent.check(user.role) {
        Ok(checked) => checked,
        Err(problems) => {
            let keys = org_keys(&state, &user).await?;
            let notice = refused_notice(&problems);
            return Ok(page(
                StatusCode::BAD_REQUEST,
                render(&user, &keys, &sent, &problems, Some(&notice)),
            ));
        }
    };
    let created = api_keys::create(
        state.store.as_ref(),
        user.org,
        &name,
        scopes,
        By::new(member_actor(user.who()), client.context()),
        state.clock.now(),
    )
    .await
    .map_err(ConsoleError::from)?;
    let (info, secret) = (created.info, created.secret);
    let body = html! {
        section.key-created {
            h2 { "API key created" }
            p {
                "Copy the key now and keep it somewhere safe. Stele keeps only a hash of it, so "
                strong { "this is the only time it is shown" } "."
            }
            p.secret { code #new-key { (secret) } }
            dl.kv {
                dt { "Name" } dd { (info.name) }
                dt { "ID" } dd { code { (info.id) } }
                dt { "Scopes" } dd { (Scope::join(&info.scopes)) }
            }
            p { a.button href=(KEYS_PATH) { "Done: back to API keys" } }
        }
    };
    Ok(page(
        StatusCode::CREATED,
        settings_page(&user, "API key created", KEYS_PATH, None, body),
    ))
}

/// The organization's key `id`, or the page saying there is none (another organization's key is
/// not this organization's business either).
async fn find_key(
    state: &AppState,
    user: &ConsoleUser,
    id: &str,
) -> Result<Result<ApiKeyInfo, Response>, ConsoleError> {
    let keys = org_keys(state, user).await?;
    Ok(keys.into_iter().find(|k| k.id == id).ok_or_else(|| {
        page(
            StatusCode::NOT_FOUND,
            settings_page(
                user,
                "No such key",
                KEYS_PATH,
                Some(&Notice::Refused(
                    "This organization has no API key with that id.".into(),
                )),
                html! { p { a href=(KEYS_PATH) { "Back to API keys" } } },
            ),
        )
    }))
}

/// `GET /console/settings/keys/{id}/revoke`: asks to confirm.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditKeysManage)?;
    let key = match find_key(&state, &user, &id).await? {
        Ok(key) => key,
        Err(missing) => return Ok(missing),
    };
    if key.revoked_at.is_some() {
        return Ok(done(KEYS_PATH, "already_revoked", Some(&key.id)));
    }
    let body = html! {
        section.confirm {
            h2 { "Revoke the key \"" (key.name) "\"?" }
            p {
                "Every request with this key (" code { (key.prefix) "…" } ", scopes "
                (Scope::join(&key.scopes)) ") will be refused from now on. This cannot be undone; "
                "a service that still needs access needs a new key."
            }
            form method="post" action=(revoke_path(&key.id)) {
                (csrf_field(&user))
                button.danger type="submit" { "Revoke this key" }
                " "
                a href=(KEYS_PATH) { "Cancel" }
            }
        }
    };
    Ok(page(
        StatusCode::OK,
        settings_page(&user, "Revoke an API key", KEYS_PATH, None, body),
    ))
}

/// `POST /console/settings/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditKeysManage)?;
    let key = match find_key(&state, &user, &id).await? {
        Ok(key) => key,
        Err(missing) => return Ok(missing),
    };
    if key.revoked_at.is_some() {
        return Ok(done(KEYS_PATH, "already_revoked", Some(&key.id)));
    }
    let revoked = api_keys::revoke(
        state.store.as_ref(),
        &key.id,
        By::new(member_actor(user.who()), client.context()),
        state.clock.now(),
    )
    .await
    .map_err(ConsoleError::from)?;
    if let api_keys::Revoked::Already(_) = revoked {
        return Ok(done(KEYS_PATH, "already_revoked", Some(&key.id)));
    }
    Ok(done(KEYS_PATH, "revoked", Some(&key.id)))
}

fn revoke_path(id: &str) -> String {
    format!("{KEYS_PATH}/{}/revoke", encode_component(id))
}

fn render(
    user: &ConsoleUser,
    keys: &[ApiKeyInfo],
    form: &KeyForm,
    problems: &Problems,
    notice: Option<&Notice>,
) -> Markup {
    let body = html! {
        section.create-key {
            h2 { "Create a key" }
            form.settings-form method="post" action=(KEYS_PATH) novalidate {
                (csrf_field(user))
                div.field {
                    label for="key-name" { "Name" }
                    input #key-name type="text" name="name" value=(form.name) maxlength="100"
                        placeholder="billing-service"
                        aria-invalid=[problems.contains_key("name").then_some("true")];
                    (problem(problems, "name"))
                }
                fieldset.scopes {
                    legend { "Scopes" }
                    @for scope in Scope::FOR_ORGANIZATION {
                        @let id = format!("scope-{}", scope.as_str());
                        // A scope the member's role may not give is shown, not offered.
                        @let offered = user.role.may_grant(&[scope]).is_ok();
                        div.choice {
                            input id=(id) type="checkbox" name="scope" value=(scope.as_str())
                                disabled[!offered]
                                checked[offered && form.scopes.iter().any(|s| s == scope.as_str())];
                            label for=(id) {
                                code { (scope.as_str()) } " " span.muted { (scope_hint(scope)) }
                            }
                        }
                    }
                    (problem(problems, "scopes"))
                }
                div.form-actions {
                    button.primary type="submit" { "Create key" }
                }
            }
        }
        section.key-list {
            h2 { "Keys" }
            @if keys.is_empty() {
                p.muted { "This organization has no API keys." }
            } @else {
                div.table-scroll {
                    table.settings-table.keys {
                        (column_heads(&["Name", "Key", "ID", "Scopes", "Created", "Status"], true))
                        tbody {
                            @for key in keys {
                                tr.revoked[key.revoked_at.is_some()] id=(format!("key-{}", key.id)) {
                                    td.name { (key.name) }
                                    td.prefix { code { (key.prefix) "…" } }
                                    td.id { code { (key.id) } }
                                    td.scopes { (Scope::join(&key.scopes)) }
                                    td.created { (utc_text(key.created_at)) }
                                    td.status {
                                        @match key.revoked_at {
                                            Some(at) => span.badge.badge-rose title=(utc_text(at)) { "Revoked" },
                                            None => span.badge.badge-emerald { "Active" },
                                        }
                                    }
                                    td.actions {
                                        @if key.revoked_at.is_none() {
                                            a.revoke href=(revoke_path(&key.id)) { "Revoke…" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p.hint {
                    "Stele does not keep a key's secret, only a hash and its first characters, "
                    "so a lost key cannot be shown again: create a new one and revoke the old."
                }
            }
        }
    };
    settings_page(user, "API keys", KEYS_PATH, notice, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, scopes: &[&str]) -> KeyForm {
        KeyForm {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_key_needs_a_name_and_a_known_scope() {
        assert_eq!(
            form(" CI ", &["read", "ingest"])
                .check(Role::Admin)
                .unwrap(),
            ("CI".to_string(), vec![Scope::Ingest, Scope::Read])
        );
        let problems = form("", &[]).check(Role::Admin).unwrap_err();
        assert!(problems["name"].contains("name"));
        assert_eq!(problems["scopes"], "Choose at least one scope.");
        let problems = form(&"x".repeat(101), &["root"])
            .check(Role::Admin)
            .unwrap_err();
        assert!(problems["name"].contains("at most 100"));
        assert!(problems["scopes"].contains("unknown scope `root`"));
        assert!(form("a\nb", &["read"]).check(Role::Admin).is_err());
    }

    #[test]
    fn a_member_makes_no_key_that_can_do_more_than_their_role() {
        assert!(
            form("ci", &["ingest", "read", "export"])
                .check(Role::ItAdmin)
                .is_ok()
        );
        let problems = form("ci", &["read", "admin"])
            .check(Role::ItAdmin)
            .unwrap_err();
        assert!(
            problems["scopes"].contains("may not give a key `admin`"),
            "{problems:?}"
        );
        let problems = form("ci", &["printlog.delete.all"])
            .check(Role::ItAdmin)
            .unwrap_err();
        assert!(
            problems["scopes"].contains("delete every print"),
            "{problems:?}"
        );
    }
}
