//! The command line. `serve` runs the gateway; `listen` and `verify` are receiver-side tools;
//! every other command talks to a running hookd through [`crate::client::Client`].
//!
//! Exit codes: 0 success; 1 hookd refused the request (its error code and message are printed
//! on stderr), or a signature did not verify; 2 bad usage or configuration; 3 hookd could not
//! be reached.

mod deliveries;
mod listen;
mod output;
mod replay;
mod send;
mod serve;
mod verify;
mod webhooks;
mod workspaces;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::client::Client;
use output::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "hookd",
    version,
    about = "A webhook gateway in one binary: durable ingest, filtered, signed, retried and logged delivery."
)]
#[command(
    after_help = "Exit codes: 0 success; 1 hookd refused the request or a signature did not verify; 2 bad usage or configuration; 3 hookd could not be reached."
)]
struct Cli {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

/// How to reach a running hookd.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Remote {
    /// hookd's base URL. Give it before the command (`hookd --url … webhooks list`): after
    /// it, `--url` is a webhook's URL.
    #[arg(long, env = "HOOKD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key: the admin key or a workspace key.
    #[arg(long, env = "HOOKD_KEY", global = true, hide_env_values = true)]
    key: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

impl Remote {
    pub(crate) fn client(&self) -> Result<Client, Failure> {
        let key = self
            .key
            .as_deref()
            .ok_or_else(|| Failure::usage("an API key is needed: pass --key or set HOOKD_KEY"))?;
        Ok(Client::new(&self.url, key))
    }
}

/// The workspace a command works in.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WorkspaceArg {
    /// The workspace id; may be left out when the key sees exactly one workspace.
    #[arg(long, short = 'w', env = "HOOKD_WORKSPACE")]
    workspace: Option<String>,
}

impl WorkspaceArg {
    pub(crate) async fn resolve(&self, client: &Client) -> Result<String, Failure> {
        if let Some(ws) = &self.workspace {
            return Ok(ws.clone());
        }
        let mut all = client.list_workspaces().await?;
        match all.len() {
            1 => Ok(all.remove(0).id),
            0 => Err(Failure::usage(
                "no workspace exists yet: create one with `hookd workspaces create`",
            )),
            n => Err(Failure::usage(format!(
                "this key sees {n} workspaces: choose one with --workspace (or HOOKD_WORKSPACE)"
            ))),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: the HTTP API and the dispatcher.
    Serve(serve::ServeArgs),
    /// Create and list workspaces.
    #[command(subcommand)]
    Workspaces(workspaces::WorkspaceCommand),
    /// Create workspace API keys.
    #[command(subcommand)]
    Keys(workspaces::KeyCommand),
    /// Create, list, read, change, delete and test webhooks.
    #[command(subcommand)]
    Webhooks(webhooks::WebhookCommand),
    /// Send records: one from flags, or many from a JSON array or NDJSON file.
    #[command(subcommand)]
    Send(send::SendCommand),
    /// List, show, retry and follow deliveries.
    #[command(subcommand)]
    Deliveries(deliveries::DeliveryCommand),
    /// Send a webhook's deliveries again, by time range and state.
    Replay(replay::ReplayArgs),
    /// Run a local receiver that prints every webhook it gets and checks its signature.
    Listen(listen::ListenArgs),
    /// Check a Standard Webhooks signature of a body read from stdin.
    Verify(verify::VerifyArgs),
    /// Generate a key for encrypting webhooks' secrets at rest (`[secrets] encryption_keys`).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Print a new random 32-byte key, base64-encoded. Put it first in `secrets.encryption_keys`
    /// (or HOOKD_SECRETS__ENCRYPTION_KEYS); keep the old key after it until hookd has started
    /// once, which re-encrypts every stored secret with the new key.
    GenerateKey,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let remote = cli.remote;
    let result = match cli.command {
        Command::Serve(args) => return serve::serve(args),
        Command::Listen(args) => return listen::listen(args),
        Command::Verify(args) => verify::verify(args),
        Command::Secrets(SecretsCommand::GenerateKey) => {
            println!("{}", hookd_core::seal::Sealer::generate_key());
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "hookd", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|e| Failure::other(e.to_string())),
        Command::Workspaces(cmd) => run(workspaces::workspaces(cmd, remote)),
        Command::Keys(cmd) => run(workspaces::keys(cmd, remote)),
        Command::Webhooks(cmd) => run(webhooks::run(cmd, remote)),
        Command::Send(cmd) => run(send::run(cmd, remote)),
        Command::Deliveries(cmd) => run(deliveries::run(cmd, remote)),
        Command::Replay(args) => run(replay::run(args, remote)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn run(command: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other(e.to_string()))?;
    runtime.block_on(command)
}
