//! Signing in to the console, sessions, and CSRF protection.
//!
//! - **Sessions.** A successful sign-in makes a 32-byte random token (the OS source); the browser
//!   keeps it in the `stele_session` cookie (HttpOnly, SameSite=Lax, Path=/, `Secure` with
//!   `--secure-cookies`) and the store keeps only its SHA-256. [`ConsoleUser`] resolves the cookie
//!   to a member on every console request; sign-out revokes the session in the store, so a copied
//!   cookie stops working too.
//! - **CSRF.** Every state-changing console request must carry a token: the hidden `csrf` field of
//!   a form, or the `X-CSRF-Token` header of a fetch. [`csrf_guard`] checks it before any handler
//!   runs and answers 403 otherwise. Signed in, the token is HMAC-SHA256(secret, session token):
//!   per session, unguessable without the HttpOnly cookie, and nothing to store. On the sign-in
//!   form there is no session yet, so the form is tied to a random `stele_login` cookie the same
//!   way (a signed double-submit cookie): a page elsewhere can neither read that cookie nor
//!   compute the token for one it planted.
//! - **Rate limiting.** Failed sign-ins are counted per account and per client address
//!   (`rate_limit.rs`); past the limits, sign-in answers 429 without checking the password.
//! - **IP allowlist.** [`ConsoleUser`] also checks the organization's IP allowlist
//!   (`stele_service::access::org_policy`): a member connecting from elsewhere gets a 403 page, and
//!   the refusal is recorded. Signing out ([`SignedIn`]) is never refused.
//! - **The trail.** Sign-ins, sign-outs and failed sign-ins are recorded in the member's
//!   organization (`stele_service::trail::activity`). A failed sign-in for an email that names no
//!   member belongs to no organization, so it is only logged (at info).

use std::net::IpAddr;

use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use hex::FromHex;
use hmac::{Hmac, KeyInit, Mac};
use maud::{Markup, html};
use percent_encoding::{AsciiSet, utf8_percent_encode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use stele_core::time::Millis;
use stele_store::{Member, NewSession, OrgKey, SessionHash, email_key};
use subtle::ConstantTimeEq;

use super::render::COMPONENT;
use super::{ConsoleError, layout, page};
use crate::app::state::AppState;
use stele_service::access::members;
use stele_service::access::org_policy::{AccessError, Attempt};
use stele_service::access::roles::{Permission, Role};
use stele_service::random;
use stele_service::trail::activity::{self, Who};

use crate::app::client_ip;

pub const LOGIN_PATH: &str = "/console/login";
/// The session cookie: the session token, hex.
pub const SESSION_COOKIE: &str = "stele_session";
/// The sign-in form's cookie: a random nonce its CSRF token is tied to, hex.
pub const LOGIN_COOKIE: &str = "stele_login";
/// The hidden field of every console form that changes something.
pub const CSRF_FIELD: &str = "csrf";
/// The header of every console fetch that changes something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A session's `last_seen_at` is written at most this often (it costs a synced write).
const TOUCH_EVERY_MS: Millis = 60_000;
/// Form bodies the CSRF guard reads to find the token; console forms are small.
const MAX_FORM_BYTES: usize = 64 * 1024;

// --- the signed-in member --------------------------------------------------------------------

/// The member signed in to the console, from the session cookie. A console handler takes one to
/// require a session; without a valid session the request is redirected (303) to the sign-in page,
/// which comes back to the page asked for afterwards.
///
/// ```ignore
/// async fn show(user: ConsoleUser) -> Result<Markup, PermissionDenied> {
///     user.require(Permission::AuditLogView)?;
///     Ok(layout("Audit log", Some(&user), html! { … }))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    /// `mem_…`
    pub member_id: String,
    /// The organization's store key: what every store call takes.
    pub org: OrgKey,
    /// The organization's public id (`org_…`) and name.
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// The session's CSRF token: the hidden `csrf` field of every POST form, the `X-CSRF-Token`
    /// header of every state-changing fetch (the layout also puts it in
    /// `<meta name="csrf-token">`, where `console.js` finds it).
    pub csrf_token: String,
    /// The person's other organizations they may switch to (enabled memberships), by name: the
    /// header's switcher. Empty for a person of one organization.
    pub other_organizations: Vec<OrgChoice>,
    session: SessionHash,
}

