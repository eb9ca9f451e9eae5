//! `/console/settings`: the organization's settings, for members with `audit.logs.configure`:
//! whether recording is on, retention (the organization's window, days or keep forever, and
//! per-channel overrides), the IP allowlist, the origins that may frame the organization's
//! embedded audit log (`embed_origins`, checked with the API's `settings::check_origins`), and the
//! redaction rules (`redaction`: each list of name patterns a textarea, one pattern a line, and
//! whether values that look like secrets are redacted; checked with the API's
//! `redaction::check_rules`).
//!
//! The redaction rules come with a preview: a textarea for a sample event (JSON, as
//! `POST /v1/events` takes one) and a "Preview" button in the same form, which sends the form
//! like "Add a channel" does and saves nothing: the page comes back with what was typed and the
//! sample as it would be stored under the rules *as typed* (saved or not), through the API's own
//! `stele_service::redaction::preview`, with the redacted fields listed (or the sample's
//! problems, in the API's words).
//!
//! Turning recording off is the one change that silently loses data (applications' events are
//! accepted and not stored), so it needs a second, deliberate step: a checkbox saying the member
//! understands, which works without JavaScript. Turning it back on needs none. The allowlist is
//! checked as the API checks it (`org_policy::parse_allowlist` and
//! `org_policy::check_not_locked_out`), with the problem named by the line of the textarea it is
//! on; the page shows the member's own address so that they can include it.
//!
//! The form is read into a [`SettingsForm`] (what was typed, kept so a refused form comes back as
//! it was sent), then checked into new [`OrgSettings`] that start from the current ones, so a
//! setting this page does not show is kept as it is. The checks and the save are the API's
//! (`stele_service::settings::{check_window, check_channel, save}`, and
//! `stele_service::access::org_policy` for the allowlist): the same values are refused with the
//! same words, and a change is recorded as `settings.update` with the old and new values, the
//! member as the actor.
//!
//! To add a setting to the page: a field in [`SettingsForm`], filled in
//! [`SettingsForm::from_settings`] and [`SettingsForm::read`] (a field the request leaves out
//! keeps its current value, as `PUT /v1/settings` does); a step in [`SettingsForm::apply`] that
//! checks it into `OrgSettings` (a problem under the control's key); and a `fieldset` in
//! `settings_form`.

use std::net::IpAddr;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use stele_core::redact::RedactionRules;
use stele_core::sent::SentEvent;
use stele_store::{EmbedTheme, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, OrgSettings};

use super::{
    DoneQuery, FormPairs, Notice, Problems, SETTINGS_PATH, csrf_field, done, problem,
    refused_notice, settings_page,
};
use crate::app::state::AppState;
use crate::console::auth::Client;
use crate::console::render::column_heads;
use crate::console::{ConsoleError, ConsoleUser, PageError, page};
use stele_service::access::org_policy::{check_not_locked_out, parse_allowlist};
use stele_service::access::roles::Permission;
use stele_service::access::viewer::check_theme;
use stele_service::redaction::{check_rules, preview};
use stele_service::settings::{
    SettingsChange, SettingsProblem, check_channel, check_origins, check_window,
};
use stele_service::trail::activity::member_actor;

/// The most per-channel rows one form may send (a form is a person's typing, not a bulk API).
const MAX_CHANNEL_ROWS: usize = 200;

/// How long a window is: a number of days, or forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Days,
    Forever,
}

impl Keep {
    fn read(value: Option<&str>) -> Keep {
        if value == Some("forever") {
            Keep::Forever
        } else {
            Keep::Days
        }
    }
}

/// One per-channel override as the form shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChannelRow {
    channel: String,
    keep: Keep,
    days: String,
    /// Ticked "Remove": the override goes when the form is saved.
    remove: bool,
}

impl ChannelRow {
    fn blank() -> ChannelRow {
        ChannelRow {
            channel: String::new(),
            keep: Keep::Days,
            days: String::new(),
            remove: false,
        }
    }

    fn is_blank(&self) -> bool {
        self.channel.is_empty() && self.days.is_empty()
    }
}

/// The settings form's values, as text: the current settings, or what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SettingsForm {
    /// Recording on (`recording=on`) or off (`recording=off`).
    recording: bool,
    /// Ticked "I understand": the second step that turning recording off needs.
    confirm_off: bool,
    retention: Keep,
    retention_days: String,
    channels: Vec<ChannelRow>,
    /// The allowlist's textarea: one network or address a line.
    ip_allowlist: String,
    /// The embedding origins' textarea: one origin a line.
    embed_origins: String,
    /// The embedded viewer's theme, each field as typed (empty: not set here, so the platform's
    /// default, or the viewer token's, applies).
    theme: ThemeForm,
    /// The redaction rules: each list's textarea, and value detection.
    redaction: RedactionForm,
    /// The sample event the redaction preview shows as it would be stored; never saved.
    redaction_sample: String,
}

/// The redaction rules as the form shows them: a textarea per list of patterns (one a line).
#[derive(Debug, Clone, PartialEq, Eq)]
struct RedactionForm {
    name_contains: String,
    name_starts_with: String,
    name_words: String,
    name_last_words: String,
    detect_values: bool,
}

/// The redaction lists' controls: (form field, the rules' field, label, hint).
const REDACTION_LISTS: [(&str, &str, &str, &str); 4] = [
    (
        "redaction_name_contains",
        "name_contains",
        "Names containing",
        "A field whose name contains one of these anywhere is redacted (token: access_token, \
         tokens_used).",
    ),
    (
        "redaction_name_starts_with",
        "name_starts_with",
        "Names starting with",
        "A field whose name starts with one of these is redacted (encrypted: encrypted_ssn).",
    ),
    (
        "redaction_name_words",
        "name_words",
        "Whole words",
        "A field whose name has one of these as a whole word is redacted (pin: pin_code, userPin; \
         not shipping).",
    ),
    (
        "redaction_name_last_words",
        "name_last_words",
        "Last words",
        "A field whose name of two words or more ends with one of these is redacted (key: \
         license_key, signingKey; not key alone).",
    ),
];

impl RedactionForm {
    fn from_rules(rules: &RedactionRules) -> RedactionForm {
        RedactionForm {
            name_contains: rules.name_contains.join("\n"),
            name_starts_with: rules.name_starts_with.join("\n"),
            name_words: rules.name_words.join("\n"),
            name_last_words: rules.name_last_words.join("\n"),
            detect_values: rules.detect_values,
        }
    }

