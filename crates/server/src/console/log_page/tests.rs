//! The log page rendered over a real SQLite store: filters, the chart, correlation, escaping.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use stele_core::{Context, Impersonator, NewEvent, Seq};
use stele_store::conformance::{event, request};
use stele_store_sqlite::SqliteStore;

use super::*;

use crate::console::render::decode_query;

const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MINUTE: Millis = 60_000;
const NOW: Millis = T0 + 2 * DAY_MS + 5 * 3_600_000; // 2026-01-03T05:00:00Z
const BASE: &str = "/console";
const EVIL: &str = "<script>alert(1)</script>\"onmouseover=alert(2) x=\"";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    org: OrgKey,
}

async fn fixture(events: Vec<NewEvent>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("stele.db")).unwrap());
    let org = store.create_org("acme").await.unwrap().key;
    // Another organization's entries must never show.
    let other = store.create_org("other").await.unwrap().key;
    store
        .append(other, request(vec![described("create", T0, "not yours")]))
        .await
        .unwrap();
    if !events.is_empty() {
        store.append(org, request(events)).await.unwrap();
    }
    Fixture {
        _dir: dir,
        store,
        org,
    }
}

fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn log(f: &Fixture, list: &[(&str, &str)]) -> String {
    audit_log(f.store.as_ref(), f.org, &params(list), NOW, BASE, None)
        .await
        .unwrap()
        .into_string()
}

async fn history(f: &Fixture, t: &str, id: &str, list: &[(&str, &str)]) -> String {
    entity_history(
        f.store.as_ref(),
        f.org,
        (t, id),
        &params(list),
        NOW,
        BASE,
        None,
    )
    .await
    .unwrap()
    .into_string()
}

fn described(action: &str, at: Millis, description: &str) -> NewEvent {
    let mut e = event(action, at);
    e.description = Some(description.to_string());
    e
}

fn system(action: &str, at: Millis, description: &str) -> NewEvent {
    let mut e = described(action, at, description);
    e.actor = Actor {
        kind: ActorType::System,
        id: None,
        name: Some("retention".into()),
        email: None,
        href: None,
        metadata: Default::default(),
        original_type: None,
    };
    e
}

