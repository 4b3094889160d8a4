//! The two seams every store backend fills: the list capability a policy is granted
//! ([`ListBackend`]) and the read-only inspections operators make ([`InspectBackend`]).
//!
//! [`Store`](super::Store) holds one backend and dispatches to it; a new backend implements
//! both traits and becomes one more variant of the store's backend enum (and of its dispatch
//! macro). Within Redis, the deployments (one server, Sentinel, a cluster) are a second seam,
//! one level down: which node serves a key (`store/redis.rs`).

use std::future::Future;

use super::{Applied, EvictionPolicy, KeyKind, ListOp, StoreError, Ttl};

/// What a policy can do to its session's list, with Redis semantics: read a range, and apply
/// one atomic transaction of list operations on one key (so one Cluster slot).
pub(crate) trait ListBackend {
    /// Entries `start..=stop` of the list at `key` (LRANGE); a missing key reads as empty.
    /// Keys are bytes: a Redis key need not be UTF-8, and operators inspect any key.
    fn read_range(
        &self,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;

    /// Apply `ops` to the list at `key` as one atomic transaction. Keys are bytes here too:
    /// an operator may delete a list whose key another client wrote in any bytes.
    fn apply(
        &self,
        key: &[u8],
        ops: Vec<ListOp>,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;
}

/// What operator commands read. None of it needs a transaction, so it works on a Redis that
/// is out of memory; on a cluster, what concerns the whole store fans out to every master.
pub(crate) trait InspectBackend {
    /// The time to live of `key`.
    fn ttl(&self, key: &[u8]) -> impl Future<Output = Result<Ttl, StoreError>> + Send;

    /// What `key` holds.
    fn kind(&self, key: &[u8]) -> impl Future<Output = Result<KeyKind, StoreError>> + Send;

    /// Every live key that starts with `prefix`, in any order, possibly repeated.
    fn keys_with_prefix(
        &self,
        prefix: &[u8],
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;

    /// Each server's eviction policy; none for a store that never evicts.
    fn eviction_policies(
        &self,
    ) -> impl Future<Output = Result<Vec<EvictionPolicy>, StoreError>> + Send {
        async { Ok(Vec::new()) }
    }
}
