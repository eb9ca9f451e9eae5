//! The API's JSON shapes as OpenAPI schemas: what the handlers read and write, field by field,
//! for the document only. Most answers are written with `json!` or by hand-written `Serialize`
//! impls (an entry's key order is part of the contract), so these types describe them rather
//! than being them; the HTTP tests validate real answers against these schemas
//! (`tests/http/openapi.rs`), so a shape that changes without its schema fails there.
//!
//! Field descriptions say what a client needs; docs/api.md says the rest.

#![allow(dead_code)] // Never built: each type exists for its `ToSchema` derive.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// Every error, whatever the status: a stable `code`, a message for people, and `details` that
/// name the field, the batch index or the line at fault.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_event",
    "message": "1 of 2 events are invalid; nothing was recorded",
    "details": [{"index": 1, "field": "actor.type",
                 "message": "must be one of user, api, webhook, system, scheduler"}]}}))]
pub struct Error {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// `invalid_parameter`, `invalid_event`, `unauthorized`, `forbidden`, `not_found`, … (the
    /// table in docs/api.md).
    pub code: String,
    pub message: String,
    /// Each problem: `field`, `message`, and `index` (batch position) or `line` (NDJSON) where
    /// they apply.
    pub details: Vec<Value>,
}

/// Who did it.
#[derive(ToSchema)]
pub struct Actor {
    #[schema(rename = "type")]
    pub kind: ActorType,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// A link to the actor in the sender's own application.
    pub href: Option<String>,
    /// Up to 64 string keys to JSON scalars.
    pub metadata: Option<BTreeMap<String, Value>>,
    /// Set by the WorkOS and Retraced doors only: the actor type as their client sent it.
    #[schema(read_only)]
    pub original_type: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ActorType {
    User,
    Api,
    Webhook,
    System,
    Scheduler,
}

/// A record the action touched.
#[derive(ToSchema)]
pub struct Entity {
    #[schema(rename = "type")]
    pub kind: String,
    /// A string (integers sent are stored as their decimal text).
    pub id: Option<String>,
    pub name: Option<String>,
    pub href: Option<String>,
    pub metadata: Option<BTreeMap<String, Value>>,
}

/// A record the action touched, as an event sends it: its `id` may be an integer.
#[derive(ToSchema)]
pub struct SentEntity {
    #[schema(rename = "type")]
    pub kind: String,
    pub id: Option<EntityId>,
    pub name: Option<String>,
    pub href: Option<String>,
    pub metadata: Option<BTreeMap<String, Value>>,
}

/// An entity id: a string, or an integer (stored as its decimal text).
#[derive(ToSchema)]
#[serde(untagged)]
pub enum EntityId {
    Text(String),
    Number(i64),
}

/// Where the request came from; `ip` and `user_agent` are personal data (erasable).
#[derive(ToSchema)]
pub struct Context {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub correlation_id: Option<String>,
    pub request_id: Option<String>,
    pub reason: Option<String>,
    /// `web`, `api`, `webhook`, `scheduler`, `system` or `cli`.
    pub source: Option<String>,
    pub api_key_id: Option<String>,
    pub impersonator: Option<Impersonator>,
    pub location: Option<String>,
}

#[derive(ToSchema)]
pub struct Impersonator {
    pub id: Option<String>,
    pub email: Option<String>,
}

/// One changed field: `old` is absent for a field that did not exist before, `new` for one that
/// no longer exists.
#[derive(ToSchema)]
pub struct Change {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

/// An event to record. Unknown fields are refused (422 naming them); `id`, `seq` and
/// `recorded_at` are the server's.
#[derive(ToSchema)]
#[schema(example = json!({"action": "update", "detailed_action": "printer.rename",
    "channel": "hardware", "description": "Renamed printer Alpha",
    "actor": {"type": "user", "id": "u1", "email": "ada@example.com"},
    "entity": {"type": "Printer", "id": "42", "name": "Alpha"},
    "context": {"ip": "203.0.113.7"}, "changes": [{"field": "name", "old": "A", "new": "Alpha"}]}))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// RFC 3339, any offset; default now. Refused more than 5 minutes ahead or before 1970.
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    /// A lowercase word (`create`, `update`, `login`, …): `[a-z][a-z0-9_]*`, at most 64.
    #[schema(pattern = "^[a-z][a-z0-9_]*$", max_length = 64)]
    pub action: String,
    /// The specific operation (`printJob.retry`), at most 128.
    #[schema(max_length = 128)]
    pub detailed_action: Option<String>,
    /// Default `default`.
    pub channel: Option<String>,
    /// At most 4096 characters; what `q` searches.
    #[schema(max_length = 4096)]
    pub description: Option<String>,
    pub outcome: Option<Outcome>,
    pub actor: Actor,
    pub entity: Option<SentEntity>,
    /// Every affected id of a bulk action (strings or integers, at most 10,000).
    pub entity_ids: Option<Vec<EntityId>>,
    /// Further records the action touched (at most 100).
    pub related_entities: Option<Vec<SentEntity>>,
    pub context: Option<Context>,
    /// Field-level changes; or send `before` and `after` and Stele computes them.
    pub changes: Option<Vec<Change>>,
    pub before: Option<BTreeMap<String, Value>>,
    pub after: Option<BTreeMap<String, Value>>,
    /// Up to 64 string keys to JSON scalars.
    pub metadata: Option<BTreeMap<String, Value>>,
    /// Per event in a batch: an event whose key was seen before gets its first receipt back.
    pub idempotency_key: Option<String>,
    /// Platform keys only: the organization the event is for (id or external id).
    pub organization: Option<String>,
}

