//! The store's vocabulary: what a transaction reports, what can go wrong (classified once,
//! where it is met), what a key holds and how long it lives. The facade (`Store`) and the
//! backends speak it; `mod.rs` holds the facade.

use std::path::PathBuf;
use std::time::Duration;

#[cfg(doc)]
use super::{EmbeddedStore, Store};

/// What a transaction reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The list's length right after the last push (either end) of the transaction, if it
    /// pushed.
    pub length_after_push: Option<u64>,
    /// Entries the list held when the transaction's delete removed it (0 when there was no
    /// list), if it deleted.
    pub deleted: Option<u64>,
    /// What the transaction's last read returned, if it read: the entries, or why the host
    /// would not hand them over (the writes were applied regardless).
    pub read: Option<Result<Vec<Vec<u8>>, StoreError>>,
}

/// Why a store could not do what was asked. Mirrors the WIT `store-error` case for case (the
/// contract module says why it is not the generated type: that one's `Display` is its `Debug`).
///
/// What went over a limit (`TooLarge::what`) and why the host refused (`Denied`) are text, not
/// named cases, because the contract carries them as text (`size-limit.what`,
/// `denied(string)`) and every error an embedder sees comes back through the policy as a
/// contract value: cases named here alone would arrive as text all the same. Naming them is a
/// change of the contract, and of every policy in every language, for its next version.
///
/// The message says what happened; whether a *write* may still have been applied is
/// [`StoreError::may_have_applied`], which callers add where it matters (a read that timed out
/// applied nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Nothing was sent, so nothing was applied.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// No answer in time; a write may have been applied.
    #[error("store did not answer in time")]
    Timeout,
    /// The connection failed after sending, or the reply was not valid.
    #[error("connection lost after the request was sent: {0}")]
    OutcomeUnknown(String),
    /// The store is out of memory; nothing was applied.
    #[error("store is out of memory (Redis maxmemory reached)")]
    OutOfMemory,
    /// The disk under the embedded store is full; nothing was applied.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// The stored data is damaged; nothing was changed.
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    /// The key holds something that is not a list; nothing was changed.
    #[error("the key holds a value that is not a list (someone else's data)")]
    WrongType,
    /// Over a host limit; nothing was applied.
    #[error("{what} {actual} is over the limit of {limit}")]
    TooLarge {
        /// What was measured.
        what: String,
        /// The refused size.
        actual: u64,
        /// The allowed size.
        limit: u64,
    },
    /// Refused by the host before any I/O.
    #[error("denied: {0}")]
    Denied(String),
    /// Refused by the server for a reason of its own.
    #[error("rejected by the store: {0}")]
    Rejected(String),
    /// Applied on the primary, but fewer replicas than required acknowledged it in time.
    #[error("applied, but acknowledged by {acknowledged} of the {wanted} replicas required")]
    NotReplicated {
        /// Replicas required.
        wanted: u32,
        /// Replicas that acknowledged.
        acknowledged: u32,
    },
    /// The list was not as the transaction's [`ListOp::Expect`] said; nothing was applied.
    #[error("the list changed since it was read (another writer); nothing was applied")]
    Conflict,
}

impl StoreError {
    /// Whether a write that failed with this error may nevertheless have been applied:
    /// it timed out, its connection broke after it was sent, or it was applied on the primary
    /// without reaching enough replicas.
    pub fn may_have_applied(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::OutcomeUnknown(_) | Self::NotReplicated { .. }
        )
    }

    /// Its kind as a fixed snake_case word (`unavailable`, `timeout`, `outcome_unknown`, ...):
    /// the `kind` label of the metrics and the `error.type` of the spans, never its text
    /// (which may name a server or a key).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Timeout => "timeout",
            Self::OutcomeUnknown(_) => "outcome_unknown",
            Self::OutOfMemory => "out_of_memory",
            Self::DiskFull(_) => "disk_full",
            Self::Damaged(_) => "damaged",
            Self::WrongType => "wrong_type",
            Self::TooLarge { .. } => "too_large",
            Self::Denied(_) => "denied",
            Self::Rejected(_) => "rejected",
            Self::NotReplicated { .. } => "not_replicated",
            Self::Conflict => "conflict",
        }
    }
}

/// The time to live of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    ExpiresIn(Duration),
}

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// Nothing.
    Missing,
    /// A list, of this many entries.
    List(u64),
    /// Another Redis type (`string`, `hash`, ...): someone else's data.
    Other(String),
    /// A value the embedded store cannot decode: damaged. `clear` removes it.
    Damaged(String),
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store address is not one this build understands.
    #[error("invalid store address: {0}")]
    InvalidSpec(String),
    /// The Redis URL is malformed.
    #[error("invalid Redis URL: {0}")]
    RedisUrl(String),
    /// TLS could not be set up: a certificate or key file that cannot be read or used, or an
    /// address that asks not to verify the server.
    #[error("TLS: {0}")]
    Tls(String),
    /// The embedded store's file could not be opened or created.
    #[error("cannot open the embedded store at {path}: {reason}")]
    Embedded {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The embedded store's file is damaged. `agent-memory repair` (or
    /// [`EmbeddedStore::repair`]) copies every readable session into a new file.
    #[error(
        "the embedded store at {path} is damaged ({reason}); `agent-memory --store {path} repair` \
         recovers every readable session"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// [`EmbeddedStore::repair`] found nothing it could recover, and left the file as it is.
    #[error(
        "nothing could be recovered from {path}: {reason}. The file is left as it is: restore \
         it from a backup, or move it aside to start an empty store"
    )]
    NothingRecovered {
        /// The file.
        path: PathBuf,
        /// Why nothing could be read.
        reason: String,
    },
}

/// One Redis server's eviction policy, as [`Store::eviction_policies`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionPolicy {
    /// The server (`host:port`).
    pub server: String,
    /// Its `maxmemory-policy`, or why it could not be read.
    pub policy: Result<String, StoreError>,
}
