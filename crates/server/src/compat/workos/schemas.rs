//! `POST /audit_logs/actions/{action}/schemas` (a platform key with `admin`) and `GET` of the
//! same path (a platform key with `read`): WorkOS's per-action schemas, which belong to the
//! platform (WorkOS's environment) and so to the platform's own organization, over
//! `stele_service::action_schemas` (what a schema may say, and the check of an event).
//!
//! [`check_event`] is what the door's event ingest calls: the event against the version it names,
//! or the action's latest, answered as WorkOS answers a mismatch.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use stele_core::time::format_rfc3339;
use stele_store::Scope;

use super::auth::WorkosKey;
use super::error::{Requirement, Result, WorkosError, json_object};
use crate::api::error::ApiError;
use crate::api::{Params, params};
use crate::app::state::AppState;
use stele_service::action_schemas::{
    self, LookupError, SchemaDocument, SchemaProblem, VersionedSchema, check_action,
};
use stele_service::trail::By;

/// The page size of a list unless `limit` says otherwise (WorkOS's default).
const DEFAULT_LIMIT: usize = 10;
/// The largest page (WorkOS's maximum).
const MAX_LIMIT: usize = 100;

/// `POST /audit_logs/actions/{action}/schemas` → `201` with the new version.
pub async fn create(
    State(state): State<AppState>,
    key: WorkosKey,
    action: std::result::Result<Path<String>, PathRejection>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    key.require(Scope::Admin)?;
    let action = path_action(action)?;
    let body = json_object(&body.map_err(ApiError::from)?)?;
    let document = SchemaDocument::parse(&Value::Object(body)).map_err(schema_problem)?;
    let auth = key.for_platform(&state).await?;
    let (actor, context) = auth.actor();
    let schema = state
        .action_schemas
        .create(
            state.store.as_ref(),
            auth.key.org,
            &action,
            document,
            By::platform(actor, context),
            state.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(schema_json(&schema))))
}

/// `GET /audit_logs/actions/{action}/schemas?limit&order&before&after` → the action's versions,
/// newest first unless `order=asc`, as WorkOS lists: `{"object": "list", "data": [...],
/// "list_metadata": {"before", "after"}}`, the cursors being versions (`after` the next page's,
/// `before` the previous page's, `null` at either end).
pub async fn list(
    State(state): State<AppState>,
    key: WorkosKey,
    action: std::result::Result<Path<String>, PathRejection>,
    query: Params,
) -> Result<Json<Value>> {
    key.require(Scope::Read)?;
    let action = path_action(action)?;
    let page_request = PageRequest::read(&params(query)?)?;
    let auth = key.for_platform(&state).await?;
    let versions = action_schemas::list(state.store.as_ref(), auth.key.org, &action).await?;
    let page = page_request.page(&versions);
    Ok(Json(json!({
        "object": "list",
        "data": page.data.iter().map(|s| schema_json(s)).collect::<Vec<_>>(),
        "list_metadata": {"before": page.before, "after": page.after},
    })))
}

/// The action of the path, checked (a 400 naming `action`).
fn path_action(action: std::result::Result<Path<String>, PathRejection>) -> Result<String> {
    let action = action.map(|Path(a)| a).unwrap_or_default();
    check_action(&action)
        .map_err(|p| WorkosError::field("invalid_audit_log_action", &p.field, p.message))?;
    Ok(action)
}

/// A schema request that cannot be accepted: a missing field is WorkOS's 422, anything else a
/// 400 naming the field.
fn schema_problem(p: SchemaProblem) -> WorkosError {
    if p.missing {
        WorkosError::requirement(Requirement::required(&p.field, p.message))
    } else {
        WorkosError::field("invalid_audit_log_schema", &p.field, p.message)
    }
}

/// A version as WorkOS shows it: `{"object": "audit_log_schema", "version", "targets", "actor",
/// "metadata"?, "created_at"}`.
fn schema_json(schema: &VersionedSchema) -> Value {
    let mut out = Map::new();
    out.insert("object".into(), json!("audit_log_schema"));
    out.insert("version".into(), json!(schema.version));
    if let Value::Object(document) = schema.document.to_json() {
        out.extend(document);
    }
    out.insert(
        "created_at".into(),
        json!(format_rfc3339(schema.created_at)),
    );
    Value::Object(out)
}

/// The order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Newest,
    Oldest,
}

/// A list request: its page size, order and cursor.
#[derive(Debug, PartialEq, Eq)]
struct PageRequest {
    limit: usize,
    order: Order,
    /// Versions before this one in the list's order (the previous page).
    before: Option<u32>,
    /// Versions after this one in the list's order (the next page).
    after: Option<u32>,
}

/// One page of versions, in the list's order, and the cursors around it.
struct SchemaPage<'a> {
    data: Vec<&'a VersionedSchema>,
    before: Option<String>,
    after: Option<String>,
}

