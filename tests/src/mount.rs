//! [`Mount`]: a small filesystem a test owns (a tmpfs of a given size, or a read-only view of a
//! directory), for the faults only a filesystem can produce: a full disk, a read-only file.
//! Mounting needs root; without it the test says so and skips, rather than pass silently.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount point, unmounted on drop.
pub struct Mount {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Mount {
    /// A tmpfs of `bytes` bytes, or `None` (with a note on stderr) when not running as root.
    pub fn tmpfs(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a mount point");
        let size = format!("size={bytes}");
        Self::mounted(dir, &["-t", "tmpfs", "-o", &size, "tmpfs"])
    }

    /// `source` seen read-only at a new mount point, or `None` when not running as root.
    pub fn read_only_view(source: &Path) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a mount point");
        let source = source.to_str().expect("a UTF-8 path");
        let mut mount = Self::mounted(dir, &["--bind", source])?;
        let target = mount.path().to_str().expect("a UTF-8 path").to_string();
        run(&["-o", "remount,bind,ro", &target]);
        mount.mounted = true;
        Some(mount)
    }

    fn mounted(dir: tempfile::TempDir, args: &[&str]) -> Option<Self> {
        if !running_as_root() {
            eprintln!("SKIPPED: mounting a filesystem needs root (CI runs as root)");
            return None;
        }
        let target = dir.path().to_str().expect("a UTF-8 path").to_string();
        let mut all = args.to_vec();
        all.push(&target);
        run(&all);
        Some(Self { dir, mounted: true })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the mount.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn run(args: &[&str]) {
    let status = Command::new("mount")
        .args(args)
        .status()
        .expect("running mount");
    assert!(
        status.success(),
        "mount {args:?} failed although running as root"
    );
}

fn running_as_root() -> bool {
    // /proc/self/status: "Uid:\t<real>\t<effective>\t..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|id| id == "0"))
        })
        .unwrap_or(false)
}
