//! The errors of the public API, one enum per layer.
//!
//! Store faults are not errors here: reads degrade ([`crate::Context::degraded`]) and writes
//! report them ([`crate::WriteOutcome::Failed`]), as the Python original never let memory
//! trouble take the agent down. What remains are the caller's mistakes and a policy that
//! misbehaved.

use crate::report::InvalidMessage;
use crate::session::SessionIdError;
use crate::settings::SettingsError;
use crate::store::OpenError;

/// Why a memory call failed. Nothing was written when this is returned, except as noted.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The session id was refused.
    #[error("invalid session id")]
    InvalidSession(#[from] SessionIdError),
    /// The policy refused the session id (a policy may restrict ids beyond the host's rules).
    #[error("session id refused by the policy: {0}")]
    SessionRefused(String),
    /// A message was refused: by the host before the policy ran (too large), or by the
    /// policy (invalid JSON, repeated members, too deep).
    #[error("message {index} refused: {reason}")]
    InvalidMessage {
        /// Its position in the request.
        index: usize,
        /// Why.
        reason: InvalidMessage,
    },
    /// The policy cannot store message `index` under its window rules (the tool-safe policy:
    /// a tool result whose call is gone, a message over the token budget, a call whose
    /// results could never fit beside it). Nothing was written; the session is unchanged.
    #[error("message {index} does not fit the window: {reason}")]
    DoesNotFit {
        /// Its position in the request.
        index: usize,
        /// Why.
        reason: crate::report::WindowRefusal,
    },
    /// A write request held no message.
    #[error("no messages to add")]
    NoMessages,
    /// A write request carries more than one call may: too many messages, or too many bytes
    /// (see [`crate::Limits::max_batch_messages`] and
    /// [`crate::Limits::max_transaction_bytes`]). Refused before the policy runs.
    #[error("the request carries {actual} {what}; one call may carry {limit}")]
    RequestTooLarge {
        /// What was counted: "messages" or "bytes".
        what: String,
        /// How many.
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// The policy component failed: it trapped, ran over a limit, or returned something
    /// invalid. The call's instance is discarded; the next call gets a fresh one. A write may
    /// have been applied if the policy failed after its store call.
    #[error("policy failed")]
    Policy(#[from] PolicyError),
    /// A blocking call was made on a current-thread async runtime, where blocking its one
    /// thread would stall it (see [`crate::BlockingMemory`]).
    #[error(
        "blocking memory call made on a current-thread async runtime; use the async `Memory` \
         there"
    )]
    BlockingInAsync,
}

/// How a policy component failed during a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// It used more compute than its budget ([`crate::Limits::fuel_base`] plus
    /// [`crate::Limits::fuel_per_byte`] for each byte it was handed).
    #[error("used more than its compute budget of {fuel} fuel")]
    ComputeBudgetExceeded {
        /// The budget it ran through: everything granted to the call.
        fuel: u64,
    },
    /// The whole call took longer than [`crate::Limits::call_timeout`].
    #[error("call took longer than {0:?}")]
    CallTimeout(std::time::Duration),
    /// The policy never ran: every call slot of its runtime
    /// ([`crate::RuntimeConfig::max_concurrent_calls`]) stayed taken for the whole
    /// [`crate::Limits::call_timeout`]. The runtime is saturated, not the policy slow.
    #[error(
        "no call slot was free within {waited:?}: all {max_concurrent_calls} of the runtime's \
         call slots were taken (RuntimeConfig::max_concurrent_calls)"
    )]
    NoCallSlot {
        /// How long the call waited: its whole timeout.
        waited: std::time::Duration,
        /// The runtime's number of slots.
        max_concurrent_calls: u32,
    },
    /// It trapped (a panic, an out-of-bounds access, memory over the limit, ...). The full
    /// wasm backtrace is logged at debug level.
    #[error("trapped ({reason}){}", panic_words(.panic))]
    Trapped {
        /// What stopped it: the trap (such as "wasm `unreachable` instruction executed", what a
        /// Rust panic becomes), or the limit it met.
        reason: String,
        /// wasmtime's kind of trap (`UnreachableCodeReached` for a Rust panic,
        /// `MemoryOutOfBounds`, ...), kept so that callers can tell them apart without reading
        /// `reason`; `None` when a limit or a host error stopped it rather than a trap.
        trap: Option<wasmtime::Trap>,
        /// What the policy said as it panicked, when it logged it: its `error` line starting
        /// with `panicked` (`panicked at place: message`), as the built-in policies' panic hook
        /// writes it.
        panic: Option<String>,
    },
    /// It could not be instantiated.
    #[error("could not be instantiated: {reason}")]
    Instantiate {
        /// wasmtime's account, its chain of causes on one line.
        reason: String,
        /// wasmtime's kind of trap when the component's start code trapped; `None` when
        /// something else failed (the pool had no slot, a limit).
        trap: Option<wasmtime::Trap>,
    },
    /// It returned something the contract does not allow.
    #[error("returned an invalid result: {0}")]
    InvalidOutput(String),
}