    fn list(&self, field: &str) -> &str {
        match field {
            "name_contains" => &self.name_contains,
            "name_starts_with" => &self.name_starts_with,
            "name_words" => &self.name_words,
            _ => &self.name_last_words,
        }
    }

    /// The rules, checked as the API checks `redaction` (`check_rules`); a problem is keyed by
    /// its textarea and names the line.
    fn rules(&self) -> Result<RedactionRules, (String, String)> {
        let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
        let rules = RedactionRules {
            name_contains: lines(&self.name_contains),
            name_starts_with: lines(&self.name_starts_with),
            name_words: lines(&self.name_words),
            name_last_words: lines(&self.name_last_words),
            detect_values: self.detect_values,
        };
        check_rules("redaction", rules).map_err(|p| {
            let rest = p.field.strip_prefix("redaction.").unwrap_or(&p.field);
            let (list, line) = match rest.split_once('[') {
                Some((list, i)) => (list, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (rest, None),
            };
            let message = match line {
                Some(i) => format!("Line {}: {}.", i + 1, p.message),
                None => format!("This list {}.", p.message),
            };
            (format!("redaction_{list}"), message)
        })
    }
}

/// What the redaction preview shows: the sample as it would be stored, or why it would not be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RedactionPreview {
    Stored {
        /// The stored form, as indented JSON.
        event: String,
        redacted: Vec<String>,
    },
    /// The sample's problems, in the API's words.
    Refused(Vec<String>),
    /// Nothing to preview yet (no sample, or rules with a problem), and what to do.
    Nothing(String),
}

/// The embedded viewer's theme fields as text (`embed_theme`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ThemeForm {
    mode: String,
    accent: String,
    font: String,
    radius: String,
}

/// The theme's controls: (form field, the settings field a problem names).
const THEME_FIELDS: [(&str, &str); 4] = [
    ("theme_mode", "embed_theme.mode"),
    ("theme_accent", "embed_theme.accent"),
    ("theme_font", "embed_theme.font"),
    ("theme_radius", "embed_theme.radius"),
];

impl ThemeForm {
    fn from_settings(theme: &EmbedTheme) -> ThemeForm {
        ThemeForm {
            mode: theme.mode.clone().unwrap_or_default(),
            accent: theme.accent.clone().unwrap_or_default(),
            font: theme.font.clone().unwrap_or_default(),
            radius: theme.radius.map(|r| r.to_string()).unwrap_or_default(),
        }
    }

    /// The theme, checked as the API checks `embed_theme` (`viewer::check_theme`); a problem is
    /// keyed by its control's name.
    fn theme(&self) -> Result<EmbedTheme, (String, String)> {
        let set = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        let radius = match set(&self.radius) {
            None => None,
            Some(text) => Some(text.parse::<u8>().map_err(|_| {
                (
                    "theme_radius".to_string(),
                    "Corner radius must be a whole number of pixels from 0 to 24.".to_string(),
                )
            })?),
        };
        let theme = EmbedTheme {
            mode: set(&self.mode),
            accent: set(&self.accent),
            font: set(&self.font),
            radius,
        };
        check_theme("embed_theme", &theme).map_err(|p| {
            let control = THEME_FIELDS
                .iter()
                .find(|(_, field)| *field == p.field)
                .map_or("theme_mode", |(control, _)| control);
            (control.to_string(), format!("{}: {}.", p.field, p.message))
        })?;
        Ok(theme)
    }
}

/// What the page says around the form, besides the form's values: the stored state of
/// recording (the form's own choice may differ on a refused form) and the member's address.
struct PageFacts {
    recording_on: bool,
    client_ip: Option<IpAddr>,
}

fn days_text(days: Option<u32>) -> String {
    days.map(|d| d.to_string()).unwrap_or_default()
}

impl SettingsForm {
    /// The form showing `settings`, with one blank row to add a channel.
    fn from_settings(settings: &OrgSettings) -> SettingsForm {
        let mut channels: Vec<ChannelRow> = settings
            .channel_retention_days
            .iter()
            .map(|(channel, days)| ChannelRow {
                channel: channel.clone(),
                keep: if days.is_some() {
                    Keep::Days
                } else {
                    Keep::Forever
                },
                days: days_text(*days),
                remove: false,
            })
            .collect();
        channels.push(ChannelRow::blank());
        SettingsForm {
            recording: settings.enabled,
            confirm_off: false,
            retention: if settings.retention_days.is_some() {
                Keep::Days
            } else {
                Keep::Forever
            },
            // Kept even when the window is "forever", so that choosing days again has a number.
            retention_days: days_text(settings.retention_days),
            channels,
            ip_allowlist: settings.ip_allowlist.join("\n"),
            embed_origins: settings.embed_origins.join("\n"),
            theme: ThemeForm::from_settings(&settings.embed_theme),
            redaction: RedactionForm::from_rules(&settings.redaction),
            redaction_sample: String::new(),
        }
    }

