//! Moving sessions between stores: every list under a prefix, entries byte for byte, the
//! remaining time to live kept.
//!
//! Each session is written to the target in one transaction that replaces it whole (delete,
//! push every entry, expire), so a copy interrupted anywhere and run again ends with the same
//! result, and a reader of the target never sees half a session. Nothing passes through a
//! policy: entries are copied as stored, whatever they hold. A session is read with two
//! requests (its entries, then its TTL), so copy a store that is not being written, or run the
//! copy again after the writers stopped.

use std::time::Duration;

use super::{KeyKind, ListOp, Store, StoreError, Ttl};

/// What a copy did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Sessions copied (or to be copied).
    pub sessions: u64,
    /// Entries in them.
    pub entries: u64,
    /// Bytes in those entries.
    pub bytes: u64,
    /// Keys under the prefix that were not copied, each with why.
    pub skipped: Vec<(Vec<u8>, SkipReason)>,
}

/// Why a key under the prefix was not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// It holds another type (someone else's data): never touched.
    NotAList(String),
    /// The source cannot decode it (a damaged value in the embedded store).
    Damaged(String),
    /// Its name is not UTF-8, which the target's list operations cannot name.
    NotUtf8,
    /// It expired (or was deleted) between the listing and the copy.
    Gone,
    /// The target holds another type under the same name: not overwritten.
    TargetNotAList,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAList(kind) => write!(f, "holds a {kind}, not a list"),
            Self::Damaged(reason) => write!(f, "damaged: {reason}"),
            Self::NotUtf8 => write!(f, "its name is not UTF-8"),
            Self::Gone => write!(f, "expired or deleted during the copy"),
            Self::TargetNotAList => write!(f, "the target holds something else under this name"),
        }
    }
}

/// Where a copy is, reported after each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProgress {
    /// Keys handled so far (copied or skipped).
    pub done: u64,
    /// Keys under the prefix in all.
    pub total: u64,
}

/// Why a copy stopped. Sessions copied before it stopped are complete in the target; running
/// the copy again finishes the job.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source failed.
    #[error("reading {key} from the source failed")]
    Source {
        /// The key being read (lossy UTF-8), or the prefix while listing.
        key: String,
        /// Why.
        source: StoreError,
    },
    /// The target failed.
    #[error("writing {key} to the target failed")]
    Target {
        /// The key being written.
        key: String,
        /// Why.
        source: StoreError,
    },
}

/// Copy every list under `prefix` from `from` to `to`, replacing sessions of the same name in
/// `to`. With `dry_run`, read everything and write nothing. `progress` hears each key.
pub async fn copy_sessions(
    from: &Store,
    to: &Store,
    prefix: &[u8],
    dry_run: bool,
    mut progress: impl FnMut(CopyProgress),
) -> Result<CopyReport, CopyError> {
    let keys = from
        .keys_with_prefix(prefix)
        .await
        .map_err(|source| CopyError::Source {
            key: String::from_utf8_lossy(prefix).into_owned(),
            source,
        })?;
    let total = keys.len() as u64;
    let mut report = CopyReport::default();
    for (done, key) in keys.into_iter().enumerate() {
        let lossy = String::from_utf8_lossy(&key).into_owned();
        let source_error = |source| CopyError::Source {
            key: lossy.clone(),
            source,
        };
        match copy_one(from, to, &key, dry_run).await {
            Ok(Copied::Session { entries, bytes }) => {
                report.sessions += 1;
                report.entries += entries;
                report.bytes += bytes;
            }
            Ok(Copied::Skipped(reason)) => report.skipped.push((key, reason)),
            Err(Failure::Source(error)) => return Err(source_error(error)),
            Err(Failure::Target(source)) => {
                return Err(CopyError::Target { key: lossy, source });
            }
        }
        progress(CopyProgress {
            done: done as u64 + 1,
            total,
        });
    }
    Ok(report)
}

enum Copied {
    Session { entries: u64, bytes: u64 },
    Skipped(SkipReason),
}

enum Failure {
    Source(StoreError),
    Target(StoreError),
}

async fn copy_one(from: &Store, to: &Store, key: &[u8], dry_run: bool) -> Result<Copied, Failure> {
    match from.kind(key).await.map_err(Failure::Source)? {
        KeyKind::List(_) => {}
        KeyKind::Missing => return Ok(Copied::Skipped(SkipReason::Gone)),
        KeyKind::Other(kind) => return Ok(Copied::Skipped(SkipReason::NotAList(kind))),
        KeyKind::Damaged(reason) => return Ok(Copied::Skipped(SkipReason::Damaged(reason))),
    }
    let Ok(name) = std::str::from_utf8(key) else {
        return Ok(Copied::Skipped(SkipReason::NotUtf8));
    };
    let entries = from.entries(key, 0, -1).await.map_err(Failure::Source)?;
    let ttl = from.ttl(key).await.map_err(Failure::Source)?;
    let seconds = match ttl {
        Ttl::Missing => return Ok(Copied::Skipped(SkipReason::Gone)),
        Ttl::Persistent => None,
        Ttl::ExpiresIn(left) => Some(whole_seconds(left)),
    };
    if entries.is_empty() {
        return Ok(Copied::Skipped(SkipReason::Gone));
    }
    let count = entries.len() as u64;
    let bytes = entries.iter().map(|entry| entry.len() as u64).sum();
    if !dry_run {
        let mut ops = vec![ListOp::Delete, ListOp::Push(entries)];
        ops.extend(seconds.map(ListOp::Expire));
        match to.apply(name, ops).await {
            Ok(_) => {}
            // DEL is sent as LTRIM, which refuses any other type: someone else's data in the
            // target stays as it is.
            Err(StoreError::WrongType) => return Ok(Copied::Skipped(SkipReason::TargetNotAList)),
            Err(error) => return Err(Failure::Target(error)),
        }
    }
    Ok(Copied::Session {
        entries: count,
        bytes,
    })
}

/// A remaining TTL in whole seconds (what EXPIRE takes), rounded up so that a session never
/// expires earlier than it would have, and at least 1 (EXPIRE 0 deletes).
fn whole_seconds(left: Duration) -> u32 {
    let seconds = left.as_millis().div_ceil(1000).max(1);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remaining_ttl_is_rounded_up_to_a_whole_second_and_never_zero() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(3000)), 3);
        assert_eq!(whole_seconds(Duration::from_millis(3001)), 4);
    }
}
