//! Tenant isolation and authentication.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, data_point};

#[tokio::test]
async fn a_workspace_key_gets_404_on_every_object_of_another_workspace() {
    let app = TestApp::spawn().await;
    let (ws_a, key_a) = app.workspace().await;
    let (ws_b, key_b) = app.workspace().await;
    let webhook = app
        .webhook(
            &ws_b,
            json!({ "name": "b", "kind": "data", "url": "http://127.0.0.1:9/" }),
        )
        .await;
    let wh = webhook["id"].as_str().unwrap();
    app.send(&ws_b, "data", json!(data_point("d", "t"))).await;
    let dlv = app.deliveries(&ws_b).await[0]["id"].as_str().unwrap().to_owned();

    let attempts = [
        (Method::GET, format!("/v1/workspaces/{ws_b}/webhooks"), None),
        (
            Method::POST,
            format!("/v1/workspaces/{ws_b}/webhooks"),
            Some(json!({ "name": "x", "kind": "data", "url": "http://a.example" })),
        ),
        (Method::GET, format!("/v1/workspaces/{ws_b}/webhooks/{wh}"), None),
        (
            Method::PATCH,
            format!("/v1/workspaces/{ws_b}/webhooks/{wh}"),
            Some(json!({ "name": "stolen" })),
        ),
        (Method::DELETE, format!("/v1/workspaces/{ws_b}/webhooks/{wh}"), None),
        (Method::GET, format!("/v1/workspaces/{ws_b}/webhooks/{wh}/secret"), None),
        (
            Method::POST,
            format!("/v1/workspaces/{ws_b}/webhooks/{wh}/secret/rotate"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/workspaces/{ws_b}/webhooks/{wh}/test"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/workspaces/{ws_b}/webhooks/{wh}/replay"),
            Some(json!({ "since": "2000-01-01T00:00:00Z" })),
        ),
        (
            Method::POST,
            format!("/v1/workspaces/{ws_b}/data"),
            Some(data_point("d", "t")),
        ),
        (
            Method::POST,
            format!("/v1/workspaces/{ws_b}/events"),
            Some(json!({ "type": "x", "payload": 1 })),
        ),
        (Method::POST, format!("/v1/workspaces/{ws_b}/keys"), Some(json!({}))),
        (Method::GET, format!("/v1/workspaces/{ws_b}/deliveries"), None),
        (Method::GET, format!("/v1/workspaces/{ws_b}/deliveries/{dlv}"), None),
        (
            Method::POST,
            format!("/v1/workspaces/{ws_b}/deliveries/{dlv}/retry"),
            Some(json!({})),
        ),
        // Workspace B's objects under workspace A's path are not found either.
        (Method::GET, format!("/v1/workspaces/{ws_a}/webhooks/{wh}"), None),
        (Method::GET, format!("/v1/workspaces/{ws_a}/deliveries/{dlv}"), None),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = app.call(method.clone(), &path, &key_a, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }

    // Nothing changed, and B's own key still works.
    let (status, still) = app
        .call(
            Method::GET,
            &format!("/v1/workspaces/{ws_b}/webhooks/{wh}"),
            &key_b,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["name"], "b");
    assert_eq!(app.deliveries(&ws_b).await.len(), 1);
    let (_, listed) = app.call(Method::GET, "/v1/workspaces", &key_a, None).await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "a workspace key lists only its workspace"
    );
}

#[tokio::test]
async fn requests_without_a_valid_key_are_refused_and_workspace_keys_are_not_admins() {
    let app = TestApp::spawn().await;
    let (ws, key) = app.workspace().await;
    let response = app
        .http
        .get(format!("{}/v1/workspaces/{ws}/webhooks", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call(Method::GET, &format!("/v1/workspaces/{ws}/webhooks"), "hk_wrong", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = app
        .call(Method::POST, "/v1/workspaces", &key, Some(json!({ "name": "mine" })))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _) = app
        .call(Method::GET, &format!("/v1/workspaces/{ws}/webhooks"), &key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_workspace_key_over_its_rate_gets_429_with_retry_after() {
    let app = TestApp::spawn_with(|s| {
        s.api.rate_limit_per_second = 1;
        s.api.rate_limit_burst = 2;
    })
    .await;
    let (ws, key) = app.workspace().await;
    let url = format!("{}/v1/workspaces/{ws}/webhooks", app.base);
    let statuses: Vec<u16> = futures::future::join_all((0..3).map(|_| app.http.get(&url).bearer_auth(&key).send()))
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{statuses:?}");
    let limited = app.http.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The admin key is the operator's and is not limited.
    for _ in 0..5 {
        assert_eq!(
            app.get(&format!("/v1/workspaces/{ws}/webhooks")).await.0,
            StatusCode::OK
        );
    }
}
