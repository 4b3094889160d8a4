//! Trap or value: how a store call of a policy ends when it does not return what was asked.
//!
//! A store call fails in one of two ways. Either the store (or the host's guard in front of
//! it) refused or failed the request, and the policy gets a `store-error` it can handle
//! (degrade, retry, report) — or the host cannot let this instance go on (a store call where
//! no store can exist, a host bug), and the call traps, which ends the instance. The host
//! functions return a [`StoreFault`] for both, and [`decide`] is the one place that turns it
//! into the policy's value or the trap, as wasi-http's `convert_error_code` does for its
//! error codes (wasmtime's `trappable_error_type`).

use super::generated as wit;

/// Why a store call of a policy did not return its value. (`pub` only because the generated
/// `Host` trait names it; the module is private.)
#[derive(Debug)]
pub enum StoreFault {
    /// The request was refused or failed: the policy is told, in the contract's words.
    Refused(wit::StoreError),
    /// The host stops the instance: the call traps with this error.
    Trap(wasmtime::Error),
}

impl From<wit::StoreError> for StoreFault {
    fn from(error: wit::StoreError) -> Self {
        Self::Refused(error)
    }
}

impl From<wasmtime::Error> for StoreFault {
    fn from(error: wasmtime::Error) -> Self {
        Self::Trap(error)
    }
}

/// The policy's `store-error`, or the trap that ends its instance.
pub(crate) fn decide(fault: StoreFault) -> wasmtime::Result<wit::StoreError> {
    match fault {
        StoreFault::Refused(error) => Ok(error),
        StoreFault::Trap(trap) => Err(trap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reaches_the_policy_and_a_host_fault_traps() {
        let refused = decide(StoreFault::Refused(wit::StoreError::WrongType));
        assert_eq!(refused.unwrap(), wit::StoreError::WrongType);
        let trapped = decide(wasmtime::format_err!("no store in a trial").into());
        assert_eq!(trapped.unwrap_err().to_string(), "no store in a trial");
    }
}
