//! The print log (the Bambuddy-compatible API of docs/print-log.md): who may do what to it,
//! how its requests are read, how its rows are shown, and the audit entries its changes write.
//! The HTTP handlers (`stele_server`'s `api::print_log`) and the console use this module alike, so
//! a row changed either way is checked and recorded the same way.
//!
//! Every change of the log is recorded in the trail on channel `printing`, entity type
//! `PrintLogEntry`, by the store in the same transaction as the change ([`audit`]): recording a
//! print (`create`, `printLog.record`), reclassifying one (`update`, `printLog.classify`),
//! deleting one (`delete`, `printLog.delete`) and clearing the log (`bulk_delete`,
//! `printLog.clear`, listing the removed ids). A change that changes nothing records nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};
use stele_core::chain::SealedEvent;
use stele_core::filter::FilterError;
use stele_core::time::{DayBound, Millis, format_rfc3339, parse_range_bound, parse_rfc3339};
use stele_core::validate::{MAX_ENTITY_IDS, MAX_FUTURE_SKEW_MS};
use stele_core::{Actor, Change, Context, Entity, NewEvent, Outcome};
use stele_store::{
    ApiKeyInfo, Classification, FailureReason, OrgKey, Print, PrintAudit, PrintFields, PrintFilter,
    PrintId, PrintLogChange, PrintStats, PrintStatus, Scope, Store, StoreError,
};

use crate::access::roles::{Permission, Role};
use crate::clock::SharedClock;
use crate::random;
use crate::trail::activity::Who;

/// The trail's channel for the print log's entries.
pub const CHANNEL: &str = "printing";
/// The entity type of a print log row in the trail.
pub const ENTITY_TYPE: &str = "PrintLogEntry";
pub const RECORD: &str = "printLog.record";
pub const CLASSIFY: &str = "printLog.classify";
pub const DELETE: &str = "printLog.delete";
pub const CLEAR: &str = "printLog.clear";

/// Rows per page when a list names no `limit` (the seed's default).
pub const DEFAULT_LIMIT: u32 = 25;
/// The largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 500;

/// How far a caller's power over other people's rows reaches, for one kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// No rows at all.
    None,
    /// The rows whose `created_by_username` is the caller's identity.
    Own,
    /// Every row of the organization.
    All,
}

/// Who is asking, and what the print log lets them do: an API key (its scopes) or a console
/// member (their role's permissions). Both map Bambuddy's OWN/ALL permissions the same way
/// (docs/print-log.md).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The username whose rows are this caller's own: a key's name, a member's email.
    pub identity: String,
    pub read: bool,
    pub record: bool,
    pub update: Reach,
    pub delete: Reach,
    /// How the trail names the caller.
    pub actor: Actor,
    pub context: Context,
}

/// Why a caller may not do something, as a sentence for the 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

/// An unreadable or invalid request field, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

fn reach(key: &ApiKeyInfo, own: Scope, all: Scope) -> Reach {
    if key.has_scope(all) {
        Reach::All
    } else if key.has_scope(own) {
        Reach::Own
    } else {
        Reach::None
    }
}

impl Caller {
    /// An API key: `read` reads, `ingest` records, the `printlog.*` scopes change (`admin` has
    /// them all); its own rows are those created by the user the key is named after.
    pub fn from_key(key: &ApiKeyInfo) -> Caller {
        let (actor, context) = crate::access::api_keys::actor_of(key);
        Caller {
            identity: key.name.clone(),
            read: key.has_scope(Scope::Read),
            record: key.has_scope(Scope::Ingest),
            update: reach(key, Scope::PrintlogUpdateOwn, Scope::PrintlogUpdateAll),
            delete: reach(key, Scope::PrintlogDeleteOwn, Scope::PrintlogDeleteAll),
            actor,
            context,
        }
    }

    /// A console member: `printlog.view` reads, the `printlog.*` permissions of their role
    /// change (the console records nothing); their own rows are those created by their email.
    pub fn for_member(who: Who<'_>, role: Role, context: Context) -> Caller {
        let reach = |own: Permission, all: Permission| {
            if role.has(all) {
                Reach::All
            } else if role.has(own) {
                Reach::Own
            } else {
                Reach::None
            }
        };
        Caller {
            identity: who.email.to_string(),
            read: role.has(Permission::PrintlogView),
            record: false,
            update: reach(Permission::PrintlogUpdateOwn, Permission::PrintlogUpdateAll),
            delete: reach(Permission::PrintlogDeleteOwn, Permission::PrintlogDeleteAll),
            actor: crate::trail::activity::member_actor(who),
            context,
        }
    }

