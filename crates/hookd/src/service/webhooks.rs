//! Webhooks: create (within the workspace's limit, atomically), change, delete, the signing
//! secret and its rotation, the test send, replay.

use hookd_core::ValidationError;
use hookd_core::id::{DeliveryId, WebhookId, new_id};
use hookd_core::record::{Kind, RecordIn};
use hookd_core::signature::{generate_secret, secret_key};
use hookd_core::store::{Attempt, Claimed, DeliveryState, IngestRequest, NewDelivery, NewRecord, ReplayQuery};
use hookd_core::timefmt::{parse_rfc3339, rfc3339};
use hookd_core::validation::Fields;
use hookd_core::webhook::{PreviousSecret, TlsSpec, Webhook, WebhookLimits, WebhookSpec, apply_patch};
use serde_json::{Value, json};

use super::{Service, ServiceError, ServiceResult};
use crate::dispatch::network::warning_for;

/// A webhook as created or changed, with what is worth knowing about it now (a URL the SSRF
/// policy blocks, TLS verification turned off).
#[derive(Debug, Clone)]
pub struct Changed {
    pub webhook: Webhook,
    pub warnings: Vec<String>,
}

/// A test send's delivery and its one attempt.
#[derive(Debug, Clone)]
pub struct Tested {
    pub delivery_id: DeliveryId,
    pub attempt: Attempt,
    /// The request's headers as sent, the token's value hidden.
    pub request_headers: Vec<(String, String)>,
}

/// A secret given by the client, or a new one.
fn secret_from(body: &Value) -> Result<String, ValidationError> {
    let fields = Fields::new(body, "")?;
    match fields.opt_str("secret")? {
        None => Ok(generate_secret()),
        Some(s) => secret_key(s)
            .map(|_| s.to_owned())
            .map_err(|m| ValidationError::new("invalid_secret", "secret", m)),
    }
}

/// What is risky or useless in a webhook's TLS settings; a disabled check is also logged.
fn tls_warnings(webhook: &Webhook) -> Vec<String> {
    let tls = &webhook.spec.tls;
    let mut warnings = Vec::new();
    if tls.skip_verify {
        tracing::warn!(webhook = %webhook.id, "TLS certificate verification is off for this webhook (tls.verify = false)");
        warnings.push("tls.verify is false: any certificate is accepted, so anyone between hookd and the receiver can read and change its deliveries".to_owned());
    }
    if !tls.is_default() && webhook.spec.url.scheme() != "https" {
        warnings.push("the tls settings apply to https URLs only; this webhook's URL is http".to_owned());
    }
    warnings
}

/// A `since`/`until` time of a replay body.
fn time_field(fields: &Fields<'_>, key: &str) -> Result<Option<i64>, ValidationError> {
    fields
        .opt_str(key)?
        .map(|s| {
            parse_rfc3339(s).ok_or_else(|| {
                ValidationError::new(
                    "invalid_time",
                    key,
                    format!("`{s}` is not an RFC 3339 time, e.g. 2024-03-01T10:00:00Z"),
                )
            })
        })
        .transpose()
}

impl Service {
    fn limits(&self) -> WebhookLimits {
        WebhookLimits {
            max_timeout: self.inner.parts.settings.delivery.max_timeout,
        }
    }

    /// Refuses TLS settings no client can be made with, naming the field at fault.
    fn check_tls(&self, spec: &WebhookSpec) -> Result<(), ValidationError> {
        let tls = &spec.tls;
        if tls.is_default() {
            return Ok(());
        }
        let only_ca = TlsSpec {
            ca: tls.ca.clone(),
            ..Default::default()
        };
        for (field, candidate) in [("tls.ca", &only_ca), ("tls.client_cert", tls)] {
            self.inner
                .parts
                .dispatcher
                .check_tls(candidate)
                .map_err(|why| ValidationError::new("invalid_tls", field, why))?;
        }
        Ok(())
    }

