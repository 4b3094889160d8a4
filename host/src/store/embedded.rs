//! The embedded default store: one file, no server, Redis list semantics.
//!
//! It is what the CLI uses when no Redis is named, so a fresh machine has working memory. Data
//! lives in a [redb](https://docs.rs/redb) file: crash-safe transactions, kept across process
//! restarts. Every operation is a read-modify-write of one list inside one redb transaction,
//! which gives the same atomicity as MULTI/EXEC; lists are small (the window bounds them), so
//! rewriting a whole list costs little. Expiry is kept as an absolute time and honoured on
//! every read; expired lists are removed by the next write to them.
//!
//! What can go wrong with a file, and what the caller gets:
//! - **Damage.** redb recovers from crashes by itself, but a file damaged otherwise (a bad
//!   disk, a stray write) can make it fail, and even panic (`unreachable!`, assertions) deep
//!   inside. Every redb call here runs under `catch_unwind`; a panic or a corruption report
//!   becomes [`OpenError::Damaged`] / [`StoreError::Damaged`] naming the file, never a crash.
//!   A damaged *value* (one list) spoils only its own key: listing, `kind` (which reports it as
//!   [`KeyKind::Damaged`]) and deleting it still work. [`EmbeddedStore::repair`] copies every
//!   readable session into a new file and keeps the damaged one aside.
//! - **A full disk.** The failed commit applies nothing (redb's commit is atomic) and is
//!   reported as [`StoreError::DiskFull`]. redb refuses further use of a database after an I/O
//!   error, so the file is reopened on the next call: service resumes once there is space.
//! - **A read-only file** (permissions, a read-only mount) is opened read-only: reads work,
//!   writes are refused with a clear reason.
//! - **Another process** holding the file (redb allows one at a time) gets a clear error.
//!
//! `file` is the file and redb's handle on it (opening, containment, reopening, classifying
//! redb's errors); `value` is how one list is encoded in it (versioned, checksummed);
//! `repair` rebuilds a damaged file; `check` is the write check `doctor` runs.

mod check;
mod file;
mod repair;
mod value;

pub use self::check::WriteCheck;
pub use self::file::EMBEDDED_LOCK_WAIT;
pub use self::repair::RepairReport;

use self::file::{
    Contained, Db, Fail, File, State, damaged_value, open_db, read_list, read_only_message,
    redb_err,
};

use self::value::{decode, encode};

use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, TableDefinition};

use super::backend::{InspectBackend, ListBackend};
use super::list::{self, StoredList};
use super::{Applied, KeyKind, ListOp, OpenError, StoreError, Ttl, now_ms};

/// Key -> encoded [`StoredList`].
const LISTS: TableDefinition<&str, &[u8]> = TableDefinition::new("lists");

/// A handle on an embedded store file, shared by every clone.
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    file: Arc<File>,
}

impl EmbeddedStore {
    /// Open the store at `path`, creating the file (and its directory) if needed. A file that
    /// cannot be written is opened read-only.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let db = open_db(path)?;
        Ok(Self {
            file: Arc::new(File {
                path: path.to_path_buf(),
                state: Mutex::new(State {
                    db: Some(Arc::new(Contained(Some(db)))),
                    last_failure: None,
                }),
            }),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Whether the file was opened read-only, and why.
    pub fn read_only_reason(&self) -> Option<String> {
        match self.file.lock().db.as_deref().map(|db| &**db) {
            Some(Db::ReadOnly(_, reason)) => Some(reason.clone()),
            _ => None,
        }
    }

    /// Run blocking redb work off the async executor, contained: see [`File::run`].
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, Fail> + Send + 'static,
    ) -> Result<T, StoreError> {
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.run(work))
            .await
            .unwrap_or_else(|join| {
                // `run` catches panics; a join error means the runtime is shutting down.
                Err(StoreError::Unavailable(format!(
                    "embedded store task did not finish: {join}"
                )))
            })
    }

    async fn live(&self, key: &[u8]) -> Result<Option<StoredList>, StoreError> {
        let Ok(key) = std::str::from_utf8(key) else {
            // Keys here are strings: bytes that are not UTF-8 name no list.
            return Ok(None);
        };
        let key = key.to_string();
        self.blocking(move |db| {
            let now = now_ms();
            Ok(read_list(db, &key)?.filter(|list| !list.is_expired(now)))
        })
        .await
    }
}

impl ListBackend for EmbeddedStore {
    async fn read_range(
        &self,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(list::range_of(self.live(key).await?.as_ref(), start, stop))
    }

    async fn apply(&self, key: &[u8], ops: Vec<ListOp>) -> Result<Applied, StoreError> {
        let Some(key) = list::text_key(key, &ops)? else {
            return Ok(list::apply(None, ops, now_ms()).1);
        };
        let key = key.to_string();
        self.blocking(move |db| {
            let Db::Writable(db) = db else {
                return Err(Fail::Store(StoreError::Rejected(read_only_message(db))));
            };
            let txn = db.begin_write().map_err(redb_err)?;
            let applied = {
                let mut table = txn.open_table(LISTS).map_err(redb_err)?;
                let current = match table.get(key.as_str()).map_err(redb_err)? {
                    Some(value) => match decode(value.value()) {
                        Ok(list) => Some(list),
                        // A damaged value can still be deleted (that is the repair); anything
                        // else would build on data we cannot read.
                        Err(_) if matches!(ops.as_slice(), [ListOp::Delete]) => None,
                        Err(damage) => return Err(Fail::Store(damaged_value(&key, &damage))),
                    },
                    None => None,
                };
                let current = current.filter(|list| !list.is_expired(now_ms()));
                list::check_expectation(current.as_ref(), &ops).map_err(Fail::Store)?;
                let (after, applied) = list::apply(current, ops, now_ms());
                match after {
                    Some(after) => {
                        table
                            .insert(key.as_str(), encode(&after).as_slice())
                            .map_err(redb_err)?;
                    }
                    None => {
                        table.remove(key.as_str()).map_err(redb_err)?;
                    }
                }
                applied
            };
            txn.commit().map_err(redb_err)?;
            Ok(applied)
        })
        .await
    }
}

impl InspectBackend for EmbeddedStore {
    async fn ttl(&self, key: &[u8]) -> Result<Ttl, StoreError> {
        Ok(list::ttl_of(self.live(key).await?.as_ref(), now_ms()))
    }

    async fn kind(&self, key: &[u8]) -> Result<KeyKind, StoreError> {
        match self.live(key).await {
            Ok(list) => Ok(list::kind_of(list.as_ref())),
            Err(StoreError::Damaged(reason)) => Ok(KeyKind::Damaged(reason)),
            Err(other) => Err(other),
        }
    }

    /// Keys under `prefix` that hold a live list, or a value too damaged to tell (so that
    /// operators see it and can delete it).
    async fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let Ok(prefix) = std::str::from_utf8(prefix) else {
            return Ok(Vec::new());
        };
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(redb_err)?;
            let table = match txn.open_table(LISTS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(error) => return Err(redb_err(error)),
            };
            let now = now_ms();
            let mut keys = Vec::new();
            for row in table.range(prefix.as_str()..).map_err(redb_err)? {
                let (key, value) = row.map_err(redb_err)?;
                if !key.value().starts_with(prefix.as_str()) {
                    break;
                }
                if decode(value.value()).map_or(true, |list| !list.is_expired(now)) {
                    keys.push(key.value().as_bytes().to_vec());
                }
            }
            Ok(keys)
        })
        .await
    }
}
