//! The list stores a policy can be granted: Redis, an embedded file, and process memory.
//!
//! Every backend offers the same two operations the `store` WIT interface exposes (a range read
//! of one list; one atomic transaction of list operations on one key), with Redis semantics,
//! plus the few read-only inspections the CLI's operator commands need. Errors are classified
//! once, into [`StoreError`], where they are met.

mod embedded;
mod in_memory;
pub(crate) mod list;
mod redis;

use std::path::PathBuf;
use std::time::Duration;

pub use self::embedded::EmbeddedStore;
pub use self::in_memory::InMemoryStore;
pub use self::redis::{RedisStore, RedisTimeouts};

/// One list operation of a transaction, with Redis semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOp {
    /// Append values at the tail (RPUSH).
    Push(Vec<Vec<u8>>),
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
}

/// What a transaction reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The list's length right after the last push of the transaction, if it pushed.
    pub length_after_push: Option<u64>,
}

/// Why a store could not do what was asked. Mirrors the WIT `store-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Nothing was sent, so nothing was applied.
    #[error("store unavailable, nothing was applied: {0}")]
    Unavailable(String),
    /// No answer in time; a write may have been applied.
    #[error("store did not answer in time (a write may have been applied)")]
    Timeout,
    /// The connection failed after sending, or the reply was not valid.
    #[error("outcome unknown, a write may have been applied: {0}")]
    OutcomeUnknown(String),
    /// The store is out of memory; nothing was applied.
    #[error("store is out of memory, nothing was applied")]
    OutOfMemory,
    /// The key holds something that is not a list; nothing was changed.
    #[error("the key holds a value that is not a list (someone else's data); nothing was changed")]
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
}

impl StoreError {
    /// Whether a write that failed with this error may nevertheless have been applied.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, Self::Timeout | Self::OutcomeUnknown(_))
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
}

/// Which store to use, parsed from a `--store` argument or `AGENT_MEMORY_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A Redis server: `redis://[user:pass@]host[:port][/db]` or `redis+unix:///path/to.sock`.
    Redis(String),
    /// The embedded file store at this path.
    Embedded(PathBuf),
    /// Process memory (`memory:`): nothing survives the process.
    InMemory,
}

impl StoreSpec {
    /// Parse a store address. `redis://…`, `redis+unix://…` or `unix://…` is Redis, `memory:`
    /// is process memory, `file:PATH` or anything without a scheme is an embedded file path.
    pub fn parse(spec: &str) -> Result<Self, OpenError> {
        if spec.starts_with("redis://") || spec.starts_with("redis+unix://") {
            return Ok(Self::Redis(spec.to_string()));
        }
        if let Some(path) = spec.strip_prefix("unix://") {
            return Ok(Self::Redis(format!("redis+unix://{path}")));
        }
        if spec == "memory:" || spec == "memory://" {
            return Ok(Self::InMemory);
        }
        if spec.starts_with("rediss://") {
            return Err(OpenError::InvalidSpec(format!(
                "{spec}: TLS (rediss://) is not built into this agent-memory"
            )));
        }
        if let Some(path) = spec.strip_prefix("file:") {
            return Ok(Self::Embedded(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            return Err(OpenError::InvalidSpec(format!(
                "{spec}: unknown scheme `{scheme}` (expected redis://, redis+unix://, file: or memory:)"
            )));
        }
        if spec.is_empty() {
            return Err(OpenError::InvalidSpec("empty store address".to_string()));
        }
        Ok(Self::Embedded(PathBuf::from(spec)))
    }
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
    /// The embedded store's file could not be opened or created.
    #[error("cannot open the embedded store at {path}: {reason}")]
    Embedded {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A list store: a cheap-to-clone handle on one of the backends.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Redis(RedisStore),
    Embedded(EmbeddedStore),
    InMemory(InMemoryStore),
}

impl Store {
    /// Open the store `spec` names. Redis connects lazily: an unreachable server is reported by
    /// the first operation, not here, so an agent starts while Redis is down.
    pub fn open(spec: &StoreSpec, timeouts: RedisTimeouts) -> Result<Self, OpenError> {
        Ok(match spec {
            StoreSpec::Redis(url) => RedisStore::new(url, timeouts)?.into(),
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
        match &self.backend {
            Backend::Redis(store) => store.read_range(key, start, stop).await,
            Backend::Embedded(store) => store.read_range(key, start, stop).await,
            Backend::InMemory(store) => Ok(store.read_range(key, start, stop)),
        }
    }

    /// Apply `ops` to the list at `key` as one atomic transaction.
    pub async fn apply(&self, key: &str, ops: Vec<ListOp>) -> Result<Applied, StoreError> {
        match &self.backend {
            Backend::Redis(store) => store.apply(key, ops).await,
            Backend::Embedded(store) => store.apply(key, ops).await,
            Backend::InMemory(store) => Ok(store.apply(key, ops)),
        }
    }

    /// The time to live of `key`.
    pub async fn ttl(&self, key: &str) -> Result<Ttl, StoreError> {
        match &self.backend {
            Backend::Redis(store) => store.ttl(key).await,
            Backend::Embedded(store) => store.ttl(key).await,
            Backend::InMemory(store) => Ok(store.ttl(key)),
        }
    }

    /// What `key` holds.
    pub async fn kind(&self, key: &str) -> Result<KeyKind, StoreError> {
        match &self.backend {
            Backend::Redis(store) => store.kind(key).await,
            Backend::Embedded(store) => store.kind(key).await,
            Backend::InMemory(store) => Ok(store.kind(key)),
        }
    }

    /// Every live key that starts with `prefix`, sorted. Redis is walked with SCAN, never KEYS,
    /// so a large server is not blocked.
    pub async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = match &self.backend {
            Backend::Redis(store) => store.keys_with_prefix(prefix).await?,
            Backend::Embedded(store) => store.keys_with_prefix(prefix).await?,
            Backend::InMemory(store) => store.keys_with_prefix(prefix),
        };
        keys.sort();
        Ok(keys)
    }

    /// Redis only: the server's `maxmemory-policy`, when it can evict keys that have a TTL
    /// (every session key has one), so whole sessions may vanish under memory pressure.
    pub async fn eviction_risk(&self) -> Result<Option<String>, StoreError> {
        match &self.backend {
            Backend::Redis(store) => store.eviction_risk().await,
            Backend::Embedded(_) | Backend::InMemory(_) => Ok(None),
        }
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
    fn store_addresses_parse_by_scheme() {
        assert_eq!(
            StoreSpec::parse("redis://127.0.0.1:7000/2").unwrap(),
            StoreSpec::Redis("redis://127.0.0.1:7000/2".into())
        );
        assert_eq!(
            StoreSpec::parse("unix:///tmp/r.sock").unwrap(),
            StoreSpec::Redis("redis+unix:///tmp/r.sock".into())
        );
        assert_eq!(StoreSpec::parse("memory:").unwrap(), StoreSpec::InMemory);
        assert_eq!(
            StoreSpec::parse("file:/tmp/m.redb").unwrap(),
            StoreSpec::Embedded("/tmp/m.redb".into())
        );
        assert_eq!(
            StoreSpec::parse("./m.redb").unwrap(),
            StoreSpec::Embedded("./m.redb".into())
        );
    }

    #[test]
    fn unknown_schemes_and_tls_are_refused_with_a_reason() {
        for spec in ["http://x", "rediss://x", ""] {
            assert!(matches!(
                StoreSpec::parse(spec),
                Err(OpenError::InvalidSpec(_))
            ));
        }
    }
}
