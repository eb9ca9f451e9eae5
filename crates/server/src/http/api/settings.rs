//! `GET /v1/settings` (read scope) and `PUT /v1/settings` (admin scope): the organization's
//! retention window with per-channel overrides, whether recording is on, and the IP allowlist.
//!
//! ```json
//! {"retention_days": 365, "channel_retention_days": {"auth": 90, "compliance": 2555},
//!  "enabled": true, "ip_allowlist": ["203.0.113.0/24", "2001:db8::/32"]}
//! ```
//! `null` keeps entries forever (for the organization, or for one channel). Windows below 30
//! days are refused: a trail that forgets within weeks is no audit trail. `enabled` and
//! `ip_allowlist` keep their values when a PUT leaves them out, so that a script written for the
//! retention fields alone cannot turn recording back on or drop the allowlist. A list that would
//! shut out the request saving it is refused. A change records an entry (`settings.update`,
//! channel `security`) with the old and new values, recording on or off.
//!
//! The console's settings page (`crate::console::settings`) checks its form with the same
//! [`check_window`] and [`check_channel`] (and the allowlist with the same `policy` checks) and
//! saves through the same [`save`], so both refuse the same values with the same words and record
//! a change the same way; only the actor differs.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Map, Value, json};
use stele_core::time::Millis;
use stele_core::validate::is_channel;
use stele_core::{Actor, Change, Context, Entity, NewEvent, Outcome};
use stele_store::{MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, OrgKey, OrgSettings, Scope, StoreError};

use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::{ApiError, Result};
use stele_service::access::org_policy;

pub const SETTINGS_DETAILED_ACTION: &str = "settings.update";

fn settings_json(settings: &OrgSettings) -> Value {
    json!({
        "retention_days": settings.retention_days,
        "channel_retention_days": settings.channel_retention_days,
        "minimum_retention_days": MIN_RETENTION_DAYS,
        "enabled": settings.enabled,
        "ip_allowlist": settings.ip_allowlist,
    })
}

pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Value>> {
    auth.require(Scope::Read)?;
    let settings = state.store.settings(auth.key.org).await?;
    Ok(Json(settings_json(&settings)))
}

pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    body: Bytes,
) -> Result<Json<Value>> {
    auth.require(Scope::Admin)?;
    // Read as JSON whatever the Content-Type says, as `POST /v1/events` does (`curl -d`).
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("the body is not JSON: {e}")))?;
    let org = auth.key.org;
    let old = state.store.settings(org).await?;
    let new = parse(&body, &old)?;
    org_policy::check_not_locked_out(&new.ip_allowlist, auth.client_ip)
        .map_err(|e| ApiError::field("invalid_settings", &e.field, e.message))?;
    let (actor, context) = auth.actor();
    let change = SettingsChange {
        org,
        org_id: &auth.key.org_id,
        actor,
        context,
    };
    save(&state, change, &new).await?;
    Ok(Json(settings_json(&new)))
}

// --- shared with the console's settings page -----------------------------------------------------

/// A setting that cannot be accepted: the field as the API names it (`retention_days`,
/// `channel_retention_days.auth`) and what is wrong with it. The API answers it as a 400 naming
/// the field; the console shows it next to the form's control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    pub field: String,
    pub message: String,
}

