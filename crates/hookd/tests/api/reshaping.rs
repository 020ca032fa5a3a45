//! Sources' programs on realistic bodies: split, transform and fields, run in the sandbox;
//! hostile programs stopped; a failed request recovered by replay; drafts previewed.

use std::time::Duration;

use hookd_core::Clock;
use hookd_core::source::{Algorithm, Encoding};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

/// A data webhook taking only `src`'s records, to a new receiver.
async fn forwarded(app: &TestApp, ws: &str, src: &str, kind: &str) -> Receiver {
    let receiver = Receiver::start(Reply::Status(204)).await;
    app.webhook(
        ws,
        json!({"name": "backend", "kind": kind, "url": receiver.url("/"), "filters": {"sources": [src]}}),
    )
    .await;
    receiver
}

/// Creates a source; its id.
async fn source_id(app: &TestApp, ws: &str, body: Value) -> String {
    app.source(ws, body).await["id"].as_str().unwrap().to_owned()
}

fn delivered(receiver: &Receiver) -> Vec<Value> {
    receiver
        .requests()
        .iter()
        .flat_map(|r| r.json()["result"].as_array().cloned().unwrap_or_default())
        .collect()
}

async fn log(app: &TestApp, ws: &str, src: &str) -> Vec<Value> {
    let (_, page) = app.get(&format!("/v1/workspaces/{ws}/sources/{src}/requests")).await;
    page["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_iot_batch_is_split_into_one_data_point_per_item_with_its_device_and_fleet() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let (status, err) = app
        .post(
            &format!("/v1/workspaces/{ws}/sources"),
            json!({"name": "iot", "scheme": "none", "fields": {"labels.batch": "$batch_id"}}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("fields.labels.batch")),
        "only $headers, $query, $method and $source are bound: {err}"
    );
    let src = source_id(
        &app,
        &ws,
        json!({"name": "iot", "scheme": "token", "secret": "t", "record_type": "data",
               "split": ".batch_id as $b | .result[] | . + {batch: $b}", "transform": ".payload",
               "fields": {"device_id": ".device_id", "fleet_id": ".fleet_id", "tag": ".tag",
                          "timestamp_device": ".timestamp_device", "labels.batch": ".batch"}}),
    )
    .await;
    let receiver = forwarded(&app, &ws, &src, "data").await;
    let batch = json!({"batch_id": "b-77", "result": [
        {"timestamp_device": "2023-12-01T09:51:00Z", "tag": "d1", "device_id": "dev-124", "fleet_id": "flt-1234",
         "payload": {"ts": 1701424260, "ex": [0, 0], "C": {}}},
        {"timestamp_device": "2023-12-01T09:51:01Z", "tag": "d1", "device_id": "dev-125", "fleet_id": "flt-1234",
         "payload": {"ts": 1701424261, "ex": [1, 0], "C": {}}},
    ]});
    let (status, answer) = app.post_in(&src, &[("X-AUTH-TOKEN", "t")], &batch.to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["ids"].as_array().unwrap().len(), 2, "one record per item");
    app.dispatch_until_received(&receiver, 1).await;
    let records = delivered(&receiver);
    assert_eq!(records.len(), 2);
    for (record, (device, ts)) in records.iter().zip([("dev-124", 1701424260), ("dev-125", 1701424261)]) {
        assert_eq!(record["device_id"], device);
        assert_eq!(record["fleet_id"], "flt-1234");
        assert_eq!(record["tag"], "d1");
        assert_eq!(record["labels"]["batch"], "b-77");
        assert_eq!(record["payload"]["ts"], ts, "the item's payload, not the whole item");
    }
}

#[tokio::test]
async fn the_site_managers_inspection_event_is_verified_and_reshaped_for_a_backend() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let secret = "5a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let src = source_id(&app, &ws, json!({"name": "orbit", "scheme": "orbit", "secret": secret,
               "transform": "{robot: .data.robotNickname, mission: .data.missionName, action: .data.actionName, readings: (.data.results | map({(.key): .value}) | add), site: $headers[\"x-site\"]}",
               "fields": {"type": "\"inspection.\" + (.type | ascii_downcase)", "device_id": ".data.robotNickname"}}),
    )
    .await;
    let receiver = forwarded(&app, &ws, &src, "event").await;
    let body = json!({"type": "ACTION_COMPLETED", "data": {"runUuid": "c0b1f7b2-4f1e-4b59-9a7e-0f2d8b1c9d3e",
        "missionName": "Plant 3 gauge round", "actionName": "Read pressure gauge 7", "robotNickname": "spot-07",
        "results": [{"key": "pressure_bar", "value": 4.2}, {"key": "temperature_c", "value": 31}]}})
    .to_string();
    let t = app.clock.now();
    let key = Encoding::Hex.decode(secret).unwrap();
    let signature =
        Encoding::Hex.encode(&Algorithm::Sha256.mac(&key, &[t.to_string().as_bytes(), b".", body.as_bytes()]));
    let header = format!("t={t},v1={signature}");
    let (status, _) = app
        .post_in(&src, &[("Orbit-Signature", &header), ("X-Site", "plant-3")], &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.dispatch_until_received(&receiver, 1).await;
    let records = delivered(&receiver);
    assert_eq!(records[0]["type"], "inspection.action_completed");
    assert_eq!(records[0]["device_id"], "spot-07");
    assert_eq!(
        records[0]["payload"],
        json!({"robot": "spot-07", "mission": "Plant 3 gauge round", "action": "Read pressure gauge 7",
               "readings": {"pressure_bar": 4.2, "temperature_c": 31}, "site": "plant-3"})
    );
}

