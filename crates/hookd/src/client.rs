//! A typed client for every route of the API. The CLI and the integration tests use it, so it
//! cannot drift from the server: both sides speak [`crate::model`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::*;

/// What can go wrong talking to hookd.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// hookd answered with an error (with every problem of the body, when it had several).
    #[error("{code}: {message}{}{}", field.as_ref().map(|f| format!(" (field: {f})")).unwrap_or_default(), also_text(also))]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        field: Option<String>,
        also: Vec<ErrorItem>,
    },
    /// hookd could not be reached.
    #[error("cannot reach hookd at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// hookd answered something this client does not understand.
    #[error("unexpected answer from hookd ({status}): {detail}")]
    Unexpected { status: StatusCode, detail: String },
}

pub type ClientResult<T> = Result<T, ClientError>;

/// The problems after the first, one per line.
fn also_text(also: &[ErrorItem]) -> String {
    also.iter()
        .skip(1)
        .map(|p| format!("\n  also {}: {} (field: {})", p.code, p.message, p.field))
        .collect()
}

/// Filters for [`Client::list_deliveries`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub webhook_id: Option<String>,
    pub state: Option<DeliveryState>,
    pub limit: Option<usize>,
    pub after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    /// A client for the hookd at `base` (e.g. `http://127.0.0.1:8080`) using `key`.
    pub fn new(base: &str, key: &str) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hookd-client/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("a default HTTP client builds");
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> ClientResult<T> {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> ClientResult<T> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(|source| ClientError::Unreachable {
            url: self.base.clone(),
            source,
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|source| ClientError::Unreachable {
            url: self.base.clone(),
            source,
        })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api {
                    status,
                    code: body.error.code,
                    message: body.error.message,
                    field: body.error.field,
                    also: body.error.errors,
                },
                Err(_) => ClientError::Unexpected {
                    status,
                    detail: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
                },
            });
        }
        // An empty success (204) reads as JSON null.
        let bytes = if bytes.is_empty() { "null".into() } else { bytes };
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            status,
            detail: e.to_string(),
        })
    }

    const NO_BODY: Option<&'static ()> = None;

    pub async fn health(&self) -> ClientResult<Health> {
        self.call(Method::GET, "/healthz", Self::NO_BODY).await
    }

    pub async fn openapi(&self) -> ClientResult<serde_json::Value> {
        self.call(Method::GET, "/openapi.json", Self::NO_BODY).await
    }

    pub async fn create_workspace(&self, name: &str) -> ClientResult<Workspace> {
        let body = WorkspaceIn { name: name.to_owned() };
        self.call(Method::POST, "/v1/workspaces", Some(&body)).await
    }

    pub async fn get_workspace(&self, ws: &str) -> ClientResult<Workspace> {
        self.call(Method::GET, &format!("/v1/workspaces/{ws}"), Self::NO_BODY)
            .await
    }

    pub async fn rename_workspace(&self, ws: &str, name: &str) -> ClientResult<Workspace> {
        let body = WorkspacePatch {
            name: Some(name.to_owned()),
            presence: None,
        };
        self.call(Method::PATCH, &format!("/v1/workspaces/{ws}"), Some(&body))
            .await
    }

    /// Sets how long the workspace's devices may be silent before they are offline
    /// (`None`: no presence events).
    pub async fn set_presence(&self, ws: &str, offline_after: Option<&str>) -> ClientResult<Workspace> {
        let body = WorkspacePatch {
            name: None,
            presence: Some(Presence {
                offline_after: offline_after.map(str::to_owned),
            }),
        };
        self.call(Method::PATCH, &format!("/v1/workspaces/{ws}"), Some(&body))
            .await
    }

    /// One page of the workspace's devices, after the device id `after`.
    pub async fn list_devices(&self, ws: &str, state: Option<&str>, after: Option<&str>) -> ClientResult<DevicePage> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        if let Some(after) = after {
            query.append_pair("after", after);
        }
        let query = query.finish();
        let path = format!(
            "/v1/workspaces/{ws}/devices{}{query}",
            if query.is_empty() { "" } else { "?" }
        );
        self.call(Method::GET, &path, Self::NO_BODY).await
    }

    /// Deletes the workspace and everything in it.
    pub async fn delete_workspace(&self, ws: &str) -> ClientResult<WorkspaceDeleted> {
        let body = WorkspaceDeleteIn { confirm: ws.to_owned() };
        self.call(Method::DELETE, &format!("/v1/workspaces/{ws}"), Some(&body))
            .await
    }

    pub async fn list_api_keys(&self, ws: &str) -> ClientResult<Vec<ApiKey>> {
        Ok(self
            .call::<List<ApiKey>>(Method::GET, &format!("/v1/workspaces/{ws}/keys"), Self::NO_BODY)
            .await?
            .data)
    }

    /// Revokes a key; answers what was revoked.
    pub async fn revoke_api_key(&self, ws: &str, key: &str) -> ClientResult<Revoked> {
        self.call::<()>(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}/keys/{key}"),
            Self::NO_BODY,
        )
        .await?;
        Ok(Revoked {
            revoked: key.to_owned(),
        })
    }

    /// A record as stored.
    pub async fn get_record(&self, ws: &str, rec: &str) -> ClientResult<serde_json::Value> {
        self.call(
            Method::GET,
            &format!("/v1/workspaces/{ws}/records/{rec}"),
            Self::NO_BODY,
        )
        .await
    }

    pub async fn list_workspaces(&self) -> ClientResult<Vec<Workspace>> {
        Ok(self
            .call::<List<Workspace>>(Method::GET, "/v1/workspaces", Self::NO_BODY)
            .await?
            .data)
    }

    pub async fn create_api_key(&self, ws: &str) -> ClientResult<ApiKeyCreated> {
        self.call(Method::POST, &format!("/v1/workspaces/{ws}/keys"), Self::NO_BODY)
            .await
    }

    /// Creates a webhook from a [`WebhookIn`] (or any body of that shape).
    pub async fn create_webhook(&self, ws: &str, webhook: &(impl Serialize + ?Sized)) -> ClientResult<WebhookCreated> {
        self.call(Method::POST, &format!("/v1/workspaces/{ws}/webhooks"), Some(webhook))
            .await
    }

    pub async fn list_webhooks(&self, ws: &str) -> ClientResult<Vec<Webhook>> {
        Ok(self
            .call::<List<Webhook>>(Method::GET, &format!("/v1/workspaces/{ws}/webhooks"), Self::NO_BODY)
            .await?
            .data)
    }

    pub async fn get_webhook(&self, ws: &str, wh: &str) -> ClientResult<Webhook> {
        self.call(
            Method::GET,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}"),
            Self::NO_BODY,
        )
        .await
    }

    /// Changes the fields a [`WebhookPatch`] (or any body of that shape) names.
    pub async fn update_webhook(&self, ws: &str, wh: &str, patch: &(impl Serialize + ?Sized)) -> ClientResult<Webhook> {
        self.call(
            Method::PATCH,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}"),
            Some(patch),
        )
        .await
    }

    pub async fn delete_webhook(&self, ws: &str, wh: &str) -> ClientResult<()> {
        self.call(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}"),
            Self::NO_BODY,
        )
        .await
    }

    pub async fn read_secret(&self, ws: &str, wh: &str) -> ClientResult<Secret> {
        self.call(
            Method::GET,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}/secret"),
            Self::NO_BODY,
        )
        .await
    }

    /// Rotates the secret, to `secret` or a generated one.
    pub async fn rotate_secret(&self, ws: &str, wh: &str, secret: Option<&str>) -> ClientResult<Secret> {
        let body = RotateIn {
            secret: secret.map(str::to_owned),
        };
        self.call(
            Method::POST,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}/secret/rotate"),
            Some(&body),
        )
        .await
    }

    pub async fn test_webhook(&self, ws: &str, wh: &str) -> ClientResult<TestResult> {
        self.call(
            Method::POST,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}/test"),
            Self::NO_BODY,
        )
        .await
    }

    pub async fn replay(&self, ws: &str, wh: &str, replay: &ReplayIn) -> ClientResult<ReplayResult> {
        self.call(
            Method::POST,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}/replay"),
            Some(replay),
        )
        .await
    }

    /// Ingests data points: one object or an array ([`DataBody`] or any body of that shape).
    pub async fn send_data(
        &self,
        ws: &str,
        body: &(impl Serialize + ?Sized),
        idempotency_key: Option<&str>,
    ) -> ClientResult<Accepted> {
        self.ingest(ws, "data", body, idempotency_key).await
    }

    /// Ingests events: one object or an array ([`EventBody`] or any body of that shape).
    pub async fn send_events(
        &self,
        ws: &str,
        body: &(impl Serialize + ?Sized),
        idempotency_key: Option<&str>,
    ) -> ClientResult<Accepted> {
        self.ingest(ws, "events", body, idempotency_key).await
    }

    async fn ingest(
        &self,
        ws: &str,
        kind: &str,
        body: &(impl Serialize + ?Sized),
        key: Option<&str>,
    ) -> ClientResult<Accepted> {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.call_with(
            Method::POST,
            &format!("/v1/workspaces/{ws}/{kind}"),
            Some(body),
            &headers,
        )
        .await
    }

    pub async fn list_deliveries(&self, ws: &str, filter: &DeliveryFilter) -> ClientResult<DeliveryPage> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(webhook) = &filter.webhook_id {
            query.append_pair("webhook_id", webhook);
        }
        if let Some(state) = filter.state {
            query.append_pair("state", state.as_str());
        }
        if let Some(limit) = filter.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(after) = &filter.after {
            query.append_pair("after", after);
        }
        let query = query.finish();
        let path = format!(
            "/v1/workspaces/{ws}/deliveries{}{query}",
            if query.is_empty() { "" } else { "?" }
        );
        self.call(Method::GET, &path, Self::NO_BODY).await
    }

    pub async fn get_delivery(&self, ws: &str, dlv: &str) -> ClientResult<DeliveryDetail> {
        self.call(
            Method::GET,
            &format!("/v1/workspaces/{ws}/deliveries/{dlv}"),
            Self::NO_BODY,
        )
        .await
    }

    pub async fn retry_delivery(&self, ws: &str, dlv: &str) -> ClientResult<Delivery> {
        self.call(
            Method::POST,
            &format!("/v1/workspaces/{ws}/deliveries/{dlv}/retry"),
            Self::NO_BODY,
        )
        .await
    }
}

