//! The list stores a policy can be granted: Redis, an embedded file, and process memory.
//!
//! Every backend offers the same two operations the `store` WIT interface exposes (a range read
//! of one list; one atomic transaction of list operations on one key), with Redis semantics,
//! plus the few read-only inspections the CLI's operator commands need. Errors are classified
//! once, into [`StoreError`], where they are met.

mod backend;
pub(crate) mod copy;
mod embedded;
mod in_memory;
pub(crate) mod list;
mod redis;
mod spec;
#[cfg(test)]
mod transaction_tests;

use std::path::PathBuf;
use std::time::Duration;

use self::backend::{InspectBackend, ListBackend};

pub use self::embedded::{EMBEDDED_LOCK_WAIT, EmbeddedStore, RepairReport, WriteCheck};
pub use self::in_memory::InMemoryStore;
pub use self::redis::{
    DEFAULT_RECONNECT_BACKOFF, DEFAULT_RECONNECT_BACKOFF_MAX, MAX_REDIRECTS, MAX_WAITING_WRITES,
    MIN_REFRESH_INTERVAL, RedisOptions, RedisStore, TlsOptions, WaitForReplicas,
};
pub use self::spec::StoreSpec;

/// One list operation of a transaction, with Redis semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListOp {
    /// Apply the transaction only if the list holds exactly these entries (a missing list
    /// holds none); otherwise apply nothing and fail with [`StoreError::Conflict`]. Only as the
    /// first operation (the guard refuses it anywhere else).
    Expect(Vec<Vec<u8>>),
    /// Append values at the tail (RPUSH).
    Push(Vec<Vec<u8>>),
    /// Insert values at the head, in their order (LPUSH of the values reversed).
    PushFront(Vec<Vec<u8>>),
    /// Keep entries `start..=stop`; negative indexes count from the tail (LTRIM).
    Trim {
        /// First index kept.
        start: i64,
        /// Last index kept, inclusive.
        stop: i64,
    },
    /// Expire the list this many seconds from now (EXPIRE).
    Expire {
        /// Seconds from now; never 0.
        seconds: u32,
    },
    /// Remove the list (DEL), refusing a key that holds something else.
    Delete,
    /// Read entries `start..=stop` as they are at this point of the transaction (LRANGE).
    Read {
        /// First index read.
        start: i64,
        /// Last index read, inclusive.
        stop: i64,
    },
}

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

/// Why a store could not do what was asked. Mirrors the WIT `store-error`.
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

/// A list store: a cheap-to-clone handle on one of the backends.
///
/// The policy reaches it through two operations (a range read and `apply`, a transaction,
/// which is not public: writes go through a policy or [`crate::operator`]); operators'
/// inspections ([`Store::ttl`], [`Store::kind`], [`Store::entries`],
/// [`Store::keys_with_prefix`]) take keys as bytes, because a Redis key need not be UTF-8, and
/// none of them needs a transaction, so they work on a Redis that is out of memory.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// The backends (each implements [`ListBackend`] and [`InspectBackend`]).
#[derive(Clone, Debug)]
enum Backend {
    Redis(RedisStore),
    Embedded(EmbeddedStore),
    InMemory(InMemoryStore),
}

/// `$body` with `$backend` bound to whichever backend `$store` holds: the one place that
/// lists them for the store's operations.
macro_rules! with_backend {
    ($store:expr, $backend:ident => $body:expr) => {
        match &$store.backend {
            Backend::Redis($backend) => $body,
            Backend::Embedded($backend) => $body,
            Backend::InMemory($backend) => $body,
        }
    };
}

impl Store {
    /// Open the store `spec` names. Redis connects lazily: an unreachable server is reported by
    /// the first operation, not here, so an agent starts while Redis is down.
    pub fn open(spec: &StoreSpec, redis: RedisOptions) -> Result<Self, OpenError> {
        Ok(match spec {
            StoreSpec::Redis(url) => RedisStore::new(url, redis)?.into(),
            StoreSpec::Embedded(path) => EmbeddedStore::open(path)?.into(),
            StoreSpec::InMemory => InMemoryStore::new().into(),
        })
    }

    /// Entries `start..=stop` of the list at `key` (LRANGE); a missing key reads as empty.
    pub async fn read_range(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.entries(key, start, stop).await
    }

