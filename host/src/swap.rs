//! Replacing a handle's policy: the checks a new version passes first, and following a file.
//!
//! A version is published only after it has been compiled and checked against the world
//! ([`crate::Policy`]), tried with the handle's own limits, and run through a self-check of the
//! memory contract with the handle's settings against a store in memory. The self-check
//! catches a component that type-checks but does not keep what it writes; it cannot catch one
//! that behaves only while it is being checked (nothing can, from outside): a policy is code
//! you chose to run, sandboxed so that its worst is a wrong answer about its own session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::bindings as wit;
use crate::error::LoadError;
use crate::memory::Memory;
use crate::policy::{Policy, read_policy_file};
use crate::sandbox::{self, Call, PolicyResult};
use crate::session::SessionId;
use crate::settings::{Limits, Settings};
use crate::store::Store;

/// The session the self-check writes, in its own store in memory.
const SELF_CHECK_SESSION: &str = "agent-memory-self-check";

/// Run every check a handle makes before it takes `policy`.
pub(crate) async fn admit(
    policy: &Policy,
    settings: &Settings,
    limits: &Limits,
) -> Result<(), LoadError> {
    policy.trial_instantiation(limits)?;
    self_check(policy, settings, limits)
        .await
        .map_err(LoadError::SelfCheck)
}

/// Write, read back, write-and-read, clear and read again, against a fresh store in memory;
/// every answer must be consistent with the writes and with what the policy reported.
async fn self_check(policy: &Policy, settings: &Settings, limits: &Limits) -> Result<(), String> {
    let store = Store::from(crate::store::InMemoryStore::new());
    let session = SessionId::try_from(SELF_CHECK_SESSION).map_err(|error| error.to_string())?;
    let call = || Call {
        policy,
        store: &store,
        settings,
        limits,
        session_id: session.as_str(),
    };
    let first = text_message("user", "agent-memory self-check: one");
    let second = text_message("assistant", "agent-memory self-check: two");

    let stored = stored(
        "add-messages",
        sandbox::add_messages(call(), vec![first.clone()]).await,
    )?;
    let context = answer("get-context", sandbox::get_context(call()).await)?;
    expect_window("get-context after a write", &context, &stored, &first)?;

    let turn = answer(
        "add-and-get-context",
        sandbox::add_and_get_context(call(), vec![second.clone()]).await,
    )?;
    let stored = written("add-and-get-context", turn.outcome)?;
    expect_window("add-and-get-context", &turn.context, &stored, &second)?;

    let cleared = written("clear", answer("clear", sandbox::clear(call()).await)?)?;
    if cleared.appended != 0 {
        return Err(format!(
            "clear reported {} messages appended",
            cleared.appended
        ));
    }
    let context = answer("get-context", sandbox::get_context(call()).await)?;
    if !context.messages.is_empty() {
        return Err(format!(
            "get-context after clear returned {} messages",
            context.messages.len()
        ));
    }
    Ok(())
}

fn text_message(role: &str, text: &str) -> wit::Message {
    wit::Message {
        role: role.to_string(),
        content: Some(wit::Content::Text(text.to_string())),
        extra: Vec::new(),
    }
}

/// The policy's answer to one call of the self-check, or why there is none.
fn answer<T>(
    operation: &str,
    result: Result<PolicyResult<T>, crate::PolicyError>,
) -> Result<T, String> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(refused)) => Err(format!("{operation} refused a valid request: {refused:?}")),
        Err(error) => Err(format!("{operation} failed: {error}")),
    }
}

fn stored(
    operation: &str,
    result: Result<PolicyResult<wit::WriteOutcome>, crate::PolicyError>,
) -> Result<wit::Stored, String> {
    written(operation, answer(operation, result)?)
}

fn written(operation: &str, outcome: wit::WriteOutcome) -> Result<wit::Stored, String> {
    match outcome {
        wit::WriteOutcome::Stored(stored) => Ok(stored),
        wit::WriteOutcome::Failed(error) => Err(format!(
            "{operation} failed against a store in memory that cannot fail: {error:?}"
        )),
    }
}

/// What a read after a write of one message must show: as many messages as the write said the
/// session holds, ending with the message written, unless the window dropped it at once (then
/// it was not appended, is counted as trimmed, and the window is empty).
fn expect_window(
    what: &str,
    context: &wit::Context,
    stored: &wit::Stored,
    written: &wit::Message,
) -> Result<(), String> {
    if context.degraded.is_some() {
        return Err(format!("{what}: degraded reading a store in memory"));
    }
    if context.messages.len() != stored.length as usize {
        return Err(format!(
            "{what}: the write reported {} messages held, the read returned {}",
            stored.length,
            context.messages.len()
        ));
    }
    match (stored.appended, context.messages.last()) {
        (1, Some(last)) if last == written => Ok(()),
        (1, _) => Err(format!(
            "{what}: the newest message read is not the one written"
        )),
        (0, None) if stored.trimmed >= 1 => Ok(()),
        (0, _) => Err(format!(
            "{what}: reported nothing appended, yet did not drop the message"
        )),
        (appended, _) => Err(format!(
            "{what}: reported {appended} messages appended for one written"
        )),
    }
}

/// What following a policy file has come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowStatus {
    /// Serving the version with this digest, read from the file (or, before the first read,
    /// the one the handle had).
    Serving {
        /// SHA-256 of the component, hex.
        digest: String,
    },
    /// The file's latest version was refused; the version with `serving` keeps serving.
    Refused {
        /// Why.
        error: String,
        /// The digest of the version still serving.
        serving: String,
    },
}

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

pub(crate) fn follow(memory: Memory, path: PathBuf, interval: Duration) -> PolicyFollower {
    let (sender, status) = watch::channel(FollowStatus::Serving {
        digest: memory.policy().digest().to_string(),
    });
    let task = tokio::spawn(async move {
        // The digest last acted on (published or refused): a file is read every interval, but a
        // version is checked once.
        let mut seen = Some(memory.policy().digest().to_string());
        let path = Arc::new(path);
        loop {
            let read_path = Arc::clone(&path);
            let bytes = tokio::task::spawn_blocking(move || read_policy_file(&read_path)).await;
            match bytes {
                Ok(Ok(bytes)) => {
                    let digest = crate::policy::digest(&bytes);
                    if seen.as_deref() != Some(digest.as_str()) {
                        seen = Some(digest.clone());
                        let origin = path.display().to_string();
                        let next = match memory.replace_policy_bytes(bytes, &origin).await {
                            Ok(policy) => FollowStatus::Serving {
                                digest: policy.digest().to_string(),
                            },
                            Err(error) => FollowStatus::Refused {
                                error: format!("{error}"),
                                serving: memory.policy().digest().to_string(),
                            },
                        };
                        sender.send_replace(next);
                    }
                }
                // A file being replaced may be missing or unreadable for a moment: keep
                // serving, and try again next interval.
                Ok(Err(error)) => {
                    tracing::debug!(target: "agent_memory::policy", %error, path = %path.display(), "policy file not readable");
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
