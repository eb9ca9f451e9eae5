//! `/console/settings/streams`: the organization's log streams, for members with
//! `audit.logs.configure`: each stream's health (state, lag, last delivery, last error), pausing
//! and resuming it, deleting it after a confirmation page, and a form to create one.
//!
//! Everything is `stele_service::streams`'s, as for the API and `stele stream`: the same checks
//! (a refused field is shown next to its control), the same entries in the trail with the member
//! as the actor. A new webhook stream's secret is shown once, on the answer to the form that
//! created it, as a new API key's is.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::json;
use stele_core::ActorType;
use stele_core::time::Millis;

use super::{
    DoneQuery, FormPairs, Notice, Problems, STREAMS_PATH, csrf_field, done, problem,
    refused_notice, settings_page,
};
use crate::app::state::AppState;
use crate::console::auth::Client;
use crate::console::render::{column_heads, encode_component, utc_text};
use crate::console::{ConsoleError, ConsoleUser, PageError, page};
use stele_service::access::roles::Permission;
use stele_service::streams::{self, StreamError, StreamFields, StreamView, Transport};
use stele_service::trail::By;
use stele_service::trail::activity::member_actor;
use stele_store::OrgKey;

/// The create form as sent (or empty).
#[derive(Debug, Default)]
struct StreamForm {
    name: String,
    /// `webhook` or `syslog`.
    transport: String,
    url: String,
    host: String,
    port: String,
    /// Syslog over TLS (the checkbox).
    tls: bool,
    /// A webhook's body: `native` (or empty), `splunk_hec`, `elastic_bulk`, `datadog`.
    format: String,
    /// One header each webhook POST carries (a SIEM's token); on an edit, an empty one keeps the
    /// stream's headers.
    header_name: String,
    header_value: String,
    channels: String,
    actions: String,
    actor_types: Vec<String>,
    from_seq: String,
}

impl StreamForm {
    fn from_pairs(form: &FormPairs) -> StreamForm {
        StreamForm {
            name: form.text("name"),
            transport: form.text("transport"),
            url: form.text("url"),
            host: form.text("host"),
            port: form.text("port"),
            tls: form.has("tls"),
            format: form.text("format"),
            header_name: form.text("header_name"),
            header_value: form.text("header_value"),
            channels: form.text("channels"),
            actions: form.text("actions"),
            actor_types: form.all("actor_type").map(str::to_string).collect(),
            from_seq: form.text("from_seq"),
        }
    }

    /// The edit form of a stream as it is. A webhook's URL stays empty (its query values are
    /// hidden wherever a stream is shown; empty keeps it).
    fn of(view: &StreamView) -> StreamForm {
        let mut form = StreamForm {
            name: view.stream.name.clone(),
            transport: view.spec.transport.kind().into(),
            format: view.spec.format.clone(),
            channels: view.spec.filter.channels.join(", "),
            actions: view.spec.filter.actions.join(", "),
            actor_types: view
                .spec
                .filter
                .actor_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            ..StreamForm::default()
        };
        if let Transport::Syslog { host, port, tls } = &view.spec.transport {
            form.host = host.clone();
            form.port = port.to_string();
            form.tls = *tls;
        }
        form
    }

