//! Outbound TLS to on-prem receivers: a CA made at test time, certificates that are expired or
//! for another name, mutual TLS, a named opt-out of verification, and errors that explain
//! themselves.

use std::sync::{Arc, Mutex};

use axum::extract::connect_info::Connected;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::helpers::{TestApp, data_point};

/// A certificate authority made for one test.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `names`, valid from `days_from_now.0` to `.1` days from now; its PEM
    /// and its key's PEM.
    pub(crate) fn issue(&self, names: &[&str], days: (i64, i64)) -> (String, String) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// What the TLS receiver saw of each request: whether the client presented a certificate.
type Seen = Arc<Mutex<Vec<bool>>>;

/// A TLS stream accepted by [`TlsListener`], and whether its client sent a certificate.
struct Accepted(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

/// Whether the client of a connection presented a certificate.
#[derive(Clone, Copy)]
struct ClientCert(bool);

impl Connected<axum::serve::IncomingStream<'_, TlsListener>> for ClientCert {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Self(stream.io().0.get_ref().1.peer_certificates().is_some())
    }
}

impl tokio::io::AsyncRead for Accepted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Accepted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// TCP accepted and then the TLS handshake, one at a time (a failed handshake is skipped).
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = Accepted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (Accepted(tls), addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS receiver with `cert`/`key`, answering 200; with `client_ca`, it demands a client
/// certificate that CA issued. Returns its port and what it saw.
async fn https_receiver(cert: &str, key: &str, client_ca: Option<&str>) -> (u16, Seen) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let certs = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = builder.with_single_cert(certs, key).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let seen: Seen = Default::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(
        move |axum::extract::ConnectInfo(ClientCert(client_cert)): axum::extract::ConnectInfo<ClientCert>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(client_cert);
                "ok"
            }
        },
    );
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<ClientCert>())
            .await
            .unwrap()
    });
    (port, seen)
}

/// Creates a webhook to `url` with `tls`, sends it a record; returns the attempt.
async fn attempt(app: &TestApp, url: &str, tls: Value) -> Value {
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(
            &ws,
            json!({ "name": "tls", "kind": "data", "url": url, "tls": tls, "retry_schedule": ["1h"] }),
        )
        .await;
    app.send(&ws, "data", data_point("d", "t")).await;
    app.dispatch_until_idle().await;
    let deliveries = app.deliveries(&ws).await;
    let delivery = app.delivery(&ws, deliveries[0]["id"].as_str().unwrap()).await;
    let mut attempt = delivery["attempts"][0].clone();
    attempt["webhook"] = webhook;
    attempt
}

fn explanation(attempt: &Value) -> &str {
    attempt["explanation"].as_str().unwrap()
}

#[tokio::test]
async fn a_webhook_trusts_the_ca_it_names_and_tls_errors_explain_themselves() {
    let app = TestApp::spawn().await;
    let ca = Ca::new("on-prem");
    let (cert, key) = ca.issue(&["localhost"], (-1, 30));
    let (port, seen) = https_receiver(&cert, &key, None).await;
    let url = format!("https://localhost:{port}/hook");

    let unknown = attempt(&app, &url, json!({})).await;
    assert_eq!(unknown["error_kind"], "tls");
    assert!(
        explanation(&unknown).contains("unknown issuer"),
        "{}",
        explanation(&unknown)
    );
    assert!(
        explanation(&unknown).contains("retrying in"),
        "a TLS failure is retried"
    );

    let trusted = attempt(&app, &url, json!({ "ca": ca.pem })).await;
    assert_eq!(trusted["status"], 200, "{}", explanation(&trusted));
    assert_eq!(seen.lock().unwrap().len(), 1);

    let by_ip = format!("https://127.0.0.1:{port}/hook");
    let mismatch = attempt(&app, &by_ip, json!({ "ca": ca.pem })).await;
    assert!(
        explanation(&mismatch).contains("name mismatch"),
        "{}",
        explanation(&mismatch)
    );

    let (old_cert, old_key) = ca.issue(&["localhost"], (-30, -1));
    let (old_port, _) = https_receiver(&old_cert, &old_key, None).await;
    let expired = attempt(&app, &format!("https://localhost:{old_port}/"), json!({ "ca": ca.pem })).await;
    assert!(
        explanation(&expired).contains("has expired"),
        "{}",
        explanation(&expired)
    );
}

