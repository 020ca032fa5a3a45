//! The HTTP side of an attempt: one pooled client, the SSRF guard, the timeout, a capped read
//! of the response, and the mapping of transport errors to [`ErrorKind`]s.

use std::collections::HashMap;
use std::error::Error as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hookd_core::clock::Millis;
use hookd_core::outcome::{ErrorKind, Response, parse_retry_after};
use hookd_core::webhook::TlsSpec;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::{Host, Url};

use super::network::{Blocked, GuardedResolver, NetworkPolicy, Unresolved};

/// Response headers kept per attempt, at most.
const MAX_KEPT_HEADERS: usize = 50;

/// The certificates the server's `[delivery]` settings name for every webhook.
#[derive(Debug, Clone, Default)]
pub struct ServerTls {
    /// Issuers to trust besides the public roots.
    pub roots: Vec<reqwest::Certificate>,
    /// A client identity presented to every receiver that asks (unless a webhook has its own).
    pub identity: Option<reqwest::Identity>,
}

impl ServerTls {
    /// Reads the PEM files `delivery.tls_ca_file`, `tls_client_cert_file` and
    /// `tls_client_key_file` name; an unreadable or invalid one stops the start.
    pub fn load(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> anyhow::Result<Self> {
        let read = |path: &Path, setting: &str| {
            std::fs::read(path).with_context(|| format!("cannot read {setting} {}", path.display()))
        };
        let roots = match ca {
            Some(path) => reqwest::Certificate::from_pem_bundle(&read(path, "delivery.tls_ca_file")?)
                .with_context(|| format!("delivery.tls_ca_file {} holds no valid PEM certificate", path.display()))?,
            None => Vec::new(),
        };
        let identity = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let mut pem = read(cert, "delivery.tls_client_cert_file")?;
                pem.push(b'\n');
                pem.extend(read(key, "delivery.tls_client_key_file")?);
                Some(reqwest::Identity::from_pem(&pem).context(
                    "delivery.tls_client_cert_file and tls_client_key_file are not a PEM certificate and its key",
                )?)
            }
            _ => anyhow::bail!("delivery.tls_client_cert_file and delivery.tls_client_key_file go together"),
        };
        Ok(Self { roots, identity })
    }
}

/// Clients for webhooks with TLS settings of their own, kept at most this many.
const MAX_TLS_CLIENTS: usize = 1000;

#[derive(Debug, Clone)]
pub struct Sender {
    /// For every webhook without TLS settings of its own.
    client: reqwest::Client,
    /// For webhooks with their own, one client per distinct setting.
    custom: Arc<Mutex<HashMap<TlsSpec, reqwest::Client>>>,
    server_tls: ServerTls,
    policy: Arc<NetworkPolicy>,
    body_max: usize,
    max_idle_per_host: usize,
}

/// A request ready to go.
#[derive(Debug)]
pub struct Outgoing {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub timeout: Duration,
    /// The webhook's own TLS settings (default: the server's).
    pub tls: TlsSpec,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub response: Response,
    /// What went wrong below HTTP, when it says more than the error kind
    /// (`connection refused`, `the receiver's certificate has expired`).
    pub detail: Option<String>,
    /// Response headers as a JSON object (empty when there was no response).
    pub headers: String,
    /// The first `body_max` bytes of the response body, lossily decoded.
    pub body: Option<String>,
    pub duration: Duration,
}

impl Sender {
    /// `max_idle_per_host`: connections kept open per host between requests. As many as
    /// attempts can be in flight at once, so webhooks sharing a host (one receiver behind many
    /// URLs) never close and reopen connections between deliveries.
    pub fn new(
        policy: Arc<NetworkPolicy>,
        body_max: usize,
        max_idle_per_host: usize,
        server_tls: ServerTls,
    ) -> anyhow::Result<Self> {
        let client = build_client(&policy, max_idle_per_host, &server_tls, &TlsSpec::default())?;
        Ok(Self {
            client,
            custom: Default::default(),
            server_tls,
            policy,
            body_max,
            max_idle_per_host,
        })
    }

    /// The client for `tls`: the shared one, or one made for these settings (and kept).
    fn client_for(&self, tls: &TlsSpec) -> Result<reqwest::Client, String> {
        if tls.is_default() {
            return Ok(self.client.clone());
        }
        let mut custom = self.custom.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = custom.get(tls) {
            return Ok(client.clone());
        }
        let client =
            build_client(&self.policy, self.max_idle_per_host, &self.server_tls, tls).map_err(|e| format!("{e:#}"))?;
        if custom.len() >= MAX_TLS_CLIENTS {
            custom.clear();
        }
        custom.insert(tls.clone(), client.clone());
        Ok(client)
    }

    /// Whether a client can be made for `tls` (its PEM parses), or why not.
    pub fn check_tls(&self, tls: &TlsSpec) -> Result<(), String> {
        self.client_for(tls).map(drop)
    }

    /// Sends `request`, never failing: every way it can go wrong is an [`Answer`].
    pub async fn send(&self, request: Outgoing, now: Millis) -> Answer {
        let started = Instant::now();
        if let Some(ip) = literal_ip(&request.url) {
            if self.policy.check(ip).is_err() {
                return Answer::error((ErrorKind::Blocked, None), started);
            }
        }
        let timeout = request.timeout;
        match tokio::time::timeout(timeout, self.exchange(request, now)).await {
            Ok(Ok((response, headers, body))) => Answer {
                response,
                detail: None,
                headers,
                body,
                duration: started.elapsed(),
            },
            Ok(Err(failure)) => Answer::error(failure, started),
            Err(_) => Answer::error((ErrorKind::Timeout, None), started),
        }
    }