fn printer(mut e: NewEvent, id: &str, name: Option<&str>) -> NewEvent {
    e.entity = Some(Entity::new(
        "Printer",
        Some(id.into()),
        name.map(str::to_string),
    ));
    e
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `href` of the link whose class list is exactly `class`.
fn href(html: &str, class: &str) -> Option<String> {
    let at = html.find(&format!("<a class=\"{class}\""))?;
    let tag = &html[at..at + html[at..].find('>')?];
    let start = tag.find("href=\"")? + 6;
    let end = start + tag[start..].find('"')?;
    Some(unescape(&tag[start..end]))
}

/// The query parameters of a link.
fn link_params(href: &str) -> Vec<(String, String)> {
    decode_query(href.split_once('?').map_or("", |(_, q)| q))
}

fn rows(html: &str) -> usize {
    html.matches("<tr class=\"log-row").count()
}

/// The entries each row stands for (its `data-entries`), top to bottom.
fn row_entries(html: &str) -> Vec<Vec<String>> {
    html.match_indices(" data-entries=\"")
        .map(|(at, m)| {
            let rest = &html[at + m.len()..];
            rest[..rest.find('"').unwrap()]
                .split(' ')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// The description of each row, top to bottom.
fn row_descriptions(html: &str) -> Vec<String> {
    html.match_indices("<span class=\"description\">")
        .map(|(at, m)| {
            let rest = &html[at + m.len()..];
            rest[..rest.find('<').unwrap()].to_string()
        })
        .collect()
}

fn checkbox_checked(html: &str, value: &str) -> bool {
    let marker = format!("name=\"actor_type\" value=\"{value}\"");
    let at = html.find(&marker).expect("checkbox");
    let tag = &html[at..at + html[at..].find('>').unwrap()];
    tag.contains(" checked")
}

fn filter_of(list: &[(String, String)]) -> EventFilter {
    PageRequest::from_params(list.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap()
        .filter
}

fn evil_event(at: Millis) -> NewEvent {
    let mut e = described("update", at, EVIL);
    e.detailed_action = Some(EVIL.into());
    e.channel = EVIL.into();
    e.actor = Actor {
        kind: ActorType::User,
        id: Some(EVIL.into()),
        name: Some(EVIL.into()),
        email: Some(EVIL.into()),
        href: Some(EVIL.into()),
        metadata: BTreeMap::from([(EVIL.to_string(), Value::from(EVIL))]),
        original_type: Some(EVIL.into()),
    };
    e.entity = Some(Entity::new(EVIL, Some(EVIL.into()), Some(EVIL.into())));
    e.related_entities = vec![Entity {
        href: Some(EVIL.into()),
        metadata: BTreeMap::from([(EVIL.to_string(), Value::from(EVIL))]),
        ..Entity::new(EVIL, Some(EVIL.into()), Some(EVIL.into()))
    }];
    e.origin = BTreeMap::from([
        ("protocol".to_string(), Value::from(EVIL)),
        (EVIL.to_string(), Value::from(EVIL)),
    ]);
    e.entity_ids = vec![EVIL.into()];
    e.context = Context {
        ip: Some(EVIL.into()),
        user_agent: Some(EVIL.into()),
        correlation_id: Some(EVIL.into()),
        request_id: Some(EVIL.into()),
        reason: Some(EVIL.into()),
        source: Some(EVIL.into()),
        api_key_id: Some(EVIL.into()),
        impersonator: Some(Impersonator {
            id: Some(EVIL.into()),
            email: Some(EVIL.into()),
        }),
        location: Some(EVIL.into()),
    };
    e.changes = vec![Change {
        field: EVIL.into(),
        old: Some(json!(EVIL)),
        new: Some(json!({ "html": EVIL })),
    }];
    e.metadata = BTreeMap::from([(EVIL.to_string(), Value::from(EVIL))]);
    e
}

fn stored(e: NewEvent, seq: i64) -> Entry {
    Entry {
        id: format!("01a20098-2011-7173-bda2-{seq:012}"),
        seq: Seq::new(seq),
        recorded_at: e.occurred_at,
        event: e,
    }
}

fn assert_escaped(html: &str) {
    assert!(!html.contains("<script"), "raw <script in {html}");
    assert!(
        !html.contains("\"onmouseover="),
        "raw attribute break-out in {html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;onmouseover=alert(2)"));
}

#[test]
fn event_data_is_rendered_as_text_in_a_row_and_its_details() {
    let entry = stored(evil_event(T0), 1);
    let other = stored(evil_event(T0 + 1), 2);
    let group = Correlated {
        entries: vec![other],
        more: false,
    };
    let row = TableRow {
        entry: &entry,
        folded: vec![],
    };
    let html = entry_rows(BASE, &row, Some(&group), NOW).into_string();
    assert_escaped(&html);
    // Entity ids are path segments: encoded, never able to leave the attribute.
    assert!(html.contains("/console/entities/%3Cscript%3E"), "{html}");
    // A link the sender gave is followed only when it is a web address.
    assert!(!html.contains("href=\"<"), "{html}");
    assert!(!html.contains("class=\"outside\""), "{html}");
}

#[test]
fn the_fields_of_the_compatible_doors_are_shown() {
    let mut e = described("login", T0, "Signed in");
    e.detailed_action = Some("user.signed_in".into());
    e.actor.original_type = Some("Service Account".into());
    e.actor.href = Some("https://app.test/u/1".into());
    e.actor.metadata = BTreeMap::from([("role".to_string(), json!("admin"))]);
    e.entity = Some(Entity::new(
        "team",
        Some("team_1".into()),
        Some("Team".into()),
    ));
    e.related_entities = vec![Entity {
        href: Some("javascript:alert(1)".into()),
        metadata: BTreeMap::from([("size".to_string(), json!(3))]),
        ..Entity::new("document", Some("doc_1".into()), Some("Plan".into()))
    }];
    e.origin = BTreeMap::from([
        ("protocol".to_string(), json!("workos")),
        ("version".to_string(), json!(2)),
    ]);
    let entry = stored(e, 1);
    let row = TableRow {
        entry: &entry,
        folded: vec![],
    };
    let html = entry_rows(BASE, &row, None, NOW).into_string();
    for shown in [
        "(sent as “Service Account”)",
        "href=\"https://app.test/u/1\"",
        "Related entity",
        "<code>doc_1</code> · Plan",
        "Actor metadata",
        "Metadata of document",
        "Sent through the WorkOS API",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    // Not a web address: shown, never a link.
    assert!(
        html.contains("<code><span class=\"value\">javascript:alert(1)</span></code>"),
        "{html}"
    );
    assert!(!html.contains("href=\"javascript:"), "{html}");
}

#[tokio::test]
async fn event_data_is_rendered_as_text_on_the_whole_page() {
    let f = fixture(vec![evil_event(T0), evil_event(T0 + 1)]).await;
    // The two share a correlation id: one row, listing the other in its details.
    let html = log(&f, &[]).await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("Correlated entries (1)"));
    assert_escaped(&html);
    // The facets (entity types, channels) in the filter bar too.
    let html = log(&f, &[("channel", EVIL), ("q", EVIL), ("actor", EVIL)]).await;
    assert_eq!(rows(&html), 1);
    assert_escaped(&html);
    let html = history(&f, EVIL, EVIL, &[]).await;
    assert_eq!(rows(&html), 1);
    assert_escaped(&html);
    let html = log(&f, &[("correlation_id", EVIL)]).await;
    assert_eq!(rows(&html), 2);
    assert_escaped(&html);
}

#[tokio::test]
async fn the_table_shows_time_actor_action_entity_and_ip() {
    let mut e = printer(
        described("update", NOW - 2 * 3_600_000, "Renamed"),
        "42",
        Some("Alpha"),
    );
    e.detailed_action = Some("printer.rename".into());
    e.context.ip = Some("203.0.113.7".into());
    let nameless = printer(
        described("delete", NOW - 5 * MINUTE, "Removed"),
        "01a20098-2011-7173",
        None,
    );
    let f = fixture(vec![e, nameless, system("login", NOW - 3 * DAY_MS, "sys")]).await;
    let html = log(&f, &[]).await;
    assert_eq!(rows(&html), 2, "System actors are hidden by default");
    assert!(html.contains("2 entries"));
    assert!(
        html.contains("datetime=\"2026-01-03T03:00:00.000Z\""),
        "{html}"
    );
    assert!(html.contains("2026-01-03 03:00:00 UTC"));
    assert!(html.contains("2 hours ago") && html.contains("5 minutes ago"));
    assert!(html.contains(">Ada<") && html.contains(">ada@example.com<"));
    assert!(html.contains("badge badge-sky") && html.contains("badge badge-rose"));
    assert!(html.contains("<code>printer.rename</code>"));
    assert!(html.contains(">Alpha</a>"));
    assert!(html.contains("href=\"/console/entities/Printer/42\""));
    assert!(
        html.contains(">01a20098…</a>"),
        "a shortened id when there is no name"
    );
    assert!(html.contains(">203.0.113.7<"));
    assert!(html.contains(">Renamed<"));
    assert!(!html.contains("not yours"));
    let html = log(&f, &[("actor_type", "all")]).await;
    assert_eq!(rows(&html), 3);
    assert!(html.contains("badge badge-system") && html.contains(">System<"));
    assert!(html.contains("3 days ago"));
}

#[tokio::test]
async fn newer_and_older_links_appear_only_where_there_is_more() {
    let events = (0..30)
        .map(|i| described("update", T0 + i * MINUTE, &format!("event {i:02}")))
        .collect();
    let f = fixture(events).await;
    let first = log(&f, &[("limit", "10")]).await;
    assert_eq!(rows(&first), 10);
    assert!(first.find("event 29").unwrap() < first.find("event 28").unwrap());
    assert_eq!(href(&first, "page-newer"), None);
    assert!(first.contains("class=\"page-newer disabled\""));
    let older = href(&first, "page-older").expect("an Older link");
    assert!(older.starts_with("/console/log?"), "{older}");

    let second = log_at(&f, &older).await;
    assert_eq!(rows(&second), 10);
    assert!(second.contains("event 19") && !second.contains("event 20"));
    let back = href(&second, "page-newer").expect("a Newer link");
    let third = log_at(&f, &href(&second, "page-older").expect("an Older link")).await;
    assert!(third.contains("event 00") && third.contains("event 09"));
    assert_eq!(href(&third, "page-older"), None);
    assert!(third.contains("class=\"page-older disabled\""));
    assert!(href(&third, "page-newer").is_some());

    let again = log_at(&f, &back).await;
    assert!(again.contains("event 29") && again.contains("event 20"));
    assert_eq!(rows(&again), 10);
}

async fn log_at(f: &Fixture, href: &str) -> String {
    let list = link_params(href);
    let list: Vec<(&str, &str)> = list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    log(f, &list).await
}

#[tokio::test]
async fn rows_per_page_default_to_25_and_the_choice_stays_in_the_url() {
    let events = (0..30).map(|i| event("update", T0 + i)).collect();
    let f = fixture(events).await;
    let html = log(&f, &[]).await;
    assert_eq!(rows(&html), 25);
    assert!(html.contains("<strong class=\"rows-current\" aria-current=\"true\">25</strong>"));
    let choices: Vec<String> = html
        .match_indices("<a class=\"rows-choice\" href=\"")
        .map(|(at, _)| href(&html[at..], "rows-choice").unwrap())
        .collect();
    assert_eq!(
        choices,
        [
            "/console/log?limit=10",
            "/console/log?limit=50",
            "/console/log?limit=100"
        ]
    );
    let html = log(&f, &[("limit", "10"), ("action", "update")]).await;
    assert_eq!(rows(&html), 10);
    assert!(html.contains("<strong class=\"rows-current\" aria-current=\"true\">10</strong>"));
    let older = href(&html, "page-older").unwrap();
    assert!(
        older.contains("limit=10") && older.contains("action=update"),
        "{older}"
    );
    assert!(html.contains("<input type=\"hidden\" name=\"limit\" value=\"10\">"));
    // Choosing 25 again drops the parameter, and any cursor (back to the first page).
    assert!(
        html.contains("href=\"/console/log?action=update\">25</a>"),
        "{html}"
    );
    let page2 = log_at(&f, &older).await;
    assert!(page2.contains("href=\"/console/log?action=update&amp;limit=50\">50</a>"));
}

#[tokio::test]
async fn system_is_unchecked_by_default_and_shown_when_asked_for() {
    let f = fixture(vec![
        described("create", T0, "by a person"),
        system("delete", T0 + 1, "by the system"),
    ])
    .await;
    let html = log(&f, &[]).await;
    assert!(!checkbox_checked(&html, "system"));
    for t in ["user", "api", "webhook", "scheduler"] {
        assert!(checkbox_checked(&html, t), "{t}");
    }
    assert_eq!(rows(&html), 1);
    assert!(!html.contains("by the system"));
    assert!(html.contains("System actors hidden"));

    let html = log(&f, &[("actor_type", "system")]).await;
    assert!(checkbox_checked(&html, "system") && !checkbox_checked(&html, "user"));
    assert_eq!(rows(&html), 1);
    assert!(html.contains("by the system") && html.contains("badge-system"));
    assert!(html.contains("<span class=\"count-badge\">1</span>"));

    // The form sends one parameter per checkbox.
    let html = log(&f, &[("actor_type", "user"), ("actor_type", "system")]).await;
    assert_eq!(rows(&html), 2);

    // Ticking exactly the default is no filter, and links stay short.
    let default = [
        ("actor_type", "user"),
        ("actor_type", "api"),
        ("actor_type", "webhook"),
        ("actor_type", "scheduler"),
    ];
    let html = log(&f, &default).await;
    assert!(!html.contains("count-badge"));
    assert!(!html.contains("actor_type="), "{html}");
}

/// Three entries of request `req-1` (steps 0, 1, 2, a minute apart, each with its own change)
/// and one entry of no request between steps 1 and 2.
fn one_request_and_a_stranger() -> Vec<NewEvent> {
    let mut events = Vec::new();
    for (i, action) in ["update", "create", "delete"].into_iter().enumerate() {
        let mut e = described(action, T0 + 2 * i as Millis * MINUTE, &format!("step {i}"));
        e.context.correlation_id = Some("req-1".into());
        e.changes = vec![Change {
            field: format!("field{i}"),
            old: Some(json!("before")),
            new: Some(json!("after")),
        }];
        events.push(e);
    }
    events.push(described("login", T0 + 3 * MINUTE, "alone"));
    events
}

#[tokio::test]
async fn a_requests_entries_on_a_page_are_one_row_led_by_its_first_entry() {
    let f = fixture(one_request_and_a_stranger()).await;
    let html = log(&f, &[]).await;
    // Two rows: the stranger, then the request's first step standing for all three.
    assert_eq!(rows(&html), 2, "{html}");
    assert_eq!(row_descriptions(&html), ["alone", "step 0"]);
    let ids = row_entries(&html);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].len(), 1);
    assert_eq!(ids[1].len(), 3, "newest first: step 2, step 1, step 0");
    assert!(html.contains(&format!("id=\"entry-{}\"", ids[1][2])));
    assert!(html.contains("<tbody class=\"entry grouped\""));
    // The count is the group's size, itself included, as Printago's "(2)" for two changes.
    assert_eq!(html.matches("<span class=\"correlated-count\"").count(), 1);
    assert!(html.contains(">(3)</span>"), "{html}");
    assert!(html.contains("3 entries share this correlation id"));
    // Every entry is still counted: the total is the store's, not the rows'.
    assert!(html.contains("4 entries"));

    // Expanded, the row lists the other two with their own actions and changes.
    let details = &html[html.find("step 0").unwrap()..];
    assert!(details.contains("Correlated entries (2)"), "{details}");
    for needle in [
        "step 1",
        "step 2",
        "field0",
        "field1",
        "field2",
        "badge-emerald",
        "badge-rose",
    ] {
        assert!(details.contains(needle), "{needle} in {details}");
    }
    assert!(details.contains("href=\"/console/log?actor_type=all&amp;correlation_id=req-1\""));
}

#[tokio::test]
async fn a_group_over_a_page_boundary_has_a_row_on_each_page_and_pages_stay_by_entries() {
    let f = fixture(one_request_and_a_stranger()).await;
    // Newest first: step 2, alone, step 1 | step 0.
    let first = log(&f, &[("limit", "3")]).await;
    assert_eq!(row_descriptions(&first), ["alone", "step 1"]);
    assert_eq!(
        row_entries(&first)[1].len(),
        2,
        "steps 2 and 1 on this page"
    );
    assert!(first.contains(">(3)</span>"), "the whole group's size");
    let older = href(&first, "page-older").expect("an Older link: one entry is left");
    let second = log_at(&f, &older).await;
    assert_eq!(row_descriptions(&second), ["step 0"]);
    assert!(second.contains(">(3)</span>"));
    assert!(second.contains("Correlated entries (2)"));
    assert_eq!(href(&second, "page-older"), None);
}

#[tokio::test]
async fn the_list_of_one_correlation_id_shows_each_entry_as_its_own_row() {
    let f = fixture(one_request_and_a_stranger()).await;
    let html = log(&f, &[("correlation_id", "req-1")]).await;
    assert_eq!(rows(&html), 3);
    assert_eq!(row_descriptions(&html), ["step 2", "step 1", "step 0"]);
    assert!(row_entries(&html).iter().all(|ids| ids.len() == 1));
    assert_eq!(html.matches(">(3)</span>").count(), 3);
    // A search term naming it is the same list.
    let html = log(&f, &[("q", "correlation:req-1")]).await;
    assert_eq!(rows(&html), 3);
}

#[tokio::test]
async fn a_viewers_fixed_filters_narrow_the_correlated_entries_too() {
    let mut events = one_request_and_a_stranger();
    events[1] = printer(events[1].clone(), "P-2", None);
    events[2] = printer(events[2].clone(), "P-1", None);
    let f = fixture(events).await;
    let fixed = FixedFilters {
        entity_type: Some("Printer".into()),
        entity_id: Some("P-1".into()),
        ..FixedFilters::default()
    };
    let list = fixed.apply(&[]);
    let html = entity_history(
        f.store.as_ref(),
        f.org,
        ("Printer", "P-1"),
        &list,
        NOW,
        BASE,
        Some(&fixed),
    )
    .await
    .unwrap()
    .into_string();
    assert_eq!(row_descriptions(&html), ["step 2"]);
    assert!(
        !html.contains("step 1") && !html.contains("step 0"),
        "{html}"
    );
    assert!(!html.contains("correlated-count"));
    // Without fixed filters (a member in the console) the record's row lists the request.
    let html = history(&f, "Printer", "P-1", &[]).await;
    assert!(html.contains("step 1") && html.contains("step 0"));
}

#[tokio::test]
async fn invalid_parameters_render_an_error_naming_the_parameter() {
    let f = fixture(vec![event("update", T0)]).await;
    let html = log(&f, &[("from", "yesterday"), ("action", "update")]).await;
    assert!(html.contains("role=\"alert\""));
    assert!(
        html.contains("The From filter (<code>from</code>) is not valid"),
        "{html}"
    );
    assert!(html.contains("must be an RFC 3339 timestamp or a date"));
    assert!(!html.contains("log-table"));
    assert!(
        html.contains("id=\"f-from\" name=\"from\" value=\"yesterday\" aria-invalid=\"true\""),
        "{html}"
    );
    // The rest of the form keeps its values so the mistake can be corrected.
    assert!(html.contains("<option value=\"update\" selected>update</option>"));

    let html = log(&f, &[("actor_type", "<script>")]).await;
    assert!(html.contains("<code>actor_type</code>"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("`&lt;script&gt;`"));
    for (key, value) in [("limit", "1000"), ("cursor", "x"), ("outcome", "maybe")] {
        let html = log(&f, &[(key, value)]).await;
        assert!(
            html.contains(&format!("(<code>{key}</code>) is not valid")),
            "{key}"
        );
        // Clear all goes back to the plain page.
        assert_eq!(
            href(&html, "button clear-all").as_deref(),
            Some("/console/log")
        );
    }
}

#[tokio::test]
async fn every_filter_survives_the_links_of_the_page() {
    let mut e = printer(
        described("update", T0 + DAY_MS, "Renamed printer"),
        "42",
        None,
    );
    e.detailed_action = Some("printJob.retry".into());
    e.channel = "hardware".into();
    e.context.correlation_id = Some("req 1".into());
    e.context.ip = Some("203.0.113.7".into());
    let f = fixture(vec![e.clone(), e]).await;
    let given = [
        ("action", "update"),
        ("detailed_action", "printJob.*"),
        ("actor_type", "user"),
        ("actor_type", "api"),
        ("actor", "ada@example.com"),
        ("entity_type", "Printer"),
        ("entity_id", "42"),
        ("channel", "hardware"),
        ("outcome", "success"),
        ("correlation_id", "req 1"),
        ("ip", "203.0.113.7"),
        ("from", "2026-01-01"),
        ("to", "2026-01-05T00:00:00Z"),
        ("q", "renamed"),
        ("limit", "1"),
    ];
    let html = log(&f, &given).await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("<span class=\"count-badge\">13</span>"));
    let mut expected = filter_of(&params(&given));
    expected.actor_types = vec![ActorType::User, ActorType::Api];
    let older = href(&html, "page-older").unwrap();
    assert_eq!(filter_of(&link_params(&older)), expected);
    let refresh = href(&html, "button refresh").unwrap();
    assert_eq!(filter_of(&link_params(&refresh)), expected);
    let next = log_at(&f, &older).await;
    let newer = href(&next, "page-newer").unwrap();
    assert_eq!(filter_of(&link_params(&newer)), expected);
    for format in ["csv", "json"] {
        let export = html
            .match_indices("<a class=\"button export\"")
            .map(|(at, _)| href(&html[at..], "button export").unwrap())
            .find(|h| h.contains(&format!("format={format}")))
            .unwrap();
        assert!(
            export.starts_with(&format!("/console/export?format={format}&")),
            "{export}"
        );
        let export_params = link_params(&export);
        assert!(
            !export_params
                .iter()
                .any(|(k, _)| k == "limit" || k == "cursor")
        );
        assert_eq!(filter_of(&export_params), expected);
    }
}

#[tokio::test]
async fn active_filters_are_counted_and_cleared() {
    let f = fixture(vec![event("update", T0)]).await;
    let html = log(&f, &[]).await;
    assert!(!html.contains("count-badge") && !html.contains("Clear all"));
    assert!(html.contains("href=\"/console/export?format=csv\""));
    let html = log(&f, &[("action", "update"), ("q", "xyz"), ("limit", "10")]).await;
    assert!(html.contains("<span class=\"count-badge\">2</span> filters active"));
    assert_eq!(
        href(&html, "button clear-all").as_deref(),
        Some("/console/log?limit=10")
    );
    assert!(html.contains("No entries match these filters."));
    assert!(html.contains("0 entries"));
}

#[tokio::test]
async fn filters_set_by_search_terms_show_their_value_and_count() {
    let f = fixture(vec![event("update", T0)]).await;
    let html = log(
        &f,
        &[
            (
                "q",
                r#"action:update channel:auth actor_type:user created:>2026-01-01 "jam""#,
            ),
            ("channel", "auth"),
        ],
    )
    .await;
    // action, actor_type and created from the terms, the text, and the channel parameter.
    assert!(
        html.contains("<span class=\"count-badge\">5</span> filters active"),
        "{html}"
    );
    let select = |id: &str| {
        let at = html.find(&format!("<select id=\"{id}\"")).unwrap();
        html[at..at + html[at..].find("</select>").unwrap()].to_string()
    };
    let action = select("f-action");
    assert!(action.contains(" disabled>"), "{action}");
    assert!(action.contains("<option value=\"update\" selected>update</option>"));
    assert!(
        select("f-channel").contains(" disabled>"),
        "a term sets it too"
    );
    assert!(!select("f-outcome").contains("disabled"), "no term sets it");
    assert!(
        html.contains("<fieldset class=\"actor-types\" disabled>"),
        "{html}"
    );
    assert!(
        html.contains("name=\"from\" value=\"2026-01-02T00:00:00.000Z\" disabled>"),
        "{html}"
    );
    assert_eq!(html.matches("Set in Search").count(), 4, "{html}");
}

#[test]
fn the_chart_spans_30_days_or_the_range_capped_at_90() {
    let filter = |from: Option<&str>, to: Option<&str>| {
        let mut list = vec![];
        list.extend(from.map(|v| ("from", v)));
        list.extend(to.map(|v| ("to", v)));
        PageRequest::from_params(list).unwrap().filter
    };
    let jan3 = T0 + 2 * DAY_MS;
    assert_eq!(
        chart_days(&filter(None, None), NOW),
        (jan3 - 29 * DAY_MS, 30)
    );
    assert_eq!(
        chart_days(&filter(Some("2026-01-01"), Some("2026-01-03")), NOW),
        (T0, 3)
    );
    assert_eq!(
        chart_days(&filter(Some("2026-01-02"), None), NOW),
        (T0 + DAY_MS, 2)
    );
    assert_eq!(
        chart_days(&filter(None, Some("2026-01-01")), NOW),
        (T0 - 29 * DAY_MS, 30)
    );
    assert_eq!(
        chart_days(&filter(Some("2025-01-01"), Some("2026-01-03")), NOW),
        (jan3 - 89 * DAY_MS, 90)
    );
    assert_eq!(
        chart_days(
            &filter(Some("2026-01-01T12:00:00Z"), Some("2026-01-01T13:00:00Z")),
            NOW
        ),
        (T0, 1)
    );
}

#[tokio::test]
async fn the_chart_counts_entries_per_day_for_the_current_filters() {
    let f = fixture(vec![
        event("update", T0 + 5),
        event("update", T0 + 6),
        event("create", T0 + 2 * DAY_MS),
    ])
    .await;
    let html = log(&f, &[]).await;
    assert_eq!(html.matches("<rect").count(), 30);
    assert!(html.contains("2026-01-01: 2 entries"));
    assert!(html.contains("2026-01-02: 0 entries"));
    assert!(html.contains("2026-01-03: 1 entry"));
    assert!(html.contains("2025-12-05 to 2026-01-03"));
    let html = log(
        &f,
        &[
            ("action", "update"),
            ("from", "2026-01-01"),
            ("to", "2026-01-03"),
        ],
    )
    .await;
    assert_eq!(html.matches("<rect").count(), 3);
    assert!(html.contains("2026-01-01: 2 entries") && html.contains("2026-01-03: 0 entries"));
    let html = log(&f, &[("from", "2025-01-01"), ("to", "2026-01-03")]).await;
    assert_eq!(html.matches("<rect").count(), 90);
}

#[tokio::test]
async fn a_record_history_shows_every_entry_naming_it() {
    let mut bulk = described("bulk_update", T0 + 3, "bulk");
    bulk.entity = Some(Entity::new("Printer", None, None));
    bulk.entity_ids = vec!["41".into(), "42".into(), "43".into()];
    let f = fixture(vec![
        printer(described("create", T0, "created"), "42", Some("Alpha")),
        printer(
            system("update", T0 + 1, "went offline"),
            "42",
            Some("Alpha"),
        ),
        printer(described("update", T0 + 2, "another printer"), "7", None),
        bulk,
    ])
    .await;
    let html = history(&f, "Printer", "42", &[]).await;
    assert_eq!(rows(&html), 3);
    assert!(html.contains("created") && html.contains("went offline") && html.contains("bulk"));
    assert!(!html.contains("another printer"));
    assert!(html.contains("History of <span class=\"entity-type\">Printer</span> Alpha"));
    assert!(checkbox_checked(&html, "system"));
    assert!(!html.contains("count-badge"));
    assert!(
        !html.contains("name=\"entity_id\""),
        "the record is fixed by the path"
    );
    assert!(html.contains("action=\"/console/entities/Printer/42\""));
    assert!(html.contains(
        "href=\"/console/export?format=csv&amp;actor_type=all&amp;entity_type=Printer&amp;entity_id=42\""
    ), "{html}");
    assert!(html.contains("(3 ids)"));

    let html = history(
        &f,
        "Printer",
        "42",
        &[("actor_type", "user"), ("actor_type", "api")],
    )
    .await;
    assert_eq!(rows(&html), 2);
    assert!(!checkbox_checked(&html, "system"));
    assert!(html.contains("<span class=\"count-badge\">1</span>"));
    let older_free = href(&html, "button refresh").unwrap();
    assert!(
        older_free.starts_with("/console/entities/Printer/42?actor_type=user%2Capi"),
        "{older_free}"
    );
    // The log page links each entity to its history.
    let log_html = log(&f, &[]).await;
    assert!(log_html.contains("href=\"/console/entities/Printer/42\""));
}

#[tokio::test]
async fn the_search_box_takes_the_query_language_on_the_log_and_on_a_history() {
    let f = fixture(vec![
        printer(described("create", T0, "created"), "42", Some("Alpha")),
        printer(
            system("update", T0 + 1, "went offline"),
            "42",
            Some("Alpha"),
        ),
        printer(described("update", T0 + 2, "status: done"), "7", None),
    ])
    .await;
    let html = log(&f, &[]).await;
    assert!(html.contains("placeholder=\"e.g. action:update &quot;paper jam&quot;\""));

    let html = log(&f, &[("q", "action:update entity:Printer")]).await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("status: done"));
    let html = log(&f, &[("q", "\"status: done\"")]).await;
    assert_eq!(rows(&html), 1);

    // On a history, a term may show System actors, and the export keeps that choice.
    let html = history(&f, "Printer", "42", &[("q", "actor_type:system")]).await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("went offline"));
    let export = link_params(&href(&html, "button export").unwrap());
    assert!(
        export.contains(&("q".to_string(), "actor_type:system".to_string())),
        "{export:?}"
    );
    assert!(!export.iter().any(|(k, _)| k == "actor_type"), "{export:?}");

    let html = log(&f, &[("q", "printer foo:bar")]).await;
    assert_eq!(rows(&html), 0);
    assert!(html.contains("The Search filter (<code>q</code>) is not valid"));
    assert!(
        html.contains("`foo:bar`: unknown search key `foo`"),
        "{html}"
    );
    assert!(html.contains("id=\"f-q\" name=\"q\" value=\"printer foo:bar\""));
    let html = history(&f, "Printer", "42", &[("q", "entity:Printer:7")]).await;
    assert_eq!(rows(&html), 0);
    assert!(html.contains("`entity:Printer:7`"));
}

