//! Retraced's real embedded viewer (`@retracedhq/logs-viewer` 2.10.1, React 18) against Stele in
//! a real browser: `crates/server/tests/interop/retraced_viewer.jsx` is bundled with esbuild at
//! test time (from that directory's `node_modules`, which `.ci/run` installs with `npm ci`) into
//! a page a vendor serves on another origin, with `host` at Stele's `/auditlog/viewer/v1` and a
//! viewer token from the publisher's `viewertoken` route. The viewer shows the group's events,
//! searches, pages, renders the description markdown, creates and downloads a CSV export, and
//! asks the page for a new token (`refreshToken`) when its session ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value, json};
use stele_core::time::now_millis;
use stele_service::access::api_keys;
use stele_service::clock::{ManualClock, SharedClock};
use stele_store::Scope;

use crate::harness::{Browser, Console, loopback_listener, with_browser};

/// The interop tests' npm directory: the viewer, React 18 and esbuild.
fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Bundles the viewer page's script with esbuild; its text.
fn bundle() -> String {
    let dir = npm_dir();
    let esbuild = dir.join("node_modules/.bin/esbuild");
    assert!(
        esbuild.exists() && dir.join("node_modules/@retracedhq/logs-viewer").is_dir(),
        "the viewer test needs the npm packages of {}: run `npm ci --prefix {}` (.ci/run does)",
        dir.display(),
        dir.display()
    );
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("viewer.js");
    let output = Command::new(&esbuild)
        .current_dir(&dir)
        .args([
            "retraced_viewer.jsx",
            "--bundle",
            "--format=iife",
            "--jsx=automatic",
            "--define:process.env.NODE_ENV=\"production\"",
            "--loader:.svg=dataurl",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", file.display()))
        .output()
        .expect("running esbuild");
    assert!(
        output.status.success(),
        "esbuild failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(file).unwrap()
}

/// The vendor: its page, its bundled script, and the token endpoint its `refreshToken` calls.
#[derive(Clone)]
struct Vendor {
    stele: String,
    project: String,
    key: String,
    script: Arc<String>,
    /// Tokens minted, the first included.
    minted: Arc<AtomicUsize>,
}

impl Vendor {
    /// A viewer token for group `acme`, as the vendor's backend gets one (`getViewerToken`).
    async fn mint(&self) -> String {
        self.minted.fetch_add(1, Ordering::SeqCst);
        let body: Value = reqwest::Client::new()
            .get(format!(
                "{}/auditlog/publisher/v1/project/{}/viewertoken?group_id=acme&actor_id=kim@acme.test&is_admin=true",
                self.stele, self.project
            ))
            .header("Authorization", format!("Token token={}", self.key))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["token"].as_str().unwrap().to_string()
    }
}

/// The page: the viewer's root, its config, and hooks that keep what the viewer downloads (a
/// browser test cannot read the downloads folder; the viewer hands the CSV to an `<a download>`
/// as a blob, which the hooks read instead of saving).
async fn page(State(vendor): State<Vendor>) -> Html<String> {
    let token = vendor.mint().await;
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Vendor</title></head><body>
<div id="root"></div>
<script>
  window.VIEWER = {{ host: "{stele}/auditlog/viewer/v1", token: "{token}" }};
  window.downloads = [];
  var createObjectURL = URL.createObjectURL;
  URL.createObjectURL = function (blob) {{
    blob.text().then(function (text) {{ window.downloads.push({{ text: text }}); }});
    return createObjectURL.call(URL, blob);
  }};
  HTMLAnchorElement.prototype.click = function () {{ window.downloadName = this.download; }};
</script>
<script src="/viewer.js"></script>
</body></html>"#,
        stele = vendor.stele
    ))
}

async fn script(State(vendor): State<Vendor>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        vendor.script.as_str().to_string(),
    )
}

async fn token(State(vendor): State<Vendor>) -> String {
    vendor.mint().await
}