    async fn exchange(&self, request: Outgoing, now: Millis) -> Result<(Response, String, Option<String>), Failure> {
        let client = self.client_for(&request.tls).map_err(|e| {
            (
                ErrorKind::Tls,
                Some(format!("the webhook's TLS settings are unusable: {e}")),
            )
        })?;
        let mut builder = client.request(request.method, request.url).headers(request.headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| error_kind(&e))?;
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let headers = headers_json(response.headers());
        let mut body = Vec::new();
        while body.len() < self.body_max {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(self.body_max - body.len())]),
                Ok(None) => break,
                // The answer broke off: the receiver may not have processed the request.
                Err(e) => return Err(error_kind(&e)),
            }
        }
        let body = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
        Ok((Response::Status { code, retry_after }, headers, body))
    }
}

/// Why no answer came: the kind, and what more the transport said.
type Failure = (ErrorKind, Option<String>);

/// A client with the shared settings, trusting the server's roots and `tls`'s, presenting
/// `tls`'s client identity (else the server's).
fn build_client(
    policy: &Arc<NetworkPolicy>,
    max_idle_per_host: usize,
    server: &ServerTls,
    tls: &TlsSpec,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("hookd/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(max_idle_per_host)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10));
    for root in &server.roots {
        builder = builder.add_root_certificate(root.clone());
    }
    if let Some(ca) = &tls.ca {
        let roots =
            reqwest::Certificate::from_pem_bundle(ca.as_bytes()).context("`tls.ca` holds no valid PEM certificate")?;
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    let identity = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(
            reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                .context("`tls.client_cert` and `tls.client_key` are not a PEM certificate and its key")?,
        ),
        _ => server.identity.clone(),
    };
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    if tls.skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder.build()?)
}

impl Answer {
    fn error((kind, detail): Failure, started: Instant) -> Self {
        Self {
            response: Response::Error(kind),
            detail,
            headers: "{}".into(),
            body: None,
            duration: started.elapsed(),
        }
    }
}

fn literal_ip(url: &Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(ip.into()),
        Host::Ipv6(ip) => Some(ip.into()),
        Host::Domain(_) => None,
    }
}

fn headers_json(headers: &HeaderMap) -> String {
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .take(MAX_KEPT_HEADERS)
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The TLS error an I/O error carries, possibly inside further I/O errors (an `io::Error`'s
/// `source()` skips the error it wraps, so the chain walk alone misses it).
fn wrapped_tls_error(mut io: &std::io::Error) -> Option<&rustls::Error> {
    while let Some(inner) = io.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        io = inner.downcast_ref::<std::io::Error>()?;
    }
    None
}

/// A TLS failure in words a person can act on.
fn explain_tls(err: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    match err {
        E::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => "the receiver's certificate is signed by an unknown issuer: trust its CA with the webhook's tls.ca or delivery.tls_ca_file".into(),
            C::Expired | C::ExpiredContext { .. } => "the receiver's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "the receiver's certificate is not valid yet".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the receiver's certificate is not valid for the URL's host name (name mismatch)".into()
            }
            C::Revoked => "the receiver's certificate is revoked".into(),
            C::BadSignature => "the receiver's certificate has a bad signature".into(),
            other => format!("the receiver's certificate was refused: {other:?}"),
        },
        E::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            "the receiver asks for a client certificate: set the webhook's tls.client_cert and tls.client_key".into()
        }
        E::AlertReceived(alert) => format!("the receiver ended the handshake with the alert {alert:?}"),
        other => other.to_string(),
    }
}

/// Maps a transport error to the kind the outcome table speaks of, and what more it says, by
/// walking its causes.
fn error_kind(err: &reqwest::Error) -> Failure {
    if err.is_timeout() {
        let detail = err.is_connect().then(|| "timed out connecting".to_owned());
        return (ErrorKind::Timeout, detail);
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = cause {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return (ErrorKind::Blocked, Some(format!("it resolves to {}", blocked.0)));
        }
        if let Some(unresolved) = e.downcast_ref::<Unresolved>() {
            return (ErrorKind::Dns, Some(unresolved.to_string()));
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return (ErrorKind::Tls, Some(explain_tls(tls)));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = wrapped_tls_error(io) {
                return (ErrorKind::Tls, Some(explain_tls(tls)));
            }
            let said = |what: &str| Some(what.to_owned());
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return (ErrorKind::Connect, said("connection refused")),
                std::io::ErrorKind::HostUnreachable => return (ErrorKind::Connect, said("host unreachable")),
                std::io::ErrorKind::NetworkUnreachable => return (ErrorKind::Connect, said("network unreachable")),
                std::io::ErrorKind::TimedOut => return (ErrorKind::Timeout, said("timed out connecting")),
                std::io::ErrorKind::ConnectionReset => return (ErrorKind::Reset, said("connection reset")),
                _ => {}
            }
        }
        cause = e.source();
    }
    if err.is_connect() {
        (ErrorKind::Connect, None)
    } else {
        (ErrorKind::Reset, None)
    }
}