    /// The form as it was sent. Channel rows are `channel_{i}`, `channel_{i}_keep`,
    /// `channel_{i}_days` and `channel_{i}_remove`, for `i` below the hidden `rows`. A request
    /// without `recording`, `ip_allowlist` or `embed_origins` (not a browser's: its form has them
    /// all) keeps the `current` value, so that a script posting the retention fields alone
    /// changes only those.
    fn read(form: &FormPairs, current: &OrgSettings) -> SettingsForm {
        let rows = form
            .get("rows")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_CHANNEL_ROWS);
        let channels = (0..rows)
            .map(|i| ChannelRow {
                channel: form.text(&format!("channel_{i}")),
                keep: Keep::read(form.get(&format!("channel_{i}_keep"))),
                days: form.text(&format!("channel_{i}_days")),
                remove: form.has(&format!("channel_{i}_remove")),
            })
            .collect();
        SettingsForm {
            recording: match form.get("recording") {
                Some("on") => true,
                Some("off") => false,
                _ => current.enabled,
            },
            confirm_off: form.has("confirm_off"),
            retention: Keep::read(form.get("retention")),
            retention_days: form.text("retention_days"),
            channels,
            ip_allowlist: form
                .get("ip_allowlist")
                .map_or_else(|| current.ip_allowlist.join("\n"), str::to_string),
            embed_origins: form
                .get("embed_origins")
                .map_or_else(|| current.embed_origins.join("\n"), str::to_string),
            // Each field kept as it is when the request does not send it (as above).
            theme: {
                let kept = ThemeForm::from_settings(&current.embed_theme);
                let field = |name: &str, kept: String| form.get(name).map_or(kept, str::to_string);
                ThemeForm {
                    mode: field("theme_mode", kept.mode),
                    accent: field("theme_accent", kept.accent),
                    font: field("theme_font", kept.font),
                    radius: field("theme_radius", kept.radius),
                }
            },
            // The lists likewise; the checkbox by the hidden `redaction` marker, since a browser
            // sends nothing for a box left unticked.
            redaction: {
                let kept = RedactionForm::from_rules(&current.redaction);
                let field = |name: &str, kept: String| form.get(name).map_or(kept, str::to_string);
                RedactionForm {
                    name_contains: field("redaction_name_contains", kept.name_contains),
                    name_starts_with: field("redaction_name_starts_with", kept.name_starts_with),
                    name_words: field("redaction_name_words", kept.name_words),
                    name_last_words: field("redaction_name_last_words", kept.name_last_words),
                    detect_values: if form.has("redaction") {
                        form.has("redaction_detect_values")
                    } else {
                        kept.detect_values
                    },
                }
            },
            redaction_sample: form.text("redaction_sample"),
        }
    }

    /// The settings this form asks for, starting from `current` (what the form does not show is
    /// kept), or every problem with it by control. `client_ip` is the address of the member
    /// saving it, which the allowlist must include.
    fn apply(
        &self,
        current: &OrgSettings,
        client_ip: Option<IpAddr>,
    ) -> Result<OrgSettings, Problems> {
        let mut problems = Problems::new();
        let mut settings = current.clone();

        if current.enabled && !self.recording && !self.confirm_off {
            problems.insert(
                "recording".into(),
                "To turn recording off, also tick \"I understand\" below it.".into(),
            );
        }
        settings.enabled = self.recording;

        match window(self.retention, &self.retention_days, "retention_days") {
            Ok(days) => settings.retention_days = days,
            Err(p) => {
                problems.insert("retention_days".into(), say("Retention", &p));
            }
        }

        settings.channel_retention_days.clear();
        for (i, row) in self.channels.iter().enumerate() {
            if row.remove || row.is_blank() {
                continue;
            }
            let key = format!("channel_{i}");
            let channel = row.channel.as_str();
            if channel.is_empty() {
                problems.insert(key, "Enter the channel's name, or clear the row.".into());
                continue;
            }
            let field = format!("channel_retention_days.{channel}");
            if let Err(p) = check_channel(&field, channel) {
                problems.insert(key, say(&format!("`{channel}`"), &p));
                continue;
            }
            if settings.channel_retention_days.contains_key(channel) {
                problems.insert(key, format!("`{channel}` is listed twice."));
                continue;
            }
            match window(row.keep, &row.days, &field) {
                Ok(days) => {
                    settings
                        .channel_retention_days
                        .insert(channel.to_string(), days);
                }
                Err(p) => {
                    problems.insert(key, say(&format!("Retention for `{channel}`"), &p));
                }
            }
        }

        match allowlist(&self.ip_allowlist) {
            Ok(list) => match check_not_locked_out(&list, client_ip) {
                Ok(()) => settings.ip_allowlist = list,
                Err(e) => {
                    problems.insert("ip_allowlist".into(), format!("This list {}.", e.message));
                }
            },
            Err(message) => {
                problems.insert("ip_allowlist".into(), message);
            }
        }

        match embed_origins(&self.embed_origins) {
            Ok(list) => settings.embed_origins = list,
            Err(message) => {
                problems.insert("embed_origins".into(), message);
            }
        }

        match self.theme.theme() {
            Ok(theme) => settings.embed_theme = theme,
            Err((control, message)) => {
                problems.insert(control, message);
            }
        }

        match self.redaction.rules() {
            Ok(rules) => settings.redaction = rules,
            Err((control, message)) => {
                problems.insert(control, message);
            }
        }

        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

/// The allowlist from its textarea: the non-blank lines, each checked as the API checks an entry,
/// in canonical form without duplicates. A problem names every line that is wrong, by its number
/// in the textarea (blank lines count, as the person sees them).
fn allowlist(text: &str) -> Result<Vec<String>, String> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    let bad: Vec<String> = lines
        .iter()
        .filter_map(|(number, line)| {
            parse_allowlist(std::iter::once(*line))
                .err()
                .map(|e| format!("Line {number}: {}.", e.message))
        })
        .collect();
    if !bad.is_empty() {
        return Err(bad.join(" "));
    }
    // Each line parses: what is left is the whole list's own limit.
    parse_allowlist(lines.iter().map(|(_, line)| *line))
        .map_err(|e| format!("The list {}.", e.message))
}

/// The embedding origins from their textarea: the non-blank lines, each checked as the API
/// checks the list (`check_origins`, which also drops a trailing `/` and duplicates). A problem
/// names every line that is wrong by its number in the textarea, with the API's name for the
/// entry (`embed_origins[1]`: its place among the origins), so the words match a 400's.
fn embed_origins(text: &str) -> Result<Vec<String>, String> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    let bad: Vec<String> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, (number, line))| {
            check_origins("embed_origins", std::iter::once(*line))
                .err()
                .map(|p| format!("Line {number} (embed_origins[{i}]) {}.", p.message))
        })
        .collect();
    if !bad.is_empty() {
        return Err(bad.join(" "));
    }
    check_origins("embed_origins", lines.iter().map(|(_, line)| *line))
        .map_err(|p| format!("{}: {}.", p.field, p.message))
}

/// A window from the form: forever, or days checked as the API checks them.
fn window(keep: Keep, days: &str, field: &str) -> Result<Option<u32>, SettingsProblem> {
    if keep == Keep::Forever {
        return Ok(None);
    }
    let not_a_number = || SettingsProblem {
        field: field.to_string(),
        message: "must be a whole number of days, or kept forever".into(),
    };
    if days.is_empty() {
        return Err(not_a_number());
    }
    let n: i64 = days.parse().map_err(|_| not_a_number())?;
    check_window(field, n).map(Some)
}

