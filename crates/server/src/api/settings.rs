//! `GET /v1/settings` (read scope), `PUT /v1/settings` and `PATCH /v1/settings` (admin scope):
//! the organization's retention window with per-channel overrides, whether recording is on, and
//! the IP allowlist.
//!
//! ```json
//! {"retention_days": 365, "channel_retention_days": {"auth": 90, "compliance": 2555},
//!  "enabled": true, "ip_allowlist": ["203.0.113.0/24", "2001:db8::/32"]}
//! ```
//! `null` keeps entries forever (for the organization, or for one channel). Windows below 30
//! days are refused: a trail that forgets within weeks is no audit trail. `enabled`,
//! `ip_allowlist` and `embed_origins` (the origins that may frame the organization's embedded
//! audit log) keep their values when a PUT leaves them out, so that a script written for the
//! retention fields alone cannot turn recording back on or drop the allowlist. A PATCH changes
//! only the fields it sends (`{"enabled": false}`), each replaced whole (`channel_retention_days`
//! included: send the whole map). A list that would shut out the request saving it is refused. A change records an entry (`settings.update`,
//! channel `security`) with the old and new values, recording on or off.
//!
//! `embed_theme` (`{"mode": "dark", "accent": "#0a7", "font": "Inter, sans-serif", "radius": 6}`,
//! each field optional, checked as a viewer token's `theme`) is the embedded viewer's look for
//! the organization's viewer tokens, under what a token sets. In the platform organization's
//! settings (a platform key without the `Stele-Organization` header) it is every organization's
//! default. Like the other fields added later, a PUT that leaves it out keeps it.
//!
//! `redaction` is what the ingest redacts from the organization's events: the rules of
//! `stele_core::redact` (`{"name_contains": [...], "name_starts_with": [...], "name_words":
//! [...], "name_last_words": [...], "detect_values": true}`, a list left out taking its default,
//! `null` restoring the defaults). A PUT that leaves it out keeps it.
//!
//! The checks, the save and the recorded change are `stele_service::settings`, which the
//! console's settings page uses too.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde_json::{Map, Value, json};
use stele_core::redact::RedactionRules;
use stele_service::redaction::check_rules;
use stele_store::{EmbedTheme, MIN_RETENTION_DAYS, OrgSettings, Scope};

use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;
use stele_service::access::{org_policy, viewer};
use stele_service::settings::{
    self, SettingsChange, SettingsProblem, check_channel, check_origins, check_window,
};

fn settings_json(settings: &OrgSettings) -> Value {
    json!({
        "retention_days": settings.retention_days,
        "channel_retention_days": settings.channel_retention_days,
        "minimum_retention_days": MIN_RETENTION_DAYS,
        "enabled": settings.enabled,
        "ip_allowlist": settings.ip_allowlist,
        "embed_origins": settings.embed_origins,
        "embed_theme": settings.embed_theme,
        "redaction": settings.redaction,
    })
}

#[utoipa::path(
    get, path = "/v1/settings", tag = "settings", operation_id = "getSettings",
    summary = "Read settings",
    description = "Retention, recording on or off, the IP allowlist, the embedded viewer's origins and theme, the redaction rules.",
    responses(
        (status = 200, description = "The organization's settings", body = schemas::Settings),
    ),
)]
pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Value>> {
    auth.require(Scope::Read)?;
    let settings = state.store.settings(auth.key.org).await?;
    Ok(Json(settings_json(&settings)))
}

/// `PUT`: the whole settings document (`retention_days` required).
#[utoipa::path(
    put, path = "/v1/settings", tag = "settings", operation_id = "replaceSettings",
    summary = "Replace settings",
    description = "The whole settings document (`retention_days` required). Needs the `admin` scope; recorded.",
    request_body = schemas::Settings,
    responses(
        (status = 200, description = "The settings as stored", body = schemas::Settings),
    ),
)]
pub async fn replace(
    state: State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    update(state, auth, body, Update::Replace).await
}

