//! The web console's sign-in, end to end: a real server and a real headless Chromium
//! (`harness.rs`), plus plain HTTP for what a browser would not do (forged forms, floods
//! of wrong passwords) and for status codes, which WebDriver does not show.

use crate::harness::{Console, PASSWORD, location, set_cookie_line, with_browser};
use reqwest::StatusCode;
use stele_core::{ActorType, Outcome};
use stele_service::access::roles::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_signs_in_and_lands_on_the_console_showing_them() {
    let app = Console::start().await;
    let console = &app;
    let ada = console
        .add_member("ada@example.com", Some("Ada Lovelace"), Role::Admin)
        .await;
    with_browser(|browser| async move {
        // The console asks for a session first, and comes back afterwards.
        browser.open(&console.at("/console"), "#email").await;
        assert_eq!(browser.path().await, "/console/login");
        let shot = browser.screenshot("sign-in").await;
        assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "{shot:?}");

        browser.submit_sign_in("Ada@Example.com", PASSWORD).await;
        // The console is the audit log: the sign-in itself is its newest entry.
        let newest = browser
            .text_of("table.log-table tr.log-row td.action")
            .await;
        assert!(newest.to_lowercase().contains("login"), "{newest}");
        assert_eq!(browser.path().await, "/console");
        assert_eq!(browser.text_of("header.top .org").await, "default");
        let who = browser.text_of("header.top .who").await;
        assert!(
            who.contains("Ada Lovelace")
                && who.contains("ada@example.com")
                && who.contains("admin"),
            "{who}"
        );
        browser.screenshot("signed-in").await;
    })
    .await;

    let logins = console.entries("action=login").await;
    assert_eq!(logins.len(), 1, "{logins:?}");
    let login = &logins[0].event;
    assert_eq!(login.channel, "auth");
    assert_eq!(login.actor.kind, ActorType::User);
    assert_eq!(login.actor.id.as_deref(), Some(ada.id.as_str()));
    assert_eq!(login.actor.email.as_deref(), Some("ada@example.com"));
    assert_eq!(login.context.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(login.context.source.as_deref(), Some("web"));
    assert!(
        login
            .context
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.contains("Chrome")),
        "{:?}",
        login.context.user_agent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_an_error_and_is_recorded_as_login_failed() {
    let app = Console::start().await;
    let console = &app;
    let ada = console
        .add_member("ada@example.com", Some("Ada Lovelace"), Role::Admin)
        .await;
    with_browser(|browser| async move {
        browser.open(&console.at("/console/login"), "#email").await;
        browser
            .submit_sign_in("ada@example.com", "not the password at all")
            .await;
        let error = browser.text_of("section.signin p.error").await;
        assert_eq!(error, "Wrong email or password.");
        assert_eq!(browser.path().await, "/console/login");
        // The form keeps the email and can be sent again.
        browser.submit_sign_in("", PASSWORD).await;
        browser.wait_for("section.stele-log").await;
    })
    .await;

    let failed = console.entries_once("action=login_failed", 1).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let event = &failed[0].event;
    assert_eq!(event.channel, "auth");
    assert_eq!(event.outcome, Outcome::Failure);
    assert_eq!(event.actor.email.as_deref(), Some("ada@example.com"));
    let entity = event.entity.as_ref().expect("the account is the entity");
    assert_eq!(
        (entity.kind.as_str(), entity.id.as_deref()),
        ("Member", Some(ada.id.as_str()))
    );
    assert_eq!(event.context.ip.as_deref(), Some("127.0.0.1"));

    // An email that names no member is recorded nowhere (it belongs to no organization).
    let response = console
        .sign_in_http("nobody@example.com", "whatever it is")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        console.entries_once("action=login_failed", 1).await.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_and_the_console_asks_to_sign_in_again() {
    let app = Console::start().await;
    let console = &app;
    console
        .add_member("ada@example.com", None, Role::Auditor)
        .await;
    let stolen = with_browser_returning(console).await;

    // Signed out in the store too: a copy of the old cookie no longer works.
    let response = console.get("/console", &stolen).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/console/login?next=/console");
    let cleared = set_cookie_line(&response, "stele_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let logouts = console.entries("action=logout").await;
    assert_eq!(logouts.len(), 1);
    assert_eq!(logouts[0].event.channel, "auth");
    assert_eq!(
        logouts[0].event.actor.email.as_deref(),
        Some("ada@example.com")
    );
}

/// Signs in and out in a browser; returns the session cookie it had.
async fn with_browser_returning(console: &Console) -> String {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    with_browser(|browser| async move {
        browser.sign_in(console, "ada@example.com").await;
        let session = browser
            .driver
            .get_named_cookie("stele_session")
            .await
            .unwrap();
        let cookie = format!("stele_session={}", session.value());
        browser
            .wait_for("header.top form.signout button")
            .await
            .click()
            .await
            .unwrap();
        browser.wait_for("section.signin").await;
        assert_eq!(browser.path().await, "/console/login");
        browser.open(&console.at("/console"), "#email").await;
        assert_eq!(browser.path().await, "/console/login", "signed out");
        sender.send(cookie).unwrap();
    })
    .await;
    receiver.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_audit_log_view_gets_the_permission_page() {
    let app = Console::start().await;
    let console = &app;
    console
        .add_member("mo@example.com", Some("Mo"), Role::Member)
        .await;
    let session = console.session_cookie("mo@example.com").await;
    let response = console.get("/console", &session).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")),
        "a page, not JSON"
    );

    with_browser(|browser| async move {
        browser.sign_in(console, "mo@example.com").await;
        let heading = browser.text_of("section.denied h1").await;
        assert_eq!(heading, "You don't have permission to view the audit log");
        let explained = browser.text_of("section.denied").await;
        assert!(explained.contains("audit.log.view"), "{explained}");
        assert!(explained.contains("member"), "{explained}");
        browser.screenshot("permission-page").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_without_the_csrf_token_is_refused() {
    let app = Console::start().await;
    let console = &app;
    console
        .add_member("ada@example.com", None, Role::Admin)
        .await;

    // The sign-in form: its cookie alone, a wrong token, or a token without its cookie.
    let form = console.sign_in_form().await;
    let fields = [("email", "ada@example.com"), ("password", PASSWORD)];
    let refused = console
        .post_form("/console/login", &form.cookie, &fields)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let zeros = "0".repeat(64);
    let wrong = [("csrf", zeros.as_str()), fields[0], fields[1]];
    let refused = console
        .post_form("/console/login", &form.cookie, &wrong)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let without_cookie = [("csrf", form.csrf.as_str()), fields[0], fields[1]];
    let refused = console
        .post_form("/console/login", "", &without_cookie)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(console.entries("action=login").await.is_empty());

    // Signed in: a form without the session's token changes nothing.
    let session = console.session_cookie("ada@example.com").await;
    let page = console.get("/console", &session).await;
    assert_eq!(page.status(), StatusCode::OK);
    let token = crate::harness::hidden_field(&page.text().await.unwrap(), "csrf").unwrap();
    let refused = console.post_form("/console/logout", &session, &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let sign_in_token = [("csrf", form.csrf.as_str())];
    let refused = console
        .post_form("/console/logout", &session, &sign_in_token)
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "the sign-in form's token is not this session's"
    );
    let fetch = console
        .http
        .post(console.at("/console/logout"))
        .header("cookie", &session)
        .header("x-csrf-token", "f".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(fetch.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        console.get("/console", &session).await.status(),
        StatusCode::OK,
        "still signed in"
    );

    // With the token, as a form field or as a fetch's header, it goes through.
    let fetch = console
        .http
        .post(console.at("/console/logout"))
        .header("cookie", &session)
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(fetch.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        console.get("/console", &session).await.status(),
        StatusCode::SEE_OTHER
    );
    let session = console.session_cookie("ada@example.com").await;
    let page = console.page_text("/console", &session).await;
    let token = crate::harness::hidden_field(&page, "csrf").unwrap();
    let out = console
        .post_form("/console/logout", &session, &[("csrf", &token)])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/console/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_rate_limited_per_account_and_per_address() {
    let app = Console::start().await;
    let console = &app;
    console
        .add_member("ada@example.com", None, Role::Admin)
        .await;
    console
        .add_member("bob@example.com", None, Role::Admin)
        .await;

    for _ in 0..5 {
        let response = console
            .sign_in_http("ada@example.com", "wrong password!")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Past the account's limit even the right password is refused, without being checked.
    let blocked = console.sign_in_http("ADA@example.com", PASSWORD).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");
    let page = blocked.text().await.unwrap();
    assert!(
        page.contains("Too many failed sign-ins for this account (5 in 15 minutes)"),
        "{page}"
    );
    assert_eq!(console.entries("action=login").await.len(), 0);
    assert_eq!(
        console.entries_once("action=login_failed", 5).await.len(),
        5
    );

    // Another account from the same address still may, until the address's limit (20).
    let ok = console.sign_in_http("bob@example.com", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    for i in 0..15 {
        let response = console
            .sign_in_http(&format!("nobody{i}@example.com"), "wrong password!")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = console.sign_in_http("bob@example.com", PASSWORD).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = blocked.text().await.unwrap();
    assert!(
        page.contains("Too many failed sign-ins from your network address (20 in 15 minutes)"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_http_only_same_site_and_sign_in_goes_back_where_it_was_asked_for() {
    let app = Console::start().await;
    let console = &app;
    console
        .add_member("ada@example.com", None, Role::Admin)
        .await;
    let response = console.get("/console?from=2026-01-01", "").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/console/login?next=/console%3Ffrom%3D2026-01-01"
    );
    let form = console.sign_in_form().await;
    let response = console
        .post_sign_in(
            &form,
            "ada@example.com",
            PASSWORD,
            "/console?from=2026-01-01",
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/console?from=2026-01-01");
    let cookie = set_cookie_line(&response, "stele_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );

    // Never to another site.
    let response = console
        .post_sign_in(&form, "ada@example.com", PASSWORD, "//evil.example/console")
        .await;
    assert_eq!(location(&response), "/console");
}

#[tokio::test]
async fn an_unknown_console_address_is_an_html_page_not_api_json() {
    let console = Console::start().await;
    for path in ["/console/nope", "/console/settings/nope/deeper"] {
        let response = console.get(path, "").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("No such page"), "{path}: {body}");
    }
    // The API keeps its JSON 404.
    let response = console.get("/v1/nope", "").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
}
