//! The audit log page, end to end: a real server and a real headless Chromium
//! (`harness.rs`) over a trail recorded through `POST /v1/events`. Filtering with every
//! control of the filter bar, Back and Forward, expanding rows, paging, exporting the current
//! view, the System badge, escaping, and the permission page; screenshots as artifacts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::{Browser, Console, has, with_browser};
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_core::ActorType;
use stele_core::time::{Millis, format_rfc3339, now_millis};
use stele_service::access::roles::Role;
use stele_store::Member;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;
const SCRIPT: &str = "<script>alert(1)</script>";
const BOLD: &str = "<b>bold</b>";
/// The member who reads the trail in the browser.
const READER: &str = "rita@example.com";

/// The recorded trail: each seeded entry's id by a name, and the UTC day the
/// `printer 42 renamed` request happened on (for the From/To filter).
struct Trail {
    ids: HashMap<&'static str, String>,
    rename_day: String,
}

impl Trail {
    fn ids(&self, names: &[&str]) -> Vec<String> {
        names.iter().map(|n| self.ids[n].clone()).collect()
    }
}

fn ada() -> Value {
    json!({"type": "user", "id": "u_ada", "name": "Ada Lovelace", "email": "ada@example.com"})
}

fn bob() -> Value {
    json!({"type": "user", "id": "u_bob", "name": "Bob Byte", "email": "bob@example.com"})
}

fn sync_service() -> Value {
    json!({"type": "api", "id": "svc_sync", "name": "Sync service"})
}

