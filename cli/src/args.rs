//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Conversation memory for AI agents: inspect, edit and check sessions kept by agent-memory
/// (or by the Python original) in Redis or in the embedded store.
#[derive(Debug, Parser)]
#[command(name = "agent-memory", version, propagate_version = true)]
pub struct Cli {
    /// Where sessions live: redis://[user:pass@]host[:port][/db] (rediss:// for TLS),
    /// redis+unix:///socket, redis+sentinel://[user:pass@]s1:port,s2:port/MASTER[/db]
    /// (rediss+sentinel:// for TLS to sentinels and master),
    /// redis+cluster://[user:pass@]h1:port,h2:port (rediss+cluster:// for TLS), file:PATH or
    /// a path with a / or ending in .redb (the embedded store), or memory: (nothing kept).
    /// Anything else is refused with a hint; passwords are never printed. Default: the
    /// embedded store at $XDG_DATA_HOME/agent-memory/memory.redb.
    #[arg(
        long,
        global = true,
        env = "AGENT_MEMORY_STORE",
        value_name = "ADDRESS"
    )]
    pub store: Option<String>,

    /// The policy: `default` (the Python original's window), `tool-safe` (never splits a tool
    /// call from its results, pins the first system message, optional token budget), or the
    /// path of a policy component (.wasm; write `./default` for a file of that name).
    #[arg(
        long,
        global = true,
        env = "AGENT_MEMORY_POLICY",
        value_name = "NAME|FILE",
        default_value = "default"
    )]
    pub policy: String,

    /// A policy setting beyond the window and TTL, as NAME=VALUE; repeatable. The tool-safe
    /// policy reads `max-tokens=N` (an approximate token budget) and `report-evicted=true`.
    #[arg(long = "policy-setting", global = true, value_name = "NAME=VALUE", value_parser = parse_setting)]
    pub policy_settings: Vec<(String, String)>,

    #[command(flatten)]
    pub settings: SettingsArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Show warnings (-v) or debug detail (-vv) on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Certificates for `rediss://` store addresses (PEM files), each also settable from the
/// environment. The server's certificate is always verified.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Trust this CA instead of the public web roots.
    #[arg(long, global = true, env = "AGENT_MEMORY_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate, for servers that require one (with --tls-key).
    #[arg(
        long,
        global = true,
        env = "AGENT_MEMORY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key.
    #[arg(
        long,
        global = true,
        env = "AGENT_MEMORY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The Redis options these give (defaults otherwise).
    pub fn redis_options(&self) -> agent_memory::store::RedisOptions {
        agent_memory::store::RedisOptions {
            tls: agent_memory::store::TlsOptions {
                ca_file: self.tls_ca.clone(),
                cert_file: self.tls_cert.clone(),
                key_file: self.tls_key.clone(),
            },
            ..agent_memory::store::RedisOptions::default()
        }
    }
}

