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
//! `value` is how one list is encoded in the file (versioned, checksummed); `check` is the
//! write check `doctor` runs.

mod check;
mod value;

pub use self::check::WriteCheck;

use self::value::{decode, encode};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};

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

/// The file and the redb handle on it.
#[derive(Debug)]
struct File {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The open database; `None` after an I/O failure, until the next call reopens it.
    db: Option<Arc<Contained>>,
    /// Why the database was dropped, for the calls that fail before it is reopened.
    last_failure: Option<StoreError>,
}

/// redb's two ways of holding a file.
enum Db {
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
    fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Self::Writable(db) => db.begin_read(),
            Self::ReadOnly(db, _) => db.begin_read(),
        }
    }
}

/// A [`Db`] whose drop is contained too: closing a database makes redb read and write its
/// allocator state, which can panic on a damaged file like any other access.
#[derive(Debug)]
struct Contained(Option<Db>);

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
enum Fail {
    Redb(redb::Error),
    Store(StoreError),
}

/// `?` for redb results inside an operation.
fn redb_err(error: impl Into<redb::Error>) -> Fail {
    Fail::Redb(error.into())
}

/// What [`EmbeddedStore::repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Sessions (keys) copied into the new file, entries intact.
    pub kept: u64,
    /// Keys whose value could not be decoded, with why; they are not in the new file.
    pub dropped: Vec<(String, String)>,
    /// Set when the damaged file could not be read to its end: what stopped the copy.
    pub unreadable_rest: Option<String>,
    /// Where the damaged file was moved, kept for forensics.
    pub damaged_file: PathBuf,
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

    /// Copy every readable session of the damaged file at `path` into a new file, move the
    /// damaged one aside (`<path>.damaged-<unix seconds>`) and put the new one in its place.
    /// The file must not be open (in this process or another).
    ///
    /// What is kept: every key whose value decodes, entries byte for byte, expiry included.
    /// What is lost is reported: values that do not decode, and whatever lies beyond the point
    /// where the damaged file stopped being readable.
    pub fn repair(path: &Path) -> Result<RepairReport, OpenError> {
        let fail = |reason: String| OpenError::Embedded {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(fail("no such file".to_string()));
        }
        let source = contained(|| open_for_salvage(path))
            .unwrap_or_else(|panic| Err(format!("the file cannot be opened: {panic}")));
        let (rows, dropped, unreadable_rest) = match source {
            Ok(db) => salvage(&Contained(Some(db))),
            Err(reason) => (Vec::new(), Vec::new(), Some(reason)),
        };
        // Nothing readable and something wrong: a new empty file would only look like a
        // repair. Leave the file as it is and say so.
        if rows.is_empty() && (unreadable_rest.is_some() || !dropped.is_empty()) {
            let why = unreadable_rest
                .clone()
                .unwrap_or_else(|| format!("all {} stored values are damaged", dropped.len()));
            return Err(OpenError::NothingRecovered {
                path: path.to_path_buf(),
                reason: why,
            });
        }
        let fresh = path.with_extension(format!("repairing-{}", std::process::id()));
        let _ = std::fs::remove_file(&fresh);
        write_fresh(&fresh, &rows)
            .map_err(|reason| fail(format!("writing {}: {reason}", fresh.display())))?;
        let seconds = now_ms() / 1000;
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".damaged-{seconds}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside)
            .map_err(|error| fail(format!("moving the damaged file aside: {error}")))?;
        std::fs::rename(&fresh, path)
            .map_err(|error| fail(format!("putting the repaired file in place: {error}")))?;
        Ok(RepairReport {
            kept: rows.len() as u64,
            dropped,
            unreadable_rest,
            damaged_file: aside,
        })
    }
}

impl File {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is two fields replaced whole; a panic elsewhere cannot leave it half set.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The open database, reopening it after an I/O failure.
    fn db(&self) -> Result<Arc<Contained>, StoreError> {
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
    fn run<T>(&self, work: impl FnOnce(&Db) -> Result<T, Fail>) -> Result<T, StoreError> {
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
    fn fail(&self, db: &Arc<Contained>, error: redb::Error) -> StoreError {
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
const INSIDE_REDB: &str = "the storage library failed on damaged data in the file";

/// Run `work`, turning a panic into [`INSIDE_REDB`]. redb is a dependency that may panic on a
/// damaged file; nothing of it may reach our caller, its panic text included (logged at debug
/// level, for `-v`).
fn contained<T>(work: impl FnOnce() -> T) -> Result<T, String> {
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
fn open_db(path: &Path) -> Result<Db, OpenError> {
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
                         copy or bench may hold it; try again when it is done)",
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

fn read_only_message(db: &Db) -> String {
    match db {
        Db::ReadOnly(_, reason) => format!("the embedded store is open read-only: {reason}"),
        Db::Writable(_) => "the embedded store is open read-only".to_string(),
    }
}

fn read_list(db: &Db, key: &str) -> Result<Option<StoredList>, Fail> {
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

fn damaged_value(key: &str, damage: &str) -> StoreError {
    StoreError::Damaged(format!(
        "the stored value of {} is damaged ({damage})",
        key.escape_debug()
    ))
}

/// Open a damaged file as well as redb can: for writing (which lets redb run its own repair),
/// else read-only.
fn open_for_salvage(path: &Path) -> Result<Db, String> {
    match Database::builder().open(path) {
        Ok(db) => Ok(Db::Writable(db)),
        Err(writable) => match ReadOnlyDatabase::open(path) {
            Ok(db) => Ok(Db::ReadOnly(db, writable.to_string())),
            Err(_) => Err(format!("redb cannot open it: {writable}")),
        },
    }
}

type Salvage = (
    Vec<(String, Vec<u8>)>,
    Vec<(String, String)>,
    Option<String>,
);

/// Every row of `db` that reads and decodes, the keys that do not decode, and what stopped the
/// walk early, if anything did.
fn salvage(db: &Db) -> Salvage {
    let mut rows = Vec::new();
    let mut dropped = Vec::new();
    let walk = contained(|| -> Result<(), String> {
        let txn = db.begin_read().map_err(|error| error.to_string())?;
        let table = match txn.open_table(LISTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(error) => return Err(error.to_string()),
        };
        for row in table.iter().map_err(|error| error.to_string())? {
            let (key, value) = row.map_err(|error| error.to_string())?;
            let key = key.value().to_string();
            match decode(value.value()) {
                Ok(_) => rows.push((key, value.value().to_vec())),
                Err(damage) => dropped.push((key, damage)),
            }
        }
        Ok(())
    });
    let unreadable_rest = match walk {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(panic) => Some(panic),
    };
    (rows, dropped, unreadable_rest)
}

fn write_fresh(path: &Path, rows: &[(String, Vec<u8>)]) -> Result<(), String> {
    let db = Database::create(path).map_err(|error| error.to_string())?;
    let txn = db.begin_write().map_err(|error| error.to_string())?;
    {
        let mut table = txn.open_table(LISTS).map_err(|error| error.to_string())?;
        for (key, value) in rows {
            table
                .insert(key.as_str(), value.as_slice())
                .map_err(|error| error.to_string())?;
        }
    }
    txn.commit().map_err(|error| error.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_dependency_is_contained_without_its_text() {
        let caught = contained(|| -> u8 { panic!("internal error: entered unreachable code") });
        assert_eq!(caught, Err(INSIDE_REDB.to_string()));
    }
}