/// Up to 1000 events, all recorded or none.
#[derive(ToSchema)]
pub struct EventBatch {
    pub events: Vec<Event>,
}

/// One event, or a batch of them.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum EventRequest {
    Event(Box<Event>),
    Batch(EventBatch),
}

/// The receipts of a request, in the order its events were sent.
#[derive(ToSchema)]
#[schema(example = json!({"events": [{"id": "01a20098-2011-7173-bda2-1f466a792f3f", "seq": 1}]}))]
pub struct Receipts {
    pub events: Vec<Receipt>,
    /// Only on a `202`: `false`, recording is turned off for the organization.
    pub recorded: Option<bool>,
    /// Only on a `202`: `recording_disabled`.
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(ToSchema)]
pub struct Receipt {
    /// A UUIDv7.
    pub id: String,
    /// The organization's gap-free sequence number.
    pub seq: u64,
    /// Answered to a platform key: the organization the event went to.
    pub organization_id: Option<String>,
}

/// A stored entry. `detailed_action`, `description` and `entity` are `null` when absent;
/// `related_entities` and `origin` appear only when they hold something.
#[derive(ToSchema)]
pub struct Entry {
    pub id: String,
    pub seq: u64,
    #[schema(format = DateTime)]
    pub occurred_at: String,
    #[schema(format = DateTime)]
    pub recorded_at: String,
    pub action: String,
    pub detailed_action: Option<String>,
    pub channel: String,
    pub description: Option<String>,
    pub outcome: Outcome,
    pub actor: Actor,
    pub entity: Option<Entity>,
    pub entity_ids: Vec<String>,
    pub related_entities: Option<Vec<Entity>>,
    pub context: Context,
    pub changes: Vec<Change>,
    pub metadata: BTreeMap<String, Value>,
    /// What a WorkOS or Retraced client sent that has no native field, `protocol` naming the door.
    pub origin: Option<BTreeMap<String, Value>>,
}

/// An entry with the other entries that share its `context.correlation_id` (newest first, at
/// most 100).
#[derive(ToSchema)]
pub struct EntryWithCorrelated {
    #[schema(inline)]
    #[serde(flatten)]
    pub entry: Entry,
    pub correlated: Vec<Entry>,
}

/// A page of entries, newest first.
#[derive(ToSchema)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `cursor` for the next (older) page; `null` on the last.
    pub next_cursor: Option<String>,
    pub prev_cursor: Option<String>,
    /// How many entries match; a lower bound when `total_exact` is false.
    pub total: u64,
    pub total_exact: bool,
}

