//! Settings: the embedded `config.default.toml`, then an optional file, then `HOOKD_*`
//! environment variables, then command-line flags — merged, then validated once into
//! [`Settings`], so nothing downstream checks again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use hookd_core::seal::Sealer;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// The JSON parser refuses deeper bodies on its own (at 128).
const MAX_JSON_DEPTH: usize = 100;

pub const DEFAULT_CONFIG: &str = include_str!("../../../config.default.toml");

/// Values given on the command line; `None` leaves the configured value.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    All,
    Api,
    Worker,
}

impl Role {
    pub fn runs_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn runs_dispatcher(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub role: Role,
    pub admin_key: Option<String>,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub api: ApiSettings,
    pub ingest: IngestSettings,
    pub dispatch: DispatchSettings,
    pub retention: RetentionSettings,
    pub sources: SourcesSettings,
    pub delivery: DeliverySettings,
    pub secrets: SecretsSettings,
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub mqtt: crate::mqtt::MqttSettings,
    pub dashboard: DashboardSettings,
}

/// The dashboard at `/` (`[dashboard]`).
#[derive(Debug, Clone, Deserialize)]
pub struct DashboardSettings {
    pub enabled: bool,
    /// How long a sign-in lasts.
    #[serde(deserialize_with = "duration")]
    pub session_ttl: Duration,
    /// The longest a portal link may last.
    #[serde(deserialize_with = "duration")]
    pub max_link_ttl: Duration,
    /// Shown in the header and the page titles.
    pub title: String,
    /// The accent colour (`#rgb` or `#rrggbb`), for operators who embed the portal.
    pub accent: String,
    /// A PNG or SVG shown in the header.
    #[serde(default)]
    pub logo_file: Option<PathBuf>,
    /// Mark the session cookie `Secure` even without `X-Forwarded-Proto: https` (hookd behind
    /// a TLS proxy that does not say so).
    pub secure_cookie: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// How many webhooks get series of their own in `hookd_webhook_*`.
    pub webhook_labels: usize,
}

/// PostgreSQL connection settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub max_connections: u32,
    #[serde(deserialize_with = "duration")]
    pub acquire_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub statement_timeout: Duration,
    pub schema: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_json_depth: usize,
    pub max_records_per_request: usize,
    pub max_webhooks_per_workspace: usize,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    pub max_batch: usize,
    pub queue: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DispatchSettings {
    pub concurrency: usize,
    pub per_webhook_in_flight: usize,
    pub breaker_failures: u32,
    #[serde(deserialize_with = "duration")]
    pub auto_disable_after: Duration,
    pub failing_event_after: u32,
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
}

/// Running sources' jq programs: in worker processes, each request within these limits.
#[derive(Debug, Clone, Deserialize)]
pub struct SourcesSettings {
    #[serde(deserialize_with = "duration")]
    pub transform_timeout: Duration,
    pub transform_memory_mb: u64,
    pub transform_workers: usize,
    /// The program a worker runs (`<it> reshape-worker`): this binary, unless set (tests set
    /// the hookd binary, their own being a test harness).
    #[serde(skip)]
    pub worker_program: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    #[serde(deserialize_with = "duration")]
    pub delivered: Duration,
    #[serde(deserialize_with = "duration")]
    pub failed: Duration,
    #[serde(deserialize_with = "duration")]
    pub idempotency_keys: Duration,
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    pub batch: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    #[serde(deserialize_with = "duration")]
    pub max_timeout: Duration,
    pub response_body_max: usize,
    #[serde(deserialize_with = "duration")]
    pub secret_rotation_grace: Duration,
    #[serde(deserialize_with = "networks")]
    pub allow_networks: Vec<IpNet>,
    #[serde(deserialize_with = "networks")]
    pub restrict_to_networks: Vec<IpNet>,
    /// PEM files: certificates to trust for every webhook, and a client identity.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_client_key_file: Option<PathBuf>,
}

#[derive(Clone, Deserialize)]
pub struct SecretsSettings {
    /// Base64 keys; the first encrypts.
    #[serde(deserialize_with = "list")]
    pub encryption_keys: Vec<String>,
}

impl std::fmt::Debug for SecretsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsSettings")
            .field(
                "encryption_keys",
                &format_args!("[{} hidden]", self.encryption_keys.len()),
            )
            .finish()
    }
}

impl SecretsSettings {
    pub fn sealer(&self) -> anyhow::Result<Sealer> {
        Sealer::from_base64(&self.encryption_keys).map_err(|e| anyhow::anyhow!("secrets.encryption_keys: {e}"))
    }
}

