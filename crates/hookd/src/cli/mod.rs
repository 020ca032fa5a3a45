//! The command line. `serve` runs the gateway; `listen` and `verify` are receiver-side tools;
//! every other command talks to a running hookd through [`crate::client::Client`].
//!
//! The connection flags (`--server`, `--key`, `-w/--workspace`, `--json`) are accepted before
//! the command and after it, and only commands that talk to hookd list them.
//!
//! Exit codes: 0 success; 1 hookd refused the request (its error code and message are printed
//! on stderr), or a signature did not verify; 2 bad usage or configuration; 3 hookd could not
//! be reached.

#[macro_use]
mod output;

mod deliveries;
mod listen;
mod manual;
mod replay;
mod send;
mod serve;
mod sources;
mod verify;
mod webhooks;
mod workspaces;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::client::Client;
use output::Failure;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

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
    connection: TopConnection,
    #[command(subcommand)]
    command: Command,
}

/// Declares the flags that say how to reach hookd, once for before the command (`global =
/// false`) and once for after it (`global = true`, so every subcommand of a group takes them).
macro_rules! connection_flags {
    ($name:ident, global = $global:literal) => {
        #[derive(Debug, Clone, Default, clap::Args)]
        pub(crate) struct $name {
            /// hookd's base URL [default: http://127.0.0.1:8080]
            #[arg(long, env = "HOOKD_URL", hide_env_values = true, value_name = "URL", global = $global, help_heading = "Connection")]
            server: Option<String>,
            /// An API key: the admin key or a workspace key.
            #[arg(long, env = "HOOKD_KEY", hide_env_values = true, global = $global, help_heading = "Connection")]
            key: Option<String>,
            /// The workspace; may be left out when the key sees exactly one.
            #[arg(long, short = 'w', env = "HOOKD_WORKSPACE", hide_env_values = true, global = $global, help_heading = "Connection")]
            workspace: Option<String>,
            /// Print JSON: an object for one thing, an array for a list.
            #[arg(long, global = $global, help_heading = "Connection")]
            json: bool,
        }

        impl $name {
            fn parts(self) -> (Option<String>, Option<String>, Option<String>, bool) {
                (self.server, self.key, self.workspace, self.json)
            }
        }
    };
}

connection_flags!(TopConnection, global = false);
connection_flags!(Connection, global = true);

/// How to reach a running hookd, and in which workspace: the flags after the command, else
/// those before it, else the environment.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    server: String,
    key: Option<String>,
    workspace: Option<String>,
    pub(crate) json: bool,
}

impl Remote {
    fn merge(before: TopConnection, after: Connection) -> Self {
        let (server, key, workspace, json) = before.parts();
        let (server_after, key_after, workspace_after, json_after) = after.parts();
        Self {
            server: server_after.or(server).unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
            key: key_after.or(key),
            workspace: workspace_after.or(workspace),
            json: json || json_after,
        }
    }

    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    pub(crate) fn client(&self) -> Result<Client, Failure> {
        let key = self
            .key
            .as_deref()
            .ok_or_else(|| Failure::usage("an API key is needed: pass --key or set HOOKD_KEY"))?;
        Ok(Client::new(&self.server, key))
    }

    /// The workspace to work in: `-w`, or the only one the key sees.
    pub(crate) async fn workspace(&self, client: &Client) -> Result<String, Failure> {
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
                "this key sees {n} workspaces: choose one with -w/--workspace (or HOOKD_WORKSPACE)"
            ))),
        }
    }
}

