//! The contract (`wit/policy.wit`), owned here and nowhere else: the bindings wasmtime
//! generates from it, the conversions between its types and the library's, the checks of
//! what a policy returns, the measurement of a message's stored size, how a store call ends
//! (a value or a trap), and the contract's version. A change to the WIT touches this module
//! and the code that uses the new case, not a file per layer.
//!
//! - `generated`: `bindgen!` for the `policy` and `agent` worlds (one set of `types`).
//! - `convert`: into the contract (infallible: the host's own values) and out of a policy
//!   (untrusted: every JSON text checked, see `checks`).
//! - `checks`: what a policy may return, and what makes its answer invalid.
//! - `measure`: a message's stored size, computed without encoding it.
//! - `faults`: a store call's failure as the policy's `store-error` or a trap, decided in one
//!   function.
//! - `declared`: the settings a policy declares, and the check of a handle's against them.
//!
//! Leaf types are the generated ones where the library adds nothing to them: list operations
//! and ranges (`store::ListOp`), entry problems (`message::EntryProblem`), skipped entries
//! (`report::SkippedEntry`), the log level. The library keeps its own types where they add
//! something: messages with exact JSON members, contexts and outcomes with typed errors, and
//! the store's errors. `store-error` is an error type of the contract, so wasmtime's bindgen
//! gives the generated enum a `Display` that prints its `Debug` form (and an `Error` impl), and
//! no other can be added; `store::StoreError` carries the words operators and logs read, with
//! `may_have_applied` and `kind`, and its `size-limit` and `replication` records as named
//! fields. The two are converted in `convert`, one exhaustive match each way, so a new WIT
//! case does not compile until both know it.

pub(crate) mod checks;
pub(crate) mod convert;
pub(crate) mod declared;
pub(crate) mod faults;
mod generated;
pub(crate) mod measure;

// The version is read from `wit/policy.wit` by the build script (`contract_version!`).
include!(concat!(env!("OUT_DIR"), "/contract_version.rs"));

/// The version of the `agent-memory:policy` contract this host speaks, as `wit/policy.wit`
/// declares it (the build script reads it from there). The version is part of every import
/// and export name, so a component built for another one is refused at load, with both
/// versions named.
pub const CONTRACT_VERSION: &str = contract_version!();

/// The contract's WIT text (`wit/policy.wit`), as this host speaks it: what a policy author
/// builds against. `agent-memory policy build` hands it to the language's tool, so an author
/// needs neither this repository nor its WIT files.
pub const CONTRACT_WIT: &str = include_str!("../../../wit/policy.wit");

/// The exported interface a policy must provide.
pub(crate) const MEMORY_INTERFACE: &str =
    concat!("agent-memory:policy/memory@", contract_version!());

pub use self::generated::public as wit;
pub(crate) use self::generated::{
    Applied, Context, EntryProblem, Level, ListOp, MemberValue, MemoryError, Message, Policy,
    PolicyPre, Range, SettingSpec, Settings, StoreError, Stored, Turn, WriteOutcome,
    agent_memory_import, config, log, store, types_host,
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_is_the_wits() {
        let package = format!("package agent-memory:policy@{};", super::CONTRACT_VERSION);
        assert!(
            super::CONTRACT_WIT
                .lines()
                .any(|line| line.trim() == package)
        );
    }
}
