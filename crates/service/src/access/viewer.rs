//! Viewer tokens: a short-lived pass that shows one organization's audit log inside another
//! product's page (the embedded viewer, `/embed/…`), minted by a platform key with the `viewer`
//! scope or by an organization's admin key (docs/platforms.md).
//!
//! A token is stateless: its claims (organization, viewer, permissions, fixed filters, theme,
//! the minting key, deadlines) as JSON, signed with HMAC-SHA256 under a secret derived from the
//! checkpoint signing key, so every server sharing the key accepts it and none needs a table.
//! Two kinds:
//!
//! - an **opening** token, what [`mint`] returns: it opens a session once, within its time to open
//!   (5 minutes unless the request says otherwise);
//! - a **session** token, what every page of the viewer carries in its links: it lives
//!   [`SESSION_IDLE_MS`] after the page that carried it was served (each page gets a fresh one,
//!   so a session lives while it is used), and never past the session's end, which the opening
//!   token fixed (at most [`MAX_SESSION_MS`] after it was minted).
//!
//! Fixed filters narrow everything the token can ever show: the viewer's own filters combine with
//! them and can never widen them.

use serde::{Deserialize, Serialize};
use stele_core::time::Millis;

use stele_store::{Organization, Store, StoreError};

use crate::secrets::{SignatureError, TokenSigner};
use crate::trail::{self, By, activity};

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "svt_";
/// How long an opening token may wait to be opened, unless the request says otherwise.
pub const DEFAULT_OPEN_MS: Millis = 5 * 60 * 1000;
/// The longest an opening token may wait.
pub const MAX_OPEN_MS: Millis = 60 * 60 * 1000;
/// A session's end: at most this long after its token was minted.
pub const MAX_SESSION_MS: Millis = 12 * 60 * 60 * 1000;
/// A session's default end, unless the request says otherwise.
pub const DEFAULT_SESSION_MS: Millis = 60 * 60 * 1000;
/// How long a page's session token lives after the page was served.
pub const SESSION_IDLE_MS: Millis = 15 * 60 * 1000;

/// Which kind of token (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Open,
    Session,
}

/// Who is looking, as the platform names them (recorded as the actor of their viewing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// What a viewer may do besides reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Read,
    Export,
    /// Manage the organization's log streams in the embedded pages (`/embed/streams`): what
    /// WorkOS's `log_streams` portal link opens. Only a key with the `admin` scope may grant it:
    /// a stream sends the whole trail wherever it is pointed.
    Streams,
}

/// Filters fixed by the token: the viewer sees only what they select.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedFilters {
    /// One record's history (with `entity_id`): the per-record view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// Only entries by this actor (id or email): a viewer limited to their own actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only entries of this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl FixedFilters {
    /// The record of a per-record view.
    pub fn record(&self) -> Option<(&str, &str)> {
        Some((self.entity_type.as_deref()?, self.entity_id.as_deref()?))
    }

    /// The filters as `GET /v1/events` parameters (the record's as `entity_type`/`entity_id`).
    pub fn params(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (name, value) in [
            ("entity_type", &self.entity_type),
            ("entity_id", &self.entity_id),
            ("actor", &self.actor),
            ("channel", &self.channel),
        ] {
            if let Some(value) = value {
                out.push((name, value.as_str()));
            }
        }
        out
    }

    /// Whether `entry` is one the fixed filters select: the record as its primary entity or among
    /// a bulk action's ids, the actor by id or email (any case), the channel.
    pub fn admits(&self, entry: &stele_core::Entry) -> bool {
        let e = &entry.event;
        let record = self.record().is_none_or(|(t, id)| {
            e.entity.as_ref().is_some_and(|x| {
                x.kind == t && (x.id.as_deref() == Some(id) || e.entity_ids.iter().any(|i| i == id))
            })
        });
        let actor = self.actor.as_deref().is_none_or(|a| {
            e.actor.id.as_deref() == Some(a)
                || e.actor
                    .email
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(a))
        });
        let channel = self.channel.as_deref().is_none_or(|c| e.channel == c);
        record && actor && channel
    }

    /// `params` with every fixed filter in force: a parameter the token fixes is replaced by its
    /// fixed value (so a viewer can narrow within the fixed filters, never widen them).
    pub fn apply(&self, params: &[(String, String)]) -> Vec<(String, String)> {
        let fixed = self.params();
        let mut out: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| !fixed.iter().any(|(f, _)| f == k))
            .cloned()
            .collect();
        out.extend(fixed.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        out
    }
}

