//! Log streams: an organization's trail delivered to its own receiver (a SIEM's webhook, a syslog
//! server), every entry in `seq` order, at least once, with the entry's id as the receiver's
//! de-duplication key (docs/streams.md).
//!
//! This module is what every door calls: [`create`], [`edit`], [`pause`], [`resume`],
//! [`rotate_secret`], [`delete`], and [`view`]/[`list`] for the health a person reads. Each
//! change is recorded in the organization's trail. [`delivery`] runs the deliveries in the
//! server; [`webhook`], [`syslog`] and [`nats`] are the transports, behind [`target_guard`] and
//! [`tls`]; [`envelope`] writes a webhook's body in the format its receiver takes (Stele's own,
//! Splunk HEC, Elasticsearch `_bulk`, Datadog).
//!
//! A stream of the platform's own organization is platform-wide: it delivers every
//! organization's trail (the platform's own included, and organizations made later), each
//! organization's in `seq` order with a cursor of its own.
//!
//! A stream's configuration is a [`StreamSpec`], stored as JSON text beside its cursor
//! (`stele_store::Streams`). Webhook secrets are not stored at all: each is derived from the
//! server's secret, the stream's id and the secret's version ([`StreamSecrets`]), so the database
//! holds nothing that would let its reader sign a delivery; a receiver's token (a webhook's
//! `headers`) is stored sealed under a key derived from the same secret.

pub mod delivery;
pub mod envelope;
pub mod nats;
pub mod syslog;
pub mod target_guard;
pub mod tls;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stele_core::event::{Actor, Change, Entity, Entry, NewEvent, Outcome as EventOutcome};
use stele_core::time::Millis;
use stele_core::{ActorType, Seq};
use stele_store::{
    NewStream, OrgKey, Store, StoreError, Stream, StreamChange, StreamStart, StreamState,
};

use crate::trail::By;
use crate::trail::activity::SECURITY_CHANNEL;
use target_guard::TargetGuard;

/// The detailed actions of the entries a stream's changes record (channel `security`).
pub const STREAM_CREATED: &str = "log_stream.create";
pub const STREAM_UPDATED: &str = "log_stream.update";
pub const STREAM_PAUSED: &str = "log_stream.pause";
pub const STREAM_RESUMED: &str = "log_stream.resume";
pub const STREAM_DELETED: &str = "log_stream.delete";
pub const STREAM_SECRET_ROTATED: &str = "log_stream.secret_rotate";
/// Recorded by the delivery itself: the first failure after a success, and the first success
/// after failures.
pub const STREAM_FAILING: &str = "log_stream.failing";
pub const STREAM_RECOVERED: &str = "log_stream.recover";

/// The entity type of a stream in the entries about it.
pub const STREAM_ENTITY_TYPE: &str = "LogStream";

/// A batch's limits when the stream does not set them.
pub const DEFAULT_MAX_ENTRIES: u32 = 100;
pub const DEFAULT_MAX_BYTES: u32 = 1024 * 1024;
/// The most a stream may ask for.
pub const MAX_MAX_ENTRIES: u32 = 1000;
pub const MAX_MAX_BYTES: u32 = 10 * 1024 * 1024;
/// How long the previous secret still signs after a rotation, unless the request says.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_NAME_CHARS: usize = 200;
const MAX_FILTER_VALUES: usize = 100;

/// Where a stream delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Transport {
    /// A POST of each batch to this `http` or `https` URL, signed (Standard Webhooks), with
    /// `headers` (a SIEM's token: `authorization: Splunk …`). Header names are kept in lowercase
    /// and each value sealed ([`StreamSecrets::seal_header`]): the database holds no usable
    /// token, and no answer or trail entry shows one.
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
    /// RFC 5424 messages over TCP to this host and port, one per entry; over TLS (RFC 5425) when
    /// `tls` is set, the receiver's certificate checked.
    Syslog {
        host: String,
        port: u16,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tls: bool,
    },
    /// The operator's NATS JetStream (`--nats-url`): one message per entry on the organization's
    /// subject.
    Nats,
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Webhook { .. } => "webhook",
            Transport::Syslog { .. } => "syslog",
            Transport::Nats => "nats",
        }
    }

    /// Where it delivers, for people: the URL (each query value hidden: receivers take tokens
    /// there, and this is shown and recorded), or `host:port`.
    pub fn target(&self) -> String {
        match self {
            Transport::Webhook { url, .. } => hide_query_values(url),
            Transport::Syslog {
                host,
                port,
                tls: false,
            } => format!("{host}:{port}"),
            Transport::Syslog {
                host,
                port,
                tls: true,
            } => format!("{host}:{port} (TLS)"),
            Transport::Nats => "the server's NATS JetStream".into(),
        }
    }

    /// Whether deliveries are signed (webhooks; syslog carries no signature).
    pub fn signed(&self) -> bool {
        matches!(self, Transport::Webhook { .. })
    }

    /// The transport as the API shows it and the trail records it: a webhook URL's query values
    /// hidden ([`Transport::target`]).
    pub fn shown(&self) -> Value {
        match self {
            Transport::Webhook { headers, .. } if headers.is_empty() => {
                json!({"type": "webhook", "url": self.target()})
            }
            Transport::Webhook { headers, .. } => {
                let hidden: Map<String, Value> = headers
                    .keys()
                    .map(|name| (name.clone(), json!("…")))
                    .collect();
                json!({"type": "webhook", "url": self.target(), "headers": hidden})
            }
            Transport::Syslog { .. } | Transport::Nats => json!(self),
        }
    }
}

/// A URL with each query parameter's value replaced by `…` (`?token=…&region=…`), for people
/// to read (it is not a URL to call).
fn hide_query_values(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    let names: Vec<String> = query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| format!("{}=…", part.split('=').next().unwrap_or_default()))
        .collect();
    format!("{base}?{}", names.join("&"))
}

/// Which entries a stream delivers: those of the listed channels, actions and actor types, each
/// list empty for any. An action matches an entry's `action` or its `detailed_action`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actor_types: Vec<ActorType>,
}

