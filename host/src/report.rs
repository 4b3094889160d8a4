//! What memory calls return: the history of a session, and what a write did.

use crate::message::Message;
use crate::store::StoreError;

/// The history of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Stored entries that were not messages and were skipped, each with why.
    pub skipped: Vec<SkippedEntry>,
    /// Set when the store failed: the history is empty because of this, not because the
    /// session is new. The agent carries on without memory; the error says why.
    pub degraded: Option<StoreError>,
}

/// A stored entry that was skipped because it is not a message: the contract's own
/// `skipped-entry` (its position among the entries read, oldest first, from 0, and why), so it
/// has one definition.
pub use crate::wit::types::SkippedEntry;

/// What [`crate::Memory::add_and_get_context`] did: the write, and the history after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a write can fail without an error: check whether it was stored"]
pub struct Turn {
    /// What the write did.
    pub outcome: WriteOutcome,
    /// The history after the write (degraded by the write's error if it failed).
    pub context: Context,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a write can fail without an error: check whether it was stored"]
pub enum WriteOutcome {
    /// The write was applied.
    Stored(Stored),
    /// The store failed. [`StoreError::may_have_applied`] tells whether it may still have
    /// been applied (an unknown outcome) or surely was not.
    Failed(StoreError),
}

impl WriteOutcome {
    /// The report of a stored write, if it was stored.
    pub fn stored(&self) -> Option<&Stored> {
        match self {
            Self::Stored(stored) => Some(stored),
            Self::Failed(_) => None,
        }
    }

    /// Whether the write was stored.
    pub fn is_stored(&self) -> bool {
        matches!(self, Self::Stored(_))
    }
}

/// A stored write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Messages this call appended.
    pub appended: u32,
    /// Messages the window dropped (older ones trimmed, and any of this call outside it).
    pub trimmed: u32,
    /// Messages the session holds now.
    pub length: u32,
    /// The messages this write evicted, oldest first, when the policy reports them (the
    /// tool-safe policy with `report-evicted=true`), so they can be summarised or archived;
    /// empty otherwise.
    pub evicted: Vec<Message>,
}

/// Why the policy refused a message. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// The encoded message is over `max_message_bytes`.
    #[error("message is {actual} bytes encoded; the limit is {limit}")]
    TooLarge {
        /// Its encoded size.
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// A member name appears twice.
    #[error("member `{0}` appears twice")]
    DuplicateMember(String),
    /// There is no `role` member whose value is a string.
    #[error("a message needs a `role` member whose value is a string")]
    NoRole,
    /// A member is not valid JSON.
    #[error("{0}")]
    InvalidJson(String),
    /// A member nests deeper than Python readers can take (an entry may nest 500 levels).
    #[error("member `{0}` nests too deeply for Python readers")]
    TooDeep(String),
}

/// Which limit of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowLimit {
    /// The most messages the window holds (`Settings::max_messages`).
    Messages,
    /// The most approximate tokens it holds (a policy's token budget, such as the tool-safe
    /// policy's `max-tokens`).
    Tokens,
}

impl std::fmt::Display for WindowLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Messages => "messages",
            Self::Tokens => "tokens",
        })
    }
}

/// Why a policy cannot store a message under its window rules. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowRefusal {
    /// Even with every message that may go trimmed, the window could not hold the message
    /// together with what must stay with it (the tool call it answers and that call's other
    /// results, a pinned system message).
    #[error(
        "it needs a window of {needed} {limit} with what must stay with it; the window holds {allowed}"
    )]
    Overflow {
        /// The limit it would break.
        limit: WindowLimit,
        /// What it needs.
        needed: u64,
        /// What the window allows.
        allowed: u64,
    },
    /// A tool result whose call is not in the session (trimmed away, or never stored): kept,
    /// it would be an orphan, which LLM APIs reject. Carries the call id.
    #[error("it answers tool call `{0}`, which is not in the session (trimmed, or never stored)")]
    OrphanResult(String),
    /// A rule of the policy's own.
    #[error("{0}")]
    PolicyRule(String),
}