/// The values present in the organization's data.
#[derive(ToSchema)]
pub struct Facets {
    pub actions: Vec<String>,
    pub detailed_actions: Vec<String>,
    pub entity_types: Vec<String>,
    pub channels: Vec<String>,
    pub actor_types: Vec<String>,
}

/// An export job (`POST /v1/exports`): every key is always there, `null` until it applies.
#[derive(ToSchema)]
pub struct ExportJob {
    pub id: String,
    /// `pending`, `running`, `ready`, `failed` or `expired`.
    pub state: String,
    /// `csv`, `json` or `ndjson`.
    pub format: String,
    pub filters: Value,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub finished_at: Option<String>,
    pub entries: Option<u64>,
    pub bytes: Option<u64>,
    /// The download link (with its token), once ready; shown to the job's creator.
    pub url: Option<String>,
    pub url_expires_at: Option<String>,
    pub error: Option<String>,
}

/// What to export: a format and the list's filters.
#[derive(ToSchema)]
#[schema(example = json!({"format": "csv", "filters": {"action": "update", "from": "2026-01-01"}}))]
pub struct ExportJobRequest {
    /// `csv` (default), `json` or `ndjson`.
    pub format: Option<String>,
    /// The parameters of `GET /v1/events`, by name.
    pub filters: Option<BTreeMap<String, Value>>,
}

/// The outcome of a verification: `ok: false` names the first bad `seq` and why.
#[derive(ToSchema)]
pub struct VerifyReport {
    pub org_id: String,
    pub ok: bool,
    pub entries: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoints: u64,
    pub pruned_entries: u64,
    pub pruned_up_to_seq: Option<u64>,
    pub anchor_checkpoint_seq: Option<u64>,
    pub since_checkpoint_seq: Option<u64>,
    pub problem: Option<Value>,
}

/// A checkpoint signed with the server's Ed25519 key.
#[derive(ToSchema)]
pub struct SignedCheckpoint {
    pub org_id: String,
    pub seq: u64,
    /// Hex SHA-256.
    pub chain_head: String,
    /// Hex SHA-256 (RFC 6962) over the chain's entry hashes up to `seq`.
    pub merkle_root: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub key_id: String,
    /// Hex Ed25519 signature.
    pub signature: String,
}

#[derive(ToSchema)]
pub struct Checkpoints {
    pub public_key: String,
    pub key_id: String,
    pub checkpoints: Vec<SignedCheckpoint>,
}

#[derive(ToSchema)]
#[schema(example = json!({"algorithm": "ed25519", "public_key": "3b6a27bc…", "key_id": "5f2c…"}))]
pub struct PublicKey {
    pub algorithm: String,
    /// Hex, 32 bytes.
    pub public_key: String,
    pub key_id: String,
}

/// RFC 6962 inclusion of one entry in the latest signed checkpoint; `stele proof verify` and
/// tools/independent_verify.py check it with the public key alone.
#[derive(ToSchema)]
pub struct InclusionProof {
    pub entry: Entry,
    pub personal_digest: String,
    pub personal_salt: Option<String>,
    pub prev_hash: String,
    pub entry_hash: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub path: Vec<String>,
    pub checkpoint: SignedCheckpoint,
}

/// RFC 6962 consistency between two signed checkpoints.
#[derive(ToSchema)]
pub struct ConsistencyProof {
    pub from: SignedCheckpoint,
    pub to: SignedCheckpoint,
    pub path: Vec<String>,
}

/// The person to erase: `actor` (an id or email), or `id`, `email`, `name` and `other`
/// identifying strings.
#[derive(ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "name": "Ada Lovelace", "reason": "GDPR-1042"}))]
pub struct ErasureRequest {
    pub actor: Option<String>,
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub other: Option<Vec<String>>,
    pub reason: Option<String>,
}

#[derive(ToSchema)]
pub struct ErasureResponse {
    pub erased_entries: u64,
    /// What the person became in every entry.
    pub pseudonym: String,
    pub cleanup: Cleanup,
    /// The erasure's own entry.
    pub record: Receipt,
    /// With an archive: the archived segments and entries rewritten.
    pub archive: Option<Value>,
}