impl StreamFilter {
    pub fn matches(&self, entry: &Entry) -> bool {
        let e = &entry.event;
        (self.channels.is_empty() || self.channels.contains(&e.channel))
            && (self.actions.is_empty()
                || self.actions.contains(&e.action)
                || e.detailed_action
                    .as_ref()
                    .is_some_and(|d| self.actions.contains(d)))
            && (self.actor_types.is_empty() || self.actor_types.contains(&e.actor.kind))
    }
}

/// What a stream's configuration is, as stored (JSON) and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub transport: Transport,
    #[serde(default)]
    pub filter: StreamFilter,
    /// `native`: each entry as `GET /v1/events` lists it, with its `organization_id`.
    #[serde(default = "native")]
    pub format: String,
    /// At most this many entries in one batch (a webhook POST, or a syslog connection's
    /// messages).
    #[serde(default = "default_max_entries")]
    pub max_entries: u32,
    /// At most about this many bytes of entries in one batch (one entry larger than this is sent
    /// alone).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u32,
}

fn native() -> String {
    "native".into()
}

fn default_max_entries() -> u32 {
    DEFAULT_MAX_ENTRIES
}

fn default_max_bytes() -> u32 {
    DEFAULT_MAX_BYTES
}

impl StreamSpec {
    /// The stored text of a stream ([`Stream::spec`]).
    pub fn parse_stored(text: &str) -> Result<StreamSpec, StoreError> {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Other(format!("a stored stream's spec does not parse: {e}")))
    }

    fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a spec serializes")
    }
}

/// A field of a stream request that cannot be accepted, as the API names it (`transport.url`,
/// `filter.channels[2]`), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamProblem {
    pub field: String,
    pub message: String,
}

