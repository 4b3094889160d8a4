//! Redis list semantics, for the stores that are not Redis.
//!
//! The embedded and in-memory stores must behave exactly like Redis for everything the policy
//! can ask, so that a policy tested on one works on the others: LRANGE/LTRIM index rules
//! (negative from the tail, clamped, empty when crossed), an emptied list ceasing to exist
//! (and losing its TTL), RPUSH keeping the TTL, EXPIRE on a missing key doing nothing, and an
//! expired list reading as missing.

use std::time::Duration;

use super::{Applied, KeyKind, ListOp, Range, StoreError, Ttl};

/// One list with its expiry, as the non-Redis stores keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredList {
    /// The entries, head first.
    pub entries: Vec<Vec<u8>>,
    /// When the list expires, in milliseconds since the Unix epoch; `None` never.
    pub expires_at_ms: Option<u64>,
}

impl StoredList {
    /// Whether the list has expired at `now_ms` (Redis: a key expires when its time is reached).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// LRANGE `start..=stop` of a live list (`None`: missing, which reads as empty).
pub fn range_of(list: Option<&StoredList>, start: i64, stop: i64) -> Vec<Vec<u8>> {
    list.map_or_else(Vec::new, |found| {
        found.entries[redis_range(found.entries.len(), start, stop)].to_vec()
    })
}

/// What a key holding this live list (or nothing) holds.
pub fn kind_of(list: Option<&StoredList>) -> KeyKind {
    list.map_or(KeyKind::Missing, |found| {
        KeyKind::List(found.entries.len() as u64)
    })
}

/// The TTL of a list that is live at `now_ms` (or missing), as Redis reports it.
pub fn ttl_of(list: Option<&StoredList>, now_ms: u64) -> Ttl {
    match list {
        None => Ttl::Missing,
        Some(StoredList {
            expires_at_ms: None,
            ..
        }) => Ttl::Persistent,
        Some(StoredList {
            expires_at_ms: Some(at),
            ..
        }) => Ttl::ExpiresIn(Duration::from_millis(at.saturating_sub(now_ms))),
    }
}

/// The slice of `len` entries that LRANGE/LTRIM `start..=stop` selects, as a `Range<usize>`.
pub fn redis_range(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    // Lengths of real lists fit in i64; saturate rather than wrap if one ever does not.
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        len_i.saturating_add(start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len_i.saturating_add(stop)
    } else {
        stop
    };
    if start > stop || start >= len_i {
        return 0..0;
    }
    let stop = stop.min(len_i - 1);
    // Both bounds are now within 0..len, so the conversions cannot fail.
    usize::try_from(start).unwrap_or(0)..usize::try_from(stop).unwrap_or(0) + 1
}

/// Whether `list` (None = missing) meets the transaction's [`ListOp::Expect`], if it has one:
/// checked before anything of the transaction is applied.
/// The text of `key` for a store whose keys are text (the embedded file, process memory).
/// Bytes that are not UTF-8 name no list there, so a transaction on them acts on nothing:
/// `None` when it writes nothing (a delete, a read: the caller applies it to no list),
/// refused when it would store something.
pub fn text_key<'a>(key: &'a [u8], ops: &[ListOp]) -> Result<Option<&'a str>, StoreError> {
    match std::str::from_utf8(key) {
        Ok(text) => Ok(Some(text)),
        Err(_)
            if ops
                .iter()
                .all(|op| matches!(op, ListOp::Delete | ListOp::Read(_))) =>
        {
            Ok(None)
        }
        Err(_) => Err(StoreError::Denied(
            "this store's keys are text: a key that is not UTF-8 cannot hold a list".to_string(),
        )),
    }
}