/// `PATCH`: only the fields sent change.
#[utoipa::path(
    patch, path = "/v1/settings", tag = "settings", operation_id = "updateSettings",
    summary = "Change settings",
    description = "Only the fields sent change, each replaced whole. Needs the `admin` scope; recorded.",
    request_body = schemas::Settings,
    responses(
        (status = 200, description = "The settings as stored", body = schemas::Settings),
    ),
)]
pub async fn patch(
    state: State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    update(state, auth, body, Update::Patch).await
}

/// How a settings document applies to the current settings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Update {
    /// `retention_days` must be sent; `channel_retention_days` left out means none.
    Replace,
    /// Every field left out keeps its current value.
    Patch,
}

async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    body: Bytes,
    how: Update,
) -> Result<Json<Value>> {
    auth.require(Scope::Admin)?;
    // Read as JSON whatever the Content-Type says, as `POST /v1/events` does (`curl -d`).
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("the body is not JSON: {e}")))?;
    let org = auth.key.org;
    let old = state.store.settings(org).await?;
    let new = parse(&body, &old, how)?;
    org_policy::check_not_locked_out(&new.ip_allowlist, auth.client_ip)
        .map_err(|e| ApiError::field("invalid_settings", &e.field, e.message))?;
    let (actor, context) = auth.actor();
    let change = SettingsChange {
        org,
        org_id: &auth.key.org_id,
        actor,
        context,
    };
    settings::save(
        state.store.as_ref(),
        &state.policies,
        &*state.clock,
        change,
        &new,
    )
    .await?;
    Ok(Json(settings_json(&new)))
}

impl From<SettingsProblem> for ApiError {
    fn from(p: SettingsProblem) -> Self {
        ApiError::field("invalid_settings", &p.field, p.message)
    }
}

/// Reads a settings document, naming the first field that is wrong. `enabled` and
/// `ip_allowlist` left out keep their `current` values; in a PATCH, every field does.
fn parse(body: &Value, current: &OrgSettings, how: Update) -> Result<OrgSettings> {
    let invalid =
        |field: &str, message: String| ApiError::field("invalid_settings", field, message);
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        ));
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "retention_days"
                | "channel_retention_days"
                | "minimum_retention_days"
                | "enabled"
                | "ip_allowlist"
                | "embed_origins"
                | "embed_theme"
                | "redaction"
        ) {
            return Err(invalid(key, "is not a setting".into()));
        }
    }
    let retention_days = match map.get("retention_days") {
        None if how == Update::Patch => current.retention_days,
        None => {
            return Err(invalid(
                "retention_days",
                "is required: a number of days, or null to keep entries forever".into(),
            ));
        }
        Some(v) => days("retention_days", v)?,
    };
    let mut channel_retention_days = BTreeMap::new();
    match map.get("channel_retention_days") {
        None if how == Update::Patch => {
            channel_retention_days.clone_from(&current.channel_retention_days);
        }
        None | Some(Value::Null) => {}
        Some(Value::Object(channels)) => {
            for (channel, v) in channels {
                let field = format!("channel_retention_days.{channel}");
                check_channel(&field, channel)?;
                channel_retention_days.insert(channel.clone(), days(&field, v)?);
            }
        }
        Some(_) => {
            return Err(invalid(
                "channel_retention_days",
                "must be an object of channel names to days (or null)".into(),
            ));
        }
    }
    let enabled = match map.get("enabled") {
        None => current.enabled,
        Some(Value::Bool(enabled)) => *enabled,
        Some(_) => {
            return Err(invalid(
                "enabled",
                "must be true (record events) or false (accept them without storing)".into(),
            ));
        }
    };
    let ip_allowlist = match map.get("ip_allowlist") {
        None => current.ip_allowlist.clone(),
        Some(Value::Null) => vec![],
        Some(Value::Array(entries)) => {
            let mut texts = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let text = entry.as_str().ok_or_else(|| {
                    invalid(
                        &format!("ip_allowlist[{i}]"),
                        "must be a string: an IP address or a CIDR network".into(),
                    )
                })?;
                texts.push(text);
            }
            org_policy::parse_allowlist(texts.into_iter())
                .map_err(|e| invalid(&e.field, e.message))?
        }
        Some(_) => {
            return Err(invalid(
                "ip_allowlist",
                "must be an array of IP addresses and CIDR networks (empty allows every address)"
                    .into(),
            ));
        }
    };
    let embed_origins = match map.get("embed_origins") {
        None => current.embed_origins.clone(),
        Some(Value::Null) => vec![],
        Some(Value::Array(entries)) => {
            let mut texts = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                texts.push(entry.as_str().ok_or_else(|| {
                    invalid(
                        &format!("embed_origins[{i}]"),
                        "must be a string: an origin like https://app.example.com".into(),
                    )
                })?);
            }
            check_origins("embed_origins", texts.into_iter())?
        }
        Some(_) => {
            return Err(invalid(
                "embed_origins",
                "must be an array of origins (https://app.example.com)".into(),
            ));
        }
    };
    let embed_theme = match map.get("embed_theme") {
        None => current.embed_theme.clone(),
        Some(Value::Null) => EmbedTheme::default(),
        Some(Value::Object(fields)) => theme(fields)?,
        Some(_) => {
            return Err(invalid(
                "embed_theme",
                "must be an object: {\"mode\", \"accent\", \"font\", \"radius\"}, each optional"
                    .into(),
            ));
        }
    };
    let redaction = match map.get("redaction") {
        None => current.redaction.clone(),
        Some(Value::Null) => RedactionRules::default(),
        Some(v) => read_rules("redaction", v)?,
    };
    Ok(OrgSettings {
        retention_days,
        channel_retention_days,
        enabled,
        ip_allowlist,
        embed_origins,
        embed_theme,
        redaction,
    })
}

