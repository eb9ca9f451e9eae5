//! `/console/settings/members`: the organization's members, for members with
//! `audit.members.manage`. A list (name, email, role, added, disabled), a form to add a member
//! with a first password the administrator sets (none for someone with an account in another
//! organization), and a role change per member.
//!
//! Guard rails ([`refusal`]), the same for adding and for changing a role:
//! - nobody changes their own role (another member who manages members must do it), so the
//!   member changing roles always keeps the ability to manage members;
//! - only an `owner` makes someone an owner, or changes an owner's role: an `admin` can neither
//!   promote themselves through someone else nor demote the people above them;
//! - no change leaves the organization without an active member who can manage members.
//!
//! Adding goes through `stele_service::access::members::add` (as `stele user create` does: the same
//! password rules, Argon2id, `member.add` recorded); a role change is recorded as
//! `member.role_change` (action `permission_change`, channel `security`) with the old and new role.
//! The member is the actor of both.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use stele_store::{Member, StoreError};

use super::{
    DoneQuery, FormPairs, MEMBERS_PATH, Notice, Problems, csrf_field, done, problem,
    refused_notice, settings_page,
};
use crate::app::state::AppState;
use crate::console::auth::Client;
use crate::console::render::{column_heads, encode_component, utc_text};
use crate::console::{ConsoleError, ConsoleUser, PageError, page};
use stele_service::access::members::{self, AddMember, AddMemberError, MIN_PASSWORD_CHARS};
use stele_service::access::roles::{Permission, Role};
use stele_service::trail::By;
use stele_service::trail::activity::member_actor;

/// Names are for people; the store takes up to this many characters (`members::add`).
const MAX_NAME_CHARS: usize = 200;

/// Why `actor` may not give `new_role` to `target` (`None`: a member being added), given every
/// member of the organization; `None` when they may. `members` holds each member's id, role and
/// whether they are disabled.
pub fn refusal(
    actor: (&str, Role),
    target: Option<(&str, Role)>,
    new_role: Role,
    members: &[(&str, Role, bool)],
) -> Option<&'static str> {
    let (actor_id, actor_role) = actor;
    if let Some((target_id, _)) = target
        && target_id == actor_id
    {
        return Some(
            "You cannot change your own role. Another member who manages members can change it.",
        );
    }
    if new_role == Role::Owner && actor_role != Role::Owner {
        return Some("Only an owner can make someone an owner.");
    }
    if let Some((_, Role::Owner)) = target
        && actor_role != Role::Owner
    {
        return Some("Only an owner can change an owner's role.");
    }
    if let Some((target_id, _)) = target {
        let managers_after = members
            .iter()
            .filter(|(_, _, disabled)| !disabled)
            .map(|(id, role, _)| if *id == target_id { new_role } else { *role })
            .filter(|role| role.has(Permission::AuditMembersManage))
            .count();
        if managers_after == 0 {
            return Some("This would leave no one in the organization who can manage members.");
        }
    }
    None
}

/// The role stored for a member, read as the console reads it at sign-in (an unknown name, from
/// a newer version or a hand edit, counts as the least role).
fn role_of(member: &Member) -> Role {
    Role::parse(&member.role).unwrap_or(Role::Member)
}

/// The roles `user` may give: every role, but `owner` only for an owner.
fn assignable(user: &ConsoleUser) -> impl Iterator<Item = Role> + '_ {
    Role::ALL
        .into_iter()
        .filter(move |role| *role != Role::Owner || user.role == Role::Owner)
}

/// The add form as sent (or empty). The password is never sent back to the browser.
#[derive(Debug, Default)]
struct AddForm {
    email: String,
    name: String,
    role: String,
}

async fn org_members(state: &AppState, user: &ConsoleUser) -> Result<Vec<Member>, ConsoleError> {
    Ok(state.store.list_members(user.org).await?)
}