#[tokio::test]
async fn a_webhook_presents_its_client_certificate_to_a_receiver_that_asks_for_one() {
    let app = TestApp::spawn().await;
    let server_ca = Ca::new("server");
    let client_ca = Ca::new("client");
    let (cert, key) = server_ca.issue(&["localhost"], (-1, 30));
    let (port, seen) = https_receiver(&cert, &key, Some(&client_ca.pem)).await;
    let url = format!("https://localhost:{port}/");

    let refused = attempt(&app, &url, json!({ "ca": server_ca.pem })).await;
    assert_eq!(refused["error_kind"], "tls", "{refused}");
    assert!(
        explanation(&refused).contains("asks for a client certificate"),
        "{}",
        explanation(&refused)
    );
    assert!(seen.lock().unwrap().is_empty());

    let (client_cert, client_key) = client_ca.issue(&["hookd"], (-1, 30));
    let tls = json!({ "ca": server_ca.pem, "client_cert": client_cert, "client_key": client_key });
    let accepted = attempt(&app, &url, tls).await;
    assert_eq!(accepted["status"], 200, "{}", explanation(&accepted));
    assert_eq!(*seen.lock().unwrap(), [true], "the receiver saw a client certificate");
    let shown = &accepted["webhook"]["tls"];
    assert_eq!(shown["has_client_key"], true);
    assert!(
        !accepted["webhook"].to_string().contains("PRIVATE KEY"),
        "the key is never shown"
    );
}

#[tokio::test]
async fn turning_verification_off_is_a_named_choice_with_a_warning() {
    let app = TestApp::spawn().await;
    let (cert, key) = Ca::new("unknown").issue(&["localhost"], (-30, -1)); // untrusted and expired
    let (port, _) = https_receiver(&cert, &key, None).await;
    let accepted = attempt(&app, &format!("https://localhost:{port}/"), json!({ "verify": false })).await;
    assert_eq!(accepted["status"], 200, "{}", explanation(&accepted));
    let webhook = &accepted["webhook"];
    assert_eq!(webhook["tls"]["verify"], false);
    let warnings = webhook["warnings"].to_string();
    assert!(warnings.contains("tls.verify is false"), "{warnings}");
}

#[tokio::test]
async fn the_server_can_trust_a_ca_for_every_webhook() {
    let ca = Ca::new("site");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("site-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let app = TestApp::spawn_with(|s| s.delivery.tls_ca_file = Some(ca_file.clone())).await;
    let (cert, key) = ca.issue(&["localhost"], (-1, 30));
    let (port, _) = https_receiver(&cert, &key, None).await;
    let delivered = attempt(&app, &format!("https://localhost:{port}/"), json!({})).await;
    assert_eq!(delivered["status"], 200, "{}", explanation(&delivered));
}

#[tokio::test]
async fn bad_tls_settings_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
    for (tls, field) in [
        (json!({ "ca": "not pem" }), "tls.ca"),
        (json!({ "ca": garbage }), "tls.ca"),
        (json!({ "client_cert": garbage }), "tls.client_key"),
    ] {
        let (status, body) = app
            .post(
                &format!("/v1/workspaces/{ws}/webhooks"),
                json!({ "name": "x", "kind": "data", "url": "https://localhost/", "tls": tls }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    assert!(
        app.api.list_webhooks(&ws).await.unwrap().is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_refused_connection_says_so() {
    let app = TestApp::spawn().await;
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let refused = attempt(&app, &format!("http://127.0.0.1:{closed}/"), json!({})).await;
    assert_eq!(refused["error_kind"], "connect");
    assert!(
        explanation(&refused).contains("(connection refused)"),
        "{}",
        explanation(&refused)
    );
}

#[tokio::test]
async fn the_cli_reads_tls_files_and_warns_when_verification_is_off() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let ca = Ca::new("cli");
    let (cert, key) = ca.issue(&["hookd"], (-1, 30));
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca_file, cert_file, key_file) = (file("ca.pem", &ca.pem), file("c.pem", &cert), file("k.pem", &key));
    let created = crate::cli::hookd_json(
        &app,
        &[
            "webhooks",
            "create",
            "-w",
            &ws,
            "--kind",
            "data",
            "--url",
            "https://localhost/",
            "--tls-ca",
            &ca_file,
            "--tls-client-cert",
            &cert_file,
            "--tls-client-key",
            &key_file,
        ],
    )
    .await;
    assert_eq!(created["tls"]["ca"], ca.pem.as_str());
    assert_eq!(created["tls"]["has_client_key"], true);
    let wh = created["id"].as_str().unwrap();
    let insecure = crate::cli::hookd(&app, &["webhooks", "update", "-w", &ws, wh, "--tls-no-verify"]).await;
    let stderr = String::from_utf8_lossy(&insecure.stderr);
    assert!(stderr.contains("warning: tls.verify is false"), "{stderr}");
}