    /// The request's fields, as the API would have them; what cannot even be read so far is a
    /// problem by control.
    fn fields(&self) -> Result<StreamFields, Problems> {
        let mut problems = Problems::new();
        let transport = match self.transport.as_str() {
            "syslog" => match self.port.parse::<u64>() {
                Ok(port) => Some(
                    json!({"type": "syslog", "host": self.host, "port": port, "tls": self.tls}),
                ),
                Err(_) => {
                    problems.insert("port".into(), "Give the syslog server's TCP port.".into());
                    None
                }
            },
            "nats" => Some(json!({"type": "nats"})),
            _ => {
                let mut webhook = json!({"type": "webhook", "url": self.url});
                match (self.header_name.is_empty(), self.header_value.is_empty()) {
                    (true, true) => {}
                    (false, false) => {
                        webhook["headers"] = json!({ &self.header_name: self.header_value });
                    }
                    (false, true) => {
                        problems.insert("header".into(), "Give the header's value too.".into());
                    }
                    (true, false) => {
                        problems.insert("header".into(), "Give the header's name too.".into());
                    }
                }
                Some(webhook)
            }
        };
        let list = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let filter = streams::filter_value(
            &list(&self.channels),
            &list(&self.actions),
            &self.actor_types,
        );
        let from_seq = match self.from_seq.as_str() {
            "" => None,
            text => match text.parse::<i64>() {
                Ok(seq) => Some(json!(seq)),
                Err(_) => {
                    problems.insert(
                        "from_seq".into(),
                        "Give the seq of the first entry to send (a whole number), or leave it \
                         empty to start with the next new entry."
                            .into(),
                    );
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(StreamFields {
            name: (!self.name.is_empty()).then(|| json!(self.name)),
            transport,
            filter,
            format: (!self.format.is_empty()).then(|| json!(self.format)),
            from_seq,
            ..StreamFields::default()
        })
    }

    /// The fields of an edit of `current`: the whole filter as the form has it (all empty: every
    /// entry), the transport unless it is the same webhook with its URL left empty.
    fn edit_fields(&self, current: &StreamView) -> Result<StreamFields, Problems> {
        let mut fields = self.fields()?;
        if let (Transport::Webhook { url, .. }, "webhook", "") = (
            &current.spec.transport,
            self.transport.as_str(),
            self.url.as_str(),
        ) {
            // The URL left empty is the stream's own (never shown: its query values are
            // hidden), with a new header if one is given.
            fields.transport = match &mut fields.transport {
                Some(webhook) if webhook.get("headers").is_some() => {
                    webhook["url"] = json!(url);
                    fields.transport.take()
                }
                _ => None,
            };
        }
        if fields.filter.is_none() {
            fields.filter = Some(serde_json::Value::Null);
        }
        Ok(fields)
    }
}

/// The form's control a refused field of the request is about.
fn control_of(field: &str) -> &'static str {
    match field {
        "name" => "name",
        "transport.url" => "url",
        "transport.host" => "host",
        "transport.port" => "port",
        "transport.tls" => "tls",
        "format" => "format",
        f if f.starts_with("transport.headers") => "header",
        "from_seq" => "from_seq",
        f if f.starts_with("filter.channels") => "channels",
        f if f.starts_with("filter.actions") => "actions",
        f if f.starts_with("filter.actor_types") => "actor_types",
        _ => "transport",
    }
}

/// Where the stream pages are served and who uses them: a member in the console, or a viewer of
/// the embedded pages whose token carries the `streams` permission (WorkOS's `log_streams` portal
/// link, `crate::console::embed`). Each page below is written once for both.
pub(crate) struct StreamsDoor {
    pub org: OrgKey,
    /// Who a change is recorded as.
    pub by: By,
    /// The list's path; every form and link of the pages is under it.
    pub base: String,
    /// What every form carries besides its fields (the console's CSRF token; nothing in the
    /// embedded pages, whose path carries the session).
    pub hidden: Markup,
    /// The reason a pause from these pages records.
    pub pause_reason: &'static str,
    /// The page around a body: its title, the notice, the body.
    pub frame: Frame,
}

/// A page's frame: its title, the notice, the body, into the whole page.
pub(crate) type Frame = Box<dyn Fn(&str, Option<&Notice>, Markup) -> Markup + Send + Sync>;

impl StreamsDoor {
    /// A member's: the console's settings pages, the member as the actor.
    fn console(user: &ConsoleUser, client: &Client) -> StreamsDoor {
        let framed = user.clone();
        StreamsDoor {
            org: user.org,
            by: By::new(member_actor(user.who()), client.context()),
            base: STREAMS_PATH.to_string(),
            hidden: csrf_field(user),
            pause_reason: "paused in the console",
            frame: Box::new(move |title, notice, body| {
                settings_page(&framed, title, STREAMS_PATH, notice, body)
            }),
        }
    }

    fn action_path(&self, id: &str, action: &str) -> String {
        format!("{}/{}/{action}", self.base, encode_component(id))
    }

    fn done(&self, code: &str, about: Option<&str>) -> Response {
        done(&self.base, code, about)
    }

    fn page(
        &self,
        status: StatusCode,
        title: &str,
        notice: Option<&Notice>,
        body: Markup,
    ) -> Response {
        page(status, (self.frame)(title, notice, body))
    }

    fn missing(&self) -> Response {
        let body = html! { p { a href=(self.base) { "Back to log streams" } } };
        let notice = Notice::Refused("This organization has no log stream with that id.".into());
        self.page(StatusCode::NOT_FOUND, "No such stream", Some(&notice), body)
    }
}

fn console_error(e: StreamError) -> ConsoleError {
    match e {
        StreamError::Store(e) => e.into(),
        other => ConsoleError::Internal(other.to_string()),
    }
}

/// The list of streams and the create form, with the notice of what was just done.
pub(crate) async fn list_page(
    state: &AppState,
    door: &StreamsDoor,
    query: DoneQuery,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let views = streams::list(state.store.as_ref(), door.org, now)
        .await
        .map_err(console_error)?;
    let named = |id: &Option<String>| {
        id.as_deref()
            .and_then(|id| views.iter().find(|v| v.stream.id == id))
            .map(|v| v.stream.name.clone())
    };
    let notice = match (query.done.as_deref(), named(&query.id)) {
        (Some("paused"), Some(name)) => Some(Notice::Done(format!(
            "Paused \"{name}\": nothing is sent until it is resumed."
        ))),
        (Some("resumed"), Some(name)) => Some(Notice::Done(format!(
            "Resumed \"{name}\": it sends from where it stopped."
        ))),
        (Some("changed"), Some(name)) => Some(Notice::Done(format!("Saved \"{name}\"."))),
        (Some("deleted"), _) => Some(Notice::Done("Deleted the stream.".into())),
        _ => None,
    };
    let body = render(
        door,
        &views,
        &StreamForm::default(),
        &Problems::new(),
        now,
        state.stream_guard.nats,
    );
    Ok(door.page(StatusCode::OK, "Log streams", notice.as_ref(), body))
}

/// Creates a stream from the form and shows its secret, once.
pub(crate) async fn create_stream(
    state: &AppState,
    door: &StreamsDoor,
    form: &FormPairs,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let sent = StreamForm::from_pairs(form);
    let fields = match sent.fields() {
        Ok(fields) => fields,
        Err(problems) => return refused(state, door, &sent, problems, now).await,
    };
    let created = streams::create(
        state.store.as_ref(),
        &state.stream_secrets,
        state.stream_guard,
        door.org,
        fields,
        &door.by,
        now,
    )
    .await;
    let created = match created {
        Ok(created) => created,
        Err(StreamError::Invalid(p)) => {
            let mut problems = Problems::new();
            problems.insert(control_of(&p.field).into(), p.message);
            return refused(state, door, &sent, problems, now).await;
        }
        Err(e) => return Err(console_error(e)),
    };
    let view = &created.view;
    let body = html! {
        section.stream-created {
            h2 { "Log stream created" }
            @if let Some(secret) = &created.secret {
                p {
                    "Give the receiver this secret to check each delivery's signature "
                    "(Standard Webhooks). Stele does not store it, so "
                    strong { "this is the only time it is shown" } "."
                }
                p.secret { code #new-secret { (secret) } }
            }
            dl.kv {
                dt { "Name" } dd { (view.stream.name) }
                dt { "ID" } dd { code { (view.stream.id) } }
                dt { "Sends to" } dd { (view.spec.transport.kind()) " " code { (view.spec.transport.target()) } }
                dt { "Starts after" } dd { (view.position()) }
            }
            p { a.button href=(door.base) { "Done: back to log streams" } }
        }
    };
    Ok(door.page(StatusCode::CREATED, "Log stream created", None, body))
}

/// The list and the form again, with what was typed and the problems next to their controls.
async fn refused(
    state: &AppState,
    door: &StreamsDoor,
    sent: &StreamForm,
    problems: Problems,
    now: Millis,
) -> Result<Response, ConsoleError> {
    let views = streams::list(state.store.as_ref(), door.org, now)
        .await
        .map_err(console_error)?;
    let notice = refused_notice(&problems);
    let body = render(door, &views, sent, &problems, now, state.stream_guard.nats);
    Ok(door.page(StatusCode::BAD_REQUEST, "Log streams", Some(&notice), body))
}

/// Pauses (`pause`) or resumes a stream, then back to the list.
pub(crate) async fn pause_or_resume(
    state: &AppState,
    door: &StreamsDoor,
    id: &str,
    pause: bool,
) -> Result<Response, ConsoleError> {
    let store = state.store.as_ref();
    let now = state.clock.now();
    let (outcome, code) = if pause {
        let reason = Some(door.pause_reason.to_string());
        let paused = streams::pause(store, door.org, id, reason, &door.by, now).await;
        (paused, "paused")
    } else {
        let resumed = streams::resume(store, door.org, id, &door.by, now).await;
        (resumed, "resumed")
    };
    match outcome {
        Ok(_) => Ok(door.done(code, Some(id))),
        Err(StreamError::NotFound) => Ok(door.missing()),
        Err(e) => Err(console_error(e)),
    }
}

/// The stream's form, filled in as it is.
pub(crate) async fn edit_page(
    state: &AppState,
    door: &StreamsDoor,
    id: &str,
) -> Result<Response, ConsoleError> {
    match streams::show(state.store.as_ref(), door.org, id, state.clock.now()).await {
        Ok(view) => Ok(edit_form(
            state,
            door,
            &view,
            &StreamForm::of(&view),
            &Problems::new(),
            StatusCode::OK,
        )),
        Err(StreamError::NotFound) => Ok(door.missing()),
        Err(e) => Err(console_error(e)),
    }
}

/// Saves the edit form (recorded as the API's `PATCH` is), or shows it again with the problems
/// next to their controls.
pub(crate) async fn edit_stream(
    state: &AppState,
    door: &StreamsDoor,
    id: &str,
    form: &FormPairs,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let current = match streams::show(state.store.as_ref(), door.org, id, now).await {
        Ok(view) => view,
        Err(StreamError::NotFound) => return Ok(door.missing()),
        Err(e) => return Err(console_error(e)),
    };
    let sent = StreamForm::from_pairs(form);
    let refused = |problems: Problems| {
        edit_form(
            state,
            door,
            &current,
            &sent,
            &problems,
            StatusCode::BAD_REQUEST,
        )
    };
    let fields = match sent.edit_fields(&current) {
        Ok(fields) => fields,
        Err(problems) => return Ok(refused(problems)),
    };
    let edited = streams::edit(
        state.store.as_ref(),
        &state.stream_secrets,
        state.stream_guard,
        door.org,
        id,
        fields,
        &door.by,
        now,
    )
    .await;
    match edited {
        Ok(_) => Ok(door.done("changed", Some(id))),
        Err(StreamError::Invalid(p)) => {
            let mut problems = Problems::new();
            problems.insert(control_of(&p.field).into(), p.message);
            Ok(refused(problems))
        }
        Err(StreamError::NotFound) => Ok(door.missing()),
        Err(e) => Err(console_error(e)),
    }
}

fn edit_form(
    state: &AppState,
    door: &StreamsDoor,
    current: &StreamView,
    form: &StreamForm,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    let mode = FormMode::Edit {
        action: door.action_path(&current.stream.id, "edit"),
        target: current.spec.transport.target(),
    };
    let notice = (!problems.is_empty()).then(|| refused_notice(problems));
    let body = html! {
        section.edit-stream {
            h2 { "Change the log stream \"" (current.stream.name) "\"" }
            p.hint {
                "It sends to " (current.spec.transport.kind()) " " code { (current.spec.transport.target()) }
                " and stands at " (current.position()) ". What you change is recorded in "
                "the trail."
            }
            (stream_form(door, form, problems, state.stream_guard.nats, &mode))
        }
    };
    door.page(status, "Change a log stream", notice.as_ref(), body)
}

/// Asks to confirm a deletion.
pub(crate) async fn confirm_delete_page(
    state: &AppState,
    door: &StreamsDoor,
    id: &str,
) -> Result<Response, ConsoleError> {
    let Some(stream) = state.store.stream(door.org, id).await? else {
        return Ok(door.missing());
    };
    let body = html! {
        section.confirm {
            h2 { "Delete the log stream \"" (stream.name) "\"?" }
            p {
                "Nothing more is sent to its receiver. What it sent stays sent; the trail itself "
                "is not touched. To send the trail there again, create a new stream (it can start "
                "from any seq)."
            }
            form method="post" action=(door.action_path(&stream.id, "delete")) {
                (door.hidden)
                button.danger type="submit" { "Delete this stream" }
                " "
                a href=(door.base) { "Cancel" }
            }
        }
    };
    Ok(door.page(StatusCode::OK, "Delete a log stream", None, body))
}

/// Deletes a stream, then back to the list.
pub(crate) async fn delete_stream(
    state: &AppState,
    door: &StreamsDoor,
    id: &str,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    match streams::delete(state.store.as_ref(), door.org, id, &door.by, now).await {
        Ok(()) => Ok(door.done("deleted", None)),
        Err(StreamError::NotFound) => Ok(door.missing()),
        Err(e) => Err(console_error(e)),
    }
}

/// `GET /console/settings/streams`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Query(query): Query<DoneQuery>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(list_page(&state, &StreamsDoor::console(&user, &client), query).await?)
}

/// `POST /console/settings/streams`: creates a stream and shows its secret, once.
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Form(form): Form<FormPairs>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(create_stream(&state, &StreamsDoor::console(&user, &client), &form).await?)
}

/// `POST /console/settings/streams/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(pause_or_resume(&state, &StreamsDoor::console(&user, &client), &id, true).await?)
}

