//! The namespace guard and caps: what a policy may ask of the store, checked before any I/O.
//!
//! A call is scoped to one session, so the only key it may touch is that session's key.
//! Requests over a cap are refused with a WIT error the policy can act on (`denied`,
//! `too-large`), never a trap: a policy that asks too much is told so and can degrade.

use crate::settings::Limits;
use crate::store::{ListOp, Range, StoreError};

/// What one call may do, and what it has done so far.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The one key this call may touch.
    key: String,
    /// Largest value a push may carry (the settings' `max_message_bytes`).
    max_value_bytes: u32,
    limits: Limits,
    store_calls: u32,
}

impl Guard {
    pub(crate) fn new(key: String, max_value_bytes: u32, limits: Limits) -> Self {
        Self {
            key,
            max_value_bytes,
            limits,
            store_calls: 0,
        }
    }

    /// Count one store call and check its key. Called first by every store import.
    pub(crate) fn admit(&mut self, key: &str) -> Result<(), StoreError> {
        self.store_calls = self.store_calls.saturating_add(1);
        if self.store_calls > self.limits.max_store_calls {
            return Err(StoreError::Denied(format!(
                "more than {} store calls in one request",
                self.limits.max_store_calls
            )));
        }
        if key != self.key {
            return Err(StoreError::Denied(
                "key outside this call's session".to_string(),
            ));
        }
        Ok(())
    }

    /// Check a read before sending it: a range whose size is known from its bounds alone
    /// (both ends on the same side) must fit the entry cap.
    pub(crate) fn check_read_request(&self, start: i64, stop: i64) -> Result<(), StoreError> {
        if (start >= 0) == (stop >= 0) {
            let span = stop
                .saturating_sub(start)
                .saturating_add(1)
                .max(0)
                .unsigned_abs();
            self.check_entries(span)?;
        }
        Ok(())
    }

    /// Check a read's reply after receiving it, before it is copied into the guest.
    pub(crate) fn check_read_reply(&self, entries: &[Vec<u8>]) -> Result<(), StoreError> {
        self.check_entries(entries.len() as u64)?;
        let bytes: u64 = entries.iter().map(|entry| entry.len() as u64).sum();
        if bytes > self.limits.max_read_bytes {
            return Err(too_large("bytes read", bytes, self.limits.max_read_bytes));
        }
        Ok(())
    }

    fn check_entries(&self, entries: u64) -> Result<(), StoreError> {
        let limit = u64::from(self.limits.max_entries_read);
        if entries > limit {
            return Err(too_large("entries read", entries, limit));
        }
        Ok(())
    }

    /// Check a transaction before sending it.
    pub(crate) fn check_transaction(&self, ops: &[ListOp]) -> Result<(), StoreError> {
        let max_ops = self.limits.max_ops_per_transaction;
        if ops.len() > max_ops as usize {
            return Err(StoreError::Denied(format!(
                "transaction of {} operations; the limit is {max_ops}",
                ops.len()
            )));
        }
        let mut bytes = 0u64;
        for (position, op) in ops.iter().enumerate() {
            match op {
                ListOp::Expect(_) if position > 0 => {
                    return Err(StoreError::Denied(
                        "expect is only allowed as the first operation".to_string(),
                    ));
                }
                // The expectation is what the policy read: it meets the read caps, and is
                // compared, not sent (Redis gets its digest).
                ListOp::Expect(entries) => self.check_read_reply(entries)?,
                ListOp::Push(values) | ListOp::PushFront(values) if values.is_empty() => {
                    return Err(StoreError::Denied("push of no values".to_string()));
                }
                ListOp::Push(values) | ListOp::PushFront(values) => {
                    for value in values {
                        let len = value.len() as u64;
                        if len > u64::from(self.max_value_bytes) {
                            return Err(too_large(
                                "value bytes",
                                len,
                                u64::from(self.max_value_bytes),
                            ));
                        }
                        bytes = bytes.saturating_add(len);
                    }
                }
                // EXPIRE 0 deletes the key at once: a deletion must say so (`delete`).
                ListOp::Expire(0) => {
                    return Err(StoreError::Denied("expire of 0 seconds".to_string()));
                }
                ListOp::Read(Range { start, stop }) => self.check_read_request(*start, *stop)?,
                ListOp::Trim(_) | ListOp::Expire(_) | ListOp::Delete => {}
            }
        }
        if bytes > self.limits.max_transaction_bytes {
            return Err(too_large(
                "transaction bytes",
                bytes,
                self.limits.max_transaction_bytes,
            ));
        }
        Ok(())
    }
}

