//! `hookd verify`: checks a Standard Webhooks signature, for receivers' scripts and CI.
//! Exit 0 when valid; 1 with the reason on stderr when not.

use std::io::Read;

use hookd_core::clock::{Clock, SystemClock};
use hookd_core::signature::{DEFAULT_TOLERANCE_SECS, verify as check};

use super::output::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The webhook's signing secret (`whsec_…`).
    #[arg(long, env = "HOOKD_VERIFY_SECRET", hide_env_values = true)]
    secret: String,
    /// The `webhook-id` header.
    #[arg(long)]
    id: String,
    /// The `webhook-timestamp` header (Unix seconds).
    #[arg(long)]
    timestamp: String,
    /// The `webhook-signature` header (one or more `v1,…` separated by spaces).
    #[arg(long)]
    signature: String,
    /// How far the timestamp may be from now, in seconds.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE_SECS)]
    tolerance: i64,
}

pub(crate) fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| Failure::other(format!("cannot read the body from stdin: {e}")))?;
    let now = SystemClock.now() / 1000;
    match check(
        &args.secret,
        &args.id,
        &args.timestamp,
        &args.signature,
        &body,
        now,
        args.tolerance,
    ) {
        Ok(()) => {
            out!("valid");
            Ok(())
        }
        Err(err) => Err(Failure::other(format!("invalid signature: {err}"))),
    }
}