/// `POST /console/settings/streams/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(pause_or_resume(&state, &StreamsDoor::console(&user, &client), &id, false).await?)
}

/// `GET /console/settings/streams/{id}/edit`: the stream's form, filled in as it is.
pub async fn edit_form_page(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(edit_page(&state, &StreamsDoor::console(&user, &client), &id).await?)
}

/// `POST /console/settings/streams/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<FormPairs>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(edit_stream(&state, &StreamsDoor::console(&user, &client), &id, &form).await?)
}

/// `GET /console/settings/streams/{id}/delete`: asks to confirm.
pub async fn confirm_delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(confirm_delete_page(&state, &StreamsDoor::console(&user, &client), &id).await?)
}

/// `POST /console/settings/streams/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    Ok(delete_stream(&state, &StreamsDoor::console(&user, &client), &id).await?)
}

/// "3 entries, 12 s" behind, or "caught up".
fn lag_text(view: &StreamView) -> String {
    if view.lag_entries == 0 {
        return "caught up".into();
    }
    let entries = if view.lag_entries == 1 {
        "1 entry".to_string()
    } else {
        format!("{} entries", view.lag_entries)
    };
    format!("{entries}, {:.0} s", view.lag_seconds)
}

fn render(
    door: &StreamsDoor,
    views: &[StreamView],
    form: &StreamForm,
    problems: &Problems,
    now: Millis,
    nats: bool,
) -> Markup {
    html! {
        section.stream-list {
            h2 { "Log streams" }
            p.hint {
                "A log stream sends every entry of this organization's trail, in order, to a "
                "receiver of yours (a SIEM's webhook, or a syslog server) as it is recorded."
            }
            @if views.is_empty() {
                p.muted { "This organization has no log streams." }
            } @else {
                div.table-scroll {
                    table.settings-table.streams {
                        (column_heads(&["Name", "Sends to", "State", "Behind", "Last delivery", "Last error"], true))
                        tbody {
                            @for view in views {
                                @let s = &view.stream;
                                @let state = streams::health(s);
                                tr id=(format!("stream-{}", s.id)) {
                                    td.name { (s.name) }
                                    td.target { (view.spec.transport.kind()) " " code { (view.spec.transport.target()) } }
                                    td.state {
                                        @match state {
                                            "paused" => span.badge.badge-rose title=[s.paused_reason.as_deref()] { "Paused" },
                                            "failing" => span.badge.badge-slate title=[s.retry_at.map(|t| format!("next attempt {}", utc_text(t)))] { "Failing" },
                                            _ => span.badge.badge-emerald { "Active" },
                                        }
                                    }
                                    td.lag { (lag_text(view)) }
                                    td.delivered {
                                        @match s.last_delivery_at {
                                            Some(at) => (utc_text(at)),
                                            None => span.muted { "never" },
                                        }
                                    }
                                    td.error {
                                        @match (&s.last_error, s.last_error_at) {
                                            (Some(error), Some(at)) if state != "active" || now - at < 24 * 3600 * 1000 => {
                                                span title=(utc_text(at)) { (error) }
                                            }
                                            _ => span.muted { "none" },
                                        }
                                    }
                                    td.actions {
                                        @if state == "paused" {
                                            form.inline method="post" action=(door.action_path(&s.id, "resume")) {
                                                (door.hidden)
                                                button.resume type="submit" { "Resume" }
                                            }
                                        } @else {
                                            form.inline method="post" action=(door.action_path(&s.id, "pause")) {
                                                (door.hidden)
                                                button.pause type="submit" { "Pause" }
                                            }
                                        }
                                        " "
                                        a.edit href=(door.action_path(&s.id, "edit")) { "Edit…" }
                                        " "
                                        a.delete href=(door.action_path(&s.id, "delete")) { "Delete…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.create-stream {
            h2 { "Create a stream" }
            (stream_form(door, form, problems, nats, &FormMode::Create { action: door.base.clone() }))
        }
    }
}

/// The bodies a webhook stream can post, as the form offers them.
const FORMATS: [(&str, &str); 4] = [
    ("native", "Stele's own (Standard Webhooks)"),
    ("splunk_hec", "Splunk HTTP Event Collector"),
    ("elastic_bulk", "Elasticsearch / OpenSearch _bulk"),
    ("datadog", "Datadog logs intake"),
];

/// What the stream form does: create a stream, or change one.
enum FormMode {
    Create {
        action: String,
    },
    Edit {
        action: String,
        /// Where it sends now, as it is shown (a URL's query values hidden).
        target: String,
    },
}

impl FormMode {
    fn action(&self) -> &str {
        match self {
            FormMode::Create { action } | FormMode::Edit { action, .. } => action,
        }
    }

    fn url_placeholder(&self) -> String {
        match self {
            FormMode::Create { .. } => "https://siem.example.com/stele".into(),
            FormMode::Edit { target, .. } => format!("empty: keep {target}"),
        }
    }

    fn header_placeholder(&self) -> &'static str {
        match self {
            FormMode::Create { .. } => "Splunk 8a1f…",
            FormMode::Edit { .. } => "empty: keep the stream's headers",
        }
    }

    fn start_label(&self) -> &'static str {
        match self {
            FormMode::Create { .. } => "Start from seq (empty: the next new entry)",
            FormMode::Edit { .. } => {
                "Send again from seq (empty: carry on where it is; the receiver gets those \
                 entries twice)"
            }
        }
    }
}

/// The form that creates a stream or changes one.
fn stream_form(
    door: &StreamsDoor,
    form: &StreamForm,
    problems: &Problems,
    nats: bool,
    mode: &FormMode,
) -> Markup {
    let syslog = form.transport == "syslog";
    let webhook = !syslog && form.transport != "nats";
    html! {
            form.settings-form method="post" action=(mode.action()) novalidate {
                (door.hidden)
                div.field {
                    label for="stream-name" { "Name" }
                    input #stream-name type="text" name="name" value=(form.name) maxlength="200"
                        placeholder="Splunk"
                        aria-invalid=[problems.contains_key("name").then_some("true")];
                    (problem(problems, "name"))
                }
                fieldset.transport {
                    legend { "Sends to" }
                    div.choice {
                        input #transport-webhook type="radio" name="transport" value="webhook" checked[webhook];
                        label for="transport-webhook" { "A webhook (HTTPS, signed)" }
                    }
                    div.field {
                        label for="stream-url" { "URL" }
                        input #stream-url type="url" name="url" value=(form.url)
                            placeholder=(mode.url_placeholder())
                            aria-invalid=[problems.contains_key("url").then_some("true")];
                        (problem(problems, "url"))
                    }
                    div.field {
                        label for="stream-format" { "Body" }
                        select #stream-format name="format" {
                            @for (value, label) in FORMATS {
                                option value=(value) selected[form.format == value || (form.format.is_empty() && value == "native")] { (label) }
                            }
                        }
                        (problem(problems, "format"))
                    }
                    div.field {
                        label for="stream-header-name" { "Header (a SIEM's token; stored sealed, never shown)" }
                        input #stream-header-name type="text" name="header_name" value=(form.header_name)
                            placeholder="Authorization"
                            aria-invalid=[problems.contains_key("header").then_some("true")];
                        input #stream-header-value type="password" name="header_value" value=""
                            autocomplete="off" placeholder=(mode.header_placeholder())
                            aria-label="Header value";
                        (problem(problems, "header"))
                    }
                    div.choice {
                        input #transport-syslog type="radio" name="transport" value="syslog" checked[syslog];
                        label for="transport-syslog" { "A syslog server (RFC 5424 over TCP)" }
                    }
                    div.field {
                        label for="stream-host" { "Host" }
                        input #stream-host type="text" name="host" value=(form.host)
                            placeholder="logs.example.com"
                            aria-invalid=[problems.contains_key("host").then_some("true")];
                        (problem(problems, "host"))
                    }
                    div.field {
                        label for="stream-port" { "Port" }
                        input #stream-port type="number" name="port" value=(form.port) min="1" max="65535"
                            placeholder="514"
                            aria-invalid=[problems.contains_key("port").then_some("true")];
                        (problem(problems, "port"))
                    }
                    div.choice {
                        input #stream-tls type="checkbox" name="tls" value="on" checked[form.tls];
                        label for="stream-tls" { "Over TLS (RFC 5425, usually port 6514); the server's certificate is checked" }
                    }
                    // NATS is the operator's: offered only when this server publishes to one.
                    @if nats {
                        div.choice {
                            input #transport-nats type="radio" name="transport" value="nats"
                                checked[form.transport == "nats"];
                            label for="transport-nats" { "This server's NATS JetStream (a subject for the organization)" }
                        }
                    }
                    (problem(problems, "transport"))
                }
                fieldset.filter {
                    legend { "Which entries (empty: all)" }
                    div.field {
                        label for="stream-channels" { "Channels (comma-separated)" }
                        input #stream-channels type="text" name="channels" value=(form.channels)
                            placeholder="security, billing"
                            aria-invalid=[problems.contains_key("channels").then_some("true")];
                        (problem(problems, "channels"))
                    }
                    div.field {
                        label for="stream-actions" { "Actions (comma-separated)" }
                        input #stream-actions type="text" name="actions" value=(form.actions)
                            placeholder="user.signed_in, invoice.approve"
                            aria-invalid=[problems.contains_key("actions").then_some("true")];
                        (problem(problems, "actions"))
                    }
                    div.choices {
                        @for kind in ActorType::ALL {
                            @let id = format!("actor-type-{}", kind.as_str());
                            div.choice {
                                input id=(id) type="checkbox" name="actor_type" value=(kind.as_str())
                                    checked[form.actor_types.iter().any(|t| t == kind.as_str())];
                                label for=(id) { (kind.as_str()) }
                            }
                        }
                    }
                    (problem(problems, "actor_types"))
                }
                div.field {
                    label for="stream-from-seq" { (mode.start_label()) }
                    input #stream-from-seq type="number" name="from_seq" value=(form.from_seq) min="1"
                        placeholder="1"
                        aria-invalid=[problems.contains_key("from_seq").then_some("true")];
                    (problem(problems, "from_seq"))
                }
                div.form-actions {
                    @match mode {
                        FormMode::Create { .. } => button.primary type="submit" { "Create stream" },
                        FormMode::Edit { .. } => {
                            button.primary type="submit" { "Save changes" }
                            " "
                            a href=(door.base) { "Cancel" }
                        }
                    }
                }
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_into_the_api_s_fields() {
        let form = StreamForm {
            name: "SIEM".into(),
            transport: "syslog".into(),
            host: "logs.example.com".into(),
            port: "514".into(),
            channels: "security, billing,".into(),
            actor_types: vec!["user".into()],
            from_seq: "7".into(),
            ..StreamForm::default()
        };
        let fields = form.fields().unwrap();
        assert_eq!(
            fields.transport,
            Some(json!({"type": "syslog", "host": "logs.example.com", "port": 514, "tls": false}))
        );
        assert_eq!(
            fields.filter,
            Some(json!({"channels": ["security", "billing"], "actor_types": ["user"]}))
        );
        assert_eq!(fields.from_seq, Some(json!(7)));
        let problems = StreamForm {
            transport: "syslog".into(),
            from_seq: "x".into(),
            ..StreamForm::default()
        }
        .fields()
        .unwrap_err();
        assert!(problems.contains_key("port") && problems.contains_key("from_seq"));
        assert_eq!(control_of("filter.actor_types[0]"), "actor_types");
        assert_eq!(control_of("transport.type"), "transport");
    }
}