impl SettingsProblem {
    fn new(field: &str, message: impl Into<String>) -> SettingsProblem {
        SettingsProblem {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl From<SettingsProblem> for ApiError {
    fn from(p: SettingsProblem) -> Self {
        ApiError::field("invalid_settings", &p.field, p.message)
    }
}

/// A finite retention window of `days`, from the floor to the ceiling. `None` (keep forever) needs
/// no check.
pub fn check_window(field: &str, days: i64) -> std::result::Result<u32, SettingsProblem> {
    if days < i64::from(MIN_RETENTION_DAYS) {
        return Err(SettingsProblem::new(
            field,
            format!(
                "must be at least {MIN_RETENTION_DAYS} days (the minimum retention), got {days}"
            ),
        ));
    }
    if days > i64::from(MAX_RETENTION_DAYS) {
        return Err(SettingsProblem::new(
            field,
            format!("must be at most {MAX_RETENTION_DAYS} days; use null to keep entries forever"),
        ));
    }
    Ok(days as u32)
}

/// A channel named in the per-channel windows; `field` is where the name was given.
pub fn check_channel(field: &str, channel: &str) -> std::result::Result<(), SettingsProblem> {
    if is_channel(channel) {
        Ok(())
    } else {
        Err(SettingsProblem::new(
            field,
            "is not a channel name (lowercase letters, digits, `_`, `.`, `-`; up to 64)",
        ))
    }
}

/// Who changes an organization's settings, and where: an API key (`PUT /v1/settings`) or a
/// member in the console.
pub struct SettingsChange<'a> {
    pub org: OrgKey,
    /// The organization's public id (`org_…`): the entity of the recorded change.
    pub org_id: &'a str,
    pub actor: Actor,
    pub context: Context,
}

/// Replaces the organization's settings with `new` (already checked) and records the change
/// (`settings.update`, channel `security`) with the old and new value of every field that
/// changed. Saving what is already there writes and records nothing. Returns the settings as
/// they were. Saved through the server's settings cache (`policy::Policies`), so this server
/// applies the change at once.
pub async fn save(
    state: &AppState,
    change: SettingsChange<'_>,
    new: &OrgSettings,
) -> std::result::Result<OrgSettings, StoreError> {
    let store = state.store.as_ref();
    let old = store.settings(change.org).await?;
    if &old != new {
        state.policies.save(change.org, new).await?;
        // Recorded whether or not recording is on: it governs what applications send, never
        // Stele's own entries (so turning it off is itself in the trail).
        let event = change_record(&change, &old, new, state.clock.now());
        stele_service::trail::record(store, change.org, event).await?;
    }
    Ok(old)
}

/// Reads a settings document, naming the first field that is wrong. `enabled` and
/// `ip_allowlist` left out keep their `current` values.
fn parse(body: &Value, current: &OrgSettings) -> Result<OrgSettings> {
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
        ) {
            return Err(invalid(key, "is not a setting".into()));
        }
    }
    let retention_days = match map.get("retention_days") {
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
    Ok(OrgSettings {
        retention_days,
        channel_retention_days,
        enabled,
        ip_allowlist,
    })
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

/// The entry of a settings change: one `Change` per top-level field whose value differs, in the
/// order of [`OrgSettings`]'s fields, so a setting added to the struct is recorded without
/// touching this.
fn change_record(
    change: &SettingsChange<'_>,
    old: &OrgSettings,
    new: &OrgSettings,
    now: Millis,
) -> NewEvent {
    let as_map = |s: &OrgSettings| match serde_json::to_value(s) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let changes: Vec<Change> = new
        .iter()
        .filter(|(field, value)| old.get(*field) != Some(value))
        .map(|(field, value)| Change {
            field: field.clone(),
            old: old.get(field).cloned(),
            new: Some(value.clone()),
        })
        .collect();
    let description = match (old.get("enabled"), new.get("enabled")) {
        (Some(Value::Bool(true)), Some(Value::Bool(false))) => "Recording turned off".to_string(),
        (Some(Value::Bool(false)), Some(Value::Bool(true))) => "Recording turned on".to_string(),
        _ => {
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            format!("Settings changed: {}", fields.join(", "))
        }
    };
    NewEvent {
        occurred_at: now,
        action: "update".into(),
        detailed_action: Some(SETTINGS_DETAILED_ACTION.into()),
        channel: "security".into(),
        description: Some(description),
        outcome: Outcome::Success,
        actor: change.actor.clone(),
        entity: Some(Entity {
            kind: "Settings".into(),
            id: Some(change.org_id.to_string()),
            name: None,
        }),
        entity_ids: vec![],
        context: change.context.clone(),
        changes,
        metadata: Default::default(),
        idempotency_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_below_the_floor_or_above_the_ceiling_are_refused_naming_the_field() {
        assert_eq!(check_window("retention_days", 30), Ok(30));
        assert_eq!(check_window("retention_days", 36_500), Ok(36_500));
        let low = check_window("channel_retention_days.auth", 29).unwrap_err();
        assert_eq!(low.field, "channel_retention_days.auth");
        assert!(low.message.contains("at least 30 days"), "{}", low.message);
        assert!(check_window("retention_days", 36_501).is_err());
        assert!(check_channel("c", "auth").is_ok());
        assert!(check_channel("c", "Bad Name").is_err());
    }

    #[test]
    fn a_change_names_each_changed_field_with_old_and_new_values() {
        let old = OrgSettings::default();
        let mut new = old.clone();
        new.channel_retention_days.insert("auth".into(), Some(90));
        let change = SettingsChange {
            org: OrgKey::new(1),
            org_id: "org_1",
            actor: stele_service::trail::activity::system_actor("test"),
            context: Context::default(),
        };
        let event = change_record(&change, &old, &new, 0);
        assert_eq!(event.changes.len(), 1, "{:?}", event.changes);
        assert_eq!(event.changes[0].field, "channel_retention_days");
        assert_eq!(event.changes[0].old, Some(json!({})));
        assert_eq!(event.changes[0].new, Some(json!({"auth": 90})));
        assert_eq!(
            event.description.as_deref(),
            Some("Settings changed: channel_retention_days")
        );
        assert_eq!(event.entity.unwrap().id.as_deref(), Some("org_1"));
    }
}