    /// Apply `ops` to the list at `key` as one atomic transaction. Not public: a write goes
    /// through a policy (`call_state`) or is an operator's (`crate::operator`), never around
    /// both.
    pub(crate) async fn apply(
        &self,
        key: impl AsRef<[u8]>,
        ops: Vec<ListOp>,
    ) -> Result<Applied, StoreError> {
        let key = key.as_ref();
        with_backend!(self, store => store.apply(key, ops).await)
    }

    /// Entries `start..=stop` of the list at any `key` (LRANGE), for inspection.
    pub async fn entries(
        &self,
        key: impl AsRef<[u8]>,
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let key = key.as_ref();
        with_backend!(self, store => store.read_range(key, start, stop).await)
    }

    /// The time to live of `key`.
    pub async fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Ttl, StoreError> {
        let key = key.as_ref();
        with_backend!(self, store => store.ttl(key).await)
    }

    /// What `key` holds.
    pub async fn kind(&self, key: impl AsRef<[u8]>) -> Result<KeyKind, StoreError> {
        let key = key.as_ref();
        with_backend!(self, store => store.kind(key).await)
    }

    /// Every live key that starts with `prefix`, sorted, whatever its bytes. Redis is walked
    /// with SCAN, never KEYS, so a large server is not blocked.
    pub async fn keys_with_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = prefix.as_ref();
        let mut keys = with_backend!(self, store => store.keys_with_prefix(prefix).await)?;
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Redis only: each server's `maxmemory-policy` — the one server's, or every cluster
    /// master's (none for the other stores, which never evict). A server's error often means
    /// `CONFIG` is not permitted there (managed Redis services). See
    /// [`crate::operator::policy_evicts_sessions`].
    pub async fn eviction_policies(&self) -> Result<Vec<EvictionPolicy>, StoreError> {
        with_backend!(self, store => store.eviction_policies().await)
    }

    /// The embedded store underneath, if that is what this is (for `repair`).
    pub fn as_embedded(&self) -> Option<&EmbeddedStore> {
        match &self.backend {
            Backend::Embedded(store) => Some(store),
            Backend::Redis(_) | Backend::InMemory(_) => None,
        }
    }

    /// Whether `other` is this same store, however the two were named (`localhost` and
    /// `127.0.0.1`, a relative and an absolute path): for Redis, the servers' run ids and the
    /// database; for a file, the file itself (device and inode).
    pub async fn is_same_store(&self, other: &Store) -> Result<bool, StoreError> {
        Ok(match (&self.backend, &other.backend) {
            (Backend::Redis(a), Backend::Redis(b)) => a.identity().await? == b.identity().await?,
            (Backend::Embedded(a), Backend::Embedded(b)) => spec::same_file(a.path(), b.path()),
            (Backend::InMemory(a), Backend::InMemory(b)) => a.same_as(b),
            _ => false,
        })
    }

    /// A short description for humans: the backend and its address, without credentials.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Redis(store) => store.describe(),
            Backend::Embedded(store) => format!("embedded file {}", store.path().display()),
            Backend::InMemory(_) => "process memory".to_string(),
        }
    }
}

impl From<RedisStore> for Store {
    fn from(store: RedisStore) -> Self {
        Self {
            backend: Backend::Redis(store),
        }
    }
}

impl From<EmbeddedStore> for Store {
    fn from(store: EmbeddedStore) -> Self {
        Self {
            backend: Backend::Embedded(store),
        }
    }
}

impl From<InMemoryStore> for Store {
    fn from(store: InMemoryStore) -> Self {
        Self {
            backend: Backend::InMemory(store),
        }
    }
}

/// Milliseconds since the Unix epoch, for the stores that keep expiry themselves.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_may_have_applied_only_when_the_store_cannot_say() {
        assert!(StoreError::Timeout.may_have_applied());
        assert!(StoreError::OutcomeUnknown("reset".into()).may_have_applied());
        assert!(
            StoreError::NotReplicated {
                wanted: 1,
                acknowledged: 0
            }
            .may_have_applied()
        );
        assert!(!StoreError::Unavailable("refused".into()).may_have_applied());
        assert!(!StoreError::OutOfMemory.may_have_applied());
        assert!(!StoreError::DiskFull("x".into()).may_have_applied());
    }

    #[test]
    fn messages_say_what_happened_once() {
        // The consequence for a write is added by callers that write; a read's timeout is
        // just a timeout.
        assert_eq!(
            StoreError::Timeout.to_string(),
            "store did not answer in time"
        );
        assert!(
            !StoreError::OutcomeUnknown("reset".into())
                .to_string()
                .contains("may have")
        );
    }
}