/// "Retention must be at least 30 days …": the API's message about a field, said about what the
/// form calls it.
fn say(subject: &str, problem: &SettingsProblem) -> String {
    let message = problem
        .message
        .replace("use null to keep", "choose to keep");
    format!("{subject} {message}.")
}

/// `GET /console/settings`.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Query(query): Query<DoneQuery>,
) -> Result<Markup, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    let settings = state
        .store
        .settings(user.org)
        .await
        .map_err(ConsoleError::from)?;
    let notice = match query.done.as_deref() {
        Some("saved") => Some(Notice::Done("Settings saved.".into())),
        Some("unchanged") => Some(Notice::Done("Nothing to save: no setting changed.".into())),
        _ => None,
    };
    let facts = PageFacts {
        recording_on: settings.enabled,
        client_ip: client.ip,
    };
    Ok(render(
        &user,
        &SettingsForm::from_settings(&settings),
        &facts,
        &Problems::new(),
        notice.as_ref(),
        None,
    ))
}

/// `POST /console/settings`: saves the form, or shows it again with its problems. The "Add a
/// channel" button sends the form too, to show it again with one more row (nothing is saved).
pub async fn save(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: Client,
    Form(form): Form<FormPairs>,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogsConfigure)?;
    let current = state
        .store
        .settings(user.org)
        .await
        .map_err(ConsoleError::from)?;
    let facts = PageFacts {
        recording_on: current.enabled,
        client_ip: client.ip,
    };
    let mut sent = SettingsForm::read(&form, &current);
    if form.has("add_row") {
        if sent.channels.len() < MAX_CHANNEL_ROWS {
            sent.channels.push(ChannelRow::blank());
        }
        return Ok(page(
            StatusCode::OK,
            render(&user, &sent, &facts, &Problems::new(), None, None),
        ));
    }
    if form.has("preview_redaction") {
        let (problems, shown) = match sent.redaction.rules() {
            Ok(rules) => (
                Problems::new(),
                redaction_preview(&sent.redaction_sample, state.clock.now(), &rules),
            ),
            Err((control, message)) => (
                Problems::from([(control, message)]),
                RedactionPreview::Nothing(
                    "The rules have a problem; fix it to see the preview.".into(),
                ),
            ),
        };
        return Ok(page(
            StatusCode::OK,
            render(&user, &sent, &facts, &problems, None, Some(&shown)),
        ));
    }
    let new = match sent.apply(&current, client.ip) {
        Ok(new) => new,
        Err(problems) => {
            let notice = refused_notice(&problems);
            return Ok(page(
                StatusCode::BAD_REQUEST,
                render(&user, &sent, &facts, &problems, Some(&notice), None),
            ));
        }
    };
    let change = SettingsChange {
        org: user.org,
        org_id: &user.org_id,
        actor: member_actor(user.who()),
        context: client.context(),
    };
    let old = stele_service::settings::save(
        state.store.as_ref(),
        &state.policies,
        &*state.clock,
        change,
        &new,
    )
    .await
    .map_err(ConsoleError::from)?;
    let code = if old == new { "unchanged" } else { "saved" };
    Ok(done(SETTINGS_PATH, code, None))
}

/// The sample event checked and redacted as `POST /v1/redaction/test` does it (the same reader
/// and the same service function), for the page to show.
fn redaction_preview(
    sample: &str,
    now: stele_core::time::Millis,
    rules: &RedactionRules,
) -> RedactionPreview {
    if sample.is_empty() {
        return RedactionPreview::Nothing(
            "Paste an event (JSON, as applications send it) to see how it would be stored.".into(),
        );
    }
    let sent = match SentEvent::from_json(sample.as_bytes()) {
        Ok(sent) => sent,
        Err(e) => {
            return RedactionPreview::Refused(vec![format!("The sample is not valid JSON: {e}.")]);
        }
    };
    match preview(sent, now, rules) {
        Ok(p) => RedactionPreview::Stored {
            event: serde_json::to_string_pretty(&p.event).unwrap_or_default(),
            redacted: p.redacted,
        },
        Err(errors) => RedactionPreview::Refused(
            errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect(),
        ),
    }
}

fn render(
    user: &ConsoleUser,
    form: &SettingsForm,
    facts: &PageFacts,
    problems: &Problems,
    notice: Option<&Notice>,
    preview: Option<&RedactionPreview>,
) -> Markup {
    settings_page(
        user,
        "Settings",
        SETTINGS_PATH,
        notice,
        settings_form(user, form, facts, problems, preview),
    )
}

fn settings_form(
    user: &ConsoleUser,
    form: &SettingsForm,
    facts: &PageFacts,
    problems: &Problems,
    preview: Option<&RedactionPreview>,
) -> Markup {
    // `novalidate`: the server checks every value and says what is wrong next to it, in the same
    // words as the API, rather than the browser's own bubbles.
    html! {
        form.settings-form method="post" action=(SETTINGS_PATH) novalidate {
            (csrf_field(user))
            // Enter in a field sends the form with its first submit button, which would
            // otherwise be "Add a channel": this hidden one makes Enter save.
            button.visually-hidden type="submit" name="save" value="1" tabindex="-1"
                aria-hidden="true" { "Save settings" }
            (recording_fieldset(form, facts, problems))
            (retention_fieldset(form, problems))
            (channels_fieldset(form, problems))
            (allowlist_fieldset(form, facts, problems))
            (embed_origins_fieldset(form, problems))
            (theme_fieldset(form, problems))
            (redaction_fieldset(form, problems, preview))
            div.form-actions {
                button.primary type="submit" name="save" value="1" { "Save settings" }
            }
        }
    }
}