/// The embedded viewer's look as a token sets it: each field it leaves unset comes from the
/// organization's settings, then from the platform organization's ([`Theme::or`];
/// `embed_theme` in the settings), then from the page's own defaults.
pub use stele_store::EmbedTheme as Theme;

/// What a token says. Signed; never trusted unsigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub kind: Kind,
    /// The organization's public id (`org_…`).
    pub org: String,
    pub viewer: Viewer,
    pub permissions: Vec<Permission>,
    #[serde(default)]
    pub filters: FixedFilters,
    #[serde(default)]
    pub theme: Theme,
    /// The id of the API key that minted the opening token.
    pub minted_by: String,
    /// An opening token's time to open, or a session token's idle deadline.
    pub expires_at: Millis,
    /// The session's end: no session token lives past it.
    pub session_ends_at: Millis,
}

impl Claims {
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// The session token for a page served at `now`: the same claims, living
    /// [`SESSION_IDLE_MS`] more, never past the session's end.
    pub fn session(&self, now: Millis) -> Claims {
        Claims {
            kind: Kind::Session,
            expires_at: (now + SESSION_IDLE_MS).min(self.session_ends_at),
            ..self.clone()
        }
    }
}

/// Why a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this is not a viewer token")]
    Malformed,
    #[error("the viewer token is not valid")]
    BadSignature,
    #[error("the viewer token has expired")]
    Expired,
    #[error("this viewer token is for another use")]
    WrongKind,
}

/// The token text of viewer `claims`.
pub fn sign(signer: &TokenSigner, claims: &Claims) -> String {
    signer.sign_claims(TOKEN_PREFIX, claims)
}

/// The claims of a viewer token of this kind, signed by `signer`, that is valid at `now`.
pub fn verify(
    signer: &TokenSigner,
    token: &str,
    kind: Kind,
    now: Millis,
) -> Result<Claims, TokenError> {
    let claims: Claims = signer
        .verify_claims(TOKEN_PREFIX, token)
        .map_err(|e| match e {
            SignatureError::Malformed => TokenError::Malformed,
            SignatureError::BadSignature => TokenError::BadSignature,
        })?;
    if claims.kind != kind {
        return Err(TokenError::WrongKind);
    }
    if now >= claims.expires_at || now >= claims.session_ends_at {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// A request to mint a token, as the API reads it (already typed).
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub viewer: Viewer,
    pub permissions: Vec<Permission>,
    pub filters: FixedFilters,
    pub theme: Theme,
    /// How long the token may wait to be opened, in seconds.
    pub ttl_seconds: Option<u64>,
    /// How long the session may last at most, in seconds.
    pub session_seconds: Option<u64>,
}

/// A field of a mint request that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MintProblem {
    pub field: String,
    pub message: String,
}

fn problem(field: &str, message: impl Into<String>) -> MintProblem {
    MintProblem {
        field: field.into(),
        message: message.into(),
    }
}

fn one_line(field: &str, value: &str, max: usize) -> Result<(), MintProblem> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(problem(
            field,
            format!("must be one line of 1 to {max} characters"),
        ));
    }
    Ok(())
}

