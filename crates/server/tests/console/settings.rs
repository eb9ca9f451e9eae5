//! The console's settings pages and the `view` record, end to end: a real server and a real
//! headless Chromium (`harness.rs`) for what a member does (change retention, turn recording off
//! and on, set the IP allowlist and the embedding origins, create and revoke a key, add a member
//! and change a role, open an entry), and plain HTTP for what a browser would not do (forms
//! without the CSRF token, URLs a role may not open, guard rails pushed past the form) and for
//! status codes.

use std::time::{Duration, Instant};

use crate::harness::{Browser, Console, PASSWORD, hidden_field, location, with_browser};
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_core::{ActorType, Entry};
use stele_service::access::api_keys;
use stele_service::access::roles::Role;
use stele_store::{Member, NewMember, Scope};

const ADA: &str = "ada@example.com";

/// The actor of the entries an application records in these tests.
fn service() -> Value {
    json!({"type": "api", "id": "svc_billing", "name": "Billing"})
}

/// A server with Ada, an admin.
async fn with_ada() -> (Console, Member) {
    let console = Console::start().await;
    let ada = console
        .add_member(ADA, Some("Ada Lovelace"), Role::Admin)
        .await;
    (console, ada)
}

/// The session's CSRF token, from the sign-out form every signed-in page has.
async fn csrf_of(console: &Console, cookie: &str) -> String {
    let page = console.page_text("/console/settings", cookie).await;
    hidden_field(&page, "csrf").expect("a signed-in page has the CSRF field")
}

