//! `hookd workspaces …` and `hookd keys …`.

use super::output::{self, Failure};
use super::{Remote, WorkspaceArg};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum WorkspaceCommand {
    /// Create a workspace (admin key).
    Create {
        #[arg(long)]
        name: Option<String>,
    },
    /// List the workspaces this key sees.
    List,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a workspace API key; it is shown once.
    Create {
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
}

pub(crate) async fn workspaces(command: WorkspaceCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let list = match command {
        WorkspaceCommand::Create { name } => vec![client.create_workspace(name.as_deref()).await?],
        WorkspaceCommand::List => client.list_workspaces().await?,
    };
    output::print(remote.json, &list, &["ID", "NAME", "CREATED"], |list| {
        list.iter()
            .map(|w| vec![w.id.clone(), w.name.clone(), w.created_at.clone()])
            .collect()
    });
    Ok(())
}

pub(crate) async fn keys(command: KeyCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let KeyCommand::Create { workspace } = command;
    let ws = workspace.resolve(&client).await?;
    let key = client.create_api_key(&ws).await?;
    output::print_fields(remote.json, &key, |k| {
        vec![
            ("id", k.id.clone()),
            ("workspace", k.workspace_id.clone()),
            ("key", k.key.clone()),
            ("note", k.note.clone()),
        ]
    });
    Ok(())
}
