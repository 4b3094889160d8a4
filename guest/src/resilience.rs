//! What the policy does when the store fails: which errors are worth one more attempt.
//!
//! The rule follows from what each error says about the request:
//! - `outcome-unknown`: the connection broke under the request. A read is safe to repeat, and
//!   the repeat runs on a new connection (the host rebuilds a broken one), so it usually
//!   succeeds: this is how a read survives a Redis restart unnoticed. A write is not safe to
//!   repeat (RPUSH is not idempotent, a blind retry could store a message twice): reported.
//! - `unavailable`: nothing was sent, but the host has just failed to connect, shares that
//!   failure among concurrent calls and backs off before the next attempt: an immediate retry
//!   would only meet the same failure (and a policy retrying would multiply connect attempts
//!   during an outage). Reported at once.
//! - `timeout`: the store is slow. Waiting again would double the latency the agent sees for
//!   little chance of success, so it is reported at once.
//! - everything else (out of memory, wrong type, too large, denied, rejected) will fail the same
//!   way again.

use crate::types::StoreError;

/// How many times a request is tried in all. Each attempt is a host call, and the host caps
/// the calls one request may make, so this stays small.
pub const MAX_ATTEMPTS: u32 = 2;

/// Whether a request repeats safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A read: repeating it changes nothing.
    Read,
    /// A write: repeating it after an unknown outcome could apply it twice.
    Write,
}

/// Whether `error`, met on attempt number `attempt` (1-based), is worth another attempt.
pub fn should_retry(access: Access, error: &StoreError, attempt: u32) -> bool {
    if attempt >= MAX_ATTEMPTS {
        return false;
    }
    match error {
        StoreError::OutcomeUnknown(_) => access == Access::Read,
        StoreError::Unavailable(_)
        | StoreError::Timeout
        | StoreError::OutOfMemory
        | StoreError::DiskFull(_)
        | StoreError::Damaged(_)
        | StoreError::WrongType
        | StoreError::TooLarge(_)
        | StoreError::Denied(_)
        | StoreError::Rejected(_)
        | StoreError::NotReplicated(_)
        // A conflict is answered by reading again and planning anew, which only the
        // operation itself can do (the tool-safe policy does).
        | StoreError::Conflict => false,
    }
}

/// Run `request` until it succeeds or `should_retry` says stop; `on_retry` hears each retry.
pub fn with_retry<T>(
    access: Access,
    mut request: impl FnMut() -> Result<T, StoreError>,
    mut on_retry: impl FnMut(&StoreError),
) -> Result<T, StoreError> {
    let mut attempt = 1;
    loop {
        match request() {
            Ok(value) => return Ok(value),
            Err(error) if should_retry(access, &error, attempt) => {
                on_retry(&error);
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Replication;

    fn attempts_until_done(
        access: Access,
        errors: Vec<StoreError>,
    ) -> (u32, Result<(), StoreError>) {
        let mut errors = errors.into_iter();
        let mut calls = 0;
        let result = with_retry(
            access,
            || {
                calls += 1;
                errors.next().map_or(Ok(()), Err)
            },
            |_| {},
        );
        (calls, result)
    }

    #[test]
    fn an_unknown_outcome_is_retried_once_for_reads() {
        let lost = StoreError::OutcomeUnknown("reset".into());
        assert_eq!(
            attempts_until_done(Access::Read, vec![lost.clone(), lost.clone()]),
            (2, Err(lost))
        );
    }

    #[test]
    fn an_unknown_outcome_is_retried_for_reads_but_never_for_writes() {
        let lost = StoreError::OutcomeUnknown("reset".into());
        assert_eq!(
            attempts_until_done(Access::Read, vec![lost.clone()]),
            (2, Ok(()))
        );
        assert_eq!(
            attempts_until_done(Access::Write, vec![lost.clone()]),
            (1, Err(lost))
        );
    }

    #[test]
    fn unavailable_timeouts_and_refusals_are_reported_at_once() {
        for error in [
            StoreError::Unavailable("refused".into()),
            StoreError::Timeout,
            StoreError::OutOfMemory,
            StoreError::DiskFull("no space".into()),
            StoreError::Damaged("bad page".into()),
            StoreError::WrongType,
            StoreError::Denied("quota".into()),
            StoreError::Rejected("READONLY".into()),
            StoreError::NotReplicated(Replication {
                wanted: 1,
                acknowledged: 0,
            }),
        ] {
            for access in [Access::Read, Access::Write] {
                assert_eq!(
                    attempts_until_done(access, vec![error.clone()]),
                    (1, Err(error.clone()))
                );
            }
        }
    }
}
