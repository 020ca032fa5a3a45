//! The test harness: a real hookd on port 0 with a temp SQLite file and a manual clock.
//! The dispatcher is stepped, not looped, so tests are deterministic.
//!
//! With `HOOKD_TEST_BACKEND=postgres` the same suite runs on PostgreSQL
//! (`HOOKD_TEST_POSTGRES_URL`), each data directory with a schema of its own, kept across
//! restarts on that directory.

use std::sync::Arc;
use std::time::Duration;

use hookd::client::{Client, DeliveryFilter};
use hookd::config::Overrides;
use hookd::dispatch::Dispatcher;
use hookd::{App, Dispatch, Settings};
use hookd_core::clock::{Clock, ManualClock, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub admin: String,
    /// The typed client the CLI uses, with the admin key.
    pub api: Client,
    pub store: Arc<dyn hookd_core::store::Store>,
    pub clock: ManualClock,
    pub dispatcher: Dispatcher,
    /// The presence sweep, stepped by the tests.
    pub presence: hookd::presence::Presence,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    pub dir: Arc<tempfile::TempDir>,
    /// The test is watched while its app lives (`watchdog`: a per-test time limit).
    _watch: crate::watchdog::Watch,
}

/// Test settings: port 0, a fresh data dir, loopback receivers allowed.
pub fn settings(dir: &std::path::Path) -> Settings {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    let mut settings = Settings::load(None, &overrides).expect("default settings load");
    // Receivers are on loopback; nothing a test creates may ever be sent elsewhere.
    settings.delivery.allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    settings.delivery.restrict_to_networks = vec!["127.0.0.0/8".parse().unwrap()];
    // Sources' programs run in workers of the hookd binary (this one is a test harness).
    settings.sources.worker_program = Some(env!("CARGO_BIN_EXE_hookd").into());
    settings
}

/// The PostgreSQL URL when the suite runs on PostgreSQL (`HOOKD_TEST_BACKEND=postgres`).
fn postgres_backend() -> Option<String> {
    if std::env::var("HOOKD_TEST_BACKEND").ok().as_deref() != Some("postgres") {
        return None;
    }
    let url =
        std::env::var("HOOKD_TEST_POSTGRES_URL").expect("HOOKD_TEST_BACKEND=postgres needs HOOKD_TEST_POSTGRES_URL");
    Some(url)
}

