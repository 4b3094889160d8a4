//! The compiled-policy cache: wasmtime artifacts on disk, one per component and engine
//! configuration, so that a process skips compiling a policy another process already compiled
//! (a Python or JavaScript policy takes tens of seconds; its artifact loads in well under one).
//!
//! Files are named `{component sha256}-{engine compatibility hash}.cwasm`; only files of that
//! form are ever read, replaced or evicted, so the directory may hold other things. The cache
//! is bounded ([`MAX_CACHE_BYTES`]): after a write, the artifacts used least recently go first.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Most bytes of artifacts kept in one cache directory: 1 GiB, about 30 interpreted policies
/// (an artifact of a 13-19 MB component is 26-38 MB) or thousands of compiled ones.
pub(crate) const MAX_CACHE_BYTES: u64 = 1 << 30;

/// Where the artifact of the component with `digest`, compiled by `engine`, is kept.
pub(crate) fn path(engine: &Engine, cache_dir: &Path, digest: &str) -> PathBuf {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    cache_dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// The artifact at `path`, if there is one, marked as just used (its modification time, which
/// eviction goes by).
///
/// Read into memory rather than mapped: a mapping would crash the process (SIGBUS) if anyone
/// truncated or rewrote the file in place while it runs.
pub(crate) fn read(path: &Path) -> Option<Vec<u8>> {
    let artifact = std::fs::read(path).ok()?;
    // Best effort: a cache whose times cannot be set still serves, it only evicts less well.
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
    Some(artifact)
}

/// Keep `component`'s artifact at `path`.
pub(crate) fn write(component: &Component, path: &Path) -> wasmtime::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = component.serialize()?;
    // Write then rename, so a concurrent reader never sees half a file.
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// Delete the artifacts in `cache_dir` used least recently until the rest hold at most
/// `keep_bytes`. Errors are ignored: a cache that cannot be trimmed still serves.
pub(crate) fn evict(cache_dir: &Path, keep_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    let mut artifacts: Vec<(SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|entry| is_artifact_name(&entry.file_name().to_string_lossy()))
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            Some((metadata.modified().ok()?, metadata.len(), entry.path()))
        })
        .collect();
    // Newest first: they are kept.
    artifacts.sort_by_key(|(modified, _, _)| std::cmp::Reverse(*modified));
    let mut kept = 0u64;
    for (_, len, path) in artifacts {
        kept = kept.saturating_add(len);
        if kept > keep_bytes {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `{64 hex}-{16 hex}.cwasm`: a name [`path`] makes.
fn is_artifact_name(name: &str) -> bool {
    let hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|byte| byte.is_ascii_hexdigit())
    };
    name.strip_suffix(".cwasm")
        .and_then(|stem| stem.split_once('-'))
        .is_some_and(|(digest, engine)| hex(digest, 64) && hex(engine, 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn artifact(dir: &Path, n: u8, len: usize, age: Duration) -> PathBuf {
        let path = dir.join(format!(
            "{}-{:016x}.cwasm",
            format!("{n:02x}").repeat(32),
            n
        ));
        std::fs::write(&path, vec![0; len]).unwrap();
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
        path
    }

    #[test]
    fn the_least_recently_used_artifacts_go_first_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let oldest = artifact(dir.path(), 1, 100, Duration::from_secs(300));
        let older = artifact(dir.path(), 2, 100, Duration::from_secs(200));
        let newest = artifact(dir.path(), 3, 100, Duration::from_secs(100));
        let foreign = dir.path().join("notes.cwasm");
        std::fs::write(&foreign, vec![0; 1000]).unwrap();
        // Reading marks an artifact used: the oldest becomes the newest.
        assert!(read(&oldest).is_some());
        evict(dir.path(), 250);
        assert!(oldest.exists(), "the artifact just read was evicted");
        assert!(newest.exists());
        assert!(!older.exists(), "the least recently used artifact was kept");
        assert!(
            foreign.exists(),
            "a file the cache did not make was removed"
        );
        evict(dir.path(), 0);
        assert!(!oldest.exists() && !newest.exists());
        assert!(foreign.exists());
    }
}