#[tokio::test]
async fn the_plcs_form_encoded_states_become_data_points_by_circuit_and_device_kind() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let src = source_id(
        &app,
        &ws,
        json!({"name": "plc", "scheme": "none", "record_type": "data", "split": ".[]",
               "fields": {"device_id": ".circuit", "tag": ".dev"}}),
    )
    .await;
    let receiver = forwarded(&app, &ws, &src, "data").await;
    let states = json!([
        {"dev": "relay", "relay_type": "digital", "circuit": "1_03", "value": 0, "pending": false, "mode": "Simple", "modes": ["Simple", "PWM"], "glob_dev_id": 2, "pwm_freq": 4800.0, "pwm_duty": 0},
        {"dev": "input", "circuit": "1_01", "value": 1, "debounce": 50, "counter_mode": "Enabled", "glob_dev_id": 1}
    ])
    .to_string();
    let form: String = url::form_urlencoded::byte_serialize(states.as_bytes()).collect();
    let (status, answer) = app
        .post_in(&src, &[("Content-Type", "application/x-www-form-urlencoded")], &form)
        .await;
    assert_eq!(
        (status, answer["ids"].as_array().map(Vec::len)),
        (StatusCode::ACCEPTED, Some(2))
    );
    app.dispatch_until_received(&receiver, 1).await;
    let records = delivered(&receiver);
    let got: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["device_id"].as_str().unwrap(), r["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("1_03", "relay"), ("1_01", "input")]);
    assert_eq!(records[0]["payload"]["pwm_freq"], 4800.0, "the whole state as payload");
}