fn recording_fieldset(form: &SettingsForm, facts: &PageFacts, problems: &Problems) -> Markup {
    let invalid = problems.contains_key("recording");
    html! {
        fieldset.recording {
            legend { "Recording" }
            @if facts.recording_on {
                p.recording-status.on role="status" {
                    strong { "Recording is on." }
                    " Events your applications send are stored."
                }
            } @else {
                p.recording-status.off role="status" {
                    strong { "Recording is off." }
                    " Events your applications send are accepted but not stored."
                }
            }
            p.hint {
                "Turning recording off stops storing the events your applications send from then "
                "on: the API still accepts and checks them, and answers " code { "202" } " with "
                code { "\"recorded\": false" } ". Entries already stored stay, and are read, "
                "exported and removed by retention as before. Stele's own activity (sign-ins, "
                "settings changes, exports, views) is still recorded."
            }
            div.choice {
                input #recording-on type="radio" name="recording" value="on"
                    checked[form.recording];
                label for="recording-on" { "On: store the events applications send" }
            }
            div.choice {
                input #recording-off type="radio" name="recording" value="off"
                    checked[!form.recording]
                    aria-invalid=[invalid.then_some("true")]
                    aria-describedby=[invalid.then_some("recording-error")];
                label for="recording-off" { "Off: accept events without storing them" }
            }
            // Only turning off needs the second step: when it is off already, nothing to confirm.
            @if facts.recording_on {
                div.choice.confirm-off {
                    input #confirm-off type="checkbox" name="confirm_off" value="1"
                        checked[form.confirm_off];
                    label for="confirm-off" {
                        "I understand: while recording is off, events applications send are lost."
                    }
                }
            }
            (problem(problems, "recording"))
        }
    }
}

fn retention_fieldset(form: &SettingsForm, problems: &Problems) -> Markup {
    let invalid = problems.contains_key("retention_days");
    html! {
        fieldset.retention {
            legend { "Retention" }
            p.hint {
                "Entries older than this are removed by the daily retention run. At least "
                (MIN_RETENTION_DAYS) " days; at most " (MAX_RETENTION_DAYS) ", or keep entries forever."
            }
            div.choice {
                input #retention-days-choice type="radio" name="retention" value="days"
                    checked[form.retention == Keep::Days];
                label for="retention-days-choice" { "Keep entries for" }
                " "
                input #retention-days type="number" name="retention_days" inputmode="numeric"
                    min=(MIN_RETENTION_DAYS) max=(MAX_RETENTION_DAYS) value=(form.retention_days)
                    aria-invalid=[invalid.then_some("true")]
                    aria-describedby=[invalid.then_some("retention_days-error")];
                " days"
            }
            div.choice {
                input #retention-forever type="radio" name="retention" value="forever"
                    checked[form.retention == Keep::Forever];
                label for="retention-forever" { "Keep entries forever" }
            }
            (problem(problems, "retention_days"))
        }
    }
}

fn channels_fieldset(form: &SettingsForm, problems: &Problems) -> Markup {
    html! {
        fieldset.channel-retention {
            legend { "Per-channel retention" }
            p.hint {
                "A channel listed here keeps its entries for its own window instead of the one "
                "above (for example " code { "auth" } " for 90 days, " code { "compliance" }
                " for seven years). Clear a row's name or tick Remove to drop it."
            }
            input type="hidden" name="rows" value=(form.channels.len());
            div.table-scroll {
                table.settings-table.channel-rows {
                    (column_heads(&["Channel", "Keep", "Days", "Remove"], false))
                    tbody {
                        @for (i, row) in form.channels.iter().enumerate() {
                            @let key = format!("channel_{i}");
                            @let invalid = problems.contains_key(&key);
                            tr.invalid[invalid] {
                                td {
                                    input type="text" name=(key) value=(row.channel)
                                        aria-label=(format!("Channel of row {}", i + 1))
                                        placeholder="channel" maxlength="64"
                                        aria-invalid=[invalid.then_some("true")];
                                }
                                td {
                                    select name=(format!("{key}_keep"))
                                        aria-label=(format!("Keep row {}", i + 1)) {
                                        option value="days" selected[row.keep == Keep::Days] { "for" }
                                        option value="forever" selected[row.keep == Keep::Forever] {
                                            "forever"
                                        }
                                    }
                                }
                                td {
                                    input type="number" name=(format!("{key}_days")) value=(row.days)
                                        inputmode="numeric" min=(MIN_RETENTION_DAYS)
                                        max=(MAX_RETENTION_DAYS)
                                        aria-label=(format!("Days of row {}", i + 1));
                                }
                                td {
                                    @if !row.is_blank() || row.remove {
                                        input type="checkbox" name=(format!("{key}_remove"))
                                            aria-label=(format!("Remove row {}", i + 1))
                                            checked[row.remove];
                                    }
                                }
                            }
                            @if invalid {
                                tr.row-error {
                                    td colspan="4" { (problem(problems, &key)) }
                                }
                            }
                        }
                    }
                }
            }
            button.secondary type="submit" name="add_row" value="1" formnovalidate {
                "Add a channel"
            }
        }
    }
}

fn allowlist_fieldset(form: &SettingsForm, facts: &PageFacts, problems: &Problems) -> Markup {
    let invalid = problems.contains_key("ip_allowlist");
    html! {
        fieldset.ip-allowlist {
            legend { "IP allowlist" }
            p.hint {
                "The trail (this console and the API's read endpoints) may be read only from these "
                "networks and addresses: one a line, such as " code { "203.0.113.0/24" } ", "
                code { "2001:db8::/32" } " or " code { "198.51.100.7" } ". Leave it empty to allow "
                "every address. Applications send events from anywhere: ingest is never limited. "
                "A list that does not include your own address is refused, so that you cannot "
                "lock yourself out."
            }
            p.your-address {
                @match facts.client_ip {
                    Some(ip) => {
                        "Your address, as Stele sees it: " code #your-ip { (ip) }
                    }
                    None => {
                        "Stele cannot tell which address you connect from (behind a reverse "
                        "proxy, the server's " code { "--trusted-proxies" } " setting decides), so "
                        "any list would lock you out."
                    }
                }
            }
            textarea #ip-allowlist name="ip_allowlist" rows="6" spellcheck="false"
                autocomplete="off" aria-label="IP allowlist, one network or address a line"
                aria-invalid=[invalid.then_some("true")]
                aria-describedby=[invalid.then_some("ip_allowlist-error")] {
                (form.ip_allowlist)
            }
            (problem(problems, "ip_allowlist"))
        }
    }
}

