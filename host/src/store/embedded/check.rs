//! Whether writes to an embedded store file work, found out without changing its sessions.
//!
//! A file can read well and still fail every write: the damage is where redb keeps what only a
//! write consults (its allocator's records, the system tables of pages being freed). `doctor`
//! must find what the write path trips on, so it makes a write: through the store's own open
//! database (the state the next write would meet; a copy of an open file would first need a
//! repair, which trips on damage no write ever meets), one transaction that inserts and
//! removes a probe key and commits. Commit is where redb updates its system tables, and where
//! some damage shows; a failed commit leaves the file as it was (redb's transactions are
//! all-or-nothing), a successful one leaves every session as it was.

use super::{Db, EmbeddedStore, Fail, LISTS, redb_err};
use crate::store::StoreError;

/// Why [`EmbeddedStore::check_writes`] did not find writes working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCheck {
    /// Writes fail, for this reason.
    Fails(String),
    /// The check could not be made (the file is open read-only, say), for this reason.
    NotMade(String),
}

/// The key the probe write inserts and removes again in one transaction.
const PROBE: &str = "agent-memory-doctor-probe";

impl EmbeddedStore {
    /// Make a write the way the store makes them, one that changes no session: a probe key
    /// inserted and removed in one committed transaction. Blocks for the time of one small
    /// write transaction.
    pub fn check_writes(&self) -> Result<(), WriteCheck> {
        let probed = self.file.run(|db| {
            let Db::Writable(db) = db else {
                return Err(Fail::Store(StoreError::Rejected(
                    "the file is open read-only".to_string(),
                )));
            };
            let txn = db.begin_write().map_err(redb_err)?;
            {
                let mut table = txn.open_table(LISTS).map_err(redb_err)?;
                table
                    .insert(PROBE, [0u8; 64].as_slice())
                    .map_err(redb_err)?;
                table.remove(PROBE).map_err(redb_err)?;
            }
            txn.commit().map_err(redb_err)
        });
        match probed {
            Ok(()) => Ok(()),
            // Without the advice to run doctor, which is who asks.
            Err(StoreError::Damaged(reason)) => Err(WriteCheck::Fails(
                reason
                    .split("; `agent-memory doctor`")
                    .next()
                    .unwrap_or(&reason)
                    .to_string(),
            )),
            Err(other) => Err(WriteCheck::NotMade(other.to_string())),
        }
    }
}
