//! The CLI as people use it: flags where they put them, one JSON shape, a closed pipe,
//! warnings, clearing fields, every record field, man pages, keys and workspaces.

use std::process::Stdio;

use serde_json::{Value, json};

use crate::cli::{hookd, hookd_json};
use crate::helpers::TestApp;
use crate::receiver::Reply;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `hookd` with exactly `args` (no connection flags added) and the admin key.
async fn bare(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(args)
        .env("HOOKD_KEY", &app.admin)
        .env_remove("HOOKD_URL")
        .env_remove("HOOKD_WORKSPACE")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn connection_flags_are_taken_before_and_after_the_command() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    app.workspace().await; // two workspaces: -w is needed
    let server = app.base.as_str();
    let before = bare(&app, &["--server", server, "-w", &ws, "--json", "webhooks", "list"]).await;
    let after = bare(&app, &["webhooks", "list", "--server", server, "-w", &ws, "--json"]).await;
    let mixed = bare(&app, &["--server", server, "webhooks", "list", "--json", "-w", &ws]).await;
    for output in [before, after, mixed] {
        assert!(output.status.success(), "{}", text(&output.stderr));
        let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(listed, json!([]));
    }
    let ambiguous = bare(&app, &["webhooks", "list", "--server", server]).await;
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(
        text(&ambiguous.stderr).contains("-w/--workspace"),
        "{}",
        text(&ambiguous.stderr)
    );
}

#[tokio::test]
async fn json_is_an_object_for_one_thing_and_an_array_for_a_list() {
    let app = TestApp::spawn().await;
    let (receiver, _, _) = app.with_receiver(Reply::Status(200), json!({})).await;
    let ws = hookd_json(&app, &["workspaces", "create", "--name", "shapes"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = receiver.url("/");
    let webhook = hookd_json(
        &app,
        &["webhooks", "create", "-w", &ws, "--kind", "data", "--url", &url],
    )
    .await;
    let wh = webhook["id"].as_str().unwrap().to_owned();
    hookd_json(&app, &["send", "data", "-w", &ws, "--device", "d", "--tag", "t"]).await;
    app.dispatch_until_idle().await;
    let dlv = app.deliveries(&ws).await[0]["id"].as_str().unwrap().to_owned();
    let key_id = app.api.list_api_keys(&ws).await.unwrap().len();
    assert_eq!(key_id, 0);
    let key = hookd_json(&app, &["keys", "create", "-w", &ws]).await;
    let key = key["id"].as_str().unwrap().to_owned();

    let objects: [&[&str]; 11] = [
        &["workspaces", "get", &ws],
        &["workspaces", "rename", &ws, "--name", "renamed"],
        &["webhooks", "get", "-w", &ws, &wh],
        &["webhooks", "update", "-w", &ws, &wh, "--name", "n"],
        &["webhooks", "test", "-w", &ws, &wh],
        &["webhooks", "secret", "-w", &ws, &wh],
        &["send", "event", "-w", &ws, "--type", "x"],
        &["deliveries", "show", "-w", &ws, &dlv],
        &["deliveries", "retry", "-w", &ws, &dlv],
        &["replay", "-w", &ws, "--webhook", &wh, "--since", "2000-01-01T00:00:00Z"],
        &["keys", "revoke", "-w", &ws, &key],
    ];
    for args in objects {
        let value = hookd_json(&app, args).await;
        assert!(value.is_object(), "hookd {args:?} --json printed {value}");
    }
    let lists: [&[&str]; 5] = [
        &["workspaces", "list"],
        &["webhooks", "list", "-w", &ws],
        &["deliveries", "list", "-w", &ws],
        &["keys", "list", "-w", &ws],
        &[
            "replay",
            "-w",
            &ws,
            "--webhook",
            &wh,
            "--since",
            "2000-01-01T00:00:00Z",
            "--dry-run",
        ],
    ];
    for args in lists {
        let value = hookd_json(&app, args).await;
        assert!(value.is_array(), "hookd {args:?} --json printed {value}");
    }
    let deleted = hookd_json(&app, &["webhooks", "delete", "-w", &ws, &wh]).await;
    assert_eq!(deleted, json!({ "deleted": wh }));
    let deleted = hookd_json(&app, &["workspaces", "delete", &ws, "--yes"]).await;
    assert_eq!(deleted["deleted"], ws.as_str());
    assert_eq!(deleted["webhooks"], 0, "its webhook was deleted before");
}

#[tokio::test]
async fn a_closed_pipe_ends_the_cli_quietly() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    for command in [
        vec!["man"],
        vec!["--server", &app.base, "deliveries", "list", "-w", &ws],
    ] {
        // The reader is gone before hookd writes a byte: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(&command)
            .env("HOOKD_KEY", &app.admin)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .await
            .unwrap();
        let stderr = text(&output.stderr);
        assert!(
            output.status.success(),
            "hookd {command:?}: {:?} {stderr}",
            output.status
        );
        assert!(stderr.is_empty(), "hookd {command:?} said: {stderr}");
    }
}

#[tokio::test]
async fn the_apis_warnings_are_printed_on_stderr() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let output = hookd(
        &app,
        &[
            "webhooks",
            "create",
            "-w",
            &ws,
            "--kind",
            "data",
            "--url",
            "http://10.0.0.1/hook",
        ],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("warning: "), "{stderr}");
    assert!(stderr.contains("10.0.0.1"), "{stderr}");
    assert!(
        !text(&output.stdout).contains("warning"),
        "warnings are not mixed into the output"
    );
}

