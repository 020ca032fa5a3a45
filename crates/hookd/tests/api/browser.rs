//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver by
//! `chromedriver`. The scenario of a new user: sign in, create a workspace and a webhook,
//! send a test, see deliveries (a failure, its explanation, a retry), health charts, a source's
//! rejected request, and a portal link scoped to one workspace. Every page is checked with
//! axe-core (no serious or critical violations) and at 390 px wide (no sideways scrolling),
//! and saved as a screenshot in `target/screenshots` (or `HOOKD_SCREENSHOTS`).
//!
//! Without Chromium and chromedriver the test says so in one line and passes, unless
//! `HOOKD_TEST_REQUIRE_BROWSER=1` (which `.ci/run` sets).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const AXE: &str = include_str!("../browser/axe.min.js");

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether to run: both programs present, or a clear skip (a failure when required).
fn browser_available() -> bool {
    let found = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !found {
        assert!(
            std::env::var("HOOKD_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "HOOKD_TEST_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipping the browser test: no {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        );
    }
    found
}

async fn start_browser(profile: &Path) -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not answer in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a Chromium session starts");
    (driver, client)
}

/// The browser and where the pages are, with the checks every page gets.
struct Tour {
    client: Client,
    base: String,
    shots: PathBuf,
    shot: usize,
}

impl Tour {
    async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// The element, once the page has it (a form's answer may still be loading).
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until the element's text contains `needle` (the page after a form, or a live
    /// update), with a deadline; returns the text.
    async fn see(&self, css: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            assert!(tokio::time::Instant::now() < deadline, "no `{needle}` in {css}: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page is accessible (axe-core), fits 390 px, and is saved as a screenshot.
    async fn check(&mut self, name: &str) {
        let title = self.client.title().await.unwrap();
        assert!(
            title.ends_with("· hookd") && !title.contains('<'),
            "{name}: the title is `{title}`"
        );
        self.client.execute(AXE, vec![]).await.expect("axe-core loads");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, { resultTypes: ['violations'] })\
                   .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                     .map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))\
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        let violations: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(violations.is_empty(), "{name}: {violations:#?}");
        self.shot += 1;
        let file = self.shots.join(format!("{:02}-{name}.png", self.shot));
        std::fs::write(&file, self.client.screenshot().await.unwrap()).unwrap();
        self.client.set_window_size(390, 844).await.unwrap();
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        std::fs::write(
            self.shots.join(format!("{:02}-{name}-390.png", self.shot)),
            self.client.screenshot().await.unwrap(),
        )
        .unwrap();
        let wide = self
            .client
            .execute(
                "const w = document.documentElement.clientWidth; return [...document.querySelectorAll('body *')]\
                   .filter(e => e.getBoundingClientRect().right > w + 1 && !e.parentElement.closest('.table-wrap'))\
                   .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{name} scrolls sideways at 390 px by {overflow}: {wide}"
        );
        self.client.set_window_size(1280, 1000).await.unwrap();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("HOOKD_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_does_the_walkthrough_in_the_browser() {
    if !browser_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = start_browser(profile.path()).await;
    let mut tour = Tour {
        client,
        base: app.base.clone(),
        shots: screenshots_dir(),
        shot: 0,
    };

    // 1. Sign in (the admin), create a workspace, then a webhook through the form.
    tour.goto("/").await;
    tour.check("sign-in").await;
    tour.fill("#key", "wrong").await;
    tour.click("button[type=submit]").await;
    tour.see("main", "is not the admin key").await;
    tour.fill("#key", &app.admin).await;
    tour.click("button[type=submit]").await;
    tour.see("h1", "Workspaces").await;
    tour.fill("#ws-name", "plant 3").await;
    tour.click("form[action='/workspaces'] button").await;
    tour.see("#new-key", "hk_").await;
    tour.check("workspaces").await;
    tour.click("tbody a").await;
    let ws = app.api.list_workspaces().await.unwrap()[0].id.clone();
    tour.see("main", "No webhooks yet").await;
    tour.click("a.button").await;
    tour.fill("#f-name", "line 4 alarms").await;
    tour.fill("#f-url", "ftp://wrong").await;
    tour.click("form.webhook-form > button").await;
    tour.see("#url-error", "http").await;
    tour.check("webhook-form-errors").await;
    tour.fill("#f-url", &receiver.url("/hook")).await;
    tour.fill("#f-filters-devices", "arm-1, arm-2").await;
    tour.click("form.webhook-form > button").await;
    tour.see("main", "Webhook created").await;
    tour.check("webhook").await;

    // 2. Send a test and see the attempt.
    tour.click("form[action$='/test'] button").await;
    tour.see("#test-outcome", "delivered").await;
    assert_eq!(tour.text("#test-status").await, "200");
    tour.see("main", "webhook-signature").await;
    tour.check("test-sent").await;
    assert_eq!(receiver.requests().len(), 1);

    // 3. Send a record (from the log page's form) and see its delivery in the log.
    tour.goto(&format!("/w/{ws}/deliveries")).await;
    tour.click("details summary").await;
    tour.fill(
        "#records",
        r#"{"device_id": "arm-1", "tag": "temp", "payload": {"celsius": 81.5}}"#,
    )
    .await;
    tour.click("form[action$='/records'] button").await;
    tour.see("#sent-result", "1 records accepted").await;
    app.dispatch_until_received(&receiver, 2).await;
    tour.client.refresh().await.unwrap(); // a redirect's page: reloading sends nothing again
    tour.see("#delivery-rows", "delivered").await;
    tour.check("deliveries").await;

    // 4. Break the receiver: the failure and its explanation.
    receiver.answer_with(Reply::Status(503));
    app.send(&ws, "data", json!([crate::helpers::data_point("arm-2", "temp")]))
        .await;
    app.dispatch_until_received(&receiver, 3).await;
    // The live update shows it without a reload.
    tour.see("#delivery-rows", "503").await;
    tour.click("#delivery-rows tr:first-child a").await;
    tour.see("#last-explanation", "503").await;
    tour.check("delivery-failed").await;

    // 5. Fix it, press Retry, see it delivered.
    receiver.answer_with(Reply::Status(200));
    tour.click("form[action$='/retry'] button").await;
    tour.see("main", "Retry queued").await;
    app.dispatch_until_received(&receiver, 4).await;
    tour.client.refresh().await.unwrap();
    tour.see("dl.facts dd", "delivered").await;
    tour.check("delivery-retried").await;

    tour.goto(&format!("/w/{ws}/webhooks")).await;
    tour.see("table.webhooks", "line 4 alarms").await;
    tour.check("webhooks").await;

    // 6. Health: charts with bars and lines.
    tour.goto(&format!("/w/{ws}/health")).await;
    tour.find("svg.chart").await;
    let bars = tour.client.find_all(Locator::Css("svg.chart path")).await.unwrap();
    assert!(bars.len() >= 2, "delivered and retrying bars");
    let lines = tour.client.find_all(Locator::Css("svg.chart polyline")).await.unwrap();
    assert_eq!(lines.len(), 3);
    tour.check("health").await;

    // 7. A source, and a request it rejected, with its reason.
    tour.goto(&format!("/w/{ws}/sources")).await;
    tour.fill("#f-name", "shop").await;
    tour.client
        .find(Locator::Css("#f-scheme"))
        .await
        .unwrap()
        .select_by_value("token")
        .await
        .unwrap();
    tour.fill("#f-secret", "s3cret-token-value").await;
    tour.click("form[action$='/sources'] > button").await;
    let door = tour.see("#source-door", "/in/").await;
    let src = door.trim_start_matches("/in/");
    let (status, _) = app.post_in(src, &[("x-auth-token", "wrong")], "{}").await;
    assert_eq!(status, 401);
    tour.client.refresh().await.unwrap();
    tour.see("table.requests", "bad_token").await;
    tour.see("table.requests", "rejected").await;
    tour.check("source").await;

    tour.goto(&format!("/w/{ws}/devices")).await;
    tour.see("main", "arm-1").await;
    tour.check("devices").await;

    // 8. A portal link shows only its workspace.
    let other = app.workspace().await.0;
    tour.goto(&format!("/w/{ws}/portal-links")).await;
    tour.click("form[action$='/portal-links'] button").await;
    let link = tour.see("#portal-link", "/portal/").await;
    tour.check("portal-links").await;
    tour.click("form.sign-out button").await;
    tour.see("main", "Sign in").await;
    tour.client.goto(&link).await.unwrap();
    tour.see("main", "line 4 alarms").await;
    tour.see("header", "Read-only").await;
    tour.goto(&format!("/w/{other}/webhooks")).await;
    tour.see("main", "does not exist here").await;
    tour.goto(&format!("/w/{ws}/webhooks")).await;
    tour.check("portal").await;

    tour.client.close().await.unwrap();
}
