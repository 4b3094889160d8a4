//! `repair`: every readable session of a damaged file copied into a new one, the damaged file
//! kept aside, and what was lost reported.

use std::path::{Path, PathBuf};

use redb::{Database, ReadOnlyDatabase, ReadableTable};

use super::file::{Contained, Db, contained};
use super::value::decode;
use super::{EmbeddedStore, LISTS};
use crate::store::{OpenError, now_ms};

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