/// Why a token was not minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(MintProblem),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Mints a viewer token for `org` (the API's `POST /v1/viewer-tokens`): checks the request,
/// signs its claims and records the minting (`viewer_token.create`) in the organization's trail,
/// and in the platform's when `by` acts for it. `key_id` is the minting key, which the token and
/// every viewing it opens name. Returns the token and its claims.
pub async fn mint(
    store: &dyn Store,
    signer: &TokenSigner,
    org: &Organization,
    key_id: &str,
    request: MintRequest,
    by: By,
    now: Millis,
) -> Result<(String, Claims), MintError> {
    let claims = claims_for(request, &org.id, key_id, now).map_err(MintError::Invalid)?;
    let token = sign(signer, &claims);
    let event = activity::viewer_token_created(by.actor.clone(), by.context.clone(), &claims, now);
    trail::record_by(store, org.key, event, &by).await?;
    Ok((token, claims))
}

/// Checks a mint request and returns the opening token's claims for organization `org_id`,
/// minted by key `key_id` at `now`.
pub fn claims_for(
    request: MintRequest,
    org_id: &str,
    key_id: &str,
    now: Millis,
) -> Result<Claims, MintProblem> {
    one_line("viewer.id", &request.viewer.id, 256)?;
    if let Some(name) = &request.viewer.name {
        one_line("viewer.name", name, 256)?;
    }
    if let Some(email) = &request.viewer.email {
        one_line("viewer.email", email, 256)?;
    }
    let f = &request.filters;
    if f.entity_type.is_some() != f.entity_id.is_some() {
        return Err(problem(
            "filters.entity_id",
            "entity_type and entity_id fix one record's history together: send both or neither",
        ));
    }
    for (field, value) in [
        ("filters.entity_type", &f.entity_type),
        ("filters.entity_id", &f.entity_id),
        ("filters.actor", &f.actor),
        ("filters.channel", &f.channel),
    ] {
        if let Some(value) = value {
            one_line(field, value, 256)?;
        }
    }
    check_theme("theme", &request.theme)?;
    let open_ms = seconds_to_ms(
        "ttl_seconds",
        request.ttl_seconds,
        DEFAULT_OPEN_MS,
        MAX_OPEN_MS,
    )?;
    let session_ms = seconds_to_ms(
        "session_seconds",
        request.session_seconds,
        DEFAULT_SESSION_MS,
        MAX_SESSION_MS,
    )?;
    let mut permissions = request.permissions;
    if !permissions.contains(&Permission::Read) {
        permissions.push(Permission::Read);
    }
    permissions.sort();
    permissions.dedup();
    Ok(Claims {
        kind: Kind::Open,
        org: org_id.to_string(),
        viewer: request.viewer,
        permissions,
        filters: request.filters,
        theme: request.theme,
        minted_by: key_id.to_string(),
        expires_at: now + open_ms,
        session_ends_at: now + session_ms,
    })
}

fn seconds_to_ms(
    field: &str,
    seconds: Option<u64>,
    default: Millis,
    max: Millis,
) -> Result<Millis, MintProblem> {
    let Some(seconds) = seconds else {
        return Ok(default);
    };
    let ms = Millis::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .filter(|ms| (1..=max).contains(ms))
        .ok_or_else(|| problem(field, format!("must be from 1 to {} seconds", max / 1000)))?;
    Ok(ms)
}

