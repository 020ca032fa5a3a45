//! The dashboard over plain HTTP, as a browser without JavaScript uses it: sign-in and its
//! cookie, CSRF tokens, forms that go through the API's validation, portal links, health.
//! (`tests/browser.rs` drives the same pages in a real Chromium.)

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

/// A browser without JavaScript: one cookie, redirects shown, not followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    html: String,
}

impl Page {
    /// The value of the first `name="csrf"` field.
    fn csrf(&self) -> String {
        let at = self
            .html
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.html[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// The page's text with the entities the templates escape turned back.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        if let Some(cookie) = &set_cookie {
            let pair = cookie.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        Page {
            status: response.status(),
            location,
            set_cookie,
            html: unescape(&response.text().await.unwrap()),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.read(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.read(response).await
    }

    async fn sign_in(&mut self, key: &str) -> Page {
        self.post("/sign-in", &[("key", key)]).await
    }
}

#[tokio::test]
async fn a_good_key_starts_a_session_that_signing_out_or_revoking_the_key_ends() {
    let app = TestApp::spawn().await;
    let (ws, key) = app.workspace().await;
    let mut browser = Browser::new(&app);

    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("<form method=\"post\" action=\"/sign-in\">"));
    assert!(page.html.contains("<label for=\"key\">API key</label>"));

    let wrong = browser.sign_in("hk_not-a-key").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.set_cookie.is_none(), "a wrong key sets no session");
    assert!(wrong.html.contains("is not the admin key or a workspace key"));

    let signed = browser.sign_in(&key).await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location.as_deref(), Some(format!("/w/{ws}/webhooks").as_str()));
    let cookie = signed.set_cookie.unwrap();
    for part in ["hookd_session=", "HttpOnly", "SameSite=Lax", "Max-Age=43200", "Path=/"] {
        assert!(cookie.contains(part), "{cookie} has {part}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure");
    let home = browser.get(&format!("/w/{ws}/webhooks")).await;
    assert_eq!(home.status, 200);
    assert!(home.html.contains("No webhooks yet"));
    let other = app.workspace().await.0;
    assert_eq!(
        browser.get(&format!("/w/{other}/webhooks")).await.status,
        404,
        "a workspace key sees its own workspace only"
    );
    assert_eq!(
        browser.get("/workspaces").await.location.as_deref(),
        Some(format!("/w/{ws}/webhooks").as_str())
    );

    let csrf = home.csrf();
    let out = browser.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(
        (out.status, out.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/"))
    );
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    let old = browser.cookie.clone();
    assert!(old.is_none(), "the cookie is cleared");

    // Revoking the key ends a session made with it, at the next request.
    let signed = browser.sign_in(&key).await;
    assert_eq!(signed.status, 303);
    assert_eq!(browser.get(&format!("/w/{ws}/webhooks")).await.status, 200);
    let keys = app.api.list_api_keys(&ws).await.unwrap();
    app.api.revoke_api_key(&ws, &keys[0].id).await.unwrap();
    let after = browser.get(&format!("/w/{ws}/webhooks")).await;
    assert_eq!(
        (after.status, after.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/"))
    );
}

#[tokio::test]
async fn behind_tls_the_cookie_is_secure() {
    let app = TestApp::spawn().await;
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/sign-in", app.base))
        .header("x-forwarded-proto", "https")
        .form(&[("key", app.admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/workspaces",
        "the admin starts at the workspaces"
    );
    assert!(response.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let app = TestApp::spawn().await;
    let (ws, key) = app.workspace().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&key).await;
    let form = [("name", "x"), ("kind", "data"), ("url", "http://127.0.0.1:9/")];
    let refused = browser.post(&format!("/w/{ws}/webhooks"), &form).await;
    assert_eq!(refused.status, 403);
    assert!(refused.html.contains("security token"));
    let forged = [
        ("csrf", "forged"),
        ("name", "x"),
        ("kind", "data"),
        ("url", "http://127.0.0.1:9/"),
    ];
    assert_eq!(browser.post(&format!("/w/{ws}/webhooks"), &forged).await.status, 403);
    assert!(app.api.list_webhooks(&ws).await.unwrap().is_empty(), "nothing created");
}

#[tokio::test]
async fn the_webhook_form_shows_the_apis_errors_by_field_then_creates_edits_tests_and_deletes() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, key) = app.workspace().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&key).await;
    let csrf = browser.get(&format!("/w/{ws}/webhooks/new")).await.csrf();

    let bad = browser
        .post(
            &format!("/w/{ws}/webhooks"),
            &[
                ("csrf", &csrf),
                ("name", "plant 3"),
                ("kind", "data"),
                ("url", "ftp://nope"),
                ("batch_max", "5000"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.html.contains("id=\"url-error\""), "the URL's error is next to it");
    assert!(
        bad.html.contains("id=\"batch_max-error\""),
        "and the batch size's, found with it"
    );
    assert!(bad.html.contains("value=\"plant 3\""), "what was typed is kept");
    assert!(app.api.list_webhooks(&ws).await.unwrap().is_empty());

    let url = receiver.url("/hook");
    let created = browser
        .post(
            &format!("/w/{ws}/webhooks"),
            &[
                ("csrf", &csrf),
                ("name", "plant 3"),
                ("kind", "data"),
                ("url", &url),
                ("enabled", "on"),
                ("filters.fleets", "flt-1, flt-2"),
                ("headers", "X-Site: {{labels.site}}"),
                ("ordering", "device"),
                ("min_interval", "1s"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    let webhooks = app.api.list_webhooks(&ws).await.unwrap();
    assert_eq!(webhooks.len(), 1);
    let webhook = &webhooks[0];
    assert_eq!(webhook.filters.fleets, ["flt-1", "flt-2"]);
    assert_eq!(webhook.headers["X-Site"], "{{labels.site}}");
    assert_eq!(webhook.min_interval, "1s");
    let path = format!("/w/{ws}/webhooks/{}", webhook.id);
    assert_eq!(created.location.as_deref(), Some(format!("{path}?created=1").as_str()));
    let page = browser.get(&path).await;
    let secret = app.api.read_secret(&ws, &webhook.id).await.unwrap().secret;
    assert!(page.html.contains(&secret), "the secret can be shown");
    assert!(page.html.contains("value=\"flt-1, flt-2\""), "the edit form is filled");

    // Emptying a field puts it back to its default; the rest stays.
    let edited = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("name", "plant 3b"),
                ("kind", "data"),
                ("url", &url),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.html);
    let webhook = app.api.get_webhook(&ws, &webhook.id).await.unwrap();
    assert_eq!(webhook.name, "plant 3b");
    assert!(webhook.filters.fleets.is_empty() && webhook.headers.is_empty());
    assert_eq!(webhook.min_interval, "0s");

    let tested = browser.post(&format!("{path}/test"), &[("csrf", &csrf)]).await;
    assert_eq!(tested.status, 200);
    assert!(tested.html.contains("<strong>delivered</strong>"), "{}", tested.html);
    assert!(
        tested.html.contains("webhook-signature"),
        "the request headers are shown"
    );
    assert_eq!(receiver.requests().len(), 1, "the test reached the receiver");

    let confirm = browser.get(&format!("{path}/delete")).await;
    assert!(confirm.html.contains("cannot be undone"), "delete asks first");
    assert_eq!(app.api.list_webhooks(&ws).await.unwrap().len(), 1);
    let deleted = browser.post(&format!("{path}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, 303);
    assert!(app.api.list_webhooks(&ws).await.unwrap().is_empty());
}

#[tokio::test]
async fn deliveries_are_listed_shown_with_their_attempts_and_retried_and_health_is_charted() {
    let app = TestApp::spawn().await;
    let (receiver, ws, webhook) = app.with_receiver(Reply::Status(410), json!({"format": "single"})).await;
    let (_, key) = (ws.clone(), app.api.create_api_key(&ws).await.unwrap().key);
    app.send(&ws, "data", json!([crate::helpers::data_point("dev-1", "temp")]))
        .await;
    app.dispatch_until_received(&receiver, 1).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&key).await;

    let log = browser.get(&format!("/w/{ws}/deliveries")).await;
    assert_eq!(log.status, 200);
    assert!(
        log.html.contains("<span class=\"badge failed\">failed</span>"),
        "{}",
        log.html
    );
    let rows = browser.get(&format!("/w/{ws}/deliveries?rows=1")).await;
    assert!(
        rows.html.trim_start().starts_with("<tr>"),
        "the live update gets rows only"
    );
    let filtered = browser.get(&format!("/w/{ws}/deliveries?state=delivered")).await;
    assert!(filtered.html.contains("No deliveries match."));
    let by_device = browser.get(&format!("/w/{ws}/deliveries?device=dev-1")).await;
    assert!(
        by_device.html.contains("<span class=\"badge failed\">failed</span>"),
        "its device's"
    );
    let other_device = browser.get(&format!("/w/{ws}/deliveries?device=dev-9")).await;
    assert!(
        other_device.html.contains("No deliveries match."),
        "not another device's"
    );
    let devices = browser.get(&format!("/w/{ws}/devices")).await;
    assert!(
        devices
            .html
            .contains(&format!("href=\"/w/{ws}/deliveries?device=dev-1\"")),
        "a device links to its deliveries"
    );

    let delivery = &app.deliveries(&ws).await[0];
    let id = delivery["id"].as_str().unwrap();
    let page = browser.get(&format!("/w/{ws}/deliveries/{id}")).await;
    assert!(page.html.contains("Attempt 1"));
    assert!(page.html.contains("410"), "the attempt's status and explanation");
    assert!(
        page.html.contains("<th scope=\"row\">webhook-signature</th>"),
        "the request's headers"
    );

    let csrf = page.csrf();
    let wh_page = format!("/w/{ws}/webhooks/{}", webhook["id"].as_str().unwrap());
    let replay = [
        ("csrf", csrf.as_str()),
        ("since", "2000-01-01T00:00"),
        ("state_failed", "on"),
    ];
    let counted = browser.post(&format!("{wh_page}/replay"), &replay).await;
    assert!(counted.html.contains("1 deliveries match."), "a dry run first");
    assert_eq!(app.delivery(&ws, id).await["state"], "failed", "which changes nothing");
    let confirmed = [replay.as_slice(), &[("confirm", "1")]].concat();
    let done = browser.post(&format!("{wh_page}/replay"), &confirmed).await;
    assert!(done.html.contains("1 deliveries replayed"));
    assert_eq!(app.delivery(&ws, id).await["state"], "pending");
    app.api
        .update_webhook(&ws, webhook["id"].as_str().unwrap(), &json!({"enabled": true}))
        .await
        .unwrap();
    receiver.answer_with(Reply::Status(200));
    let retried = browser
        .post(&format!("/w/{ws}/deliveries/{id}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(retried.status, 303);
    app.dispatch_until_received(&receiver, 2).await;
    let page = browser.get(&format!("/w/{ws}/deliveries/{id}?retried=1")).await;
    assert!(page.html.contains("Attempt 2") && page.html.contains("<span class=\"badge delivered\">delivered</span>"));

    let health = browser.get(&format!("/w/{ws}/health")).await;
    assert_eq!(health.status, 200);
    assert!(
        health.html.contains("<path class=\"delivered\""),
        "a bar for the delivered attempt"
    );
    assert!(health.html.contains("<path class=\"failed\""), "and for the failed one");
    assert!(health.html.contains("<polyline class=\"p95\""));
    assert!(health.html.contains("2 attempts: 1 delivered"), "{}", health.html);
    let list = browser.get(&format!("/w/{ws}/webhooks")).await;
    assert!(list.html.contains("50.0 %"), "the hour's success rate");
}

#[tokio::test]
async fn a_read_only_portal_link_shows_one_workspace_and_changes_nothing_until_revoked() {
    let app = TestApp::spawn().await;
    let (ws, key) = app.workspace().await;
    let other = app.workspace().await.0;
    app.webhook(
        &ws,
        json!({"name": "theirs", "kind": "data", "url": "http://127.0.0.1:9/"}),
    )
    .await;
    let mut owner = Browser::new(&app);
    owner.sign_in(&key).await;
    let links = owner.get(&format!("/w/{ws}/portal-links")).await;
    let csrf = links.csrf();
    let made = owner
        .post(
            &format!("/w/{ws}/portal-links"),
            &[("csrf", &csrf), ("access", "read"), ("expires_in", "1h")],
        )
        .await;
    let at = made
        .html
        .find("/portal/")
        .unwrap_or_else(|| panic!("the link is shown: {}", made.html));
    let link = &made.html[at..at + made.html[at..].find('<').unwrap()];

    let mut customer = Browser::new(&app);
    let opened = customer.get(link).await;
    assert_eq!(opened.status, 303);
    assert!(
        opened.set_cookie.unwrap().contains("Max-Age=3600"),
        "no longer than the link"
    );
    let page = customer.get(&format!("/w/{ws}/webhooks")).await;
    assert!(page.html.contains("theirs") && page.html.contains("Read-only"));
    assert!(!page.html.contains("New webhook"), "no forms to change things");
    assert_eq!(customer.get(&format!("/w/{other}/webhooks")).await.status, 404);
    assert_eq!(
        customer.get("/workspaces").await.location.as_deref(),
        Some(format!("/w/{ws}/webhooks").as_str())
    );
    let csrf = page.csrf();
    let refused = customer
        .post(
            &format!("/w/{ws}/webhooks"),
            &[
                ("csrf", &csrf),
                ("name", "x"),
                ("kind", "data"),
                ("url", "http://127.0.0.1:9/"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.api.list_webhooks(&ws).await.unwrap().len(), 1);

    let listed = owner.get(&format!("/w/{ws}/portal-links")).await;
    let at = listed.html.find("name=\"id\" value=\"").unwrap() + "name=\"id\" value=\"".len();
    let id = &listed.html[at..at + listed.html[at..].find('"').unwrap()];
    let revoked = owner
        .post(
            &format!("/w/{ws}/portal-links/revoke"),
            &[("csrf", &listed.csrf()), ("id", id)],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(
        customer.get(&format!("/w/{ws}/webhooks")).await.status,
        303,
        "its sign-in ended with it"
    );
    assert_eq!(customer.get(link).await.status, 404, "the link is gone");
}

#[tokio::test]
async fn the_admin_creates_a_workspace_and_sees_every_one() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let list = admin.get("/workspaces").await;
    assert!(list.html.contains(&format!("/w/{ws}/webhooks")));
    let empty = admin
        .post("/workspaces", &[("csrf", &list.csrf()), ("name", " ")])
        .await;
    assert_eq!(empty.status, 422);
    assert!(empty.html.contains("id=\"name-error\""));
    let created = admin
        .post("/workspaces", &[("csrf", &list.csrf()), ("name", "plant 4")])
        .await;
    assert_eq!(created.status, 201);
    let at = created.html.find("id=\"new-key\">").unwrap() + "id=\"new-key\">".len();
    let key = &created.html[at..at + created.html[at..].find('<').unwrap()];
    assert!(key.starts_with("hk_"), "the new workspace's key is shown once");
    assert_eq!(app.api.list_workspaces().await.unwrap().len(), 2);
    assert_eq!(
        admin.get(&format!("/w/{ws}/health")).await.status,
        200,
        "the admin sees every workspace"
    );
}

#[tokio::test]
async fn a_source_is_created_and_its_rejected_requests_are_shown_with_their_reason() {
    let app = TestApp::spawn().await;
    let (ws, key) = app.workspace().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&key).await;
    let csrf = browser.get(&format!("/w/{ws}/sources")).await.csrf();
    let bad = browser
        .post(
            &format!("/w/{ws}/sources"),
            &[("csrf", &csrf), ("name", "shop"), ("scheme", "token")],
        )
        .await;
    assert_eq!(bad.status, 422, "token needs a secret");
    assert!(bad.html.contains("class=\"field-error\""), "{}", bad.html);
    let created = browser
        .post(
            &format!("/w/{ws}/sources"),
            &[
                ("csrf", &csrf),
                ("name", "shop"),
                ("scheme", "token"),
                ("secret", "s3cret-token-value"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    let path = created.location.unwrap();
    let src = path.rsplit('/').next().unwrap();
    let (status, _) = app.post_in(src, &[("x-auth-token", "wrong")], "{}").await;
    assert_eq!(status, 401);
    let page = browser.get(&path).await;
    assert!(page.html.contains("<code>bad_token</code>"), "{}", page.html);
    assert!(page.html.contains("rejected"));
}

#[tokio::test]
async fn a_state_filter_looks_through_ten_thousand_deliveries_at_a_time_and_links_further_back() {
    let app = TestApp::spawn().await;
    let (receiver, ws, webhook) = app.with_receiver(Reply::Status(200), json!({"format": "single"})).await;
    let key = app.api.create_api_key(&ws).await.unwrap().key;
    app.send(&ws, "data", json!([crate::helpers::data_point("dev-1", "temp")]))
        .await;
    app.dispatch_until_received(&receiver, 1).await;
    app.api
        .update_webhook(&ws, webhook["id"].as_str().unwrap(), &json!({"enabled": false}))
        .await
        .unwrap();
    app.seed_pending(&ws, webhook["id"].as_str().unwrap(), 10_300).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&key).await;

    let first = browser.get(&format!("/w/{ws}/deliveries?state=delivered")).await;
    assert!(
        first.html.contains("No deliveries match."),
        "not among the newest 10,000: {}",
        first.html
    );
    let at = first
        .html
        .find("id=\"scan-note\"")
        .expect("the page says how far it looked");
    let note = &first.html[at..];
    let href = &note[note.find("href=\"").unwrap() + 6..];
    let href = &href[..href.find('"').unwrap()];
    let further = browser.get(&format!("/w/{ws}/deliveries{href}")).await;
    assert!(
        further
            .html
            .contains("<span class=\"badge delivered\">delivered</span>"),
        "found further back"
    );
    assert!(!further.html.contains("id=\"scan-note\""), "the search reached the end");
}

#[tokio::test]
async fn records_sent_from_the_log_page_are_ingested_and_bad_ones_are_explained() {
    let app = TestApp::spawn().await;
    let (ws, key) = app.workspace().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&key).await;
    let csrf = browser.get(&format!("/w/{ws}/deliveries")).await.csrf();
    let path = format!("/w/{ws}/records");
    let bad = browser
        .post(&path, &[("csrf", &csrf), ("kind", "data"), ("records", "{not json")])
        .await;
    assert!(bad.html.contains("The records are not JSON"), "{}", bad.html);
    let invalid = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("kind", "data"),
                ("records", r#"{"tag": "t", "payload": 1}"#),
            ],
        )
        .await;
    assert!(invalid.html.contains("device_id"), "the field is named");
    let sent = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("kind", "event"),
                (
                    "records",
                    r#"[{"type": "door.opened", "payload": {}}, {"type": "door.closed", "payload": {}}]"#,
                ),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "on to the log, so a reload sends nothing again");
    let log = browser.get(sent.location.as_deref().unwrap()).await;
    assert!(log.html.contains("2 records accepted"), "{}", log.html);
}
