//! `/console/set-password?token=psl_…`: where a one-time password-set link opens. A member added
//! without a password (over the organizations API) or sent a reset (`stele user
//! reset-password`) chooses their password here; setting it uses the link up, ends their
//! sessions and is recorded (`member.password_set`). The form is guarded like the sign-in form:
//! a CSRF nonce in a cookie scoped to this page.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use stele_service::access::members::{self, MIN_PASSWORD_CHARS, PasswordLinkError};

use super::auth::{CSRF_FIELD, Client, LOGIN_PATH, pre_session_form_token};
use super::{ConsoleError, layout, page};
use crate::app::state::AppState;

pub const SET_PASSWORD_PATH: &str = "/console/set-password";

#[derive(Deserialize)]
pub struct TokenParam {
    #[serde(default)]
    token: String,
}

/// `GET /console/set-password?token=…`: the form, if the link still works.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(TokenParam { token }): Query<TokenParam>,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let member =
        members::member_of_link(state.store.as_ref(), &state.password_links, &token, now).await;
    let member = match member {
        Ok(member) => member,
        Err(PasswordLinkError::Store(e)) => return Err(e.into()),
        Err(e) => return Ok(page(StatusCode::GONE, link_not_working(&e.to_string()))),
    };
    let (csrf, set_cookie) = pre_session_form_token(&state, &headers, SET_PASSWORD_PATH);
    let mut response = page(
        StatusCode::OK,
        password_form(&csrf, &token, &member.email, &member.org_name, None),
    );
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /console/set-password` (the CSRF guard has checked the form's token already).
pub async fn set(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Form(form): Form<PasswordForm>,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let store = state.store.as_ref();
    let again = |message: &str, email: &str, org: &str| {
        let (csrf, _) = pre_session_form_token(&state, &headers, SET_PASSWORD_PATH);
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_form(&csrf, &form.token, email, org, Some(message)),
        )
    };
    let member = match members::member_of_link(store, &state.password_links, &form.token, now).await
    {
        Ok(member) => member,
        Err(PasswordLinkError::Store(e)) => return Err(e.into()),
        Err(e) => return Ok(page(StatusCode::GONE, link_not_working(&e.to_string()))),
    };
    if form.password != form.repeat {
        return Ok(again(
            "The two passwords differ.",
            &member.email,
            &member.org_name,
        ));
    }
    let result = members::set_password_with_link(
        store,
        &state.password_links,
        &form.token,
        &form.password,
        client.context(),
        now,
    )
    .await;
    match result {
        Ok(member) => Ok(page(
            StatusCode::OK,
            layout(
                "Password set",
                None,
                html! {
                    section.notice {
                        h1 { "Your password is set" }
                        p { "Sign in as " strong { (member.email) } " with it." }
                        p { a href=(LOGIN_PATH) { "Sign in" } }
                    }
                },
            ),
        )),
        Err(PasswordLinkError::BadPassword(message)) => {
            Ok(again(&message, &member.email, &member.org_name))
        }
        Err(PasswordLinkError::Store(e)) => Err(e.into()),
        Err(e) => Ok(page(StatusCode::GONE, link_not_working(&e.to_string()))),
    }
}

fn password_form(csrf: &str, token: &str, email: &str, org: &str, error: Option<&str>) -> Markup {
    layout(
        "Set your password",
        None,
        html! {
            section.signin {
                h1 { "Set your password" }
                p { "For " strong { (email) } " in " (org) "." }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action=(SET_PASSWORD_PATH) {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    input type="hidden" name="token" value=(token);
                    input type="hidden" name="username" value=(email) autocomplete="username";
                    label for="password" { "New password (at least " (MIN_PASSWORD_CHARS) " characters)" }
                    input #password type="password" name="password" autocomplete="new-password"
                        required autofocus;
                    label for="repeat" { "Repeat it" }
                    input #repeat type="password" name="repeat" autocomplete="new-password" required;
                    button type="submit" { "Set password" }
                }
            }
        },
    )
}

fn link_not_working(reason: &str) -> Markup {
    layout(
        "Link not working",
        None,
        html! {
            section.notice {
                h1 { "This link does not work" }
                p { (reason) "." }
                p { "Ask whoever sent it for a new one." }
            }
        },
    )
}