impl StreamProblem {
    fn new(field: &str, message: impl Into<String>) -> StreamProblem {
        StreamProblem {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(StreamProblem),
    #[error("no such stream")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<StreamProblem> for StreamError {
    fn from(p: StreamProblem) -> StreamError {
        StreamError::Invalid(p)
    }
}

/// A request's fields for a stream, each `None` when the request leaves it out. For a new stream
/// `transport` is required and the rest default; for an edit, what is left out stays.
#[derive(Debug, Clone, Default)]
pub struct StreamFields {
    pub name: Option<Value>,
    pub transport: Option<Value>,
    pub filter: Option<Value>,
    pub format: Option<Value>,
    pub max_entries: Option<Value>,
    pub max_bytes: Option<Value>,
    /// The first `seq` to deliver: a back-fill from the trail (on an edit, a replay from there).
    /// A new stream without it starts after the newest entry.
    pub from_seq: Option<Value>,
}

impl StreamFields {
    /// Reads a JSON object's fields; a field it does not know is refused, so a typo never goes
    /// unnoticed.
    pub fn from_object(object: Map<String, Value>) -> Result<StreamFields, StreamProblem> {
        let mut fields = StreamFields::default();
        for (name, value) in object {
            if value.is_null() && name != "filter" {
                continue;
            }
            let slot = match name.as_str() {
                "name" => &mut fields.name,
                "transport" => &mut fields.transport,
                "filter" => &mut fields.filter,
                "format" => &mut fields.format,
                "max_entries" => &mut fields.max_entries,
                "max_bytes" => &mut fields.max_bytes,
                "from_seq" => &mut fields.from_seq,
                other => {
                    return Err(StreamProblem::new(
                        other,
                        "is not a field of a stream (name, transport, filter, format, \
                         max_entries, max_bytes, from_seq)",
                    ));
                }
            };
            *slot = Some(value);
        }
        Ok(fields)
    }
}

/// A request's `filter` from the lists a form or the command line gives (each empty for any):
/// `None` when all are empty. Checked as any request's filter is, by [`create`] and [`edit`].
pub fn filter_value(
    channels: &[String],
    actions: &[String],
    actor_types: &[String],
) -> Option<Value> {
    let mut filter = Map::new();
    for (key, values) in [
        ("channels", channels),
        ("actions", actions),
        ("actor_types", actor_types),
    ] {
        if !values.is_empty() {
            filter.insert(key.into(), json!(values));
        }
    }
    (!filter.is_empty()).then_some(Value::Object(filter))
}

fn check_name(value: &Value) -> Result<String, StreamProblem> {
    let name = value
        .as_str()
        .ok_or_else(|| StreamProblem::new("name", "must be a string"))?
        .trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(StreamProblem::new(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(StreamProblem::new(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// Checks a transport as a request gives it: the kind, and a target the guard allows (a literal
/// address, or `localhost`, refused here already; names are checked again at every connection).
/// A webhook's header values come back sealed with `secrets`.
pub fn check_transport(
    value: &Value,
    guard: TargetGuard,
    secrets: &StreamSecrets,
) -> Result<Transport, StreamProblem> {
    let object = value.as_object().ok_or_else(|| {
        StreamProblem::new(
            "transport",
            "must be an object: {\"type\": \"webhook\", \"url\": …}, {\"type\": \"syslog\", \
             \"host\": …, \"port\": …} or {\"type\": \"nats\"}",
        )
    })?;
    let kind = object.get("type").and_then(Value::as_str).ok_or_else(|| {
        StreamProblem::new("transport.type", "must be `webhook`, `syslog` or `nats`")
    })?;
    let allowed: &[&str] = match kind {
        "webhook" => &["type", "url", "headers"],
        "syslog" => &["type", "host", "port", "tls"],
        "nats" if !guard.nats => {
            return Err(StreamProblem::new(
                "transport.type",
                "this server publishes to no NATS server (its operator sets one with --nats-url); \
                 use `webhook` or `syslog`",
            ));
        }
        "nats" => &["type"],
        _ => {
            return Err(StreamProblem::new(
                "transport.type",
                "must be `webhook`, `syslog` or `nats`",
            ));
        }
    };
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(StreamProblem::new(
            &format!("transport.{unknown}"),
            format!(
                "is not a field of a {kind} transport ({})",
                allowed.join(", ")
            ),
        ));
    }
    match kind {
        "nats" => Ok(Transport::Nats),
        "webhook" => {
            let url = object
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| StreamProblem::new("transport.url", "is required (a string)"))?;
            check_url(url, guard)?;
            let headers = match object.get("headers") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(value) => check_headers(value, secrets)?,
            };
            Ok(Transport::Webhook {
                url: url.to_string(),
                headers,
            })
        }
        _ => {
            let host = object
                .get("host")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .ok_or_else(|| StreamProblem::new("transport.host", "is required (a string)"))?;
            if host.len() > 253
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            {
                return Err(StreamProblem::new(
                    "transport.host",
                    "must be a host name or an IP address",
                ));
            }
            check_host(host, "transport.host", guard)?;
            let port = object
                .get("port")
                .and_then(Value::as_u64)
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| {
                    StreamProblem::new("transport.port", "is required: a port from 1 to 65535")
                })?;
            let tls = match object.get("tls") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(tls)) => *tls,
                Some(_) => {
                    return Err(StreamProblem::new(
                        "transport.tls",
                        "must be true (TLS, RFC 5425) or false (plain TCP)",
                    ));
                }
            };
            Ok(Transport::Syslog {
                host: host.to_string(),
                port: port as u16,
                tls,
            })
        }
    }
}

/// The most headers a webhook stream may add, and the longest value.
const MAX_HEADERS: usize = 10;
const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// Checks a webhook's extra headers (`{"Authorization": "Splunk …"}`) and seals their values.
/// Names are HTTP tokens, kept in lowercase; those Stele sets itself are refused, so a stream
/// cannot forge its signature or its body's type.
fn check_headers(
    value: &Value,
    secrets: &StreamSecrets,
) -> Result<BTreeMap<String, String>, StreamProblem> {
    let object = value
        .as_object()
        .filter(|o| o.len() <= MAX_HEADERS)
        .ok_or_else(|| {
            StreamProblem::new(
                "transport.headers",
                format!(
                    "must be an object of at most {MAX_HEADERS} headers: {{\"Authorization\": \"Splunk …\"}}"
                ),
            )
        })?;
    let mut headers = BTreeMap::new();
    for (name, value) in object {
        let field = format!("transport.headers.{name}");
        let lower = name.to_ascii_lowercase();
        let token = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if !token {
            return Err(StreamProblem::new(
                &field,
                "is not a header name (letters, digits and !#$%&'*+-.^_`|~, at most 64)",
            ));
        }
        if matches!(
            lower.as_str(),
            "content-type"
                | "content-length"
                | "host"
                | "transfer-encoding"
                | "connection"
                | "user-agent"
                | "te"
                | "trailer"
                | "upgrade"
                | "expect"
        ) || lower.starts_with("webhook-")
        {
            return Err(StreamProblem::new(&field, "is set by Stele itself"));
        }
        if headers.contains_key(&lower) {
            return Err(StreamProblem::new(&field, "is given twice"));
        }
        let text = value
            .as_str()
            .filter(|v| {
                !v.trim().is_empty()
                    && v.len() <= MAX_HEADER_VALUE_BYTES
                    && v.chars().all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
            })
            .ok_or_else(|| {
                StreamProblem::new(
                    &field,
                    format!(
                        "must be a string of printable ASCII (at most {MAX_HEADER_VALUE_BYTES} bytes)"
                    ),
                )
            })?;
        headers.insert(lower.clone(), secrets.seal_header(&lower, text.trim()));
    }
    Ok(headers)
}

fn check_url(url: &str, guard: TargetGuard) -> Result<(), StreamProblem> {
    let field = "transport.url";
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| StreamProblem::new(field, format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(StreamProblem::new(
            field,
            "must be an https:// (or http://) URL",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(StreamProblem::new(
            field,
            "must not carry a user name or password (they would be shown with the stream)",
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| StreamProblem::new(field, "must name a host"))?;
    check_host(host, field, guard)
}

/// Refuses a literal address the guard does not allow, and `localhost`; other names are checked
/// where the connection is made.
fn check_host(host: &str, field: &str, guard: TargetGuard) -> Result<(), StreamProblem> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let refusal = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => guard.check(host, ip).err().map(|r| r.to_string()),
        Err(_)
            if !guard.allow_private
                && (bare.eq_ignore_ascii_case("localhost")
                    || bare.to_ascii_lowercase().ends_with(".localhost")) =>
        {
            Some(format!(
                "{host} is this machine; stream targets must be public unless the operator \
                 allows private targets (--streams-allow-private-targets)"
            ))
        }
        Err(_) => None,
    };
    match refusal {
        Some(message) => Err(StreamProblem::new(field, message)),
        None => Ok(()),
    }
}

fn check_filter(value: &Value) -> Result<StreamFilter, StreamProblem> {
    if value.is_null() {
        return Ok(StreamFilter::default());
    }
    let object = value.as_object().ok_or_else(|| {
        StreamProblem::new(
            "filter",
            "must be an object: {\"channels\": [...], \"actions\": [...], \"actor_types\": [...]}",
        )
    })?;
    let mut filter = StreamFilter::default();
    for (name, list) in object {
        let field = format!("filter.{name}");
        let values: Vec<String> = match list {
            Value::Null => Vec::new(),
            Value::Array(items) if items.len() <= MAX_FILTER_VALUES => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str()
                        .filter(|s| !s.is_empty() && s.len() <= 256)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            StreamProblem::new(
                                &format!("{field}[{i}]"),
                                "must be a non-empty string of at most 256 bytes",
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(StreamProblem::new(
                    &field,
                    format!("must be a list of at most {MAX_FILTER_VALUES} strings"),
                ));
            }
        };
        match name.as_str() {
            "channels" => filter.channels = values,
            "actions" => filter.actions = values,
            "actor_types" => {
                filter.actor_types = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        ActorType::ALL
                            .into_iter()
                            .find(|t| t.as_str() == v)
                            .ok_or_else(|| {
                                StreamProblem::new(
                                    &format!("{field}[{i}]"),
                                    "is not an actor type (user, api, webhook, system, scheduler)",
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => {
                return Err(StreamProblem::new(
                    &field,
                    "is not a stream filter (channels, actions, actor_types)",
                ));
            }
        }
    }
    Ok(filter)
}

fn check_limit(value: &Value, field: &str, max: u32) -> Result<u32, StreamProblem> {
    value
        .as_u64()
        .filter(|n| (1..=u64::from(max)).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| StreamProblem::new(field, format!("must be a number from 1 to {max}")))
}

fn check_from_seq(value: &Value, platform_wide: bool) -> Result<Seq, StreamProblem> {
    if platform_wide {
        // Each organization numbers its own entries: no one `seq` but the first means the same
        // place in all of them.
        return value
            .as_i64()
            .filter(|n| *n == 1)
            .map(Seq::new)
            .ok_or_else(|| {
                StreamProblem::new(
                    "from_seq",
                    "of a platform-wide stream can only be 1: every organization's trail from \
                     its first entry",
                )
            });
    }
    value
        .as_i64()
        .filter(|n| *n >= 1)
        .map(Seq::new)
        .ok_or_else(|| {
            StreamProblem::new(
                "from_seq",
                "must be a seq from 1 on: the first entry to deliver",
            )
        })
}

/// Whether streams created for `org` are platform-wide: it is the platform's own organization.
async fn is_platform_org(store: &dyn Store, org: OrgKey) -> Result<bool, StoreError> {
    Ok(store
        .list_orgs()
        .await?
        .iter()
        .any(|o| o.key == org && o.platform))
}

/// The spec `fields` describe, on top of `base` (an edit) or of the defaults (a new stream,
/// which must name its transport).
fn spec_of(
    fields: &StreamFields,
    base: Option<&StreamSpec>,
    guard: TargetGuard,
    secrets: &StreamSecrets,
) -> Result<StreamSpec, StreamProblem> {
    let transport = match (&fields.transport, base) {
        (Some(value), base) => {
            let mut transport = check_transport(value, guard, secrets)?;
            // A new URL without `headers` keeps the stream's headers (its token): `{}` drops
            // them.
            if let (
                Transport::Webhook { headers, .. },
                Some(StreamSpec {
                    transport: Transport::Webhook { headers: kept, .. },
                    ..
                }),
            ) = (&mut transport, base)
                && value.get("headers").is_none()
            {
                headers.clone_from(kept);
            }
            transport
        }
        (None, Some(base)) => base.transport.clone(),
        (None, None) => {
            return Err(StreamProblem::new(
                "transport",
                "is required: {\"type\": \"webhook\", \"url\": …} or {\"type\": \"syslog\", \
                 \"host\": …, \"port\": …}",
            ));
        }
    };
    let filter = match (&fields.filter, base) {
        (Some(value), _) => check_filter(value)?,
        (None, Some(base)) => base.filter.clone(),
        (None, None) => StreamFilter::default(),
    };
    let format = match &fields.format {
        Some(value) => value
            .as_str()
            .and_then(envelope::Format::parse)
            .map(|f| f.as_str().to_string())
            .ok_or_else(|| {
                StreamProblem::new("format", format!("must be {}", envelope::Format::names()))
            })?,
        None => base.map_or_else(native, |b| b.format.clone()),
    };
    if format != "native" && !matches!(transport, Transport::Webhook { .. }) {
        return Err(StreamProblem::new(
            "format",
            format!(
                "`{format}` is the body of a webhook's POST; {} streams send `native` entries",
                transport.kind()
            ),
        ));
    }
    let max_entries = match &fields.max_entries {
        Some(value) => check_limit(value, "max_entries", MAX_MAX_ENTRIES)?,
        None => base.map_or(DEFAULT_MAX_ENTRIES, |b| b.max_entries),
    };
    let max_bytes = match &fields.max_bytes {
        Some(value) => check_limit(value, "max_bytes", MAX_MAX_BYTES)?,
        None => base.map_or(DEFAULT_MAX_BYTES, |b| b.max_bytes),
    };
    Ok(StreamSpec {
        transport,
        filter,
        format,
        max_entries,
        max_bytes,
    })
}

/// The secrets that sign each stream's webhooks, derived from the server's secret
/// (`crate::secrets::streams_secret`): every server sharing the database (and its signing key)
/// derives the same ones, and nothing of them is stored.
#[derive(Clone)]
pub struct StreamSecrets {
    secret: [u8; 32],
}

impl StreamSecrets {
    pub fn new(secret: [u8; 32]) -> StreamSecrets {
        StreamSecrets { secret }
    }

    /// The key of `version` of the stream's secret.
    pub fn key(&self, stream_id: &str, version: u32) -> [u8; 32] {
        let mut mac = hmac::Hmac::<hmac_sha2::Sha256>::new_from_slice(&self.secret)
            .expect("HMAC takes any key length");
        mac.update(b"stele-stream-secret-v1\0");
        mac.update(stream_id.as_bytes());
        mac.update(b"\0");
        mac.update(&version.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The keys a delivery at `now` signs with: the current one, and the previous one while the
    /// rotation's overlap lasts.
    pub fn signing_keys(&self, stream: &Stream, now: Millis) -> Vec<[u8; 32]> {
        let mut keys = vec![self.key(&stream.id, stream.secret_version)];
        if stream.secret_version > 1 && stream.previous_secret_until.is_some_and(|t| now < t) {
            keys.push(self.key(&stream.id, stream.secret_version - 1));
        }
        keys
    }

    /// The current secret as the receiver configures it (`whsec_…`).
    pub fn secret_text(&self, stream: &Stream) -> String {
        webhook::secret_text(&self.key(&stream.id, stream.secret_version))
    }

    fn derived(&self, purpose: &[u8]) -> [u8; 32] {
        let mut mac = hmac::Hmac::<hmac_sha2::Sha256>::new_from_slice(&self.secret)
            .expect("HMAC takes any key length");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    /// A webhook header's value sealed for storage: `v1.` and the base64 of a nonce and the
    /// value encrypted with ChaCha20-Poly1305 under a key derived from the server's secret, the
    /// header's name as associated data. The nonce is derived from the name and value (a
    /// synthetic IV), so the same value seals to the same text: a request that sends a stream's
    /// token again changes nothing, while two values never share a nonce.
    pub fn seal_header(&self, name: &str, value: &str) -> String {
        use base64::Engine as _;
        use ring::aead;
        let mut mac = hmac::Hmac::<hmac_sha2::Sha256>::new_from_slice(
            &self.derived(b"stele-stream-header-nonce-v1"),
        )
        .expect("HMAC takes any key length");
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        let nonce: [u8; aead::NONCE_LEN] = mac.finalize().into_bytes()[..aead::NONCE_LEN]
            .try_into()
            .expect("a SHA-256 MAC is longer than a nonce");
        let mut sealed = value.as_bytes().to_vec();
        self.header_key()
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(name.as_bytes()),
                &mut sealed,
            )
            .expect("a header value is far below ChaCha20-Poly1305's limit");
        let mut text = nonce.to_vec();
        text.extend_from_slice(&sealed);
        format!(
            "v1.{}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    /// A sealed header's value, or `None` when it was not sealed by this server's secret (the
    /// signing key changed) or was altered.
    pub fn open_header(&self, name: &str, sealed: &str) -> Option<String> {
        use base64::Engine as _;
        use ring::aead;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed.strip_prefix("v1.")?)
            .ok()?;
        if bytes.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(aead::NONCE_LEN);
        let mut buffer = ciphertext.to_vec();
        let opened = self
            .header_key()
            .open_in_place(
                aead::Nonce::try_assume_unique_for_key(nonce).ok()?,
                aead::Aad::from(name.as_bytes()),
                &mut buffer,
            )
            .ok()?;
        String::from_utf8(opened.to_vec()).ok()
    }

    /// Every header of a webhook transport, opened; the name of the first that does not open.
    pub fn open_headers(
        &self,
        headers: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, String> {
        headers
            .iter()
            .map(|(name, sealed)| {
                self.open_header(name, sealed)
                    .map(|value| (name.clone(), value))
                    .ok_or_else(|| name.clone())
            })
            .collect()
    }

    fn header_key(&self) -> ring::aead::LessSafeKey {
        let key = ring::aead::UnboundKey::new(
            &ring::aead::CHACHA20_POLY1305,
            &self.derived(b"stele-stream-header-key-v1"),
        )
        .expect("a 32-byte key");
        ring::aead::LessSafeKey::new(key)
    }
}

/// How a stream stands, for people: `paused`, `failing` (active, but its last attempt failed) or
/// `active`.
pub fn health(stream: &Stream) -> &'static str {
    match stream.state {
        StreamState::Paused => "paused",
        StreamState::Active if stream.failures > 0 => "failing",
        StreamState::Active => "active",
    }
}

/// A stream as the API and the console show it: its configuration and its health, with the lag
/// behind the organization's newest entry.
#[derive(Debug, Clone)]
pub struct StreamView {
    pub stream: Stream,
    pub spec: StreamSpec,
    /// The organization's newest `seq` (a platform-wide stream: unused, 0).
    pub head: Seq,
    /// Entries after the cursor (whether or not the filter will deliver them); a platform-wide
    /// stream's in every organization together.
    pub lag_entries: u64,
    /// How long ago the oldest undelivered entry was recorded (0 when none waits).
    pub lag_seconds: f64,
    /// A platform-wide stream's organizations, and how many of them have entries it has not
    /// delivered yet.
    pub organizations: Option<(usize, usize)>,
}

impl StreamView {
    /// Where the delivery stands, for people: `seq 41`, or a platform-wide stream's cursors.
    pub fn position(&self) -> String {
        match self.organizations {
            Some((all, behind)) => format!(
                "a cursor in each of {all} organizations ({behind} with entries to deliver)"
            ),
            None => format!("seq {}", self.stream.cursor),
        }
    }

    /// The view as JSON (the API's stream object); the secret is never part of it.
    pub fn to_json(&self) -> Value {
        use stele_core::time::format_rfc3339;
        let s = &self.stream;
        let time = |t: Option<Millis>| t.map(format_rfc3339);
        json!({
            "id": s.id,
            "name": s.name,
            "state": health(s),
            "paused_reason": s.paused_reason,
            "transport": self.spec.transport.shown(),
            "filter": self.spec.filter,
            "format": self.spec.format,
            "max_entries": self.spec.max_entries,
            "max_bytes": self.spec.max_bytes,
            "scope": if s.platform_wide { "platform" } else { "organization" },
            "cursor": (!s.platform_wide).then_some(s.cursor),
            "head": (!s.platform_wide).then_some(self.head),
            "organizations": self.organizations.map(|(all, behind)| json!({"total": all, "behind": behind})),
            "lag_entries": self.lag_entries,
            "lag_seconds": self.lag_seconds,
            "delivered": s.delivered,
            "failures": s.failures,
            "last_error": s.last_error,
            "last_error_at": time(s.last_error_at),
            "last_delivery_at": time(s.last_delivery_at),
            "retry_at": time(s.retry_at),
            "secret_version": s.secret_version,
            "previous_secret_until": time(s.previous_secret_until),
            "created_at": format_rfc3339(s.created_at),
            "updated_at": format_rfc3339(s.updated_at),
        })
    }
}

/// One stream's view at `now`.
pub async fn view(
    store: &dyn Store,
    stream: Stream,
    now: Millis,
) -> Result<StreamView, StreamError> {
    let spec = StreamSpec::parse_stored(&stream.spec)?;
    if stream.platform_wide {
        return platform_view(store, stream, spec, now).await;
    }
    let head = store.head_seq(stream.org).await?;
    let lag_entries = (head.get() - stream.cursor.get()).max(0) as u64;
    let lag_seconds = if lag_entries == 0 {
        0.0
    } else {
        match store
            .entries_after(stream.org, stream.cursor, 1)
            .await?
            .first()
        {
            Some(oldest) => (now - oldest.recorded_at).max(0) as f64 / 1000.0,
            None => 0.0,
        }
    };
    Ok(StreamView {
        stream,
        spec,
        head,
        lag_entries,
        lag_seconds,
        organizations: None,
    })
}

/// A platform-wide stream's view: its lag summed over the organizations, and the age of the
/// oldest entry any of them waits with.
async fn platform_view(
    store: &dyn Store,
    stream: Stream,
    spec: StreamSpec,
    now: Millis,
) -> Result<StreamView, StreamError> {
    let progress = store.stream_progress(&stream.id).await?;
    let behind: Vec<_> = progress.iter().filter(|p| p.behind() > 0).collect();
    let oldest = if behind.is_empty() {
        None
    } else {
        store.stream_oldest_waiting(&stream.id).await?
    };
    Ok(StreamView {
        head: Seq::new(0),
        lag_entries: behind.iter().map(|p| p.behind()).sum(),
        lag_seconds: oldest.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0),
        organizations: Some((progress.len(), behind.len())),
        stream,
        spec,
    })
}

/// The organization's streams, viewed.
pub async fn list(
    store: &dyn Store,
    org: OrgKey,
    now: Millis,
) -> Result<Vec<StreamView>, StreamError> {
    let mut views = Vec::new();
    for stream in store.streams(org).await? {
        views.push(view(store, stream, now).await?);
    }
    Ok(views)
}

/// One of the organization's streams, viewed; `NotFound` for another organization's.
pub async fn show(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    now: Millis,
) -> Result<StreamView, StreamError> {
    let stream = store.stream(org, id).await?.ok_or(StreamError::NotFound)?;
    view(store, stream, now).await
}

/// A new stream and its webhook secret, shown this once (a rotation shows the next one); a
/// syslog stream has none (syslog carries no signature).
pub struct Created {
    pub view: StreamView,
    pub secret: Option<String>,
}

/// Creates a stream from a request's fields, starting after the newest entry or at `from_seq`,
/// and records it. A stream of the platform's own organization is platform-wide.
pub async fn create(
    store: &dyn Store,
    secrets: &StreamSecrets,
    guard: TargetGuard,
    org: OrgKey,
    fields: StreamFields,
    by: &By,
    now: Millis,
) -> Result<Created, StreamError> {
    let spec = spec_of(&fields, None, guard, secrets)?;
    let name = match &fields.name {
        Some(value) => check_name(value)?,
        None => spec.transport.target(),
    };
    let platform_wide = is_platform_org(store, org).await?;
    let from_seq = fields
        .from_seq
        .as_ref()
        .map(|value| check_from_seq(value, platform_wide))
        .transpose()?;
    let start = match (platform_wide, from_seq) {
        (true, from_seq) => StreamStart::EveryOrganization {
            from_now: from_seq.is_none(),
        },
        (false, Some(from_seq)) => StreamStart::After(from_seq.prev()),
        (false, None) => StreamStart::After(store.head_seq(org).await?),
    };
    let stream = store
        .create_stream(
            org,
            NewStream {
                name,
                spec: spec.to_text(),
                start,
                created_at: now,
            },
        )
        .await?;
    let start = match start {
        StreamStart::After(seq) => added("start_after_seq", json!(seq)),
        StreamStart::EveryOrganization { from_now } => added(
            "start",
            json!(if from_now {
                "every organization's newest entry"
            } else {
                "every organization's first entry"
            }),
        ),
    };
    let mut changes = vec![
        added("name", json!(stream.name)),
        added("transport", spec.transport.shown()),
        added("filter", json!(spec.filter)),
        start,
    ];
    if stream.platform_wide {
        changes.push(added("scope", json!("platform")));
    }
    changes.retain(|c| c.new != Some(json!({})));
    let description = format!(
        "Created log stream \"{}\" to {} {}",
        stream.name,
        spec.transport.kind(),
        spec.transport.target()
    );
    record(
        store,
        org,
        by,
        &stream,
        STREAM_CREATED,
        "create",
        description,
        changes,
        now,
    )
    .await?;
    let secret = spec
        .transport
        .signed()
        .then(|| secrets.secret_text(&stream));
    Ok(Created {
        view: view(store, stream, now).await?,
        secret,
    })
}

/// Changes a stream's configuration from a request's fields (what they leave out stays);
/// `from_seq` replays from that entry. A failing stream whose transport or format changes tries
/// again at once (its failures and back-off cleared). Records what changed; a request that
/// changes nothing records nothing.
#[allow(clippy::too_many_arguments)]
pub async fn edit(
    store: &dyn Store,
    secrets: &StreamSecrets,
    guard: TargetGuard,
    org: OrgKey,
    id: &str,
    fields: StreamFields,
    by: &By,
    now: Millis,
) -> Result<StreamView, StreamError> {
    let before = store.stream(org, id).await?.ok_or(StreamError::NotFound)?;
    let old_spec = StreamSpec::parse_stored(&before.spec)?;
    let spec = spec_of(&fields, Some(&old_spec), guard, secrets)?;
    let name = fields.name.as_ref().map(check_name).transpose()?;
    let cursor = fields
        .from_seq
        .as_ref()
        .map(|value| check_from_seq(value, before.platform_wide))
        .transpose()?
        .map(Seq::prev);
    let mut changes = Vec::new();
    if let Some(name) = name.as_ref().filter(|n| **n != before.name) {
        changes.push(changed("name", json!(before.name), json!(name)));
    }
    if spec.transport != old_spec.transport {
        changes.push(changed(
            "transport",
            old_spec.transport.shown(),
            spec.transport.shown(),
        ));
    }
    let (old, new) = (json!(old_spec), json!(spec));
    for key in ["filter", "format", "max_entries", "max_bytes"] {
        if old[key] != new[key] {
            changes.push(changed(key, old[key].clone(), new[key].clone()));
        }
    }
    match cursor {
        Some(_) if before.platform_wide => changes.push(changed(
            "start",
            Value::Null,
            json!("every organization's first entry"),
        )),
        Some(cursor) => changes.push(changed("cursor", json!(before.cursor), json!(cursor))),
        None => {}
    }
    if changes.is_empty() {
        return view(store, before, now).await;
    }
    // A failing stream sent somewhere else, or in another format, tries at once: its back-off
    // was the old receiver's.
    let fresh_start = before.state == StreamState::Active
        && before.failures > 0
        && (spec.transport != old_spec.transport || spec.format != old_spec.format);
    let after = store
        .change_stream(
            org,
            id,
            StreamChange {
                name,
                spec: Some(spec.to_text()),
                cursor,
                state: fresh_start.then_some((StreamState::Active, None)),
                at: now,
                ..StreamChange::default()
            },
        )
        .await
        .map_err(not_found)?;
    let description = format!("Changed log stream \"{}\"", after.name);
    record(
        store,
        org,
        by,
        &after,
        STREAM_UPDATED,
        "update",
        description,
        changes,
        now,
    )
    .await?;
    view(store, after, now).await
}

/// Pauses a stream (delivery stops at its cursor until it is resumed) and records it.
pub async fn pause(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    reason: Option<String>,
    by: &By,
    now: Millis,
) -> Result<StreamView, StreamError> {
    let reason = reason
        .map(|r| {
            r.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(500)
                .collect::<String>()
        })
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "paused by a person".to_string());
    set_state(store, org, id, StreamState::Paused, Some(reason), by, now).await
}

/// Resumes a paused stream where its cursor stands, its back-off cleared, and records it.
pub async fn resume(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    by: &By,
    now: Millis,
) -> Result<StreamView, StreamError> {
    set_state(store, org, id, StreamState::Active, None, by, now).await
}

async fn set_state(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    state: StreamState,
    reason: Option<String>,
    by: &By,
    now: Millis,
) -> Result<StreamView, StreamError> {
    let before = store.stream(org, id).await?.ok_or(StreamError::NotFound)?;
    if before.state == state && (state == StreamState::Paused || before.failures == 0) {
        return view(store, before, now).await;
    }
    let after = store
        .change_stream(
            org,
            id,
            StreamChange {
                state: Some((state, reason.clone())),
                at: now,
                ..StreamChange::default()
            },
        )
        .await
        .map_err(not_found)?;
    let (detailed, verb) = match state {
        StreamState::Paused => (STREAM_PAUSED, "Paused"),
        StreamState::Active => (STREAM_RESUMED, "Resumed"),
    };
    let mut description = format!("{verb} log stream \"{}\"", after.name);
    if let Some(reason) = &reason {
        description.push_str(&format!(": {reason}"));
    }
    let changes = vec![changed(
        "state",
        json!(health(&before)),
        json!(health(&after)),
    )];
    record(
        store,
        org,
        by,
        &after,
        detailed,
        "update",
        description,
        changes,
        now,
    )
    .await?;
    view(store, after, now).await
}

/// Rotates a stream's secret: the new one signs from now, the previous one beside it for
/// `overlap` (so the receiver can switch without losing a delivery). Returns the new secret,
/// shown this once.
pub async fn rotate_secret(
    store: &dyn Store,
    secrets: &StreamSecrets,
    org: OrgKey,
    id: &str,
    overlap: Duration,
    by: &By,
    now: Millis,
) -> Result<Created, StreamError> {
    let overlap = overlap.min(MAX_ROTATION_OVERLAP);
    let before = store.stream(org, id).await?.ok_or(StreamError::NotFound)?;
    if !StreamSpec::parse_stored(&before.spec)?.transport.signed() {
        return Err(StreamProblem::new(
            "transport",
            "only a webhook stream is signed; this stream has no secret to rotate",
        )
        .into());
    }
    let after = store
        .change_stream(
            org,
            id,
            StreamChange {
                rotate_secret: Some(now + overlap.as_millis() as Millis),
                at: now,
                ..StreamChange::default()
            },
        )
        .await
        .map_err(not_found)?;
    let description = format!(
        "Rotated the secret of log stream \"{}\" (the previous one signs too for {} s)",
        after.name,
        overlap.as_secs()
    );
    let changes = vec![changed(
        "secret_version",
        json!(after.secret_version - 1),
        json!(after.secret_version),
    )];
    record(
        store,
        org,
        by,
        &after,
        STREAM_SECRET_ROTATED,
        "update",
        description,
        changes,
        now,
    )
    .await?;
    let secret = Some(secrets.secret_text(&after));
    Ok(Created {
        view: view(store, after, now).await?,
        secret,
    })
}

/// Deletes a stream (its deliveries stop; what it delivered stays delivered) and records it.
pub async fn delete(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    by: &By,
    now: Millis,
) -> Result<(), StreamError> {
    let stream = store.stream(org, id).await?.ok_or(StreamError::NotFound)?;
    if !store.delete_stream(org, id).await? {
        return Err(StreamError::NotFound);
    }
    let description = format!("Deleted log stream \"{}\"", stream.name);
    let changes = vec![Change {
        field: "name".into(),
        old: Some(json!(stream.name)),
        new: None,
    }];
    record(
        store,
        org,
        by,
        &stream,
        STREAM_DELETED,
        "delete",
        description,
        changes,
        now,
    )
    .await?;
    Ok(())
}

fn not_found(e: StoreError) -> StreamError {
    match e {
        StoreError::NotFound => StreamError::NotFound,
        other => StreamError::Store(other),
    }
}

fn added(field: &str, value: Value) -> Change {
    Change {
        field: field.into(),
        old: None,
        new: Some(value),
    }
}

fn changed(field: &str, old: Value, new: Value) -> Change {
    Change {
        field: field.into(),
        old: Some(old),
        new: Some(new),
    }
}

/// The entry about a stream's change, in the organization's trail (and the platform's, for a
/// platform key).
#[allow(clippy::too_many_arguments)]
async fn record(
    store: &dyn Store,
    org: OrgKey,
    by: &By,
    stream: &Stream,
    detailed_action: &str,
    action: &str,
    description: String,
    changes: Vec<Change>,
    now: Millis,
) -> Result<(), StoreError> {
    let event = stream_event(
        by.actor.clone(),
        by.context.clone(),
        stream,
        detailed_action,
        action,
        description,
        changes,
        now,
    );
    crate::trail::record_by(store, org, event, by).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn stream_event(
    actor: Actor,
    context: stele_core::Context,
    stream: &Stream,
    detailed_action: &str,
    action: &str,
    description: String,
    changes: Vec<Change>,
    now: Millis,
) -> NewEvent {
    NewEvent {
        occurred_at: now,
        action: action.into(),
        detailed_action: Some(detailed_action.into()),
        channel: SECURITY_CHANNEL.into(),
        description: Some(description),
        outcome: EventOutcome::Success,
        actor,
        entity: Some(Entity::new(
            STREAM_ENTITY_TYPE,
            Some(stream.id.clone()),
            Some(stream.name.clone()),
        )),
        entity_ids: vec![],
        context,
        changes,
        metadata: BTreeMap::new(),
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    }
}

/// What one attempt to deliver a batch came to, whatever the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth trying again (a network error, 408, 429, 5xx); `after` is the receiver's
    /// `Retry-After` if it sent one.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// The receiver refused in a way retrying cannot fix; the stream pauses with this reason.
    Refused(String),
}

/// An entry as every stream delivers it (format `native`): its JSON as the list of entries
/// (`GET /v1/events`) shows it, with the organization's public id first.
pub fn native_record(org_id: &str, entry: &Entry) -> Value {
    let mut record = Map::new();
    record.insert("organization_id".into(), json!(org_id));
    if let Value::Object(fields) = entry.to_json() {
        record.extend(fields);
    }
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: Value) -> StreamFields {
        StreamFields::from_object(value.as_object().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_spec_names_the_field_it_refuses() {
        let guard = TargetGuard::default();
        let secrets = StreamSecrets::new([3; 32]);
        let cases = [
            (json!({}), "transport"),
            (json!({"transport": {"type": "ftp"}}), "transport.type"),
            (json!({"transport": {"type": "webhook"}}), "transport.url"),
            (
                json!({"transport": {"type": "webhook", "url": "ftp://x.example"}}),
                "transport.url",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://127.0.0.1/in"}}),
                "transport.url",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "http://169.254.169.254/latest"}}),
                "transport.url",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://localhost:8443/"}}),
                "transport.url",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example", "tls": 1}}),
                "transport.tls",
            ),
            (
                json!({"transport": {"type": "syslog", "host": "10.0.0.5", "port": 514}}),
                "transport.host",
            ),
            (
                json!({"transport": {"type": "syslog", "host": "logs.example", "port": 0}}),
                "transport.port",
            ),
            (
                json!({"transport": {"type": "syslog", "host": "logs.example", "port": 6514,
                                     "tls": "yes"}}),
                "transport.tls",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example"},
                       "filter": {"actor_types": ["robot"]}}),
                "filter.actor_types[0]",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example"},
                       "max_entries": 5000}),
                "max_entries",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example"},
                       "format": "splunk"}),
                "format",
            ),
            (
                json!({"transport": {"type": "syslog", "host": "logs.example", "port": 514},
                       "format": "splunk_hec"}),
                "format",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example",
                                     "headers": ["Authorization"]}}),
                "transport.headers",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example",
                                     "headers": {"Webhook-Signature": "v1,forged"}}}),
                "transport.headers.Webhook-Signature",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example",
                                     "headers": {"Bad Name": "x"}}}),
                "transport.headers.Bad Name",
            ),
            (
                json!({"transport": {"type": "webhook", "url": "https://a.example",
                                     "headers": {"Authorization": "Splunk a\r\nHost: x"}}}),
                "transport.headers.Authorization",
            ),
        ];
        for (body, field) in cases {
            let problem = spec_of(&fields(body.clone()), None, guard, &secrets).unwrap_err();
            assert_eq!(problem.field, field, "{body}: {}", problem.message);
        }
        let allowed = TargetGuard {
            allow_private: true,
            ..TargetGuard::default()
        };
        let spec = spec_of(
            &fields(json!({"transport": {"type": "webhook", "url": "http://127.0.0.1:9/in"}})),
            None,
            allowed,
            &secrets,
        )
        .unwrap();
        assert_eq!(spec.max_entries, DEFAULT_MAX_ENTRIES);
        let tls = spec_of(
            &fields(
                json!({"transport": {"type": "syslog", "host": "logs.example", "port": 6514,
                                         "tls": true}}),
            ),
            None,
            guard,
            &secrets,
        )
        .unwrap();
        assert_eq!(tls.transport.target(), "logs.example:6514 (TLS)");
        assert_eq!(
            tls.transport.shown(),
            json!({"type": "syslog", "host": "logs.example", "port": 6514, "tls": true})
        );
        let unknown = StreamFields::from_object(json!({"nmae": "x"}).as_object().unwrap().clone())
            .unwrap_err();
        assert_eq!(unknown.field, "nmae");
    }

    #[test]
    fn header_values_are_sealed_shown_hidden_and_opened_only_by_the_same_secret() {
        let secrets = StreamSecrets::new([3; 32]);
        let spec = spec_of(
            &fields(
                json!({"transport": {"type": "webhook", "url": "https://splunk.example/in",
                                         "headers": {"Authorization": "Splunk t0k3n"}},
                           "format": "splunk_hec"}),
            ),
            None,
            TargetGuard::default(),
            &secrets,
        )
        .unwrap();
        assert_eq!(spec.format, "splunk_hec");
        let Transport::Webhook { headers, .. } = &spec.transport else {
            panic!("a webhook")
        };
        let sealed = &headers["authorization"];
        assert!(!spec.to_text().contains("t0k3n"), "{}", spec.to_text());
        assert_eq!(
            secrets.open_headers(headers).unwrap(),
            [("authorization".to_string(), "Splunk t0k3n".to_string())]
        );
        // The same value seals the same way (an edit that resends it is no change) ...
        assert_eq!(
            &secrets.seal_header("authorization", "Splunk t0k3n"),
            sealed
        );
        assert_ne!(
            &secrets.seal_header("authorization", "Splunk t0k3m"),
            sealed
        );
        // ... under its own name only, and by this secret only.
        assert_eq!(secrets.open_header("x-token", sealed), None);
        assert_eq!(
            StreamSecrets::new([4; 32]).open_header("authorization", sealed),
            None
        );
        assert_eq!(
            spec.transport.shown(),
            json!({"type": "webhook", "url": "https://splunk.example/in",
                   "headers": {"authorization": "…"}})
        );
    }

    #[test]
    fn secrets_differ_per_stream_and_version_and_overlap_only_while_it_lasts() {
        let secrets = StreamSecrets::new([7; 32]);
        assert_ne!(secrets.key("str_a", 1), secrets.key("str_b", 1));
        assert_ne!(secrets.key("str_a", 1), secrets.key("str_a", 2));
        let stream = Stream {
            id: "str_a".into(),
            org: OrgKey::new(1),
            platform_wide: false,
            name: "n".into(),
            spec: String::new(),
            state: StreamState::Active,
            paused_reason: None,
            cursor: Seq::new(0),
            delivered: 0,
            failures: 0,
            last_error: None,
            last_error_at: None,
            last_delivery_at: None,
            retry_at: None,
            secret_version: 2,
            previous_secret_until: Some(1_000),
            revision: 1,
            lease_owner: None,
            lease_until: None,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(secrets.signing_keys(&stream, 999).len(), 2);
        assert_eq!(
            secrets.signing_keys(&stream, 1_000),
            vec![secrets.key("str_a", 2)]
        );
        assert!(secrets.secret_text(&stream).starts_with("whsec_"));
    }
}