/// The embedded viewer's theme (`embed_theme`): each field a string (a number for `radius`) or
/// null, checked as a viewer token's theme is, a problem named `embed_theme.<field>`.
fn theme(fields: &Map<String, Value>) -> Result<EmbedTheme> {
    let invalid = |field: &str, message: &str| {
        ApiError::field("invalid_settings", &format!("embed_theme.{field}"), message)
    };
    let text = |field: &str| -> Result<Option<String>> {
        match fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(field, "must be a string")),
        }
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "mode" | "accent" | "font" | "radius"))
    {
        return Err(invalid(
            unknown,
            "is not a theme field (mode, accent, font, radius)",
        ));
    }
    let radius = match fields.get("radius") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|r| u8::try_from(r).ok())
                .ok_or_else(|| invalid("radius", "must be 0 to 24 pixels"))?,
        ),
    };
    let theme = EmbedTheme {
        mode: text("mode")?,
        accent: text("accent")?,
        font: text("font")?,
        radius,
    };
    viewer::check_theme("embed_theme", &theme)
        .map_err(|p| ApiError::field("invalid_settings", &p.field, p.message))?;
    Ok(theme)
}

/// Redaction rules (`redaction`, or `rules` in a redaction test; `field` names them): the object
/// [`RedactionRules`] reads, each list left out taking its default, then checked as every door
/// checks them.
pub(crate) fn read_rules(field: &str, v: &Value) -> Result<RedactionRules> {
    let rules: RedactionRules = serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::field(
            "invalid_settings",
            field,
            format!(
                "must be an object of name_contains, name_starts_with, name_words, \
                 name_last_words (arrays of strings) and detect_values (a boolean): {e}"
            ),
        )
    })?;
    Ok(check_rules(field, rules)?)
}

/// A retention window: null (forever) or whole days from the floor to the ceiling.
fn days(field: &str, v: &Value) -> Result<Option<u32>> {
    if v.is_null() {
        return Ok(None);
    }
    let n = v.as_i64().ok_or_else(|| {
        ApiError::field(
            "invalid_settings",
            field,
            "must be a whole number of days, or null to keep entries forever",
        )
    })?;
    Ok(Some(check_window(field, n)?))
}
