//! The OpenAPI 3.1 document of the API, served at `/openapi.json` and printed by `stele openapi`.
//!
//! Where each part comes from, so that the document cannot drift from what the server does:
//! - the paths, methods, bodies and answers: each handler's `#[utoipa::path]` attribute,
//!   registered by [`crate::api::documented`] in the router and the document at once
//!   (utoipa-axum's `routes!`), so a route the API serves is a route the document shows;
//! - the query parameters: the table the API checks requests against
//!   ([`crate::api::parameters`], which refuses any other name), each described here;
//! - the path parameters: the path's own `{name}`s, each described here;
//! - the JSON shapes: [`schemas`], checked against real answers by the HTTP tests.

pub mod schemas;

use std::sync::OnceLock;

use axum::http::{Method, header};
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi as _};

use crate::api::parameters;

/// What the document says of the API as a whole; the paths are added by the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Stele",
        description = "A self-hosted, tamper-evident audit trail: record events, search them, \
                       export them, prove them. The WorkOS and Retraced doors, which speak those \
                       services' own APIs, are described in docs/platforms.md, not here.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    modifiers(&Credentials),
    components(schemas(schemas::Error)),
    tags(
        (name = "events", description = "Record events and read the trail"),
        (name = "export", description = "The trail as CSV, JSON or NDJSON files"),
        (name = "integrity", description = "The hash chain, signed checkpoints and their proofs"),
        (name = "erasure", description = "Erase a person, redact fields of an entry"),
        (name = "viewer tokens", description = "The audit log inside another product"),
        (name = "organizations", description = "Platform keys: organizations, their keys and console members"),
        (name = "settings", description = "Retention, recording, the IP allowlist, redaction, the embedded viewer"),
        (name = "streams", description = "Log streams: the trail delivered to the organization's SIEM"),
        (name = "print log", description = "Bambuddy's print log, every change recorded in the trail"),
        (name = "health", description = "Liveness, readiness and this document"),
    )
)]
struct Api;

/// The two ways to send a key: `Authorization: Bearer stele_…`, or `X-API-Key: stele_…`.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer stele_…`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key, as the print log's clients send it",
            ))),
        );
    }
}

/// The whole document, built once.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, paths) = crate::api::documented().split_for_parts();
        let mut document = Api::openapi().merge_from(paths);
        document.info.version = env!("CARGO_PKG_VERSION").into();
        complete(&mut document);
        document
    })
}

/// The document as pretty JSON (`stele openapi`, `/openapi.json`).
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Serializing the document cannot fail: its maps are keyed by strings.
        document().to_pretty_json().unwrap_or_default()
    })
}

/// `GET /openapi.json`: public, like the API's reference.
#[utoipa::path(
    get, path = "/openapi.json", tag = "health", security(()), operation_id = "getOpenApi",
    summary = "This document",
    description = "The API's OpenAPI 3.1 document. Public.",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)", body = Object),
    ),
)]
pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// Adds to every operation what the router and the parameter table know: its query and path
/// parameters, and the errors every request with a key may get.
fn complete(document: &mut OpenApi) {
    for (path, item) in document.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            let public = public(operation);
            if public {
                // `security(())` on a handler: no credential at all (OpenAPI's empty list).
                operation.security = Some(vec![]);
            }
            let parameters = operation.parameters.get_or_insert_with(Vec::new);
            // A header is absent or a string, never `null` (an `Option<String>` in a handler's
            // attribute would say `["string", "null"]`).
            for parameter in parameters.iter_mut() {
                if let RefOr::T(header) = parameter
                    && header.parameter_in == ParameterIn::Header
                {
                    header.schema = Some(ObjectBuilder::new().schema_type(Type::String).into());
                }
            }
            for name in path_parameters(path) {
                parameters.push(RefOr::T(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .description(Some(describe_path_parameter(path, name)))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .build(),
                ));
            }
            for list in parameters::accepted(&method, path) {
                for name in list.iter() {
                    parameters.push(RefOr::T(
                        ParameterBuilder::new()
                            .name(*name)
                            .parameter_in(ParameterIn::Query)
                            .required(Required::False)
                            .description(Some(describe_query_parameter(path, name)))
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .build(),
                    ));
                }
            }
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses.entry(status.into()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                Content::new(Some(Ref::from_schema_name("Error"))),
                            )
                            .build(),
                    )
                });
            };
            add(
                "400",
                "The request cannot be read, or a parameter is unknown or out of range (`details[0].field` names it)",
            );
            if !public {
                add("401", "No key, or an unknown or revoked one");
                add(
                    "403",
                    "The key lacks the scope, or the organization's IP allowlist refuses the address",
                );
                add("503", "The database cannot be reached; retry later");
            }
        }
    }
}

/// Each method's operation of a path, with its method.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
}

/// Whether the handler said `security(())`: one requirement, naming no scheme.
fn public(operation: &Operation) -> bool {
    operation.security.as_deref().is_some_and(|requirements| {
        requirements
            .iter()
            .all(|r| *r == utoipa::openapi::security::SecurityRequirement::default())
            && !requirements.is_empty()
    })
}