fn too_large(what: &str, actual: u64, limit: u64) -> StoreError {
    StoreError::TooLarge {
        what: what.to_string(),
        actual,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(
            "ai:memory:s".to_string(),
            10,
            Limits {
                max_store_calls: 2,
                max_ops_per_transaction: 3,
                max_entries_read: 5,
                max_read_bytes: 20,
                max_transaction_bytes: 15,
                ..Limits::default()
            },
        )
    }

    #[test]
    fn a_key_of_another_session_is_denied() {
        let mut guard = guard();
        assert!(matches!(
            guard.admit("ai:memory:other"),
            Err(StoreError::Denied(_))
        ));
        assert!(matches!(
            guard.admit("ai:memory:s:x"),
            Err(StoreError::Denied(_))
        ));
        assert!(matches!(
            guard.admit("unrelated"),
            Err(StoreError::Denied(_))
        ));
    }

    #[test]
    fn store_calls_past_the_cap_are_denied() {
        let mut guard = guard();
        assert_eq!(guard.admit("ai:memory:s"), Ok(()));
        assert_eq!(guard.admit("ai:memory:s"), Ok(()));
        assert!(matches!(
            guard.admit("ai:memory:s"),
            Err(StoreError::Denied(_))
        ));
    }

    #[test]
    fn a_read_known_to_be_too_wide_is_refused_before_sending() {
        let guard = guard();
        assert!(guard.check_read_request(0, 4).is_ok());
        assert!(matches!(
            guard.check_read_request(0, 5),
            Err(StoreError::TooLarge {
                actual: 6,
                limit: 5,
                ..
            })
        ));
        assert!(guard.check_read_request(-5, -1).is_ok());
        assert!(guard.check_read_request(-6, -1).is_err());
        assert!(guard.check_read_request(i64::MIN, i64::MAX).is_ok());
        assert!(guard.check_read_request(0, i64::MAX).is_err());
        assert!(guard.check_read_request(i64::MIN, -1).is_err());
    }

    #[test]
    fn a_reply_over_the_entry_or_byte_cap_is_refused_after_receiving() {
        let guard = guard();
        assert!(guard.check_read_reply(&vec![vec![0; 4]; 5]).is_ok());
        assert!(guard.check_read_reply(&vec![vec![0; 1]; 6]).is_err());
        assert!(matches!(
            guard.check_read_reply(&[vec![0; 21]]),
            Err(StoreError::TooLarge { actual: 21, .. })
        ));
    }

    #[test]
    fn oversized_values_transactions_and_op_counts_are_refused() {
        let guard = guard();
        assert!(
            guard
                .check_transaction(&[ListOp::Push(vec![vec![0; 10]])])
                .is_ok()
        );
        assert!(matches!(
            guard.check_transaction(&[ListOp::Push(vec![vec![0; 11]])]),
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            guard.check_transaction(&[ListOp::Push(vec![vec![0; 8], vec![0; 8]])]),
            Err(StoreError::TooLarge {
                actual: 16,
                limit: 15,
                ..
            })
        ));
        assert!(matches!(
            guard.check_transaction(&vec![ListOp::Delete; 4]),
            Err(StoreError::Denied(_))
        ));
    }

    #[test]
    fn an_empty_push_or_an_expire_of_zero_is_denied() {
        let guard = guard();
        assert!(matches!(
            guard.check_transaction(&[ListOp::Push(Vec::new())]),
            Err(StoreError::Denied(_))
        ));
        assert!(matches!(
            guard.check_transaction(&[ListOp::Expire(0)]),
            Err(StoreError::Denied(_))
        ));
    }

    #[test]
    fn an_expectation_comes_first_and_within_the_read_caps() {
        let guard = guard();
        let expect = ListOp::Expect(vec![vec![0; 4]; 2]);
        let push = ListOp::Push(vec![vec![0; 4]]);
        assert!(
            guard
                .check_transaction(&[expect.clone(), push.clone()])
                .is_ok()
        );
        assert!(matches!(
            guard.check_transaction(&[push.clone(), expect]),
            Err(StoreError::Denied(_))
        ));
        assert!(matches!(
            guard.check_transaction(&[ListOp::Expect(vec![vec![0; 21]]), push]),
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            guard.check_transaction(&[ListOp::PushFront(Vec::new())]),
            Err(StoreError::Denied(_))
        ));
        assert!(matches!(
            guard.check_transaction(&[ListOp::PushFront(vec![vec![0; 11]])]),
            Err(StoreError::TooLarge { .. })
        ));
    }
}