fn embed_origins_fieldset(form: &SettingsForm, problems: &Problems) -> Markup {
    let invalid = problems.contains_key("embed_origins");
    html! {
        fieldset.embed-origins {
            legend { "Embedding origins" }
            p.hint {
                "Pages on these origins may show this organization's audit log inside them (the "
                "embedded viewer, opened with a viewer token), and their scripts may read the API "
                "with such a token: one origin a line, scheme and host with an optional port and "
                "no path, such as " code { "https://portal.example.com" } ". Leave it empty to "
                "allow only the origins the server allows for every organization."
            }
            textarea #embed-origins name="embed_origins" rows="4" spellcheck="false"
                autocomplete="off" aria-label="Embedding origins, one origin a line"
                aria-invalid=[invalid.then_some("true")]
                aria-describedby=[invalid.then_some("embed_origins-error")] {
                (form.embed_origins)
            }
            (problem(problems, "embed_origins"))
        }
    }
}

fn theme_fieldset(form: &SettingsForm, problems: &Problems) -> Markup {
    let t = &form.theme;
    let invalid = |control: &str| problems.contains_key(control).then_some("true");
    let described = |control: &str| {
        problems
            .contains_key(control)
            .then(|| format!("{control}-error"))
    };
    html! {
        fieldset.embed-theme {
            legend { "Embedded viewer theme" }
            p.hint {
                "How this organization's audit log looks inside another product's page. A field "
                "left empty takes the platform's default; a viewer token may still set its own."
            }
            div.field {
                label for="theme-mode" { "Mode" }
                select #theme-mode name="theme_mode" aria-invalid=[invalid("theme_mode")]
                    aria-describedby=[described("theme_mode")] {
                    @for (value, label) in [("", "Platform default"), ("light", "Light"),
                                            ("dark", "Dark"), ("auto", "Automatic (the reader's setting)")] {
                        option value=(value) selected[t.mode == value] { (label) }
                    }
                }
                (problem(problems, "theme_mode"))
            }
            div.field {
                label for="theme-accent" { "Accent colour" }
                input #theme-accent type="text" name="theme_accent" value=(t.accent)
                    placeholder="#0a7" autocomplete="off" spellcheck="false"
                    aria-invalid=[invalid("theme_accent")]
                    aria-describedby=[described("theme_accent")];
                span.hint { "As " code { "#rgb" } " or " code { "#rrggbb" } "." }
                (problem(problems, "theme_accent"))
            }
            div.field {
                label for="theme-font" { "Font" }
                input #theme-font type="text" name="theme_font" value=(t.font)
                    placeholder="Inter, sans-serif" autocomplete="off" spellcheck="false"
                    aria-invalid=[invalid("theme_font")]
                    aria-describedby=[described("theme_font")];
                (problem(problems, "theme_font"))
            }
            div.field {
                label for="theme-radius" { "Corner radius (pixels)" }
                input #theme-radius type="number" name="theme_radius" value=(t.radius)
                    min="0" max="24" step="1"
                    aria-invalid=[invalid("theme_radius")]
                    aria-describedby=[described("theme_radius")];
                (problem(problems, "theme_radius"))
            }
        }
    }
}

