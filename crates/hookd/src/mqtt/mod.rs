//! MQTT ingest: with `[mqtt]` configured, `hookd serve` subscribes to a broker (MQTT 5) and
//! ingests every message as a record, through the same service as the HTTP door.
//!
//! A message (QoS 1) is acknowledged to the broker only after its record is committed, in
//! the order the messages came: the session is persistent, so a crash in between makes the
//! broker send it again (at least once: a crash after the commit and before the
//! acknowledgement ingests it twice). A commit that fails is tried again, with backoff, until
//! it succeeds or hookd stops. A message that cannot be a record (no device for a data point)
//! is acknowledged and counted as `invalid`, with the reason logged: sending it again would not
//! change it. The connection is made again with backoff; `/readyz` and metrics say how it is.
//! On PostgreSQL the processes share the subscription (`$share/hookd/<topic>`).

mod settings;
mod topic;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use hookd_core::record::{Kind, parse_body};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio_util::sync::CancellationToken;

pub use settings::MqttSettings;
use topic::TopicPattern;

use crate::metrics::Metrics;
use crate::planner::Origin;
use crate::service::{Service, ServiceError};

/// Messages being committed at once; beyond them the broker's delivery waits.
const IN_FLIGHT: usize = 256;
/// How long the broker keeps the session (and the messages not yet acknowledged) while hookd
/// is away.
const SESSION_EXPIRY_SECS: u32 = 7 * 24 * 3600;
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How the connection to the broker is, for `/readyz`. Cheap to clone.
#[derive(Clone, Default)]
pub struct Status(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    connected: bool,
    last_error: Option<String>,
}

impl Status {
    /// `Ok` while connected; else why not.
    pub fn check(&self) -> Result<(), String> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match (&state.connected, &state.last_error) {
            (true, _) => Ok(()),
            (false, Some(error)) => Err(format!("not connected to the MQTT broker: {error}")),
            (false, None) => Err("connecting to the MQTT broker".into()),
        }
    }

    fn set(&self, connected: bool, error: Option<String>) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.connected = connected;
        if error.is_some() {
            state.last_error = error;
        }
    }
}

/// What the subscriber needs.
pub struct Subscriber {
    pub settings: MqttSettings,
    /// The session's client id (see [`client_id`]).
    pub client_id: String,
    /// Share the subscription with the other processes.
    pub shared: bool,
    pub service: Service,
    pub metrics: Metrics,
    pub status: Status,
}

