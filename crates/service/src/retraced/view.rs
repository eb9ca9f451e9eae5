//! An entry as Retraced shows an event (the search's `node`): the reverse of the publisher's
//! mapping (docs/platforms.md, "Moving from Retraced"), for entries a Retraced publisher sent and
//! for every other entry of the trail alike.

use stele_core::Entry;
use stele_core::event::{Metadata, Outcome};
use stele_core::time::Millis;
use stele_store::Organization;

use super::query::Crud;

/// The origin key that names the door an entry came through, and the value of Retraced's.
pub const ORIGIN_PROTOCOL: &str = "protocol";
pub const RETRACED_PROTOCOL: &str = "retraced";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    pub id: String,
    /// The detailed action, else the general one.
    pub action: String,
    pub crud: String,
    /// `moment.utc(x).format()`: `2024-05-01T12:34:56Z`.
    pub created: String,
    pub received: String,
    pub canonical_time: String,
    pub description: Option<String>,
    pub actor: Option<ActorView>,
    pub group: GroupView,
    pub target: Option<TargetView>,
    /// The default display template, its values escaped ([`markdown`]).
    pub markdown: String,
    pub fields: Vec<(String, String)>,
    pub metadata: Vec<(String, String)>,
    pub is_failure: bool,
    pub is_anonymous: bool,
    pub source_ip: Option<String>,
    pub external_id: Option<String>,
    pub component: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorView {
    pub id: Option<String>,
    pub name: Option<String>,
    pub href: Option<String>,
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetView {
    pub id: Option<String>,
    pub name: Option<String>,
    pub href: Option<String>,
    /// `None` when the publisher sent no type (Stele stored `unknown`).
    pub kind: Option<String>,
    pub fields: Vec<(String, String)>,
}

/// `2024-05-01T12:34:56Z`, as Retraced renders times (`moment.utc(x).format()`: no fraction).
pub fn retraced_time(ms: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A flat map as Retraced's `[{key, value}]` (values as text).
fn pairs(map: &Metadata) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), text(v))).collect()
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn origin_text(entry: &Entry, key: &str) -> Option<String> {
    entry
        .event
        .origin
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// The entry as Retraced's event, in `org` (its group).
pub fn event_view(entry: &Entry, org: &Organization) -> EventView {
    let e = &entry.event;
    let origin = &e.origin;
    let from_retraced =
        origin.get(ORIGIN_PROTOCOL).and_then(|v| v.as_str()) == Some(RETRACED_PROTOCOL);
    let crud = origin_text(entry, "crud")
        .filter(|_| from_retraced)
        .unwrap_or_else(|| Crud::letter_of(&e.action).to_string());
    let actor_sent = e.actor.id.is_some() || e.actor.name.is_some();
    let actor = actor_sent.then(|| ActorView {
        id: e.actor.id.clone(),
        name: e.actor.name.clone(),
        href: e.actor.href.clone(),
        fields: pairs(&e.actor.metadata),
    });
    let type_absent = origin
        .get("target_type_absent")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let target = e.entity.as_ref().map(|t| TargetView {
        id: t.id.clone(),
        name: t.name.clone(),
        href: t.href.clone(),
        kind: (!type_absent).then(|| t.kind.clone()),
        fields: pairs(&t.metadata),
    });
    let group = GroupView {
        id: org.external_id.clone().unwrap_or_else(|| org.id.clone()),
        name: origin_text(entry, "group_name").unwrap_or_else(|| org.name.clone()),
    };
    let action = e
        .detailed_action
        .clone()
        .unwrap_or_else(|| e.action.clone());
    let markdown = markdown(
        actor.as_ref().and_then(|a| a.name.as_deref()),
        &action,
        target.as_ref().and_then(|t| t.name.as_deref()),
    );
    let retraced_metadata = match origin.get("metadata") {
        Some(serde_json::Value::Object(map)) => {
            map.iter().map(|(k, v)| (k.clone(), text(v))).collect()
        }
        _ => Vec::new(),
    };
    EventView {
        id: entry.id.clone(),
        action,
        crud,
        created: retraced_time(e.occurred_at),
        received: retraced_time(entry.recorded_at),
        canonical_time: retraced_time(e.occurred_at),
        description: e.description.clone(),
        actor,
        group,
        target,
        markdown,
        fields: pairs(&e.metadata),
        metadata: retraced_metadata,
        is_failure: e.outcome == Outcome::Failure,
        is_anonymous: origin
            .get("is_anonymous")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        source_ip: e.context.ip.clone(),
        external_id: origin_text(entry, "external_id"),
        component: origin_text(entry, "component"),
        version: origin_text(entry, "version"),
    }
}

/// Retraced's default display template: `**{{actor.name}}** performed the action **{{action}}**
/// on the item **{{target.name}}**.` (`**An unknown actor**` without a name; the target clause
/// only with a target name). Every value is [`escape`]d: the viewer renders the text as Markdown,
/// and what a publisher sent must show as text, never as markup or a link.
pub fn markdown(actor_name: Option<&str>, action: &str, target_name: Option<&str>) -> String {
    let actor = match actor_name {
        Some(name) if !name.is_empty() => format!("**{}**", escape(name)),
        _ => "**An unknown actor**".to_string(),
    };
    let target = match target_name {
        Some(name) if !name.is_empty() => format!(" on the item **{}**", escape(name)),
        _ => String::new(),
    };
    format!(
        "{actor} performed the action **{}**{target}.",
        escape(action)
    )
}

/// Text that Markdown shows as it is: every ASCII punctuation character backslash-escaped
/// (CommonMark lets any of them be), `<` and `>` besides as entities so that a renderer that
/// passes HTML through still shows them as text, and line breaks as spaces (a new line could
/// start a heading or a list).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_template_reads_as_retraceds() {
        assert_eq!(
            markdown(Some("Jo User"), "document.update", Some("Q2 plan")),
            "**Jo User** performed the action **document\\.update** on the item **Q2 plan**."
        );
        assert_eq!(
            markdown(None, "login", None),
            "**An unknown actor** performed the action **login**."
        );
    }

    #[test]
    fn values_cannot_become_markup() {
        let text = markdown(
            Some("**x** [a](javascript:alert(1)) <img src=x onerror=alert(1)>"),
            "a\n# b",
            Some("`code` _i_"),
        );
        assert!(!text.contains("<img"), "{text}");
        assert!(!text.contains("]("), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("\\*\\*x\\*\\*"), "{text}");
        assert!(text.contains("\\`code\\` \\_i\\_"), "{text}");
    }

    #[test]
    fn times_are_whole_seconds_in_utc() {
        assert_eq!(retraced_time(1_714_566_896_789), "2024-05-01T12:34:56Z");
    }
}