async fn serve_vendor(vendor: Vendor, listener: tokio::net::TcpListener) {
    let app = Router::new()
        .route("/", get(page))
        .route("/viewer.js", get(script))
        .route("/token", get(token))
        .with_state(vendor);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// Publishes 25 updates for acme (`User 1` … `User 25`, a minute apart) and one for globex.
async fn publish(console: &Console, project: &str, key: &str) {
    let event = |group: &str, n: u32| {
        json!({
            "action": "document.update", "crud": "u",
            "group": {"id": group, "name": format!("{group} Inc")},
            "created": format!("2024-05-01T12:{n:02}:00.000Z"),
            "actor": {"id": format!("user{n}@{group}.test"), "name": format!("User {n}")},
            "target": {"id": format!("doc:{n}"), "name": format!("Doc {n}"), "type": "document"},
            "description": format!("Updated number {n}"),
        })
    };
    let mut events: Vec<Value> = (1..=25).map(|n| event("acme", n)).collect();
    events.push(event("globex", 30));
    for chunk in events.chunks(20) {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/auditlog/publisher/v1/project/{project}/event/bulk",
                console.url
            ))
            .header("Authorization", format!("token={key}"))
            .json(&json!({ "events": chunk }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    }
}

async fn eval(browser: &Browser, script: &str) -> Value {
    browser.driver.execute(script, vec![]).await.unwrap()
}

/// The strong (bold) names the rows' description markdown renders, in order.
async fn shown_actors(browser: &Browser) -> Vec<String> {
    let names = eval(
        browser,
        "return Array.from(document.querySelectorAll('[data-testid=markdown] strong'))\
         .map(s => s.textContent).filter(t => t.startsWith('User '));",
    )
    .await;
    serde_json::from_value(names).unwrap()
}

async fn showing(browser: &Browser) -> String {
    eval(
        browser,
        "var s = document.querySelector('[data-testid=showing-events]');\
         return s ? s.parentElement.textContent : '';",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `css` whose text is `text`.
async fn click_text(browser: &Browser, css: &str, text: &str) {
    let clicked = eval(
        browser,
        &format!(
            "var e = Array.from(document.querySelectorAll('{css}'))\
             .find(e => e.textContent.trim() === '{text}'); if (e) {{ e.click(); }} return !!e;"
        ),
    )
    .await;
    assert_eq!(clicked, Value::Bool(true), "no `{css}` reading `{text}`");
}

#[tokio::test]
async fn retraceds_viewer_on_another_origin_browses_searches_exports_and_refreshes() {
    let clock = ManualClock::starting_at(now_millis());
    let shared = SharedClock(clock.clone());
    let console = Console::start_with(|c| c.clock = shared).await;
    let platform = console.store.platform_org().await.unwrap();
    let key = api_keys::generate("vendor", vec![Scope::Ingest, Scope::Viewer, Scope::Read]);
    console
        .store
        .create_api_key(platform.key, key.record)
        .await
        .unwrap();
    publish(&console, &platform.id, &key.secret).await;
    let listener = loopback_listener();
    let port = listener.local_addr().unwrap().port();
    let vendor = Vendor {
        stele: console.url.clone(),
        project: platform.id.clone(),
        key: key.secret.clone(),
        script: Arc::new(bundle()),
        minted: Arc::new(AtomicUsize::new(0)),
    };
    serve_vendor(vendor.clone(), listener).await;
    let origin = format!("http://127.0.0.1:{port}");

    with_browser(|browser| async move {
        browser.open(&format!("{origin}/"), "#root").await;
        // The group's events, newest first, the description markdown rendered (bold names).
        wait_until("acme's events", async || {
            shown_actors(&browser).await.first().map(String::as_str) == Some("User 25")
        })
        .await;
        // Twenty rows: Stele's own entries of the group (its creation, the viewer token's) are
        // newest, then the updates from User 25 down.
        let rows = eval(
            &browser,
            "return document.querySelectorAll('[data-testid=markdown]').length;",
        )
        .await;
        assert_eq!(rows, json!(20));
        let first_page = shown_actors(&browser).await;
        assert_eq!(first_page.len(), 18, "{first_page:?}");
        assert!(
            !first_page.iter().any(|n| n == "User 30"),
            "globex's event shown"
        );
        assert!(
            showing(&browser).await.contains("1 - 20"),
            "{}",
            showing(&browser).await
        );
        browser.screenshot("retraced-viewer").await;

        // Paging: the older page ends with the oldest update.
        click_text(&browser, ".EventPager p", "Older").await;
        wait_until("the older page", async || {
            shown_actors(&browser).await.last().map(String::as_str) == Some("User 1")
        })
        .await;
        assert!(
            showing(&browser).await.contains("21 - "),
            "{}",
            showing(&browser).await
        );

        // A search narrows the list (the box adds the viewer's crud:c,u,d).
        let input = browser.wait_for("[data-testid=search-events]").await;
        input.send_keys("number 7").await.unwrap();
        browser
            .wait_for("[data-testid=search-button]")
            .await
            .click()
            .await
            .unwrap();
        wait_until("the search's one result", async || {
            shown_actors(&browser).await == ["User 7"]
        })
        .await;

        // Export: the current search, named and saved, then downloaded as CSV.
        browser
            .wait_for("[data-testid=export-events]")
            .await
            .click()
            .await
            .unwrap();
        click_text(&browser, "button", "Export").await;
        browser
            .wait_for("input[placeholder='Release 1.0.0']")
            .await
            .send_keys("Number seven")
            .await
            .unwrap();
        click_text(&browser, "button", "Name & Save").await;
        wait_until("the downloaded CSV", async || {
            eval(&browser, "return window.downloads.length;").await == json!(1)
        })
        .await;
        let csv = eval(&browser, "return window.downloads[0].text;").await;
        let csv = csv.as_str().unwrap();
        let rows: Vec<&str> = csv.trim_end().split("\r\n").collect();
        assert_eq!(rows.len(), 2, "a header and the one match: {csv}");
        assert!(rows[1].contains("Updated number 7"), "{csv}");
        let name = eval(&browser, "return window.downloadName;").await;
        let name = name.as_str().unwrap();
        assert!(
            name.starts_with("audit-log-") && name.ends_with(".csv"),
            "{name}"
        );
        // Leave the export's dialog (its backdrop covers the page).
        browser.driver.goto(&format!("{origin}/")).await.unwrap();
        wait_until("the log again", async || {
            shown_actors(&browser).await.first().map(String::as_str) == Some("User 25")
        })
        .await;

        // Six minutes on, the session is over: the next search asks the page for a new token
        // (`refreshToken`), and the viewer goes on with it.
        let minted = vendor.minted.load(Ordering::SeqCst);
        clock.advance(Duration::from_secs(6 * 60));
        browser
            .wait_for("[data-testid=search-events]")
            .await
            .send_keys("number 9")
            .await
            .unwrap();
        browser
            .wait_for("[data-testid=search-button]")
            .await
            .click()
            .await
            .unwrap();
        wait_until("a refreshed token", async || {
            eval(&browser, "return window.refreshes || 0;").await == json!(1)
        })
        .await;
        assert!(vendor.minted.load(Ordering::SeqCst) > minted);
        wait_until("the search with the new session", async || {
            shown_actors(&browser).await == ["User 9"]
        })
        .await;
    })
    .await;
}
