//! The built-in agent-memory policies, as WebAssembly components.
//!
//! - The default policy ([`policy`]) reproduces the Python original exactly: key
//!   `{prefix}{session}`, RPUSH of `json.dumps`-identical entries, LTRIM to the newest
//!   `max-messages`, EXPIRE renewed on every write, all in one transaction; entries that are
//!   not messages are skipped and counted; store faults degrade, never trap.
//! - The tool-safe policy ([`tool_safe`]) keeps a window that never splits a tool call from its
//!   results, pins the first system message, and can keep a token budget; same storage format.
//!
//! One crate, two components: the host's build script builds it twice, once with the
//! `tool-safe` feature, which selects the policy the component exports. Both are written
//! against [`policy::Host`], so their unit tests run natively with a fake store.
//!
//! # Layout
//! - [`codec`]: stored entries <-> messages, over the shared storage format
//!   (`agent-memory-format`: JSON exactly as Python's `json` module reads and writes it).
//! - [`window`]: the default window rule and the transaction that keeps it.
//! - [`resilience`]: which store errors are worth one more attempt.
//! - [`policy`]: the default policy's operations, over a [`policy::Host`] trait.
//! - [`tool_safe`]: the tool-safe policy's window and operations.
//! - `arena` (in the component only): a bump allocator over the instance's initial memory.
//! - this file: glue from the WIT bindings to the policy exported, nothing else.
//!
//! Built for `wasm32-unknown-unknown` and made a component by the host's build script, it
//! imports only the `agent-memory:policy` interfaces.

#![deny(missing_docs)]

#[cfg(target_arch = "wasm32")]
pub mod arena;
pub mod codec;
#[cfg(test)]
mod fake_host;
pub mod policy;
pub mod resilience;
pub mod tool_safe;
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

    #[cfg(not(feature = "tool-safe"))]
    use super::DefaultPolicy as Exported;
    #[cfg(feature = "tool-safe")]
    use super::ToolSafePolicy as Exported;
    export!(Exported);
}

/// The WIT types the modules work with, under short names.
pub mod types {
    pub use crate::bindings::agent_memory::policy::log::Level;
    pub use crate::bindings::agent_memory::policy::store::{Applied, ListOp, Range};
    pub use crate::bindings::agent_memory::policy::types::{
        Context, EntryProblem, IntegerRange, InvalidMessage, Member, MemberValue, MemoryError,
        Message, Replication, SettingKind, SettingSpec, Settings, SizeLimit, SkippedEntry,
        StoreError, Stored, Turn, WindowLimit, WindowOverflow, WindowRefusal, WriteOutcome,
    };
}

use bindings::agent_memory::policy::{config, log, store};
use bindings::exports::agent_memory::policy::describe::Guest as Describe;
use bindings::exports::agent_memory::policy::memory::Guest;
use types::SettingSpec;
use types::{Applied, Context, Level, ListOp, MemoryError, Message, Range, Settings, StoreError};
use types::{Turn, WriteOutcome};

/// The default policy's export (the component's unless built with `tool-safe`).
#[cfg_attr(feature = "tool-safe", allow(dead_code))]
struct DefaultPolicy;

/// The tool-safe policy's export (the component's when built with `tool-safe`).
#[cfg_attr(not(feature = "tool-safe"), allow(dead_code))]
struct ToolSafePolicy;

/// The real imports, as a [`policy::Host`].
struct Imports;

/// Have a panic say what it was before it becomes a trap: the hook logs an `error` line
/// starting with `panicked`, which the host keeps and shows with the trap (with `panic =
/// "abort"` nothing else would survive: the message is lost in the `unreachable` instruction).
/// Set on every call: a fresh instance has no hook, and setting it again on a warm one costs
/// nothing (the hook captures nothing, so it is never allocated).
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload_as_str().unwrap_or("a panic without a message");
        let place = info
            .location()
            .map(|place| format!(" at {}:{}", place.file(), place.line()))
            .unwrap_or_default();
        log::log(Level::Error, &format!("panicked{place}: {message}"));
    }));
}

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
    fn get_context(session_id: String) -> Result<Context, MemoryError> {
        report_panics();
        Ok(policy::get_context(&Imports, &session_id))
    }

    fn add_message(session_id: String, message: Message) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        policy::add_messages(&Imports, &session_id, std::slice::from_ref(&message))
    }

    fn add_messages(
        session_id: String,
        messages: Vec<Message>,
    ) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        policy::add_messages(&Imports, &session_id, &messages)
    }

    fn add_and_get_context(
        session_id: String,
        messages: Vec<Message>,
    ) -> Result<Turn, MemoryError> {
        report_panics();
        policy::add_and_get_context(&Imports, &session_id, &messages)
    }

    fn clear(session_id: String) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        Ok(policy::clear(&Imports, &session_id))
    }
}

impl Describe for DefaultPolicy {
    fn settings() -> Vec<SettingSpec> {
        // The original's window needs nothing beyond the common settings.
        Vec::new()
    }
}

impl Describe for ToolSafePolicy {
    fn settings() -> Vec<SettingSpec> {
        tool_safe::settings()
    }
}

impl Guest for ToolSafePolicy {
    fn get_context(session_id: String) -> Result<Context, MemoryError> {
        report_panics();
        Ok(tool_safe::get_context(&Imports, &session_id))
    }

    fn add_message(session_id: String, message: Message) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        tool_safe::add_messages(&Imports, &session_id, std::slice::from_ref(&message))
    }

    fn add_messages(
        session_id: String,
        messages: Vec<Message>,
    ) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        tool_safe::add_messages(&Imports, &session_id, &messages)
    }

    fn add_and_get_context(
        session_id: String,
        messages: Vec<Message>,
    ) -> Result<Turn, MemoryError> {
        report_panics();
        tool_safe::add_and_get_context(&Imports, &session_id, &messages)
    }

    fn clear(session_id: String) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        Ok(tool_safe::clear(&Imports, &session_id))
    }
}
