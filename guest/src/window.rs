//! The window rule: which entries a session keeps, and the store operations that keep it so.
//!
//! The original keeps the newest `max-messages` entries and renews the TTL on every write,
//! with RPUSH + LTRIM + EXPIRE in one transaction. Two cases it did not have to think about:
//! - A limit of 0 keeps nothing. `LTRIM key -0 -1` would keep *everything*, so the write is a
//!   DEL instead.
//! - A batch larger than the window: only its newest `max-messages` are pushed, since the trim
//!   would drop the others anyway; the report counts them as trimmed.

use crate::types::{Applied, ListOp, Range, Settings, Stored};

/// The store operations for one append, and what they mean for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPlan {
    /// The single-key transaction to apply.
    pub ops: Vec<ListOp>,
    /// Messages of the batch that are pushed.
    pub pushed: u32,
    /// Messages of the batch that fall outside the window and are never pushed.
    pub dropped_from_batch: u32,
}

/// Plan the transaction that appends `encoded` (oldest first) under `settings`.
pub fn plan_append(mut encoded: Vec<Vec<u8>>, settings: &Settings) -> AppendPlan {
    let batch = saturating_u32(encoded.len());
    let limit = settings.max_messages;
    if limit == 0 {
        return AppendPlan {
            ops: vec![ListOp::Delete],
            pushed: 0,
            dropped_from_batch: batch,
        };
    }
    let keep_from = encoded.len().saturating_sub(limit as usize);
    let pushed = encoded.split_off(keep_from);
    let pushed_count = saturating_u32(pushed.len());
    AppendPlan {
        ops: vec![
            ListOp::Push(pushed),
            ListOp::Trim(Range {
                start: -i64::from(limit),
                stop: -1,
            }),
            ListOp::Expire(settings.ttl_seconds),
        ],
        pushed: pushed_count,
        dropped_from_batch: saturating_u32(keep_from),
    }
}

/// The report of an applied append: what it appended, what the window dropped (stored
/// entries trimmed or deleted, and messages of the batch never pushed), what is left.
pub fn report(plan: &AppendPlan, applied: &Applied, settings: &Settings) -> Stored {
    let limit = u64::from(settings.max_messages);
    let length_after_push = applied.length_after_push.unwrap_or(0);
    let length = length_after_push.min(limit);
    let dropped_stored = (length_after_push - length).saturating_add(applied.deleted.unwrap_or(0));
    Stored {
        appended: plan.pushed,
        trimmed: saturating_u32(dropped_stored).saturating_add(plan.dropped_from_batch),
        length: saturating_u32(length),
        // The default policy trims blind (LTRIM), as the original does: it does not know
        // which entries went.
        evicted: Vec::new(),
    }
}

/// The range a read asks for: the newest `max-messages` entries, or nothing at all when the
/// window is empty. Asking for the tail rather than `0 -1` bounds the read even when a list
/// grew past the window (another writer with a larger limit).
pub fn read_range(settings: &Settings) -> Option<Range> {
    (settings.max_messages > 0).then(|| Range {
        start: -i64::from(settings.max_messages),
        stop: -1,
    })
}

/// The transaction that forgets a session.
pub fn plan_clear() -> Vec<ListOp> {
    vec![ListOp::Delete]
}

/// `n` as a `u32`, `u32::MAX` when it does not fit.
pub fn saturating_u32(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_messages: u32) -> Settings {
        Settings {
            max_messages,
            ttl_seconds: 3600,
            key_prefix: "ai:memory:".to_string(),
            max_message_bytes: 1 << 20,
            extra: Vec::new(),
        }
    }

    fn entries(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8]).collect()
    }

    #[test]
    fn an_append_is_push_then_trim_to_the_tail_then_expire() {
        let plan = plan_append(entries(1), &settings(50));
        assert_eq!(
            plan.ops,
            vec![
                ListOp::Push(vec![vec![0]]),
                ListOp::Trim(Range {
                    start: -50,
                    stop: -1
                }),
                ListOp::Expire(3600),
            ]
        );
        assert_eq!((plan.pushed, plan.dropped_from_batch), (1, 0));
    }

    #[test]
    fn a_limit_of_zero_deletes_instead_of_trimming_everything_away() {
        let plan = plan_append(entries(3), &settings(0));
        assert_eq!(plan.ops, vec![ListOp::Delete]);
        assert_eq!((plan.pushed, plan.dropped_from_batch), (0, 3));
        assert_eq!(read_range(&settings(0)), None);
    }

    #[test]
    fn a_batch_larger_than_the_window_pushes_only_its_newest_entries() {
        let plan = plan_append(entries(5), &settings(2));
        assert_eq!(plan.ops[0], ListOp::Push(vec![vec![3], vec![4]]));
        assert_eq!((plan.pushed, plan.dropped_from_batch), (2, 3));
    }

    #[test]
    fn the_report_counts_trimmed_entries_and_the_new_length() {
        let settings = settings(50);
        let plan = plan_append(entries(1), &settings);
        let at = |length| {
            report(
                &plan,
                &Applied {
                    length_after_push: Some(length),
                    deleted: None,
                    read: None,
                },
                &settings,
            )
        };
        assert_eq!(
            at(50),
            Stored {
                appended: 1,
                trimmed: 0,
                length: 50,
                evicted: Vec::new(),
            }
        );
        assert_eq!(
            at(51),
            Stored {
                appended: 1,
                trimmed: 1,
                length: 50,
                evicted: Vec::new(),
            }
        );
        assert_eq!(
            at(1),
            Stored {
                appended: 1,
                trimmed: 0,
                length: 1,
                evicted: Vec::new(),
            }
        );
    }

    #[test]
    fn reads_ask_for_the_newest_entries_only() {
        assert_eq!(
            read_range(&settings(50)),
            Some(Range {
                start: -50,
                stop: -1
            })
        );
    }
}