    /// Whether `print` is one of the caller's own rows. A row nobody is named on is nobody's.
    pub fn owns(&self, print: &Print) -> bool {
        print.fields.created_by_username.as_deref() == Some(self.identity.as_str())
    }

    pub fn may_read(&self) -> Result<(), Denied> {
        if self.read {
            Ok(())
        } else {
            Err(Denied(
                "reading the print log needs the `read` scope".into(),
            ))
        }
    }

    pub fn may_record(&self) -> Result<(), Denied> {
        if self.record {
            Ok(())
        } else {
            Err(Denied("recording prints needs the `ingest` scope".into()))
        }
    }

    /// Whether the caller may reclassify some rows at all (before the row is looked up).
    pub fn may_update_some(&self) -> Result<(), Denied> {
        may_some(self.update, "reclassifying prints", "update")
    }

    pub fn may_update(&self, print: &Print) -> Result<(), Denied> {
        self.may_change(print, self.update, "reclassify", "update")
    }

    pub fn may_delete_some(&self) -> Result<(), Denied> {
        may_some(self.delete, "deleting prints", "delete")
    }

    pub fn may_delete(&self, print: &Print) -> Result<(), Denied> {
        self.may_change(print, self.delete, "delete", "delete")
    }

    pub fn may_clear(&self) -> Result<(), Denied> {
        if self.delete == Reach::All {
            Ok(())
        } else {
            Err(Denied(
                "clearing the print log needs the `printlog.delete.all` permission".into(),
            ))
        }
    }

    fn may_change(
        &self,
        print: &Print,
        reach: Reach,
        verb: &str,
        kind: &str,
    ) -> Result<(), Denied> {
        match reach {
            Reach::All => Ok(()),
            Reach::Own if self.owns(print) => Ok(()),
            Reach::Own => Err(Denied(format!(
                "print {} was not created by `{}`: you may only {verb} your own prints; any \
                 print needs the `printlog.{kind}.all` permission",
                print.id, self.identity
            ))),
            Reach::None => Err(Denied(format!(
                "you may not {verb} prints: that needs the `printlog.{kind}.own` or \
                 `printlog.{kind}.all` permission"
            ))),
        }
    }
}

fn may_some(reach: Reach, what: &str, kind: &str) -> Result<(), Denied> {
    if reach == Reach::None {
        Err(Denied(format!(
            "{what} needs the `printlog.{kind}.own` or `printlog.{kind}.all` permission"
        )))
    } else {
        Ok(())
    }
}

// --- reading requests ----------------------------------------------------------------------------

/// A list's or the stats' query: the filter, and the page (ignored by the stats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub filter: PrintFilter,
    pub limit: u32,
    pub offset: u64,
}

/// The parameters of [`parse_query`] that filter (Bambuddy's).
pub const FILTER_PARAMETERS: [&str; 6] = [
    "search",
    "printer_id",
    "created_by_username",
    "status",
    "date_from",
    "date_to",
];

/// The parameters [`parse_query`] reads: the filters, then the page (Bambuddy's list parameters).
pub const QUERY_PARAMETERS: &[&str] = &[
    FILTER_PARAMETERS[0],
    FILTER_PARAMETERS[1],
    FILTER_PARAMETERS[2],
    FILTER_PARAMETERS[3],
    FILTER_PARAMETERS[4],
    FILTER_PARAMETERS[5],
    "limit",
    "offset",
];

