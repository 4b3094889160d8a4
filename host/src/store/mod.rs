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
mod vocabulary;

use self::backend::{InspectBackend, ListBackend};

pub use self::embedded::{EMBEDDED_LOCK_WAIT, EmbeddedStore, RepairReport, WriteCheck};
pub use self::in_memory::InMemoryStore;
pub use self::redis::{
    DEFAULT_RECONNECT_BACKOFF, DEFAULT_RECONNECT_BACKOFF_MAX, MAX_REDIRECTS, MAX_WAITING_WRITES,
    MIN_REFRESH_INTERVAL, RedisOptions, RedisStore, TlsOptions, WaitForReplicas,
};
pub use self::spec::StoreSpec;
pub(crate) use self::vocabulary::Applied;
pub use self::vocabulary::{EvictionPolicy, KeyKind, OpenError, StoreError, Ttl};

/// One list operation of a transaction, with Redis semantics: the contract's own type (the
/// WIT's `list-op`, whose docs say what each does), so a policy's request reaches a backend
/// as it was made. `Expect` only as the first operation (the guard refuses it anywhere else).
pub(crate) use crate::contract::{ListOp, Range};

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