impl Settings {
    /// Loads and validates settings. `file` is the `--config` file, if any.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            if !file.is_file() {
                anyhow::bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(Env::prefixed("HOOKD_").split("__").ignore(&["config", "url", "key"]))
            .merge(Serialized::defaults(overrides));
        let settings: Settings = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Cross-field checks, with an error that says what to change.
    pub fn validate(&self) -> anyhow::Result<()> {
        let d = &self.dispatch;
        if d.lease < self.delivery.max_timeout + Duration::from_secs(5) {
            anyhow::bail!(
                "dispatch.lease ({}) must exceed delivery.max_timeout ({}) by at least 5s, or a delivery could be sent twice at once",
                hookd_core::duration::format(d.lease),
                hookd_core::duration::format(self.delivery.max_timeout)
            );
        }
        if self.delivery.max_timeout < hookd_core::webhook::MIN_TIMEOUT {
            anyhow::bail!("delivery.max_timeout must be at least 100ms");
        }
        if d.concurrency == 0 || d.per_webhook_in_flight == 0 || d.breaker_failures == 0 {
            anyhow::bail!(
                "dispatch.concurrency, dispatch.per_webhook_in_flight and dispatch.breaker_failures must be at least 1"
            );
        }
        if self.ingest.max_batch == 0 || self.ingest.queue == 0 {
            anyhow::bail!("ingest.max_batch and ingest.queue must be at least 1");
        }
        if self.retention.batch == 0 || self.retention.interval.is_zero() {
            anyhow::bail!("retention.batch and retention.interval must be more than 0");
        }
        if self.sources.transform_timeout.is_zero() || self.sources.transform_workers == 0 {
            anyhow::bail!("sources.transform_timeout and sources.transform_workers must be more than 0");
        }
        if self.sources.transform_memory_mb < 64 {
            anyhow::bail!("sources.transform_memory_mb must be at least 64");
        }
        self.secrets.sealer()?;
        self.mqtt.validate()?;
        self.dashboard.validate()?;
        if !(1..=MAX_JSON_DEPTH).contains(&self.api.max_json_depth) {
            anyhow::bail!("api.max_json_depth must be between 1 and {MAX_JSON_DEPTH}");
        }
        if self.api.max_header_bytes < 1024 {
            anyhow::bail!("api.max_header_bytes must be at least 1024");
        }
        if self.api.max_records_per_request == 0 {
            anyhow::bail!("api.max_records_per_request must be at least 1");
        }
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                if self.admin_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
                    anyhow::bail!(
                        "with PostgreSQL, set the admin key with HOOKD_ADMIN_KEY so every hookd process shares it"
                    );
                }
                if self.database.max_connections < 2 {
                    anyhow::bail!("database.max_connections must be at least 2");
                }
            }
            Some(url) => anyhow::bail!(
                "database_url `{}` is not a postgres:// URL; leave it unset to use embedded SQLite",
                redact(url)
            ),
            None if self.role != Role::All => {
                anyhow::bail!(
                    "role `api` or `worker` needs a shared PostgreSQL database (--database-url); with embedded SQLite use role `all`"
                )
            }
            None => {}
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("hookd.db")
    }

    /// Where the data is, for people (passwords hidden).
    pub fn storage_description(&self) -> String {
        match &self.database_url {
            Some(url) => redact(url),
            None => self.database_path().display().to_string(),
        }
    }
}

/// A database URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    hookd_core::duration::parse(&s).map_err(serde::de::Error::custom)
}

/// A list, as a TOML array or a comma-separated string (from the environment).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(items) => items,
        Raw::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A list of CIDRs (see [`list`]).
fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    list(d)?
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a network (write e.g. 10.0.0.0/8)")))
        })
        .collect()
}

impl DashboardSettings {
    fn validate(&self) -> anyhow::Result<()> {
        let hex = self.accent.strip_prefix('#').unwrap_or("");
        if !matches!(hex.len(), 3 | 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            anyhow::bail!("dashboard.accent `{}` must be a colour like #2457d6", self.accent);
        }
        if self.session_ttl.is_zero() || self.max_link_ttl.is_zero() {
            anyhow::bail!("dashboard.session_ttl and dashboard.max_link_ttl must be more than 0");
        }
        if let Some(logo) = &self.logo_file {
            let known = matches!(logo.extension().and_then(|e| e.to_str()), Some("png" | "svg"));
            if !known || !logo.is_file() {
                anyhow::bail!(
                    "dashboard.logo_file `{}` must be a readable .png or .svg file",
                    logo.display()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_defaults_load_and_validate() {
        let s: Settings = Figment::from(Toml::string(DEFAULT_CONFIG)).extract().unwrap();
        s.validate().unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.dispatch.lease, Duration::from_secs(90));
    }

    #[test]
    fn a_lease_shorter_than_the_timeout_is_refused() {
        let mut s: Settings = Figment::from(Toml::string(DEFAULT_CONFIG)).extract().unwrap();
        s.dispatch.lease = Duration::from_secs(30);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("dispatch.lease"), "{err}");
    }

    #[test]
    fn postgres_needs_a_shared_admin_key_and_other_roles_need_postgres() {
        let mut s: Settings = Figment::from(Toml::string(DEFAULT_CONFIG)).extract().unwrap();
        s.role = Role::Worker;
        assert!(s.validate().unwrap_err().to_string().contains("PostgreSQL"));
        s.database_url = Some("postgres://u:pw@localhost/db".into());
        assert!(s.validate().unwrap_err().to_string().contains("HOOKD_ADMIN_KEY"));
        s.admin_key = Some("a-long-enough-admin-key".into());
        s.validate().unwrap();
        assert_eq!(s.storage_description(), "postgres://u:***@localhost/db");
    }

    #[test]
    fn encryption_keys_are_checked_and_hidden_from_debug_output() {
        let key = Sealer::generate_key();
        let figment = Figment::from(Toml::string(DEFAULT_CONFIG))
            .merge(Serialized::default("secrets.encryption_keys", format!("{key}, {key}")));
        let s: Settings = figment.extract().unwrap();
        s.validate().unwrap();
        assert_eq!(s.secrets.encryption_keys.len(), 2);
        assert!(!format!("{s:?}").contains(&key));
        let figment = Figment::from(Toml::string(DEFAULT_CONFIG))
            .merge(Serialized::default("secrets.encryption_keys", "c2hvcnQ="));
        let err = figment
            .extract::<Settings>()
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("secrets.encryption_keys: encryption key 0: 5 bytes"),
            "{err}"
        );
    }

    #[test]
    fn networks_read_from_a_comma_separated_string() {
        let figment = Figment::from(Toml::string(DEFAULT_CONFIG))
            .merge(Serialized::default("delivery.allow_networks", "127.0.0.0/8, ::1"));
        let s: Settings = figment.extract().unwrap();
        assert_eq!(s.delivery.allow_networks.len(), 2);
    }
}
