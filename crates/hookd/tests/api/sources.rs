//! Receiving: a source verifies what a sender posts to its door, logs every request with
//! its outcome, and its records are forwarded, signed by hookd, like any other.

use hookd_core::source::{Algorithm, Encoding};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

const GITHUB_SECRET: &str = "It's a Secret to Everybody";

/// A GitHub push event, as GitHub sends it (abridged).
fn push_event() -> String {
    json!({"ref": "refs/heads/main", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
           "repository": {"full_name": "acme/plant-3", "private": true},
           "pusher": {"name": "octocat"}, "commits": [{"id": "0d1a26e6", "message": "Update gauges"}]})
    .to_string()
}

fn github_signature(body: &str, secret: &str) -> String {
    format!(
        "sha256={}",
        Encoding::Hex.encode(&Algorithm::Sha256.mac(secret.as_bytes(), &[body.as_bytes()]))
    )
}

async fn requests(app: &TestApp, ws: &str, src: &str, query: &str) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/v1/workspaces/{ws}/sources/{src}/requests{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_github_signed_request_is_forwarded_signed_by_hookd() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let src = app
        .source(
            &ws,
            json!({"name": "github", "scheme": "github", "secret": GITHUB_SECRET}),
        )
        .await;
    let src_id = src["id"].as_str().unwrap();
    assert_eq!(src["path"], format!("/in/{src_id}"));
    assert!(
        src.to_string().find(GITHUB_SECRET).is_none(),
        "the secret is never shown: {src}"
    );
    let receiver = Receiver::start(Reply::Status(204)).await;
    let webhook = app
        .webhook(&ws, json!({"name": "backend", "kind": "event", "url": receiver.url("/github"), "filters": {"sources": [src_id]}}))
        .await;

    let body = push_event();
    let signature = github_signature(&body, GITHUB_SECRET);
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("Content-Type", "application/json"),
    ];
    let (status, answer) = app.post_in(src_id, &headers, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let ids = answer["ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1);

    app.dispatch_until_received(&receiver, 1).await;
    let got = &receiver.requests()[0];
    let delivered = got.json();
    assert_eq!(delivered["result"][0]["id"], ids[0]);
    assert_eq!(delivered["result"][0]["type"], "source.github");
    assert_eq!(
        delivered["result"][0]["payload"],
        serde_json::from_str::<Value>(&body).unwrap()
    );
    let check = hookd_core::signature::verify(
        webhook["secret"].as_str().unwrap(),
        got.header("webhook-id").unwrap(),
        got.header("webhook-timestamp").unwrap(),
        got.header("webhook-signature").unwrap(),
        &got.body,
        app.clock_secs(),
        300,
    );
    assert_eq!(check, Ok(()), "signed by hookd with the forwarding webhook's secret");

    let log = requests(&app, &ws, src_id, "").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0]["outcome"].as_str(), log[0]["reason"].as_str()),
        (Some("accepted"), None)
    );
    assert_eq!(log[0]["record_ids"], json!(ids));
    assert_eq!(log[0]["headers"]["x-hub-signature-256"], "[redacted]");
    assert_eq!(
        log[0]["headers"]["x-github-delivery"],
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );
}