#[tokio::test]
async fn an_empty_value_clears_a_field_and_a_filter_flag_replaces_only_its_filter() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let created = hookd_json(
        &app,
        &[
            "webhooks",
            "create",
            "-w",
            &ws,
            "--kind",
            "data",
            "--url",
            "http://127.0.0.1:9/",
            "--fleet",
            "f1",
            "--tag",
            "t1",
            "--label",
            "site=a",
            "--token",
            "secret-token",
            "--header",
            "X-A=1",
        ],
    )
    .await;
    let wh = created["id"].as_str().unwrap().to_owned();
    let updated = hookd_json(&app, &["webhooks", "update", "-w", &ws, &wh, "--tag", "t2"]).await;
    assert_eq!(updated["filters"]["tags"], json!(["t2"]));
    assert_eq!(updated["filters"]["fleets"], json!(["f1"]), "other filters are kept");
    assert_eq!(updated["filters"]["labels"], json!({ "site": "a" }));

    let cleared = hookd_json(
        &app,
        &[
            "webhooks", "update", "-w", &ws, &wh, "--fleet", "", "--token", "", "--header", "",
        ],
    )
    .await;
    assert_eq!(cleared["filters"]["fleets"], json!([]));
    assert_eq!(cleared["filters"]["tags"], json!(["t2"]));
    assert_eq!(cleared["has_token"], false);
    assert_eq!(cleared["headers"], json!({}));
    let bare = hookd_json(&app, &["webhooks", "update", "-w", &ws, &wh, "--clear-filters"]).await;
    assert_eq!(
        bare["filters"],
        json!({ "fleets": [], "tags": [], "event_types": [], "devices": [], "labels": {} })
    );

    // The API refuses an empty value inside a filter list, naming it.
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}"),
            &app.admin.clone(),
            Some(json!({ "filters": { "fleets": ["f1", ""] } })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "filters.fleets[1]");
}

#[tokio::test]
async fn send_sets_every_record_field() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let sent = hookd_json(
        &app,
        &[
            "send",
            "data",
            "-w",
            &ws,
            "--device",
            "dev-124",
            "--tag",
            "d1",
            "--device-name",
            "Machine 1",
            "--asset-id",
            "ast-1234",
            "--asset-name",
            "Line 1",
            "--timestamp-device",
            "2023-12-01T09:51:00Z",
            "--fleet",
            "flt-1",
            "--label",
            "site=plant-3",
            "--payload",
            r#"{"celsius":21.5}"#,
        ],
    )
    .await;
    let record = app.api.get_record(&ws, sent["ids"][0].as_str().unwrap()).await.unwrap();
    for (field, value) in [
        ("device_id", json!("dev-124")),
        ("tag", json!("d1")),
        ("device_name", json!("Machine 1")),
        ("asset_id", json!("ast-1234")),
        ("asset_name", json!("Line 1")),
        ("timestamp_device", json!("2023-12-01T09:51:00Z")),
        ("fleet_id", json!("flt-1")),
        ("labels", json!({ "site": "plant-3" })),
        ("payload", json!({ "celsius": 21.5 })),
    ] {
        assert_eq!(record[field], value, "{field}: {record}");
    }
    let sent = hookd_json(
        &app,
        &[
            "send",
            "event",
            "-w",
            &ws,
            "--type",
            "connection",
            "--device",
            "dev-1",
            "--direction",
            "d2c",
            "--ts",
            "2022-03-18T09:34:23.793Z",
        ],
    )
    .await;
    let record = app.api.get_record(&ws, sent["ids"][0].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (&record["type"], &record["direction"], &record["ts"]),
        (&json!("connection"), &json!("d2c"), &json!("2022-03-18T09:34:23.793Z"))
    );
    let bad = hookd(&app, &["send", "event", "-w", &ws, "--type", "x", "--ts", "yesterday"]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("invalid_time"), "{}", text(&bad.stderr));
}

