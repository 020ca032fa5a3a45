//! `hookd serve`: runs the gateway until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hookd_core::clock::SystemClock;
use tokio_util::sync::CancellationToken;

use crate::admin_key::Origin;
use crate::config::{LogFormat, Overrides, Settings};
use crate::{App, Dispatch, telemetry};

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// A TOML file overriding config.default.toml.
    #[arg(long, env = "HOOKD_CONFIG", hide_env_values = true)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080; env: HOOKD_LISTEN].
    #[arg(long)]
    listen: Option<String>,
    /// Directory of the embedded database [default: ./hookd-data; env: HOOKD_DATA_DIR].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL [env: HOOKD_DATABASE_URL]; unset means embedded SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// What this process runs: all, api or worker [default: all; env: HOOKD_ROLE].
    #[arg(long)]
    role: Option<String>,
    /// How logs are written to stderr: text for people, JSON lines for log collectors
    /// [default: log.format, text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// The same as --log-format json.
    #[arg(long, hide = true, conflicts_with = "log_format")]
    log_json: bool,
}

pub(super) fn serve(args: ServeArgs) -> ExitCode {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        role: args.role,
    };
    let settings = match Settings::load(args.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("hookd: {err:#}");
            return ExitCode::from(2);
        }
    };
    let format = match (args.log_format, args.log_json) {
        (Some(format), _) => format,
        (None, true) => LogFormat::Json,
        (None, false) => settings.log.format,
    };
    telemetry::init(format, &settings.log.level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("hookd: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hookd: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let database = settings.storage_description();
    let app = App::build(settings, Arc::new(SystemClock)).await?;
    // Listening for SIGINT and SIGTERM from before the start is announced: a signal sent as
    // soon as the address is printed stops hookd gracefully rather than killing it.
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(Signals::listen()?, shutdown.clone()));
    out!(
        "hookd {} listening on http://{}",
        env!("CARGO_PKG_VERSION"),
        app.local_addr()
    );
    out!("data: {database}");
    match &app.admin_key().origin {
        Origin::Generated(path) => {
            out!(
                "admin key (shown once; also saved to {} with mode 0600):",
                path.display()
            );
            out!("  {}", app.admin_key().key);
        }
        Origin::Stored(path) => out!("admin key: in {}", path.display()),
        Origin::Configured => out!("admin key: from HOOKD_ADMIN_KEY"),
    }
    app.serve(shutdown, Dispatch::Loop).await
}

/// SIGINT and SIGTERM, listened for from the moment this is made.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn signal_shutdown(mut signals: Signals, token: CancellationToken) {
    tokio::select! {
        _ = signals.interrupt.recv() => {}
        _ = signals.terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing requests and attempts in flight");
    token.cancel();
}