/// Reads `search`, `printer_id`, `created_by_username`, `status`, `date_from`, `date_to`,
/// `limit` and `offset` ([`QUERY_PARAMETERS`]). Empty values count as absent (as an HTML form
/// sends them); other parameters are left to the caller.
pub fn parse_query<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Query, FilterError> {
    let mut q = Query {
        filter: PrintFilter::default(),
        limit: DEFAULT_LIMIT,
        offset: 0,
    };
    for (key, value) in params {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            continue;
        }
        let no_nul = |field: &str| {
            if value.contains('\0') {
                Err(FilterError::new(
                    field,
                    "must not contain the NUL character",
                ))
            } else {
                Ok(value.to_string())
            }
        };
        match key {
            // The name is searched as typed (spaces included); the others are exact values.
            "search" => q.filter.search = Some(no_nul("search")?),
            "created_by_username" => q.filter.created_by_username = Some(no_nul(key)?),
            "printer_id" => {
                q.filter.printer_id = Some(trimmed.parse::<i64>().map_err(|_| {
                    FilterError::new("printer_id", "must be an integer (a printer's id)")
                })?)
            }
            "status" => {
                q.filter.status = Some(PrintStatus::parse(trimmed).ok_or_else(|| {
                    FilterError::new("status", format!("must be one of {}", PrintStatus::names()))
                })?)
            }
            "date_from" => {
                q.filter.from = Some(parse_bound("date_from", trimmed, DayBound::Start)?)
            }
            "date_to" => q.filter.to = Some(parse_bound("date_to", trimmed, DayBound::End)?),
            "limit" => {
                q.limit = trimmed
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        FilterError::new(
                            "limit",
                            format!("must be an integer from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            "offset" => {
                q.offset = trimmed
                    .parse::<u64>()
                    .ok()
                    .filter(|n| i64::try_from(*n).is_ok())
                    .ok_or_else(|| {
                        FilterError::new("offset", "must be a whole number, 0 or more")
                    })?
            }
            _ => {}
        }
    }
    if let (Some(from), Some(to)) = (q.filter.from, q.filter.to)
        && from >= to
    {
        return Err(FilterError::new(
            "date_from",
            "must be earlier than `date_to`",
        ));
    }
    Ok(q)
}

/// A date range bound: RFC 3339, a date-time without offset (read as UTC, as Python's
/// `datetime.isoformat()` writes one), or a bare date (its whole UTC day).
fn parse_bound(field: &str, value: &str, bound: DayBound) -> Result<Millis, FilterError> {
    let exact = |ms: Millis| match bound {
        DayBound::Start => ms,
        DayBound::End => ms + 1,
    };
    parse_range_bound(value, bound)
        .or_else(|| parse_naive(value).map(exact))
        .ok_or_else(|| {
            FilterError::new(
                field,
                "must be a date (YYYY-MM-DD) or a date-time (RFC 3339, or UTC without offset)",
            )
        })
}

/// `2026-01-07T10:00:00`, `2026-01-07 10:00:00.5`: a date-time without offset, as UTC.
fn parse_naive(value: &str) -> Option<Millis> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
    .map(|t| t.and_utc().timestamp_millis())
}

/// A timestamp in a request body: RFC 3339, or a date-time without offset read as UTC.
fn parse_instant(value: &str) -> Option<Millis> {
    parse_rfc3339(value).or_else(|| parse_naive(value))
}

/// The longest text each field keeps, in characters (Bambuddy's column sizes).
/// The longest print a row may say it took: ten years. Longer is no print but a mistake, and
/// every organization's totals must stay far from `i64::MAX` however many rows add up.
pub const MAX_DURATION_SECONDS: i64 = 10 * 366 * 24 * 3600;
/// The largest amount (grams of filament, cost, kWh, energy cost) one row may hold, so that the
/// totals of any number of rows stay finite numbers.
pub const MAX_AMOUNT: f64 = 1e12;

const TEXT_FIELDS: [(&str, usize); 6] = [
    ("print_name", 255),
    ("printer_name", 255),
    ("filament_type", 50),
    ("filament_color", 50),
    ("created_by_username", 100),
    ("thumbnail_path", 500),
];

const NUMBER_FIELDS: [&str; 4] = ["filament_used_grams", "cost", "energy_kwh", "energy_cost"];
const ID_FIELDS: [&str; 2] = ["printer_id", "archive_id"];
const TIME_FIELDS: [&str; 3] = ["started_at", "completed_at", "created_at"];
const FIELDS: [&str; 18] = [
    "print_name",
    "printer_id",
    "printer_name",
    "status",
    "started_at",
    "completed_at",
    "duration_seconds",
    "filament_type",
    "filament_color",
    "filament_used_grams",
    "cost",
    "energy_kwh",
    "energy_cost",
    "failure_reason",
    "created_by_username",
    "archive_id",
    "thumbnail_path",
    "created_at",
];

fn object(body: &Value) -> Result<&Map<String, Value>, Invalid> {
    body.as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object"))
}

fn present<'a>(map: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    map.get(field).filter(|v| !v.is_null())
}

fn status_of(field: &str, v: &Value) -> Result<PrintStatus, Invalid> {
    v.as_str()
        .and_then(PrintStatus::parse)
        .ok_or_else(|| invalid(field, format!("must be one of {}", PrintStatus::names())))
}

