//! The command line. `serve` runs the gateway; the other commands are tools around it.
//!
//! Exit codes: 0 success, 1 failure (the error is on stderr), 2 bad usage or configuration.

mod listen;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hookd",
    version,
    about = "A webhook gateway in one binary: durable ingest, filtered, signed, retried and logged delivery."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: the HTTP API and the dispatcher.
    Serve(serve::ServeArgs),
    /// Run a local receiver that prints every webhook it gets and checks its signature.
    Listen(listen::ListenArgs),
}

pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve::serve(args),
        Command::Listen(args) => listen::listen(args),
    }
}