impl PageRequest {
    fn read(params: &[(String, String)]) -> Result<PageRequest> {
        let invalid = |field: &str, message: &str| {
            WorkosError::requirement(Requirement::invalid(field, message))
        };
        let mut request = PageRequest {
            limit: DEFAULT_LIMIT,
            order: Order::Newest,
            before: None,
            after: None,
        };
        for (name, value) in params {
            match name.as_str() {
                "limit" => {
                    request.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| invalid("limit", "must be a whole number from 1 to 100"))?;
                }
                "order" => {
                    request.order = match value.as_str() {
                        "desc" | "normal" => Order::Newest,
                        "asc" => Order::Oldest,
                        _ => return Err(invalid("order", "must be `desc` or `asc`")),
                    };
                }
                "before" | "after" => {
                    let version = value.parse().ok().filter(|v| *v >= 1).ok_or_else(|| {
                        invalid(name, "must be a version number from a list's list_metadata")
                    })?;
                    if name == "before" {
                        request.before = Some(version);
                    } else {
                        request.after = Some(version);
                    }
                }
                _ => {}
            }
        }
        if request.before.is_some() && request.after.is_some() {
            return Err(invalid("before", "cannot be given with `after`"));
        }
        Ok(request)
    }

    /// The page of `versions` (oldest first, as stored) this request asks for.
    fn page<'a>(&self, versions: &'a [VersionedSchema]) -> SchemaPage<'a> {
        // The page is found as a range of the stored order (oldest first), then put in the
        // list's order.
        let n = versions.len();
        let position_of = |version: u32| -> usize {
            // Where `version` sits (or would sit) in storage order: the count of lower versions.
            versions.partition_point(|s| s.version < version)
        };
        // In storage order, the half-open range [from, to) of the page.
        let (from, to) = match (self.order, self.before, self.after) {
            (Order::Oldest, None, Some(v)) => {
                let from = versions.partition_point(|s| s.version <= v);
                (from, (from + self.limit).min(n))
            }
            (Order::Oldest, Some(v), None) => {
                let to = position_of(v);
                (to.saturating_sub(self.limit), to)
            }
            (Order::Oldest, _, _) => (0, self.limit.min(n)),
            (Order::Newest, None, Some(v)) => {
                let to = position_of(v);
                (to.saturating_sub(self.limit), to)
            }
            (Order::Newest, Some(v), None) => {
                let from = versions.partition_point(|s| s.version <= v);
                (from, (from + self.limit).min(n))
            }
            (Order::Newest, _, _) => (n.saturating_sub(self.limit), n),
        };
        let slice = &versions[from..to];
        let (lowest, highest) = (slice.first(), slice.last());
        let older = (from > 0)
            .then(|| lowest.map(|s| s.version.to_string()))
            .flatten();
        let newer = (to < n)
            .then(|| highest.map(|s| s.version.to_string()))
            .flatten();
        let (before, after, data) = match self.order {
            Order::Oldest => (older, newer, slice.iter().collect()),
            Order::Newest => (newer, older, slice.iter().rev().collect()),
        };
        SchemaPage {
            data,
            before,
            after,
        }
    }
}

/// Checks an event of the WorkOS door against its action's schema: the version the event names
/// (`version`), or the action's latest. An action without schemas takes any event that names no
/// version. A mismatch, or a version the action does not have, is WorkOS's 400
/// `{"message": "Invalid Audit Log event.", "code": "invalid_audit_log_event", "errors":
/// [{"instancePath": "/metadata/extra", "message": "must be boolean"}]}`.
pub async fn check_event(
    state: &AppState,
    action: &str,
    version: Option<u32>,
    event: &Value,
) -> Result<()> {
    let store = state.store.as_ref();
    let platform = state.directory.platform(store).await?;
    let found = state
        .action_schemas
        .for_event(store, platform.key, action, version)
        .await;
    check_against(found, event)
}

/// [`check_event`] once the schema is looked up: the lookup's outcome and the event.
fn check_against(
    found: std::result::Result<Option<VersionedSchema>, LookupError>,
    event: &Value,
) -> Result<()> {
    let schema = match found {
        Ok(Some(schema)) => schema,
        Ok(None) => return Ok(()),
        Err(LookupError::NoSuchVersion { action, version }) => {
            return Err(invalid_event(vec![json!({
                "instancePath": "/version",
                "message": format!("action {action} has no schema version {version}"),
            })]));
        }
        Err(LookupError::Store(e)) => return Err(e.into()),
    };
    let violations = action_schemas::check_event(&schema.document, event);
    if violations.is_empty() {
        return Ok(());
    }
    Err(invalid_event(
        violations
            .into_iter()
            .map(|v| json!({"instancePath": v.pointer, "message": v.message}))
            .collect(),
    ))
}

