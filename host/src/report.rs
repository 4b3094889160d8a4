//! What memory calls return: the history of a session, and what a write did.

use crate::bindings;
use crate::message::Message;
use crate::store::StoreError;

/// The history of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Stored entries that were not messages and were skipped.
    pub skipped: u32,
    /// Set when the store failed: the history is empty because of this, not because the
    /// session is new. The agent carries on without memory; the error says why.
    pub degraded: Option<StoreError>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Messages this call appended.
    pub appended: u32,
    /// Messages the window dropped (older ones trimmed, and any of this call outside it).
    pub trimmed: u32,
    /// Messages the session holds now.
    pub length: u32,
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
    /// An extra member is named `role` or `content`, or appears twice.
    #[error("member `{0}` appears twice")]
    DuplicateMember(String),
    /// A member is not valid JSON.
    #[error("{0}")]
    InvalidJson(String),
}

impl From<bindings::StoreError> for StoreError {
    fn from(error: bindings::StoreError) -> Self {
        use bindings::StoreError as Wit;
        match error {
            Wit::Unavailable(reason) => Self::Unavailable(reason),
            Wit::Timeout => Self::Timeout,
            Wit::OutcomeUnknown(reason) => Self::OutcomeUnknown(reason),
            Wit::OutOfMemory => Self::OutOfMemory,
            Wit::WrongType => Self::WrongType,
            Wit::TooLarge(limit) => Self::TooLarge {
                what: limit.what,
                actual: limit.actual,
                limit: limit.limit,
            },
            Wit::Denied(reason) => Self::Denied(reason),
            Wit::Rejected(reason) => Self::Rejected(reason),
        }
    }
}

impl From<StoreError> for bindings::StoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => Self::Unavailable(reason),
            StoreError::Timeout => Self::Timeout,
            StoreError::OutcomeUnknown(reason) => Self::OutcomeUnknown(reason),
            StoreError::OutOfMemory => Self::OutOfMemory,
            StoreError::WrongType => Self::WrongType,
            StoreError::TooLarge {
                what,
                actual,
                limit,
            } => Self::TooLarge(bindings::SizeLimit {
                what,
                actual,
                limit,
            }),
            StoreError::Denied(reason) => Self::Denied(reason),
            StoreError::Rejected(reason) => Self::Rejected(reason),
        }
    }
}

impl From<bindings::InvalidMessage> for InvalidMessage {
    fn from(invalid: bindings::InvalidMessage) -> Self {
        match invalid {
            bindings::InvalidMessage::TooLarge(limit) => Self::TooLarge {
                actual: limit.actual,
                limit: limit.limit,
            },
            bindings::InvalidMessage::DuplicateMember(name) => Self::DuplicateMember(name),
            bindings::InvalidMessage::InvalidJson(reason) => Self::InvalidJson(reason),
        }
    }
}

impl From<bindings::WriteOutcome> for WriteOutcome {
    fn from(outcome: bindings::WriteOutcome) -> Self {
        match outcome {
            bindings::WriteOutcome::Stored(stored) => Self::Stored(Stored {
                appended: stored.appended,
                trimmed: stored.trimmed,
                length: stored.length,
            }),
            bindings::WriteOutcome::Failed(error) => Self::Failed(error.into()),
        }
    }
}
