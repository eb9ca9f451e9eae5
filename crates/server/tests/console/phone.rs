//! The console on a phone: Chrome's mobile emulation at 375 CSS pixels wide (`harness.rs`,
//! [`Screen::Phone`]), over a trail with long descriptions, long ids, many changes and bulk ids.
//! Every page a member reads (the audit log with its filter bar, chart and pager, an expanded
//! entry, a record's history, an entry's own page, the print log, the settings pages, the
//! sign-in page, the print log's Edit dialog and Clear log confirmation) and the embedded viewer's
//! log must not scroll sideways, nor put anything off the screen's edges: what is wider than the
//! screen scrolls inside its own box, and the old and new values of a change stay readable.
//! Screenshots of each as artifacts (`phone-*.png`).

use crate::harness::{Browser, Console, PASSWORD, PHONE_WIDTH, Screen, with_screen};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_core::time::{Millis, format_rfc3339, now_millis};
use stele_service::access::api_keys;
use stele_service::access::roles::Role;
use stele_store::Scope;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
/// The member who reads everything: an owner, so the header has every link.
const OWNER: &str = "maximiliane.featherstonehaugh@example-printing.co.uk";
const OWNER_NAME: &str = "Maximiliane Featherstonehaugh-Wolfeschlegel";
/// A record id as some systems make them: long, and without a place to break.
const ORDER: &str = "ord_01HZX3K9QW8E7R6T5Y4U3I2O1P0ASDFGHJKLZXCVBNM_eu-central-1";
const CORRELATION: &str = "corr_7f3e9a1c-2b4d-4e6f-8a0b-1c2d3e4f5a6b";

fn customer() -> Value {
    json!({"type": "user", "id": "usr_0196f3c2-7b1e-7c4a-9d2f-5e8a1b3c4d5e",
           "name": "Bartholomew Quincy-Worthington",
           "email": "bartholomew.quincy-worthington@customer-portal.example-printing.co.uk"})
}