/// Waits (polling the store, never a fixed sleep) until `query` finds `n` entries.
async fn entries_eventually(console: &Console, query: &str, n: usize) -> Vec<Entry> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let entries = console.entries(query).await;
        if entries.len() == n {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {n} entries of {query}; have {}",
            entries.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn fill(b: &Browser, css: &str, text: &str) {
    let input = b.wait_for(css).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(b: &Browser, css: &str) {
    b.wait_for(css).await.click().await.unwrap();
}

/// Clicks what sends a form or follows a link, and waits for the next page to have loaded (so
/// that what the test reads next is not still the page before, which may look alike).
async fn click_to_next_page(b: &Browser, css: &str) {
    b.driver
        .execute("window.steleBefore = true;", vec![])
        .await
        .unwrap();
    click(b, css).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let loaded = b
            .driver
            .execute(
                "return !window.steleBefore && document.readyState === 'complete';",
                vec![],
            )
            .await;
        if matches!(loaded, Ok(Value::Bool(true))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no new page after clicking {css}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn value_of(b: &Browser, css: &str) -> String {
    b.wait_for(css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn count(b: &Browser, css: &str) -> usize {
    b.driver.find_all(Locator::Css(css)).await.unwrap().len()
}

fn by_member(entry: &Entry, member: &Member) {
    let actor = &entry.event.actor;
    assert_eq!(actor.kind, ActorType::User, "{entry:?}");
    assert_eq!(actor.id.as_deref(), Some(member.id.as_str()), "{entry:?}");
    assert_eq!(actor.email.as_deref(), Some(member.email.as_str()));
    assert_eq!(entry.event.context.source.as_deref(), Some("web"));
    assert_eq!(entry.event.context.ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_refused_below_30_days_on_the_form_then_saved_and_recorded() {
    let (app, ada) = with_ada().await;
    let console = &app;
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        click_to_next_page(&b, "header.top a.settings-link").await;
        b.wait_for("form.settings-form").await;
        assert_eq!(b.path().await, "/console/settings");
        assert_eq!(value_of(&b, "#retention-days").await, "365");

        // Below the floor: the form comes back with what was typed and the reason next to it.
        fill(&b, "#retention-days", "20").await;
        fill(&b, "input[name=channel_0]", "auth").await;
        fill(&b, "input[name=channel_0_days]", "90").await;
        // Enter in a field saves (it does not add a row).
        b.wait_for("#retention-days")
            .await
            .send_keys("\u{E007}")
            .await
            .unwrap();
        let error = b.text_of("#retention_days-error").await;
        assert_eq!(
            error,
            "Retention must be at least 30 days (the minimum retention), got 20."
        );
        assert!(b.text_of("p.error").await.contains("Nothing was saved"));
        assert_eq!(value_of(&b, "#retention-days").await, "20");
        assert_eq!(value_of(&b, "input[name=channel_0]").await, "auth");
        assert_eq!(value_of(&b, "input[name=channel_0_days]").await, "90");
        b.screenshot("settings-refused").await;

        // Another channel row, then a valid window.
        click_to_next_page(&b, "button[name=add_row]").await;
        fill(&b, "input[name=channel_1]", "compliance").await;
        fill(&b, "input[name=channel_1_days]", "2555").await;
        fill(&b, "#retention-days", "400").await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Settings saved.");
        assert_eq!(value_of(&b, "#retention-days").await, "400");
        assert_eq!(value_of(&b, "input[name=channel_0]").await, "auth");
        assert_eq!(value_of(&b, "input[name=channel_1]").await, "compliance");
        b.screenshot("settings").await;

        // Remove one override and keep the other forever.
        click(&b, "input[name=channel_0_remove]").await;
        b.wait_for("select[name=channel_1_keep]")
            .await
            .select_by_value("forever")
            .await
            .unwrap();
        click_to_next_page(&b, "button.primary[name=save]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Settings saved.");

        // The change is in the log, by Ada.
        b.open(
            &console.at("/console?detailed_action=settings.update"),
            "p.entry-count",
        )
        .await;
        assert_eq!(count(&b, "tr.log-row").await, 2);
        let actor = b.text_of("tr.log-row td.actor").await;
        assert!(actor.contains("Ada Lovelace"), "{actor}");
    })
    .await;

    let settings = console.store.settings(console.org.key).await.unwrap();
    assert_eq!(settings.retention_days, Some(400));
    assert_eq!(
        settings
            .channel_retention_days
            .into_iter()
            .collect::<Vec<_>>(),
        [("compliance".to_string(), None)]
    );
    let changes = console.entries("detailed_action=settings.update").await;
    assert_eq!(changes.len(), 2, "the refused form recorded nothing");
    for change in &changes {
        by_member(change, &ada);
        assert_eq!(change.event.channel, "security");
        assert_eq!(change.event.action, "update");
    }
    let first = &changes[1].event.changes;
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(
        (first[0].field.as_str(), &first[0].old, &first[0].new),
        ("retention_days", &Some(json!(365)), &Some(json!(400)))
    );
    assert_eq!(
        (&first[1].old, &first[1].new),
        (
            &Some(json!({})),
            &Some(json!({"auth": 90, "compliance": 2555}))
        )
    );
    let second = &changes[0].event.changes;
    assert_eq!(second.len(), 1, "only the overrides changed: {second:?}");
    assert_eq!(second[0].new, Some(json!({"compliance": null})));
}

/// Sends one `Invoice` event as an application would (the bootstrap admin key): status and body.
async fn send_invoice_event(console: &Console) -> (StatusCode, Value) {
    let response = console
        .http
        .post(console.at("/v1/events"))
        .bearer_auth(&console.admin_key)
        .json(&json!({
            "action": "create", "actor": service(),
            "entity": {"type": "Invoice", "id": "inv_1"},
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn is_checked(b: &Browser, css: &str) -> bool {
    b.wait_for(css)
        .await
        .prop("checked")
        .await
        .unwrap()
        .as_deref()
        == Some("true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_is_turned_off_after_a_confirmation_and_on_again_from_the_log_banner() {
    let (app, ada) = with_ada().await;
    let console = &app;
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        assert_eq!(
            count(&b, "div.recording-off").await,
            0,
            "no banner while on"
        );
        b.open(&console.at("/console/settings"), "form.settings-form")
            .await;
        let status = b.text_of("p.recording-status").await;
        assert!(status.starts_with("Recording is on."), "{status}");
        assert!(is_checked(&b, "#recording-on").await);

        // Off without the confirmation: refused, the choice kept, nothing changed.
        click(&b, "#recording-off").await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        let error = b.text_of("#recording-error").await;
        assert!(error.contains("I understand"), "{error}");
        assert!(is_checked(&b, "#recording-off").await);
        assert!(
            console
                .store
                .settings(console.org.key)
                .await
                .unwrap()
                .enabled
        );

        // With it: off, and the page says so.
        click(&b, "#confirm-off").await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Settings saved.");
        let status = b.text_of("p.recording-status").await;
        assert!(status.starts_with("Recording is off."), "{status}");
        assert!(is_checked(&b, "#recording-off").await);
        assert_eq!(
            count(&b, "#confirm-off").await,
            0,
            "nothing to confirm when off"
        );
        b.screenshot("settings-recording-off").await;

        // Applications are told their events were not stored.
        let (status, body) = send_invoice_event(console).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["recorded"], json!(false), "{body}");

        // The log says recording is off, and has the change.
        b.open(
            &console.at("/console?detailed_action=settings.update"),
            "p.entry-count",
        )
        .await;
        let banner = b.text_of("div.recording-off").await;
        assert!(banner.starts_with("Recording is off."), "{banner}");
        assert_eq!(count(&b, "tr.log-row").await, 1);
        assert_eq!(
            b.text_of("tbody.entry summary span.description").await,
            "Recording turned off"
        );

        // On again, from the banner's link; no confirmation needed.
        click_to_next_page(&b, "div.recording-off a").await;
        assert_eq!(b.path().await, "/console/settings");
        click(&b, "#recording-on").await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Settings saved.");
        let status = b.text_of("p.recording-status").await;
        assert!(status.starts_with("Recording is on."), "{status}");
        let (status, body) = send_invoice_event(console).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        b.open(
            &console.at("/console?detailed_action=settings.update"),
            "p.entry-count",
        )
        .await;
        assert_eq!(count(&b, "div.recording-off").await, 0);
        assert_eq!(count(&b, "tr.log-row").await, 2);
        assert_eq!(
            b.text_of("tbody.entry summary span.description").await,
            "Recording turned on"
        );
    })
    .await;

    assert_eq!(
        console.entries("entity_type=Invoice").await.len(),
        1,
        "only the event sent while recording was on"
    );
    let changes = console.entries("detailed_action=settings.update").await;
    assert_eq!(changes.len(), 2, "the refused form recorded nothing");
    for (change, (old, new)) in changes.iter().zip([(false, true), (true, false)]) {
        by_member(change, &ada);
        assert_eq!(change.event.changes.len(), 1, "{:?}", change.event.changes);
        let field = &change.event.changes[0];
        assert_eq!(
            (field.field.as_str(), &field.old, &field.new),
            ("enabled", &Some(json!(old)), &Some(json!(new)))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_allowlist_is_saved_only_with_valid_lines_that_include_the_members_address() {
    let (app, ada) = with_ada().await;
    let console = &app;
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        b.open(&console.at("/console/settings"), "#ip-allowlist")
            .await;
        assert_eq!(b.text_of("#your-ip").await, "127.0.0.1");
        assert_eq!(value_of(&b, "#ip-allowlist").await, "");

        // A line that is no address: refused naming it, the text kept.
        fill(&b, "#ip-allowlist", "10.0.0.0/8\nnot-an-address").await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        let error = b.text_of("#ip_allowlist-error").await;
        assert!(
            error.starts_with("Line 2: `not-an-address` is not an IP address"),
            "{error}"
        );
        assert_eq!(
            value_of(&b, "#ip-allowlist").await,
            "10.0.0.0/8\nnot-an-address"
        );

        // A list without the browser's address would lock Ada out: refused.
        fill(&b, "#ip-allowlist", "10.0.0.0/8").await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        let error = b.text_of("#ip_allowlist-error").await;
        assert!(
            error.starts_with("This list would lock you out: this request comes from 127.0.0.1"),
            "{error}"
        );
        assert_eq!(value_of(&b, "#ip-allowlist").await, "10.0.0.0/8");
        b.driver
            .execute(
                "document.querySelector('fieldset.ip-allowlist').scrollIntoView();",
                vec![],
            )
            .await
            .unwrap();
        b.screenshot("settings-allowlist-refused").await;
        assert!(
            console
                .store
                .settings(console.org.key)
                .await
                .unwrap()
                .ip_allowlist
                .is_empty()
        );

        // With it: saved in canonical form, and the console still opens.
        fill(&b, "#ip-allowlist", "10.1.2.3/8\n127.0.0.1").await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Settings saved.");
        assert_eq!(value_of(&b, "#ip-allowlist").await, "10.0.0.0/8\n127.0.0.1");
        b.open(&console.at("/console"), "p.entry-count").await;
    })
    .await;

    assert_eq!(
        console.api("/v1/settings").await["ip_allowlist"],
        json!(["10.0.0.0/8", "127.0.0.1"])
    );
    let changes = console.entries("detailed_action=settings.update").await;
    assert_eq!(changes.len(), 1, "the refused forms recorded nothing");
    by_member(&changes[0], &ada);
    let field = &changes[0].event.changes;
    assert_eq!(field.len(), 1, "{field:?}");
    assert_eq!(
        (field[0].field.as_str(), &field[0].old, &field[0].new),
        (
            "ip_allowlist",
            &Some(json!([])),
            &Some(json!(["10.0.0.0/8", "127.0.0.1"]))
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_origins_are_shown_refused_naming_the_line_and_field_then_saved() {
    let (app, ada) = with_ada().await;
    let console = &app;
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        b.open(&console.at("/console/settings"), "#embed-origins")
            .await;
        assert_eq!(value_of(&b, "#embed-origins").await, "");

        // A path, or a directive smuggled after the origin: refused naming the line and the
        // API's field, the text kept as typed.
        let typed = "https://portal.example.com\nhttps://x.example; script-src *";
        fill(&b, "#embed-origins", typed).await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        let error = b.text_of("#embed_origins-error").await;
        assert!(
            error.starts_with("Line 2 (embed_origins[1]) must be an origin"),
            "{error}"
        );
        assert_eq!(value_of(&b, "#embed-origins").await, typed);
        let invalid = b
            .wait_for("#embed-origins")
            .await
            .attr("aria-invalid")
            .await
            .unwrap();
        assert_eq!(invalid.as_deref(), Some("true"));
        assert!(
            console
                .store
                .settings(console.org.key)
                .await
                .unwrap()
                .embed_origins
                .is_empty()
        );

        // Valid: saved as origins (no trailing slash, no duplicate), shown again.
        fill(
            &b,
            "#embed-origins",
            "https://portal.example.com/\nhttp://localhost:8080\nhttps://portal.example.com",
        )
        .await;
        click_to_next_page(&b, "button.primary[name=save]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Settings saved.");
        assert_eq!(
            value_of(&b, "#embed-origins").await,
            "https://portal.example.com\nhttp://localhost:8080"
        );
        b.driver
            .execute(
                "document.querySelector('fieldset.embed-origins').scrollIntoView();",
                vec![],
            )
            .await
            .unwrap();
        b.screenshot("settings-embed-origins").await;
    })
    .await;

    assert_eq!(
        console.api("/v1/settings").await["embed_origins"],
        json!(["https://portal.example.com", "http://localhost:8080"])
    );
    let changes = console.entries("detailed_action=settings.update").await;
    assert_eq!(changes.len(), 1, "the refused form recorded nothing");
    by_member(&changes[0], &ada);
    let field = &changes[0].event.changes;
    assert_eq!(field.len(), 1, "{field:?}");
    assert_eq!(field[0].field, "embed_origins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_shown_once_works_and_is_revoked_after_a_confirmation() {
    let (app, ada) = with_ada().await;
    let console = &app;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        b.open(&console.at("/console/settings/keys"), "#key-name")
            .await;
        // Nothing chosen: refused, with the reason.
        fill(&b, "#key-name", "billing-service").await;
        click_to_next_page(&b, "section.create-key button[type=submit]").await;
        assert_eq!(
            b.text_of("#scopes-error").await,
            "Choose at least one scope."
        );
        assert_eq!(value_of(&b, "#key-name").await, "billing-service");

        click(&b, "#scope-ingest").await;
        click(&b, "#scope-read").await;
        click_to_next_page(&b, "section.create-key button[type=submit]").await;
        let secret = b.text_of("#new-key").await;
        assert!(
            secret.starts_with(api_keys::KEY_PREFIX)
                && secret.len() == api_keys::KEY_PREFIX.len() + 48,
            "{secret}"
        );
        assert!(
            b.text_of("section.key-created")
                .await
                .contains("only time it is shown")
        );
        b.screenshot("api-key-created").await;

        // The list shows the key's first characters, never the secret.
        click_to_next_page(&b, "section.key-created a.button").await;
        b.wait_for("section.key-list table").await;
        let source = b.driver.source().await.unwrap();
        assert!(!source.contains(&secret), "the secret is shown once only");
        let info = console
            .store
            .list_api_keys(console.org.key)
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.name == "billing-service")
            .unwrap();
        let row = format!("tr#key-{}", info.id);
        let prefix = b.text_of(&format!("{row} td.prefix")).await;
        assert!(secret.starts_with(prefix.trim_end_matches('…')), "{prefix}");
        assert_eq!(b.text_of(&format!("{row} td.scopes")).await, "ingest,read");
        assert_eq!(b.text_of(&format!("{row} td.status")).await, "Active");
        sender.send((secret, info.id.clone())).unwrap();

        click_to_next_page(&b, &format!("{row} a.revoke")).await;
        let question = b.text_of("section.confirm h2").await;
        assert_eq!(question, "Revoke the key \"billing-service\"?");
        click_to_next_page(&b, "section.confirm button.danger").await;
        let notice = b.text_of("p.notice-done").await;
        assert!(
            notice.starts_with("Revoked the key \"billing-service\""),
            "{notice}"
        );
        assert_eq!(b.text_of(&format!("{row} td.status")).await, "Revoked");
        assert_eq!(count(&b, &format!("{row} a.revoke")).await, 0);
    })
    .await;
    let (secret, key_id) = receiver.await.unwrap();

    let api = |secret: String| async move {
        console
            .http
            .get(console.at("/v1/events"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        api(secret.clone()).await,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );

    let created = console.entries("detailed_action=api_key.create").await;
    let revoked = console.entries("detailed_action=api_key.revoke").await;
    assert_eq!((created.len(), revoked.len()), (1, 1));
    for entry in [&created[0], &revoked[0]] {
        by_member(entry, &ada);
        assert_eq!(entry.event.channel, "security");
        let entity = entry.event.entity.as_ref().unwrap();
        assert_eq!(
            (entity.kind.as_str(), entity.id.as_deref()),
            ("ApiKey", Some(key_id.as_str()))
        );
    }
    for entry in console.entries("").await {
        assert!(
            !entry.to_json().to_string().contains(&secret),
            "no entry holds the secret: {entry:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_works_with_its_scopes_until_revoked() {
    let (app, _ada) = with_ada().await;
    let console = &app;
    let cookie = console.session_cookie(ADA).await;
    let csrf = csrf_of(console, &cookie).await;
    let response = console
        .post_form(
            "/console/settings/keys",
            &cookie,
            &[("csrf", &csrf), ("name", "reader"), ("scope", "read")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let page = response.text().await.unwrap();
    let start = page.find("id=\"new-key\">").unwrap() + "id=\"new-key\">".len();
    let secret = &page[start..start + page[start..].find('<').unwrap()];
    let get = |path: &str| {
        console
            .http
            .get(console.at(path))
            .bearer_auth(secret)
            .send()
    };
    assert_eq!(get("/v1/events").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get("/v1/export?format=csv").await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "read only"
    );
    let info = &console.store.list_api_keys(console.org.key).await.unwrap();
    let key = info.iter().find(|k| k.name == "reader").unwrap();
    let response = console
        .post_form(
            &format!("/console/settings/keys/{}/revoke", key.id),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        format!("/console/settings/keys?done=revoked&id={}", key.id)
    );
    assert_eq!(
        get("/v1/events").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Revoking again changes and records nothing.
    let again = console
        .post_form(
            &format!("/console/settings/keys/{}/revoke", key.id),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        location(&again),
        format!("/console/settings/keys?done=already_revoked&id={}", key.id)
    );
    assert_eq!(
        console
            .entries("detailed_action=api_key.revoke")
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_a_member_who_signs_in_and_changes_their_role() {
    const BO: &str = "bo@example.com";
    const BO_PASSWORD: &str = "a first password for Bo";
    let (app, ada) = with_ada().await;
    let console = &app;
    let ada_id = ada.id.clone();
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        b.open(
            &console.at("/console/settings/members"),
            "section.add-member form",
        )
        .await;
        // An admin may not make an owner, and does not change their own role.
        assert_eq!(count(&b, "#member-role option[value=owner]").await, 0);
        assert_eq!(count(&b, "#member-role option[value=admin]").await, 1);
        let own = format!("tr#member-{ada_id}");
        assert_eq!(count(&b, &format!("{own} form.role-change")).await, 0);
        assert!(b.text_of(&format!("{own} td.role")).await.contains("admin"));

        // Too short a password: refused, with the rule; the rest is kept.
        fill(&b, "#member-email", BO).await;
        fill(&b, "#member-name", "Bo Chen").await;
        b.wait_for("#member-role")
            .await
            .select_by_value("auditor")
            .await
            .unwrap();
        fill(&b, "#member-password", "short").await;
        click_to_next_page(&b, "section.add-member button[type=submit]").await;
        let error = b.text_of("#password-error").await;
        assert_eq!(
            error,
            "The password must be at least 12 characters long (it has 5)."
        );
        assert_eq!(value_of(&b, "#member-email").await, BO);
        assert_eq!(
            value_of(&b, "#member-password").await,
            "",
            "never sent back"
        );

        fill(&b, "#member-password", BO_PASSWORD).await;
        click_to_next_page(&b, "section.add-member button[type=submit]").await;
        let notice = b.text_of("p.notice-done").await;
        assert!(
            notice.starts_with("Added bo@example.com as auditor."),
            "{notice}"
        );
        b.screenshot("members").await;

        // Bo signs in with the password Ada set: an auditor reads the log, no settings.
        click_to_next_page(&b, "header.top form.signout button").await;
        b.wait_for("section.signin").await;
        b.open(&console.at("/console/login"), "#email").await;
        b.submit_sign_in(BO, BO_PASSWORD).await;
        b.wait_for("section.stele-log").await;
        assert_eq!(count(&b, "header.top a.settings-link").await, 0);
        b.open(&console.at("/console/settings"), "section.denied")
            .await;
        assert_eq!(
            b.text_of("section.denied h1").await,
            "You don't have permission to configure the audit log"
        );

        // Ada makes Bo an it-admin; Bo's next page shows the change.
        click_to_next_page(&b, "header.top form.signout button").await;
        b.wait_for("section.signin").await;
        b.sign_in(console, ADA).await;
        b.open(&console.at("/console/settings/members"), "table.members")
            .await;
        let bo = console.store.memberships_by_email(BO).await.unwrap()[0].clone();
        let row = format!("tr#member-{}", bo.id);
        assert_eq!(b.text_of(&format!("{row} td.name")).await, "Bo Chen");
        b.wait_for(&format!("{row} select[name=role]"))
            .await
            .select_by_value("it-admin")
            .await
            .unwrap();
        click_to_next_page(&b, &format!("{row} form.role-change button")).await;
        assert_eq!(
            b.text_of("p.notice-done").await,
            "bo@example.com is now it-admin."
        );
    })
    .await;

    let bo = console.store.memberships_by_email(BO).await.unwrap()[0].clone();
    assert_eq!(bo.role, "it-admin");
    let added = console.entries("detailed_action=member.add").await;
    assert_eq!(added.len(), 1);
    by_member(&added[0], &ada);
    assert_eq!(added[0].event.channel, "security");
    let changed = console.entries("detailed_action=member.role_change").await;
    assert_eq!(changed.len(), 1);
    by_member(&changed[0], &ada);
    let event = &changed[0].event;
    assert_eq!(
        (event.action.as_str(), event.channel.as_str()),
        ("permission_change", "security")
    );
    assert_eq!(
        (
            event.changes[0].field.as_str(),
            &event.changes[0].old,
            &event.changes[0].new
        ),
        ("role", &Some(json!("auditor")), &Some(json!("it-admin")))
    );
    assert_eq!(
        event.entity.as_ref().unwrap().id.as_deref(),
        Some(bo.id.as_str())
    );
    let logins = console.entries("action=login").await;
    assert!(
        logins
            .iter()
            .any(|e| e.event.actor.id.as_deref() == Some(bo.id.as_str())),
        "Bo signed in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_an_entry_records_one_view_per_page_and_its_own_page_records_another() {
    let app = Console::start().await;
    let console = &app;
    let rita = console
        .add_member("rita@example.com", Some("Rita"), Role::Auditor)
        .await;
    let ids = console
        .record(&[json!({
            "action": "update", "channel": "people", "description": "Changed Bo's home address",
            "actor": {"type": "user", "id": "u_1", "email": "hr@example.com"},
            "entity": {"type": "Person", "id": "p_7", "name": "Bo"},
            "changes": [{"field": "address", "old": "1 Old Road", "new": "2 New Street"}],
        })])
        .await;
    let id = ids[0].clone();
    let id = &id;
    with_browser(|b| async move {
        b.sign_in(console, "rita@example.com").await;
        let details = format!("tbody#entry-{id} details.entry-details");
        assert!(console.entries("action=view").await.is_empty());
        click(&b, &format!("{details} > summary")).await;
        b.wait_for(&format!("{details}[open]")).await;
        let views = entries_eventually(console, "action=view", 1).await;
        assert_eq!(views[0].event.metadata["via"], json!("details"));

        // Closing and opening again on the same page is not another view.
        click(&b, &format!("{details} > summary")).await;
        click(&b, &format!("{details} > summary")).await;
        b.wait_for(&format!("{details}[open]")).await;
        // The link to the entry's own page (what a reader without JavaScript follows).
        click_to_next_page(&b, &format!("{details} a.entry-link")).await;
        b.wait_for("section.entry-page").await;
        assert_eq!(b.path().await, format!("/console/entries/{id}"));
        let page = b.text_of("section.entry-page").await;
        assert!(page.contains("2 New Street"), "{page}");
        let views = entries_eventually(console, "action=view", 2).await;
        assert_eq!(views[0].event.metadata["via"], json!("entry_page"));

        // The reads are in the log, on channel pii-read.
        b.open(&console.at("/console?channel=pii-read"), "p.entry-count")
            .await;
        assert_eq!(count(&b, "tr.log-row").await, 2);
        let action = b.text_of("tr.log-row td.action").await;
        assert_eq!(action, "View");
    })
    .await;

    let views = console.entries("action=view").await;
    assert_eq!(
        views.len(),
        2,
        "one per page load, one for the entry's page"
    );
    for view in &views {
        by_member(view, &rita);
        assert_eq!(view.event.channel, "pii-read");
        let entity = view.event.entity.as_ref().unwrap();
        assert_eq!(
            (entity.kind.as_str(), entity.id.as_deref()),
            ("AuditLogEntry", Some(id.as_str()))
        );
        assert_eq!(view.event.metadata["entry_entity_id"], json!("p_7"));
    }
}

// --- plain HTTP --------------------------------------------------------------------------------

#[tokio::test]
async fn settings_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let (console, ada) = with_ada().await;
    let cookie = console.session_cookie(ADA).await;
    let id = console
        .record(&[json!({"action": "update", "actor": service()})])
        .await[0]
        .clone();
    let before = console.entries("").await.len();
    let role_path = format!("/console/settings/members/{}/role", ada.id);
    let view_path = format!("/console/entries/{id}/view");
    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/console/settings",
            vec![
                ("retention", "days"),
                ("retention_days", "400"),
                ("rows", "0"),
            ],
        ),
        (
            "/console/settings/keys",
            vec![("name", "sneaky"), ("scope", "admin")],
        ),
        (
            "/console/settings/members",
            vec![
                ("email", "eve@example.com"),
                ("role", "admin"),
                ("password", "a long enough password"),
            ],
        ),
        (&role_path, vec![("role", "member")]),
        (&view_path, vec![]),
    ];
    for (path, fields) in &forms {
        let response = console.post_form(path, &cookie, fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let mut forged = fields.clone();
        forged.push(("csrf", "0000"));
        let response = console.post_form(path, &cookie, &forged).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} forged");
    }
    assert_eq!(console.entries("").await.len(), before, "nothing recorded");
    assert_eq!(
        console
            .store
            .settings(console.org.key)
            .await
            .unwrap()
            .retention_days,
        Some(365)
    );
    assert!(
        console
            .store
            .memberships_by_email("eve@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    let keys = console.store.list_api_keys(console.org.key).await.unwrap();
    assert!(keys.iter().all(|k| k.name != "sneaky"));

    // With the token, the same form goes through and comes back with a notice (303, then GET).
    let csrf = csrf_of(&console, &cookie).await;
    let mut fields = forms[0].1.clone();
    fields.push(("csrf", &csrf));
    let response = console
        .post_form("/console/settings", &cookie, &fields)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/console/settings?done=saved");
    let page = console
        .page_text("/console/settings?done=saved", &cookie)
        .await;
    assert!(page.contains("Settings saved."));
    // The same again: nothing to save, nothing recorded.
    let response = console
        .post_form("/console/settings", &cookie, &fields)
        .await;
    assert_eq!(location(&response), "/console/settings?done=unchanged");
    assert_eq!(
        console
            .entries("detailed_action=settings.update")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn an_it_admin_makes_no_key_that_can_do_more_than_their_role() {
    let (console, _ada) = with_ada().await;
    console
        .add_member("ivy@example.com", None, Role::ItAdmin)
        .await;
    let cookie = console.session_cookie("ivy@example.com").await;
    let csrf = csrf_of(&console, &cookie).await;
    // The form does not offer what the role may not give.
    let form = console.page_text("/console/settings/keys", &cookie).await;
    assert!(
        form.contains("value=\"admin\" disabled"),
        "the admin scope is shown, not offered: {form}"
    );
    let keys_before = console
        .store
        .list_api_keys(console.org.key)
        .await
        .unwrap()
        .len();
    for scope in ["admin", "printlog.delete.all"] {
        let response = console
            .post_form(
                "/console/settings/keys",
                &cookie,
                &[("csrf", &csrf), ("name", "escalate"), ("scope", scope)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{scope}");
        let page = response.text().await.unwrap();
        assert!(page.contains("may not give a key"), "{scope}: {page}");
    }
    assert_eq!(
        console
            .store
            .list_api_keys(console.org.key)
            .await
            .unwrap()
            .len(),
        keys_before,
        "no key was made"
    );
    // What the role covers is still theirs to give.
    let response = console
        .post_form(
            "/console/settings/keys",
            &cookie,
            &[
                ("csrf", &csrf),
                ("name", "service"),
                ("scope", "ingest"),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn each_settings_page_needs_its_permission_and_the_header_links_only_to_those() {
    let (console, _ada) = with_ada().await;
    console
        .add_member("ivy@example.com", None, Role::ItAdmin)
        .await;
    console
        .add_member("aud@example.com", None, Role::Auditor)
        .await;
    let pages = [
        ("/console/settings", "configure the audit log"),
        ("/console/settings/keys", "manage API keys"),
        ("/console/settings/members", "manage members"),
    ];
    for (who, allowed, link) in [
        (ADA, [true, true, true], Some("/console/settings")),
        (
            "ivy@example.com",
            [true, true, false],
            Some("/console/settings"),
        ),
        ("aud@example.com", [false, false, false], None),
    ] {
        let cookie = console.session_cookie(who).await;
        for ((path, denied_text), ok) in pages.iter().zip(allowed) {
            let response = console.get(path, &cookie).await;
            let status = response.status();
            let page = response.text().await.unwrap();
            if ok {
                assert_eq!(status, StatusCode::OK, "{who} {path}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{who} {path}");
                assert!(
                    page.contains(&format!("You don&#39;t have permission to {denied_text}"))
                        || page.contains(&format!("You don't have permission to {denied_text}")),
                    "{who} {path}: {page}"
                );
            }
        }
        let home = console.page_text("/console", &cookie).await;
        // Every role may read the print log, so every header links to it.
        assert!(
            home.contains("class=\"nav-link\" href=\"/console/print-log\""),
            "{who}: {home}"
        );
        match link {
            Some(href) => assert!(
                home.contains(&format!("class=\"settings-link\" href=\"{href}\"")),
                "{who}: {home}"
            ),
            None => assert!(!home.contains("settings-link"), "{who}"),
        }
    }

    // A POST with a valid token is refused too, and changes nothing.
    let cookie = console.session_cookie("aud@example.com").await;
    let csrf = csrf_of(&console, &cookie).await;
    let response = console
        .post_form(
            "/console/settings/keys",
            &cookie,
            &[("csrf", &csrf), ("name", "mine"), ("scope", "admin")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let keys = console.store.list_api_keys(console.org.key).await.unwrap();
    assert!(keys.iter().all(|k| k.name != "mine"));
}

#[tokio::test]
async fn role_changes_stay_within_the_guard_rails() {
    let (console, ada) = with_ada().await;
    let olga = console
        .add_member("olga@example.com", None, Role::Owner)
        .await;
    let aud = console
        .add_member("aud@example.com", None, Role::Auditor)
        .await;
    let admin = console.session_cookie(ADA).await;
    let admin_csrf = csrf_of(&console, &admin).await;
    let change = |cookie: String, csrf: String, id: String, role: &'static str| {
        let console = &console;
        async move {
            console
                .post_form(
                    &format!("/console/settings/members/{id}/role"),
                    &cookie,
                    &[("csrf", &csrf), ("role", role)],
                )
                .await
        }
    };
    for (id, role, says) in [
        (ada.id.clone(), "super-admin", "cannot change your own role"),
        (
            aud.id.clone(),
            "owner",
            "Only an owner can make someone an owner",
        ),
        (
            olga.id.clone(),
            "member",
            "Only an owner can change an owner",
        ),
    ] {
        let response = change(admin.clone(), admin_csrf.clone(), id, role).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role}");
        let page = response.text().await.unwrap();
        assert!(page.contains(says), "{says}: {page}");
    }
    // An unknown role and another organization's member.
    let response = change(admin.clone(), admin_csrf.clone(), aud.id.clone(), "root").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let other = console.store.create_org("other").await.unwrap();
    let stranger = console
        .store
        .create_member(
            other.key,
            NewMember {
                email: "stranger@example.com".into(),
                name: None,
                role: "member".into(),
                password_hash: stele_service::access::members::hash_password(PASSWORD).unwrap(),
                created_at: 0,
            },
        )
        .await
        .unwrap();
    let response = change(
        admin.clone(),
        admin_csrf.clone(),
        stranger.id.clone(),
        "admin",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let page = response.text().await.unwrap();
    assert!(!page.contains("stranger@example.com"));
    // Adding an owner is refused to an admin as well.
    let response = console
        .post_form(
            "/console/settings/members",
            &admin,
            &[
                ("csrf", &admin_csrf),
                ("email", "new-owner@example.com"),
                ("role", "owner"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Only an owner can make someone an owner")
    );
    // An email this organization has already is refused next to the field.
    let taken = ada.email.to_uppercase();
    let response = console
        .post_form(
            "/console/settings/members",
            &admin,
            &[
                ("csrf", &admin_csrf),
                ("email", &taken),
                ("role", "auditor"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("exists already"));
    // Another organization's member is added as the same person, whose password stays theirs
    // (none is needed: the field left empty, as a browser sends it), and the notice says so.
    let response = console
        .post_form(
            "/console/settings/members",
            &admin,
            &[
                ("csrf", &admin_csrf),
                ("email", "Stranger@Example.com"),
                ("role", "auditor"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let done_at = location(&response);
    assert!(done_at.contains("done=added-existing"), "{done_at}");
    let page = console.get(&done_at, &admin).await.text().await.unwrap();
    assert!(
        page.contains("already have a Stele account in another organization"),
        "{page}"
    );
    let memberships = console
        .store
        .memberships_by_email("stranger@example.com")
        .await
        .unwrap();
    assert_eq!(memberships.len(), 2);
    assert!(
        memberships
            .iter()
            .all(|m| m.password_hash == stranger.password_hash)
    );
    let here = memberships
        .iter()
        .find(|m| m.org == console.org.key)
        .unwrap();
    assert_eq!(here.role, "auditor");
    // The other organization's membership is not this organization's to change.
    assert!(
        console
            .store
            .member(console.org.key, &stranger.id)
            .await
            .unwrap()
            .is_none()
    );
    for member in [&ada, &olga, &aud] {
        let now = console
            .store
            .member(console.org.key, &member.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.role, member.role, "unchanged");
    }
    assert!(
        console
            .store
            .memberships_by_email("new-owner@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        console
            .entries("detailed_action=member.role_change")
            .await
            .is_empty()
    );

    // An owner may make an owner, and change an owner's role.
    let owner = console.session_cookie("olga@example.com").await;
    let owner_csrf = csrf_of(&console, &owner).await;
    let response = change(owner.clone(), owner_csrf.clone(), aud.id.clone(), "owner").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = change(owner.clone(), owner_csrf.clone(), aud.id.clone(), "auditor").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // Changing to the role a member has already records nothing.
    let response = change(owner, owner_csrf, aud.id.clone(), "auditor").await;
    assert_eq!(
        location(&response),
        format!("/console/settings/members?done=unchanged&id={}", aud.id)
    );
    assert_eq!(
        console
            .entries("detailed_action=member.role_change")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn keys_of_another_organization_cannot_be_seen_or_revoked() {
    let (console, _ada) = with_ada().await;
    let other = console.store.create_org("other").await.unwrap();
    let theirs = console
        .store
        .create_api_key(
            other.key,
            api_keys::generate("theirs", vec![Scope::Read]).record,
        )
        .await
        .unwrap();
    let cookie = console.session_cookie(ADA).await;
    let csrf = csrf_of(&console, &cookie).await;
    let list = console.page_text("/console/settings/keys", &cookie).await;
    assert!(!list.contains(&theirs.id) && !list.contains("theirs"));
    let path = format!("/console/settings/keys/{}/revoke", theirs.id);
    assert_eq!(
        console.get(&path, &cookie).await.status(),
        StatusCode::NOT_FOUND
    );
    let response = console.post_form(&path, &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let still = console.store.list_api_keys(other.key).await.unwrap();
    assert_eq!(still[0].revoked_at, None);
}

#[tokio::test]
async fn an_entry_page_records_the_view_and_unknown_entries_are_not_found() {
    let console = Console::start().await;
    let rita = console
        .add_member("rita@example.com", None, Role::Auditor)
        .await;
    console
        .add_member("mo@example.com", None, Role::Member)
        .await;
    let id = console
        .record(&[json!({
            "action": "update", "actor": service(),
            "description": "<script>alert(1)</script>",
        })])
        .await[0]
        .clone();
    let cookie = console.session_cookie("rita@example.com").await;

    // The log links each entry's details to its own page (for readers without JavaScript).
    let log = console.page_text("/console", &cookie).await;
    assert!(log.contains(&format!("href=\"/console/entries/{id}\"")));
    assert!(
        console.entries("action=view").await.is_empty(),
        "listing is no view"
    );

    let response = console
        .get(&format!("/console/entries/{id}"), &cookie)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert(1)"));
    let views = console.entries("action=view").await;
    assert_eq!(views.len(), 1);
    by_member(&views[0], &rita);

    // A redaction made after the fact is said at the top of the page, escaped.
    use stele_service::erasure::{RedactionRequest, Requester, redact};
    redact(
        console.store.as_ref(),
        console.org.key,
        RedactionRequest {
            id: &id,
            fields: &["description".to_string()],
            reason: Some("<b>ticket 9</b>"),
        },
        Requester::CommandLine,
        stele_core::time::now_millis(),
    )
    .await
    .unwrap();
    let page = console
        .get(&format!("/console/entries/{id}"), &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Redacted after it was recorded: description")
            && page.contains("&lt;b&gt;ticket 9&lt;/b&gt;")
            && !page.contains("alert(1)"),
        "{page}"
    );

    // Another organization's entry, or none at all: 404, nothing recorded.
    let other = console.store.create_org("other").await.unwrap();
    let key = api_keys::generate("other", vec![Scope::Ingest]);
    console
        .store
        .create_api_key(other.key, key.record)
        .await
        .unwrap();
    let response = console
        .http
        .post(console.at("/v1/events"))
        .bearer_auth(&key.secret)
        .json(&json!({"action": "update", "actor": service()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let theirs = body["events"][0]["id"]
        .as_str()
        .or(body["id"].as_str())
        .unwrap()
        .to_string();
    let csrf = csrf_of(&console, &cookie).await;
    for missing in [theirs.as_str(), "nope"] {
        let response = console
            .get(&format!("/console/entries/{missing}"), &cookie)
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = console
            .post_form(
                &format!("/console/entries/{missing}/view"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let response = console
        .post_form(
            &format!("/console/entries/{id}/view"),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(console.entries("action=view").await.len(), 3);

    // A member without audit.log.view reads no entry.
    let mo = console.session_cookie("mo@example.com").await;
    let response = console.get(&format!("/console/entries/{id}"), &mo).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(console.entries("action=view").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_previews_a_sample_under_edited_rules_in_the_browser_then_saves_them() {
    let (app, _ada) = with_ada().await;
    let console = &app;
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        b.open(&console.at("/console/settings"), "#redaction-name-words")
            .await;
        assert!(
            value_of(&b, "#redaction-name-words")
                .await
                .contains("session")
        );
        fill(&b, "#redaction-name-words", "pin\nplan").await;
        fill(
            &b,
            "#redaction-sample",
            r#"{"action": "update", "actor": {"type": "user", "id": "u1"},
                "metadata": {"plan": "<b>pro</b>", "session": "s1"}}"#,
        )
        .await;
        click_to_next_page(&b, "button[name=preview_redaction]").await;
        let redacted = b.text_of("ul.redacted-fields").await;
        assert_eq!(redacted, "metadata.plan");
        let stored = b.text_of("pre.redaction-stored").await;
        assert!(stored.contains(r#""plan": "[REDACTED]""#), "{stored}");
        assert!(stored.contains(r#""session": "s1""#), "{stored}");
        // What was typed is kept, and nothing was saved.
        assert_eq!(value_of(&b, "#redaction-name-words").await, "pin\nplan");
        assert!(
            console
                .store
                .settings(console.org.key)
                .await
                .unwrap()
                .redaction
                .name_words
                .contains(&"session".to_string())
        );
        b.driver
            .execute(
                "document.querySelector('div.redaction-preview').scrollIntoView();",
                vec![],
            )
            .await
            .unwrap();
        b.screenshot("settings-redaction-preview").await;

        click_to_next_page(&b, "button.primary[name=save]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Settings saved.");
        assert_eq!(value_of(&b, "#redaction-name-words").await, "pin\nplan");
    })
    .await;
    assert_eq!(
        console.api("/v1/settings").await["redaction"]["name_words"],
        json!(["pin", "plan"])
    );
}

#[tokio::test]
async fn redaction_rules_are_edited_with_a_preview_that_stores_nothing() {
    let (console, _ada) = with_ada().await;
    let cookie = console.session_cookie(ADA).await;
    let csrf = csrf_of(&console, &cookie).await;
    let page = console.page_text("/console/settings", &cookie).await;
    assert!(
        page.contains(r#"name="redaction_name_words""#),
        "the editor is there"
    );
    assert!(page.contains("session"), "showing the default rules");

    // The preview uses the rules as typed, saved or not, and stores nothing.
    let before = console.entries("").await.len();
    let sample = r#"{"action": "update", "actor": {"type": "user", "id": "u1"},
                     "metadata": {"pin": "1234", "plan": "<i>pro</i>"}}"#;
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("retention", "days"),
        ("retention_days", "365"),
        ("rows", "0"),
        ("redaction", "1"),
        ("redaction_name_contains", "password"),
        ("redaction_name_starts_with", ""),
        ("redaction_name_words", "pin\nplan"),
        ("redaction_name_last_words", ""),
        ("redaction_sample", sample),
        ("preview_redaction", "1"),
    ];
    let response = console
        .post_form("/console/settings", &cookie, &fields)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("<code>metadata.pin</code>"), "{page}");
    assert!(page.contains("<code>metadata.plan</code>"), "{page}");
    assert!(
        page.contains("&quot;pin&quot;: &quot;[REDACTED]&quot;"),
        "{page}"
    );
    assert!(!page.contains("<i>pro</i>"), "escaped");
    assert_eq!(console.entries("").await.len(), before, "nothing recorded");
    let stored = console.store.settings(console.org.key).await.unwrap();
    assert_eq!(
        stored.redaction,
        stele_core::redact::RedactionRules::default(),
        "nothing saved"
    );

    // A sample the API would refuse shows the API's problems.
    fields.retain(|(k, _)| *k != "redaction_sample");
    fields.push(("redaction_sample", r#"{"action": "Not A Word"}"#));
    let page = console
        .post_form("/console/settings", &cookie, &fields)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("action: must"), "{page}");

    // Saved: the rules as typed (value detection unticked), recorded, and applied on ingest.
    fields.retain(|(k, _)| *k != "preview_redaction" && *k != "redaction_sample");
    fields.push(("save", "1"));
    let response = console
        .post_form("/console/settings", &cookie, &fields)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let stored = console.store.settings(console.org.key).await.unwrap();
    assert_eq!(stored.redaction.name_words, ["pin", "plan"]);
    assert!(!stored.redaction.detect_values);
    assert_eq!(
        console
            .entries("detailed_action=settings.update")
            .await
            .len(),
        1
    );
    let id = console
        .record(&[json!({"action": "update", "actor": service(),
                         "metadata": {"plan": "pro", "session": "s1"}})])
        .await[0]
        .clone();
    let entry = console.api(&format!("/v1/events/{id}")).await;
    assert_eq!(entry["metadata"]["plan"], "[REDACTED]");
    assert_eq!(
        entry["metadata"]["session"], "s1",
        "session is not a rule any more"
    );

    // Without the CSRF token: refused, nothing changes.
    let forged: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| *k != "csrf")
        .copied()
        .collect();
    let response = console
        .post_form("/console/settings", &cookie, &forged)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stream_is_created_with_its_secret_shown_once_paused_resumed_edited_and_deleted() {
    let (app, ada) = with_ada().await;
    let console = &app;
    with_browser(|b| async move {
        b.sign_in(console, ADA).await;
        b.open(&console.at("/console/settings/streams"), "#stream-url")
            .await;
        assert!(
            b.text_of("section.stream-list")
                .await
                .contains("no log streams")
        );
        // A target on this machine: refused next to the URL, what was typed kept.
        fill(&b, "#stream-name", "Splunk").await;
        fill(&b, "#stream-url", "https://localhost/in").await;
        click_to_next_page(&b, "section.create-stream button[type=submit]").await;
        assert!(
            b.text_of("#url-error").await.contains("this machine"),
            "{}",
            b.text_of("#url-error").await
        );
        assert_eq!(value_of(&b, "#stream-name").await, "Splunk");

        fill(
            &b,
            "#stream-url",
            "https://siem.example.com/stele?token=s3cr3t",
        )
        .await;
        fill(&b, "#stream-channels", "security, billing").await;
        click(&b, "#actor-type-user").await;
        click_to_next_page(&b, "section.create-stream button[type=submit]").await;
        let secret = b.text_of("#new-secret").await;
        assert!(secret.starts_with("whsec_"), "{secret}");
        b.screenshot("log-stream-created").await;

        click_to_next_page(&b, "section.stream-created a.button").await;
        b.wait_for("section.stream-list table").await;
        let source = b.driver.source().await.unwrap();
        assert!(!source.contains(&secret), "the secret is shown once only");
        assert!(!source.contains("s3cr3t"), "a query's values are hidden");
        let row = b.text_of("section.stream-list tbody tr").await;
        assert!(
            row.contains("Splunk") && row.contains("siem.example.com"),
            "{row}"
        );

        click_to_next_page(&b, "section.stream-list button.pause").await;
        assert!(
            b.text_of("p.notice-done")
                .await
                .contains("Paused \"Splunk\"")
        );
        assert!(
            b.text_of("section.stream-list tbody tr")
                .await
                .contains("Paused")
        );
        b.screenshot("log-stream-paused").await;
        click_to_next_page(&b, "section.stream-list button.resume").await;
        assert!(b.text_of("p.notice-done").await.contains("Resumed"));

        // Edit: the form holds the stream as it is, but not the URL (its query values stay
        // hidden); left empty, the URL stays.
        click_to_next_page(&b, "section.stream-list a.edit").await;
        assert_eq!(value_of(&b, "#stream-name").await, "Splunk");
        assert_eq!(value_of(&b, "#stream-url").await, "");
        assert_eq!(value_of(&b, "#stream-channels").await, "security, billing");
        assert!(!b.driver.source().await.unwrap().contains("s3cr3t"));
        fill(&b, "#stream-name", "Splunk EU").await;
        fill(&b, "#stream-channels", "").await;
        click_to_next_page(&b, "section.edit-stream button[type=submit]").await;
        assert_eq!(b.text_of("p.notice-done").await, "Saved \"Splunk EU\".");
        let row = b.text_of("section.stream-list tbody tr").await;
        assert!(
            row.contains("Splunk EU") && row.contains("siem.example.com"),
            "{row}"
        );

        click_to_next_page(&b, "section.stream-list a.delete").await;
        click_to_next_page(&b, "section.confirm button.danger").await;
        assert_eq!(b.text_of("p.notice-done").await, "Deleted the stream.");
        assert_eq!(count(&b, "section.stream-list tbody tr").await, 0);
    })
    .await;

    // Each change is in the trail, by Ada, from the console (beside the delivery's own entries,
    // a System actor's: the receiver's name does not resolve here, so the stream fails).
    let entries =
        entries_eventually(console, "detailed_action=log_stream.*&actor_type=user", 5).await;
    let mut actions: Vec<&str> = entries
        .iter()
        .map(|e| e.event.detailed_action.as_deref().unwrap())
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "log_stream.create",
            "log_stream.pause",
            "log_stream.resume",
            "log_stream.update",
            "log_stream.delete"
        ]
    );
    for entry in &entries {
        by_member(entry, &ada);
    }
}