fn invalid_event(errors: Vec<Value>) -> WorkosError {
    WorkosError::BadRequest {
        message: "Invalid Audit Log event.".into(),
        code: "invalid_audit_log_event",
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(n: u32) -> Vec<VersionedSchema> {
        let document = SchemaDocument::parse(&json!({"targets": []})).unwrap();
        (1..=n)
            .map(|version| VersionedSchema {
                action: "a.b".into(),
                version,
                document: document.clone(),
                created_at: i64::from(version),
            })
            .collect()
    }

    /// The versions of the page `query` asks for, and its `before` and `after` cursors.
    fn page(query: &[(&str, &str)], n: u32) -> (Vec<u32>, Option<String>, Option<String>) {
        let params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let all = versions(n);
        let page = PageRequest::read(&params).unwrap().page(&all);
        let data = page.data.iter().map(|s| s.version).collect();
        (data, page.before, page.after)
    }

    fn some(v: &str) -> Option<String> {
        Some(v.into())
    }

    #[test]
    fn lists_are_newest_first_and_the_cursors_walk_both_ways() {
        assert_eq!(page(&[], 3), (vec![3, 2, 1], None, None));
        assert_eq!(page(&[("limit", "2")], 5), (vec![5, 4], None, some("4")));
        assert_eq!(
            page(&[("limit", "2"), ("after", "4")], 5),
            (vec![3, 2], some("3"), some("2"))
        );
        assert_eq!(
            page(&[("limit", "2"), ("after", "2")], 5),
            (vec![1], some("1"), None)
        );
        assert_eq!(
            page(&[("limit", "2"), ("before", "3")], 5),
            (vec![5, 4], None, some("4"))
        );
        assert_eq!(page(&[("after", "1")], 5), (vec![], None, None));
        assert_eq!(page(&[], 0), (vec![], None, None));
    }

    #[test]
    fn ascending_lists_walk_from_the_oldest() {
        assert_eq!(
            page(&[("order", "asc"), ("limit", "2")], 5),
            (vec![1, 2], None, some("2"))
        );
        assert_eq!(
            page(&[("order", "asc"), ("limit", "2"), ("after", "2")], 5),
            (vec![3, 4], some("3"), some("4"))
        );
        assert_eq!(
            page(&[("order", "asc"), ("limit", "2"), ("before", "3")], 5),
            (vec![1, 2], None, some("2"))
        );
    }

    #[test]
    fn an_event_is_checked_against_its_schema_in_workos_words() {
        let schema = VersionedSchema {
            action: "user.signed_in".into(),
            version: 1,
            document: SchemaDocument::parse(&json!({"targets": [], "metadata": {
                "type": "object", "properties": {"extra": {"type": "boolean"}}}}))
            .unwrap(),
            created_at: 0,
        };
        let good = json!({"metadata": {"extra": true}});
        let bad = json!({"metadata": {"extra": "x"}});
        assert!(check_against(Ok(Some(schema.clone())), &good).is_ok());
        // No schema: anything goes.
        assert!(check_against(Ok(None), &bad).is_ok());
        match check_against(Ok(Some(schema)), &bad) {
            Err(WorkosError::BadRequest {
                message,
                code,
                errors,
            }) => {
                assert_eq!(message, "Invalid Audit Log event.");
                assert_eq!(code, "invalid_audit_log_event");
                assert_eq!(
                    errors,
                    [json!({"instancePath": "/metadata/extra", "message": "must be boolean"})]
                );
            }
            other => panic!("{other:?}"),
        }
        let unknown = LookupError::NoSuchVersion {
            action: "user.signed_in".into(),
            version: 9,
        };
        match check_against(Err(unknown), &good) {
            Err(WorkosError::BadRequest { code, errors, .. }) => {
                assert_eq!(code, "invalid_audit_log_event");
                assert_eq!(errors[0]["instancePath"], "/version");
            }
            other => panic!("{other:?}"),
        }
        let outage = LookupError::Store(stele_store::StoreError::Unavailable("down".into()));
        assert!(matches!(
            check_against(Err(outage), &good),
            Err(WorkosError::Unavailable)
        ));
    }

    #[test]
    fn bad_list_parameters_are_422_naming_them() {
        for (query, field) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "101")], "limit"),
            (vec![("order", "up")], "order"),
            (vec![("after", "x")], "after"),
            (vec![("before", "0")], "before"),
            (vec![("before", "1"), ("after", "2")], "before"),
        ] {
            let params: Vec<(String, String)> = query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            match PageRequest::read(&params) {
                Err(WorkosError::Validation(r)) => assert_eq!(r[0].field, field),
                other => panic!("{query:?}: {other:?}"),
            }
        }
    }
}