/// `GET /console/settings/members`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<DoneQuery>,
) -> Result<Markup, PageError> {
    user.require(Permission::AuditMembersManage)?;
    let list = org_members(&state, &user).await?;
    let about = query
        .id
        .as_deref()
        .and_then(|id| list.iter().find(|m| m.id == id));
    let notice = match (query.done.as_deref(), about) {
        (Some("added"), Some(m)) => Some(Notice::Done(format!(
            "Added {} as {}. They can sign in with the password you set.",
            m.email, m.role
        ))),
        (Some("added-existing"), Some(m)) => Some(Notice::Done(format!(
            "Added {} as {}. They already have a Stele account in another organization and sign \
             in with their own password (a password typed here is not used).",
            m.email, m.role
        ))),
        (Some("role"), Some(m)) => Some(Notice::Done(format!("{} is now {}.", m.email, m.role))),
        (Some("unchanged"), Some(m)) => Some(Notice::Done(format!(
            "{} is {} already: nothing changed.",
            m.email, m.role
        ))),
        _ => None,
    };
    Ok(render(
        &user,
        &list,
        &AddForm::default(),
        &Problems::new(),
        notice.as_ref(),
    ))
}

/// `POST /console/settings/members`: adds a member, or shows the form again with its problems.
pub async fn add(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Form(form): Form<FormPairs>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditMembersManage)?;
    let sent = AddForm {
        email: form.text("email"),
        name: form.text("name"),
        role: form.text("role"),
    };
    // Not trimmed: spaces are part of a password.
    let password = form
        .0
        .iter()
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();

    let mut problems = Problems::new();
    if let Err(e) = members::check_email(&sent.email) {
        problems.insert("email".into(), capitalised(&e));
    }
    if sent.name.chars().count() > MAX_NAME_CHARS {
        problems.insert(
            "name".into(),
            format!("The name must be at most {MAX_NAME_CHARS} characters long."),
        );
    }
    match Role::parse(&sent.role) {
        None => {
            problems.insert("role".into(), format!("Choose a role: {}.", Role::names()));
        }
        Some(role) => {
            if let Some(why) = refusal((&user.member_id, user.role), None, role, &[]) {
                problems.insert("role".into(), why.into());
            }
        }
    }
    // Someone with a Stele account in another organization signs in with their own password:
    // none is needed here, and one typed is not used.
    let has_account = !problems.contains_key("email")
        && members::has_account(state.store.as_ref(), &sent.email)
            .await
            .map_err(ConsoleError::from)?;
    if !has_account && let Err(e) = members::check_password(password) {
        problems.insert("password".into(), capitalised(&e));
    }

    let role = Role::parse(&sent.role).unwrap_or(Role::Member);
    let added = if problems.is_empty() {
        let request = AddMember {
            email: &sent.email,
            name: Some(sent.name.as_str()),
            role,
            password: (!has_account).then_some(password),
        };
        let by = By::new(member_actor(user.who()), client.context());
        match members::add(
            state.store.as_ref(),
            user.org,
            request,
            by,
            state.clock.now(),
        )
        .await
        {
            Ok(added) => Some(added),
            Err(AddMemberError::EmailTaken(email)) => {
                problems.insert(
                    "email".into(),
                    format!("A member with the email {email} exists already."),
                );
                None
            }
            Err(e @ AddMemberError::AwaitingPassword(_)) => {
                problems.insert("email".into(), capitalised(&e.to_string()));
                None
            }
            Err(AddMemberError::Invalid(message)) => {
                problems.insert("form".into(), capitalised(&message));
                None
            }
            Err(AddMemberError::Store(e)) => return Err(ConsoleError::from(e).into()),
        }
    } else {
        None
    };
    match added {
        // A person of another organization keeps their own password (the one typed here was not
        // used), and the notice says so.
        Some(added) if added.existing_account => {
            Ok(done(MEMBERS_PATH, "added-existing", Some(&added.member.id)))
        }
        Some(added) => Ok(done(MEMBERS_PATH, "added", Some(&added.member.id))),
        None => {
            let list = org_members(&state, &user).await?;
            let notice = refused_notice(&problems);
            Ok(page(
                StatusCode::BAD_REQUEST,
                render(&user, &list, &sent, &problems, Some(&notice)),
            ))
        }
    }
}