/// Another organization of the signed-in person, for the switcher.
#[derive(Debug, Clone)]
pub struct OrgChoice {
    /// The membership there (`mem_…`), what the switcher posts.
    pub member_id: String,
    pub org: OrgKey,
    pub org_id: String,
    pub org_name: String,
}

impl ConsoleUser {
    pub fn can(&self, permission: Permission) -> bool {
        self.role.has(permission)
    }

    /// `Ok` when the member's role grants `permission`; otherwise the permission page (403),
    /// which a handler returns with `?`.
    pub fn require(&self, permission: Permission) -> Result<(), PermissionDenied> {
        if self.can(permission) {
            return Ok(());
        }
        Err(PermissionDenied {
            page: layout(
                "No access",
                Some(self),
                html! {
                    section.notice.denied {
                        h1 { "You don't have permission to " (permission.describe()) }
                        p {
                            "This needs the permission " code.permission { (permission) }
                            ", which the role " strong { (self.role) } " does not have in "
                            (self.org_name) "."
                        }
                        p { "Ask an owner or an admin of " (self.org_name) " to change your role." }
                    }
                },
            ),
        })
    }

    /// The name, or the email for a member without one.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.email)
    }

    /// The member, as Stele's own entries name them (`stele_service::trail::activity`).
    pub fn who(&self) -> Who<'_> {
        Who {
            id: &self.member_id,
            name: self.name.as_deref(),
            email: &self.email,
        }
    }
}

/// The permission page: HTTP 403 with the layout, what was denied and which permission it takes.
#[derive(Debug)]
pub struct PermissionDenied {
    page: Markup,
}

impl IntoResponse for PermissionDenied {
    fn into_response(self) -> Response {
        page(StatusCode::FORBIDDEN, self.page)
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    /// The member of the session, if the organization's IP allowlist includes the client's
    /// address; otherwise a 403 page, and the refusal is recorded
    /// (`stele_service::access::org_policy`).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let user = signed_in(parts, state).await?;
        let client = Client::of(parts, state);
        let attempt = Attempt {
            actor: activity::member_actor(user.who()),
            context: client.context(),
            method: parts.method.as_str(),
            path: parts.uri.path(),
        };
        match state.policies.admit(user.org, client.ip, attempt).await {
            Ok(()) => Ok(user),
            Err(AccessError::NotAllowed { ip }) => Err(not_on_allowlist(&user, ip)),
            Err(AccessError::Store(e)) => Err(ConsoleError::from(e).into_response()),
        }
    }
}

/// The signed-in member wherever they connect from: only for signing out, which the IP allowlist
/// must never prevent.
pub struct SignedIn(pub ConsoleUser);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        signed_in(parts, state).await.map(SignedIn)
    }
}

/// The member of the request's session cookie, or the way to the sign-in page.
async fn signed_in(parts: &Parts, state: &AppState) -> Result<ConsoleUser, Response> {
    let token = cookie(&parts.headers, SESSION_COOKIE).and_then(unhex32);
    let Some(token) = token else {
        return Err(to_sign_in(parts, false));
    };
    let hash = session_hash(&token);
    let now = state.clock.now();
    let session = state
        .store
        .session(&hash, now)
        .await
        .map_err(|e| ConsoleError::from(e).into_response())?;
    let Some(session) = session else {
        return Err(to_sign_in(parts, true));
    };
    if now - session.last_seen_at >= TOUCH_EVERY_MS
        && let Err(error) = state.store.touch_session(&hash, now).await
    {
        tracing::warn!(%error, "recording a session's last use failed");
    }
    let member = session.member;
    // One indexed read per console page, for the header's switcher. Only the person's own
    // memberships, and only the organizations' names and ids go into the page.
    let mut other_organizations: Vec<OrgChoice> = state
        .store
        .memberships_by_email(&member.email)
        .await
        .map_err(|e| ConsoleError::from(e).into_response())?
        .into_iter()
        .filter(|m| m.id != member.id && !m.disabled)
        .map(|m| OrgChoice {
            member_id: m.id,
            org: m.org,
            org_id: m.org_id,
            org_name: m.org_name,
        })
        .collect();
    other_organizations.sort_by(|a, b| a.org_name.cmp(&b.org_name));
    let role = Role::parse(&member.role).unwrap_or_else(|| {
        // Only Stele writes roles, so this is a newer version's role or a hand edit: grant
        // the least.
        tracing::error!(member = %member.id, role = %member.role, "unknown role; treated as `member`");
        Role::Member
    });
    Ok(ConsoleUser {
        csrf_token: session_csrf(&state.console.secret, &token),
        member_id: member.id,
        org: member.org,
        org_id: member.org_id,
        org_name: member.org_name,
        email: member.email,
        name: member.name,
        role,
        other_organizations,
        session: hash,
    })
}

