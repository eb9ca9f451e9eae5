//! The print log page, end to end: a real server and a real headless Chromium
//! (`harness.rs`) over prints recorded through `POST /api/v1/print-log/`. Status badges in
//! the seed's colours with the failure cause under them, durations and colour swatches, every
//! filter in the URL, rows per page and paging, the Edit dialog and Delete button honouring
//! OWN/ALL, Clear behind its confirmation, the failure analysis following a reclassification, and
//! the trail entries each change writes; screenshots as artifacts.

use crate::harness::{Browser, Console, has, hidden_field, with_browser};
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_service::access::roles::Role;

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const AUDITOR: &str = "audrey@example.com";
const OWNER: &str = "olga@example.com";
const SCRIPT_NAME: &str = "<script>alert(1)</script> part";

/// The ids of the seeded prints, by name.
struct Prints {
    benchy: i64,
    bracket: i64,
    gear: i64,
    script: i64,
    clip: i64,
    holder: i64,
}

async fn record(console: &Console, body: Value) -> i64 {
    let response = console
        .http
        .post(console.at("/api/v1/print-log/"))
        .header("X-API-Key", &console.admin_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let print: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{print}");
    print["id"].as_i64().unwrap()
}

/// 25 routine prints, then six that the tests look at (newest, so on the first page).
async fn seed(console: &Console) -> Prints {
    for i in 1..=25 {
        record(
            console,
            json!({"print_name": format!("Bulk part {i}"), "printer_id": 9, "status": "completed",
                   "created_by_username": BOB, "duration_seconds": 600}),
        )
        .await;
    }
    Prints {
        benchy: record(
            console,
            json!({"print_name": "Benchy", "printer_id": 1, "printer_name": "Workshop X1C",
                   "created_by_username": ADA, "status": "completed", "duration_seconds": 3900,
                   "filament_type": "PLA", "filament_color": "#FF8800", "filament_used_grams": 12.5}),
        )
        .await,
        bracket: record(
            console,
            json!({"print_name": "Wall bracket", "printer_id": 2, "printer_name": "P1S",
                   "created_by_username": BOB, "status": "failed", "failure_reason": "layerShift",
                   "filament_type": "PETG", "filament_color": "00AE42FF"}),
        )
        .await,
        gear: record(
            console,
            json!({"print_name": "Gear", "printer_id": 1, "created_by_username": ADA,
                   "status": "failed", "duration_seconds": 95}),
        )
        .await,
        script: record(
            console,
            json!({"print_name": SCRIPT_NAME, "printer_id": 2, "created_by_username": null,
                   "status": "stopped", "filament_color": "\" onload=\"alert(2)"}),
        )
        .await,
        clip: record(
            console,
            json!({"print_name": "Clip", "printer_id": 3, "created_by_username": BOB,
                   "status": "cancelled"}),
        )
        .await,
        holder: record(
            console,
            json!({"print_name": "Spool holder", "printer_id": 1, "created_by_username": ADA,
                   "status": "skipped"}),
        )
        .await,
    }
}

async fn setup() -> (Console, Prints) {
    let console = Console::start().await;
    let prints = seed(&console).await;
    console.add_member(ADA, Some("Ada"), Role::Member).await;
    console
        .add_member(AUDITOR, Some("Audrey"), Role::Auditor)
        .await;
    console.add_member(OWNER, Some("Olga"), Role::Owner).await;
    (console, prints)
}

/// Opens the print log page with this query (`?…`, or empty) and waits for its table.
async fn open_print_log(browser: &Browser, console: &Console, query: &str) {
    browser
        .open(
            &console.at(&format!("/console/print-log{query}")),
            "table.print-table",
        )
        .await;
}

/// Waits until the browser shows a loaded print log page whose URL passes `ok`.
async fn settle(browser: &Browser, what: &str, ok: impl Fn(&[(String, String)]) -> bool) {
    browser
        .settle(what, "nav.pagination", |path, params| {
            path == "/console/print-log" && ok(params)
        })
        .await;
}

/// The notice of a change's answer, once the browser is on it (the page before it may show the
/// notice of an earlier change).
async fn answer(browser: &Browser, notice: &str) -> String {
    settle(browser, notice, |p| has(p, "notice", notice)).await;
    browser.text_of("div.alert-done").await
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.driver.execute(script, vec![]).await.unwrap()
}

/// The ids of the rows the table shows, top to bottom.
async fn row_ids(browser: &Browser) -> Vec<i64> {
    let ids = js(
        browser,
        "return Array.from(document.querySelectorAll('tr.print-row')).map(r => Number(r.dataset.id));",
    )
    .await;
    serde_json::from_value(ids).unwrap()
}

async fn page_range(browser: &Browser) -> String {
    browser.text_of("span.page-range").await
}

async fn click(browser: &Browser, css: &str) {
    browser.wait_for(css).await.click().await.unwrap();
}

/// How many failures the failure analysis shows for a cause (`unclassified` included); a cause
/// no print carries has no bar.
async fn chart_count(browser: &Browser, cause: &str) -> u64 {
    let n = js(
        browser,
        &format!(
            "var g = document.querySelector('svg.failure-chart g.cause[data-cause=\"{cause}\"]'); \
             return g ? Number(g.dataset.count) : 0;"
        ),
    )
    .await;
    n.as_u64().unwrap()
}

/// The `printing` entries of the trail, oldest first, as the API shows them.
async fn trail(console: &Console) -> Vec<Value> {
    let page = console
        .api("/v1/events?channel=printing&actor_type=all&limit=500")
        .await;
    let mut entries = page["entries"].as_array().unwrap().clone();
    entries.reverse();
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_seeds_badges_and_filters_and_pages_in_the_url() {
    let (app, prints) = setup().await;
    let (console, prints) = (&app, &prints);
    with_browser(|browser| async move {
        let b = &*browser;
        b.sign_in(console, AUDITOR).await;
        open_print_log(b, console, "").await;
        settle(b, "the first page", |_| true).await;

        // 25 rows per page by default, newest first.
        let ids = row_ids(b).await;
        assert_eq!(ids.len(), 25);
        assert_eq!(ids[..6], [prints.holder, prints.clip, prints.script, prints.gear, prints.bracket, prints.benchy]);
        assert_eq!(page_range(b).await, "Showing 1–25 of 31");
        assert_eq!(b.text_of("dd.total-prints").await, "31");

        // Each status in the seed's colour, the failure cause under it.
        let colours = js(
            b,
            "var out = {}; document.querySelectorAll('tr.print-row .status-badge').forEach(function (e) {\
               out[e.textContent] = getComputedStyle(e).color; }); return out;",
        )
        .await;
        assert_eq!(
            colours,
            json!({
                "Completed": "rgb(21, 128, 61)",
                "Failed": "rgb(185, 28, 28)",
                "Stopped": "rgb(194, 65, 12)",
                "Cancelled": "rgb(75, 85, 99)",
                "Skipped": "rgb(126, 34, 206)",
            })
        );
        let bracket = format!("tr.print-row[data-id=\"{}\"]", prints.bracket);
        assert_eq!(b.text_of(&format!("{bracket} .failure-cause")).await, "Layer shift");
        assert_eq!(
            b.wait_for(&format!("{bracket} svg.swatch rect")).await.attr("fill").await.unwrap().as_deref(),
            Some("#00ae42ff")
        );
        let benchy = format!("tr.print-row[data-id=\"{}\"]", prints.benchy);
        assert_eq!(b.text_of(&format!("{benchy} td.duration")).await, "1h 05m");
        assert_eq!(
            b.wait_for(&format!("{benchy} svg.swatch rect")).await.attr("fill").await.unwrap().as_deref(),
            Some("#ff8800")
        );
        let filament = b.text_of(&format!("{benchy} td.filament")).await;
        assert!(filament.contains("PLA") && filament.contains("12.5 g"), "{filament}");

        // The failure analysis: a bar per cause the prints carry, and the unclassified failures.
        let bars = js(
            b,
            "return Array.from(document.querySelectorAll('svg.failure-chart g.cause'))\
             .map(g => [g.querySelector('.cause-label').textContent, Number(g.dataset.count)]);",
        )
        .await;
        assert_eq!(bars, json!([["Layer shift", 1], ["Unclassified failure", 1]]));
        assert!(b.text_of("figure.failure-analysis figcaption").await.starts_with("Failure analysis: 2 failures"));

        // A name with markup is text; a colour that is not one is text, not a swatch.
        let script = format!("tr.print-row[data-id=\"{}\"]", prints.script);
        assert_eq!(b.text_of(&format!("{script} td.print-name span.name")).await, SCRIPT_NAME);
        assert!(b.driver.find(Locator::Css(&format!("{script} svg.swatch"))).await.is_err());
        assert!(b.text_of(&format!("{script} td.filament")).await.contains("onload"));
        assert!(b.driver.get_alert_text().await.is_err(), "no alert opened");

        // An auditor reads, and may change nothing: no Edit, no Delete, no Clear log.
        for css in ["details.row-edit", "form.row-delete", "details.clear-log"] {
            assert!(b.driver.find(Locator::Css(css)).await.is_err(), "{css}");
        }
        b.screenshot("print-log").await;

        // Paging: Next, Previous, and the rows per page (10, 25, 50, 100).
        click(b, "a.page-next").await;
        settle(b, "page 2", |p| has(p, "offset", "25")).await;
        assert_eq!(page_range(b).await, "Showing 26–31 of 31");
        assert_eq!(row_ids(b).await, [6, 5, 4, 3, 2, 1]);
        click(b, "a.page-previous").await;
        settle(b, "page 1 again", |p| !p.iter().any(|(k, _)| k == "offset")).await;
        assert_eq!(row_ids(b).await.len(), 25);
        let choices = js(b, "return Array.from(document.querySelectorAll('.rows-per-page a, .rows-per-page strong')).map(e => e.textContent);").await;
        assert_eq!(choices, json!(["10", "25", "50", "100"]));
        click(b, "a.rows-choice[href*='limit=10']").await;
        settle(b, "10 rows", |p| has(p, "limit", "10")).await;
        assert_eq!(row_ids(b).await.len(), 10);
        assert_eq!(page_range(b).await, "Showing 1–10 of 31");

        // Every filter, applied from the form, kept in the URL (the page size too).
        b.wait_for("#f-search").await.send_keys("bench").await.unwrap();
        click(b, "form.filters button[type=submit]").await;
        settle(b, "search", |p| has(p, "search", "bench") && has(p, "limit", "10")).await;
        assert_eq!(row_ids(b).await, [prints.benchy]);
        b.wait_for("#f-search").await.clear().await.unwrap();
        b.wait_for("#f-user").await.send_keys(ADA).await.unwrap();
        b.wait_for("#f-printer").await.send_keys("1").await.unwrap();
        click(b, "form.filters button[type=submit]").await;
        settle(b, "user and printer", |p| has(p, "created_by_username", ADA) && has(p, "printer_id", "1")).await;
        assert_eq!(row_ids(b).await, [prints.holder, prints.gear, prints.benchy]);
        assert_eq!(b.text_of("nav.toolbar .count-badge").await, "2");
        // A dropdown applies itself.
        b.wait_for("#f-status").await.select_by_value("failed").await.unwrap();
        settle(b, "status", |p| has(p, "status", "failed")).await;
        assert_eq!(row_ids(b).await, [prints.gear]);
        assert_eq!(chart_count(b, "unclassified").await, 1);
        // Dates: today holds everything, yesterday nothing.
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
        b.driver
            .goto(&console.at(&format!("/console/print-log?date_from={today}&date_to={today}")))
            .await
            .unwrap();
        settle(b, "today", |p| has(p, "date_from", &today)).await;
        assert_eq!(page_range(b).await, "Showing 1–25 of 31");
        b.driver
            .goto(&console.at(&format!("/console/print-log?date_to={yesterday}")))
            .await
            .unwrap();
        settle(b, "yesterday", |p| has(p, "date_to", &yesterday)).await;
        assert_eq!(b.text_of("td.empty").await, "No prints match these filters.");
        // A bad filter is named, not a crash.
        b.driver.goto(&console.at("/console/print-log?status=done")).await.unwrap();
        let alert = b.text_of("div.alert-error").await;
        assert!(alert.contains("Status") && alert.contains("status"), "{alert}");
        click(b, "a.clear-filters").await;
        settle(b, "cleared filters", |p| p.is_empty()).await;
        assert_eq!(page_range(b).await, "Showing 1–25 of 31");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reclassifies_and_deletes_only_their_own_prints_and_the_trail_says_so() {
    let (app, prints) = setup().await;
    let (console, prints) = (&app, &prints);
    with_browser(|browser| async move {
        let b = &*browser;
        b.sign_in(console, ADA).await;
        open_print_log(b, console, "?status=failed").await;
        settle(b, "failed prints", |_| true).await;
        assert_eq!(row_ids(b).await, [prints.gear, prints.bracket]);
        // Ada's own row has Edit and Delete; Bob's has neither; there is no Clear log.
        let gear = format!("tr.print-row[data-id=\"{}\"]", prints.gear);
        let bracket = format!("tr.print-row[data-id=\"{}\"]", prints.bracket);
        b.wait_for(&format!("{gear} details.row-edit")).await;
        b.wait_for(&format!("{gear} form.row-delete")).await;
        for css in [
            format!("{bracket} details.row-edit"),
            format!("{bracket} form.row-delete"),
            "details.clear-log".to_string(),
        ] {
            assert!(b.driver.find(Locator::Css(&css)).await.is_err(), "{css}");
        }
        assert_eq!(chart_count(b, "unclassified").await, 1);
        assert_eq!(chart_count(b, "cloggedNozzle").await, 0);

        // The Edit dialog: set the cause, save, and the row, the chart and the URL follow.
        click(b, &format!("{gear} details.row-edit > summary")).await;
        b.wait_for(&format!(
            "{gear} form.edit-form select[name=failure_reason]"
        ))
        .await
        .select_by_value("cloggedNozzle")
        .await
        .unwrap();
        b.screenshot("print-log-edit").await;
        click(b, &format!("{gear} form.edit-form button[type=submit]")).await;
        let notice = answer(b, &format!("classified-{}", prints.gear)).await;
        assert_eq!(notice, format!("Print {} was reclassified.", prints.gear));
        settle(b, "back to the same view", |p| has(p, "status", "failed")).await;
        assert_eq!(
            b.text_of(&format!("{gear} .failure-cause")).await,
            "Clogged nozzle"
        );
        assert_eq!(chart_count(b, "cloggedNozzle").await, 1);
        assert_eq!(chart_count(b, "unclassified").await, 0);

        // Delete: the row goes, and so do its figures.
        open_print_log(b, console, "?created_by_username=ada%40example.com").await;
        assert_eq!(b.text_of("dd.total-prints").await, "3");
        click(
            b,
            &format!(
                "tr.print-row[data-id=\"{}\"] form.row-delete button",
                prints.holder
            ),
        )
        .await;
        let notice = answer(b, &format!("deleted-{}", prints.holder)).await;
        assert_eq!(
            notice,
            format!("Print {} was deleted from the print log.", prints.holder)
        );
        assert_eq!(row_ids(b).await, [prints.gear, prints.benchy]);
        assert_eq!(b.text_of("dd.total-prints").await, "2");
    })
    .await;

    // Sent by hand, a change of someone else's row is refused and changes nothing; so is a
    // clear, and a form without the session's CSRF token.
    let session = console.session_cookie(ADA).await;
    let page = console.page_text("/console/print-log", &session).await;
    let csrf = hidden_field(&page, "csrf").expect("the page's forms carry the token");
    let id = prints.bracket.to_string();
    for (path, fields) in [
        (
            format!("/console/print-log/{id}"),
            vec![
                ("csrf", csrf.as_str()),
                ("status", "completed"),
                ("failure_reason", ""),
            ],
        ),
        (
            format!("/console/print-log/{id}/delete"),
            vec![("csrf", csrf.as_str())],
        ),
        (
            "/console/print-log/clear".to_string(),
            vec![("csrf", csrf.as_str())],
        ),
        (format!("/console/print-log/{}/delete", prints.gear), vec![]),
    ] {
        let response = console.post_form(&path, &session, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let bracket = console.api("/api/v1/print-log/?search=wall").await;
    assert_eq!(bracket["items"][0]["status"], "failed");
    assert_eq!(bracket["items"][0]["failure_reason"], "layerShift");
    assert_eq!(console.api("/api/v1/print-log/").await["total"], 30);

    // The trail: records by the admin key, then Ada's reclassification and delete, nothing else.
    let entries = trail(console).await;
    assert_eq!(entries.len(), 31 + 2);
    let classify = &entries[31];
    assert_eq!(classify["detailed_action"], "printLog.classify");
    assert_eq!(classify["actor"]["type"], "user");
    assert_eq!(classify["actor"]["email"], ADA);
    assert_eq!(classify["context"]["source"], "web");
    assert_eq!(classify["entity"]["id"], prints.gear.to_string());
    assert_eq!(
        classify["changes"],
        json!([{"field": "failure_reason", "old": null, "new": "cloggedNozzle"}])
    );
    let deleted = &entries[32];
    assert_eq!(deleted["detailed_action"], "printLog.delete");
    assert_eq!(deleted["entity"]["id"], prints.holder.to_string());
    assert_eq!(deleted["actor"]["email"], ADA);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_reclassifies_anyones_print_and_clears_the_log_after_confirming() {
    let (app, prints) = setup().await;
    let (console, prints) = (&app, &prints);
    with_browser(|browser| async move {
        let b = &*browser;
        b.sign_in(console, OWNER).await;
        open_print_log(b, console, "?status=failed").await;
        settle(b, "failed prints", |_| true).await;

        // Anyone's row: Bob's bracket becomes completed, its cause cleared.
        let bracket = format!("tr.print-row[data-id=\"{}\"]", prints.bracket);
        click(b, &format!("{bracket} details.row-edit > summary")).await;
        b.wait_for(&format!("{bracket} select[name=status]"))
            .await
            .select_by_value("completed")
            .await
            .unwrap();
        b.wait_for(&format!("{bracket} select[name=failure_reason]"))
            .await
            .select_by_value("")
            .await
            .unwrap();
        click(b, &format!("{bracket} form.edit-form button[type=submit]")).await;
        answer(b, &format!("classified-{}", prints.bracket)).await;
        settle(b, "back to failed prints", |p| has(p, "status", "failed")).await;
        assert_eq!(
            row_ids(b).await,
            [prints.gear],
            "the bracket is no longer failed"
        );

        // Clear log asks first, and says what it does.
        assert!(
            !b.wait_for("button.confirm-clear")
                .await
                .is_displayed()
                .await
                .unwrap()
        );
        click(b, "details.clear-log > summary").await;
        let confirm = b.wait_for("details.clear-log .confirm").await;
        assert!(confirm.is_displayed().await.unwrap());
        let text = confirm.text().await.unwrap();
        assert!(
            text.contains("every entry") && text.contains("not only the ones these filters show"),
            "{text}"
        );
        b.screenshot("print-log-clear").await;
        click(b, "button.confirm-clear").await;
        assert_eq!(
            answer(b, "cleared-31").await,
            "The print log was cleared: 31 entries deleted."
        );
        settle(b, "after the clear", |p| has(p, "status", "failed")).await;
        assert_eq!(
            b.text_of("td.empty").await,
            "No prints match these filters."
        );
    })
    .await;

    assert_eq!(console.api("/api/v1/print-log/").await["total"], 0);
    let entries = trail(console).await;
    let clear = entries.last().unwrap();
    assert_eq!(clear["action"], "bulk_delete");
    assert_eq!(clear["detailed_action"], "printLog.clear");
    assert_eq!(clear["actor"]["email"], OWNER);
    assert_eq!(clear["entity_ids"].as_array().unwrap().len(), 31);
    assert_eq!(clear["metadata"]["deleted"], 31);
    let classify = &entries[entries.len() - 2];
    assert_eq!(classify["entity"]["id"], prints.bracket.to_string());
    assert_eq!(
        classify["changes"],
        json!([
            {"field": "status", "old": "failed", "new": "completed"},
            {"field": "failure_reason", "old": "layerShift", "new": null},
        ])
    );
}