/// `POST /console/settings/members/{id}/role`: changes a member's role, within the guard rails.
pub async fn change_role(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<FormPairs>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditMembersManage)?;
    let list = org_members(&state, &user).await?;
    let refuse = |status: StatusCode, message: String| {
        page(
            status,
            render(
                &user,
                &list,
                &AddForm::default(),
                &Problems::new(),
                Some(&Notice::Refused(message)),
            ),
        )
    };
    let Some(target) = list.iter().find(|m| m.id == id) else {
        return Ok(refuse(
            StatusCode::NOT_FOUND,
            "This organization has no member with that id.".into(),
        ));
    };
    let Some(new_role) = form.get("role").and_then(Role::parse) else {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            format!("Choose a role: {}.", Role::names()),
        ));
    };
    let old_role = role_of(target);
    let everyone: Vec<(&str, Role, bool)> = list
        .iter()
        .map(|m| (m.id.as_str(), role_of(m), m.disabled))
        .collect();
    if let Some(why) = refusal(
        (&user.member_id, user.role),
        Some((&target.id, old_role)),
        new_role,
        &everyone,
    ) {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            format!("The role of {} was not changed: {why}", target.email),
        ));
    }
    if target.role == new_role.as_str() {
        return Ok(done(MEMBERS_PATH, "unchanged", Some(&target.id)));
    }
    let by = By::new(member_actor(user.who()), client.context());
    let updated = members::change_role(
        state.store.as_ref(),
        user.org,
        &target.id,
        new_role,
        by,
        state.clock.now(),
    )
    .await
    .map_err(|e| match e {
        StoreError::NotFound => ConsoleError::Internal(format!(
            "member {} vanished while changing its role",
            target.id
        )),
        other => ConsoleError::from(other),
    })?;
    Ok(done(MEMBERS_PATH, "role", Some(&updated.id)))
}

/// `the password must …` → `The password must ….`
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn role_path(id: &str) -> String {
    format!("{MEMBERS_PATH}/{}/role", encode_component(id))
}

