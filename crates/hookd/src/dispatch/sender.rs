//! The HTTP side of an attempt: one pooled client, the SSRF guard, the timeout, a capped read
//! of the response, and the mapping of transport errors to [`ErrorKind`]s.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookd_core::clock::Millis;
use hookd_core::outcome::{ErrorKind, Response, parse_retry_after};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::{Host, Url};

use super::network::{Blocked, GuardedResolver, NetworkPolicy, Unresolved};

/// Response headers kept per attempt, at most.
const MAX_KEPT_HEADERS: usize = 50;

#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    body_max: usize,
}

/// A request ready to go.
#[derive(Debug)]
pub struct Outgoing {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub timeout: Duration,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub response: Response,
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
    pub fn new(policy: Arc<NetworkPolicy>, body_max: usize, max_idle_per_host: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("hookd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(max_idle_per_host)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            client,
            policy,
            body_max,
        })
    }

    /// Sends `request`, never failing: every way it can go wrong is an [`Answer`].
    pub async fn send(&self, request: Outgoing, now: Millis) -> Answer {
        let started = Instant::now();
        if let Some(ip) = literal_ip(&request.url) {
            if self.policy.check(ip).is_err() {
                return Answer::error(ErrorKind::Blocked, started);
            }
        }
        let timeout = request.timeout;
        match tokio::time::timeout(timeout, self.exchange(request, now)).await {
            Ok(Ok((response, headers, body))) => Answer {
                response,
                headers,
                body,
                duration: started.elapsed(),
            },
            Ok(Err(kind)) => Answer::error(kind, started),
            Err(_) => Answer::error(ErrorKind::Timeout, started),
        }
    }

    async fn exchange(&self, request: Outgoing, now: Millis) -> Result<(Response, String, Option<String>), ErrorKind> {
        let mut builder = self
            .client
            .request(request.method, request.url)
            .headers(request.headers);
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

impl Answer {
    fn error(kind: ErrorKind, started: Instant) -> Self {
        Self {
            response: Response::Error(kind),
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

/// Whether an I/O error carries a TLS error, possibly inside further I/O errors (an
/// `io::Error`'s `source()` skips the error it wraps, so the chain walk alone misses it).
fn wraps_tls_error(mut io: &std::io::Error) -> bool {
    while let Some(inner) = io.get_ref() {
        if inner.is::<rustls::Error>() {
            return true;
        }
        match inner.downcast_ref::<std::io::Error>() {
            Some(next) => io = next,
            None => return false,
        }
    }
    false
}

/// Maps a transport error to the kind the outcome table speaks of, by walking its causes.
fn error_kind(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = cause {
        if e.is::<Blocked>() {
            return ErrorKind::Blocked;
        }
        if e.is::<Unresolved>() {
            return ErrorKind::Dns;
        }
        if e.is::<rustls::Error>() {
            return ErrorKind::Tls;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if wraps_tls_error(io) {
                return ErrorKind::Tls;
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::HostUnreachable
                | std::io::ErrorKind::NetworkUnreachable => {
                    return ErrorKind::Connect;
                }
                std::io::ErrorKind::TimedOut => return ErrorKind::Timeout,
                _ => {}
            }
        }
        cause = e.source();
    }
    if err.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Reset
    }
}
