//! The `[mqtt]` settings: which broker, which topics, and how a message becomes a record.

use serde::Deserialize;

use super::topic::TopicPattern;

/// MQTT ingest (`[mqtt]`): off unless `url` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MqttSettings {
    /// `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: Option<String>,
    /// Topic filters to subscribe to (`+` and `#` wildcards).
    pub topics: Vec<String>,
    /// 0 (at most once) or 1 (at least once: acknowledged only after the commit).
    pub qos: u8,
    /// The session's client id, one per process, kept across restarts so the broker resends
    /// what was not acknowledged. Default: `hookd`; `hookd-<host>-<port>` when shared.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Maps topic segments to record fields, e.g. `fleets/{fleet_id}/devices/{device_id}/{tag}`.
    pub topic_pattern: Option<String>,
    /// The workspace the records go to (`ws_…`).
    pub workspace: Option<String>,
    /// `data` (default) or `event`.
    pub kind: Option<String>,
    /// PEM certificates trusted as issuers of an `mqtts://` broker's certificate, besides the
    /// public roots (an on-prem broker's own CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// Subscribe as one of a group (`$share/hookd/<topic>`), so processes share the messages
    /// instead of each taking every one. Unset: shared when the database is PostgreSQL.
    pub shared: Option<bool>,
}

impl MqttSettings {
    /// Whether MQTT ingest is configured.
    pub fn enabled(&self) -> bool {
        self.url.as_deref().is_some_and(|u| !u.trim().is_empty())
    }

    /// Cross-field checks, with an error naming the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(());
        };
        let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("mqtt.url `{url}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "mqtt" | "mqtts") || parsed.host_str().is_none() {
            anyhow::bail!("mqtt.url `{url}` must be mqtt://host[:port] or mqtts://host[:port]");
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            anyhow::bail!("mqtt.topics must name at least one topic filter, e.g. [\"fleets/+/devices/#\"]");
        }
        if self.qos > 1 {
            anyhow::bail!("mqtt.qos must be 0 or 1 (1: a message is acknowledged only once committed)");
        }
        if self.workspace.as_deref().is_none_or(|w| w.trim().is_empty()) {
            anyhow::bail!("mqtt.workspace must name the workspace the records go to (ws_…)");
        }
        let kind = self.kind();
        if hookd_core::record::Kind::parse(kind).is_none() {
            anyhow::bail!("mqtt.kind `{kind}` must be \"data\" or \"event\"");
        }
        self.extra_roots()?;
        if let Some(pattern) = &self.topic_pattern {
            TopicPattern::parse(pattern).map_err(|e| anyhow::anyhow!("mqtt.topic_pattern: {e}"))?;
        }
        Ok(())
    }

    /// The certificates of `ca_file`, read and parsed (none without one).
    pub fn extra_roots(&self) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
        use rustls::pki_types::pem::PemObject;
        let Some(path) = &self.ca_file else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("mqtt.ca_file {}: {e}", path.display()))?;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("mqtt.ca_file {}: not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            anyhow::bail!("mqtt.ca_file {} holds no certificate", path.display());
        }
        Ok(certs)
    }

    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("data")
    }
}
