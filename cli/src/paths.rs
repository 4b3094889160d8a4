//! Where the CLI keeps things when told nothing: the XDG base directories.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// The embedded store file: `$XDG_DATA_HOME/agent-memory/memory.redb`, or under
/// `~/.local/share` when that is unset.
pub fn default_store_file() -> anyhow::Result<PathBuf> {
    Ok(base_dir("XDG_DATA_HOME", ".local/share")?
        .join("agent-memory")
        .join("memory.redb"))
}

/// The compiled-policy cache: `$XDG_CACHE_HOME/agent-memory/policies`, or under `~/.cache`.
pub fn default_cache_dir() -> anyhow::Result<PathBuf> {
    Ok(base_dir("XDG_CACHE_HOME", ".cache")?
        .join("agent-memory")
        .join("policies"))
}

fn base_dir(variable: &str, under_home: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(variable).filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        // The XDG spec says relative paths are invalid and must be ignored.
        if dir.is_absolute() {
            return Ok(dir);
        }
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .context("neither $XDG_* nor $HOME is set: pass --store")?;
    let home = PathBuf::from(home);
    if !home.is_absolute() {
        bail!("$HOME is not an absolute path: pass --store");
    }
    Ok(home.join(under_home))
}