#[tokio::test]
async fn deliveries_show_prints_the_request_body_and_each_attempts_answer() {
    let app = TestApp::spawn().await;
    let (_, ws, _) = app.with_receiver(Reply::Status(503), json!({})).await;
    app.send(&ws, "data", crate::helpers::data_point("dev-9", "t")).await;
    app.dispatch_until_idle().await;
    let dlv = app.deliveries(&ws).await[0]["id"].as_str().unwrap().to_owned();
    let output = hookd(&app, &["deliveries", "show", "-w", &ws, &dlv]).await;
    let shown = text(&output.stdout);
    for expected in [
        "request body:",
        "\"batch_id\": \"",
        "\"device_id\": \"dev-9\"",
        "status: 503",
        "response headers:",
        "content-length: 2",
        "response body (first 2 bytes kept):",
        "    ok",
        "retrying in",
    ] {
        assert!(shown.contains(expected), "no `{expected}` in:\n{shown}");
    }
}

#[tokio::test]
async fn keys_and_workspaces_are_managed_from_the_cli() {
    let app = TestApp::spawn().await;
    let (ws, key) = app.workspace().await;
    let listed = hookd_json(&app, &["keys", "list", "-w", &ws]).await;
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(listed[0]["prefix"].as_str().unwrap()));
    let table = text(&hookd(&app, &["keys", "list", "-w", &ws]).await.stdout);
    assert!(table.contains(&id) && !table.contains(&key), "{table}");
    hookd_json(&app, &["keys", "revoke", "-w", &ws, &id]).await;
    let (status, _) = app
        .call(reqwest::Method::GET, &format!("/v1/workspaces/{ws}"), &key, None)
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    let renamed = hookd_json(&app, &["workspaces", "rename", &ws, "--name", "plant 3"]).await;
    assert_eq!(renamed["name"], "plant 3");
    let refused = hookd(&app, &["workspaces", "delete", &ws]).await;
    assert_eq!(refused.status.code(), Some(2), "a delete needs --yes");
    assert!(text(&refused.stderr).contains("--yes"));
    assert_eq!(hookd_json(&app, &["workspaces", "get", &ws]).await["name"], "plant 3");
    hookd_json(&app, &["workspaces", "delete", &ws, "--yes"]).await;
    let gone = hookd(&app, &["workspaces", "get", &ws]).await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone.stderr).contains("not_found"));
}

#[tokio::test]
async fn the_man_page_covers_every_subcommand() {
    let app = TestApp::spawn().await;
    let man = text(&hookd(&app, &["man"]).await.stdout);
    let mut command = hookd::cli::command();
    command.build();
    let mut missing = Vec::new();
    fn walk(command: &clap::Command, name: &str, man: &str, missing: &mut Vec<String>) {
        if !man.contains(&format!(".TH {name} 1")) {
            missing.push(name.to_owned());
        }
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, &format!("{name}-{}", sub.get_name()), man, missing);
        }
    }
    walk(&command, "hookd", &man, &mut missing);
    assert!(missing.is_empty(), "no man page for {missing:?}");
    assert!(man.contains("\\-\\-clear\\-filters"), "leaf flags are in it");
}

#[tokio::test]
async fn send_reads_ndjson_from_stdin() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args([
            "--server", &app.base, "send", "event", "-w", &ws, "--file", "-", "--json",
        ])
        .env("HOOKD_KEY", &app.admin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ndjson = concat!(
        r#"{"type":"relay","device_id":"1_03","payload":{"value":0}}"#,
        "\n\n",
        r#"{"type":"relay","device_id":"1_04","payload":{"value":1}}"#,
        "\n"
    );
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ndjson.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    let sent: Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids = sent["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2, "blank lines are skipped");
    let second = app.api.get_record(&ws, ids[1].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (&second["type"], &second["device_id"]),
        (&json!("relay"), &json!("1_04"))
    );
}
