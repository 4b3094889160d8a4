//! Support for agent-memory's integration tests: real `redis-server` processes the tests own,
//! and the Python original run from the project's venv.
//!
//! Tests never touch the machine's Redis on 6379: each [`RedisServer`] listens on a free port
//! of its own, keeps nothing on disk, and can be killed, paused and restarted on the same
//! address. [`RedisCluster`], [`Sentinels`] and [`TestPki`] build real clusters, sentinels and
//! TLS servers out of them, and [`Deployment`] gives the behaviour suite each kind alike.
//!
//! The benchmark (`agent-memory-bench`) runs on the same server fixtures, tied to it
//! ([`children`]), and shares the Prometheus recorder ([`prometheus::install_recorder`]) and the
//! runs of a binary ([`cli`]).

#![deny(missing_docs)]

pub mod agent;
pub mod children;
mod circular;
pub mod cli;
mod cluster;
mod deployment;
mod json_gen;
mod mount;
pub mod prometheus;
mod proxy;
mod python;
mod recorder;
mod sentinel;
mod server;
mod tls;
mod wait;

pub use circular::CircularClusterNode;
pub use cluster::RedisCluster;
pub use deployment::{Deployment, Kind, Raw};
pub use json_gen::{GeneratedMessage, message_text};
pub use mount::Mount;
pub use proxy::{FaultProxy, ProxyMode, SilentServer};
pub use python::{Judgement, PythonOriginal, PythonWorker, workspace_root};
pub use recorder::{TestRecorder, recorder};
pub use sentinel::{MASTER_NAME, Sentinels};
pub use server::{RedisServer, free_port};
pub use tls::TestPki;
pub use wait::{eventually, eventually_blocking};

/// The hostile policy fixture's component (tests/fixtures/hostile-policy).
pub const HOSTILE_POLICY_WASM: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hostile_policy.wasm"));

/// The example agent component (examples/chat-agent): imports `memory`, exports `chat`.
pub const CHAT_AGENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat_agent.wasm"));

/// The example policies in other languages (examples/policies), built by the build script
/// with componentize-py and ComponentizeJS (feature `language-policies`, on by default).
#[cfg(feature = "language-policies")]
pub mod language_policies {
    use std::sync::OnceLock;

    use agent_memory::Policy;

    // The components are read from the build script's output when asked for, not
    // `include_bytes!`-ed: together they are ~80 MB, which every test binary linking this crate
    // (and this crate's metadata) would otherwise carry on disk.

    /// The original's window in Python (examples/policies/window-python).
    pub fn window_python_wasm() -> Vec<u8> {
        built("window_python.wasm")
    }

    /// The original's window in JavaScript (examples/policies/window-js).
    pub fn window_js_wasm() -> Vec<u8> {
        built("window_js.wasm")
    }

    /// The component the build script wrote as `file`.
    fn built(file: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("OUT_DIR")).join(file);
        std::fs::read(&path).unwrap_or_else(|error| {
            panic!(
                "reading {} (written by tests/build.rs): {error}",
                path.display()
            )
        })
    }

    /// Where compiled policies are kept between test processes: an interpreter's component
    /// compiles for tens of seconds, its cached artifact loads in well under one.
    pub fn compile_cache() -> std::path::PathBuf {
        std::path::Path::new(env!("OUT_DIR")).join("compiled-policies")
    }

    /// The component `file` compiled in the shared runtime through [`compile_cache`], read and
    /// loaded once per process.
    fn cached(cell: &'static OnceLock<Policy>, file: &str, origin: &str) -> Policy {
        cell.get_or_init(|| {
            Policy::from_bytes_cached(&built(file), origin, &compile_cache())
                .unwrap_or_else(|error| panic!("{origin} does not load: {error}"))
        })
        .clone()
    }

    /// The Python window (examples/policies/window-python), compiled.
    pub fn window_python() -> Policy {
        static CELL: OnceLock<Policy> = OnceLock::new();
        cached(&CELL, "window_python.wasm", "window-python")
    }

    /// The window with e-mail addresses and secrets redacted before they are stored
    /// (examples/policies/redact-python), compiled.
    pub fn redact_python() -> Policy {
        static CELL: OnceLock<Policy> = OnceLock::new();
        cached(&CELL, "redact_python.wasm", "redact-python")
    }

    /// A Python policy that misbehaves on request (examples/policies/hostile-python),
    /// compiled.
    pub fn hostile_python() -> Policy {
        static CELL: OnceLock<Policy> = OnceLock::new();
        cached(&CELL, "hostile_python.wasm", "hostile-python")
    }

    /// The JavaScript window (examples/policies/window-js), compiled.
    pub fn window_js() -> Policy {
        static CELL: OnceLock<Policy> = OnceLock::new();
        cached(&CELL, "window_js.wasm", "window-js")
    }

    /// A JavaScript policy that misbehaves on request (examples/policies/hostile-js), compiled.
    pub fn hostile_js() -> Policy {
        static CELL: OnceLock<Policy> = OnceLock::new();
        cached(&CELL, "hostile_js.wasm", "hostile-js")
    }
}

/// The session ids that make the hostile policy misbehave, one per way.
pub use agent_memory_hostile_policy::BEHAVIOURS as HOSTILE_BEHAVIOURS;

/// The report of a write that must have been stored; panics with the store error otherwise.
pub fn expect_stored(outcome: agent_memory::WriteOutcome) -> agent_memory::Stored {
    match outcome {
        agent_memory::WriteOutcome::Stored(stored) => stored,
        agent_memory::WriteOutcome::Failed(error) => panic!("write failed: {error}"),
    }
}

/// The text of each message of `context` (`<not text>` for other content).
pub fn texts(context: &agent_memory::Context) -> Vec<String> {
    context
        .messages
        .iter()
        .map(|message| message.text().unwrap_or("<not text>").to_string())
        .collect()
}

/// Messages of every shape the original's users store: unicode and control characters, tool
/// calls and results, content parts, members in another order and of our own, big and small
/// numbers.
pub fn tricky_messages() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({"role": "system", "content": "Rules: be brief."}),
        serde_json::json!({"role": "user", "content": "héllo wörld, 日本語, emoji 😀, quote \" backslash \\ tab \t newline \n nul \u{0000} del \u{007f}"}),
        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"paris\"}"}}
        ]}),
        serde_json::json!({"role": "tool", "tool_call_id": "call_1", "name": "lookup", "content": "{\"population\": 2102650}"}),
        serde_json::json!({"role": "user", "content": [
            {"type": "text", "text": "what is in this image?"},
            {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png", "detail": "low"}}
        ]}),
        serde_json::json!({"content": "member order differs", "role": "assistant", "x-unknown": {"nested": [1, 2.5, -3e-7, true, null]}}),
        serde_json::json!({"role": "assistant", "tool_calls": [], "refusal": null}),
        serde_json::json!({"role": "user", "content": "big number", "n": 1234567890123456789u64, "f": 0.1, "e": 1e-7}),
    ]
}
