//! agent-memory: short-term conversation memory for AI agents, kept in Redis, with the memory
//! *policy* running as a sandboxed WebAssembly component.
//!
//! An agent calls [`Memory`]; each call runs the policy component in a wasmtime instance of
//! the handle's own (a warm one, reused within bounds, or a fresh one: [`Isolation`]) whose
//! only capabilities are a narrow list store scoped to the call's session, its settings and a
//! logger. The policy decides *what* to read and write (serialization, the window, TTL,
//! retries); the host decides *whether it may* and *how* the store is reached.
//!
//! ```text
//! agent ─> Memory ─> policy component (memory export) ─> store import ─> guard ─> Redis / file / RAM
//! ```
//!
//! The built-in policy reproduces the Python original byte for byte: key
//! `ai:memory:{session}`, `json.dumps` entries, RPUSH + LTRIM to the newest 50 + EXPIRE 3600 in
//! one MULTI/EXEC, undecodable entries skipped, store faults degrading instead of failing.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use agent_memory::{Memory, Message, StoreSpec};
//!
//! let memory = Memory::builder()
//!     .store(StoreSpec::parse("memory:")?) // or "redis://127.0.0.1:6379", or a file path
//!     .build()?;
//! memory.add_message("chat-42", Message::system("You are terse.")).await?;
//! memory.add_message("chat-42", Message::user("hi")).await?;
//! let context = memory.get_context("chat-42").await?;
//! assert_eq!(context.messages.len(), 2);
//! assert!(context.degraded.is_none());
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # Layout
//! - [`memory`](Memory): the handle and its builder; [`BlockingMemory`] for sync callers.
//! - [`message`](Message), [`json`](Json), [`report`](Context): what goes in and comes out.
//! - [`store`]: the backends (Redis, embedded file, process memory) with Redis semantics.
//! - [`runtime`](PolicyRuntime): the engine, its instance pool and the warm-instance rules;
//!   `policy`: loading and checking components; `instances`: one handle's instances of one
//!   policy version, warm or fresh; `sandbox`: one call in its limits; `call_state`: what an
//!   instance can reach (the host side of the contract); `guard`: what a call may ask of the
//!   store; `compile_cache`: compiled policies on disk, bounded. `sandbox` uses `instances`,
//!   which uses `policy` and `call_state`; `policy` uses `runtime`, `call_state` and
//!   `compile_cache`: no cycle.
//! - [`telemetry`]: the metrics (names, descriptions, what each call records) and the spans of
//!   calls and Redis round trips; `store/redis/traced` makes the round-trip spans.
//! - `settings`, `session`, `error`: configuration, session ids, errors.

#![deny(missing_docs)]

pub mod agent;
mod bindings;
mod blocking;
mod call_state;
mod compile_cache;
mod convert;
mod declared;
mod error;
mod follow;
mod guard;
mod instances;
mod json;
mod memory;
mod message;
mod policy;
mod report;
mod runtime;
mod sandbox;
mod session;
mod settings;
pub mod store;
mod swap;
pub mod telemetry;

pub use bindings::public as wit;
pub use blocking::BlockingMemory;
pub use declared::{SettingKind, SettingSpec};
pub use error::{
    BuildError, LoadError, MemoryError, PolicyError, SelfCheckFailure, SelfCheckProblem,
};
pub use follow::{FollowStatus, PolicyFollower, UNREADABLE_AFTER};
pub use json::{Json, JsonError, NotStandardJson};
pub use memory::{DEFAULT_HANDLE_NAME, MAX_HANDLE_NAME_BYTES, Memory, MemoryBuilder};
pub use message::{EntryProblem, MemberValue, Message, MessageJsonError};
pub use policy::{
    CONTRACT_VERSION, CONTRACT_WIT, DEFAULT_POLICY_WASM, MAX_POLICY_BYTES, Policy,
    TOOL_SAFE_POLICY_WASM, read_policy_file,
};
pub use report::{
    Context, InvalidMessage, SkippedEntry, Stored, Turn, WindowLimit, WindowRefusal, WriteOutcome,
};
pub use runtime::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CORE_INSTANCES_PER_COMPONENT, DEFAULT_MAX_IDLE_INSTANCES,
    DEFAULT_MAX_MEMORIES_PER_COMPONENT, DEFAULT_MAX_TABLE_ELEMENTS,
    DEFAULT_MAX_TABLES_PER_COMPONENT, DEFAULT_REUSE_LIMIT, DEFAULT_REUSE_MEMORY_GROWTH, Isolation,
    MAX_CONCURRENT_CALLS, MAX_POLICY_MEMORY_BYTES, PolicyRuntime, RuntimeConfig,
};
pub use session::{MAX_SESSION_ID_BYTES, SessionId, SessionIdError};
pub use settings::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_FUEL_BASE, DEFAULT_FUEL_PER_BYTE, DEFAULT_KEY_PREFIX,
    DEFAULT_MAX_BATCH_MESSAGES, DEFAULT_MAX_ENTRIES_READ, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_MESSAGES, DEFAULT_MAX_OPS_PER_TRANSACTION, DEFAULT_MAX_READ_BYTES,
    DEFAULT_MAX_STORE_CALLS, DEFAULT_MAX_TRANSACTION_BYTES, DEFAULT_MEMORY_BYTES,
    DEFAULT_TTL_SECONDS, Limits, Settings, SettingsError,
};
pub use store::{
    KeyKind, OpenError, RedisOptions, RepairReport, Store, StoreError, StoreSpec, TlsOptions, Ttl,
    WaitForReplicas, policy_evicts_sessions,
};

/// The README's Rust examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