    async fn changed(&self, webhook: Webhook) -> Changed {
        let mut warnings: Vec<String> = warning_for(&self.inner.parts.network, &webhook.spec.url)
            .await
            .into_iter()
            .collect();
        warnings.extend(tls_warnings(&webhook));
        Changed { webhook, warnings }
    }

    pub async fn webhook(&self, workspace_id: &str, id: &str) -> ServiceResult<Webhook> {
        self.store()
            .get_webhook(workspace_id, id)
            .await?
            .ok_or(ServiceError::NotFound("webhook"))
    }

    pub async fn list_webhooks(&self, workspace_id: &str) -> ServiceResult<Vec<Webhook>> {
        Ok(self.store().list_webhooks(workspace_id).await?)
    }

    /// Creates a webhook from a create body, with the secret given or a new one.
    pub async fn create_webhook(&self, workspace_id: &str, body: &Value) -> ServiceResult<Changed> {
        let spec = WebhookSpec::parse(body, self.limits())?;
        self.check_tls(&spec)?;
        let now = self.now();
        let webhook = Webhook {
            id: WebhookId::generate(),
            workspace_id: workspace_id.to_owned(),
            spec,
            secret: secret_from(body)?,
            previous_secrets: Vec::new(),
            disabled_reason: None,
            created_at: now,
            updated_at: now,
            health: Default::default(),
        };
        let max = self.inner.parts.settings.api.max_webhooks_per_workspace;
        if !self.store().insert_webhook(&webhook, max).await? {
            return Err(ServiceError::Conflict {
                code: "limit_reached",
                message: format!(
                    "this workspace has {max} webhooks, the most allowed (api.max_webhooks_per_workspace)"
                ),
            });
        }
        self.webhooks_changed(workspace_id);
        Ok(self.changed(webhook).await)
    }

    /// Replaces the fields a PATCH body names. Enabling a webhook clears its disabled reason
    /// and lets its held deliveries go.
    pub async fn update_webhook(&self, workspace_id: &str, id: &str, patch: &Value) -> ServiceResult<Changed> {
        let mut webhook = self.webhook(workspace_id, id).await?;
        let was_enabled = webhook.spec.enabled;
        webhook.spec = apply_patch(&webhook.spec, patch, self.limits())?;
        self.check_tls(&webhook.spec)?;
        let now = self.now();
        match (was_enabled, webhook.spec.enabled) {
            (_, true) => webhook.disabled_reason = None,
            (true, false) => webhook.disabled_reason = Some(format!("disabled through the API at {}", rfc3339(now))),
            (false, false) => {}
        }
        webhook.updated_at = now;
        self.store().update_webhook(&webhook).await?;
        self.webhooks_changed(workspace_id);
        if webhook.spec.enabled && !was_enabled {
            self.inner.parts.dispatcher.wake(); // its held deliveries may go now
        }
        Ok(self.changed(webhook).await)
    }

    /// Deletes a webhook and its deliveries.
    pub async fn delete_webhook(&self, workspace_id: &str, id: &str) -> ServiceResult<()> {
        self.store()
            .delete_webhook(workspace_id, id)
            .await
            .map_err(|e| match e {
                hookd_core::store::StoreError::NotFound => ServiceError::NotFound("webhook"),
                other => other.into(),
            })?;
        self.webhooks_changed(workspace_id);
        Ok(())
    }

    /// Replaces the secret with the one a rotate body gives, or a new one. The old secret keeps
    /// signing for `delivery.secret_rotation_grace`.
    pub async fn rotate_secret(&self, workspace_id: &str, id: &str, body: &Value) -> ServiceResult<Webhook> {
        let mut webhook = self.webhook(workspace_id, id).await?;
        Fields::new(body, "")?.deny_unknown(&["secret"])?;
        let secret = secret_from(body)?;
        let now = self.now();
        let grace = self.inner.parts.settings.delivery.secret_rotation_grace.as_millis() as i64;
        let old = std::mem::replace(&mut webhook.secret, secret);
        webhook.previous_secrets.retain(|p| p.expires_at > now);
        webhook.previous_secrets.push(PreviousSecret {
            secret: old,
            expires_at: now + grace,
        });
        webhook.updated_at = now;
        self.store().update_webhook(&webhook).await?;
        self.webhooks_changed(workspace_id);
        Ok(webhook)
    }