/// Sources: CRUD, the request log, replay and preview.
impl Client {
    pub async fn create_source(&self, ws: &str, source: &(impl Serialize + ?Sized)) -> ClientResult<Source> {
        self.call(Method::POST, &format!("/v1/workspaces/{ws}/sources"), Some(source))
            .await
    }

    pub async fn list_sources(&self, ws: &str) -> ClientResult<Vec<Source>> {
        Ok(self
            .call::<List<Source>>(Method::GET, &format!("/v1/workspaces/{ws}/sources"), Self::NO_BODY)
            .await?
            .data)
    }

    pub async fn get_source(&self, ws: &str, src: &str) -> ClientResult<Source> {
        self.call(
            Method::GET,
            &format!("/v1/workspaces/{ws}/sources/{src}"),
            Self::NO_BODY,
        )
        .await
    }

    pub async fn update_source(&self, ws: &str, src: &str, patch: &(impl Serialize + ?Sized)) -> ClientResult<Source> {
        self.call(
            Method::PATCH,
            &format!("/v1/workspaces/{ws}/sources/{src}"),
            Some(patch),
        )
        .await
    }

    pub async fn delete_source(&self, ws: &str, src: &str) -> ClientResult<()> {
        self.call(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}/sources/{src}"),
            Self::NO_BODY,
        )
        .await
    }

    /// A page of the source's request log, newest first (`outcome`: accepted, rejected, failed).
    pub async fn list_source_requests(
        &self,
        ws: &str,
        src: &str,
        outcome: Option<&str>,
        limit: usize,
    ) -> ClientResult<SourceRequestPage> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &limit.to_string());
        if let Some(outcome) = outcome {
            query.append_pair("outcome", outcome);
        }
        let path = format!("/v1/workspaces/{ws}/sources/{src}/requests?{}", query.finish());
        self.call(Method::GET, &path, Self::NO_BODY).await
    }

    pub async fn replay_source_request(&self, ws: &str, src: &str, req: &str) -> ClientResult<SourceRequest> {
        self.call(
            Method::POST,
            &format!("/v1/workspaces/{ws}/sources/{src}/requests/{req}/replay"),
            Self::NO_BODY,
        )
        .await
    }

    pub async fn preview_source(
        &self,
        ws: &str,
        src: &str,
        draft: &(impl Serialize + ?Sized),
    ) -> ClientResult<Vec<Preview>> {
        Ok(self
            .call::<List<Preview>>(
                Method::POST,
                &format!("/v1/workspaces/{ws}/sources/{src}/preview"),
                Some(draft),
            )
            .await?
            .data)
    }
}