/// A theme whose values are safe to put in a stylesheet as they are. `field` names the theme
/// where it was given (`theme` in a mint request, `embed_theme` in the settings); a problem names
/// the field under it (`theme.accent`).
pub fn check_theme(field: &str, theme: &Theme) -> Result<(), MintProblem> {
    let at = |name: &str| format!("{field}.{name}");
    if let Some(mode) = &theme.mode
        && !matches!(mode.as_str(), "light" | "dark" | "auto")
    {
        return Err(problem(&at("mode"), "must be light, dark or auto"));
    }
    if let Some(accent) = &theme.accent {
        let hex = accent.strip_prefix('#').unwrap_or("");
        if !matches!(hex.len(), 3 | 6) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(problem(
                &at("accent"),
                "must be a colour as #rgb or #rrggbb",
            ));
        }
    }
    if let Some(font) = &theme.font
        && (font.is_empty()
            || font.len() > 200
            || !font
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ,-'\"".contains(c)))
    {
        return Err(problem(
            &at("font"),
            "must be a font family list: letters, digits, spaces, commas, hyphens and quotes",
        ));
    }
    if theme.radius.is_some_and(|r| r > 24) {
        return Err(problem(&at("radius"), "must be 0 to 24 pixels"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn request() -> MintRequest {
        MintRequest {
            viewer: Viewer {
                id: "u1".into(),
                name: Some("Kim".into()),
                email: None,
            },
            permissions: vec![Permission::Export],
            filters: FixedFilters::default(),
            theme: Theme::default(),
            ttl_seconds: None,
            session_seconds: None,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires_and_only_as_its_kind() {
        let signer = TokenSigner::new([7; 32]);
        let claims = claims_for(request(), "org_a", "key_a", 1_000).unwrap();
        assert_eq!(claims.permissions, [Permission::Read, Permission::Export]);
        let token = sign(&signer, &claims);
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(verify(&signer, &token, Kind::Open, 1_000).unwrap(), claims);
        assert_eq!(
            verify(&signer, &token, Kind::Session, 1_000),
            Err(TokenError::WrongKind)
        );
        assert_eq!(
            verify(&signer, &token, Kind::Open, 1_000 + DEFAULT_OPEN_MS),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&TokenSigner::new([8; 32]), &token, Kind::Open, 1_000),
            Err(TokenError::BadSignature)
        );
        // Changing one claim breaks the signature.
        let (payload, mac) = token[TOKEN_PREFIX.len()..].split_once('.').unwrap();
        let mut forged = claims.clone();
        forged.org = "org_b".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_ne!(forged_payload, payload);
        let forged_token = format!("{TOKEN_PREFIX}{forged_payload}.{mac}");
        assert_eq!(
            verify(&signer, &forged_token, Kind::Open, 1_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&signer, "svt_nonsense", Kind::Open, 1_000),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_session_lives_while_used_and_never_past_its_end() {
        let claims = claims_for(request(), "org_a", "key_a", 0).unwrap();
        let first = claims.session(1_000);
        assert_eq!(first.expires_at, 1_000 + SESSION_IDLE_MS);
        let late = claims.session(DEFAULT_SESSION_MS - 10);
        assert_eq!(late.expires_at, DEFAULT_SESSION_MS);
    }

    #[test]
    fn fixed_filters_replace_what_a_viewer_sends() {
        let filters = FixedFilters {
            entity_type: Some("License".into()),
            entity_id: Some("L-1".into()),
            ..FixedFilters::default()
        };
        let sent = vec![
            ("entity_id".to_string(), "L-2".to_string()),
            ("action".to_string(), "update".to_string()),
        ];
        let applied = filters.apply(&sent);
        assert!(applied.contains(&("entity_id".into(), "L-1".into())));
        assert!(!applied.contains(&("entity_id".into(), "L-2".into())));
        assert!(applied.contains(&("action".into(), "update".into())));
    }

    #[test]
    fn bad_requests_name_the_field() {
        let mut r = request();
        r.viewer.id = String::new();
        assert_eq!(claims_for(r, "o", "k", 0).unwrap_err().field, "viewer.id");
        let mut r = request();
        r.filters.entity_type = Some("License".into());
        assert_eq!(
            claims_for(r, "o", "k", 0).unwrap_err().field,
            "filters.entity_id"
        );
        let mut r = request();
        r.theme.accent = Some("red;}".into());
        assert_eq!(
            claims_for(r, "o", "k", 0).unwrap_err().field,
            "theme.accent"
        );
        let mut r = request();
        r.theme.font = Some("x</style>".into());
        assert_eq!(claims_for(r, "o", "k", 0).unwrap_err().field, "theme.font");
        let mut r = request();
        r.ttl_seconds = Some(0);
        assert_eq!(claims_for(r, "o", "k", 0).unwrap_err().field, "ttl_seconds");
    }
}