/// Why a policy component could not be loaded. The previous policy, if any, keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path is not a regular file (a directory, a FIFO, a device).
    #[error("{0} is not a regular file")]
    NotAFile(std::path::PathBuf),
    /// The file is larger than any policy should be.
    #[error("{path} is larger than {limit} bytes: not a policy component")]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
        /// The largest size accepted.
        limit: u64,
    },
    /// The bytes are not a valid component for this engine.
    #[error("not a valid WebAssembly component{}", explained(.reason))]
    Compile {
        /// Why, in terms of the step that was missed (not WebAssembly at all, a core module
        /// never made a component), when the host can say; otherwise wasmtime's error says.
        reason: Option<String>,
        /// wasmtime's error, when it reported one.
        #[source]
        engine: Option<EngineError>,
    },
    /// The component imports something the host does not provide (WASI, another contract
    /// version, ...) or does not export the `memory` interface with the right types.
    #[error(
        "component does not fit the agent-memory:policy@{version} world{}",
        explained(.reason),
        version = crate::contract::CONTRACT_VERSION
    )]
    Contract {
        /// What does not fit, named, when the host can say (WASI imports, another contract
        /// version, a foreign import, the settings it declares); otherwise wasmtime's error
        /// says.
        reason: Option<String>,
        /// wasmtime's error, when it reported one (the link that failed).
        #[source]
        engine: Option<EngineError>,
    },
    /// The component is valid but needs more of something than this runtime's sandbox gives
    /// one policy instance (core instances, tables, table entries, memories, memory): raise
    /// the named [`crate::RuntimeConfig`] field, or make the component smaller.
    #[error(
        "the component needs more {what} than this runtime's sandbox gives one policy \
         (raise RuntimeConfig::{setting}): {detail}"
    )]
    ExceedsSandbox {
        /// What it needs more of.
        what: &'static str,
        /// The [`crate::RuntimeConfig`] field that raises the limit.
        setting: &'static str,
        /// wasmtime's own account of the need and the limit.
        detail: String,
    },
    /// The component failed its trial instantiation (its start code trapped or ran out of
    /// budget, or an export could not be resolved).
    #[error("component failed its trial instantiation")]
    Trial(#[source] EngineError),
    /// The component loaded, but failed the self-check of the memory contract a handle runs
    /// before it takes a new policy (write, read back, clear, against a store in memory).
    #[error("component failed the memory contract's self-check: {0}")]
    SelfCheck(SelfCheckFailure),
    /// The component does not read the settings the handle has (an extra setting it does not
    /// declare, or a value it does not accept).
    #[error("component cannot serve this handle's settings")]
    Settings(#[source] SettingsError),
    /// The embedder's engine lacks something a policy needs.
    #[error("the engine cannot run policies: {0}")]
    Engine(String),
}

/// Where and how a policy failed the self-check of the memory contract
/// ([`LoadError::SelfCheck`]).
#[derive(Debug, thiserror::Error)]
#[error("{step}: {problem}")]
pub struct SelfCheckFailure {
    /// The step that failed: the contract call, and when (`add-messages`, `get-context after
    /// a write`, `add-and-get-context`, `clear`, `get-context after clear`).
    pub step: &'static str,
    /// What went wrong there.
    pub problem: SelfCheckProblem,
}

/// What went wrong at a step of the self-check. Each case's text includes its error's, and the
/// error is the case's value (not a `source`), so a report that prints the chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum SelfCheckProblem {
    /// The policy failed the call (it trapped, ran over a limit, returned something invalid).
    #[error("the policy failed: {0}")]
    Failed(PolicyError),
    /// The policy refused a valid request.
    #[error("refused a valid request: {0}")]
    Refused(MemoryError),
    /// The policy reported a store failure from a store in memory, which cannot fail.
    #[error("reported a failure of a store in memory, which cannot fail: {0}")]
    StoreFailed(crate::store::StoreError),
    /// The policy's answers disagree with each other or with what was written.
    #[error("{0}")]
    Inconsistent(String),
}