/// The page a member gets from an address their organization's IP allowlist leaves out (403),
/// with the header's Sign out, which still works.
fn not_on_allowlist(user: &ConsoleUser, ip: Option<IpAddr>) -> Response {
    let address = ip.map_or("an address Stele cannot determine".to_string(), |ip| {
        ip.to_string()
    });
    page(
        StatusCode::FORBIDDEN,
        layout(
            "Not from this network",
            Some(user),
            html! {
                section.notice.denied {
                    h1 { "Not available from this network" }
                    p {
                        (user.org_name) " accepts console and API reads only from the networks on "
                        "its IP allowlist, and your request comes from " code.ip { (address) } "."
                    }
                    p { "Connect from an allowed network, or ask an admin of " (user.org_name)
                        " to add yours. This refusal is recorded in the audit log." }
                }
            },
        ),
    )
}

/// 303 to the sign-in page, coming back to this page (for a GET) afterwards. `clear` also removes
/// a session cookie that no longer names a live session.
fn to_sign_in(parts: &Parts, clear: bool) -> Response {
    let back = if parts.method == Method::GET {
        parts
            .uri
            .path_and_query()
            .map_or("/console", |p| p.as_str())
    } else {
        "/console"
    };
    let location = format!(
        "{LOGIN_PATH}?next={}",
        percent_encode(safe_next(Some(back)))
    );
    let mut response = see_other(&location);
    if clear {
        response
            .headers_mut()
            .append(SET_COOKIE, expired_cookie(SESSION_COOKIE, "/", false));
    }
    response
}

