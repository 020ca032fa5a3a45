//! Managing keys and workspaces: list, revoke, read, rename, delete with everything in it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, data_point};
use crate::receiver::Reply;

#[tokio::test]
async fn keys_are_listed_without_their_secret_and_a_revoked_key_gets_401() {
    let app = TestApp::spawn().await;
    let (ws, first) = app.workspace().await;
    let second = app.api.create_api_key(&ws).await.unwrap();
    assert_eq!(second.prefix, second.key[..9], "the prefix is the key's start");
    let path = format!("/v1/workspaces/{ws}/webhooks");
    assert_eq!(app.call(Method::GET, &path, &first, None).await.0, StatusCode::OK);

    let (status, listed) = app.get(&format!("/v1/workspaces/{ws}/keys")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let keys = listed["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(key["id"].as_str().unwrap().starts_with("key_"), "{key}");
        assert!(key["created_at"].is_string());
        assert!(key.get("key").is_none() && key.get("key_hash").is_none(), "{key}");
    }
    assert!(
        !listed.to_string().contains(&first[9..]),
        "no secret part of a key is listed"
    );
    assert!(!listed.to_string().contains(&second.key[9..]));

    // The first key was used: its last use shows (written in the background).
    let first_id = keys
        .iter()
        .find(|k| first.starts_with(k["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let keys = app.api.list_api_keys(&ws).await.unwrap();
        let used = keys.iter().find(|k| k.id == first_id).unwrap();
        if used.last_used_at.is_some() {
            assert!(
                keys.iter().find(|k| k.id == second.id).unwrap().last_used_at.is_none(),
                "the unused key has no last use"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "last use never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}/keys/{first_id}"),
            &app.admin.clone(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.call(Method::GET, &path, &first, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the revoked key, remembered before: {body}"
    );
    assert_eq!(
        app.call(Method::GET, &path, &second.key, None).await.0,
        StatusCode::OK,
        "the other key still works"
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}/keys/{first_id}"),
            &app.admin.clone(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoked once");
    assert_eq!(app.api.list_api_keys(&ws).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_workspace_key_cannot_list_or_revoke_another_workspaces_keys() {
    let app = TestApp::spawn().await;
    let (ws_a, key_a) = app.workspace().await;
    let (ws_b, _) = app.workspace().await;
    let theirs = app.api.list_api_keys(&ws_b).await.unwrap().remove(0);
    let (status, _) = app
        .call(Method::GET, &format!("/v1/workspaces/{ws_b}/keys"), &key_a, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/workspaces/{ws_a}/keys/{}", theirs.id),
            &key_a,
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another workspace's key is not in this one"
    );
    assert_eq!(app.api.list_api_keys(&ws_b).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_workspace_is_read_renamed_and_deleted_with_everything_in_it_only_when_confirmed() {
    let app = TestApp::spawn().await;
    let (receiver, ws, _) = app.with_receiver(Reply::Status(200), json!({})).await;
    let (other, other_key) = app.workspace().await;
    let key = app.api.create_api_key(&ws).await.unwrap().key;
    let ids = app.send(&ws, "data", data_point("d1", "t")).await;
    app.dispatch_until_idle().await;
    assert_eq!(receiver.requests().len(), 1);

    let (status, read) = app.call(Method::GET, &format!("/v1/workspaces/{ws}"), &key, None).await;
    assert_eq!((status, read["name"].as_str()), (StatusCode::OK, Some("acme")));
    let renamed = app.api.rename_workspace(&ws, "plant 3").await.unwrap();
    assert_eq!(renamed.name, "plant 3");
    assert_eq!(app.api.get_workspace(&ws).await.unwrap().name, "plant 3");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/workspaces/{ws}"),
            &key,
            Some(json!({ "name": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "name");

    // Without the confirmation, nothing is deleted.
    for body in [None, Some(json!({})), Some(json!({ "confirm": other }))] {
        let (status, answer) = app
            .call(
                Method::DELETE,
                &format!("/v1/workspaces/{ws}"),
                &app.admin.clone(),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], "confirm");
        assert_eq!(answer["error"]["code"], "confirmation_required");
    }
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}"),
            &key,
            Some(json!({ "confirm": ws })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a workspace key cannot delete its workspace"
    );
    assert_eq!(app.api.get_record(&ws, &ids[0]).await.unwrap()["id"], ids[0].as_str());

    let deleted = app.api.delete_workspace(&ws).await.unwrap();
    assert_eq!(
        (deleted.webhooks, deleted.deliveries, deleted.records, deleted.keys),
        (1, 1, 1, 2)
    );
    let (status, _) = app
        .call(Method::GET, &format!("/v1/workspaces/{ws}"), &app.admin.clone(), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(Method::GET, &format!("/v1/workspaces/{ws}/webhooks"), &key, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "its keys went with it");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/v1/workspaces/{other}/webhooks"),
            &other_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "another workspace is untouched");
}

#[tokio::test]
async fn a_key_revoked_through_one_process_is_refused_by_another() {
    let Some(url) = hookd_postgres::testing::url().await else {
        return;
    };
    let schema = hookd_postgres::testing::schema_name();
    let admin = "hk_admin_revocation_test_0123456789";
    let configure = |s: &mut hookd::Settings| {
        s.database_url = Some(url.clone());
        s.database.schema = Some(schema.clone());
        s.admin_key = Some(admin.into());
    };
    let one = TestApp::spawn_with(configure).await;
    let two = TestApp::spawn_with(configure).await;
    let (ws, key) = one.workspace().await;
    let path = format!("/v1/workspaces/{ws}/webhooks");
    assert_eq!(
        two.call(Method::GET, &path, &key, None).await.0,
        StatusCode::OK,
        "remembered by two"
    );
    let id = one.api.list_api_keys(&ws).await.unwrap().remove(0).id;
    one.api.revoke_api_key(&ws, &id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while two.call(Method::GET, &path, &key, None).await.0 != StatusCode::UNAUTHORIZED {
        assert!(
            tokio::time::Instant::now() < deadline,
            "process two still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    one.stop().await;
    two.stop().await;
    hookd_postgres::testing::drop_schema(&url, &schema);
}