/// A failure reason: one of the vocabulary, or `""` for none.
fn reason_of(v: &Value) -> Result<Option<FailureReason>, Invalid> {
    match v.as_str() {
        Some("") => Ok(None),
        Some(s) => FailureReason::parse(s).map(Some).ok_or(()),
        None => Err(()),
    }
    .map_err(|()| {
        invalid(
            "failure_reason",
            format!(
                "must be \"\" (no cause) or one of {}",
                FailureReason::names()
            ),
        )
    })
}

/// Reads the body of `POST /api/v1/print-log/`. Omitted fields are null, except `status`
/// (required), `created_by_username` (the caller's identity unless given, even as null) and
/// `created_at` (`completed_at` if given, else now).
pub fn parse_new_print(body: &Value, identity: &str, now: Millis) -> Result<PrintFields, Invalid> {
    let map = object(body)?;
    if let Some(key) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(if key == "id" {
            invalid("id", "is assigned by the server")
        } else {
            invalid(key, "is not a field of a print log entry")
        });
    }
    let status = match map.get("status") {
        None | Some(Value::Null) => {
            return Err(invalid(
                "status",
                format!("is required: one of {}", PrintStatus::names()),
            ));
        }
        Some(v) => status_of("status", v)?,
    };
    let failure_reason = match present(map, "failure_reason") {
        None => None,
        Some(v) => reason_of(v)?,
    };
    let mut texts: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for (field, max) in TEXT_FIELDS {
        let text = match present(map, field) {
            None => None,
            Some(Value::String(s)) => {
                if s.contains('\0') {
                    return Err(invalid(field, "must not contain the NUL character"));
                }
                if s.chars().count() > max {
                    return Err(invalid(field, format!("must be at most {max} characters")));
                }
                Some(s.clone())
            }
            Some(_) => return Err(invalid(field, "must be a string")),
        };
        texts.insert(field, text);
    }
    let mut numbers = BTreeMap::new();
    for field in NUMBER_FIELDS {
        let n = match present(map, field) {
            None => None,
            Some(v) => Some(
                v.as_f64()
                    .filter(|n| n.is_finite() && (0.0..=MAX_AMOUNT).contains(n))
                    .ok_or_else(|| {
                        invalid(field, format!("must be a number from 0 to {MAX_AMOUNT:e}"))
                    })?,
            ),
        };
        numbers.insert(field, n);
    }
    let mut ids = BTreeMap::new();
    for field in ID_FIELDS {
        let id = match present(map, field) {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| invalid(field, "must be an integer"))?,
            ),
        };
        ids.insert(field, id);
    }
    let duration_seconds = match present(map, "duration_seconds") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|n| (0..=MAX_DURATION_SECONDS).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "duration_seconds",
                        format!(
                            "must be a whole number of seconds from 0 to {MAX_DURATION_SECONDS} \
                             (ten years)"
                        ),
                    )
                })?,
        ),
    };
    let mut times = BTreeMap::new();
    for field in TIME_FIELDS {
        let t = match present(map, field) {
            None => None,
            Some(v) => Some(v.as_str().and_then(parse_instant).ok_or_else(|| {
                invalid(
                    field,
                    "must be an RFC 3339 timestamp (or a date-time without offset, read as UTC)",
                )
            })?),
        };
        times.insert(field, t);
    }
    // The row's time is when the print was logged: given, or when it completed, or now.
    let (created_at, from_field) = match (times["created_at"], times["completed_at"]) {
        (Some(t), _) => (t, "created_at"),
        (None, Some(t)) => (t, "completed_at"),
        (None, None) => (now, "created_at"),
    };
    if created_at > now + MAX_FUTURE_SKEW_MS {
        return Err(invalid(from_field, "is more than 5 minutes in the future"));
    }
    let created_by_username = match map.get("created_by_username") {
        None => Some(identity.to_string()),
        Some(_) => texts["created_by_username"].clone(),
    };
    Ok(PrintFields {
        created_at,
        status,
        failure_reason,
        print_name: texts["print_name"].clone(),
        printer_id: ids["printer_id"],
        printer_name: texts["printer_name"].clone(),
        started_at: times["started_at"],
        completed_at: times["completed_at"],
        duration_seconds,
        filament_type: texts["filament_type"].clone(),
        filament_color: texts["filament_color"].clone(),
        filament_used_grams: numbers["filament_used_grams"],
        cost: numbers["cost"],
        energy_kwh: numbers["energy_kwh"],
        energy_cost: numbers["energy_cost"],
        created_by_username,
        archive_id: ids["archive_id"],
        thumbnail_path: texts["thumbnail_path"].clone(),
    })
}

