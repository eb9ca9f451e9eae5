//! The console tests' harness: a real server on port 0 (SQLite, its own directory), members made
//! through the store, a plain HTTP client that does not follow redirects, and a real headless
//! Chromium driven over WebDriver (`/usr/bin/chromedriver`, started on a free port per browser).
//!
//! Chromium is required, never skipped: without the Debian packages `chromium` and
//! `chromium-driver` the tests fail and say how to install them (`.ci/run` does).

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client as Driver, ClientBuilder, Locator};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use stele_core::time::now_millis;
use stele_server::{Application, Config};
use stele_service::access::members;
use stele_service::access::roles::Role;
use stele_store::{Member, NewMember, Organization, Store};
use tokio::sync::oneshot;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The password every test member gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long a page may take to appear: generous, for a debug build on a loaded 2-core machine.
const PAGE_DEADLINE: Duration = Duration::from_secs(30);

/// A running server over a fresh data directory.
pub struct Console {
    pub url: String,
    pub store: Arc<dyn Store>,
    /// The organization the first start created (`default`).
    pub org: Organization,
    /// Plain HTTP, no redirects followed, no cookie jar: tests see every 303 and send the
    /// cookies they mean to.
    pub http: Client,
    /// The bootstrap admin key of the first start (every API scope), for the API's view.
    pub admin_key: String,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Console {
    pub async fn start() -> Console {
        Console::start_with(|_| {}).await
    }

    /// A server whose configuration `adjust` changes first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Console {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            prune_at: None,
            ..Config::default()
        };
        adjust(&mut config);
        let app = Application::build(config).await.expect("app builds");
        let url = app.url();
        let store = app.store();
        let org = store.find_org("default").await.expect("bootstrapped");
        let admin_key = app
            .bootstrap()
            .expect("a fresh directory bootstraps")
            .admin_key
            .clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Console {
            url,
            store,
            org,
            http,
            admin_key,
            _dir: dir,
            _stop: stop,
        }
    }

    /// A member of the default organization with [`PASSWORD`], made the way `stele user create`
    /// makes one (an Argon2id hash in the store), without recording it.
    pub async fn add_member(&self, email: &str, name: Option<&str>, role: Role) -> Member {
        self.store
            .create_member(
                self.org.key,
                NewMember {
                    email: email.into(),
                    name: name.map(str::to_string),
                    role: role.as_str().into(),
                    password_hash: members::hash_password(PASSWORD).unwrap(),
                    created_at: now_millis(),
                },
            )
            .await
            .unwrap()
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET` with these cookies (`name=value; …`).
    pub async fn get(&self, path: &str, cookies: &str) -> Response {
        let mut request = self.http.get(self.at(path));
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies);
        }
        request.send().await.unwrap()
    }

    /// The body of a `GET` with these cookies, whatever its status.
    pub async fn page_text(&self, path: &str, cookies: &str) -> String {
        self.get(path, cookies).await.text().await.unwrap()
    }

    /// `POST` of a urlencoded form with these cookies.
    pub async fn post_form(&self, path: &str, cookies: &str, fields: &[(&str, &str)]) -> Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .http
            .post(self.at(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies);
        }
        request.send().await.unwrap()
    }

    /// The sign-in form as a browser gets it: its `stele_login` cookie and its CSRF token.
    pub async fn sign_in_form(&self) -> SignInForm {
        let response = self.get("/console/login", "").await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = set_cookie(&response, "stele_login").expect("the form sets its cookie");
        let body = response.text().await.unwrap();
        SignInForm {
            cookie: format!("stele_login={cookie}"),
            csrf: hidden_field(&body, "csrf").expect("the form has a CSRF field"),
        }
    }

    /// Submits the sign-in form over plain HTTP.
    pub async fn sign_in_http(&self, email: &str, password: &str) -> Response {
        let form = self.sign_in_form().await;
        self.post_sign_in(&form, email, password, "/console").await
    }

    /// Posts `form` (its cookie and CSRF token) with these credentials and `next` page.
    pub async fn post_sign_in(
        &self,
        form: &SignInForm,
        email: &str,
        password: &str,
        next: &str,
    ) -> Response {
        self.post_form(
            "/console/login",
            &form.cookie,
            &[
                ("csrf", &form.csrf),
                ("email", email),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// Signs in over plain HTTP and returns the session cookie (`stele_session=…`).
    pub async fn session_cookie(&self, email: &str) -> String {
        let response = self.sign_in_http(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
        let token = set_cookie(&response, "stele_session").expect("a session cookie");
        format!("stele_session={token}")
    }

    /// Every entry of the default organization (all actor types), newest first.
    pub async fn entries(&self, query: &str) -> Vec<stele_core::Entry> {
        let mut params: Vec<(&str, &str)> = vec![("actor_type", "all"), ("limit", "500")];
        params.extend(query.split('&').filter_map(|p| p.split_once('=')));
        let page = stele_core::params::PageRequest::from_params(params).unwrap();
        self.store.list(self.org.key, &page).await.unwrap().entries
    }

    /// [`Console::entries`] once there are `n` of them: for entries the server writes beside its
    /// answer rather than before it (a failed sign-in). Gives up after 10 s with what is there.
    pub async fn entries_once(&self, query: &str, n: usize) -> Vec<stele_core::Entry> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self.entries(query).await;
            if found.len() >= n || std::time::Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Console {
    /// Records events through `POST /v1/events` with the admin key, as an application would;
    /// returns their ids in order.
    pub async fn record(&self, events: &[serde_json::Value]) -> Vec<String> {
        let response = self
            .http
            .post(self.at("/v1/events"))
            .bearer_auth(&self.admin_key)
            .json(&serde_json::json!({ "events": events }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `GET` of an API path (`/v1/events?…`) with the admin key, as JSON.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        let response = self
            .http
            .get(self.at(path))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

pub struct SignInForm {
    /// `stele_login=…`, to send back.
    pub cookie: String,
    pub csrf: String,
}

/// Whether the query has `key=value` among its parameters.
pub fn has(params: &[(String, String)], key: &str, value: &str) -> bool {
    params.iter().any(|(k, v)| k == key && v == value)
}

/// The value a response's `Set-Cookie` gives cookie `name`.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.to_string())
}

/// The whole `Set-Cookie` line for cookie `name` (to check its attributes).
pub fn set_cookie_line(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The value of `<input type="hidden" name="…" value="…">` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// --- the browser ---------------------------------------------------------------------------------

/// A headless Chromium with its chromedriver. [`with_browser`] runs a test body with one and
/// closes it afterwards, even when the body panics.
pub struct Browser {
    pub driver: Driver,
    chromedriver: Child,
}

/// The screen a test's browser has.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// A 1280×800 window.
    Desktop,
    /// A phone: Chrome's mobile emulation at [`PHONE_WIDTH`] CSS pixels wide, which honours the
    /// viewport meta tag and has overlay scrollbars, as a phone's browser does.
    Phone,
}

/// The width of [`Screen::Phone`], in CSS pixels: an iPhone SE's, the width issue 15 asks the
/// console to work at.
pub const PHONE_WIDTH: u32 = 375;

impl Browser {
    pub async fn start(screen: Screen) -> Browser {
        for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "the console's browser tests need a real headless Chromium, and {path} (Debian \
                 package `{package}`) is missing. Install both packages: \
                 `apt-get update && apt-get install -y chromium chromium-driver` (.ci/run does)."
            );
        }
        let port = free_port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so that dropping the browser can end chromedriver and every
        // Chromium process it started, even after a panic.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let chromedriver = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let mut browser = BrowserGuard(Some(chromedriver));
        let webdriver = format!("http://127.0.0.1:{port}");
        let driver = connect(&webdriver, screen).await;
        Browser {
            driver,
            chromedriver: browser.0.take().unwrap(),
        }
    }

    /// Opens `url` and waits for the element `css` to be on the page.
    pub async fn open(&self, url: &str, css: &str) {
        self.driver.goto(url).await.unwrap();
        self.wait_for(css).await;
    }

    /// Waits for an element to be on the page (after a navigation, say).
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.driver
            .wait()
            .at_most(PAGE_DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for `{css}`: {e}"))
    }

    /// Waits until the page is loaded with an element `ready_css` and `ok` accepts its URL's path
    /// and query parameters; returns those parameters. Fails naming `what` after 30 seconds.
    pub async fn settle(
        &self,
        what: &str,
        ready_css: &str,
        ok: impl Fn(&str, &[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let script = format!(
            "return document.readyState === 'complete' && !!document.querySelector('{ready_css}');"
        );
        loop {
            let url = self.driver.current_url().await.unwrap();
            let params: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let ready = self.driver.execute(&script, vec![]).await.unwrap();
            if ready == serde_json::Value::Bool(true) && ok(url.path(), &params) {
                return params;
            }
            assert!(Instant::now() < deadline, "waiting for {what}; at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the element `css` names, once it is on the page. A page that replaces the
    /// element between finding it and reading it (a navigation landing, a script re-rendering)
    /// is read again, until the page deadline.
    pub async fn text_of(&self, css: &str) -> String {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            match self.wait_for(css).await.text().await {
                Ok(text) => return text,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("reading `{css}`: {e}"),
            }
        }
    }

    pub async fn path(&self) -> String {
        self.driver.current_url().await.unwrap().path().to_string()
    }

    /// Fills the sign-in form of the current page and submits it.
    pub async fn submit_sign_in(&self, email: &str, password: &str) {
        self.wait_for("#email")
            .await
            .send_keys(email)
            .await
            .unwrap();
        self.wait_for("#password")
            .await
            .send_keys(password)
            .await
            .unwrap();
        self.wait_for("section.signin button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
    }

    /// Signs in from the sign-in page and waits for the console.
    pub async fn sign_in(&self, console: &Console, email: &str) {
        self.open(&console.at("/console/login"), "#email").await;
        self.submit_sign_in(email, PASSWORD).await;
        self.wait_for("header.top form.signout").await;
    }

    /// Saves a PNG of the page to `target/console-screenshots/<name>.png` (a test artifact).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.driver.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn close(mut self) {
        let _ = self.driver.clone().close().await;
        end_group(&mut self.chromedriver);
    }
}

/// Runs `body` with a fresh browser and closes the browser afterwards. When `body` panics, the
/// browser's `Drop` ends chromedriver and Chromium instead.
pub async fn with_browser<F, Fut>(body: F)
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: Future<Output = ()>,
{
    with_screen(Screen::Desktop, body).await
}

/// [`with_browser`] with a browser of this screen.
pub async fn with_screen<F, Fut>(screen: Screen, body: F)
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: Future<Output = ()>,
{
    // At most two Chromiums at once per test binary: the tests run in parallel on small machines,
    // and a page that takes longer than PAGE_DEADLINE to render fails its test.
    static BROWSERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _turn = BROWSERS.acquire().await.expect("never closed");
    let browser = Arc::new(Browser::start(screen).await);
    body(browser.clone()).await;
    match Arc::try_unwrap(browser) {
        Ok(browser) => browser.close().await,
        Err(_) => panic!("the test body kept its browser"),
    }
}

/// Ends chromedriver's process group if a test left before [`Browser::close`].
struct BrowserGuard(Option<Child>);

impl Drop for BrowserGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            end_group(child);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        end_group(&mut self.chromedriver);
    }
}

/// Kills the process group led by `child` (chromedriver and the Chromium it started).
fn end_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}

/// A session on chromedriver once it answers (it takes a moment to listen).
async fn connect(webdriver: &str, screen: Screen) -> Driver {
    let mut options = serde_json::json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
        ],
    });
    if screen == Screen::Phone {
        options["mobileEmulation"] = serde_json::json!({
            "deviceMetrics": {"width": PHONE_WIDTH, "height": 812, "pixelRatio": 2.0, "touch": true},
        });
    }
    let mut capabilities = fantoccini::wd::Capabilities::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(webdriver)
            .await
        {
            Ok(driver) => return driver,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no WebDriver session from {CHROMEDRIVER} at {webdriver}: {e}"),
        }
    }
}

/// A listener on a free loopback port, bound now: a test's own server (a vendor's page) keeps
/// the port from the moment it is chosen, so a Stele or a browser started meanwhile cannot take
/// it (choosing a free port and binding it later raced them, and lost once in CI).
pub fn loopback_listener() -> tokio::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    tokio::net::TcpListener::from_std(listener).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `target/console-screenshots`, in the build's target directory.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}
