//! The admin key: from `HOOKD_ADMIN_KEY`, or generated on first start and kept in
//! `<data_dir>/admin.key` (mode 0600).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::config::Settings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Given in the configuration or environment.
    Configured,
    /// Read from the key file of an earlier start.
    Stored(PathBuf),
    /// Generated now and written to this file: print it, once.
    Generated(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AdminKey {
    pub key: String,
    pub origin: Origin,
}

pub fn load_or_create(settings: &Settings) -> anyhow::Result<AdminKey> {
    if let Some(key) = settings.admin_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        if key.len() < 16 {
            anyhow::bail!("the admin key (HOOKD_ADMIN_KEY) must be at least 16 characters");
        }
        return Ok(AdminKey {
            key: key.to_owned(),
            origin: Origin::Configured,
        });
    }
    if settings.database_url.is_some() {
        anyhow::bail!("with PostgreSQL, set the admin key with HOOKD_ADMIN_KEY so every hookd process shares it");
    }
    let path = settings.data_dir.join("admin.key");
    if path.exists() {
        let key = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the admin key file {}", path.display()))?;
        let key = key.trim().to_owned();
        if key.is_empty() {
            anyhow::bail!(
                "the admin key file {} is empty; delete it to generate a new key",
                path.display()
            );
        }
        return Ok(AdminKey {
            key,
            origin: Origin::Stored(path),
        });
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("hk_admin_{}", URL_SAFE_NO_PAD.encode(bytes));
    write_private(&path, &key).with_context(|| format!("cannot write the admin key file {}", path.display()))?;
    Ok(AdminKey {
        key,
        origin: Origin::Generated(path),
    })
}

fn write_private(path: &std::path::Path, key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