/// Reads the body of `PATCH /api/v1/print-log/{id}`: `status` and/or `failure_reason`, each
/// exactly from its vocabulary (`"failure_reason": ""` clears the cause). Anything else, null
/// included, is refused, so a request either changes what it says or nothing.
pub fn parse_classification(body: &Value) -> Result<Classification, Invalid> {
    let map = object(body)?;
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "failure_reason"))
    {
        return Err(invalid(
            key,
            "cannot be changed: a print's classification is its `status` and `failure_reason`",
        ));
    }
    Ok(Classification {
        status: map
            .get("status")
            .map(|v| status_of("status", v))
            .transpose()?,
        failure_reason: map.get("failure_reason").map(reason_of).transpose()?,
    })
}

// --- showing rows --------------------------------------------------------------------------------

/// A row as the API shows it (the field names of Bambuddy's print log entries).
pub fn print_json(print: &Print) -> Value {
    let f = &print.fields;
    let time = |t: Option<Millis>| t.map(format_rfc3339);
    json!({
        "id": print.id,
        "archive_id": f.archive_id,
        "print_name": f.print_name,
        "printer_name": f.printer_name,
        "printer_id": f.printer_id,
        "status": f.status.as_str(),
        "started_at": time(f.started_at),
        "completed_at": time(f.completed_at),
        "duration_seconds": f.duration_seconds,
        "filament_type": f.filament_type,
        "filament_color": f.filament_color,
        "filament_used_grams": f.filament_used_grams,
        "cost": f.cost,
        "energy_kwh": f.energy_kwh,
        "energy_cost": f.energy_cost,
        "failure_reason": f.failure_reason.map(FailureReason::as_str),
        "thumbnail_path": f.thumbnail_path,
        "created_by_username": f.created_by_username,
        "created_at": format_rfc3339(f.created_at),
    })
}

/// The stats as the API shows them: Bambuddy's archive-stats totals (`total_prints`,
/// `successful_prints`, …) and the breakdowns behind them.
pub fn stats_json(stats: &PrintStats) -> Value {
    let status = |s: PrintStatus| {
        stats
            .by_status
            .iter()
            .find(|(x, _)| *x == s)
            .map_or(0, |(_, n)| *n)
    };
    let by_status: Map<String, Value> = stats
        .by_status
        .iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    let reasons: Map<String, Value> = stats
        .by_failure_reason
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), json!(n)))
        .collect();
    let grams: Map<String, Value> = stats
        .filament_grams_by_type
        .iter()
        .map(|(t, g)| (t.clone(), json!(g)))
        .collect();
    json!({
        "total_prints": stats.total,
        "successful_prints": status(PrintStatus::Completed),
        "failed_prints": status(PrintStatus::Failed),
        "cancelled_prints": status(PrintStatus::Stopped)
            + status(PrintStatus::Cancelled)
            + status(PrintStatus::Skipped),
        "prints_by_status": by_status,
        "failure_reasons": reasons,
        "unclassified_failures": stats.unclassified_failures,
        "total_duration_seconds": stats.total_duration_seconds,
        "average_duration_seconds": stats.average_duration_seconds(),
        "total_print_time_hours": stats.total_duration_seconds as f64 / 3600.0,
        "filament_grams_by_type": grams,
        "total_filament_grams": stats.total_filament_grams,
        "total_cost": stats.total_cost,
        "total_energy_kwh": stats.total_energy_kwh,
        "total_energy_cost": stats.total_energy_cost,
    })
}

// --- the trail ------------------------------------------------------------------------------------

/// The row's fields as JSON values, in the API's order, for the changes of an entry (only the
/// fields that have a value).
fn field_values(print: &Print) -> Vec<(&'static str, Value)> {
    let value = print_json(print);
    let Value::Object(map) = value else {
        return vec![];
    };
    let mut out = vec![];
    for field in std::iter::once("status")
        .chain(std::iter::once("failure_reason"))
        .chain(
            FIELDS
                .iter()
                .copied()
                .filter(|f| !matches!(*f, "status" | "failure_reason")),
        )
    {
        if let Some(v) = map.get(field).filter(|v| !v.is_null()) {
            out.push((field, v.clone()));
        }
    }
    out
}