/// When the database's files were cleaned of the old values.
#[derive(ToSchema)]
pub struct Cleanup {
    pub finished_at: i64,
    pub duration_ms: u64,
}

#[derive(ToSchema)]
#[schema(example = json!({"fields": ["changes.access_code", "metadata.token"], "reason": "leaked secret"}))]
pub struct RedactionRequest {
    /// Paths of the entry: `description`, `changes.<field>`, `metadata.<key>`, …
    pub fields: Vec<String>,
    pub reason: Option<String>,
}

#[derive(ToSchema)]
pub struct RedactionResponse {
    pub seq: u64,
    pub record: Receipt,
    pub cleanup: Cleanup,
}

/// An event, and what the organization's redaction rules would do to it.
#[derive(ToSchema)]
pub struct RedactionPreview {
    /// The event as it would be stored.
    pub event: Value,
    /// The paths that would be redacted.
    pub redacted: Vec<Value>,
}

/// A viewer token's request: who the viewer is, what they may do and see, and for how long.
/// Unknown fields are refused (a typo must not widen what a viewer sees).
#[derive(ToSchema)]
#[schema(example = json!({"viewer": {"id": "u1", "email": "ada@example.com"},
    "permissions": ["read", "export"], "filters": {"channel": "auth"}, "ttl_seconds": 600}))]
#[serde(deny_unknown_fields)]
pub struct ViewerTokenRequest {
    /// Platform keys: the organization (id or external id).
    pub organization: Option<String>,
    /// The person looking (`id`, `email`, `name`), recorded with what they open.
    pub viewer: Value,
    /// `read` (always), `export`, and `streams` (manage the organization's log streams in the
    /// embedded pages, `/embed/streams`; the minting key needs the `admin` scope).
    pub permissions: Option<Vec<String>>,
    /// Filters fixed for every page the viewer opens (the list's parameters by name).
    pub filters: Option<BTreeMap<String, Value>>,
    pub theme: Option<Value>,
    pub ttl_seconds: Option<u64>,
    pub session_seconds: Option<u64>,
}

/// An event and, optionally, rules to try instead of the organization's.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionTestRequest {
    pub event: Event,
    pub rules: Option<Value>,
}

#[derive(ToSchema)]
pub struct ViewerToken {
    pub token: String,
    /// The embedded log, to open in a frame.
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub session_ends_at: String,
}

/// An organization (platform keys manage them).
#[derive(ToSchema)]
pub struct Organization {
    /// `organization`.
    pub object: String,
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(ToSchema)]
pub struct Organizations {
    pub organizations: Vec<Organization>,
    /// Pass as `after` for the next page.
    pub next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[schema(example = json!({"name": "Acme", "external_id": "acme-42"}))]
pub struct OrganizationRequest {
    pub name: Option<String>,
    pub external_id: Option<String>,
}

/// The organization as it was, and what its deletion removed.
#[derive(ToSchema)]
pub struct DeletedOrganization {
    pub object: String,
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub created_at: String,
    pub deleted: bool,
    pub entries_removed: u64,
}

/// An API key; its secret is never shown again after its creation.
#[derive(ToSchema)]
pub struct ApiKey {
    /// `api_key`.
    pub object: String,
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The secret's first characters, to tell keys apart.
    pub prefix: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A new key, with its secret (shown once; only its hash is stored).
#[derive(ToSchema)]
pub struct CreatedApiKey {
    #[schema(inline)]
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

#[derive(ToSchema)]
pub struct ApiKeys {
    pub keys: Vec<ApiKey>,
}

#[derive(ToSchema)]
#[schema(example = json!({"name": "ingest from billing", "scopes": ["ingest"]}))]
pub struct ApiKeyRequest {
    pub name: String,
    /// `ingest`, `read`, `export`, `viewer`, `admin`, `printlog.*`.
    pub scopes: Vec<String>,
}

/// Someone who signs in to the web console.
#[derive(ToSchema)]
pub struct Member {
    /// `member`.
    pub object: String,
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub name: Option<String>,
    /// `viewer`, `auditor` or `admin`.
    pub role: String,
    pub disabled: bool,
    pub has_password: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(ToSchema)]
pub struct Members {
    pub members: Vec<Member>,
}

#[derive(ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "name": "Ada", "role": "auditor"}))]
pub struct MemberRequest {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// A member just added: `existing_account` says whether the person already signs in (as a
/// member of another organization); if not, `password_link` is theirs to set a password.
#[derive(ToSchema)]
pub struct AddedMember {
    #[schema(inline)]
    #[serde(flatten)]
    pub member: Member,
    pub existing_account: bool,
    pub password_link: Option<PasswordLink>,
}

/// A link the member opens to set a password (shown once).
#[derive(ToSchema)]
pub struct PasswordLink {
    pub password_set_url: String,
    #[schema(format = DateTime)]
    pub password_set_expires_at: String,
}

/// The organization's settings (docs/api.md, "Settings").
#[derive(ToSchema)]
#[schema(example = json!({"retention_days": 365, "channel_retention_days": {"auth": 90},
    "enabled": true, "ip_allowlist": ["203.0.113.0/24"], "embed_origins": [], "embed_theme": {}}))]