/// The client id: the configured one, or `hookd` (one process), or `hookd-<host>-<port>`
/// when processes share the broker (each needs its own, kept across restarts).
pub fn client_id(settings: &MqttSettings, shared: bool, port: u16) -> String {
    if let Some(id) = &settings.client_id {
        return id.clone();
    }
    if !shared {
        return "hookd".into();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("hookd-{host}-{port}")
}

impl Subscriber {
    /// Runs until `shutdown`: connects, subscribes, ingests, acknowledges; then lets the
    /// messages being committed finish (and be acknowledged) and disconnects.
    pub async fn run(self, shutdown: CancellationToken) {
        let (client, mut eventloop) = match self.connect() {
            Ok(pair) => pair,
            Err(err) => {
                tracing::error!(error = %err, "MQTT ingest is off: the [mqtt] settings cannot be used");
                return;
            }
        };
        let this = Arc::new(self);
        // QoS 1 messages are bounded by the receive maximum the broker is given; the room
        // beyond is for QoS 0, which has no flow control.
        let (tx, rx) = tokio::sync::mpsc::channel::<Publish>(4 * IN_FLIGHT);
        let mut worker = tokio::spawn(this.clone().ingest_worker(client.clone(), rx, shutdown.clone()));
        let mut tx = Some(tx);
        let mut backoff = Duration::from_millis(500);
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled(), if tx.is_some() => {
                    // No new messages: the worker commits and acknowledges what it holds.
                    tx = None;
                    continue;
                }
                _ = &mut worker => break,
                () = sleep_until(retry_at) => {
                    retry_at = None;
                    continue;
                }
                event = eventloop.poll(), if retry_at.is_none() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    tracing::info!(session_present = ack.session_present, client_id = %this.client_id, "connected to the MQTT broker");
                    backoff = Duration::from_millis(500);
                    this.connected(true, None);
                    if let Err(err) = client.try_subscribe_many(this.filters()) {
                        tracing::error!(error = %err, "cannot subscribe to the [mqtt] topics");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    this.metrics.mqtt_message("received");
                    // Not taken once stopping: unacknowledged, the broker sends it again.
                    if let Some(tx) = &tx
                        && tx.try_send(publish).is_err()
                    {
                        tracing::warn!("an MQTT QoS 0 message was dropped: hookd is not keeping up");
                        this.metrics.mqtt_message("dropped");
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "the MQTT connection failed");
                    this.connected(false, Some(err.to_string()));
                    retry_at = Some(tokio::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        if client.try_disconnect().is_ok() {
            // Lets the disconnect (and the last acknowledgements) out.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while eventloop.poll().await.is_ok() {}
            })
            .await;
        }
        this.metrics.mqtt_connected(false);
    }

    fn connected(&self, connected: bool, error: Option<String>) {
        self.status.set(connected, error);
        self.metrics.mqtt_connect(connected);
        self.metrics.mqtt_connected(connected);
    }

    fn connect(&self) -> anyhow::Result<(AsyncClient, EventLoop)> {
        let url = url::Url::parse(self.settings.url.as_deref().unwrap_or_default())?;
        let tls = url.scheme() == "mqtts";
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        let mut options = MqttOptions::new(self.client_id.clone(), host, port);
        options
            .set_clean_start(false)
            .set_session_expiry_interval(Some(SESSION_EXPIRY_SECS))
            .set_receive_maximum(Some(IN_FLIGHT as u16))
            .set_manual_acks(true)
            .set_keep_alive(Duration::from_secs(30));
        if let Some(user) = &self.settings.username {
            options.set_credentials(user.clone(), self.settings.password.clone().unwrap_or_default());
        }
        if tls {
            let config = tls_config(self.settings.extra_roots()?)?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))));
        }
        Ok(AsyncClient::new(options, IN_FLIGHT))
    }

    fn filters(&self) -> Vec<Filter> {
        let qos = if self.settings.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        self.settings
            .topics
            .iter()
            .map(|topic| {
                let path = if self.shared {
                    format!("$share/hookd/{topic}")
                } else {
                    topic.clone()
                };
                Filter::new(path, qos)
            })
            .collect()
    }

    /// Commits messages as they come, several at once, and acknowledges them in the order
    /// they came, each only once committed.
    async fn ingest_worker(
        self: Arc<Self>,
        client: AsyncClient,
        mut rx: tokio::sync::mpsc::Receiver<Publish>,
        shutdown: CancellationToken,
    ) {
        let pattern = self
            .settings
            .topic_pattern
            .as_deref()
            .and_then(|p| TopicPattern::parse(p).ok());
        let kind = Kind::parse(self.settings.kind()).unwrap_or(Kind::Data);
        let mut pending = FuturesOrdered::new();
        let mut open = true;
        while open || !pending.is_empty() {
            tokio::select! {
                message = rx.recv(), if open && pending.len() < IN_FLIGHT => match message {
                    Some(publish) => {
                        let this = self.clone();
                        let (pattern, shutdown) = (pattern.clone(), shutdown.clone());
                        pending.push_back(async move {
                            let committed = this.commit(pattern.as_ref(), kind, &publish, &shutdown).await;
                            (publish, committed)
                        });
                    }
                    None => open = false,
                },
                Some((publish, committed)) = pending.next(), if !pending.is_empty() => {
                    if committed && let Err(err) = client.ack(&publish).await {
                        tracing::warn!(error = %err, "a committed MQTT message could not be acknowledged; the broker will send it again");
                    }
                }
            }
        }
    }

    /// Commits one message's record, trying again while the store cannot; `false` when hookd
    /// stopped first (the message stays unacknowledged, for the broker to send again).
    async fn commit(
        &self,
        pattern: Option<&TopicPattern>,
        kind: Kind,
        publish: &Publish,
        shutdown: &CancellationToken,
    ) -> bool {
        let topic = String::from_utf8_lossy(&publish.topic);
        let value = topic::record(pattern, kind, &topic, &publish.payload);
        let records = match parse_body(value, kind, 1) {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(topic = %topic, field = %err.field, error = %err.message, "an MQTT message is not a valid record; acknowledged and dropped");
                self.metrics.mqtt_message("invalid");
                return true;
            }
        };
        let workspace = self.settings.workspace.as_deref().unwrap_or_default();
        let mut backoff = Duration::from_millis(200);
        loop {
            // Remembered once found: a lookup per message only until then.
            let committed = match self.service.workspace(workspace).await {
                Ok(_) => self.service.ingest(workspace, Origin::Api, records.clone(), None).await,
                Err(err) => Err(err),
            };
            match committed {
                Ok(_) => {
                    self.metrics.mqtt_message("committed");
                    return true;
                }
                Err(err) => {
                    let error = match &err {
                        ServiceError::Unavailable => "the database is unavailable".to_owned(),
                        ServiceError::NotFound(_) => format!("mqtt.workspace {workspace} does not exist"),
                        other => format!("{other:?}"),
                    };
                    tracing::warn!(topic = %topic, error = %error, retry_in = ?backoff, "an MQTT message could not be committed; trying again");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

/// Waits until `at`; never, without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// TLS for `mqtts://`: the public roots, as for deliveries, and `extra` (`mqtt.ca_file`).
fn tls_config(extra: Vec<rustls::pki_types::CertificateDer<'static>>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("mqtt.ca_file: a certificate cannot be trusted: {e}"))?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