/// Why a memory handle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// The policy could not be loaded.
    #[error(transparent)]
    Policy(#[from] LoadError),
    /// Settings or limits were refused.
    #[error("invalid settings")]
    Settings(#[from] SettingsError),
    /// The handle's name is not 1 to 64 characters of `A-Z a-z 0-9 _ - .`
    /// ([`crate::MemoryBuilder::name`]).
    #[error(
        "invalid handle name {0:?}: a name is 1 to {max} characters of A-Z a-z 0-9 _ - .",
        max = crate::settings::MAX_HANDLE_NAME_BYTES
    )]
    InvalidName(String),
    /// The blocking wrapper could not start its runtime.
    #[error("cannot start the blocking runtime: {0}")]
    Runtime(String),
}

fn panic_words(panic: &Option<String>) -> String {
    match panic {
        // The line reads `panicked at place: message`, or `panicked: message`.
        Some(words) => {
            let rest = words.strip_prefix("panicked").unwrap_or(words);
            format!(" on a panic in the policy{rest}")
        }
        None => String::new(),
    }
}

impl LoadError {
    /// Whether the host named why the component was refused in its own words (a core module
    /// never made a component, WASI imports, another contract version...), so that wasmtime's
    /// account, kept as the [`source`](std::error::Error::source), only repeats it in the
    /// engine's terms: a one-line message for people can stop here.
    pub fn names_its_reason(&self) -> bool {
        matches!(
            self,
            Self::Compile {
                reason: Some(_),
                ..
            } | Self::Contract {
                reason: Some(_),
                ..
            }
        )
    }
}

/// wasmtime's own error, kept whole as the source of a [`LoadError`]: its chain of causes as
/// wasmtime reported them, and the value inside for callers that look for one
/// ([`EngineError::trap`], or `get_ref().downcast_ref()`).
#[derive(Debug)]
pub struct EngineError(wasmtime::Error);

impl EngineError {
    /// wasmtime's error.
    pub fn get_ref(&self) -> &wasmtime::Error {
        &self.0
    }

    /// wasmtime's kind of trap, when the error is one (start code that trapped).
    pub fn trap(&self) -> Option<wasmtime::Trap> {
        self.0.downcast_ref::<wasmtime::Trap>().copied()
    }
}

impl From<wasmtime::Error> for EngineError {
    fn from(error: wasmtime::Error) -> Self {
        Self(error)
    }
}

/// The whole chain on one line, said once: `source()` is `None`, so a caller that walks
/// sources does not print wasmtime's causes twice.
impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for EngineError {}

/// `: reason` after a [`LoadError`]'s words, when the host has a reason of its own; otherwise
/// nothing, and the engine error (the source) says why.
fn explained(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|reason| format!(": {reason}"))
        .unwrap_or_default()
}

/// An error and its causes on one line, `outer: cause: root cause`: errors here keep their
/// causes as [`source`](std::error::Error::source)s, and a line for people (a log line, a CLI's
/// `error:`) should show them all. A [`LoadError`] that
/// [names its reason](LoadError::names_its_reason) ends the line: its source, wasmtime's
/// account, would only repeat it in the engine's terms.
///
/// A cause whose words its error already ends with is not said twice.
///
/// ```
/// # use agent_memory::error::Chain;
/// #[derive(Debug)]
/// struct Wrapped(std::io::Error);
/// impl std::fmt::Display for Wrapped {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "writing the file: {}", self.0)
///     }
/// }
/// impl std::error::Error for Wrapped {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let error = Wrapped(std::io::Error::other("disk full"));
/// assert_eq!(Chain(&error).to_string(), "writing the file: disk full");
/// ```
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut line = String::new();
        let mut cause = Some(self.0);
        while let Some(error) = cause {
            let text = error.to_string();
            // Many errors say their source's words in their own (redis-rs's I/O errors, for
            // one): said once.
            if !line.ends_with(&text) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
            if error
                .downcast_ref::<LoadError>()
                .is_some_and(LoadError::names_its_reason)
            {
                break;
            }
            cause = error.source();
        }
        f.write_str(&line)
    }
}