pub fn check_expectation(list: Option<&StoredList>, ops: &[ListOp]) -> Result<(), StoreError> {
    match ops.first() {
        Some(ListOp::Expect(expected)) => {
            let entries = list.map_or(&[][..], |found| found.entries.as_slice());
            if entries == expected.as_slice() {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        }
        _ => Ok(()),
    }
}

/// Apply `ops` in order to `list` (None = missing), as one MULTI/EXEC would at `now_ms`.
/// Returns the list as it is afterwards (None = the key no longer exists). An `Expect` is
/// checked by [`check_expectation`] before this is called, and does nothing here.
pub fn apply(
    list: Option<StoredList>,
    ops: Vec<ListOp>,
    now_ms: u64,
) -> (Option<StoredList>, Applied) {
    let mut list = list.filter(|list| !list.is_expired(now_ms));
    let mut applied = Applied::default();
    for op in ops {
        match op {
            ListOp::Expect(_) => {}
            ListOp::Push(values) => {
                let current = list.get_or_insert_with(StoredList::default);
                current.entries.extend(values);
                applied.length_after_push = Some(current.entries.len() as u64);
            }
            ListOp::PushFront(values) => {
                let current = list.get_or_insert_with(StoredList::default);
                current.entries.splice(0..0, values);
                applied.length_after_push = Some(current.entries.len() as u64);
            }
            ListOp::Trim(Range { start, stop }) => {
                if let Some(current) = list.as_mut() {
                    let keep = redis_range(current.entries.len(), start, stop);
                    current.entries.truncate(keep.end);
                    current.entries.drain(..keep.start);
                }
            }
            ListOp::Expire(seconds) => {
                if let Some(current) = list.as_mut() {
                    current.expires_at_ms = Some(now_ms.saturating_add(u64::from(seconds) * 1000));
                }
            }
            ListOp::Delete => {
                applied.deleted = Some(list.take().map_or(0, |gone| gone.entries.len() as u64));
            }
            ListOp::Read(Range { start, stop }) => {
                applied.read = Some(Ok(range_of(list.as_ref(), start, stop)));
            }
        }
        // Redis removes a list the moment it becomes empty, TTL and all.
        if list
            .as_ref()
            .is_some_and(|current| current.entries.is_empty())
        {
            list = None;
        }
    }
    (list, applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: u8) -> StoredList {
        StoredList {
            entries: (0..n).map(|i| vec![i]).collect(),
            expires_at_ms: None,
        }
    }

    // Expectations checked against redis-server 7.0 (LRANGE on a list of 5).
    #[test]
    fn ranges_follow_lrange_index_rules() {
        assert_eq!(redis_range(5, 0, -1), 0..5);
        assert_eq!(redis_range(5, -2, -1), 3..5);
        assert_eq!(redis_range(5, -50, -1), 0..5);
        assert_eq!(redis_range(5, 1, 100), 1..5);
        assert_eq!(redis_range(5, 3, 1), 0..0);
        assert_eq!(redis_range(5, 5, 9), 0..0);
        assert_eq!(redis_range(5, -100, -90), 0..0);
        assert_eq!(redis_range(0, 0, -1), 0..0);
        assert_eq!(redis_range(5, i64::MIN, i64::MAX), 0..5);
    }

    #[test]
    fn trim_to_the_tail_keeps_the_newest_entries() {
        let (after, _) = apply(
            Some(list(5)),
            vec![ListOp::Trim(Range {
                start: -2,
                stop: -1,
            })],
            0,
        );
        assert_eq!(after.unwrap().entries, vec![vec![3], vec![4]]);
    }

    #[test]
    fn a_trim_that_keeps_nothing_removes_the_key() {
        let (after, _) = apply(
            Some(list(5)),
            vec![ListOp::Trim(Range { start: 1, stop: 0 })],
            0,
        );
        assert_eq!(after, None);
    }

    #[test]
    fn push_reports_the_length_and_keeps_the_ttl() {
        let mut old = list(2);
        old.expires_at_ms = Some(10_000);
        let (after, applied) = apply(Some(old), vec![ListOp::Push(vec![vec![9]])], 5);
        let after = after.unwrap();
        assert_eq!(applied.length_after_push, Some(3));
        assert_eq!(after.expires_at_ms, Some(10_000));
    }

    #[test]
    fn expire_sets_an_absolute_deadline_and_does_nothing_to_a_missing_key() {
        let (after, _) = apply(Some(list(1)), vec![ListOp::Expire(2)], 1_000);
        assert_eq!(after.unwrap().expires_at_ms, Some(3_000));
        let (after, _) = apply(None, vec![ListOp::Expire(2)], 1_000);
        assert_eq!(after, None);
    }

    #[test]
    fn an_expired_list_is_treated_as_missing() {
        let mut old = list(3);
        old.expires_at_ms = Some(1_000);
        let (after, applied) = apply(Some(old), vec![ListOp::Push(vec![vec![7]])], 1_000);
        assert_eq!(applied.length_after_push, Some(1));
        assert_eq!(after.unwrap().expires_at_ms, None);
    }

    #[test]
    fn a_read_sees_the_list_as_the_earlier_operations_left_it() {
        let (_, applied) = apply(
            Some(list(3)),
            vec![
                ListOp::Push(vec![vec![9]]),
                ListOp::Trim(Range {
                    start: -2,
                    stop: -1,
                }),
                ListOp::Read(Range {
                    start: -10,
                    stop: -1,
                }),
            ],
            0,
        );
        assert_eq!(applied.read, Some(Ok(vec![vec![2], vec![9]])));
    }

    #[test]
    fn delete_removes_the_list_and_counts_its_entries() {
        let (after, applied) = apply(Some(list(3)), vec![ListOp::Delete], 0);
        assert_eq!((after, applied.deleted), (None, Some(3)));
        let (_, applied) = apply(None, vec![ListOp::Delete], 0);
        assert_eq!(applied.deleted, Some(0));
    }
}