/// A printing company's trail over the last five days, recorded through the API.
async fn seed(console: &Console) -> Trail {
    let now = now_millis();
    let today = now - now.rem_euclid(DAY);
    let at = |ms: Millis| format_rfc3339(ms);
    let renamed = today - 2 * DAY + 10 * HOUR;
    let browser_context = json!({
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Seed/1.0",
        "correlation_id": "req-7",
        "source": "web",
    });
    let mut named: Vec<(&'static str, Value)> = vec![
        (
            "create42",
            json!({
                "occurred_at": at(today - 3 * DAY + 9 * HOUR), "action": "create",
                "detailed_action": "printer.create", "channel": "hardware",
                "description": "Added printer Alpha", "actor": ada(),
                "entity": {"type": "Printer", "id": "42", "name": "Alpha"},
                "context": {"ip": "203.0.113.7", "source": "web"},
                "changes": [{"field": "name", "new": "Alpha"}, {"field": "location", "new": "Berlin"}],
            }),
        ),
        (
            "rename42",
            json!({
                "occurred_at": at(renamed), "action": "update",
                "detailed_action": "printer.rename", "channel": "hardware",
                "description": "Renamed printer Alpha to Alpha Prime", "actor": ada(),
                "entity": {"type": "Printer", "id": "42", "name": "Alpha Prime"},
                "context": browser_context,
                "changes": [{"field": "name", "old": "Alpha", "new": "Alpha Prime"}],
                "metadata": {"site": "Berlin", "floor": 3},
            }),
        ),
        (
            "configure42",
            json!({
                "occurred_at": at(renamed + 1000), "action": "update",
                "detailed_action": "printer.configure", "channel": "integration",
                "description": "Configured printer Alpha Prime", "actor": sync_service(),
                "entity": {"type": "Printer", "id": "42", "name": "Alpha Prime"},
                "context": {"correlation_id": "req-7", "source": "api"},
                "changes": [{"field": "toner_alert", "old": 10, "new": 20}],
            }),
        ),
        (
            "job9001",
            json!({
                "occurred_at": at(renamed + 2000), "action": "create",
                "detailed_action": "printJob.create", "channel": "integration",
                "description": "Queued a test page", "actor": sync_service(),
                "entity": {"type": "PrintJob", "id": "9001"},
                "context": {"correlation_id": "req-7", "source": "api"},
                "changes": [{"field": "pages", "new": 1}],
            }),
        ),
        (
            "delete7",
            json!({
                "occurred_at": at(today - DAY + 9 * HOUR), "action": "delete",
                "detailed_action": "printer.delete", "channel": "hardware",
                "description": "Removed printer Beta", "actor": bob(),
                "entity": {"type": "Printer", "id": "7", "name": "Beta"},
                "context": {"ip": "198.51.100.20", "source": "web"},
                "changes": [{"field": "name", "old": "Beta"}, {"field": "location", "old": "Hamburg"}],
            }),
        ),
        (
            "purge",
            json!({
                "occurred_at": at(today - DAY + 9 * HOUR + MINUTE), "action": "bulk_delete",
                "detailed_action": "printJob.purge", "channel": "default",
                "description": "Purged stale print jobs", "actor": bob(),
                "entity": {"type": "PrintJob"}, "entity_ids": ["job-1", "job-2", "job-3"],
                "context": {"ip": "198.51.100.20", "reason": "cleanup", "source": "web"},
            }),
        ),
        (
            "offline",
            json!({
                "occurred_at": at(today - DAY + 15 * HOUR), "action": "update",
                "detailed_action": "printer.status", "channel": "hardware",
                "description": "Printer Alpha Prime went offline",
                "actor": {"type": "system", "name": "health-check"},
                "entity": {"type": "Printer", "id": "42", "name": "Alpha Prime"},
                "changes": [{"field": "status", "old": "online", "new": "offline"}],
            }),
        ),
        (
            "eve",
            json!({
                "occurred_at": at(now - 2 * HOUR), "action": "login_failed",
                "detailed_action": "app.login_failed", "channel": "auth", "outcome": "failure",
                "description": "Wrong password", "actor": {"type": "user", "email": "eve@example.com"},
                "context": {"ip": "198.51.100.9", "source": "web"},
            }),
        ),
        (
            "evil",
            json!({
                "occurred_at": at(now - HOUR), "action": "update",
                "detailed_action": "note.edit", "channel": "default",
                "description": format!("{SCRIPT} and {BOLD}"),
                "actor": {"type": "user", "id": "u_mal", "name": format!("{SCRIPT}{BOLD}"),
                          "email": "mallory@example.com"},
                "entity": {"type": "Note", "id": "n1", "name": BOLD},
                "changes": [{"field": "title", "old": BOLD, "new": SCRIPT}],
                "metadata": {"note": SCRIPT},
            }),
        ),
    ];
    let views: Vec<(&'static str, Value)> = (0..20)
        .map(|i| {
            let name: &'static str = Box::leak(format!("view{i}").into_boxed_str());
            let event = json!({
                "occurred_at": at(today - 4 * DAY + 8 * HOUR + i * MINUTE), "action": "view",
                "detailed_action": "document.view", "channel": "pii-read",
                "description": format!("Viewed invoice {i}"),
                "actor": {"type": "user", "id": "u_carol", "name": "Carol", "email": "carol@example.com"},
                "entity": {"type": "Invoice", "id": format!("inv-{i}")},
            });
            (name, event)
        })
        .collect();
    named.extend(views);
    let events: Vec<Value> = named.iter().map(|(_, e)| e.clone()).collect();
    let ids = console.record(&events).await;
    Trail {
        ids: named.iter().map(|(n, _)| *n).zip(ids).collect(),
        rename_day: at(renamed)[..10].to_string(),
    }
}

/// A server with the trail and a member who may read and export it.
async fn setup() -> (Console, Trail, Member) {
    let console = Console::start().await;
    let trail = seed(&console).await;
    let reader = console
        .add_member(READER, Some("Rita Reader"), Role::Auditor)
        .await;
    (console, trail, reader)
}

// --- reading the page ----------------------------------------------------------------------------

/// Waits until the browser shows a loaded audit log page whose URL passes `ok`; returns the URL's
/// query parameters.
async fn settle(
    browser: &Browser,
    what: &str,
    ok: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    browser
        .settle(what, "p.entry-count", |_, params| ok(params))
        .await
}

/// The non-empty parameters of a query (a form sends its empty fields too).
fn given(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect()
}

/// The ids of the entries the table shows, top to bottom: each row's own, after the newer entries
/// of its request it stands for (`data-entries`, newest first). The seeded request's entries are
/// seconds apart with nothing between them, so this is the API's order.
async fn row_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .driver
        .execute(
            "return Array.from(document.querySelectorAll('table.log-table tbody.entry'))\
             .flatMap(b => b.dataset.entries.split(' '));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(ids).unwrap()
}

/// The ids of the rows themselves (each row's own entry), top to bottom.
async fn row_heads(browser: &Browser) -> Vec<String> {
    let ids = browser
        .driver
        .execute(
            "return Array.from(document.querySelectorAll('table.log-table tbody.entry'))\
             .map(b => b.id.replace(/^entry-/, ''));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(ids).unwrap()
}

/// The number in the toolbar's active-filter badge, 0 without one.
async fn active_badge(browser: &Browser) -> usize {
    let text = browser
        .driver
        .execute(
            "var b = document.querySelector('nav.toolbar .count-badge'); return b ? b.textContent : '0';",
            vec![],
        )
        .await
        .unwrap();
    text.as_str().unwrap().trim().parse().unwrap()
}

/// The ids `GET /v1/events` lists for a query.
async fn api_ids(console: &Console, query: &str) -> Vec<String> {
    api_page(console, query).await.0
}

/// One page of `GET /v1/events`: its ids and its next cursor.
async fn api_page(console: &Console, query: &str) -> (Vec<String>, Option<String>) {
    let page = console.api(&format!("/v1/events?{query}")).await;
    let ids = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    (ids, page["next_cursor"].as_str().map(str::to_string))
}

async fn choose(browser: &Browser, css: &str, value: &str) {
    browser
        .wait_for(css)
        .await
        .select_by_value(value)
        .await
        .unwrap();
}

async fn fill(browser: &Browser, css: &str, text: &str) {
    let input = browser.wait_for(css).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn apply_filters(browser: &Browser) {
    browser
        .wait_for("form.filters button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

async fn open_log(browser: &Browser, console: &Console, query: &str) {
    browser
        .driver
        .goto(&console.at(&format!("/console?{query}")))
        .await
        .unwrap();
    settle(browser, query, |_| true).await;
}

// --- the tests -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_of_the_filter_bar_filters_the_rows_and_lives_in_the_url() {
    let (app, trail, _) = setup().await;
    let (console, trail) = (&app, &trail);
    with_browser(|browser| async move {
        browser.sign_in(console, READER).await;
        let b = &*browser;
        open_log(b, console, "limit=100").await;
        let everything = api_ids(console, "limit=100").await;
        assert_eq!(row_ids(b).await, everything);
        // 28 seeded entries not by System, and the reader's own sign-in.
        assert_eq!(everything.len(), 29);
        assert_eq!(active_badge(b).await, 0);

        // Action: a select, applied as soon as it changes (log.js).
        choose(b, "#f-action", "delete").await;
        let q = settle(b, "action=delete", |q| has(q, "action", "delete")).await;
        assert!(has(&q, "limit", "100"), "the page size is kept: {q:?}");
        assert_eq!(row_ids(b).await, trail.ids(&["delete7"]));
        assert_eq!(active_badge(b).await, 1);

        // Detailed action, with a prefix.
        open_log(b, console, "limit=100").await;
        fill(b, "#f-detailed-action", "printer.*").await;
        apply_filters(b).await;
        settle(b, "detailed_action", |q| {
            has(q, "detailed_action", "printer.*")
        })
        .await;
        assert_eq!(
            row_ids(b).await,
            trail.ids(&["delete7", "configure42", "rename42", "create42"]),
            "System's printer.status stays hidden"
        );
        assert_eq!(active_badge(b).await, 1);

        // Actor type: User off leaves API actors only.
        open_log(b, console, "limit=100").await;
        b.wait_for("input[name=actor_type][value=user]")
            .await
            .click()
            .await
            .unwrap();
        apply_filters(b).await;
        let q = settle(b, "actor_type without user", |q| {
            has(q, "actor_type", "api")
        })
        .await;
        assert!(
            !has(&q, "actor_type", "user") && !has(&q, "actor_type", "system"),
            "{q:?}"
        );
        assert_eq!(row_ids(b).await, trail.ids(&["job9001", "configure42"]));
        assert_eq!(active_badge(b).await, 1);

        // Actor type: System on shows System entries too (off by default).
        open_log(b, console, "limit=100").await;
        let system = b.wait_for("input[name=actor_type][value=system]").await;
        assert_eq!(
            system.prop("checked").await.unwrap().as_deref(),
            Some("false")
        );
        system.click().await.unwrap();
        apply_filters(b).await;
        let q = settle(b, "actor_type with system", |q| {
            has(q, "actor_type", "system")
        })
        .await;
        assert!(has(&q, "actor_type", "user"), "{q:?}");
        let rows = row_ids(b).await;
        assert_eq!(rows, api_ids(console, "actor_type=all&limit=100").await);
        assert!(rows.contains(&trail.ids["offline"]), "{rows:?}");
        assert!(rows.len() > everything.len());
        assert_eq!(active_badge(b).await, 1);

        // Actor.
        open_log(b, console, "limit=100").await;
        fill(b, "#f-actor", "bob@example.com").await;
        apply_filters(b).await;
        settle(b, "actor", |q| has(q, "actor", "bob@example.com")).await;
        assert_eq!(row_ids(b).await, trail.ids(&["purge", "delete7"]));

        // Entity type.
        open_log(b, console, "limit=100").await;
        choose(b, "#f-entity-type", "PrintJob").await;
        settle(b, "entity_type", |q| has(q, "entity_type", "PrintJob")).await;
        assert_eq!(row_ids(b).await, trail.ids(&["purge", "job9001"]));

        // Entity ID, which matches a bulk action's ids.
        open_log(b, console, "limit=100").await;
        fill(b, "#f-entity-id", "job-2").await;
        apply_filters(b).await;
        settle(b, "entity_id", |q| has(q, "entity_id", "job-2")).await;
        assert_eq!(row_ids(b).await, trail.ids(&["purge"]));

        // Channel.
        open_log(b, console, "limit=100").await;
        choose(b, "#f-channel", "hardware").await;
        settle(b, "channel", |q| has(q, "channel", "hardware")).await;
        assert_eq!(
            row_ids(b).await,
            trail.ids(&["delete7", "rename42", "create42"])
        );

        // Outcome.
        open_log(b, console, "limit=100").await;
        choose(b, "#f-outcome", "failure").await;
        settle(b, "outcome", |q| has(q, "outcome", "failure")).await;
        assert_eq!(row_ids(b).await, trail.ids(&["eve"]));

        // From and To: one day, both inclusive. Set as a date picker would, then applied.
        open_log(b, console, "limit=100").await;
        let day = &trail.rename_day;
        b.driver
            .execute(
                "document.getElementById('f-from').value = arguments[0];\
                 document.getElementById('f-to').value = arguments[0];",
                vec![json!(day)],
            )
            .await
            .unwrap();
        apply_filters(b).await;
        settle(b, "from and to", |q| {
            has(q, "from", day) && has(q, "to", day)
        })
        .await;
        assert_eq!(
            row_ids(b).await,
            trail.ids(&["job9001", "configure42", "rename42"])
        );
        assert_eq!(active_badge(b).await, 2);

        // The search box: case-insensitive text of the description.
        open_log(b, console, "limit=100").await;
        fill(b, "#f-q", "RENAMED").await;
        apply_filters(b).await;
        settle(b, "q", |q| has(q, "q", "RENAMED")).await;
        assert_eq!(row_ids(b).await, trail.ids(&["rename42"]));
        assert_eq!(
            b.wait_for("#f-q")
                .await
                .prop("value")
                .await
                .unwrap()
                .as_deref(),
            Some("RENAMED")
        );

        // A term in the search box sets its filter: the control shows it, greyed out, and the
        // form does not send it a second time when applied again.
        open_log(b, console, "limit=100").await;
        fill(b, "#f-q", "action:update printer").await;
        apply_filters(b).await;
        settle(b, "q with a term", |q| has(q, "q", "action:update printer")).await;
        assert_eq!(row_ids(b).await, trail.ids(&["configure42", "rename42"]));
        let action = b.wait_for("#f-action").await;
        assert_eq!(
            action.prop("value").await.unwrap().as_deref(),
            Some("update")
        );
        assert_eq!(
            action.prop("disabled").await.unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(active_badge(b).await, 2);
        b.screenshot("search-terms").await;
        // Marks this document, so the wait below is for the next one.
        b.driver
            .execute("window.steleBefore = true;", vec![])
            .await
            .unwrap();
        apply_filters(b).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while b
            .driver
            .execute("return window.steleBefore === true;", vec![])
            .await
            .map_or(true, |v| v == Value::Bool(true))
        {
            assert!(
                Instant::now() < deadline,
                "the form was not submitted again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let again = settle(b, "applied again", |q| has(q, "q", "action:update printer")).await;
        assert!(!has(&again, "action", "update"), "{again:?}");
        assert_eq!(row_ids(b).await, trail.ids(&["configure42", "rename42"]));

        // Filters combine, the badge counts them, Clear all resets, Back and Forward restore.
        open_log(b, console, "limit=100").await;
        choose(b, "#f-action", "update").await;
        let view_b = settle(b, "action=update", |q| has(q, "action", "update")).await;
        let rows_b = row_ids(b).await;
        assert_eq!(rows_b, trail.ids(&["evil", "configure42", "rename42"]));
        fill(b, "#f-q", "printer").await;
        apply_filters(b).await;
        let view_c = settle(b, "action and q", |q| has(q, "q", "printer")).await;
        assert!(has(&view_c, "action", "update"), "{view_c:?}");
        let rows_c = row_ids(b).await;
        assert_eq!(rows_c, trail.ids(&["configure42", "rename42"]));
        assert_eq!(active_badge(b).await, 2);
        let status = b.text_of("nav.toolbar .filter-status").await;
        assert_eq!(status, "2 filters active");

        b.wait_for("a.clear-all").await.click().await.unwrap();
        let cleared = settle(b, "cleared", |q| !has(q, "action", "update")).await;
        assert_eq!(
            given(&cleared),
            vec![("limit".to_string(), "100".to_string())]
        );
        assert_eq!(row_ids(b).await, everything);
        assert_eq!(active_badge(b).await, 0);
        assert!(b.driver.find(Locator::Css("a.clear-all")).await.is_err());

        b.driver.back().await.unwrap();
        let q = settle(b, "back to C", |q| has(q, "q", "printer")).await;
        assert_eq!(given(&q), given(&view_c));
        assert_eq!(row_ids(b).await, rows_c);
        b.driver.back().await.unwrap();
        let q = settle(b, "back to B", |q| !has(q, "q", "printer")).await;
        assert_eq!(given(&q), given(&view_b));
        assert_eq!(row_ids(b).await, rows_b);
        assert_eq!(
            b.wait_for("#f-action")
                .await
                .prop("value")
                .await
                .unwrap()
                .as_deref(),
            Some("update")
        );
        b.driver.forward().await.unwrap();
        let q = settle(b, "forward to C", |q| has(q, "q", "printer")).await;
        assert_eq!(given(&q), given(&view_c));
        assert_eq!(row_ids(b).await, rows_c);
        b.driver.forward().await.unwrap();
        settle(b, "forward to cleared", |q| !has(q, "action", "update")).await;
        assert_eq!(row_ids(b).await, everything);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expanded_row_shows_changes_context_bulk_ids_metadata_and_correlated_entries() {
    let (app, trail, _) = setup().await;
    let (console, trail) = (&app, &trail);
    with_browser(|browser| async move {
        browser.sign_in(console, READER).await;
        let b = &*browser;
        open_log(b, console, "limit=100").await;
        let rename = format!("#entry-{}", trail.ids["rename42"]);

        // The request's three entries are one row, led by its first (the rename), counting them.
        let heads = row_heads(b).await;
        assert!(heads.contains(&trail.ids["rename42"]), "{heads:?}");
        for folded in ["configure42", "job9001"] {
            assert!(!heads.contains(&trail.ids[folded]), "{folded} folded");
        }
        assert_eq!(
            b.text_of(&format!("{rename} span.correlated-count")).await,
            "(3)"
        );
        let details = format!("{rename} details.entry-details");
        assert_eq!(b.wait_for(&details).await.attr("open").await.unwrap(), None);
        b.wait_for(&format!("{details} > summary"))
            .await
            .click()
            .await
            .unwrap();
        b.wait_for(&format!("{details}[open]")).await;

        let old = b
            .wait_for(&format!("{details} section.changes td.old del"))
            .await;
        let new = b
            .wait_for(&format!("{details} section.changes td.new ins"))
            .await;
        assert_eq!(old.text().await.unwrap(), "Alpha");
        assert_eq!(new.text().await.unwrap(), "Alpha Prime");
        let colour = |css: String| async move {
            let rgb = b
                .driver
                .execute(
                    "var c = getComputedStyle(document.querySelector(arguments[0])).color;\
                     return c.match(/\\d+/g).slice(0, 3).map(Number);",
                    vec![json!(css)],
                )
                .await
                .unwrap();
            serde_json::from_value::<[u32; 3]>(rgb).unwrap()
        };
        let [r, g, _] = colour(format!("{details} section.changes td.old")).await;
        assert!(r > 2 * g, "old values are red: {r},{g}");
        let [r, g, _] = colour(format!("{details} section.changes td.new")).await;
        assert!(g > 2 * r, "new values are green: {r},{g}");

        let context = b.text_of(&format!("{details} section.context")).await;
        for needle in [
            "203.0.113.7",
            "Mozilla/5.0 (X11; Linux x86_64) Seed/1.0",
            "req-7",
            "web",
        ] {
            assert!(context.contains(needle), "{needle} in {context}");
        }
        let metadata = b.text_of(&format!("{details} section.metadata")).await;
        assert!(
            metadata.contains("site") && metadata.contains("Berlin"),
            "{metadata}"
        );
        assert!(
            metadata.contains("floor") && metadata.contains('3'),
            "{metadata}"
        );

        let correlated = b.text_of(&format!("{details} section.correlated")).await;
        // (Headings are upper-cased by the stylesheet.)
        assert!(
            correlated
                .to_lowercase()
                .starts_with("correlated entries (2)"),
            "{correlated}"
        );
        let items = b
            .driver
            .find_all(Locator::Css(&format!("{details} section.correlated li")))
            .await
            .unwrap();
        assert_eq!(items.len(), 2);
        let first = items[0].text().await.unwrap();
        assert!(
            first.contains("printJob.create") && first.contains("pages"),
            "{first}"
        );
        let second = items[1].text().await.unwrap();
        assert!(
            second.contains("printer.configure") && second.contains("toner_alert"),
            "{second}"
        );
        for css in ["td.old", "td.new"] {
            let found = items[1].find(Locator::Css(css)).await.unwrap();
            assert!(!found.text().await.unwrap().is_empty());
        }

        b.driver
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'start'});",
                vec![json!(rename)],
            )
            .await
            .unwrap();
        let shot = b.screenshot("expanded-row").await;
        assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "{shot:?}");

        // A click anywhere on a row expands it too (log.js): the bulk ids of a bulk action.
        let purge = format!("#entry-{}", trail.ids["purge"]);
        b.wait_for(&format!("{purge} tr.log-row td.detailed-action"))
            .await
            .click()
            .await
            .unwrap();
        let bulk = b
            .text_of(&format!(
                "{purge} details.entry-details[open] section.bulk-ids"
            ))
            .await;
        assert!(bulk.to_lowercase().starts_with("entity ids (3)"), "{bulk}");
        for id in ["job-1", "job-2", "job-3"] {
            assert!(bulk.contains(id), "{id} in {bulk}");
        }
        let context = b.text_of(&format!("{purge} section.context")).await;
        assert!(context.contains("cleanup"), "the reason: {context}");

        // A delete shows only old values, a create only new ones.
        for (name, shown, hidden, value) in [
            ("delete7", "td.old", "td.new", "Hamburg"),
            ("create42", "td.new", "td.old", "Berlin"),
        ] {
            let row = format!("#entry-{}", trail.ids[name]);
            b.wait_for(&format!("{row} details.entry-details > summary"))
                .await
                .click()
                .await
                .unwrap();
            let changes = format!("{row} details.entry-details[open] section.changes");
            let text = b.text_of(&changes).await;
            assert!(text.contains(value), "{name}: {text}");
            let cells = b
                .driver
                .find_all(Locator::Css(&format!("{changes} {shown}")))
                .await
                .unwrap();
            assert_eq!(cells.len(), 2, "{name}");
            let none = b
                .driver
                .find_all(Locator::Css(&format!("{changes} {hidden}")))
                .await
                .unwrap();
            assert!(none.is_empty(), "{name} has no {hidden}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_rows_per_page_walk_older_and_newer_as_the_api_pages() {
    let (app, _trail, _) = setup().await;
    let console = &app;
    with_browser(|browser| async move {
        browser.sign_in(console, READER).await;
        let b = &*browser;
        open_log(b, console, "actor_type=all").await;
        assert_eq!(row_ids(b).await.len(), 25, "25 entries by default");
        b.wait_for("strong.rows-current").await;
        b.driver
            .find(Locator::XPath(
                "//a[contains(@class,'rows-choice') and normalize-space()='10']",
            ))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        settle(b, "limit=10", |q| has(q, "limit", "10")).await;
        assert_eq!(b.text_of("strong.rows-current").await, "10");

        // The API's pages for the same filters and limit.
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                None => "actor_type=all&limit=10".to_string(),
                Some(c) => format!("actor_type=all&limit=10&cursor={c}"),
            };
            let (ids, next) = api_page(console, &query).await;
            pages.push(ids);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert!(pages.len() >= 3, "{} pages", pages.len());
        assert!(
            b.driver
                .find(Locator::Css("span.page-newer.disabled"))
                .await
                .is_ok()
        );

        for (i, page) in pages.iter().enumerate() {
            if i > 0 {
                b.wait_for("a.page-older").await.click().await.unwrap();
                settle(b, &format!("older page {i}"), |q| {
                    has(q, "limit", "10") && q.iter().any(|(k, _)| k == "cursor")
                })
                .await;
                // A click that did not navigate would show the previous page's rows.
                let deadline = Instant::now() + Duration::from_secs(30);
                while row_ids(b).await == pages[i - 1] && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            assert_eq!(&row_ids(b).await, page, "page {i} going older");
        }
        assert!(
            b.driver
                .find(Locator::Css("span.page-older.disabled"))
                .await
                .is_ok()
        );

        for i in (0..pages.len() - 1).rev() {
            b.wait_for("a.page-newer").await.click().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while row_ids(b).await == pages[i + 1] && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let q = settle(b, &format!("newer page {i}"), |q| has(q, "limit", "10")).await;
            assert!(has(&q, "actor_type", "all"), "{q:?}");
            assert_eq!(&row_ids(b).await, &pages[i], "page {i} going newer");
        }
        assert!(
            b.driver
                .find(Locator::Css("span.page-newer.disabled"))
                .await
                .is_ok()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_csv_downloads_exactly_the_current_view_and_is_recorded() {
    let (app, trail, reader) = setup().await;
    let (console, trail) = (&app, &trail);
    let rows = with_browser_returning(|browser| async move {
        browser.sign_in(console, READER).await;
        let b = &*browser;
        open_log(b, console, "").await;
        choose(b, "#f-action", "update").await;
        settle(b, "action=update", |q| has(q, "action", "update")).await;
        let rows = row_ids(b).await;
        assert_eq!(rows, trail.ids(&["evil", "configure42", "rename42"]));

        let link = b
            .driver
            .find(Locator::XPath(
                "//a[contains(@class,'export') and normalize-space()='Export CSV']",
            ))
            .await
            .unwrap();
        let href = link.attr("href").await.unwrap().unwrap();
        assert!(href.starts_with("/console/export?"), "{href}");
        let params = harness_params(&href);
        assert!(
            has(&params, "format", "csv") && has(&params, "action", "update"),
            "{href}"
        );
        assert!(
            !params.iter().any(|(k, _)| k == "limit" || k == "cursor"),
            "{href}"
        );

        let session = b.driver.get_named_cookie("stele_session").await.unwrap();
        let cookie = format!("stele_session={}", session.value());
        let response = console.get(&href, &cookie).await;
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(kind.starts_with("text/csv"), "{kind}");
        let body = response.bytes().await.unwrap();
        assert!(body.starts_with(b"\xEF\xBB\xBF"), "a byte-order mark first");
        let mut file = csv::Reader::from_reader(&body[3..]);
        assert_eq!(&file.headers().unwrap()[0], "id");
        let exported: Vec<String> = file.records().map(|r| r.unwrap()[0].to_string()).collect();
        assert_eq!(exported, rows, "the file holds the view's entries");
        rows
    })
    .await;

    let exports = console.entries("action=export").await;
    assert_eq!(exports.len(), 1, "{exports:?}");
    let entry = &exports[0].event;
    assert_eq!(entry.actor.kind, ActorType::User);
    assert_eq!(entry.actor.id.as_deref(), Some(reader.id.as_str()));
    assert_eq!(entry.actor.email.as_deref(), Some(READER));
    assert_eq!(entry.metadata["entries"], json!(rows.len()));
    assert_eq!(entry.metadata["format"], json!("csv"));
    assert!(
        entry.metadata["filters"]
            .as_str()
            .unwrap()
            .contains("\"action\":\"update\"")
    );
}

/// Runs a body and hands back what it returns (with_browser returns nothing).
async fn with_browser_returning<T, F, Fut>(body: F) -> T
where
    F: FnOnce(std::sync::Arc<Browser>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut out = None;
    let slot = &mut out;
    with_browser(|browser| async move {
        *slot = Some(body(browser).await);
    })
    .await;
    out.unwrap()
}

fn harness_params(href: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x{href}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_actor_has_a_badge_and_a_script_bearing_entry_is_only_text() {
    let (app, trail, _) = setup().await;
    let (console, trail) = (&app, &trail);
    with_browser(|browser| async move {
        browser.sign_in(console, READER).await;
        let b = &*browser;
        open_log(b, console, "").await;
        let shot = b.screenshot("audit-log").await;
        assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "{shot:?}");

        // Hidden by default; shown with a System badge once System actors are included.
        let offline = format!("#entry-{}", trail.ids["offline"]);
        assert!(b.driver.find(Locator::Css(&offline)).await.is_err());
        assert!(
            b.driver
                .find(Locator::Css("td.actor .badge-system"))
                .await
                .is_err()
        );
        open_log(b, console, "actor_type=all").await;
        assert_eq!(
            b.text_of(&format!("{offline} td.actor .badge-system"))
                .await,
            "System"
        );
        let actor = b.text_of(&format!("{offline} td.actor")).await;
        assert!(actor.contains("health-check"), "{actor}");

        // The script-bearing entry: its description, actor name and changes are text.
        let evil = format!("#entry-{}", trail.ids["evil"]);
        b.wait_for(&format!("{evil} details.entry-details > summary"))
            .await
            .click()
            .await
            .unwrap();
        b.wait_for(&format!("{evil} details.entry-details[open]"))
            .await;
        let row = b.text_of(&format!("{evil} tr.log-row")).await;
        assert!(
            row.contains(&format!("{SCRIPT}{BOLD}")),
            "the actor's name: {row}"
        );
        assert!(row.contains(BOLD), "the entity's name: {row}");
        let summary = b
            .text_of(&format!("{evil} details.entry-details > summary"))
            .await;
        assert_eq!(summary, format!("{SCRIPT} and {BOLD}"));
        let changes = b.text_of(&format!("{evil} section.changes")).await;
        assert!(
            changes.contains(SCRIPT) && changes.contains(BOLD),
            "{changes}"
        );
        let metadata = b.text_of(&format!("{evil} section.metadata")).await;
        assert!(metadata.contains(SCRIPT), "{metadata}");

        let page_text = b.text_of("main").await;
        assert!(
            page_text.contains(SCRIPT),
            "the page shows the script as text"
        );
        let counts = b
            .driver
            .execute(
                "var all = document.querySelectorAll('script');\
                 var own = document.querySelectorAll('head script[src^=\"/console/assets/\"]');\
                 return [all.length, own.length, document.querySelectorAll('main b').length];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            counts,
            json!([1, 1, 0]),
            "only the console's own script; no <b> from events"
        );
        assert!(b.driver.get_alert_text().await.is_err(), "no alert opened");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_gets_the_permission_page_for_the_log_and_the_export() {
    let (app, _trail, _) = setup().await;
    let console = &app;
    console
        .add_member("mo@example.com", Some("Mo"), Role::Member)
        .await;
    let session = console.session_cookie("mo@example.com").await;
    for path in [
        "/console",
        "/console/log",
        "/console/export?format=csv&action=update",
    ] {
        let response = console.get(path, &session).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("Renamed printer"), "{path} shows no entry");
    }

    with_browser(|browser| async move {
        browser.sign_in(console, "mo@example.com").await;
        let b = &*browser;
        assert_eq!(
            b.text_of("section.denied h1").await,
            "You don't have permission to view the audit log"
        );
        assert!(
            b.driver
                .find(Locator::Css("table.log-table"))
                .await
                .is_err()
        );
        b.open(&console.at("/console/export?format=csv"), "section.denied")
            .await;
        assert_eq!(
            b.text_of("section.denied h1").await,
            "You don't have permission to export the audit log"
        );
        let explained = b.text_of("section.denied").await;
        assert!(explained.contains("audit.log.export"), "{explained}");
    })
    .await;
    assert!(console.entries("action=export").await.is_empty());
}