fn entity(print: &Print) -> Entity {
    Entity::new(
        ENTITY_TYPE,
        Some(print.id.to_string()),
        print.fields.print_name.clone(),
    )
}

/// `print 42 "Benchy"`, or `print 42` for a row without a name.
fn label(print: &Print) -> String {
    match &print.fields.print_name {
        Some(name) if !name.is_empty() => format!("print {} \"{name}\"", print.id),
        _ => format!("print {}", print.id),
    }
}

fn reason_label(reason: Option<FailureReason>) -> &'static str {
    reason.map_or("none", FailureReason::as_str)
}

/// The entries that describe a change, before sealing.
pub fn entries(caller: &Caller, change: PrintLogChange<'_>, now: Millis) -> Vec<NewEvent> {
    let entry = |action: &str, detailed: &str, description: String| NewEvent {
        occurred_at: now,
        action: action.into(),
        detailed_action: Some(detailed.into()),
        channel: CHANNEL.into(),
        description: Some(description),
        outcome: Outcome::Success,
        actor: caller.actor.clone(),
        entity: None,
        entity_ids: vec![],
        context: caller.context.clone(),
        changes: vec![],
        metadata: BTreeMap::new(),
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    };
    match change {
        PrintLogChange::Recorded { print } => {
            let mut e = entry(
                "create",
                RECORD,
                format!("Recorded {} ({})", label(print), print.fields.status),
            );
            e.entity = Some(entity(print));
            e.changes = field_values(print)
                .into_iter()
                .map(|(field, v)| Change {
                    field: field.into(),
                    old: None,
                    new: Some(v),
                })
                .collect();
            vec![e]
        }
        PrintLogChange::Classified { before, after } => {
            let (b, a) = (&before.fields, &after.fields);
            let mut changes = vec![];
            let mut said = vec![];
            if b.status != a.status {
                changes.push(Change {
                    field: "status".into(),
                    old: Some(json!(b.status.as_str())),
                    new: Some(json!(a.status.as_str())),
                });
                said.push(format!("status {} → {}", b.status, a.status));
            }
            if b.failure_reason != a.failure_reason {
                changes.push(Change {
                    field: "failure_reason".into(),
                    old: Some(json!(b.failure_reason.map(FailureReason::as_str))),
                    new: Some(json!(a.failure_reason.map(FailureReason::as_str))),
                });
                said.push(format!(
                    "failure cause {} → {}",
                    reason_label(b.failure_reason),
                    reason_label(a.failure_reason)
                ));
            }
            let mut e = entry(
                "update",
                CLASSIFY,
                format!("Reclassified {}: {}", label(after), said.join(", ")),
            );
            e.entity = Some(entity(after));
            e.changes = changes;
            vec![e]
        }
        PrintLogChange::Deleted { print } => {
            let mut e = entry(
                "delete",
                DELETE,
                format!("Deleted {} from the print log", label(print)),
            );
            e.entity = Some(entity(print));
            e.changes = field_values(print)
                .into_iter()
                .map(|(field, v)| Change {
                    field: field.into(),
                    old: Some(v),
                    new: None,
                })
                .collect();
            vec![e]
        }
        PrintLogChange::Cleared { ids } => {
            // An entry lists at most as many ids as an ingested one may; a larger clear is
            // recorded in parts that share a correlation id.
            let parts: Vec<&[PrintId]> = ids.chunks(MAX_ENTITY_IDS).collect();
            let correlation = (parts.len() > 1).then(|| random::token("printlog-clear-", 8));
            let n = parts.len();
            parts
                .into_iter()
                .enumerate()
                .map(|(i, part)| {
                    let description = if n == 1 {
                        format!("Cleared the print log ({} entries)", ids.len())
                    } else {
                        format!(
                            "Cleared the print log ({} entries; part {} of {n})",
                            ids.len(),
                            i + 1
                        )
                    };
                    let mut e = entry("bulk_delete", CLEAR, description);
                    e.entity = Some(Entity::new(ENTITY_TYPE, None, None));
                    e.entity_ids = part.iter().map(PrintId::to_string).collect();
                    e.metadata.insert("deleted".into(), json!(ids.len()));
                    if n > 1 {
                        e.metadata.insert("part".into(), json!(i + 1));
                        e.metadata.insert("parts".into(), json!(n));
                        e.context.correlation_id = correlation.clone();
                    }
                    e
                })
                .collect()
        }
    }
}