/// The `{name}`s of a path, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn describe_path_parameter(path: &str, name: &str) -> String {
    match name {
        "id" if path.starts_with("/v1/events/") => "The entry's id",
        "id" if path.starts_with("/v1/exports/") => "The export job's id",
        "id" if path.contains("/members/") => "The member's id",
        "id" if path.starts_with("/api/v1/print-log/") => "The print log row's id",
        "id" if path.starts_with("/v1/streams/") => "The stream's id (`str_…`)",
        "entity_type" => "The record's type, as events name it (`Printer`)",
        "entity_id" => "The record's id",
        "org" => "The organization: its id (`org_…`) or its external id",
        "key_id" => "The key's id (not its secret)",
        other => panic!("the path parameter {other} of {path} has no description"),
    }
    .into()
}

/// What a query parameter means on this path. Every name the parameter table accepts has one
/// (a test asks the document for each).
fn describe_query_parameter(path: &str, name: &str) -> String {
    let consistency = path == "/v1/integrity/consistency";
    let organizations = path.starts_with("/v1/organizations");
    let print_log = path.starts_with("/api/v1/print-log");
    match name {
        "from" if consistency => "The older checkpoint's `seq`",
        "to" if consistency => "The newer checkpoint's `seq`",
        "limit" if path == "/v1/integrity/checkpoints" => "How many checkpoints, 1 to 1000 (default 100)",
        "limit" if organizations => "Organizations per page, 1 to 100",
        "limit" if print_log => "Rows per page, 1 to 500 (default 25)",
        "limit" => "Entries per page, 1 to 500 (default 50)",
        "action" => "The exact action",
        "detailed_action" => "Exact, or a prefix with a trailing `*` (`printJob.*`)",
        "actor_type" => "A comma list of `user,api,webhook,system,scheduler`, or `all` (default: all but `system` on the list)",
        "actor" => "The actor's email or id (exact)",
        "entity_type" => "The entity's type, or a related entity's",
        "entity_id" => "The entity's id, a related entity's, or any of a bulk action's `entity_ids`",
        "channel" => "The exact channel",
        "outcome" => "`success` or `failure`",
        "correlation_id" => "The exact correlation id",
        "ip" => "The exact client address",
        "from" => "From this time, inclusive: RFC 3339 or `YYYY-MM-DD`",
        "to" => "Up to this time, inclusive; a bare date includes that whole day",
        "q" => "The query language: `key:value` terms and free text (a substring of the description)",
        "cursor" => "The `next_cursor` or `prev_cursor` of the page before",
        "format" => "`csv` (default), `json` or `ndjson`",
        "token" => "The download link's token",
        "full" => "`true`: every entry and checkpoint from the start, not only what is new",
        "after" => "The `next_cursor` of the page before",
        "external_id" => "Only the organization with this external id",
        "confirm" => "The organization's id again: deleting one and its whole trail is not undone",
        "search" => "A case-insensitive substring of `print_name`",
        "printer_id" => "That printer (an integer)",
        "created_by_username" => "Exactly that username",
        "status" => "`completed`, `failed`, `stopped`, `cancelled` or `skipped`",
        "date_from" => "Rows at or after it: RFC 3339, a date-time without offset (UTC) or `YYYY-MM-DD`",
        "date_to" => "Rows at or before it; a bare date includes that whole day",
        "offset" => "Rows to skip (default 0)",
        other => panic!("the query parameter {other} of {path} has no description"),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path and query parameter the API reads is described (a missing description panics
    /// while the document is built).
    #[test]
    fn the_document_builds_and_describes_every_parameter() {
        let document: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        let list = &document["paths"]["/v1/events"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"action") && names.contains(&"cursor"),
            "{names:?}"
        );
        let headers = &document["paths"]["/v1/events"]["post"]["parameters"];
        let key = headers
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap();
        assert_eq!(
            (&key["in"], &key["required"], &key["schema"]),
            (
                &serde_json::json!("header"),
                &serde_json::json!(false),
                &serde_json::json!({"type": "string"})
            ),
            "{key}"
        );
    }

    /// Every path the API's router serves is in the document, or is the other spelling (with or
    /// without the trailing slash) of a documented print log path. The router is read through
    /// its `Debug` output, the one place axum lists its paths; the HTTP tests check the other
    /// direction (every documented operation is served) and the methods.
    #[test]
    fn every_path_the_router_serves_is_documented() {
        let debug = format!("{:?}", crate::api::router());
        let served: std::collections::BTreeSet<&str> =
            debug.split('"').filter(|t| t.starts_with('/')).collect();
        assert!(
            served.contains("/v1/events") && served.len() >= 30,
            "axum's Debug output no longer lists the paths: {debug}"
        );
        let documented = &document().paths.paths;
        // Not routes of the API: axum's fallback router lists these two for the fallback.
        let fallback = ["/", "/{*__private__axum_fallback}"];
        for path in served.into_iter().filter(|p| !fallback.contains(p)) {
            let twin = match path.strip_suffix('/') {
                Some(bare) => bare.to_string(),
                None => format!("{path}/"),
            };
            assert!(
                documented.contains_key(path)
                    || (path.starts_with("/api/v1/print-log") && documented.contains_key(&twin)),
                "{path} is served but not in the OpenAPI document"
            );
        }
    }

    #[test]
    fn public_operations_need_no_key_and_the_others_do() {
        let document: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        let paths = &document["paths"];
        assert_eq!(paths["/healthz"]["get"]["security"], serde_json::json!([]));
        assert_eq!(
            paths["/v1/integrity/public-key"]["get"]["security"],
            serde_json::json!([])
        );
        assert!(paths["/v1/events"]["get"].get("security").is_none());
        assert!(paths["/v1/events"]["get"]["responses"]["401"].is_object());
        assert!(paths["/healthz"]["get"]["responses"]["401"].is_null());
    }
}
