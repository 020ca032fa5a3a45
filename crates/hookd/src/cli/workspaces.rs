//! `hookd workspaces …` and `hookd keys …`.

use super::Remote;
use super::output::{self, Failure, or_dash};
use crate::model::{ApiKey, Device, Workspace};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum WorkspaceCommand {
    /// Create a workspace (admin key).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// Print only the new workspace's id (for `export HOOKD_WORKSPACE=$(…)`).
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// List the workspaces this key sees.
    List,
    /// Show one workspace.
    Get {
        /// The workspace id (`ws_…`).
        #[arg(id = "workspace_id", value_name = "WORKSPACE_ID")]
        workspace: String,
    },
    /// Rename a workspace.
    Rename {
        /// The workspace id (`ws_…`).
        #[arg(id = "workspace_id", value_name = "WORKSPACE_ID")]
        workspace: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Turn presence events on (`--offline-after 5m`: a device silent for longer is offline)
    /// or off (`--offline-after off`).
    Presence {
        /// The workspace id (`ws_…`).
        #[arg(id = "workspace_id", value_name = "WORKSPACE_ID")]
        workspace: String,
        /// How long a device may be silent, e.g. 5m; `off` for no presence events.
        #[arg(long)]
        offline_after: String,
    },
    /// List the devices the workspace heard from: fleet, state, last seen, since.
    Devices {
        /// The workspace id (`ws_…`).
        #[arg(id = "workspace_id", value_name = "WORKSPACE_ID")]
        workspace: String,
        /// Only devices in this state.
        #[arg(long, value_parser = ["online", "offline"])]
        state: Option<String>,
    },
    /// Delete a workspace and everything in it: webhooks, deliveries, records and keys.
    Delete {
        /// The workspace id (`ws_…`).
        #[arg(id = "workspace_id", value_name = "WORKSPACE_ID")]
        workspace: String,
        /// Say yes: the workspace and everything in it is deleted for good.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a workspace API key; it is shown once.
    Create {
        /// Print only the key (for `export HOOKD_KEY=$(…)`).
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// List the workspace's keys: id, prefix, created, last used (never the key itself).
    List,
    /// Revoke a key: from now on it is refused, by every hookd process.
    Revoke {
        /// The key's id (`key_…`).
        #[arg(id = "key_id", value_name = "KEY_ID")]
        key: String,
    },
}

const WORKSPACE_HEADER: [&str; 3] = ["ID", "NAME", "CREATED"];

fn workspace_row(w: &Workspace) -> Vec<String> {
    vec![w.id.clone(), w.name.clone(), w.created_at.clone()]
}

fn show_workspace(json: bool, workspace: &Workspace) {
    output::fields(json, workspace, |w| {
        vec![
            ("id", w.id.clone()),
            ("name", w.name.clone()),
            ("created", w.created_at.clone()),
            (
                "presence",
                match &w.presence.offline_after {
                    Some(after) => format!("offline after {after} of silence"),
                    None => "off".into(),
                },
            ),
        ]
    });
}

const DEVICE_HEADER: [&str; 5] = ["DEVICE", "FLEET", "STATE", "LAST SEEN", "SINCE"];

fn device_row(d: &Device) -> Vec<String> {
    vec![
        d.device_id.clone(),
        or_dash(d.fleet_id.as_deref()),
        d.state.clone(),
        d.last_seen.clone(),
        d.since.clone(),
    ]
}

pub(crate) async fn workspaces(command: WorkspaceCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    match command {
        WorkspaceCommand::Create { name, quiet } => {
            let created = client.create_workspace(&name).await?;
            if quiet {
                out!("{}", created.id);
            } else {
                show_workspace(remote.json, &created);
            }
        }
        WorkspaceCommand::List => {
            let list = client.list_workspaces().await?;
            output::list(remote.json, &list, &WORKSPACE_HEADER, workspace_row);
        }
        WorkspaceCommand::Get { workspace } => show_workspace(remote.json, &client.get_workspace(&workspace).await?),
        WorkspaceCommand::Rename { workspace, name } => {
            show_workspace(remote.json, &client.rename_workspace(&workspace, &name).await?);
        }
        WorkspaceCommand::Presence {
            workspace,
            offline_after,
        } => {
            let after = (offline_after != "off").then_some(offline_after.as_str());
            show_workspace(remote.json, &client.set_presence(&workspace, after).await?);
        }
        WorkspaceCommand::Devices { workspace, state } => {
            let mut devices = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = client
                    .list_devices(&workspace, state.as_deref(), after.as_deref())
                    .await?;
                devices.extend(page.data);
                match page.next_cursor {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            output::list(remote.json, &devices, &DEVICE_HEADER, device_row);
        }
        WorkspaceCommand::Delete { workspace, yes } => {
            if !yes {
                return Err(Failure::usage(format!(
                    "deleting {workspace} deletes its webhooks, deliveries, records and keys for good: add --yes to go ahead"
                )));
            }
            let deleted = client.delete_workspace(&workspace).await?;
            output::fields(remote.json, &deleted, |d| vec![("deleted", d.deleted.clone())]);
        }
    }
    Ok(())
}

pub(crate) async fn keys(command: KeyCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let ws = remote.workspace(&client).await?;
    match command {
        KeyCommand::Create { quiet } => {
            let key = client.create_api_key(&ws).await?;
            if quiet {
                out!("{}", key.key);
                return Ok(());
            }
            output::fields(remote.json, &key, |k| {
                vec![
                    ("id", k.id.clone()),
                    ("workspace", k.workspace_id.clone()),
                    ("key", k.key.clone()),
                    ("note", k.note.clone()),
                ]
            });
        }
        KeyCommand::List => {
            let keys = client.list_api_keys(&ws).await?;
            output::list(
                remote.json,
                &keys,
                &["ID", "PREFIX", "CREATED", "LAST USED"],
                |k: &ApiKey| {
                    vec![
                        k.id.clone(),
                        format!("{}…", k.prefix),
                        k.created_at.clone(),
                        or_dash(k.last_used_at.clone()),
                    ]
                },
            );
        }
        KeyCommand::Revoke { key } => {
            let revoked = client.revoke_api_key(&ws, &key).await?;
            output::fields(remote.json, &revoked, |r| vec![("revoked", r.revoked.clone())]);
        }
    }
    Ok(())
}