/// Why a change of one row was not made.
#[derive(Debug)]
pub enum ChangeError {
    /// The caller may not change this row (it is another's, and they may change only their own).
    Denied(Denied),
    /// No row with this id in the organization (or it went meanwhile).
    NotFound,
    Store(StoreError),
}

impl From<StoreError> for ChangeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ChangeError::NotFound,
            other => ChangeError::Store(other),
        }
    }
}

/// The row `id` of the organization, if `caller` may change it (`may`: update or delete).
/// Whose row it is cannot change (only the classification can, and ids are never reused), so
/// checking it before the write is as good as checking it inside.
async fn changeable(
    store: &dyn Store,
    org: OrgKey,
    id: PrintId,
    may: impl FnOnce(&Print) -> Result<(), Denied>,
) -> Result<Print, ChangeError> {
    let print = store.print(org, id).await?.ok_or(ChangeError::NotFound)?;
    may(&print).map_err(ChangeError::Denied)?;
    Ok(print)
}

/// Reclassifies one row for `caller` (the API's PATCH and the console's Edit), recorded in the
/// trail with the old and new values. Returns the row before and after.
pub async fn classify(
    store: &dyn Store,
    org: OrgKey,
    caller: &Caller,
    id: PrintId,
    classification: Classification,
    clock: &SharedClock,
) -> Result<(Print, Print), ChangeError> {
    changeable(store, org, id, |p| caller.may_update(p)).await?;
    Ok(store
        .classify_print(org, id, classification, audit(caller, clock))
        .await?)
}

/// Deletes one row for `caller` (the API's DELETE and the console's Delete), recorded in the
/// trail. Returns the row as it was.
pub async fn delete(
    store: &dyn Store,
    org: OrgKey,
    caller: &Caller,
    id: PrintId,
    clock: &SharedClock,
) -> Result<Print, ChangeError> {
    changeable(store, org, id, |p| caller.may_delete(p)).await?;
    Ok(store.delete_print(org, id, audit(caller, clock)).await?)
}

/// Clears the organization's log for `caller`, recorded in the trail. Returns how many rows
/// went.
pub async fn clear(
    store: &dyn Store,
    org: OrgKey,
    caller: &Caller,
    clock: &SharedClock,
) -> Result<u64, ChangeError> {
    caller.may_clear().map_err(ChangeError::Denied)?;
    Ok(store.clear_prints(org, audit(caller, clock)).await?)
}