// --- sign-in and sign-out ----------------------------------------------------------------------

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// `GET /console/login`: the sign-in form (or, signed in already, straight on to `next`).
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<NextParam>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(params.next.as_deref());
    if let Some(token) = cookie(&headers, SESSION_COOKIE).and_then(unhex32)
        && state
            .store
            .session(&session_hash(&token), state.clock.now())
            .await?
            .is_some()
    {
        return Ok(see_other(next));
    }
    let (form, set_cookie) = login_form_token(&state, &headers);
    let mut response = page(StatusCode::OK, sign_in_page(&form, next, "", None));
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /console/login` (the CSRF guard has checked the form's token already).
pub async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let email = form.email.trim().to_string();
    let next = safe_next(form.next.as_deref()).to_string();
    let account = email_key(&email);
    let limiter = &state.console.limiter;
    let again = |status: StatusCode, message: &str| -> Result<Response, ConsoleError> {
        let (token, set_cookie) = login_form_token(&state, &headers);
        let mut response = page(status, sign_in_page(&token, &next, &email, Some(message)));
        if let Some(cookie) = set_cookie {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        Ok(response)
    };

    if let Err(blocked) = limiter.check(&account, client.ip, now) {
        let limits = limiter.limits();
        let minutes = (blocked.retry_after_ms() + 59_999) / 60_000;
        let window = limits.window_ms / 60_000;
        let message = match blocked {
            super::Blocked::Account { .. } => format!(
                "Too many failed sign-ins for this account ({} in {window} minutes). Try again \
                 in {minutes} minute{}.",
                limits.per_account,
                if minutes == 1 { "" } else { "s" }
            ),
            super::Blocked::Ip { .. } => format!(
                "Too many failed sign-ins from your network address ({} in {window} minutes). \
                 Try again in {minutes} minute{}.",
                limits.per_ip,
                if minutes == 1 { "" } else { "s" }
            ),
        };
        // Never the typed email: a password typed into the email field would land in the log.
        tracing::info!(ip = ?client.ip, "sign-in refused: rate limited");
        let mut response = again(StatusCode::TOO_MANY_REQUESTS, &message)?;
        let seconds = (blocked.retry_after_ms() + 999) / 1000;
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        return Ok(response);
    }

    // Every membership of the person, the one they used last first. The password is the
    // person's, so it is checked once, against the first (all share the hash).
    let memberships = if email.is_empty() {
        Vec::new()
    } else {
        state.store.memberships_by_email(&email).await?
    };
    let password = form.password;
    let hash = memberships.first().map(|m| m.password_hash.clone());
    let password_ok = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => members::verify_password(&password, &hash),
        None => {
            members::verify_nothing(&password);
            false
        }
    })
    .await
    .map_err(|e| ConsoleError::Internal(format!("password check task: {e}")))?;

    const WRONG: &str = "Wrong email or password.";
    let Some(first) = memberships.first() else {
        limiter.failed(&account, client.ip, now);
        tracing::info!(ip = ?client.ip, "failed sign-in: no member has this email");
        return again(StatusCode::UNAUTHORIZED, WRONG);
    };
    // Where the session starts: the first membership that is not disabled, in the store's order
    // (the one used last, then by how recently used, then oldest first).
    let enabled = memberships.iter().find(|m| !m.disabled);
    let member = match (password_ok, enabled) {
        (true, Some(member)) => member,
        (password_ok, _) => {
            let reason = if password_ok {
                "the account is disabled"
            } else {
                "wrong password"
            };
            limiter.failed(&account, client.ip, now);
            // Recorded once, in the organization the person used last (where a successful
            // sign-in would most likely have gone), not in each of theirs: one attempt is one
            // entry, and no organization's trail learns from it that the person has others.
            let event = activity::login_failed(&email, first.into(), reason, client.context(), now);
            // Written beside the answer, not before it: an answer that waited for the write
            // would come later for an existing account than for an unknown email (which has no
            // trail to write to), telling which emails have accounts.
            let (store, org, member) = (state.store.clone(), first.org, first.id.clone());
            tokio::spawn(async move {
                if let Err(error) = stele_service::trail::record(store.as_ref(), org, event).await {
                    tracing::error!(%error, %member, "recording a failed sign-in failed");
                }
            });
            return again(StatusCode::UNAUTHORIZED, WRONG);
        }
    };
    limiter.succeeded(&account);
    start_session(&state, member, &client, now, &next).await
}

/// Records the sign-in, then starts the session and sets its cookie. Recorded first: a session
/// never exists without its `login` entry.
async fn start_session(
    state: &AppState,
    member: &Member,
    client: &Client,
    now: Millis,
    next: &str,
) -> Result<Response, ConsoleError> {
    let event = activity::login(member.into(), client.context(), now);
    stele_service::trail::record(state.store.as_ref(), member.org, event).await?;
    let token = random::bytes::<32>();
    let ttl_ms = state.console.session_ttl.as_millis() as Millis;
    state
        .store
        .create_session(NewSession {
            token_hash: session_hash(&token),
            member_id: member.id.clone(),
            created_at: now,
            expires_at: now + ttl_ms,
        })
        .await?;
    // Housekeeping: sessions that ended are of no use to anyone.
    if let Err(error) = state.store.forget_sessions(now).await {
        tracing::warn!(%error, "forgetting ended sessions failed");
    }
    let secure = state.console.secure_cookies;
    let mut response = see_other(next);
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &hex::encode(token),
            "/",
            Some(ttl_ms / 1000),
            secure,
        ),
    );
    headers.append(SET_COOKIE, expired_cookie(LOGIN_COOKIE, LOGIN_PATH, secure));
    Ok(response)
}

/// Where the header's organization switcher posts.
pub const SWITCH_PATH: &str = "/console/switch-organization";

#[derive(Deserialize)]
pub struct SwitchForm {
    /// The membership (`mem_…`) to move the session to.
    #[serde(default)]
    member: String,
}

/// `POST /console/switch-organization`: moves the session to another organization of the signed-in
/// person (the CSRF guard has checked the form's token), records it there as a sign-in, and goes
/// to that organization's log, where its own role and IP allowlist apply. Any membership that is
/// not the person's own enabled one is refused with a 403 page, the session staying where it was.
/// It takes [`SignedIn`], not [`ConsoleUser`]: the current organization's IP allowlist must not
/// keep someone from switching to another organization, as it never keeps them from signing out.
pub async fn switch_organization(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    client: Client,
    Form(form): Form<SwitchForm>,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let refused = |user: &ConsoleUser| {
        page(
            StatusCode::FORBIDDEN,
            layout(
                "Cannot switch organization",
                Some(user),
                html! {
                    section.notice.denied {
                        h1 { "You cannot switch to that organization" }
                        p { "You are not a member of it, or your membership there is disabled." }
                        p { a href="/console" { "Back to " (user.org_name) } }
                    }
                },
            ),
        )
    };
    let Some(target) = user
        .other_organizations
        .iter()
        .find(|o| o.member_id == form.member)
    else {
        tracing::info!(member = %user.member_id, target = %form.member, "organization switch refused");
        return Ok(refused(&user));
    };
    // Recorded first, as a sign-in is: a session is never in an organization without the entry
    // that says how it got there.
    let who = Who {
        id: &target.member_id,
        name: user.name.as_deref(),
        email: &user.email,
    };
    let event = activity::switched_in(who, client.context(), now);
    stele_service::trail::record(state.store.as_ref(), target.org, event).await?;
    match state
        .store
        .switch_session(&user.session, &target.member_id, now)
        .await?
    {
        Some(_) => Ok(see_other("/console")),
        // Disabled or removed there a moment ago.
        None => Ok(refused(&user)),
    }
}

/// `POST /console/logout`: ends the session here and in the store, and records it.
pub async fn logout(
    State(state): State<AppState>,
    SignedIn(user): SignedIn,
    client: Client,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    state.store.revoke_session(&user.session, now).await?;
    let event = activity::logout(user.who(), client.context(), now);
    if let Err(error) = stele_service::trail::record(state.store.as_ref(), user.org, event).await {
        tracing::error!(%error, member = %user.member_id, "recording a sign-out failed");
    }
    let mut response = see_other(LOGIN_PATH);
    response.headers_mut().append(
        SET_COOKIE,
        expired_cookie(SESSION_COOKIE, "/", state.console.secure_cookies),
    );
    Ok(response)
}

fn sign_in_page(csrf: &str, next: &str, email: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            section.signin {
                h1 { "Sign in" }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action=(LOGIN_PATH) {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="email" { "Email" }
                    input #email type="email" name="email" value=(email) autocomplete="username"
                        required autofocus[email.is_empty()];
                    label for="password" { "Password" }
                    input #password type="password" name="password"
                        autocomplete="current-password" required autofocus[!email.is_empty()];
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The sign-in form's CSRF token, from the `stele_login` cookie the browser has, or from a new
/// one (returned as the `Set-Cookie` to send).
fn login_form_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    pre_session_form_token(state, headers, LOGIN_PATH)
}

/// The cookie holding the CSRF nonce of the password-set form.
pub const PASSWORD_COOKIE: &str = "stele_password";

/// The pages whose form is sent before any session exists (signing in, setting a password
/// through a link), and the cookie each one's CSRF nonce lives in, scoped to the page's path.
fn pre_session_cookie(path: &str) -> Option<&'static str> {
    match path {
        LOGIN_PATH => Some(LOGIN_COOKIE),
        super::password_page::SET_PASSWORD_PATH => Some(PASSWORD_COOKIE),
        _ => None,
    }
}

/// The CSRF token of a pre-session form at `path`, from the nonce cookie the browser has, or from
/// a new one (returned as the `Set-Cookie` to send).
pub fn pre_session_form_token(
    state: &AppState,
    headers: &HeaderMap,
    path: &'static str,
) -> (String, Option<HeaderValue>) {
    let name = pre_session_cookie(path).expect("a pre-session form's path");
    if let Some(nonce) = cookie(headers, name).and_then(unhex32) {
        return (login_csrf(&state.console.secret, &nonce), None);
    }
    let nonce = random::bytes::<32>();
    let cookie = set_cookie(
        name,
        &hex::encode(nonce),
        path,
        None,
        state.console.secure_cookies,
    );
    (login_csrf(&state.console.secret, &nonce), Some(cookie))
}

// --- CSRF ----------------------------------------------------------------------------------------

/// Refuses (403) every state-changing console request whose CSRF token is missing or wrong: the
/// `X-CSRF-Token` header, or else the `csrf` field of a urlencoded form. On the sign-in form the
/// token must match the `stele_login` cookie; everywhere else, the session cookie.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let secret = &state.console.secret;
    let pre_session = pre_session_cookie(request.uri().path());
    let on_sign_in = pre_session.is_some();
    let expected = if let Some(name) = pre_session {
        cookie(request.headers(), name)
            .and_then(unhex32)
            .map(|nonce| login_csrf(secret, &nonce))
    } else {
        cookie(request.headers(), SESSION_COOKIE)
            .and_then(unhex32)
            .map(|token| session_csrf(secret, &token))
    };
    let Some(expected) = expected else {
        return csrf_refused(on_sign_in);
    };
    if let Some(given) = request.headers().get(CSRF_HEADER) {
        return if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            next.run(request).await
        } else {
            csrf_refused(on_sign_in)
        };
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return csrf_refused(on_sign_in);
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    #[derive(Deserialize)]
    struct Token {
        csrf: Option<String>,
    }
    let probe = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    let given = Form::<Token>::from_request(probe, &())
        .await
        .ok()
        .and_then(|Form(t)| t.csrf);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => csrf_refused(on_sign_in),
    }
}

fn csrf_refused(on_sign_in: bool) -> Response {
    let (title, message) = if on_sign_in {
        (
            "The sign-in form expired",
            "The form was not sent from this server's sign-in page, or your browser did not \
             send its cookie. Reload the sign-in page and try again (Stele needs cookies).",
        )
    } else {
        (
            "This form expired",
            "The request did not carry this session's security token, so nothing was changed. \
             Go back, reload the page and try again, or sign in again.",
        )
    };
    page(
        StatusCode::FORBIDDEN,
        layout(
            title,
            None,
            html! {
                section.notice {
                    h1 { (title) }
                    p { (message) }
                    p { a href=(LOGIN_PATH) { "Go to the sign-in page" } }
                }
            },
        ),
    )
}

// --- the client ----------------------------------------------------------------------------------

/// Who is on the other end of a console request, for rate limiting, the IP allowlist and the
/// context of Stele's own entries. The address is the client's as `crate::app::client_ip::client_ip`
/// decides it: the TCP peer's, or behind a trusted proxy the one it forwards (docs/console.md).
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn context(&self) -> stele_core::event::Context {
        activity::web_context(self.ip.map(|ip| ip.to_string()), self.user_agent.clone())
    }

    fn of(parts: &Parts, state: &AppState) -> Client {
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Client {
            ip: client_ip::client_ip(parts, &state.proxies),
            user_agent,
        }
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client::of(parts, state))
    }
}

// --- cookies, tokens, redirects -----------------------------------------------------------------

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)?
        .value_raw()
        .map(|v| v.trim_matches('"'))
}

/// A console cookie: HttpOnly, SameSite=Lax, `Secure` with `--secure-cookies`.
fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age_s: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut cookie = Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if let Some(seconds) = max_age_s {
        cookie = cookie.max_age(Duration::seconds(seconds));
    }
    HeaderValue::from_str(&cookie.to_string()).expect("cookie names and hex values are header-safe")
}

/// Tells the browser to drop cookie `name` (empty, `Max-Age=0`).
fn expired_cookie(name: &str, path: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", path, Some(0), secure)
}

fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/console"));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// Where to go after signing in: a console page of this server, never another site (`next` comes
/// from the URL, so anything else would be an open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/console" || n.starts_with("/console/") || n.starts_with("/console?"))
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !n.starts_with(LOGIN_PATH) =>
        {
            n
        }
        _ => "/console",
    }
}

/// What `?next=` leaves as it is: the unreserved characters and `/`.
const NEXT_VALUE: &AsciiSet = &COMPONENT.remove(b'/');

/// Percent-encodes all but unreserved characters and `/` (for `?next=`).
fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, NEXT_VALUE).to_string()
}

fn session_hash(token: &[u8; 32]) -> SessionHash {
    SessionHash(Sha256::digest(token).into())
}

fn session_csrf(secret: &[u8; 32], token: &[u8; 32]) -> String {
    hex::encode(hmac_sha256(
        secret,
        &[b"session\0".as_slice(), token].concat(),
    ))
}

fn login_csrf(secret: &[u8; 32], nonce: &[u8; 32]) -> String {
    hex::encode(hmac_sha256(
        secret,
        &[b"login\0".as_slice(), nonce].concat(),
    ))
}

/// A cookie's 64 hex digits as the 32 bytes they encode.
fn unhex32(s: &str) -> Option<[u8; 32]> {
    <[u8; 32]>::from_hex(s).ok()
}

/// HMAC-SHA256 (RFC 2104). `hmac` 0.13 takes the `sha2` 0.11 that postgres-protocol already
/// brings (the workspace's own `sha2` is 0.10): see the root Cargo.toml.
type HmacSha256 = Hmac<hmac_sha2::Sha256>;

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how much of a guessed token was right (the length is no secret: always 64).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            expected
        );
        // The console's 32-byte secret is used as is: a key shorter than the block is
        // zero-padded, so the same key padded to 32 bytes gives the same MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"what do ya want for nothing?")),
            expected
        );
    }

    #[test]
    fn csrf_tokens_are_pinned() {
        // Computed with Python's `hmac` module, so tokens issued before a change of HMAC code
        // stay valid after it.
        let (secret, input) = ([1u8; 32], [7u8; 32]);
        assert_eq!(
            session_csrf(&secret, &input),
            "842187fb4eaddf007059b2e68f115c504566756889b087d5d47de0521d1941af"
        );
        assert_eq!(
            login_csrf(&secret, &input),
            "28db34dc48f7d50e43dccf493aebc7036ab677bdcdb2d2446a52a64927e430ce"
        );
    }

    #[test]
    fn tokens_and_cookies_round_trip() {
        let token = [7u8; 32];
        assert_eq!(unhex32(&hex::encode(token)), Some(token));
        assert_eq!(unhex32("zz"), None);
        assert_eq!(unhex32(&"é".repeat(32)), None);
        let secret = [1u8; 32];
        assert_ne!(session_csrf(&secret, &token), login_csrf(&secret, &token));
        assert_ne!(
            session_csrf(&secret, &token),
            session_csrf(&[2u8; 32], &token)
        );
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; stele_session=abc"));
        headers.append(COOKIE, HeaderValue::from_static("stele_login=def"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("def"));
        assert_eq!(cookie(&headers, "b"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn set_cookie_lines_carry_the_console_attributes() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "ab12", "/", Some(43_200), true),
            "stele_session=ab12; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=43200"
        );
        assert_eq!(
            set_cookie(LOGIN_COOKIE, "cd34", LOGIN_PATH, None, false),
            "stele_login=cd34; HttpOnly; SameSite=Lax; Path=/console/login"
        );
        assert_eq!(
            expired_cookie(SESSION_COOKIE, "/", false),
            "stele_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"
        );
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("x=1;stele_login=\"ef\"; broken"),
        );
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("ef"));
    }

    #[test]
    fn next_stays_on_the_console() {
        for (given, kept) in [
            (Some("/console"), "/console"),
            (
                Some("/console/log?action=update"),
                "/console/log?action=update",
            ),
            (Some("/console?x=1"), "/console?x=1"),
            (None, "/console"),
            (Some("https://evil.example/console"), "/console"),
            (Some("//evil.example"), "/console"),
            (Some("/console//evil.example"), "/console"),
            (Some("/console/\\evil"), "/console"),
            (Some("/consoleevil"), "/console"),
            (Some("/console/login?next=/x"), "/console"),
            (Some("/console/a b"), "/console"),
        ] {
            assert_eq!(safe_next(given), kept, "{given:?}");
        }
        assert_eq!(
            percent_encode("/console/log?a=b&c=d"),
            "/console/log%3Fa%3Db%26c%3Dd"
        );
    }
}
