//! Operator calls: what an operator does to a store outside any policy — delete a list agents
//! cannot name, copy every session to another store, check a Redis eviction policy. They pass
//! by the policy and its guard on purpose (an operator repairs what agents cannot reach), so
//! they live here, apart from [`crate::Memory`], and no other public call writes to a store
//! without a policy. The read-only inspections are [`Store`]'s own (`kind`, `ttl`, `entries`,
//! `keys_with_prefix`, `eviction_policies`); repairing an embedded file is
//! [`crate::store::EmbeddedStore::repair`].

use crate::store::{ListOp, Store, StoreError};

pub use crate::store::copy::{CopyError, CopyProgress, CopyReport, SkipReason, copy_sessions};

/// Whether a Redis `maxmemory-policy` may evict session keys. Every session key has a TTL, so
/// the `volatile-*` policies can evict them as readily as the `allkeys-*` ones.
pub fn policy_evicts_sessions(policy: &str) -> bool {
    policy.starts_with("volatile-") || policy.starts_with("allkeys-")
}

/// Delete the list at `key`, whatever its name (an empty, too long, control-character or
/// non-UTF-8 session id that agents cannot name), and say how many entries it held (0 when
/// there was none). Someone else's value under the key is not a list and is never deleted:
/// [`StoreError::WrongType`], as the store's own delete refuses it (no look first: one round
/// trip, and nothing can change between a look and the delete).
pub async fn delete_list(store: &Store, key: impl AsRef<[u8]>) -> Result<u64, StoreError> {
    let applied = store.apply(key.as_ref(), vec![ListOp::Delete]).await?;
    Ok(applied.deleted.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{KeyKind, StoreSpec};

    #[test]
    fn only_evicting_policies_put_sessions_at_risk() {
        for risky in [
            "volatile-lru",
            "volatile-ttl",
            "allkeys-lfu",
            "allkeys-random",
        ] {
            assert!(policy_evicts_sessions(risky), "{risky}");
        }
        assert!(!policy_evicts_sessions("noeviction"));
    }

    #[tokio::test]
    async fn a_list_agents_cannot_name_is_deleted_and_counted() {
        let store = Store::open(&StoreSpec::InMemory, Default::default()).unwrap();
        // A key agents cannot name: a control character in the session id.
        let key = "ai:memory:\u{1b}";
        let push = ListOp::Push(vec![b"{}".to_vec(), b"{}".to_vec()]);
        store.apply(key, vec![push]).await.unwrap();
        assert_eq!(delete_list(&store, key).await, Ok(2));
        assert_eq!(store.kind(key).await, Ok(KeyKind::Missing));
        assert_eq!(delete_list(&store, key).await, Ok(0));
    }
}