/// The entry the tests expand: a dozen changes, some of them long or JSON, a long description and
/// context, metadata with hashes.
fn big_update(at: Millis) -> Value {
    json!({
        "occurred_at": format_rfc3339(at), "action": "update",
        "detailed_action": "subscription.billingAddress.updateFromCheckoutWebhook",
        "channel": "billing-compliance-eu",
        "description": "Updated the billing address, VAT number and invoice delivery of the order \
            after the checkout webhook https://shop.example-printing.co.uk/api/webhooks/checkout/\
            completed?session=cs_live_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789 arrived",
        "actor": customer(),
        "entity": {"type": "SubscriptionOrder", "id": ORDER,
                   "name": "Annual plan for Featherstonehaugh Printing GmbH & Co. KG"},
        "context": {
            "ip": "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "correlation_id": CORRELATION,
            "request_id": "req_01HZX3K9QW8E7R6T5Y4U3I2O1P0ASDFGHJKL",
            "reason": "Customer-initiated change through the self-service checkout (ticket SUP-48213)",
            "source": "webhook",
        },
        "changes": [
            {"field": "billing_address.street", "old": "Friedrichstraße 123, Hinterhaus, 3. OG",
             "new": "Kurfürstendamm 234, Aufgang B, 5. Obergeschoss links"},
            {"field": "billing_address.postal_code", "old": "10117", "new": "10719"},
            {"field": "billing_address.city", "old": "Berlin-Mitte", "new": "Berlin-Charlottenburg"},
            {"field": "vat_number", "old": "DE123456789", "new": "DE987654321"},
            {"field": "invoice_delivery.email",
             "old": "accounts-payable@featherstonehaugh-printing.example",
             "new": "rechnungseingang.buchhaltung@featherstonehaugh-printing-gmbh.example"},
            {"field": "invoice_delivery.channels",
             "old": {"channels": ["email"], "format": "pdf"},
             "new": {"channels": ["email", "sms", "webhook"], "format": "zugferd",
                     "webhook_url": "https://hooks.featherstonehaugh-printing.example/invoices/incoming"}},
            {"field": "payment_method_fingerprint", "old": "pm_fp_3a1f9c0e7b2d4a6c8e0f1a3b5c7d9e1f",
             "new": "pm_fp_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"},
            {"field": "purchase_order_reference", "old": null, "new": "PO-2026-000481-FEATHERSTONEHAUGH"},
            {"field": "seats", "old": 25, "new": 40},
            {"field": "auto_renew", "old": false, "new": true},
            {"field": "notes", "old": "", "new": "Customer asked for quarterly invoices from Q3 on; \
                see ticket SUP-48213 for the thread with their accounts payable team."},
            {"field": "tax_exempt", "old": true, "new": false},
        ],
        "metadata": {
            "checkout_session_id": "cs_live_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789",
            "webhook_delivery_id": "whd_01HZX3K9QW8E7R6T5Y4U3I2O1P",
            "raw_payload_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        },
    })
}

/// The trail: the big update, an entry correlated with it, a bulk update of 60 long ids, and a
/// month of routine entries for the chart and the pager.
async fn seed(console: &Console) {
    let now = now_millis();
    let mut events = Vec::new();
    for i in 0..40 {
        events.push(json!({
            "occurred_at": format_rfc3339(now - (i % 28) * DAY - 3 * HOUR), "action": "view",
            "detailed_action": "invoice.view", "channel": "pii-read",
            "description": format!("Viewed invoice INV-2026-{i:06} of Featherstonehaugh Printing"),
            "actor": customer(),
            "entity": {"type": "Invoice", "id": format!("inv_01HZX3K9QW8E7R6T5Y4U3I2O{i:04}")},
        }));
    }
    let ids: Vec<String> = (0..60).map(|i| format!("{ORDER}-{i:03}")).collect();
    events.push(json!({
        "occurred_at": format_rfc3339(now - 2 * HOUR), "action": "bulk_update",
        "detailed_action": "subscription.renewal.rescheduleForFiscalYearChange",
        "channel": "billing-compliance-eu",
        "description": "Rescheduled the renewal of every order of the fiscal-year migration batch",
        "actor": {"type": "api", "id": "key_0196f3c2-7b1e-7c4a-9d2f-5e8a1b3c4d5e",
                  "name": "Nightly billing synchronisation"},
        "entity": {"type": "SubscriptionOrder"}, "entity_ids": ids,
    }));
    events.push(json!({
        "occurred_at": format_rfc3339(now - HOUR + 1000), "action": "create",
        "detailed_action": "invoice.reissueAfterBillingAddressChange",
        "channel": "billing-compliance-eu",
        "description": "Reissued the open invoice with the new billing address",
        "actor": {"type": "api", "id": "svc_invoicing", "name": "Invoicing service"},
        "entity": {"type": "Invoice", "id": "inv_01HZX3K9QW8E7R6T5Y4U3I2O1P0ASDFGHJKLZXCVBNM"},
        "context": {"correlation_id": CORRELATION, "source": "api"},
        "changes": [{"field": "billing_address",
                     "new": "Kurfürstendamm 234, Aufgang B, 5. Obergeschoss links, 10719 Berlin"}],
    }));
    events.push(big_update(now - HOUR));
    console.record(&events).await;
}

/// Three prints; returns the id of the failed one, whose row has the most to show.
async fn record_prints(console: &Console) -> i64 {
    let mut ids = Vec::new();
    for (name, status, reason) in [
        (
            "Replacement hinge for the Featherstonehaugh reception desk (v3, reinforced)",
            "failed",
            Some("layerShift"),
        ),
        ("Cable clip", "completed", None),
        ("Spool holder", "cancelled", None),
    ] {
        let response = console
            .http
            .post(console.at("/api/v1/print-log/"))
            .header("X-API-Key", &console.admin_key)
            .json(&json!({"print_name": name, "printer_id": 1,
                          "printer_name": "Workshop Bambu Lab X1 Carbon Combo",
                          "created_by_username": OWNER, "status": status, "failure_reason": reason,
                          "duration_seconds": 13_500, "filament_type": "PETG-CF",
                          "filament_color": "#FF8800", "filament_used_grams": 212.5}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let print: Value = response.json().await.unwrap();
        ids.push(print["id"].as_i64().unwrap());
    }
    ids[0]
}

/// Settings with per-channel windows and an allowlist, a second key with a long name, members
/// with long names and addresses.
async fn fill_settings(console: &Console) {
    let response = console
        .http
        .patch(console.at("/v1/settings"))
        .bearer_auth(&console.admin_key)
        .json(&json!({
            "channel_retention_days": {"billing-compliance-eu": 3650, "pii-read": 90, "auth": null},
            "ip_allowlist": ["127.0.0.0/8", "::1/128", "2001:db8:85a3::/48"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let key = api_keys::generate(
        "Nightly billing synchronisation (eu-central-1, production)",
        vec![Scope::Ingest, Scope::Read, Scope::Export, Scope::Viewer],
    );
    console
        .store
        .create_api_key(console.org.key, key.record)
        .await
        .unwrap();
    console
        .add_member(
            "bartholomew.quincy-worthington@customer-portal.example-printing.co.uk",
            Some("Bartholomew Quincy-Worthington"),
            Role::Auditor,
        )
        .await;
    console
        .add_member("kim@example.com", None, Role::Member)
        .await;
}

// --- measuring a page ----------------------------------------------------------------------------

/// What a page measures at phone width: its widths, and the outermost elements that stick out of
/// the screen without being inside a box that scrolls sideways (`overflow-x: auto` or `scroll`;
/// `hidden` would cut them off, so it does not count). Measured against the layout viewport
/// (`documentElement.clientWidth`): a phone's browser zooms out to show a page that is too wide,
/// and `window.innerWidth` grows with it (to 1422 px for the embedded log before this was fixed).
const MEASURE: &str = r#"
var w = document.documentElement.clientWidth;
function name(e) {
  var s = e.tagName.toLowerCase();
  if (e.id) s += '#' + e.id;
  var classes = typeof e.className === 'string' ? e.className.trim() : '';
  if (classes) s += '.' + classes.split(/\s+/).join('.');
  return s;
}
function scrolls(e) {
  for (var p = e.parentElement; p; p = p.parentElement) {
    var o = getComputedStyle(p).overflowX;
    if (o === 'auto' || o === 'scroll') return true;
  }
  return false;
}
function out(e) {
  var r = e.getBoundingClientRect();
  return r.width > 0 && (r.right > w + 0.5 || r.left < -0.5) && !scrolls(e);
}
var wide = [];
document.querySelectorAll('body *').forEach(function (e) {
  if (out(e) && !(e.parentElement && out(e.parentElement))) {
    var r = e.getBoundingClientRect();
    wide.push(name(e) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
});
return {inner: window.innerWidth, client: w,
        scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 10)};
"#;

/// One page's problems at phone width, if it has any: how far it scrolls sideways, and what
/// sticks out. Saves a screenshot as `phone-<page>.png` either way (a test artifact).
async fn measure(b: &Browser, page: &str) -> Option<String> {
    let m = b.driver.execute(MEASURE, vec![]).await.unwrap();
    let (inner, scroll) = (m["inner"].as_u64().unwrap(), m["scroll"].as_u64().unwrap());
    let wide = m["wide"].as_array().unwrap();
    let overflow = scroll.saturating_sub(PHONE_WIDTH as u64);
    b.screenshot(&format!("phone-{page}")).await;
    if inner == PHONE_WIDTH as u64 && overflow == 0 && wide.is_empty() {
        return None;
    }
    Some(format!(
        "{page}: {overflow} px too wide (scrollWidth {scroll}, innerWidth {inner}, clientWidth {}); \
         sticking out: {wide:?}",
        m["client"]
    ))
}

/// Opens `url`, waits for `ready`, and measures the page.
async fn visit(b: &Browser, url: &str, ready: &str, page: &str) -> Option<String> {
    b.open(url, ready).await;
    b.settle(page, ready, |_, _| true).await;
    measure(b, page).await
}

/// Opens the details of the entry `entry` (its `tbody`) with a tap, measures the page, and checks
/// that its changes are readable.
async fn expand(b: &Browser, entry: &str, page: &str) -> Vec<String> {
    b.wait_for(&format!("{entry} details.entry-details > summary"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(&format!("{entry} details.entry-details[open]"))
        .await;
    b.driver
        .execute(
            "document.querySelector(arguments[0] + ' section.changes')\
             .scrollIntoView({block: 'start'});",
            vec![json!(entry)],
        )
        .await
        .unwrap();
    let mut problems: Vec<String> = measure(b, page).await.into_iter().collect();
    problems.extend(changes_unreadable(b, &format!("{entry} section.changes"), page).await);
    problems
}

/// Whether a reader could read every old and new value under `css`, a problem if not: each must
/// be shown, at least 3em wide, not cut, and on the screen or inside a box on the screen that
/// scrolls sideways.
async fn changes_unreadable(b: &Browser, css: &str, page: &str) -> Option<String> {
    let cells = b
        .driver
        .execute(
            r#"
var w = document.documentElement.clientWidth;
var em = parseFloat(getComputedStyle(document.documentElement).fontSize);
function box(e) {
  for (var p = e.parentElement; p; p = p.parentElement) {
    var o = getComputedStyle(p).overflowX;
    if (o === 'auto' || o === 'scroll') return p;
  }
  return null;
}
return Array.from(document.querySelectorAll(arguments[0] + ' td.old, ' + arguments[0] + ' td.new'))
  .map(function (c) {
    var r = c.getBoundingClientRect();
    var within = r.left >= -0.5 && r.right <= w + 0.5;
    var b = box(c);
    var scrollable = !!b && b.getBoundingClientRect().left >= -0.5
      && b.getBoundingClientRect().right <= w + 0.5;
    return {cell: c.className + ': ' + c.textContent.trim().slice(0, 30),
            width: Math.round(r.width),
            shown: r.width > 0 && getComputedStyle(c).visibility === 'visible',
            reachable: within || scrollable, cut: c.scrollWidth > c.clientWidth + 1,
            narrow: r.width < 3 * em};
  });
"#,
            vec![json!(css)],
        )
        .await
        .unwrap();
    let cells = cells.as_array().unwrap();
    assert!(
        !cells.is_empty(),
        "{page}: no old or new values under {css}"
    );
    let unreadable: Vec<&Value> = cells
        .iter()
        .filter(|c| {
            c["shown"] != json!(true)
                || c["reachable"] != json!(true)
                || c["cut"] == json!(true)
                || c["narrow"] == json!(true)
        })
        .collect();
    unreadable.first().map(|first| {
        format!(
            "{page}: {} of {} old and new values under {css} are not readable, such as {first}",
            unreadable.len(),
            cells.len()
        )
    })
}

/// The phone emulation is in force: the layout is 375 pixels wide before any page is measured.
async fn assert_phone_width(b: &Browser) {
    let widths = b
        .driver
        .execute(
            "return [window.innerWidth, document.documentElement.clientWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        widths,
        json!([PHONE_WIDTH, PHONE_WIDTH]),
        "the browser is not phone-sized"
    );
}

fn report(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "pages that do not fit a {PHONE_WIDTH} px screen:\n{}",
        problems.join("\n")
    );
}

// --- the tests -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_fits_a_phone_and_wide_content_scrolls_in_its_own_box() {
    let console = Console::start().await;
    seed(&console).await;
    let failed_print = record_prints(&console).await;
    fill_settings(&console).await;
    console
        .add_member(OWNER, Some(OWNER_NAME), Role::Owner)
        .await;
    let big = console
        .entries("detailed_action=subscription.billingAddress.updateFromCheckoutWebhook")
        .await
        .remove(0)
        .id;
    let console = &console;
    with_screen(Screen::Phone, |browser| async move {
        let b = &*browser;
        let mut problems = Vec::new();

        b.open(&console.at("/console/login"), "#email").await;
        assert_phone_width(b).await;
        problems.extend(measure(b, "sign-in").await);
        b.submit_sign_in(OWNER, PASSWORD).await;
        b.wait_for("header.top form.signout").await;

        // The log with its filter bar (open), chart and pager, 50 rows of long values.
        problems.extend(
            visit(
                b,
                &console.at("/console?limit=50"),
                "nav.pagination",
                "audit-log",
            )
            .await,
        );
        b.driver
            .execute(
                "document.querySelector('table.log-table').scrollIntoView({block: 'start'});",
                vec![],
            )
            .await
            .unwrap();
        b.screenshot("phone-audit-log-rows").await;
        problems.extend(expand(b, &format!("#entry-{big}"), "expanded-entry").await);
        // The correlated entry's changes, shown inside the expanded one.
        problems.extend(
            changes_unreadable(
                b,
                &format!("#entry-{big} section.correlated"),
                "expanded-entry",
            )
            .await,
        );
        let bulk = console.entries("action=bulk_update").await.remove(0).id;
        problems.extend(expand_bulk(b, &format!("#entry-{bulk}")).await);

        problems.extend(
            visit(
                b,
                &console.at(&format!("/console/entities/SubscriptionOrder/{ORDER}")),
                "nav.pagination",
                "history",
            )
            .await,
        );
        problems.extend(
            visit(
                b,
                &console.at(&format!("/console/entries/{big}")),
                "section.changes",
                "entry-page",
            )
            .await,
        );
        problems.extend(changes_unreadable(b, "section.changes", "entry-page").await);
        problems.extend(
            visit(
                b,
                // With a filter, so that the toolbar has enough buttons to wrap.
                &console.at("/console/print-log?printer_id=1"),
                "nav.pagination",
                "print-log",
            )
            .await,
        );
        // The row's Edit dialog and Clear log's confirmation float over the page: on the screen.
        let edit = format!("tr.print-row[data-id=\"{failed_print}\"] details.row-edit");
        b.wait_for(&format!("{edit} > summary"))
            .await
            .click()
            .await
            .unwrap();
        b.wait_for(&format!("{edit}[open] form.edit-form")).await;
        b.driver
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
                vec![json!(format!("{edit}[open] form.edit-form"))],
            )
            .await
            .unwrap();
        problems.extend(measure(b, "print-log-edit").await);
        b.wait_for(&format!("{edit} > summary"))
            .await
            .click()
            .await
            .unwrap();
        b.wait_for("details.clear-log > summary")
            .await
            .click()
            .await
            .unwrap();
        b.wait_for("details.clear-log[open] .confirm").await;
        problems.extend(measure(b, "print-log-clear").await);
        for (path, page) in [
            ("/console/settings", "settings"),
            ("/console/settings/keys", "settings-keys"),
            ("/console/settings/members", "settings-members"),
        ] {
            problems.extend(visit(b, &console.at(path), "nav.settings-tabs", page).await);
        }
        report(problems);
    })
    .await;
}

/// Expands the bulk update and measures the page with its 60 ids.
async fn expand_bulk(b: &Browser, entry: &str) -> Option<String> {
    // Opened by script, not by a tap: where a tap lands on a page too wide for the screen is not
    // what this test is about.
    b.driver
        .execute(
            "var entry = document.querySelector(arguments[0]);\
             entry.querySelector('details.entry-details').open = true;\
             entry.scrollIntoView({block: 'start'});",
            vec![json!(entry)],
        )
        .await
        .unwrap();
    b.wait_for(&format!(
        "{entry} details.entry-details[open] section.bulk-ids"
    ))
    .await;
    measure(b, "expanded-bulk-entry").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_viewer_fits_a_phone() {
    let console = Console::start().await;
    seed(&console).await;
    let response = console
        .http
        .post(console.at("/v1/viewer-tokens"))
        .bearer_auth(&console.admin_key)
        .json(&json!({"viewer": {"id": "v1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let minted: Value = response.json().await.unwrap();
    let url = minted["url"].as_str().unwrap().to_string();
    let big = console
        .entries("detailed_action=subscription.billingAddress.updateFromCheckoutWebhook")
        .await
        .remove(0)
        .id;
    let console = &console;
    with_screen(Screen::Phone, |browser| async move {
        let b = &*browser;
        b.open(&console.at("/console/login"), "#email").await;
        assert_phone_width(b).await;
        let mut problems = Vec::new();
        problems.extend(visit(b, &url, "nav.pagination", "embedded-log").await);
        assert!(b.path().await.starts_with("/embed/s/"), "the viewer's page");
        problems.extend(expand(b, &format!("#entry-{big}"), "embedded-expanded-entry").await);
        report(problems);
    })
    .await;
}
