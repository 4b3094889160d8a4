//! The default agent-memory policy, as a WebAssembly component.
//!
//! It reproduces the Python original exactly: key `{prefix}{session}`, RPUSH of
//! `json.dumps`-identical entries, LTRIM to the newest `max-messages`, EXPIRE renewed on every
//! write, all in one transaction; entries that are not messages are skipped and counted; store
//! faults degrade, never trap.
//!
//! # Layout
//! - [`codec`]: stored entries <-> messages, over the shared storage format
//!   (`agent-memory-format`: JSON exactly as Python's `json` module reads and writes it).
//! - [`window`]: the window rule and the transaction that keeps it.
//! - [`resilience`]: which store errors are worth one more attempt.
//! - [`policy`]: the operations, over a [`policy::Host`] trait.
//! - `arena` (in the component only): a bump allocator over the instance's initial memory.
//! - this file: glue from the WIT bindings to [`policy`], nothing else.
//!
//! Built for `wasm32-unknown-unknown` and made a component by the host's build script, it
//! imports only the `agent-memory:policy` interfaces. Natively, `cargo test` runs the modules'
//! unit tests.

#![deny(missing_docs)]

#[cfg(target_arch = "wasm32")]
pub mod arena;
pub mod codec;
pub mod policy;
pub mod resilience;
pub mod window;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        additional_derives: [PartialEq, Eq],
    });

    use super::DefaultPolicy;
    export!(DefaultPolicy);
}

/// The WIT types the modules work with, under short names.
pub mod types {
    pub use crate::bindings::agent_memory::policy::log::Level;
    pub use crate::bindings::agent_memory::policy::store::{Applied, ListOp, Range};
    pub use crate::bindings::agent_memory::policy::types::{
        Content, Message, Replication, Settings, SizeLimit, StoreError,
    };
    pub use crate::bindings::exports::agent_memory::policy::memory::{
        Context, EntryProblem, InvalidMessage, SkippedEntry, Stored, Turn, WriteError, WriteOutcome,
    };
}

use bindings::agent_memory::policy::{config, log, store};
use bindings::exports::agent_memory::policy::memory::Guest;
use types::{Applied, Context, Level, ListOp, Message, Range, Settings, StoreError};
use types::{Turn, WriteError, WriteOutcome};

/// The component's export.
struct DefaultPolicy;

/// The real imports, as a [`policy::Host`].
struct Imports;

impl policy::Host for Imports {
    fn settings(&self) -> Settings {
        config::get_settings()
    }

    fn read_range(&self, key: &str, range: Range) -> Result<Vec<Vec<u8>>, StoreError> {
        store::read_range(key, range)
    }

    fn apply(&self, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError> {
        store::apply(key, ops)
    }

    fn log(&self, level: Level, message: &str) {
        log::log(level, message);
    }
}

impl Guest for DefaultPolicy {
    fn get_context(session_id: String) -> Context {
        policy::get_context(&Imports, &session_id)
    }

    fn add_message(session_id: String, message: Message) -> Result<WriteOutcome, WriteError> {
        policy::add_messages(&Imports, &session_id, std::slice::from_ref(&message))
    }

    fn add_messages(
        session_id: String,
        messages: Vec<Message>,
    ) -> Result<WriteOutcome, WriteError> {
        policy::add_messages(&Imports, &session_id, &messages)
    }

    fn add_and_get_context(session_id: String, messages: Vec<Message>) -> Result<Turn, WriteError> {
        policy::add_and_get_context(&Imports, &session_id, &messages)
    }

    fn clear(session_id: String) -> WriteOutcome {
        policy::clear(&Imports, &session_id)
    }
}
