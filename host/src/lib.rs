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
//! The root holds what nearly every embedder names ([`Memory`], [`Message`], [`Context`],
//! [`WriteOutcome`], [`Settings`], [`Policy`], [`StoreSpec`], the errors); the rest is in its
//! module:
//! - [`memory`]: the handle and its builder; [`BlockingMemory`] for sync callers.
//! - [`message`], [`json`], [`report`]: what goes in and comes out.
//! - [`settings`], [`session`], [`error`]: configuration and its defaults, session ids, errors.
//! - [`policy`]: loading and checking components, the built-in ones, the contract's version;
//!   [`follow`]: swapping a policy file in as it changes; [`runtime`]: the engine, its
//!   instance pool and the warm-instance rules.
//! - [`store`]: the backends (Redis, embedded file, process memory) with Redis semantics;
//!   [`operator`]: what operators do to a store outside any policy (delete a list, copy
//!   sessions).
//! - [`agent`]: memory for agent components; [`wit`]: the contract's generated types.
//! - [`telemetry`]: the metrics (names, descriptions, what each call records) and the spans of
//!   calls and Redis round trips.
//!
//! Inside: `contract` owns the WIT (bindings, conversions, checks of a policy's output, store
//! faults as values or traps, the version); `instances`: one handle's instances of one policy
//! version, warm or fresh; `sandbox`: one call in its limits; `call_state`: what an instance
//! can reach (the host side of the contract); `guard`: what a call may ask of the store;
//! `compile_cache`: compiled policies on disk, bounded. `sandbox` uses `instances`, which uses
//! `policy` and `call_state`; `policy` uses `runtime`, `call_state` and `compile_cache`; every
//! module reaches the generated bindings through `contract`. No two modules import each other
//! (`error` and `store` sit below everything that reports through them; a store error's label
//! is its own `kind()`), except inside `contract`, where the bindings name the `StoreFault`
//! that `contract::faults` defines, as `trappable_error_type` requires.

#![deny(missing_docs)]

pub mod agent;
mod blocking;
mod call_state;
mod compile_cache;
mod contract;
pub mod error;
pub mod follow;
mod guard;
mod instances;
pub mod json;
pub mod memory;
pub mod message;
pub mod operator;
pub mod policy;
pub mod report;
pub mod runtime;
mod sandbox;
pub mod session;
pub mod settings;
pub mod store;
mod swap;
pub mod telemetry;

// The names nearly every embedder writes; the rest are in their modules (`settings::DEFAULT_*`,
// `report::SkippedEntry`, `store::RedisOptions`, ...), so the root stays a table of contents.
pub use blocking::BlockingMemory;
pub use contract::wit;
pub use error::{BuildError, LoadError, MemoryError, PolicyError};
pub use memory::{Memory, MemoryBuilder};
pub use message::Message;
pub use policy::Policy;
pub use report::{Context, Stored, Turn, WriteOutcome};
pub use runtime::{Isolation, PolicyRuntime, RuntimeConfig};
pub use settings::{Limits, Settings};
pub use store::{Store, StoreError, StoreSpec};

/// The README's Rust examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
