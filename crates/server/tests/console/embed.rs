//! The embedded audit log in a real browser: a vendor's page on another origin (its own small
//! server on another port) frames the viewer with a token its backend minted; an origin the
//! server does not allow gets no frame; and when the session ends, the frame asks the page for a
//! new token over `postMessage` and the view goes on (the log, or the log streams page a token
//! with the `streams` permission opens).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use serde_json::{Value, json};
use stele_core::time::now_millis;
use stele_service::access::api_keys;
use stele_service::clock::{ManualClock, SharedClock};
use stele_store::Scope;

use crate::harness::{Browser, Console, loopback_listener, with_browser};

/// The vendor's side: its page, and the endpoint its page asks for a fresh token.
#[derive(Clone)]
struct Vendor {
    stele: String,
    platform_key: String,
    /// How many tokens the page asked for after the first.
    refreshes: Arc<AtomicUsize>,
    /// What the page frames: `log`, or `streams` (the organization's log streams, with tokens
    /// that may manage them).
    view: &'static str,
}

impl Vendor {
    /// A token for the tenant `acme`, as the vendor's backend mints it.
    async fn mint(&self) -> String {
        let minted: Value = reqwest::Client::new()
            .post(format!("{}/v1/viewer-tokens", self.stele))
            .bearer_auth(&self.platform_key)
            .header("Stele-Organization", "acme")
            .json(&json!({"viewer": {"id": "kim", "name": "Kim"}, "session_seconds": 7200,
                          "permissions": if self.view == "streams" { json!(["streams"]) } else { json!([]) }}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        minted["token"].as_str().unwrap().to_string()
    }
}

/// The vendor's page: an iframe on the viewer, and the refresh handshake's other half.
async fn vendor_page(State(vendor): State<Vendor>) -> Html<String> {
    let token = vendor.mint().await;
    Html(format!(
        r#"<!doctype html><html><body>
<h1>Vendor app</h1>
<iframe id="audit" width="1000" height="700" src="{stele}/embed/{view}?token={token}"></iframe>
<script>
  var frame = document.getElementById("audit");
  frame.addEventListener("load", function () {{ window.frameLoads = (window.frameLoads || 0) + 1; }});
  window.addEventListener("message", function (event) {{
    if (event.source !== frame.contentWindow || !event.data ||
        event.data.type !== "stele:session-expired") {{ return; }}
    fetch("/token").then(function (r) {{ return r.text(); }}).then(function (token) {{
      frame.contentWindow.postMessage({{ type: "stele:token", token: token }}, "{stele}");
    }});
  }});
</script>
</body></html>"#,
        stele = vendor.stele,
        view = vendor.view,
    ))
}

async fn vendor_token(State(vendor): State<Vendor>) -> String {
    vendor.refreshes.fetch_add(1, Ordering::SeqCst);
    vendor.mint().await
}

/// Serves the vendor's page on a port of its own: another origin than Stele's.
async fn serve_vendor(vendor: Vendor, listener: tokio::net::TcpListener) {
    let app = Router::new()
        .route("/", get(vendor_page))
        .route("/token", get(vendor_token))
        .with_state(vendor);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// A Stele that lets `origin` frame the viewer, with a platform key and acme's trail.
async fn stele(origin: &str, clock: SharedClock) -> (Console, String) {
    let origin = origin.to_string();
    let console = Console::start_with(|c| {
        c.embed_origins = vec![origin];
        c.clock = clock;
    })
    .await;
    let platform = console.store.platform_org().await.unwrap();
    // `admin` too: only an admin key may mint tokens that manage log streams.
    let key = api_keys::generate("vendor", vec![Scope::Viewer, Scope::Ingest, Scope::Admin]);
    console
        .store
        .create_api_key(platform.key, key.record)
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", console.url))
        .bearer_auth(&key.secret)
        .header("Stele-Organization", "acme")
        .json(&json!({"events": [
            {"action": "update", "description": "Acme renamed printer Alpha",
             "actor": {"type": "user", "id": "u1"}},
            // One request's two changes, as Printago's slot assignment that updates its job.
            {"action": "update", "detailed_action": "printerSlot.assign",
             "description": "Assigned slot 2", "actor": {"type": "user", "id": "u1"},
             "context": {"correlation_id": "req-slot"},
             "changes": [{"field": "slot", "old": 1, "new": 2}]},
            {"action": "update", "detailed_action": "printJob.update",
             "description": "Moved job 7 to slot 2", "actor": {"type": "user", "id": "u1"},
             "context": {"correlation_id": "req-slot"},
             "changes": [{"field": "job_slot", "old": 1, "new": 2}]},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    (console, key.secret)
}

/// Whether the frame (the page's first) shows the audit log, checked inside it.
async fn frame_shows_log(browser: &Browser) -> bool {
    browser.driver.enter_frame(0).await.unwrap();
    let shown = browser
        .driver
        .execute(
            "return !!document.querySelector('section.stele-log') && \
             document.body.innerText.includes('Acme renamed printer Alpha');",
            vec![],
        )
        .await
        .unwrap();
    browser.driver.enter_parent_frame().await.unwrap();
    shown == Value::Bool(true)
}

/// The tenant acme's entries of one detailed action, whoever the actor, newest first.
async fn acme_entries(console: &Console, detailed_action: &str) -> Vec<stele_core::event::Entry> {
    let acme = console.store.resolve_org("acme").await.unwrap().unwrap();
    let request = stele_core::params::PageRequest::from_params([
        ("detailed_action", detailed_action),
        ("actor_type", "all"),
    ])
    .unwrap();
    console
        .store
        .list(acme.key, &request)
        .await
        .unwrap()
        .entries
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_vendor_page_on_another_origin_frames_the_viewer_and_refreshes_its_session() {
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{port}");
    let clock = ManualClock::starting_at(now_millis());
    let (console, platform_key) = stele(&origin, SharedClock(clock.clone())).await;
    let vendor = Vendor {
        stele: console.url.clone(),
        platform_key,
        refreshes: Arc::new(AtomicUsize::new(0)),
        view: "log",
    };
    serve_vendor(vendor.clone(), listener).await;

    with_browser(|browser| async move {
        browser.open(&format!("{origin}/"), "iframe#audit").await;
        wait_until("the framed log", async || frame_shows_log(&browser).await).await;

        // The request's two entries are one row, led by the slot assignment, counting both;
        // expanded, it shows the job's update with its own change.
        browser.driver.enter_frame(0).await.unwrap();
        let grouped = "tbody.entry.grouped";
        let summaries = browser
            .driver
            .execute(
                "return Array.from(document.querySelectorAll(\
                 'table.log-table tbody.entry details.entry-details > summary'))\
                 .map(s => s.textContent.trim());",
                vec![],
            )
            .await
            .unwrap();
        let summaries: Vec<String> = serde_json::from_value(summaries).unwrap();
        assert!(
            summaries.contains(&"Assigned slot 2".to_string()),
            "{summaries:?}"
        );
        assert!(
            !summaries.contains(&"Moved job 7 to slot 2".to_string()),
            "the job's update is folded into the request's row: {summaries:?}"
        );
        assert_eq!(
            browser
                .text_of(&format!("{grouped} span.correlated-count"))
                .await,
            "(2)"
        );
        let summary = browser
            .text_of(&format!("{grouped} details.entry-details > summary"))
            .await;
        assert_eq!(summary, "Assigned slot 2");
        browser
            .wait_for(&format!("{grouped} details.entry-details > summary"))
            .await
            .click()
            .await
            .unwrap();
        let other = browser
            .text_of(&format!(
                "{grouped} details.entry-details[open] section.correlated li"
            ))
            .await;
        assert!(
            other.contains("printJob.update") && other.contains("job_slot"),
            "{other}"
        );
        browser.driver.enter_parent_frame().await.unwrap();

        // Twenty idle minutes: the session has ended. The next click in the frame finds the
        // ended page, which asks the vendor's page for a token; the view goes on.
        clock.advance(Duration::from_secs(20 * 60));
        browser.driver.enter_frame(0).await.unwrap();
        browser
            .wait_for("a.button.refresh")
            .await
            .click()
            .await
            .unwrap();
        browser.driver.enter_parent_frame().await.unwrap();
        wait_until("a refreshed token", async || {
            vendor.refreshes.load(Ordering::SeqCst) >= 1
        })
        .await;
        wait_until("the log again", async || frame_shows_log(&browser).await).await;
        browser.screenshot("embed-refreshed").await;
    })
    .await;

    // Each opening is recorded under the viewer's identity: the first and the refreshed one.
    let opened = console
        .entries("detailed_action=viewer.session_start&actor_type=all")
        .await;
    assert!(opened.is_empty(), "the default organization saw nothing");
    let opened = acme_entries(&console, "viewer.session_start").await;
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert_eq!(opened[0].event.actor.id.as_deref(), Some("kim"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framed_log_streams_page_creates_a_stream_and_reopens_streams_after_its_session() {
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{port}");
    let clock = ManualClock::starting_at(now_millis());
    let (console, platform_key) = stele(&origin, SharedClock(clock.clone())).await;
    let vendor = Vendor {
        stele: console.url.clone(),
        platform_key,
        refreshes: Arc::new(AtomicUsize::new(0)),
        view: "streams",
    };
    serve_vendor(vendor.clone(), listener).await;

    with_browser(|browser| async move {
        browser.open(&format!("{origin}/"), "iframe#audit").await;
        browser.driver.enter_frame(0).await.unwrap();
        browser.wait_for("section.create-stream #stream-url").await;
        assert_eq!(
            browser.text_of("nav.embedded-tabs a.current").await,
            "Log streams"
        );
        for (css, text) in [
            ("#stream-name", "Vendor SIEM"),
            ("#stream-url", "https://siem.example.com/in"),
        ] {
            browser.wait_for(css).await.send_keys(text).await.unwrap();
        }
        browser
            .wait_for("section.create-stream button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        let secret = browser.text_of("#new-secret").await;
        assert!(secret.starts_with("whsec_"), "{secret}");
        browser
            .wait_for("section.stream-created a.button")
            .await
            .click()
            .await
            .unwrap();
        let row = browser.text_of("section.stream-list tbody tr").await;
        assert!(row.contains("Vendor SIEM"), "{row}");
        browser.screenshot("embed-log-streams").await;

        // Twenty idle minutes: the pause finds the session ended; the frame asks the vendor's
        // page for a token and reopens the log streams (the pause itself was not done).
        clock.advance(Duration::from_secs(20 * 60));
        browser
            .wait_for("section.stream-list button.pause")
            .await
            .click()
            .await
            .unwrap();
        browser.driver.enter_parent_frame().await.unwrap();
        wait_until("a refreshed token", async || {
            vendor.refreshes.load(Ordering::SeqCst) >= 1
        })
        .await;
        wait_until("the log streams again", async || {
            browser.driver.enter_frame(0).await.unwrap();
            let shown = browser
                .driver
                .execute(
                    "return !!document.querySelector('section.stream-list tbody tr') && \
                     document.body.innerText.includes('Vendor SIEM');",
                    vec![],
                )
                .await
                .unwrap();
            browser.driver.enter_parent_frame().await.unwrap();
            shown == Value::Bool(true)
        })
        .await;
    })
    .await;

    // The creation is the viewer's, in the tenant's trail.
    let created = acme_entries(&console, "log_stream.create").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].event.actor.id.as_deref(), Some("kim"));
}

#[tokio::test]
async fn an_origin_the_server_does_not_allow_gets_no_frame() {
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    // The server allows some other origin, not the vendor's.
    let clock = SharedClock::system();
    let (console, platform_key) = stele("https://elsewhere.example", clock).await;
    let vendor = Vendor {
        stele: console.url.clone(),
        platform_key,
        refreshes: Arc::new(AtomicUsize::new(0)),
        view: "log",
    };
    serve_vendor(vendor, listener).await;
    with_browser(|browser| async move {
        browser
            .open(&format!("http://127.0.0.1:{port}/"), "iframe#audit")
            .await;
        wait_until("the frame to finish loading", async || {
            browser
                .driver
                .execute("return (window.frameLoads || 0) > 0;", vec![])
                .await
                .unwrap()
                == Value::Bool(true)
        })
        .await;
        // Give a refused frame every chance to show something anyway.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !frame_shows_log(&browser).await,
            "the browser refused the frame"
        );
    })
    .await;
}