fn redaction_fieldset(
    form: &SettingsForm,
    problems: &Problems,
    preview: Option<&RedactionPreview>,
) -> Markup {
    let r = &form.redaction;
    html! {
        fieldset.redaction #redaction {
            legend { "Redaction" }
            p.hint {
                "Before an event is stored, the values of fields with sensitive names become "
                code { "[REDACTED]" } ", in changes and in metadata, however deep. Names are "
                "compared in lowercase without separators (" code { "api_key" } ", "
                code { "API-Key" } " and " code { "apiKey" } " are the same name). One pattern a "
                "line; an empty list redacts nothing by that rule."
            }
            input type="hidden" name="redaction" value="1";
            @for (control, field, label, hint) in REDACTION_LISTS {
                @let invalid = problems.contains_key(control);
                @let id = control.replace('_', "-");
                div.field {
                    label for=(id) { (label) }
                    span.hint { (hint) }
                    textarea id=(id) name=(control) rows="4" spellcheck="false"
                        autocomplete="off"
                        aria-invalid=[invalid.then_some("true")]
                        aria-describedby=[invalid.then(|| format!("{control}-error"))] {
                        (r.list(field))
                    }
                    (problem(problems, control))
                }
            }
            div.choice {
                input #redaction-detect-values type="checkbox" name="redaction_detect_values"
                    value="1" checked[r.detect_values];
                label for="redaction-detect-values" {
                    "Also redact values that look like secrets, whatever their field is called: "
                    "JWTs, PEM private keys, card numbers and long random tokens"
                }
            }
            div.field {
                label for="redaction-sample" { "Preview with a sample event" }
                span.hint {
                    "An event as your applications send it; nothing is stored. The preview uses "
                    "the rules as typed above, saved or not."
                }
                textarea #redaction-sample name="redaction_sample" rows="8" spellcheck="false"
                    autocomplete="off"
                    placeholder=r#"{"action": "update", "actor": {"type": "user", "id": "u1"}, "metadata": {"pin": "1234"}}"# {
                    (form.redaction_sample)
                }
            }
            button.secondary type="submit" name="preview_redaction" value="1" formnovalidate {
                "Preview"
            }
            @match preview {
                Some(RedactionPreview::Stored { event, redacted }) => {
                    div.redaction-preview role="status" {
                        @if redacted.is_empty() {
                            p { "Nothing in this event would be redacted." }
                        } @else {
                            p { "Redacted: " }
                            ul.redacted-fields {
                                @for path in redacted { li { code { (path) } } }
                            }
                        }
                        p { "Stored as:" }
                        pre.redaction-stored { (event) }
                    }
                }
                Some(RedactionPreview::Refused(problems)) => {
                    div.redaction-preview role="alert" {
                        p { "This sample would not be stored:" }
                        ul.redaction-problems {
                            @for problem in problems { li { (problem) } }
                        }
                    }
                }
                Some(RedactionPreview::Nothing(message)) => {
                    div.redaction-preview role="status" { p { (message) } }
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::render::decode_query;

    fn sent(body: &str) -> SettingsForm {
        SettingsForm::read(&FormPairs(decode_query(body)), &current())
    }

    /// The address of the member saving the form in these tests.
    fn here() -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, 1]))
    }

    fn current() -> OrgSettings {
        let mut s = OrgSettings {
            retention_days: Some(365),
            ..OrgSettings::default()
        };
        s.channel_retention_days.insert("auth".into(), Some(90));
        s
    }

    #[test]
    fn the_viewer_theme_is_saved_field_by_field_and_checked_as_the_api_checks_it() {
        let base = "recording=on&retention=days&retention_days=365&rows=0&ip_allowlist=";
        let saved = sent(&format!(
            "{base}&theme_mode=dark&theme_accent=%230a7&theme_font=Inter%2C+sans-serif\
             &theme_radius=6"
        ))
        .apply(&current(), here())
        .unwrap();
        assert_eq!(
            saved.embed_theme,
            EmbedTheme {
                mode: Some("dark".into()),
                accent: Some("#0a7".into()),
                font: Some("Inter, sans-serif".into()),
                radius: Some(6),
            }
        );
        // The form shows what was saved; empty fields leave the platform's default.
        assert_eq!(SettingsForm::from_settings(&saved).theme.accent, "#0a7");
        let cleared = sent(&format!(
            "{base}&theme_mode=&theme_accent=&theme_font=&theme_radius="
        ))
        .apply(&saved, here())
        .unwrap();
        assert_eq!(cleared.embed_theme, EmbedTheme::default());
        // Each bad field is named by its control, in the API's words.
        for (body, control, words) in [
            (
                "theme_accent=red",
                "theme_accent",
                "embed_theme.accent: must be a colour",
            ),
            (
                "theme_mode=neon",
                "theme_mode",
                "embed_theme.mode: must be light, dark or auto",
            ),
            ("theme_radius=99", "theme_radius", "embed_theme.radius"),
            (
                "theme_radius=-1",
                "theme_radius",
                "Corner radius must be a whole number",
            ),
            (
                "theme_font=%3C%2Fstyle%3E",
                "theme_font",
                "embed_theme.font",
            ),
        ] {
            let problems = sent(&format!("{base}&{body}"))
                .apply(&current(), here())
                .unwrap_err();
            assert!(
                problems.get(control).is_some_and(|m| m.starts_with(words)),
                "{body}: {problems:?}"
            );
        }
    }

    #[test]
    fn redaction_rules_are_read_line_by_line_and_checked_as_the_api_checks_them() {
        let base = "recording=on&retention=days&retention_days=365&rows=0&ip_allowlist=";
        let saved = sent(&format!(
            "{base}&redaction=1&redaction_name_contains=password%0D%0A%0D%0Ahunter+&\
             redaction_name_starts_with=&redaction_name_words=pin%0Asession&\
             redaction_name_last_words=key"
        ))
        .apply(&current(), here())
        .unwrap();
        assert_eq!(
            saved.redaction,
            RedactionRules {
                name_contains: vec!["password".into(), "hunter".into()],
                name_starts_with: vec![],
                name_words: vec!["pin".into(), "session".into()],
                name_last_words: vec!["key".into()],
                // The marker without the box: unticked.
                detect_values: false,
            }
        );
        assert_eq!(
            SettingsForm::from_settings(&saved).redaction.name_words,
            "pin\nsession"
        );
        // Without the marker (not a browser's form), the rules are kept.
        let kept = SettingsForm::read(&FormPairs(decode_query(base)), &saved)
            .apply(&saved, here())
            .unwrap();
        assert_eq!(kept.redaction, saved.redaction);
        let problems = sent(&format!(
            "{base}&redaction=1&redaction_detect_values=1&redaction_name_words=pin%0A%0A---"
        ))
        .apply(&current(), here())
        .unwrap_err();
        assert_eq!(
            problems["redaction_name_words"],
            "Line 3: holds no letter or digit, so it would match nothing."
        );
    }

    #[test]
    fn the_redaction_preview_shows_the_stored_form_or_the_api_s_problems() {
        let rules = RedactionRules::default();
        let sample = r#"{"action": "update", "actor": {"type": "user", "id": "u1"},
                         "metadata": {"pin": "1234", "note": "<b>hi</b>"}}"#;
        match redaction_preview(sample, 0, &rules) {
            RedactionPreview::Stored { event, redacted } => {
                assert_eq!(redacted, ["metadata.pin"]);
                assert!(event.contains("\"pin\": \"[REDACTED]\""), "{event}");
                // Shown escaped, as everything on a page is.
                let page = redaction_fieldset(
                    &SettingsForm::from_settings(&current()),
                    &Problems::new(),
                    Some(&RedactionPreview::Stored { event, redacted }),
                )
                .into_string();
                assert!(page.contains("&lt;b&gt;hi&lt;/b&gt;"), "{page}");
                assert!(!page.contains("<b>hi"));
            }
            other => panic!("{other:?}"),
        }
        match redaction_preview(r#"{"actor": {"type": "robot"}}"#, 0, &rules) {
            RedactionPreview::Refused(problems) => {
                assert_eq!(problems[0], "action: is required");
                assert!(problems[1].starts_with("actor.type: must be one of user"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            redaction_preview("{", 0, &rules),
            RedactionPreview::Refused(p) if p[0].starts_with("The sample is not valid JSON")
        ));
        assert!(matches!(
            redaction_preview("", 0, &rules),
            RedactionPreview::Nothing(_)
        ));
    }

    #[test]
    fn the_form_shows_the_settings_and_reads_back_to_them() {
        let form = SettingsForm::from_settings(&current());
        assert_eq!(form.channels.len(), 2, "the override and a blank row");
        let body = "recording=on&retention=days&retention_days=365&rows=2&channel_0=auth\
                    &channel_0_keep=days&channel_0_days=90&channel_1=&channel_1_keep=days\
                    &channel_1_days=&ip_allowlist=";
        assert_eq!(sent(body), form);
        assert_eq!(form.apply(&current(), here()), Ok(current()));
    }

    #[test]
    fn windows_below_the_floor_are_refused_naming_the_floor_and_the_row() {
        let problems = sent(
            "retention=days&retention_days=7&rows=2&channel_0=auth&channel_0_days=10\
             &channel_1=legal&channel_1_keep=forever",
        )
        .apply(&current(), here())
        .unwrap_err();
        assert_eq!(
            problems["retention_days"],
            "Retention must be at least 30 days (the minimum retention), got 7."
        );
        assert!(
            problems["channel_0"].starts_with("Retention for `auth` must be at least 30 days"),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 2, "the forever row is fine: {problems:?}");
    }

    #[test]
    fn rows_are_added_removed_kept_forever_and_checked() {
        let new = sent(
            "retention=forever&retention_days=365&rows=3&channel_0=auth&channel_0_remove=on\
             &channel_1=compliance&channel_1_days=2555&channel_2=legal&channel_2_keep=forever",
        )
        .apply(&current(), here())
        .unwrap();
        assert_eq!(new.retention_days, None);
        assert_eq!(
            new.channel_retention_days.into_iter().collect::<Vec<_>>(),
            [
                ("compliance".to_string(), Some(2555)),
                ("legal".to_string(), None)
            ]
        );
        for (body, says) in [
            ("retention_days=abc", "whole number"),
            ("retention_days=", "whole number"),
            ("retention_days=36501", "at most 36500 days; choose to keep"),
        ] {
            let problems = sent(body).apply(&current(), here()).unwrap_err();
            assert!(problems["retention_days"].contains(says), "{problems:?}");
        }
        let problems = sent(
            "retention_days=365&rows=3&channel_0=Bad Name&channel_0_days=90\
             &channel_1=auth&channel_1_days=90&channel_2=auth&channel_2_days=120",
        )
        .apply(&current(), here())
        .unwrap_err();
        assert!(problems["channel_0"].contains("is not a channel name"));
        assert_eq!(problems["channel_2"], "`auth` is listed twice.");
        let problems = sent("retention_days=365&rows=1&channel_0_days=90")
            .apply(&current(), here())
            .unwrap_err();
        assert!(problems["channel_0"].contains("name"));
    }

    #[test]
    fn turning_recording_off_needs_the_confirmation_and_on_does_not() {
        let problems = sent("retention_days=365&recording=off")
            .apply(&current(), here())
            .unwrap_err();
        assert!(
            problems["recording"].contains("I understand"),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 1);
        let off = sent("retention_days=365&recording=off&confirm_off=1")
            .apply(&current(), here())
            .unwrap();
        assert!(!off.enabled);
        // Off already: saving it off again, or turning it on, asks nothing.
        let read = |body: &str| SettingsForm::read(&FormPairs(decode_query(body)), &off);
        assert_eq!(
            read("retention_days=365&recording=off").apply(&off, here()),
            Ok(off.clone())
        );
        let on = read("retention_days=365&recording=on")
            .apply(&off, here())
            .unwrap();
        assert!(on.enabled);
        // A request that leaves the control out keeps what is stored.
        assert!(
            !read("retention_days=365")
                .apply(&off, here())
                .unwrap()
                .enabled
        );
    }

    #[test]
    fn embedding_origins_are_read_a_line_each_and_their_problems_name_line_and_field() {
        let new = sent(
            "retention_days=365&embed_origins=https://portal.example.com/%0D%0A%0D%0A+http://localhost:8080+%0Ahttps://portal.example.com",
        )
        .apply(&current(), here())
        .unwrap();
        assert_eq!(
            new.embed_origins,
            ["https://portal.example.com", "http://localhost:8080"]
        );
        let form = sent(
            "retention_days=365&embed_origins=https://ok.example%0A%0Ahttps://x.example/path%0Ahttps://a.example;+script-src+*",
        );
        let problems = form.apply(&current(), here()).unwrap_err();
        let message = &problems["embed_origins"];
        assert!(
            message.starts_with("Line 3 (embed_origins[1]) must be an origin"),
            "{message}"
        );
        assert!(message.contains("Line 4 (embed_origins[2])"), "{message}");
        // The form comes back as it was typed.
        assert_eq!(
            form.embed_origins,
            "https://ok.example\n\nhttps://x.example/path\nhttps://a.example; script-src *"
        );
        // A request without the field keeps the current list; an empty one clears it.
        let mut listed = current();
        listed.embed_origins = vec!["https://portal.example.com".into()];
        let kept = SettingsForm::read(&FormPairs(decode_query("retention_days=365")), &listed);
        assert_eq!(
            kept.apply(&listed, here()).map(|s| s.embed_origins),
            Ok(listed.embed_origins.clone())
        );
        let cleared = sent("retention_days=365&embed_origins=").apply(&listed, here());
        assert_eq!(cleared.map(|s| s.embed_origins), Ok(vec![]));
        // Shown on the page, escaped.
        let mut shown = current();
        shown.embed_origins = vec!["https://portal.example.com".into()];
        assert_eq!(
            SettingsForm::from_settings(&shown).embed_origins,
            "https://portal.example.com"
        );
    }

    #[test]
    fn the_allowlist_is_read_a_line_each_and_its_problems_name_the_lines() {
        let new =
            sent("retention_days=365&ip_allowlist=10.1.2.3/8%0D%0A%0D%0A+127.0.0.1+%0A10.0.0.0/8")
                .apply(&current(), here())
                .unwrap();
        assert_eq!(
            new.ip_allowlist,
            ["10.0.0.0/8", "127.0.0.1"],
            "canonical, no duplicates"
        );

        let form = sent("retention_days=365&ip_allowlist=127.0.0.1%0A%0Anope%0A10.0.0.0/40");
        let problems = form.apply(&current(), here()).unwrap_err();
        let message = &problems["ip_allowlist"];
        assert!(
            message.starts_with("Line 3: `nope` is not an IP address"),
            "{message}"
        );
        assert!(
            message.contains("Line 4: `10.0.0.0/40` has a prefix length"),
            "{message}"
        );
        assert_eq!(
            form.ip_allowlist, "127.0.0.1\n\nnope\n10.0.0.0/40",
            "kept as typed"
        );

        let problems = sent("retention_days=365&ip_allowlist=10.0.0.0/8")
            .apply(&current(), here())
            .unwrap_err();
        let message = &problems["ip_allowlist"];
        assert!(
            message.starts_with("This list would lock you out: this request comes from 127.0.0.1"),
            "{message}"
        );
        // An address Stele cannot tell can save only the empty list.
        let empty = sent("retention_days=365&ip_allowlist=").apply(&current(), None);
        assert_eq!(empty.map(|s| s.ip_allowlist), Ok(vec![]));
        assert!(
            sent("retention_days=365&ip_allowlist=127.0.0.1")
                .apply(&current(), None)
                .is_err()
        );
        // Left out of the request: the stored list stays.
        let mut listed = current();
        listed.ip_allowlist = vec!["127.0.0.0/8".into()];
        let form = SettingsForm::read(&FormPairs(decode_query("retention_days=365")), &listed);
        assert_eq!(
            form.apply(&listed, here()).map(|s| s.ip_allowlist),
            Ok(listed.ip_allowlist)
        );
    }
}
