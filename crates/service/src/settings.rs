//! An organization's settings as every door changes them: the retention window with per-channel
//! overrides, whether recording is on, and the IP allowlist. `PUT /v1/settings` and the
//! console's settings page check values with the same [`check_window`] and [`check_channel`] (and
//! the allowlist with `org_policy`'s checks) and save through the same [`save`], so both refuse
//! the same values with the same words and record a change the same way; only the actor differs.

use serde_json::{Map, Value};
use stele_core::time::Millis;
use stele_core::validate::is_channel;
use stele_core::{Actor, Change, Context, Entity, NewEvent, Outcome};
use stele_store::{MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, OrgKey, OrgSettings, Store, StoreError};

use crate::access::org_policy::Policies;
use crate::clock::Clock;

pub const SETTINGS_DETAILED_ACTION: &str = "settings.update";

/// A setting that cannot be accepted: the field as the API names it (`retention_days`,
/// `channel_retention_days.auth`) and what is wrong with it. The API answers it as a 400 naming
/// the field; the console shows it next to the form's control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    pub field: String,
    pub message: String,
}

impl SettingsProblem {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> SettingsProblem {
        SettingsProblem {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A finite retention window of `days`, from the floor to the ceiling. `None` (keep forever) needs
/// no check.
pub fn check_window(field: &str, days: i64) -> Result<u32, SettingsProblem> {
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

/// Whether `origin` can be named in `frame-ancestors` as given: `scheme://host[:port]` and
/// nothing else (no path, no spaces, no `;` that would end the directive).
pub fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// The origins that may frame the embedded viewer, each checked; `field` names the list.
pub fn check_origins<'a>(
    field: &str,
    origins: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, SettingsProblem> {
    let mut out = Vec::new();
    for (i, origin) in origins.enumerate() {
        let origin = origin.trim().trim_end_matches('/');
        if !is_origin(origin) {
            return Err(SettingsProblem::new(
                &format!("{field}[{i}]"),
                "must be an origin: scheme://host[:port], like https://app.example.com",
            ));
        }
        if !out.iter().any(|o| o == origin) {
            out.push(origin.to_string());
        }
    }
    Ok(out)
}

/// A channel named in the per-channel windows; `field` is where the name was given.
pub fn check_channel(field: &str, channel: &str) -> Result<(), SettingsProblem> {
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
/// they were. Saved through the server's settings cache ([`Policies`]), so this server
/// applies the change at once.
pub async fn save(
    store: &dyn Store,
    policies: &Policies,
    clock: &dyn Clock,
    change: SettingsChange<'_>,
    new: &OrgSettings,
) -> Result<OrgSettings, StoreError> {
    let old = store.settings(change.org).await?;
    if &old != new {
        policies.save(change.org, new).await?;
        // Recorded whether or not recording is on: it governs what applications send, never
        // Stele's own entries (so turning it off is itself in the trail).
        let event = change_record(&change, &old, new, clock.now());
        crate::trail::record(store, change.org, event).await?;
    }
    Ok(old)
}

/// Sets the organization's retention window to `days` (checked against the floor and the
/// ceiling), keeping every other setting, through [`save`]: for the doors that change the window
/// alone (the WorkOS door's `PUT /organizations/{id}/audit_logs_retention`). `field` names the
/// request's field in a refusal. Returns the settings as they are now.
pub async fn set_retention_days(
    store: &dyn Store,
    policies: &Policies,
    clock: &dyn Clock,
    change: SettingsChange<'_>,
    field: &str,
    days: i64,
) -> Result<OrgSettings, SetRetentionError> {
    let days = check_window(field, days).map_err(SetRetentionError::Invalid)?;
    let mut new = store.settings(change.org).await?;
    new.retention_days = Some(days);
    save(store, policies, clock, change, &new).await?;
    Ok(new)
}

/// Why a retention window was not set.
#[derive(Debug, thiserror::Error)]
pub enum SetRetentionError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(SettingsProblem),
    #[error(transparent)]
    Store(#[from] StoreError),
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
        entity: Some(Entity::new(
            "Settings",
            Some(change.org_id.to_string()),
            None,
        )),
        entity_ids: vec![],
        context: change.context.clone(),
        changes,
        metadata: Default::default(),
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
            actor: crate::trail::activity::system_actor("test"),
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