/// Settings for the PostgreSQL backend: the test database, a schema per data directory (the
/// same one again when hookd restarts on it), a fixed admin key as PostgreSQL needs.
fn on_postgres(settings: &mut Settings, url: &str, dir: &std::path::Path) {
    let marker = dir.join("postgres-schema");
    let schema = std::fs::read_to_string(&marker).unwrap_or_else(|_| {
        let schema = hookd_postgres::testing::schema_name();
        std::fs::write(&marker, &schema).unwrap();
        schema
    });
    settings.database_url = Some(url.to_owned());
    settings.database.schema = Some(schema);
    settings.database.max_connections = 4;
    settings.admin_key = Some("hk_admin_suite_on_postgres_0123456789".into());
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::spawn_in(dir, configure, Dispatch::Manual).await
    }

    /// Starts hookd on an existing data dir (for restarts).
    pub async fn spawn_in(
        dir: Arc<tempfile::TempDir>,
        configure: impl FnOnce(&mut Settings),
        dispatch: Dispatch,
    ) -> Self {
        let mut settings = settings(dir.path());
        if let Some(url) = postgres_backend() {
            hookd_postgres::testing::drop_leftovers(&url).await;
            on_postgres(&mut settings, &url, dir.path());
        }
        configure(&mut settings);
        let clock = ManualClock::starting_at(SystemClock.now());
        let app = App::build(settings, Arc::new(clock.clone()))
            .await
            .expect("hookd starts");
        let base = format!("http://{}", app.local_addr());
        let admin = app.admin_key().key.clone();
        let dispatcher = app.dispatcher();
        let presence = app.presence();
        let store = app.store();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.serve(shutdown.clone(), dispatch));
        let api = Client::new(&base, &admin);
        Self {
            base,
            admin,
            api,
            store,
            clock,
            dispatcher,
            presence,
            http: reqwest::Client::new(),
            shutdown,
            task: Some(task),
            dir,
            _watch: crate::watchdog::watch(),
        }
    }

    /// The PostgreSQL schema of this app's data directory, when the suite runs on PostgreSQL.
    fn postgres_schema(&self) -> Option<(String, String)> {
        let url = postgres_backend()?;
        let schema = std::fs::read_to_string(self.dir.path().join("postgres-schema")).ok()?;
        Some((url, schema))
    }

    /// Stops hookd gracefully and waits until it has.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Steps the dispatcher until nothing is due, the operational events its attempts
    /// caused included. Returns how many attempts were made.
    pub async fn dispatch_until_idle(&self) -> usize {
        let mut total = 0;
        loop {
            let n = self.dispatcher.tick().await.expect("tick");
            self.dispatcher.events_settled().await;
            if n == 0 && self.dispatcher.tick().await.expect("tick") == 0 {
                return total;
            }
            total += n;
        }
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("hookd answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, &self.admin.clone(), Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, &self.admin.clone(), None).await
    }

    /// A new workspace and one of its API keys.
    pub async fn workspace(&self) -> (String, String) {
        let ws = self.api.create_workspace("acme").await.expect("workspace created");
        let key = self.api.create_api_key(&ws.id).await.expect("key created");
        (ws.id, key.key)
    }

    /// Creates a webhook, asserting success; returns it (with its secret).
    pub async fn webhook(&self, ws: &str, body: Value) -> Value {
        let created = self
            .api
            .create_webhook(ws, &body)
            .await
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        serde_json::to_value(created).unwrap()
    }

    /// Posts `body` as it is, with the admin key, to `/v1/workspaces/{ws}/{kind}`.
    pub async fn ingest_text(&self, ws: &str, kind: &str, content_type: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/workspaces/{ws}/{kind}", self.base))
            .bearer_auth(&self.admin)
            .header("Content-Type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("hookd answers")
    }

    pub async fn ingest(&self, ws: &str, kind: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/v1/workspaces/{ws}/{kind}"), body).await
    }

    /// Ingests, asserting 202; returns the record ids.
    pub async fn send(&self, ws: &str, kind: &str, body: Value) -> Vec<String> {
        let sent = match kind {
            "data" => self.api.send_data(ws, &body, None).await,
            _ => self.api.send_events(ws, &body, None).await,
        };
        sent.unwrap_or_else(|e| panic!("{body}: {e}")).ids
    }

    pub async fn deliveries(&self, ws: &str) -> Vec<Value> {
        let page = self
            .api
            .list_deliveries(ws, &DeliveryFilter::default())
            .await
            .expect("deliveries listed");
        page.data.iter().map(|d| serde_json::to_value(d).unwrap()).collect()
    }

    pub async fn delivery(&self, ws: &str, id: &str) -> Value {
        serde_json::to_value(self.api.get_delivery(ws, id).await.expect("delivery read")).unwrap()
    }
}

pub fn data_point(device: &str, tag: &str) -> Value {
    json!({ "device_id": device, "tag": tag, "payload": { "v": 1 } })
}

impl TestApp {
    /// The manual clock in Unix seconds.
    pub fn clock_secs(&self) -> i64 {
        self.clock.now() / 1000
    }
}

impl TestApp {
    /// Steps the dispatcher until `receiver` has `n` requests (operational events are ingested
    /// in the background, so they may need a moment), with a deadline.
    pub async fn dispatch_until_received(&self, receiver: &crate::receiver::Receiver, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while receiver.requests().len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} requests, got {}",
                receiver.requests().len()
            );
            self.dispatch_until_idle().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl TestApp {
    /// A new workspace with one data webhook (its spec extended by `extra`) to a new receiver
    /// answering `reply`. Returns the receiver, the workspace id and the webhook.
    pub async fn with_receiver(
        &self,
        reply: crate::receiver::Reply,
        extra: Value,
    ) -> (crate::receiver::Receiver, String, Value) {
        let receiver = crate::receiver::Receiver::start(reply).await;
        let (ws, webhook) = self.workspace_with_webhook(&receiver.url("/"), extra).await;
        (receiver, ws, webhook)
    }

    /// A new workspace with one data webhook to `url` (its spec extended by `extra`).
    pub async fn workspace_with_webhook(&self, url: &str, extra: Value) -> (String, Value) {
        let (ws, _) = self.workspace().await;
        let mut spec = json!({ "name": "w", "kind": "data", "url": url });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let webhook = self.webhook(&ws, spec).await;
        (ws, webhook)
    }
}

/// What `/metrics` says now.
pub async fn scrape(app: &TestApp) -> String {
    let response = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, exactly as rendered), or 0.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

impl Drop for TestApp {
    /// The last app on a data directory drops its PostgreSQL schema (what a failed test leaves
    /// is dropped by the next run: the schema names the process).
    fn drop(&mut self) {
        if std::sync::Arc::strong_count(&self.dir) == 1 {
            if let Some((url, schema)) = self.postgres_schema() {
                hookd_postgres::testing::drop_schema(&url, &schema);
            }
        }
    }
}

impl TestApp {
    /// Posts `body` to a source's door with these headers; the status and the answer.
    pub async fn post_in(&self, src: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/in/{src}", self.base)).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("hookd answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Creates a source, asserting success; returns it.
    pub async fn source(&self, ws: &str, body: Value) -> Value {
        let (status, created) = self.post(&format!("/v1/workspaces/{ws}/sources"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }
}

impl TestApp {
    /// `n` pending deliveries of `webhook`, one record each, written straight to the store as
    /// group commit writes them (to fill a database fast).
    pub async fn seed_pending(&self, ws: &str, webhook: &str, n: usize) {
        use hookd_core::clock::Clock;
        use hookd_core::store::{IngestRequest, NewDelivery, NewRecord};
        const BATCH: usize = 20_000;
        let now = self.clock.now();
        let body = json!({"device_id": "dev-1", "tag": "t", "fleet_id": "flt-1", "payload": {"C": {"celsius": 21.5}, "pad": "x".repeat(200)}}).to_string();
        for chunk in 0..n.div_ceil(BATCH) {
            let size = BATCH.min(n - chunk * BATCH);
            let mut request = IngestRequest {
                door: None,
                devices: Vec::new(),
                workspace_id: ws.to_owned(),
                idempotency: None,
                records: Vec::with_capacity(size),
                deliveries: Vec::with_capacity(size),
            };
            for _ in 0..size {
                let record = hookd_core::id::new_id("rec");
                request.records.push(NewRecord {
                    id: record.clone(),
                    workspace_id: ws.to_owned(),
                    kind: hookd_core::record::Kind::Data,
                    body: body.clone(),
                    created_at: now,
                });
                request.deliveries.push(NewDelivery {
                    id: hookd_core::id::DeliveryId::generate(),
                    workspace_id: ws.to_owned(),
                    webhook_id: webhook.into(),
                    record_ids: vec![record],
                    created_at: now,
                    due_at: now,
                    ordering_key: None,
                    coalescing: None,
                    lease: None,
                });
            }
            self.store.commit_ingest(&[request]).await.unwrap();
        }
    }
}