/// A command group that talks to hookd: its connection flags, then its subcommand.
#[derive(Debug, clap::Args)]
struct Remotely<C: Subcommand> {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: C,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: the HTTP API and the dispatcher.
    Serve(serve::ServeArgs),
    /// Create, list, read, rename and delete workspaces.
    Workspaces(Remotely<workspaces::WorkspaceCommand>),
    /// Create, list and revoke workspace API keys.
    Keys(Remotely<workspaces::KeyCommand>),
    /// Create, list, read, change, delete and test webhooks.
    Webhooks(Box<Remotely<webhooks::WebhookCommand>>),
    /// Send records: one from flags, or many from a JSON array or NDJSON file.
    Send(Remotely<send::SendCommand>),
    /// List, show, retry and follow deliveries; read the records they carry.
    Deliveries(Remotely<deliveries::DeliveryCommand>),
    /// Receive webhooks: create sources (inbound doors), read their request log, replay and
    /// preview their programs.
    Sources(Remotely<sources::SourceCommand>),
    /// Send a webhook's deliveries again, by time range and state.
    Replay {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        args: replay::ReplayArgs,
    },
    /// Run a local receiver that prints every webhook it gets and checks its signature.
    Listen(listen::ListenArgs),
    /// Check a Standard Webhooks signature of a body read from stdin.
    Verify(verify::VerifyArgs),
    /// Generate a key for encrypting webhooks' secrets at rest (`[secrets] encryption_keys`).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print shell completions.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of hookd and every subcommand.
    Man,
    /// Run sources' jq programs for `hookd serve`, one JSON request per line on stdin (started
    /// by hookd itself; not for people).
    #[command(hide = true)]
    ReshapeWorker {
        /// The address space this worker may use, in MiB.
        #[arg(long)]
        memory_mb: u64,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Print a new random 32-byte key, base64-encoded. Put it first in `secrets.encryption_keys`
    /// (or HOOKD_SECRETS__ENCRYPTION_KEYS); keep the old key after it until hookd has started
    /// once, which re-encrypts every stored secret with the new key.
    GenerateKey,
}

/// The whole command line, as `--help`, completions and man pages describe it.
pub fn command() -> clap::Command {
    Cli::command()
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let before = cli.connection;
    let remote = |after: Connection| Remote::merge(before.clone(), after);
    let result = match cli.command {
        Command::Serve(args) => return serve::serve(args),
        Command::Listen(args) => return listen::listen(args),
        Command::Verify(args) => verify::verify(args),
        Command::Secrets(SecretsCommand::GenerateKey) => {
            out!("{}", hookd_core::seal::Sealer::generate_key());
            Ok(())
        }
        Command::Completions { shell } => {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hookd", &mut buffer);
            output::write_all(&buffer);
            Ok(())
        }
        Command::Man => manual::render(Cli::command()),
        Command::ReshapeWorker { memory_mb } => {
            crate::sandbox::worker_main(memory_mb).map_err(|e| output::Failure::other(format!("reshape worker: {e}")))
        }
        Command::Workspaces(group) => run(workspaces::workspaces(group.command, remote(group.connection))),
        Command::Keys(group) => run(workspaces::keys(group.command, remote(group.connection))),
        Command::Webhooks(group) => run(webhooks::run(group.command, remote(group.connection))),
        Command::Sources(group) => run(sources::run(group.command, remote(group.connection))),
        Command::Send(group) => run(send::run(group.command, remote(group.connection))),
        Command::Deliveries(group) => run(deliveries::run(group.command, remote(group.connection))),
        Command::Replay { connection, args } => run(replay::run(args, remote(connection))),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag and positional argument of every command, with the command's path.
    fn every_argument(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            out.push((path.to_owned(), arg.clone()));
        }
        for sub in command.get_subcommands() {
            every_argument(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    fn built() -> clap::Command {
        let mut command = Cli::command();
        command.build();
        command
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_says_what_it_does() {
        let mut args = Vec::new();
        every_argument(&built(), "hookd", &mut args);
        let undocumented: Vec<String> = args
            .iter()
            .filter(|(_, arg)| !["help", "version"].contains(&arg.get_id().as_str()))
            .filter(|(_, arg)| arg.get_help().is_none_or(|h| h.to_string().trim().is_empty()))
            .map(|(path, arg)| format!("{path} {}", arg.get_id()))
            .collect();
        assert!(undocumented.is_empty(), "flags without help: {undocumented:?}");
    }

    #[test]
    fn only_commands_that_talk_to_hookd_take_the_connection_flags() {
        let command = built();
        for name in ["serve", "listen", "verify", "secrets", "completions", "man"] {
            let sub = command.find_subcommand(name).unwrap();
            let mut args = Vec::new();
            every_argument(sub, name, &mut args);
            for (path, arg) in args {
                assert!(
                    !["key", "json", "server", "workspace"].contains(&arg.get_id().as_str()),
                    "{path} lists --{}",
                    arg.get_id()
                );
            }
        }
        let create = command
            .find_subcommand("webhooks")
            .and_then(|w| w.find_subcommand("create"))
            .unwrap();
        for flag in ["key", "json", "server", "workspace", "url"] {
            assert!(
                create.get_arguments().any(|a| a.get_id() == flag),
                "webhooks create lacks --{flag}"
            );
        }
    }

    #[test]
    fn no_argument_of_a_command_shares_an_id_with_a_connection_flag() {
        let mut args = Vec::new();
        every_argument(&built(), "hookd", &mut args);
        for (path, arg) in args {
            if ["key", "json", "server", "workspace"].contains(&arg.get_id().as_str()) {
                assert!(
                    arg.is_global_set() || path == "hookd",
                    "{path} has an argument `{}` that would overwrite the connection flag",
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn connection_flags_are_taken_before_or_after_the_command() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Webhooks(group) = cli.command else {
                panic!("not webhooks")
            };
            Remote::merge(cli.connection, group.connection)
        };
        let before = parse(&[
            "hookd", "--server", "http://a", "-w", "ws_1", "--json", "webhooks", "list",
        ]);
        let after = parse(&[
            "hookd", "webhooks", "list", "--server", "http://a", "-w", "ws_1", "--json",
        ]);
        for remote in [before, after] {
            assert_eq!(remote.server, "http://a");
            assert_eq!(remote.workspace.as_deref(), Some("ws_1"));
            assert!(remote.json);
        }
        let both = parse(&[
            "hookd",
            "--server",
            "http://before",
            "webhooks",
            "list",
            "--server",
            "http://after",
        ]);
        assert_eq!(both.server, "http://after", "the flag nearest the command's own wins");
    }
}
