//! `hookd man`: the man page of hookd followed by one for every subcommand
//! (`hookd-webhooks-create(1)`, …), so `hookd man | man -l -` covers every flag.

use super::output::{self, Failure};

pub(super) fn render(mut command: clap::Command) -> Result<(), Failure> {
    command.build();
    let mut roff = Vec::new();
    page(&command, "hookd", &mut roff)?;
    output::write_all(&roff);
    Ok(())
}

/// Renders `command` under `name`, then each of its subcommands under `name-sub`.
fn page(command: &clap::Command, name: &str, out: &mut Vec<u8>) -> Result<(), Failure> {
    let named = command
        .clone()
        .name(name.to_owned())
        .bin_name(name.replace('-', " "))
        .version(env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(named)
        .render(out)
        .map_err(|e| Failure::other(e.to_string()))?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        page(sub, &format!("{name}-{}", sub.get_name()), out)?;
    }
    Ok(())
}
