//! `hookd listen`: a receiver for development that can stand in for a real one. Prints each
//! webhook it gets — method, path, the Standard Webhooks headers with a ✓/✗ signature check,
//! and the body, pretty — and answers with the status asked for. With `--secret`, a request
//! whose signature does not verify gets 401 with the reason, as a real receiver would answer
//! (`--accept-invalid` answers it like any other).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hookd_core::clock::{Clock, SystemClock};
use hookd_core::signature::{DEFAULT_TOLERANCE_SECS, SignedHeaders, secret_key};

#[derive(Debug, clap::Args)]
pub(super) struct ListenArgs {
    /// The address to listen on, e.g. 0.0.0.0:9000 to take webhooks from other machines.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000", conflicts_with = "port")]
    listen: SocketAddr,
    /// Listen on 127.0.0.1 at this port (short for --listen 127.0.0.1:PORT).
    #[arg(long)]
    port: Option<u16>,
    /// The webhook's signing secret (`whsec_…`): requests whose signature does not verify
    /// get 401 with the reason.
    #[arg(long, env = "HOOKD_LISTEN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// With --secret: answer unverified requests like the others (the check is still printed).
    #[arg(long, requires = "secret")]
    accept_invalid: bool,
    /// The status to answer with (e.g. 500 to watch retries).
    #[arg(long, default_value_t = 200)]
    respond: u16,
}

struct Listener {
    secret: Option<String>,
    accept_invalid: bool,
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
    let address = match args.port {
        Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        None => args.listen,
    };
    let state = Arc::new(Listener {
        secret: args.secret,
        accept_invalid: args.accept_invalid,
        respond,
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("hookd listen: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let checking = match (&state.secret, state.accept_invalid) {
            (None, _) => "signatures not checked (no --secret)",
            (Some(_), false) => "unsigned or forged requests get 401",
            (Some(_), true) => "signatures checked, every request accepted",
        };
        out!(
            "listening on http://{} — answering {}; {checking}",
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
            eprintln!("hookd listen: cannot listen on {address}: {err}");
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
) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = state.secret.as_deref().map(|secret| {
        let signed = SignedHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        };
        signed.verify(secret, &body, SystemClock.now() / 1000, DEFAULT_TOLERANCE_SECS)
    });
    let check = match &verified {
        None => "(no --secret: signature not checked)".to_owned(),
        Some(Ok(())) => "✓ signature valid".to_owned(),
        Some(Err(err)) => format!("✗ {err}"),
    };
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let mut printed = format!(
        "── {method} {uri}  webhook-id: {}  {check}\n",
        header("webhook-id").unwrap_or("-")
    );
    for (name, value) in &headers {
        printed.push_str(&format!("   {name}: {}\n", value.to_str().unwrap_or("<binary>")));
    }
    if !pretty.is_empty() {
        printed.push_str(&pretty);
        printed.push('\n');
    }
    super::output::write_all(printed.as_bytes());
    match verified {
        Some(Err(err)) if !state.accept_invalid => (StatusCode::UNAUTHORIZED, format!("{err}\n")),
        _ => (state.respond, String::new()),
    }
}