/// The audit a store runs inside each change's transaction: [`entries`] at the clock's time,
/// sealed with fresh salts.
pub fn audit(caller: &Caller, clock: &SharedClock) -> PrintAudit {
    let (caller, clock) = (caller.clone(), clock.clone());
    Arc::new(move |change: PrintLogChange<'_>| {
        entries(&caller, change, clock.now())
            .into_iter()
            .map(|event| SealedEvent::seal(event, random::salt()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<Query, FilterError> {
        parse_query(pairs.iter().copied())
    }

    /// Each name in [`QUERY_PARAMETERS`] is one the reader acts on (the API refuses the others).
    #[test]
    fn every_query_parameter_is_read() {
        for name in QUERY_PARAMETERS {
            // A value no parameter can take as it is, and one most take: one of them must tell.
            let refused = query(&[(name, "~unusable~")]);
            let taken = query(&[(name, "7")]);
            let default = query(&[]).unwrap();
            assert!(
                refused.as_ref().map_or(true, |q| *q != default)
                    || taken.as_ref().map_or(true, |q| *q != default),
                "`{name}` was ignored"
            );
        }
    }

    #[test]
    fn the_query_defaults_to_25_rows_and_names_each_bad_parameter() {
        let q = query(&[]).unwrap();
        assert_eq!((q.limit, q.offset), (25, 0));
        for (field, value) in [
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "ten"),
            ("offset", "-1"),
            ("printer_id", "x1c"),
            ("status", "Failed"),
            ("date_from", "yesterday"),
            ("date_to", "2026-13-01"),
        ] {
            assert_eq!(
                query(&[(field, value)]).unwrap_err().field,
                field,
                "{field}={value}"
            );
        }
        let q = query(&[
            ("limit", "500"),
            ("offset", "3"),
            ("status", "failed"),
            ("foo", "x"),
        ])
        .unwrap();
        assert_eq!(
            (q.limit, q.offset, q.filter.status),
            (500, 3, Some(PrintStatus::Failed))
        );
        assert_eq!(
            query(&[("date_from", "2026-02-01"), ("date_to", "2026-01-01")])
                .unwrap_err()
                .field,
            "date_from"
        );
    }

    #[test]
    fn dates_may_be_days_rfc3339_or_naive_utc() {
        let day = query(&[("date_from", "2026-01-07"), ("date_to", "2026-01-07")]).unwrap();
        assert_eq!(day.filter.from, parse_rfc3339("2026-01-07T00:00:00Z"));
        assert_eq!(day.filter.to, parse_rfc3339("2026-01-08T00:00:00Z"));
        let naive = query(&[("date_from", "2026-01-07T10:00:00")]).unwrap();
        assert_eq!(naive.filter.from, parse_rfc3339("2026-01-07T10:00:00Z"));
        let offset = query(&[("date_to", "2026-01-07T12:00:00+02:00")]).unwrap();
        assert_eq!(offset.filter.to, parse_rfc3339("2026-01-07T10:00:00.001Z"));
    }

    #[test]
    fn a_classification_takes_the_vocabularies_exactly() {
        let c =
            parse_classification(&json!({"failure_reason": "cloggedNozzle", "status": "failed"}))
                .unwrap();
        assert_eq!(c.status, Some(PrintStatus::Failed));
        assert_eq!(c.failure_reason, Some(Some(FailureReason::CloggedNozzle)));
        assert_eq!(
            parse_classification(&json!({"failure_reason": ""}))
                .unwrap()
                .failure_reason,
            Some(None)
        );
        assert_eq!(
            parse_classification(&json!({})).unwrap(),
            Classification::default()
        );
        for (body, field) in [
            (json!({"status": "Completed"}), "status"),
            (json!({"status": null}), "status"),
            (json!({"status": 1}), "status"),
            (
                json!({"failure_reason": "clogged_nozzle"}),
                "failure_reason",
            ),
            (json!({"failure_reason": null}), "failure_reason"),
            (json!({"print_name": "x"}), "print_name"),
            (json!([]), "body"),
        ] {
            assert_eq!(
                parse_classification(&body).unwrap_err().field,
                field,
                "{body}"
            );
        }
    }

    #[test]
    fn a_new_print_defaults_its_owner_and_time() {
        let now = 1_767_225_600_000;
        let p = parse_new_print(&json!({"status": "completed"}), "ada", now).unwrap();
        assert_eq!(p.created_by_username.as_deref(), Some("ada"));
        assert_eq!(p.created_at, now);
        let p = parse_new_print(
            &json!({"status": "failed", "created_by_username": null,
                    "completed_at": "2026-01-01T00:00:00Z"}),
            "ada",
            now + 5,
        )
        .unwrap();
        assert_eq!(p.created_by_username, None);
        assert_eq!(p.created_at, now);
        for (body, field) in [
            (json!({}), "status"),
            (json!({"status": "done"}), "status"),
            (json!({"status": "failed", "id": 3}), "id"),
            (json!({"status": "failed", "color": "red"}), "color"),
            (json!({"status": "failed", "cost": -1}), "cost"),
            (
                json!({"status": "failed", "duration_seconds": 1.5}),
                "duration_seconds",
            ),
            // Absurd values that would push an organization's totals past what they can hold.
            (
                json!({"status": "failed", "duration_seconds": i64::MAX}),
                "duration_seconds",
            ),
            (
                json!({"status": "failed", "duration_seconds": MAX_DURATION_SECONDS + 1}),
                "duration_seconds",
            ),
            (json!({"status": "failed", "cost": 1e300}), "cost"),
            (
                json!({"status": "failed", "energy_kwh": 2e12}),
                "energy_kwh",
            ),
            (json!({"status": "failed", "printer_id": "7"}), "printer_id"),
            (
                json!({"status": "failed", "print_name": "a\u{0}b"}),
                "print_name",
            ),
            (
                json!({"status": "failed", "filament_type": "x".repeat(51)}),
                "filament_type",
            ),
            (
                json!({"status": "failed", "started_at": "noon"}),
                "started_at",
            ),
            (
                json!({"status": "failed", "completed_at": "2027-01-01T00:00:00Z"}),
                "completed_at",
            ),
        ] {
            assert_eq!(
                parse_new_print(&body, "ada", now).unwrap_err().field,
                field,
                "{body}"
            );
        }
    }
}
