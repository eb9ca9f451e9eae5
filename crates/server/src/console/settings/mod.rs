//! The console's settings pages, under `/console/settings`: the organization's settings
//! ([`org`], `audit.logs.configure`), its API keys ([`keys`], `audit.keys.manage`), its
//! members ([`members`], `audit.members.manage`) and its log streams ([`streams`],
//! `audit.logs.configure`).
//!
//! They follow the log page's rules (maud escapes every value; no inline script; everything works
//! without JavaScript) and one pattern: a `GET` renders the page, a `POST` form (with the CSRF
//! field, checked by the console's layer) changes something, and a change that worked redirects
//! (303) back to the page with `?done=…`, which the page shows as a notice (post/redirect/get, so
//! a reload does not repeat it). A form that is refused is rendered again at once, with what was
//! typed and the problem next to the control it is about. The one exception is a new API key:
//! its secret is shown on the answer to the `POST` itself, because a redirect would have to carry
//! it in a URL or a cookie.
//!
//! Each change is recorded in the trail with the member as the actor, as the API and the command
//! line record theirs.

pub mod keys;
pub mod members;
pub mod org;
pub mod streams;

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::auth::{CSRF_FIELD, ConsoleUser};
use super::layout;
use stele_service::access::roles::Permission;

pub const SETTINGS_PATH: &str = "/console/settings";
pub const KEYS_PATH: &str = "/console/settings/keys";
pub const MEMBERS_PATH: &str = "/console/settings/members";
pub const STREAMS_PATH: &str = "/console/settings/streams";

/// The settings pages in the order of their tabs: where each lives, its tab, and the permission
/// it needs.
const PAGES: [(&str, &str, Permission); 4] = [
    (
        SETTINGS_PATH,
        "Organization",
        Permission::AuditLogsConfigure,
    ),
    (KEYS_PATH, "API keys", Permission::AuditKeysManage),
    (MEMBERS_PATH, "Members", Permission::AuditMembersManage),
    (STREAMS_PATH, "Log streams", Permission::AuditLogsConfigure),
];

/// The first settings page `user` may open, for the header's Settings link; `None` (no link)
/// when their role allows none of them.
pub fn home(user: &ConsoleUser) -> Option<&'static str> {
    PAGES
        .iter()
        .find(|(_, _, permission)| user.can(*permission))
        .map(|(path, _, _)| *path)
}

/// A message at the top of a settings page: what a change did, or why it was refused.
pub enum Notice {
    Done(String),
    Refused(String),
}

/// A settings page: the heading, the tabs of the pages `user` may open (`current` marked), the
/// notice, and `body`.
fn settings_page(
    user: &ConsoleUser,
    title: &str,
    current: &str,
    notice: Option<&Notice>,
    body: Markup,
) -> Markup {
    layout(
        title,
        Some(user),
        html! {
            section.settings {
                h1 { "Settings" }
                nav.settings-tabs aria-label="Settings" {
                    @for (path, label, permission) in PAGES {
                        @if user.can(permission) {
                            @if path == current {
                                a.current href=(path) aria-current="page" { (label) }
                            } @else {
                                a href=(path) { (label) }
                            }
                        }
                    }
                }
                @match notice {
                    Some(Notice::Done(message)) => p.notice-done role="status" { (message) },
                    Some(Notice::Refused(message)) => p.error role="alert" { (message) },
                    None => {},
                }
                (body)
            }
        },
    )
}

/// The hidden CSRF field every form that changes something carries.
fn csrf_field(user: &ConsoleUser) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(user.csrf_token); }
}

/// The problem with one control, under it (nothing when there is none).
fn problem(problems: &Problems, key: &str) -> Markup {
    html! {
        @if let Some(message) = problems.get(key) {
            span.field-error id=(format!("{key}-error")) { (message) }
        }
    }
}

/// What is wrong with a submitted form, by control (the form's key for it), in words for the
/// person who filled it in.
type Problems = BTreeMap<String, String>;

/// "1 problem" / "2 problems", for the notice over a refused form.
fn refused_notice(problems: &Problems) -> Notice {
    let n = problems.len();
    Notice::Refused(format!(
        "Nothing was saved: {n} problem{} below.",
        if n == 1 { "" } else { "s" }
    ))
}

/// Back to a settings page after a change, with the notice code (`?done=saved`) and the thing
/// it is about, if any.
fn done(path: &str, code: &str, about: Option<&str>) -> Response {
    let mut location = format!("{path}?done={code}");
    if let Some(id) = about {
        location += "&id=";
        location += &super::render::encode_component(id);
    }
    Redirect::to(&location).into_response()
}

/// `?done=…&id=…` of a page's URL.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
    pub id: Option<String>,
}

/// A urlencoded form body as pairs, in order, with repeated names kept (the scope checkboxes),
/// which `axum::Form` into a struct cannot keep: a handler takes `Form<FormPairs>`.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct FormPairs(Vec<(String, String)>);

impl FormPairs {
    /// The first value of `name`, trimmed.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// The value of `name`, or empty.
    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// Every value of `name`, trimmed.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// Whether the form has `name` at all (a checkbox that is ticked, a button that was pressed).
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::render::decode_query;

    #[test]
    fn form_pairs_keep_repeated_names_and_trim() {
        let form = FormPairs(decode_query("name=+CI+&scope=read&scope=export&more="));
        assert_eq!(form.get("name"), Some("CI"));
        assert_eq!(form.all("scope").collect::<Vec<_>>(), ["read", "export"]);
        assert!(form.has("more") && !form.has("less"));
        assert_eq!(form.text("less"), "");
    }

    #[tokio::test]
    async fn a_form_body_reads_into_pairs_like_the_query_decoder() {
        use axum::Form;
        use axum::extract::{FromRequest, Request};
        let body = "name=+CI+&scope=read&scope=export&more=&x=%41%4&&c";
        let request = Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .unwrap();
        let Form(FormPairs(pairs)) = Form::<FormPairs>::from_request(request, &()).await.unwrap();
        assert_eq!(pairs, decode_query(body));
    }
}