#[test]
fn changes_show_old_in_red_and_new_in_green_and_only_the_sides_there_are() {
    let change = |old: Option<Value>, new: Option<Value>| Change {
        field: "name".into(),
        old,
        new,
    };
    let update = changes_table(&[change(Some(json!("A")), Some(json!("Alpha")))]).into_string();
    assert!(update.contains("Old value") && update.contains("New value"));
    assert!(update.contains("<td class=\"old\"><del><span class=\"value\">A</span></del></td>"));
    assert!(
        update.contains("<td class=\"new\"><ins><span class=\"value\">Alpha</span></ins></td>")
    );
    let create = changes_table(&[change(None, Some(json!("Alpha")))]).into_string();
    assert!(!create.contains("Old value") && !create.contains("class=\"old\""));
    assert!(create.contains("class=\"new\""));
    let delete = changes_table(&[change(Some(json!("A")), None)]).into_string();
    assert!(!delete.contains("New value") && !delete.contains("class=\"new\""));
    assert!(delete.contains("class=\"old\""));
    let redacted = changes_table(&[Change {
        field: "password".into(),
        old: Some(json!("[REDACTED]")),
        new: Some(json!("[REDACTED]")),
    }])
    .into_string();
    assert_eq!(redacted.matches("[REDACTED]").count(), 2);
}

