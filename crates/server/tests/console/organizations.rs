//! One person in several organizations, end to end with a real headless Chromium: a single
//! sign-in, the header's organization switcher moving the session between the person's
//! organizations (each showing only its own trail, with its own role), a forged switch to an
//! organization that is not theirs refused, and the switcher at phone width.

use reqwest::StatusCode;
use serde_json::json;
use stele_core::time::now_millis;
use stele_service::access::{api_keys, members, roles::Role};
use stele_store::{Member, NewMember, Organization, Scope};

use crate::harness::{
    Browser, Console, PASSWORD, PHONE_WIDTH, Screen, location, with_browser, with_screen,
};

const PAT: &str = "pat@example.com";

/// Adds `email` to `org` with a role; an existing person keeps their password ([`PASSWORD`]).
async fn member_of(console: &Console, org: &Organization, email: &str, role: Role) -> Member {
    console
        .store
        .create_member(
            org.key,
            NewMember {
                email: email.into(),
                name: Some("Pat Doe".into()),
                role: role.as_str().into(),
                password_hash: members::hash_password(PASSWORD).unwrap(),
                created_at: now_millis(),
            },
        )
        .await
        .unwrap()
}

/// Records one entry in `org` through the API, with a key of that organization.
async fn record_in(console: &Console, org: &Organization, description: &str) {
    let key = api_keys::generate("ingest", vec![Scope::Ingest]);
    console
        .store
        .create_api_key(org.key, key.record)
        .await
        .unwrap();
    let response = console
        .http
        .post(console.at("/v1/events"))
        .bearer_auth(&key.secret)
        .json(&json!({"events": [{
            "action": "update", "description": description,
            "actor": {"type": "user", "id": "u1", "name": "App user"},
        }]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Pat: an auditor of `default` (the oldest membership) and an admin of `globex`. Zed: a member
/// of `initech` only. Each organization has one entry of its own.
struct World {
    globex: Organization,
    pat_default: Member,
    pat_globex: Member,
    zed_initech: Member,
}

async fn world(console: &Console) -> World {
    let globex = console.store.create_org("globex").await.unwrap();
    let initech = console.store.create_org("initech").await.unwrap();
    let pat_default = member_of(console, &console.org, PAT, Role::Auditor).await;
    let pat_globex = member_of(console, &globex, "PAT@Example.com", Role::Admin).await;
    let zed_initech = member_of(console, &initech, "zed@example.com", Role::Owner).await;
    record_in(console, &console.org, "Only in default").await;
    record_in(console, &globex, "Only in globex").await;
    record_in(console, &initech, "Only in initech").await;
    World {
        globex,
        pat_default,
        pat_globex,
        zed_initech,
    }
}

async fn page_source(b: &Browser) -> String {
    b.driver.source().await.unwrap()
}

/// Opens the header's switcher and picks the organization `name`; waits for its log.
async fn switch_to(b: &Browser, member_id: &str, name: &str) {
    b.wait_for("header.top details.org-switch > summary")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(&format!(
        "header.top form.org-menu button[value='{member_id}']"
    ))
    .await
    .click()
    .await
    .unwrap();
    b.settle(name, "table.log-table", |path, _| path == "/console")
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.text_of("header.top .org").await != name {
        assert!(std::time::Instant::now() < deadline, "switching to {name}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sign_in_switches_between_the_persons_organizations_and_no_further() {
    let app = Console::start().await;
    let console = &app;
    let w = world(console).await;
    let w = &w;
    with_browser(|browser| async move {
        let b = &*browser;
        b.sign_in(console, PAT).await;
        // The oldest membership first: default's log, as its auditor, and nothing of globex.
        assert_eq!(b.text_of("header.top .org").await, "default");
        assert!(b.text_of("header.top .who").await.contains("auditor"));
        let page = page_source(b).await;
        assert!(page.contains("Only in default"), "{page}");
        assert!(!page.contains("Only in globex") && !page.contains("Only in initech"));
        // The switcher lists the person's other organization only.
        let menu = b.text_of("header.top form.org-menu").await;
        assert!(!menu.contains("initech"), "{menu}");

        switch_to(b, &w.pat_globex.id, "globex").await;
        assert!(b.text_of("header.top .who").await.contains("admin"));
        let page = page_source(b).await;
        assert!(page.contains("Only in globex"), "{page}");
        assert!(!page.contains("Only in default") && !page.contains("Only in initech"));
        b.screenshot("switched-organization").await;

        // A forged switch, with the session's own cookie and CSRF token, to another person's
        // membership (or an unknown one) is refused, and the session stays in globex.
        let cookie = b.driver.get_named_cookie("stele_session").await.unwrap();
        let cookies = format!("stele_session={}", cookie.value());
        let csrf = b
            .driver
            .execute(
                "return document.querySelector('meta[name=csrf-token]').content;",
                vec![],
            )
            .await
            .unwrap();
        let csrf = csrf.as_str().unwrap();
        for target in [w.zed_initech.id.as_str(), "mem_none", ""] {
            let response = console
                .post_form(
                    "/console/switch-organization",
                    &cookies,
                    &[("csrf", csrf), ("member", target)],
                )
                .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{target}");
            let page = response.text().await.unwrap();
            assert!(page.contains("You cannot switch to that organization"));
            assert!(
                !page.contains("initech"),
                "names nothing of initech: {page}"
            );
        }
        // Without the CSRF token, not even a switch between the person's own organizations.
        let response = console
            .post_form(
                "/console/switch-organization",
                &cookies,
                &[("member", w.pat_default.id.as_str())],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let still = console.page_text("/console", &cookies).await;
        assert!(still.contains("Only in globex") && !still.contains("Only in default"));

        // And back, by plain HTTP this time: a 303 to the log.
        let response = console
            .post_form(
                "/console/switch-organization",
                &cookies,
                &[("csrf", csrf), ("member", w.pat_default.id.as_str())],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/console");
        let back = console.page_text("/console", &cookies).await;
        assert!(back.contains("Only in default") && !back.contains("Only in globex"));
    })
    .await;

    // The switch is a sign-in in the organization switched to, by Pat's membership there, and
    // says nothing of where Pat came from.
    let request = stele_core::params::PageRequest::from_params(
        [("actor_type", "all"), ("action", "login")].into_iter(),
    )
    .unwrap();
    let in_globex = console
        .store
        .list(w.globex.key, &request)
        .await
        .unwrap()
        .entries;
    assert_eq!(in_globex.len(), 1, "{in_globex:?}");
    let switched = &in_globex[0].event;
    assert_eq!(
        switched.detailed_action.as_deref(),
        Some("console.switch_organization")
    );
    assert_eq!(switched.actor.id.as_deref(), Some(w.pat_globex.id.as_str()));
    assert!(!format!("{switched:?}").contains("default"), "{switched:?}");
    // In default: the sign-in, then the switch back.
    let in_default: Vec<Option<String>> = console
        .entries("action=login")
        .await
        .into_iter()
        .map(|e| e.event.detailed_action)
        .collect();
    assert_eq!(
        in_default,
        [
            Some("console.switch_organization".to_string()),
            Some("console.login".to_string())
        ]
    );

    // The next sign-in starts where Pat left off (default, switched to last); once Pat is
    // disabled there, in globex.
    let cookies = console.session_cookie(PAT).await;
    let page = console.page_text("/console", &cookies).await;
    assert!(page.contains("Only in default"), "{page}");
    let off = stele_store::MemberUpdate {
        disabled: Some(true),
        ..Default::default()
    };
    console
        .store
        .update_member(console.org.key, &w.pat_default.id, off)
        .await
        .unwrap();
    let cookies = console.session_cookie(PAT).await;
    let page = console.page_text("/console", &cookies).await;
    assert!(
        page.contains("Only in globex") && !page.contains("org-switch"),
        "globex, and no switcher to a disabled membership: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organization_switcher_fits_a_phone() {
    let app = Console::start().await;
    let console = &app;
    let w = world(console).await;
    // A long name, which must wrap rather than widen the page.
    console
        .store
        .update_org(
            w.globex.key,
            &stele_store::OrgUpdate {
                name: Some("Globex Corporation International Holdings and Subsidiaries".into()),
                external_id: None,
            },
        )
        .await
        .unwrap();
    with_screen(Screen::Phone, |browser| async move {
        let b = &*browser;
        b.sign_in(console, PAT).await;
        b.wait_for("header.top details.org-switch > summary")
            .await
            .click()
            .await
            .unwrap();
        b.wait_for("header.top form.org-menu button").await;
        let m = b
            .driver
            .execute(
                "const r = document.querySelector('header.top form.org-menu').getBoundingClientRect();
                 return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
                         left: r.left, right: r.right};",
                vec![],
            )
            .await
            .unwrap();
        b.screenshot("phone-organization-switcher").await;
        let width = PHONE_WIDTH as f64;
        assert_eq!(m["inner"].as_f64(), Some(width), "{m}");
        assert_eq!(m["scroll"].as_f64(), Some(width), "no sideways scroll: {m}");
        assert!(
            m["left"].as_f64().unwrap() >= 0.0 && m["right"].as_f64().unwrap() <= width,
            "the menu is on screen: {m}"
        );
        let button = "header.top form.org-menu button";
        b.wait_for(button).await.click().await.unwrap();
        // The log was at /console before the switch too: wait for the other organization's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            b.settle("globex", "table.log-table", |path, _| path == "/console")
                .await;
            if page_source(b).await.contains("Only in globex") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "switching to globex");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
}
