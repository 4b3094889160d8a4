//! A store in process memory, with Redis list semantics: for embedding tests and for trying a
//! policy without any file or server. Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::backend::{InspectBackend, ListBackend};
use super::list::{self, StoredList};
use super::{Applied, KeyKind, ListOp, StoreError, Ttl, now_ms};

/// Lists in process memory, shared by every clone of the handle.
#[derive(Clone, Debug, Default)]
pub struct InMemoryStore {
    lists: Arc<Mutex<HashMap<String, StoredList>>>,
}

impl InMemoryStore {
    /// Whether `other` shares this store's lists (a clone of the same handle).
    pub(crate) fn same_as(&self, other: &InMemoryStore) -> bool {
        Arc::ptr_eq(&self.lists, &other.lists)
    }

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, StoredList>> {
        // A panic while holding the lock cannot leave a list half-changed (`apply` computes the
        // new list before storing it), so a poisoned lock is safe to keep using.
        self.lists
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live list at `key`. Keys here are strings (the policy's keys are); bytes that are
    /// not UTF-8 name no list.
    fn live(&self, key: &[u8]) -> Option<StoredList> {
        let key = std::str::from_utf8(key).ok()?;
        let lists = self.lock();
        lists
            .get(key)
            .filter(|list| !list.is_expired(now_ms()))
            .cloned()
    }
}

impl ListBackend for InMemoryStore {
    async fn read_range(
        &self,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Ok(key) = std::str::from_utf8(key) else {
            return Ok(Vec::new());
        };
        let lists = self.lock();
        let now = now_ms();
        Ok(list::range_of(
            lists.get(key).filter(|found| !found.is_expired(now)),
            start,
            stop,
        ))
    }

    async fn apply(&self, key: &[u8], ops: Vec<ListOp>) -> Result<Applied, StoreError> {
        let Some(key) = list::text_key(key, &ops)? else {
            return Ok(list::apply(None, ops, now_ms()).1);
        };
        let mut lists = self.lock();
        let now = now_ms();
        let live = lists.get(key).filter(|found| !found.is_expired(now));
        list::check_expectation(live, &ops)?;
        let current = lists.remove(key);
        let (after, applied) = list::apply(current, ops, now);
        if let Some(after) = after {
            lists.insert(key.to_string(), after);
        }
        Ok(applied)
    }
}

impl InspectBackend for InMemoryStore {
    async fn ttl(&self, key: &[u8]) -> Result<Ttl, StoreError> {
        Ok(list::ttl_of(self.live(key).as_ref(), now_ms()))
    }

    async fn kind(&self, key: &[u8]) -> Result<KeyKind, StoreError> {
        Ok(list::kind_of(self.live(key).as_ref()))
    }

    async fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let now = now_ms();
        Ok(self
            .lock()
            .iter()
            .filter(|(key, list)| key.as_bytes().starts_with(prefix) && !list.is_expired(now))
            .map(|(key, _)| key.clone().into_bytes())
            .collect())
    }
}