pub struct Settings {
    /// Whole days from 30 to 36,500, or `null` to keep entries forever.
    pub retention_days: Option<u32>,
    /// Per-channel windows overriding `retention_days` (`null`: keep that channel forever).
    pub channel_retention_days: Option<BTreeMap<String, Option<u32>>>,
    #[schema(read_only)]
    pub minimum_retention_days: Option<u32>,
    /// `false` turns recording off.
    pub enabled: Option<bool>,
    /// CIDR networks or single addresses; empty allows every address.
    pub ip_allowlist: Option<Vec<String>>,
    pub embed_origins: Option<Vec<String>>,
    pub embed_theme: Option<Value>,
    pub redaction: Option<Value>,
}

/// A print log row (docs/print-log.md), in Bambuddy's field names.
#[derive(ToSchema)]
pub struct PrintLogRecord {
    /// The server's (ids count from 1 per organization); never sent.
    #[schema(read_only)]
    pub id: Option<u64>,
    pub archive_id: Option<u64>,
    pub print_name: Option<String>,
    pub printer_name: Option<String>,
    pub printer_id: Option<i64>,
    /// `completed`, `failed`, `stopped`, `cancelled` or `skipped`.
    pub status: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub filament_type: Option<String>,
    pub filament_color: Option<String>,
    pub filament_used_grams: Option<f64>,
    pub cost: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub energy_cost: Option<f64>,
    pub failure_reason: Option<String>,
    pub thumbnail_path: Option<String>,
    pub created_by_username: Option<String>,
    #[schema(read_only)]
    pub created_at: Option<String>,
}

#[derive(ToSchema)]
pub struct PrintLogPage {
    pub items: Vec<PrintLogRecord>,
    pub total: u64,
}

#[derive(ToSchema)]
pub struct PrintLogStats {
    pub total_prints: u64,
    pub successful_prints: u64,
    pub failed_prints: u64,
    pub cancelled_prints: u64,
    pub prints_by_status: BTreeMap<String, u64>,
    pub failure_reasons: BTreeMap<String, u64>,
    pub unclassified_failures: u64,
    pub total_duration_seconds: f64,
    pub average_duration_seconds: Option<f64>,
    pub total_print_time_hours: f64,
    pub filament_grams_by_type: BTreeMap<String, f64>,
    pub total_filament_grams: f64,
    pub total_cost: f64,
    pub total_energy_kwh: f64,
    pub total_energy_cost: f64,
}

/// `/readyz`: `ready` with each check, or `not_ready` (503) naming what failed.
#[derive(ToSchema)]
pub struct Readiness {
    pub status: String,
    pub checks: BTreeMap<String, Value>,
}

/// A log stream's transport: `{"type": "webhook", "url": …}` or `{"type": "syslog", "host": …,
/// "port": …}`.
#[derive(ToSchema)]
pub struct StreamTransport {
    /// `webhook`, `syslog` or `nats` (when the server publishes to NATS JetStream).
    #[serde(rename = "type")]
    pub kind: String,
    /// The webhook's `https://` (or `http://`) URL.
    pub url: Option<String>,
    /// The syslog server's host name or address.
    pub host: Option<String>,
    /// The syslog server's TCP port.
    pub port: Option<u16>,
    /// Syslog over TLS (RFC 5425), the server's certificate checked; default false.
    pub tls: Option<bool>,
}

