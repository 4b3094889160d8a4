//! The file and redb's handle on it: opening (read-only when the file cannot be written,
//! waiting a while for another process to let go), every redb call contained (a panic inside
//! the dependency becomes a typed error naming the file), a failed database dropped and
//! reopened by the next call, and redb's errors classified (damage, a full disk, a read-only
//! file, another process).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, ReadOnlyDatabase, ReadableDatabase};

use super::LISTS;
use super::value::decode;
use crate::store::list::StoredList;
use crate::store::{OpenError, StoreError};

/// The file and the redb handle on it.
#[derive(Debug)]
pub(super) struct File {
    pub(super) path: PathBuf,
    pub(super) state: Mutex<State>,
}

#[derive(Debug)]
pub(super) struct State {
    /// The open database; `None` after an I/O failure, until the next call reopens it.
    pub(super) db: Option<Arc<Contained>>,
    /// Why the database was dropped, for the calls that fail before it is reopened.
    pub(super) last_failure: Option<StoreError>,
}

/// redb's two ways of holding a file.
pub(super) enum Db {
    Writable(Database),
    /// Opened read-only because the file could not be opened for writing; the reason says why.
    ReadOnly(ReadOnlyDatabase, String),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Writable(_) => "Db::Writable",
            Self::ReadOnly(..) => "Db::ReadOnly",
        })
    }
}

impl Db {
    pub(super) fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Self::Writable(db) => db.begin_read(),
            Self::ReadOnly(db, _) => db.begin_read(),
        }
    }
}

/// A [`Db`] whose drop is contained too: closing a database makes redb read and write its
/// allocator state, which can panic on a damaged file like any other access.
#[derive(Debug)]
pub(super) struct Contained(pub(super) Option<Db>);

impl std::ops::Deref for Contained {
    type Target = Db;

    fn deref(&self) -> &Db {
        // Always `Some` until dropped.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("used after drop"))
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        if let Some(db) = self.0.take()
            && let Err(panic) = contained(move || drop(db))
        {
            tracing::warn!(target: "agent_memory::store", %panic, "closing a damaged embedded store failed");
        }
    }
}

/// What went wrong inside one redb operation: redb's own error (classified by [`File::fail`],
/// which knows the file) or one of ours.
pub(super) enum Fail {
    Redb(redb::Error),
    Store(StoreError),
}

/// `?` for redb results inside an operation.
pub(super) fn redb_err(error: impl Into<redb::Error>) -> Fail {
    Fail::Redb(error.into())
}

impl File {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two fields replaced whole; a panic elsewhere cannot leave it half set.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The open database, reopening it after an I/O failure.
    pub(super) fn db(&self) -> Result<Arc<Contained>, StoreError> {
        let mut state = self.lock();
        if let Some(db) = &state.db {
            return Ok(Arc::clone(db));
        }
        match open_db(&self.path) {
            Ok(db) => {
                let db = Arc::new(Contained(Some(db)));
                state.db = Some(Arc::clone(&db));
                state.last_failure = None;
                Ok(db)
            }
            Err(error) => Err(state
                .last_failure
                .clone()
                .unwrap_or_else(|| StoreError::Unavailable(format!("embedded store: {error}")))),
        }
    }

    /// Run one redb operation with panics contained and errors classified. redb can panic on a
    /// damaged file; that is a [`StoreError::Damaged`] here, never a crash of the caller.
    pub(super) fn run<T>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let db = self.db()?;
        match contained(|| work(&db)) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Fail::Store(error))) => Err(error),
            Ok(Err(Fail::Redb(error))) => Err(self.fail(&db, error)),
            Err(panic) => Err(StoreError::Damaged(format!(
                "embedded store {}: {panic}; `agent-memory doctor` names the damage, \
                 `agent-memory repair` keeps every readable session",
                self.path.display()
            ))),
        }
    }

    /// Classify a redb error. After an I/O error redb refuses every later call ("previous I/O
    /// error"), so the database is dropped and reopened by the next call, and the I/O error
    /// itself is what callers are told until then.
    pub(super) fn fail(&self, db: &Arc<Contained>, error: redb::Error) -> StoreError {
        let path = self.path.display();
        let classified = match &error {
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                StoreError::DiskFull(format!("embedded store {path}: {io}"))
            }
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                StoreError::Damaged(format!("embedded store {path}: {io}"))
            }
            redb::Error::Io(io) => {
                StoreError::Unavailable(format!("embedded store {path}: I/O error: {io}"))
            }
            redb::Error::PreviousIo => {
                let state = self.lock();
                state.last_failure.clone().unwrap_or_else(|| {
                    StoreError::Unavailable(format!(
                        "embedded store {path}: an earlier I/O error; reopening"
                    ))
                })
            }
            redb::Error::Corrupted(reason) => {
                StoreError::Damaged(format!("embedded store {path}: {reason}"))
            }
            redb::Error::LockPoisoned(_) => StoreError::Damaged(format!(
                "embedded store {path}: an earlier failure inside redb left it unusable"
            )),
            redb::Error::ValueTooLarge(len) => StoreError::TooLarge {
                what: "embedded store value bytes".to_string(),
                actual: *len as u64,
                limit: 3 << 30,
            },
            other => StoreError::Unavailable(format!("embedded store {path}: {other}")),
        };
        if matches!(error, redb::Error::Io(_) | redb::Error::PreviousIo) {
            let mut state = self.lock();
            if state
                .db
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, db))
            {
                state.db = None;
                state.last_failure = Some(classified.clone());
            }
        }
        classified
    }
}

