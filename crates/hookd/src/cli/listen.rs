//! `hookd listen`: a receiver for development. Prints each webhook it gets — method, path,
//! the Standard Webhooks headers with a ✓/✗ signature check, and the body, pretty — and
//! answers with the status asked for.

use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hookd_core::clock::{Clock, SystemClock};
use hookd_core::signature::{DEFAULT_TOLERANCE_SECS, secret_key, verify};

#[derive(Debug, clap::Args)]
pub(super) struct ListenArgs {
    /// Port to listen on (127.0.0.1 only).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The webhook's signing secret (`whsec_…`), to check signatures.
    #[arg(long, env = "HOOKD_LISTEN_SECRET")]
    secret: Option<String>,
    /// The status to answer with (e.g. 500 to watch retries).
    #[arg(long, default_value_t = 200)]
    respond: u16,
}

struct Listener {
    secret: Option<String>,
    respond: StatusCode,
}

pub(super) fn listen(args: ListenArgs) -> ExitCode {
    let Ok(respond) = StatusCode::from_u16(args.respond) else {
        eprintln!("hookd listen: --respond {} is not an HTTP status", args.respond);
        return ExitCode::from(2);
    };
    if let Some(Err(err)) = args.secret.as_deref().map(secret_key) {
        eprintln!("hookd listen: --secret is not a webhook secret: {err}");
        return ExitCode::from(2);
    }
    let state = Arc::new(Listener {
        secret: args.secret,
        respond,
    });
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
        println!(
            "listening on http://{} — answering {}",
            listener.local_addr()?,
            state.respond
        );
        let app = axum::Router::new().fallback(receive).with_state(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                tokio::signal::ctrl_c().await.ok();
            })
            .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hookd listen: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn receive(
    State(state): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let check = match &state.secret {
        None => "(no --secret: signature not checked)".to_owned(),
        Some(secret) => {
            let now = SystemClock.now() / 1000;
            match verify(
                secret,
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
                &body,
                now,
                DEFAULT_TOLERANCE_SECS,
            ) {
                Ok(()) => "✓ signature valid".to_owned(),
                Err(err) => format!("✗ {err}"),
            }
        }
    };
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    println!("── {method} {uri}  webhook-id: {}  {check}", header("webhook-id"));
    for (name, value) in &headers {
        println!("   {name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    if !pretty.is_empty() {
        println!("{pretty}");
    }
    state.respond
}