/// The policy settings, each also settable from the environment.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Messages a session keeps (the newest).
    #[arg(
        long,
        global = true,
        env = "AGENT_MEMORY_MAX_MESSAGES",
        default_value_t = 50
    )]
    pub max_messages: u32,

    /// Seconds a session lives after its last write.
    #[arg(
        long = "ttl-seconds",
        global = true,
        env = "AGENT_MEMORY_TTL_SECONDS",
        default_value_t = 3600
    )]
    pub ttl_seconds: u32,

    /// Prefix of session keys.
    #[arg(long, global = true, env = "AGENT_MEMORY_KEY_PREFIX", default_value = agent_memory::settings::DEFAULT_KEY_PREFIX)]
    pub key_prefix: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a short conversation in a session and read it back: the quickest check that
    /// memory works.
    Demo {
        /// The session to use; it is cleared first.
        #[arg(default_value = "demo")]
        session: String,
    },
    /// Append a message to a session.
    Add {
        /// The session.
        session: String,
        /// The message text. Without it (or with --json) a whole JSON message, or a JSON array
        /// of messages, is read from stdin as Python's json.loads reads bytes (UTF-8 with or
        /// without a BOM, UTF-16, UTF-32): the way to store tool calls and other members, each
        /// kept in its place.
        content: Option<String>,
        /// Who speaks.
        #[arg(long, default_value = "user", conflicts_with = "json")]
        role: String,
        /// Read the message(s) as JSON from stdin.
        #[arg(long)]
        json: bool,
    },
    /// Print a session's messages, oldest first.
    Get {
        /// The session.
        session: String,
        /// Print the messages as a JSON array: json.dumps of each, byte for byte as the Python
        /// original writes it, every member in its place. Stored entries that are not messages
        /// (not an object, no string role, a lone UTF-16 surrogate) are left out and noted on
        /// stderr; the original's get_context would return them.
        #[arg(long)]
        json: bool,
    },
    /// Delete a session; with --raw-key, a list under the key prefix that agents cannot name
    /// (as `doctor` reports it).
    Clear {
        /// The session.
        #[arg(required_unless_present = "raw_key")]
        session: Option<String>,
        /// A whole key instead of a session id, with the escapes `doctor` prints (`\xNN` for
        /// a byte, `\u{1b}` for a control character, `\\` for a backslash). Only a list under
        /// the key prefix is deleted; someone else's data is refused.
        #[arg(long, value_name = "KEY", conflicts_with = "session")]
        raw_key: Option<String>,
    },
    /// List the sessions in the store.
    Sessions {
        /// Also show each session's length and time to live.
        #[arg(short, long)]
        long: bool,
    },
    /// Show how long a session has left.
    Ttl {
        /// The session.
        session: String,
    },
    /// Check every session and report each problem: session ids agents cannot name, foreign
    /// or damaged values, entries that are not messages, lists over the window, keys without a
    /// TTL, and a Redis eviction policy that can drop sessions. Exit status 1 on any problem.
    Doctor,
    /// Rebuild a damaged embedded store file: copy every readable session into a new file and
    /// keep the damaged one aside (`<file>.damaged-<time>`).
    Repair,
    /// Copy every session (under --key-prefix) from one store to another: entries byte for
    /// byte, the remaining TTL kept (to the second, rounded up). Each session replaces the
    /// target's of the same name in one transaction, so an interrupted copy run again ends the
    /// same. Progress on stderr.
    Copy {
        /// The store to copy from (any store address).
        #[arg(long, value_name = "ADDRESS")]
        from: String,
        /// The store to copy to (any store address).
        #[arg(long, value_name = "ADDRESS")]
        to: String,
        /// Read everything and report what would be copied; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Work with policy components.
    Policy {
        /// What to do.
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// Policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy as a memory handle does before it takes one: it fits the contract, it
    /// instantiates within the limits, and its self-check (write, read back, write-and-read,
    /// clear, on a store in memory, with the given settings) is consistent.
    Check {
        /// The component file, or a built-in policy's name (`default`, `tool-safe`).
        policy: String,
    },
    /// Write a working policy project (the original's window, with tests that run natively
    /// on a fake store) into a new or empty directory.
    New {
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: PolicyLang,
        /// Where to write it.
        dir: std::path::PathBuf,
    },
    /// Build a policy project (from `policy new`) into a component, with this binary's
    /// contract, then check it as `policy check` does. Rust: cargo (wasm32-unknown-unknown);
    /// Python: componentize-py --stub-wasi; JavaScript: jco componentize --disable all.
    Build {
        /// The project directory.
        dir: std::path::PathBuf,
        /// The component file to write.
        #[arg(short, long, default_value = "policy.wasm")]
        output: std::path::PathBuf,
    },
}

/// A language `policy new` writes a project in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyLang {
    /// Rust, built by cargo for wasm32-unknown-unknown.
    Rust,
    /// Python, built by componentize-py.
    Python,
    /// JavaScript, built by ComponentizeJS (jco).
    Js,
}

impl PolicyLang {
    /// The language's name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Js => "JavaScript",
        }
    }
}

/// `NAME=VALUE`, split at the first `=`.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}
