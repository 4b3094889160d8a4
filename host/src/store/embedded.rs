//! The embedded default store: one file, no server, Redis list semantics.
//!
//! It is what the CLI uses when no Redis is named, so a fresh machine has working memory. Data
//! lives in a [redb](https://docs.rs/redb) file: crash-safe transactions, kept across process
//! restarts. Every operation is a read-modify-write of one list inside one redb transaction,
//! which gives the same atomicity as MULTI/EXEC; lists are small (the window bounds them), so
//! rewriting a whole list costs little. Expiry is kept as an absolute time and honoured on
//! every read; expired lists are removed by the next write to them.
//!
//! redb allows one process per file: a second process gets a clear "open in another process"
//! error rather than a corrupted file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::list::{self, StoredList};
use super::{Applied, KeyKind, ListOp, OpenError, StoreError, Ttl, now_ms};

/// Key -> encoded [`StoredList`].
const LISTS: TableDefinition<&str, &[u8]> = TableDefinition::new("lists");

/// Version byte of the value encoding, so a later layout can be told apart.
const FORMAT_V1: u8 = 1;

/// A handle on an embedded store file, shared by every clone.
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
}

impl EmbeddedStore {
    /// Open the store at `path`, creating the file (and its directory) if needed.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let fail = |reason: String| OpenError::Embedded {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| fail(error.to_string()))?;
        }
        let db = Database::create(path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                fail("it is open in another process (one process at a time)".to_string())
            }
            other => fail(other.to_string()),
        })?;
        Ok(Self {
            db: Arc::new(db),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run blocking redb work off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|join| {
                StoreError::Unavailable(format!("embedded store task failed: {join}"))
            })?
    }

    async fn live(&self, key: &str) -> Result<Option<StoredList>, StoreError> {
        let key = key.to_string();
        self.blocking(move |db| {
            let now = now_ms();
            Ok(read_list(db, &key)?.filter(|list| !list.is_expired(now)))
        })
        .await
    }

    pub(super) async fn read_range(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(list::range_of(self.live(key).await?.as_ref(), start, stop))
    }

    pub(super) async fn apply(&self, key: &str, ops: Vec<ListOp>) -> Result<Applied, StoreError> {
        let key = key.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(storage)?;
            let applied = {
                let mut table = txn.open_table(LISTS).map_err(storage)?;
                let current = match table.get(key.as_str()).map_err(storage)? {
                    Some(value) => Some(decode(value.value())?),
                    None => None,
                };
                let (after, applied) = list::apply(current, ops, now_ms());
                match after {
                    Some(after) => {
                        table
                            .insert(key.as_str(), encode(&after).as_slice())
                            .map_err(storage)?;
                    }
                    None => {
                        table.remove(key.as_str()).map_err(storage)?;
                    }
                }
                applied
            };
            txn.commit().map_err(storage)?;
            Ok(applied)
        })
        .await
    }

    pub(super) async fn ttl(&self, key: &str) -> Result<Ttl, StoreError> {
        Ok(list::ttl_of(self.live(key).await?.as_ref(), now_ms()))
    }

    pub(super) async fn kind(&self, key: &str) -> Result<KeyKind, StoreError> {
        Ok(list::kind_of(self.live(key).await?.as_ref()))
    }

    pub(super) async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = match txn.open_table(LISTS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(error) => return Err(storage(error)),
            };
            let now = now_ms();
            let mut keys = Vec::new();
            for row in table.range(prefix.as_str()..).map_err(storage)? {
                let (key, value) = row.map_err(storage)?;
                if !key.value().starts_with(prefix.as_str()) {
                    break;
                }
                if !decode(value.value())?.is_expired(now) {
                    keys.push(key.value().to_string());
                }
            }
            Ok(keys)
        })
        .await
    }
}

fn read_list(db: &Database, key: &str) -> Result<Option<StoredList>, StoreError> {
    let txn = db.begin_read().map_err(storage)?;
    let table = match txn.open_table(LISTS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(error) => return Err(storage(error)),
    };
    match table.get(key).map_err(storage)? {
        Some(value) => decode(value.value()).map(Some),
        None => Ok(None),
    }
}

/// A redb failure: the file could not be read or written, so nothing was applied.
fn storage(error: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {}", error.into()))
}

/// `[version][expires_at_ms: u64 LE, 0 = never][count: u32 LE]([len: u32 LE][bytes])*`
fn encode(list: &StoredList) -> Vec<u8> {
    let size = 13
        + list
            .entries
            .iter()
            .map(|entry| 4 + entry.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(FORMAT_V1);
    out.extend_from_slice(&list.expires_at_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&len_u32(list.entries.len()).to_le_bytes());
    for entry in &list.entries {
        out.extend_from_slice(&len_u32(entry.len()).to_le_bytes());
        out.extend_from_slice(entry);
    }
    out
}

fn len_u32(len: usize) -> u32 {
    // Entries are capped far below 4 GiB by the host's value limit.
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn decode(bytes: &[u8]) -> Result<StoredList, StoreError> {
    let corrupt =
        |what: &str| StoreError::Rejected(format!("embedded store: corrupt list ({what})"));
    let mut reader = bytes;
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        if reader.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = reader.split_at(n);
        reader = rest;
        Ok(head)
    };
    if take(1)? != [FORMAT_V1] {
        return Err(corrupt("unknown format version"));
    }
    let expires_at_ms = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt("expiry"))?);
    let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| corrupt("count"))?);
    let mut entries = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| corrupt("length"))?);
        entries.push(take(len as usize)?.to_vec());
    }
    if !reader.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(StoredList {
        entries,
        expires_at_ms: (expires_at_ms != 0).then_some(expires_at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_encoding_round_trips() {
        let list = StoredList {
            entries: vec![b"a".to_vec(), Vec::new(), vec![0xff; 300]],
            expires_at_ms: Some(123),
        };
        assert_eq!(decode(&encode(&list)), Ok(list));
    }

    #[test]
    fn a_truncated_or_padded_value_is_reported_as_corrupt_not_a_panic() {
        let bytes = encode(&StoredList {
            entries: vec![b"abc".to_vec()],
            expires_at_ms: None,
        });
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode(&padded).is_err());
        let mut huge_count = bytes;
        huge_count[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge_count).is_err());
    }
}