#[tokio::test]
async fn a_refused_request_hears_only_that_and_the_log_says_why() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let src = app
        .source(
            &ws,
            json!({"name": "github", "scheme": "github", "secret": GITHUB_SECRET}),
        )
        .await;
    let src_id = src["id"].as_str().unwrap();
    let body = push_event();
    let signature = github_signature(&body, GITHUB_SECRET);
    let delivery = ("X-GitHub-Delivery", "d-1");

    let tampered = body.replace("main", "evil");
    let (status, answer) = app
        .post_in(src_id, &[("X-Hub-Signature-256", &signature), delivery], &tampered)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer,
        json!({"error": {"code": "unauthorized", "message": "verification failed"}})
    );
    let (status, _) = app.post_in(src_id, &[delivery], &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post_in(src_id, &[("X-Hub-Signature-256", &signature), delivery], &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "the genuine one");
    let (status, _) = app
        .post_in(src_id, &[("X-Hub-Signature-256", &signature), delivery], &body)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the same delivery again");
    let (status, _) = app
        .call(reqwest::Method::PUT, &format!("/in/{src_id}"), "", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let log = requests(&app, &ws, src_id, "?outcome=rejected").await;
    let reasons: Vec<&str> = log.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        ["method_not_allowed", "replayed", "missing_header", "bad_signature"],
        "newest first"
    );
    let bad = &log[3];
    assert!(
        bad["explanation"]
            .as_str()
            .unwrap()
            .contains("HMAC-SHA256 over `{body}`, hex; 1 secret tried"),
        "{bad}"
    );
    assert!(!bad.to_string().contains(&signature[7..]), "never the signature: {bad}");
    assert_eq!(bad["body"], tampered, "what was sent");
    assert!(log[2]["explanation"].as_str().unwrap().contains("X-Hub-Signature-256"));
    assert_eq!(requests(&app, &ws, src_id, "?outcome=accepted").await.len(), 1);
    assert_eq!(
        app.deliveries(&ws).await.len(),
        0,
        "no webhook, no delivery; nothing from the refused ones"
    );
    let (status, _) = app.post_in("src_nope", &[], "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_sources_filter_takes_that_sources_records_and_no_filter_takes_every_door() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let src = app
        .source(
            &ws,
            json!({"name": "plc", "scheme": "token", "header": "Verifier-Token", "secret": "t0k3n"}),
        )
        .await;
    let src_id = src["id"].as_str().unwrap();
    let only_plc = Receiver::start(Reply::Status(204)).await;
    let everything = Receiver::start(Reply::Status(204)).await;
    app.webhook(
        &ws,
        json!({"name": "plc", "kind": "event", "url": only_plc.url("/"), "filters": {"sources": [src_id]}}),
    )
    .await;
    app.webhook(&ws, json!({"name": "all", "kind": "event", "url": everything.url("/")}))
        .await;

    app.send(&ws, "events", json!({"type": "relay", "payload": {"value": 1}}))
        .await;
    // The controller posts its device states as a form whose one key is the JSON array.
    let states = r#"[{"dev":"relay","circuit":"1_03","value":0},{"dev":"input","circuit":"1_01","value":1}]"#;
    let form: String = url::form_urlencoded::byte_serialize(states.as_bytes()).collect();
    let (status, _) = app
        .post_in(
            src_id,
            &[
                ("Verifier-Token", "t0k3n"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &form,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.dispatch_until_received(&everything, 2).await;
    app.dispatch_until_received(&only_plc, 1).await;
    let forwarded = only_plc.requests()[0].json();
    assert_eq!(
        forwarded["result"].as_array().unwrap().len(),
        1,
        "only the source's record"
    );
    assert_eq!(
        forwarded["result"][0]["payload"],
        serde_json::from_str::<Value>(states).unwrap()
    );
    let (status, _) = app.post_in(src_id, &[("Verifier-Token", "t0k3")], "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        requests(&app, &ws, src_id, "?outcome=rejected").await[0]["reason"],
        "bad_token"
    );
}

#[tokio::test]
async fn a_source_names_its_scheme_and_a_program_that_does_not_compile_is_refused() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let path = format!("/v1/workspaces/{ws}/sources");
    let (status, err) = app.post(&path, json!({"name": "plc"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "scheme");
    let (status, err) = app
        .post(&path, json!({"name": "iot", "scheme": "none", "split": ".result["}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (err["error"]["code"].as_str(), err["error"]["field"].as_str()),
        (Some("invalid_program"), Some("split"))
    );
    assert!(
        err["error"]["message"].as_str().unwrap().contains("at character 9"),
        "{err}"
    );
    let (status, err) = app
        .post(
            &path,
            json!({"name": "iot", "scheme": "none", "fields": {"device_id": ".id | nope"}}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("fields.device_id"))
    );
    let open = app
        .source(&ws, json!({"name": "plc", "scheme": "none", "response_status": 200}))
        .await;
    assert!(open["warnings"][0].as_str().unwrap().contains("anyone"), "{open}");
    let id = open["id"].as_str().unwrap();
    let (status, answer) = app.post_in(id, &[], r#"{"v": 1}"#).await;
    assert_eq!(
        (status, answer["ids"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let (status, patched) = app
        .call(
            reqwest::Method::PATCH,
            &format!("{path}/{id}"),
            &app.admin.clone(),
            Some(json!({"scheme": "token", "secret": "s"})),
        )
        .await;
    assert_eq!(
        (status, patched["scheme"].as_str()),
        (StatusCode::OK, Some("token")),
        "{patched}"
    );
    assert_eq!(patched["secrets"], json!([{"ends_with": "s", "expires_at": null}]));
    let (status, _) = app.post_in(id, &[], "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the new scheme holds at once");
    let (status, listed) = app.get(&path).await;
    assert_eq!((status, listed["data"].as_array().unwrap().len()), (StatusCode::OK, 1));
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{path}/{id}"),
            &app.admin.clone(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("{path}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_verified_body_that_makes_no_record_is_kept_as_failed_and_a_get_carries_its_query() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let data = app
        .source(&ws, json!({"name": "meter", "scheme": "none", "record_type": "data"}))
        .await;
    let data_id = data["id"].as_str().unwrap();
    let (status, answer) = app
        .post_in(data_id, &[("Content-Type", "application/json")], r#"{"kwh": 3}"#)
        .await;
    assert_eq!(
        (status, answer["ids"].clone()),
        (StatusCode::ACCEPTED, json!([])),
        "kept, so acknowledged"
    );
    let (status, _) = app
        .post_in(data_id, &[("Content-Type", "application/json")], "{not json")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let failed = requests(&app, &ws, data_id, "?outcome=failed").await;
    let reasons: Vec<&str> = failed.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["not_json", "transform_error"]);
    assert!(
        failed[1]["explanation"].as_str().unwrap().contains("device_id"),
        "{}",
        failed[1]
    );
    assert_eq!(
        failed[1]["body"], r#"{"kwh": 3}"#,
        "the whole body, to replay once it can be read"
    );

    let polled = app.source(&ws, json!({"name": "sensor", "scheme": "token", "query": "key", "secret": "k3y", "methods": ["GET"], "response_status": 204}),
    )
    .await;
    let polled_id = polled["id"].as_str().unwrap();
    let response = app
        .http
        .get(format!("{}/in/{polled_id}?key=k3y&temp=21.5&room=lab", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let log = requests(&app, &ws, polled_id, "").await;
    assert_eq!(
        log[0]["query"],
        json!({"key": "[redacted]", "room": "lab", "temp": "21.5"})
    );
    let record_id = log[0]["record_ids"][0].as_str().unwrap();
    let (status, record) = app.get(&format!("/v1/workspaces/{ws}/records/{record_id}")).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["payload"]["temp"], "21.5", "the query is the item: {record}");
    assert_eq!(record["type"], "source.sensor");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_logged_without_it() {
    let app = TestApp::spawn_with(|s| s.api.max_body_bytes = 2048).await;
    let (ws, _) = app.workspace().await;
    let src = app.source(&ws, json!({"name": "plc", "scheme": "none"})).await;
    let id = src["id"].as_str().unwrap();
    let (status, err) = app.post_in(id, &[], &"x".repeat(4096)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let log = requests(&app, &ws, id, "").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0]["reason"].as_str(), log[0]["body_truncated"].as_bool()),
        (Some("too_large"), Some(true))
    );
    assert_eq!(log[0]["body"], "", "nothing of it is kept");
    assert!(log[0]["explanation"].as_str().unwrap().contains("2048 bytes"));
    let (status, _) = app.post_in(id, &[], "{}").await;
    assert_eq!(status, StatusCode::ACCEPTED, "a body within the limit still goes in");
}