#[tokio::test]
async fn hostile_programs_are_stopped_and_a_fixed_transform_recovers_the_requests_by_replay() {
    let app = TestApp::spawn_with(|s| s.sources.transform_timeout = Duration::from_millis(500)).await;
    let (ws, _) = app.workspace().await;
    let src = source_id(
        &app,
        &ws,
        json!({"name": "sensor", "scheme": "token", "secret": "t", "transform": "def f: f; f"}),
    )
    .await;
    let path = format!("/v1/workspaces/{ws}/sources/{src}");
    let patch = |transform: &str| json!({"transform": transform});
    let auth = [("X-AUTH-TOKEN", "t")];

    let (status, _) = app.post_in(&src, &auth, r#"{"celsius": 81.5}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED, "kept, so acknowledged");
    for hostile in ["[range(1e9)]", "def f: 1 + f; f"] {
        let (status, _) = app
            .call(Method::PATCH, &path, &app.admin.clone(), Some(patch(hostile)))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.post_in(&src, &auth, r#"{"celsius": 81.5}"#).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{hostile}");
    }
    let failed = log(&app, &ws, &src).await;
    let explanations: Vec<&str> = failed.iter().map(|r| r["explanation"].as_str().unwrap()).collect();
    assert!(
        failed
            .iter()
            .all(|r| r["outcome"] == "failed" && r["reason"] == "transform_error"),
        "{failed:?}"
    );
    assert!(explanations[2].contains("stopped after 500ms"), "{explanations:?}");
    // Building a billion-item array meets the memory limit or the time limit, whichever first.
    assert!(
        explanations[1].contains("ran out of memory (256 MiB) or stack")
            || explanations[1].contains("stopped after 500ms"),
        "{explanations:?}"
    );
    assert!(
        explanations[0].contains("ran out of memory (256 MiB) or stack"),
        "{explanations:?}"
    );

    // hookd is unharmed, and once the transform is fixed the kept requests are recovered.
    let (status, _) = app
        .call(Method::PATCH, &path, &app.admin.clone(), Some(patch("{celsius}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let first = failed[2]["id"].as_str().unwrap();
    let (status, replayed) = app.post(&format!("{path}/requests/{first}/replay"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(
        (replayed["outcome"].as_str(), replayed["reason"].as_str()),
        (Some("accepted"), None)
    );
    let record = replayed["record_ids"][0].as_str().unwrap();
    let (_, stored) = app.get(&format!("/v1/workspaces/{ws}/records/{record}")).await;
    assert_eq!(stored["payload"], json!({"celsius": 81.5}));
    assert_eq!(
        log(&app, &ws, &src).await[2]["outcome"],
        "accepted",
        "the log says so too"
    );

    let (status, _) = app.post_in(&src, &[("X-AUTH-TOKEN", "wrong")], "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refused = log(&app, &ws, &src).await[0]["id"].as_str().unwrap().to_owned();
    let (status, err) = app.post(&format!("{path}/requests/{refused}/replay"), json!({})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_replayable"))
    );
}

#[tokio::test]
async fn a_draft_is_previewed_on_the_last_requests_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let src = source_id(&app, &ws, json!({"name": "iot", "scheme": "none"})).await;
    for body in [r#"{"result": [{"id": "a"}, {"id": "b"}]}"#, r#"{"result": "oops"}"#] {
        let (status, _) = app.post_in(&src, &[], body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let path = format!("/v1/workspaces/{ws}/sources/{src}/preview");
    let draft = json!({"split": ".result[]", "fields": {"device_id": ".id"},
                       "sample": {"body": {"result": [{"id": "s"}]}}, "limit": 5});
    let (status, preview) = app.post(&path, draft).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let data = preview["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "the sample, then the two requests newest first");
    assert_eq!(data[0]["request_id"], Value::Null);
    assert_eq!(data[0]["records"][0]["device_id"], "s");
    assert!(
        data[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("transform_error: `split` cannot use \"oops\" as iterable"),
        "{}",
        data[1]
    );
    let devices: Vec<&str> = data[2]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["a", "b"]);
    let (status, err) = app.post(&path, json!({"transform": "{a:"})).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("transform"))
    );
    let (_, source) = app.get(&format!("/v1/workspaces/{ws}/sources/{src}")).await;
    assert_eq!(
        (&source["split"], &source["fields"]),
        (&Value::Null, &json!({})),
        "the source is as it was"
    );
}
