//! `GET /organizations/{id}/audit_logs_retention` (`read` scope) and `PUT` of the same path
//! (`admin` scope, as `PUT /v1/settings`): the organization's retention window in WorkOS's
//! words. `{id}` is the organization's id or external id.
//!
//! WorkOS sets a period, `1_MONTH` … `11_MONTHS` or `1_YEAR` … `10_YEARS`; Stele keeps days. A
//! month is 30 days and a year 365, so `1_MONTH` is Stele's floor (30 days) and `10_YEARS` is
//! 3650 days. The change goes through the settings use case: checked, saved and recorded in the
//! organization's trail (`settings.update`) like a change in the console. An organization that
//! keeps its entries forever (no window) reads `{"retention_period_in_days": null}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use serde_json::{Value, json};
use stele_store::Scope;

use super::auth::WorkosKey;
use super::error::{Requirement, Result, WorkosError, json_object};
use crate::api::error::ApiError;
use crate::app::state::AppState;
use stele_service::settings::{self, SetRetentionError, SettingsChange};

/// Days in a month of a WorkOS retention period.
pub const DAYS_PER_MONTH: i64 = 30;
/// Days in a year of a WorkOS retention period.
pub const DAYS_PER_YEAR: i64 = 365;

/// `GET` → `{"retention_period_in_days": N}`.
pub async fn show(
    State(state): State<AppState>,
    key: WorkosKey,
    id: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    key.require(Scope::Read)?;
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let auth = key.for_organization(&state, &id, "id").await?;
    let current = state.store.settings(auth.key.org).await?;
    Ok(Json(
        json!({"retention_period_in_days": current.retention_days}),
    ))
}

/// `PUT` `{"retention_period": "1_YEAR"}` → the new window, as `GET` shows it.
pub async fn update(
    State(state): State<AppState>,
    key: WorkosKey,
    id: std::result::Result<Path<String>, PathRejection>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    key.require(Scope::Admin)?;
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let body = json_object(&body.map_err(ApiError::from)?)?;
    if let Some(unknown) = body.keys().find(|k| *k != "retention_period") {
        return Err(WorkosError::field(
            "invalid_request_body",
            unknown,
            "is not a field of a retention change (retention_period)",
        ));
    }
    let days = match body.get("retention_period") {
        None | Some(Value::Null) => {
            return Err(WorkosError::requirement(Requirement::required(
                "retention_period",
                "is required: 1_MONTH to 11_MONTHS, or 1_YEAR to 10_YEARS",
            )));
        }
        Some(Value::String(period)) => period_days(period),
        Some(_) => None,
    }
    .ok_or_else(|| {
        WorkosError::requirement(Requirement::invalid(
            "retention_period",
            "must be 1_MONTH, 2_MONTHS … 11_MONTHS, or 1_YEAR, 2_YEARS … 10_YEARS",
        ))
    })?;
    let auth = key.for_organization(&state, &id, "id").await?;
    let (actor, context) = auth.actor();
    let change = SettingsChange {
        org: auth.key.org,
        org_id: &auth.key.org_id,
        actor,
        context,
    };
    let saved = settings::set_retention_days(
        state.store.as_ref(),
        &state.policies,
        &*state.clock,
        change,
        "retention_period",
        days,
    )
    .await
    .map_err(|e| match e {
        SetRetentionError::Invalid(p) => {
            WorkosError::requirement(Requirement::invalid(&p.field, p.message))
        }
        SetRetentionError::Store(e) => e.into(),
    })?;
    Ok(Json(
        json!({"retention_period_in_days": saved.retention_days}),
    ))
}

/// The days of a WorkOS retention period (`3_MONTHS` → 90, `1_YEAR` → 365); `None` for anything
/// else, WorkOS's own spelling included (`1_MONTHS` and `2_MONTH` are not periods).
pub fn period_days(period: &str) -> Option<i64> {
    let (count, unit) = period.split_once('_')?;
    if count.starts_with('0') || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: i64 = count.parse().ok()?;
    let (per, max) = match unit {
        "MONTH" | "MONTHS" => (DAYS_PER_MONTH, 11),
        "YEAR" | "YEARS" => (DAYS_PER_YEAR, 10),
        _ => return None,
    };
    let singular = !unit.ends_with('S');
    if !(1..=max).contains(&count) || singular != (count == 1) {
        return None;
    }
    Some(count * per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_whole_months_or_years_in_workos_spelling() {
        assert_eq!(period_days("1_MONTH"), Some(30));
        assert_eq!(period_days("11_MONTHS"), Some(330));
        assert_eq!(period_days("1_YEAR"), Some(365));
        assert_eq!(period_days("10_YEARS"), Some(3650));
        for bad in [
            "",
            "1",
            "MONTH",
            "0_MONTHS",
            "12_MONTHS",
            "11_YEARS",
            "1_MONTHS",
            "2_MONTH",
            "01_YEAR",
            "-1_YEAR",
            "1_year",
            "1_WEEK",
            "1_YEAR_",
        ] {
            assert_eq!(period_days(bad), None, "{bad}");
        }
    }
}