fn render(
    user: &ConsoleUser,
    list: &[Member],
    form: &AddForm,
    problems: &Problems,
    notice: Option<&Notice>,
) -> Markup {
    let everyone: Vec<(&str, Role, bool)> = list
        .iter()
        .map(|m| (m.id.as_str(), role_of(m), m.disabled))
        .collect();
    let body = html! {
        section.member-list {
            h2 { "Members" }
            div.table-scroll {
                table.settings-table.members {
                    (column_heads(&["Name", "Email", "Role", "Added", "Status"], false))
                    tbody {
                        @for member in list {
                            @let role = role_of(member);
                            @let you = member.id == user.member_id;
                            tr id=(format!("member-{}", member.id)) {
                                td.name {
                                    (member.name.as_deref().unwrap_or("—"))
                                    @if you { " " span.muted { "(you)" } }
                                }
                                td.email { (member.email) }
                                td.role {
                                    @if you {
                                        span.role-name { (member.role) }
                                        " " span.muted { "(another member can change it)" }
                                    } @else if role == Role::Owner && user.role != Role::Owner {
                                        span.role-name { (member.role) }
                                        " " span.muted { "(only an owner can change it)" }
                                    } @else {
                                        form.role-change method="post" action=(role_path(&member.id)) {
                                            (csrf_field(user))
                                            select name="role" aria-label=(format!("Role of {}", member.email)) {
                                                @for option in assignable(user) {
                                                    option value=(option.as_str())
                                                        selected[option == role]
                                                        disabled[refusal((&user.member_id, user.role),
                                                            Some((&member.id, role)), option, &everyone).is_some()
                                                            && option != role] {
                                                        (option.as_str())
                                                    }
                                                }
                                            }
                                            " "
                                            button.secondary type="submit" { "Change role" }
                                        }
                                    }
                                }
                                td.added { (utc_text(member.created_at)) }
                                td.status {
                                    @if member.disabled {
                                        span.badge.badge-rose { "Disabled" }
                                    } @else {
                                        span.badge.badge-emerald { "Active" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.hint {
                "What each role may do is in the roles table of the documentation (docs/console.md). "
                "Nobody changes their own role, and only an owner makes or changes an owner."
            }
        }
        section.add-member {
            h2 { "Add a member" }
            (problem(problems, "form"))
            form.settings-form method="post" action=(MEMBERS_PATH) novalidate {
                (csrf_field(user))
                div.field {
                    label for="member-email" { "Email" }
                    input #member-email type="email" name="email" value=(form.email)
                        autocomplete="off"
                        aria-invalid=[problems.contains_key("email").then_some("true")];
                    (problem(problems, "email"))
                }
                div.field {
                    label for="member-name" { "Name " span.muted { "(optional)" } }
                    input #member-name type="text" name="name" value=(form.name)
                        autocomplete="off"
                        aria-invalid=[problems.contains_key("name").then_some("true")];
                    (problem(problems, "name"))
                }
                div.field {
                    label for="member-role" { "Role" }
                    select #member-role name="role"
                        aria-invalid=[problems.contains_key("role").then_some("true")] {
                        @for option in assignable(user) {
                            option value=(option.as_str())
                                selected[form.role == option.as_str()
                                    || (form.role.is_empty() && option == Role::Auditor)] {
                                (option.as_str())
                            }
                        }
                    }
                    (problem(problems, "role"))
                }
                div.field {
                    label for="member-password" { "First password" }
                    input #member-password type="password" name="password"
                        autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS)
                        aria-invalid=[problems.contains_key("password").then_some("true")];
                    span.hint {
                        "At least " (MIN_PASSWORD_CHARS) " characters. Give it to them yourself; "
                        "Stele sends no email. Not needed for someone who already has a Stele "
                        "account in another organization."
                    }
                    (problem(problems, "password"))
                }
                div.form-actions {
                    button.primary type="submit" { "Add member" }
                }
            }
        }
    };
    settings_page(user, "Members", MEMBERS_PATH, notice, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: (&str, Role) = ("mem_owner", Role::Owner);
    const ADMIN: (&str, Role) = ("mem_admin", Role::Admin);

    fn org() -> Vec<(&'static str, Role, bool)> {
        vec![
            ("mem_owner", Role::Owner, false),
            ("mem_admin", Role::Admin, false),
            ("mem_audit", Role::Auditor, false),
        ]
    }

    #[test]
    fn nobody_changes_their_own_role() {
        for me in [OWNER, ADMIN] {
            let why = refusal(me, Some(me), Role::Auditor, &org()).unwrap();
            assert!(why.contains("your own role"), "{why}");
        }
    }

    #[test]
    fn only_an_owner_makes_or_changes_an_owner() {
        assert!(refusal(ADMIN, None, Role::Owner, &[]).is_some());
        assert!(
            refusal(
                ADMIN,
                Some(("mem_audit", Role::Auditor)),
                Role::Owner,
                &org()
            )
            .is_some()
        );
        assert!(
            refusal(
                ADMIN,
                Some(("mem_owner", Role::Owner)),
                Role::Member,
                &org()
            )
            .is_some()
        );
        assert!(refusal(OWNER, None, Role::Owner, &[]).is_none());
        assert!(
            refusal(
                OWNER,
                Some(("mem_audit", Role::Auditor)),
                Role::Owner,
                &org()
            )
            .is_none()
        );
        assert!(
            refusal(
                OWNER,
                Some(("mem_admin", Role::Admin)),
                Role::Member,
                &org()
            )
            .is_none()
        );
        assert!(
            refusal(
                ADMIN,
                Some(("mem_audit", Role::Auditor)),
                Role::SuperAdmin,
                &org()
            )
            .is_none()
        );
        assert!(refusal(ADMIN, None, Role::Admin, &[]).is_none());
    }

    #[test]
    fn no_change_leaves_nobody_who_manages_members() {
        // Only reachable when the member acting no longer counts (disabled since they loaded
        // the page, say): the check does not trust that the actor is still there.
        let members = vec![
            ("mem_owner", Role::Owner, true),
            ("mem_admin", Role::Admin, false),
        ];
        let why = refusal(
            OWNER,
            Some(("mem_admin", Role::Admin)),
            Role::Auditor,
            &members,
        );
        assert_eq!(
            why,
            Some("This would leave no one in the organization who can manage members.")
        );
        assert!(
            refusal(
                OWNER,
                Some(("mem_admin", Role::Admin)),
                Role::SuperAdmin,
                &members
            )
            .is_none()
        );
    }

    #[test]
    fn messages_from_the_shared_checks_read_as_sentences() {
        assert_eq!(
            capitalised("the password must be at least 12 characters long (it has 5)"),
            "The password must be at least 12 characters long (it has 5)."
        );
        assert_eq!(capitalised("Done."), "Done.");
    }
}