/// Which entries a stream delivers; each list empty (or left out) for any.
#[derive(ToSchema)]
pub struct StreamFilter {
    pub channels: Option<Vec<String>>,
    /// Matches an entry's `action` or its `detailed_action`.
    pub actions: Option<Vec<String>>,
    /// `user`, `api`, `webhook`, `system`, `scheduler`.
    pub actor_types: Option<Vec<String>>,
}

/// A new stream (`transport` required) or a change to one (only the fields sent change).
#[derive(ToSchema)]
#[schema(example = json!({"name": "Splunk", "transport": {"type": "webhook",
    "url": "https://siem.example.com/stele"}, "filter": {"channels": ["security"]},
    "from_seq": 1}))]
pub struct StreamRequest {
    pub name: Option<String>,
    pub transport: Option<StreamTransport>,
    pub filter: Option<StreamFilter>,
    /// `native` (default), or for a webhook `splunk_hec`, `elastic_bulk` or `datadog`.
    pub format: Option<String>,
    /// Entries per webhook POST, 1 to 1000 (default 100).
    pub max_entries: Option<u32>,
    /// Bytes of entries per webhook POST, up to 10 MiB (default 1 MiB).
    pub max_bytes: Option<u32>,
    /// The first entry to deliver: a back-fill (or, on a change, a replay) from the trail. A new
    /// stream without it starts after the newest entry. A platform-wide stream takes only 1:
    /// every organization's trail from its first entry.
    pub from_seq: Option<i64>,
}

/// A platform-wide stream's organizations.
#[derive(ToSchema)]
pub struct StreamOrganizations {
    /// The organizations it delivers (every one not being deleted).
    pub total: u64,
    /// Those with entries it has not delivered yet.
    pub behind: u64,
}

/// A log stream and its health.
#[derive(ToSchema)]
pub struct Stream {
    pub id: String,
    pub name: String,
    /// `active`, `failing` (active, its last attempt failed; it retries) or `paused`.
    pub state: String,
    pub paused_reason: Option<String>,
    pub transport: StreamTransport,
    pub filter: StreamFilter,
    pub format: String,
    pub max_entries: u32,
    pub max_bytes: u32,
    /// `organization` (its organization's trail) or `platform` (every organization's: a stream
    /// the platform key made without `Stele-Organization`).
    pub scope: String,
    /// The last `seq` delivered (or skipped by the filter); `null` for a platform-wide stream,
    /// which has one per organization.
    pub cursor: Option<i64>,
    /// The organization's newest `seq`; `null` for a platform-wide stream.
    pub head: Option<i64>,
    /// A platform-wide stream's organizations; `null` otherwise.
    pub organizations: Option<StreamOrganizations>,
    /// Entries not delivered yet (a platform-wide stream's in every organization together).
    pub lag_entries: u64,
    /// How long ago the oldest entry waiting was recorded.
    pub lag_seconds: f64,
    /// Entries delivered since the stream was created.
    pub delivered: u64,
    /// Failed attempts since the last success.
    pub failures: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_delivery_at: Option<String>,
    /// No attempt before this (a back-off, or the receiver's `Retry-After`).
    pub retry_at: Option<String>,
    pub secret_version: u32,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_until: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A stream with its webhook secret (`whsec_…`), shown only when it is created or rotated.
#[derive(ToSchema)]
pub struct StreamWithSecret {
    #[serde(flatten)]
    pub stream: Stream,
    pub secret: String,
}

#[derive(ToSchema)]
pub struct StreamList {
    pub data: Vec<Stream>,
}

#[derive(ToSchema)]
pub struct PauseRequest {
    /// Shown with the paused stream and recorded in the trail.
    pub reason: Option<String>,
}

#[derive(ToSchema)]
pub struct RotateSecretRequest {
    /// How long the previous secret still signs beside the new one (default 86400, at most
    /// 604800).
    pub overlap_seconds: Option<u64>,
}