#[test]
fn details_show_context_masked_key_bulk_ids_metadata_and_long_values() {
    let mut e = described("bulk_delete", T0, "cleanup");
    e.context = Context {
        ip: Some("203.0.113.7".into()),
        user_agent: Some("Mozilla/5.0".into()),
        correlation_id: Some("req-9".into()),
        api_key_id: Some("key_019a2b3c4d5e6f7081920a1b2c3d4e5f".into()),
        impersonator: Some(Impersonator {
            id: Some("u9".into()),
            email: Some("support@example.com".into()),
        }),
        reason: Some("ticket 12".into()),
        ..Context::default()
    };
    e.entity_ids = (0..60).map(|i| format!("id-{i}")).collect();
    e.metadata = BTreeMap::from([("site".to_string(), json!("Berlin"))]);
    let long = "y".repeat(200);
    e.changes = vec![Change {
        field: "notes".into(),
        old: Some(json!(long)),
        new: None,
    }];
    let entry = stored(e, 1);
    let row = TableRow {
        entry: &entry,
        folded: vec![],
    };
    let html = entry_rows(BASE, &row, None, NOW).into_string();
    for needle in [
        "Mozilla/5.0",
        "key_019a••••",
        "support@example.com",
        "(u9)",
        "ticket 12",
        ">req-9<",
        "Entity IDs (60)",
        "id-49",
        "Show 10 more",
        "id-59",
        ">site<",
        ">Berlin<",
        "<details class=\"long-value\">",
        "<details class=\"entry-details\">",
        "<span class=\"description\">cleanup</span>",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    assert!(!html.contains("2b3c4d"), "the key id is masked");
    assert!(!html.contains("correlated-count"));
}