    /// One test attempt now, outside the queue, with a record of the webhook's kind (an event
    /// of type `TEST`, or a data point tagged `TEST` from device `hookd-test`). The delivery
    /// is stored and logged like any other, and ends delivered or failed: never retried.
    pub async fn test_webhook(&self, workspace_id: &str, id: &str) -> ServiceResult<Tested> {
        let webhook = self.webhook(workspace_id, id).await?;
        let now = self.now();
        let payload =
            json!({ "webhook_id": webhook.id, "message": "This is a test sent by hookd.", "sent_at": rfc3339(now) });
        let record = match webhook.spec.kind {
            Kind::Event => RecordIn::event("TEST", payload),
            Kind::Data => RecordIn::data_point("hookd-test", "TEST", payload),
        };
        let record_id = new_id("rec");
        let body = record.stamp(&record_id, workspace_id, &rfc3339(now));
        let lease = self.inner.parts.dispatcher.lease(now);
        let delivery = NewDelivery {
            id: DeliveryId::generate(),
            workspace_id: workspace_id.to_owned(),
            webhook_id: webhook.id.clone(),
            record_ids: vec![record_id.clone()],
            created_at: now,
            due_at: now,
            ordering_key: None,
            coalescing: None,
            lease: Some(lease.clone()),
        };
        // Written on its own (not through group commit, which matches records to webhooks):
        // this delivery is decided already, and leased to the attempt made below.
        let request = IngestRequest {
            door: None,
            devices: Vec::new(),
            workspace_id: workspace_id.to_owned(),
            idempotency: None,
            records: vec![NewRecord {
                id: record_id,
                workspace_id: workspace_id.to_owned(),
                kind: webhook.spec.kind,
                body: body.clone(),
                created_at: now,
            }],
            deliveries: vec![delivery.clone()],
        };
        self.store().commit_ingest(&[request]).await?;
        let claimed = Claimed::created(&delivery, lease, webhook.into(), vec![body]);
        let (attempt, request_headers) = self.inner.parts.dispatcher.deliver_once(claimed).await;
        Ok(Tested {
            delivery_id: delivery.id,
            attempt,
            request_headers,
        })
    }

    /// Makes the webhook's deliveries created in `[since, until)` and in one of `states`
    /// (default dead and failed) pending again, due now, on a fresh retry schedule (with
    /// `dry_run`, only counts them). Returns how many, and `since`.
    pub async fn replay(&self, workspace_id: &str, id: &str, body: &Value) -> ServiceResult<(u64, i64)> {
        self.webhook(workspace_id, id).await?;
        let fields = Fields::new(body, "")?;
        fields.deny_unknown(&["since", "until", "states", "dry_run"])?;
        let dry_run = fields.opt_bool("dry_run")?.unwrap_or(false);
        let since = time_field(&fields, "since")?.ok_or_else(|| fields.missing("since"))?;
        let until = time_field(&fields, "until")?.unwrap_or(i64::MAX);
        let states = match fields.value("states") {
            None => vec![DeliveryState::Dead, DeliveryState::Failed],
            Some(_) => fields
                .str_list("states")?
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    DeliveryState::parse(s).ok_or_else(|| {
                        ValidationError::new(
                            "invalid_value",
                            format!("states[{i}]"),
                            format!("unknown state `{s}`; expected pending, delivered, failed or dead"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let now = self.now();
        let query = ReplayQuery {
            webhook_id: id.into(),
            since,
            until,
            states,
            note: format!(
                "replayed at {}: due now, with its full retry schedule again",
                rfc3339(now)
            ),
            dry_run,
        };
        let replayed = self.store().replay(workspace_id, &query, now).await?;
        if replayed > 0 && !dry_run {
            self.inner.parts.dispatcher.wake();
        }
        Ok((replayed, since))
    }
}