/// What a contained panic inside redb says to a user: never the dependency's own panic text
/// ("internal error: entered unreachable code" tells an operator nothing), which goes to the
/// debug log instead.
pub(super) const INSIDE_REDB: &str = "the storage library failed on damaged data in the file";

/// Run `work`, turning a panic into [`INSIDE_REDB`]. redb is a dependency that may panic on a
/// damaged file; nothing of it may reach our caller, its panic text included (logged at debug
/// level, for `-v`).
pub(super) fn contained<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::debug!(target: "agent_memory::store", panic = %text, "redb panicked on the embedded store file");
        INSIDE_REDB.to_string()
    })
}

/// How long opening the file waits for another process to let go of it: redb allows one
/// process at a time, and a CLI command holds the file for its whole run (tens of
/// milliseconds), so scripts that run several at once take turns instead of failing. Long
/// enough for a queue of short commands; short enough that a file held by a long-running
/// process is reported promptly.
pub const EMBEDDED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Open (or create) the file for writing, or read-only when it cannot be written; wait up to
/// [`EMBEDDED_LOCK_WAIT`] while another process holds it.
pub(super) fn open_db(path: &Path) -> Result<Db, OpenError> {
    let deadline = std::time::Instant::now() + EMBEDDED_LOCK_WAIT;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match open_db_once(path) {
            Err(OpenError::Embedded { reason, .. })
                if reason == HELD_BY_ANOTHER_PROCESS && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            Err(OpenError::Embedded { path, reason }) if reason == HELD_BY_ANOTHER_PROCESS => {
                return Err(OpenError::Embedded {
                    path,
                    reason: format!(
                        "{reason}; waited {} s for it to be free (one process at a time: a long \
                         copy or doctor may hold it; try again when it is done)",
                        EMBEDDED_LOCK_WAIT.as_secs()
                    ),
                });
            }
            other => return other,
        }
    }
}

/// redb's answer while another process has the file.
const HELD_BY_ANOTHER_PROCESS: &str = "it is open in another process";

/// One attempt at [`open_db`].
fn open_db_once(path: &Path) -> Result<Db, OpenError> {
    let fail = |reason: String| OpenError::Embedded {
        path: path.to_path_buf(),
        reason,
    };
    let damaged = |reason: String| OpenError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|error| fail(error.to_string()))?;
    }
    let writable = contained(|| Database::builder().create(path));
    let error = match writable {
        Ok(Ok(db)) => return Ok(Db::Writable(db)),
        Err(panic) => return Err(damaged(panic)),
        Ok(Err(error)) => error,
    };
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => Err(fail(HELD_BY_ANOTHER_PROCESS.to_string())),
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if path.is_file()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
        {
            let reason = format!("the file cannot be written ({io})");
            match contained(|| ReadOnlyDatabase::open(path)) {
                Ok(Ok(db)) => Ok(Db::ReadOnly(db, reason)),
                Ok(Err(redb::DatabaseError::RepairAborted)) => Err(damaged(format!(
                    "it was not closed cleanly and needs a repair, but {reason}"
                ))),
                Ok(Err(error)) => Err(fail(format!("{reason}; read-only: {error}"))),
                Err(panic) => Err(damaged(panic)),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::StorageFull =>
        {
            Err(fail(format!("disk full: {io}")))
        }
        // redb reads the header first: invalid data there means the file is not a store, or
        // its header is damaged.
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            Err(damaged(format!(
                "not a store file, or its header is damaged ({io})"
            )))
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Err(damaged(format!("the file is truncated ({io})")))
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => Err(fail(io.to_string())),
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => Err(damaged(reason)),
        redb::DatabaseError::RepairAborted => Err(damaged("redb could not repair it".to_string())),
        redb::DatabaseError::UpgradeRequired(version) => Err(fail(format!(
            "it was written by an older redb (file format {version})"
        ))),
        other => Err(damaged(other.to_string())),
    }
}

pub(super) fn read_only_message(db: &Db) -> String {
    match db {
        Db::ReadOnly(_, reason) => format!("the embedded store is open read-only: {reason}"),
        Db::Writable(_) => "the embedded store is open read-only".to_string(),
    }
}

pub(super) fn read_list(db: &Db, key: &str) -> Result<Option<StoredList>, Fail> {
    let txn = db.begin_read().map_err(redb_err)?;
    let table = match txn.open_table(LISTS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(error) => return Err(redb_err(error)),
    };
    match table.get(key).map_err(redb_err)? {
        Some(value) => decode(value.value())
            .map(Some)
            .map_err(|damage| Fail::Store(damaged_value(key, &damage))),
        None => Ok(None),
    }
}

pub(super) fn damaged_value(key: &str, damage: &str) -> StoreError {
    StoreError::Damaged(format!(
        "the stored value of {} is damaged ({damage})",
        key.escape_debug()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_dependency_is_contained_without_its_text() {
        let caught = contained(|| -> u8 { panic!("internal error: entered unreachable code") });
        assert_eq!(caught, Err(INSIDE_REDB.to_string()));
    }
}
