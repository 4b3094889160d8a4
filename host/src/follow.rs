//! Following a policy file: a runtime swaps its policy whenever the file changes, with one
//! call ([`Memory::follow_policy_file`]). Every version goes through the handle's checks
//! (`crate::swap`); a bad one is reported and the serving one keeps serving.
//!
//! The file is polled (its bytes hashed every interval), not watched: no platform-specific
//! notification to miss, and deployment tools that replace a file by renaming over it are seen
//! the same way as an edit in place. A version is acted on once, by digest.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::LoadError;
use crate::memory::Memory;
use crate::policy::{self, read_policy_file};

/// What following a policy file has come to.
#[derive(Debug, Clone)]
pub enum FollowStatus {
    /// Serving the version with this digest, read from the file (or, before the first read,
    /// the one the handle had).
    Serving {
        /// SHA-256 of the component, hex.
        digest: String,
    },
    /// The file's latest version was refused; the version with `serving` keeps serving.
    Refused {
        /// The digest (SHA-256, hex) of the version refused.
        refused: String,
        /// Why, as the swap refused it (shared: a status is cloned for every watcher).
        error: Arc<LoadError>,
        /// The digest of the version still serving.
        serving: String,
    },
    /// The file could not be read at the last [`UNREADABLE_AFTER`] checks in a row (deleted,
    /// permissions, not a regular file); the version with `serving` keeps serving.
    Unreadable {
        /// Why, from the last check.
        error: String,
        /// The digest of the version serving.
        serving: String,
    },
}

/// Failed reads in a row before a follower reports the file [`FollowStatus::Unreadable`]: a
/// deployment that replaces the file may leave it missing for a moment.
pub const UNREADABLE_AFTER: u32 = 3;

/// A task following a policy file (see [`Memory::follow_policy_file`]). Stops when dropped.
#[derive(Debug)]
pub struct PolicyFollower {
    status: watch::Receiver<FollowStatus>,
    task: tokio::task::AbortHandle,
}

impl PolicyFollower {
    /// What the latest check of the file came to.
    pub fn status(&self) -> FollowStatus {
        self.status.borrow().clone()
    }

    /// Wait until the status changes, and return it. `None` once the follower has stopped.
    pub async fn changed(&mut self) -> Option<FollowStatus> {
        self.status.changed().await.ok()?;
        Some(self.status.borrow_and_update().clone())
    }
}

impl Drop for PolicyFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Memory {
    /// Follow the policy file at `path`: check it every `interval`, and when its contents
    /// change, replace the policy with it ([`Memory::replace_policy_file`]'s checks). A version
    /// that is refused is logged and reported by [`PolicyFollower::status`]; the policy serving
    /// keeps serving until a good version appears. Stops when the returned follower is
    /// dropped. Needs a tokio runtime. A file that cannot be read [`UNREADABLE_AFTER`] times
    /// in a row is reported as [`FollowStatus::Unreadable`] (and logged once).
    pub fn follow_policy_file(
        &self,
        path: impl Into<PathBuf>,
        interval: Duration,
    ) -> PolicyFollower {
        follow(self.clone(), path.into(), interval)
    }
}

fn follow(memory: Memory, path: PathBuf, interval: Duration) -> PolicyFollower {
    let (sender, status) = watch::channel(FollowStatus::Serving {
        digest: memory.policy().digest().to_string(),
    });
    let task = tokio::spawn(async move {
        // The digest last acted on (published or refused): a file is read every interval, but a
        // version is checked once.
        let mut seen = Some(memory.policy().digest().to_string());
        let mut failed_reads = 0u32;
        let path = Arc::new(path);
        loop {
            let read_path = Arc::clone(&path);
            let bytes = tokio::task::spawn_blocking(move || read_policy_file(&read_path)).await;
            match bytes {
                Ok(Ok(bytes)) => {
                    if failed_reads >= UNREADABLE_AFTER {
                        // Readable again: until a new version is checked, the status is the
                        // version serving.
                        sender.send_replace(FollowStatus::Serving {
                            digest: memory.policy().digest().to_string(),
                        });
                    }
                    failed_reads = 0;
                    let digest = policy::digest(&bytes);
                    if seen.as_deref() != Some(digest.as_str()) {
                        seen = Some(digest.clone());
                        let origin = path.display().to_string();
                        let next = match memory.replace_policy_bytes(bytes, &origin).await {
                            Ok(policy) => FollowStatus::Serving {
                                digest: policy.digest().to_string(),
                            },
                            Err(error) => FollowStatus::Refused {
                                refused: digest,
                                error: Arc::new(error),
                                serving: memory.policy().digest().to_string(),
                            },
                        };
                        sender.send_replace(next);
                    }
                }
                // A file being replaced may be missing or unreadable for a moment: keep
                // serving, and try again next interval.
                Ok(Err(error)) => {
                    failed_reads = failed_reads.saturating_add(1);
                    if failed_reads == UNREADABLE_AFTER {
                        tracing::warn!(target: "agent_memory::policy", %error, path = %path.display(), "policy file not readable; the current policy keeps serving");
                        sender.send_replace(FollowStatus::Unreadable {
                            error: error.to_string(),
                            serving: memory.policy().digest().to_string(),
                        });
                    } else {
                        tracing::debug!(target: "agent_memory::policy", %error, path = %path.display(), "policy file not readable");
                    }
                }
                Err(error) => {
                    tracing::warn!(target: "agent_memory::policy", %error, "reading the policy file failed");
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
    PolicyFollower {
        status,
        task: task.abort_handle(),
    }
}
