//! The benchmark's command line, as clap sees it.

use std::path::PathBuf;

use clap::Parser;

/// agent-memory against the code it replaces, side by side in one run on one Redis: ours (the
/// library and its policy), native Rust with the `redis` crate doing the Python original's
/// commands, and the Python original itself, at each workload and concurrency; plus the
/// embedded store, the policy alone and the host's peak memory.
#[derive(Debug, Parser)]
#[command(name = "agent-memory-bench", version)]
pub struct BenchArgs {
    /// The policy "ours" runs: `default`, `tool-safe`, or the path of a policy component, as
    /// `agent-memory --policy` takes it (compiled once, then cached).
    #[arg(
        long,
        env = "AGENT_MEMORY_POLICY",
        value_name = "NAME|FILE",
        default_value = "default"
    )]
    pub policy: String,
    /// A policy setting beyond the window and TTL, as NAME=VALUE; repeatable.
    #[arg(long = "policy-setting", value_name = "NAME=VALUE", value_parser = parse_setting)]
    pub policy_settings: Vec<(String, String)>,
    /// The Redis to measure on (any Redis address, a cluster's too). Default: a redis-server
    /// of the benchmark's own, on a free port.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Also measure on a Redis Cluster of the benchmark's own (3 masters on free ports, made
    /// with redis-cli), against the single server: ours, native redis-rs's cluster client, and
    /// the Python original with redis-py's RedisCluster.
    #[arg(long)]
    pub cluster: bool,
    /// Concurrent sessions to measure at (each at least 1).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 256], value_parser = parse_concurrency)]
    pub concurrency: Vec<usize>,
    /// Measured seconds per cell (more than 0).
    #[arg(long, default_value_t = 3.0, value_parser = parse_measured_seconds)]
    pub seconds: f64,
    /// Unmeasured seconds before each cell (0 or more).
    #[arg(long, default_value_t = 1.0, value_parser = parse_warmup_seconds)]
    pub warmup: f64,
    /// What to measure: add (append one message), get (read 50), turn (read, append,
    /// append) on Redis, for ours, native and Python, at each --concurrency; embedded (ours on
    /// the embedded store file: add and get at 1 and 16 sessions, whatever --concurrency
    /// says); policy (the policy alone, over a store in memory).
    #[arg(
        long,
        value_delimiter = ',',
        default_values = ["add", "get", "turn", "embedded", "policy"],
        value_parser = ["add", "get", "turn", "embedded", "policy"]
    )]
    pub workloads: Vec<String>,
    /// The Python interpreter (with redis-py) that runs the Python original.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: String,
    /// Leave the Python original out.
    #[arg(long)]
    pub no_python: bool,
    /// Also measure LangChain's RedisChatMessageHistory (when the interpreter has it).
    #[arg(long)]
    pub langchain: bool,
    /// Size of each message, in bytes, roughly (at least 1).
    #[arg(long, default_value_t = 200, value_parser = parse_message_bytes)]
    pub message_bytes: usize,
    /// Write every figure to this JSON file (for scripts/plot-bench).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Record the library's metrics while measuring (`on`: a Prometheus recorder installed,
    /// as an embedder exporting them would run), or not (`off`, the default: no recorder).
    /// scripts/bench-metrics alternates the two to measure what recording costs.
    #[arg(long, value_name = "on|off", default_value = "off", value_parser = ["on", "off"])]
    pub metrics: String,
    /// Show the library's warnings (-v) or debug detail (-vv) on stderr, as `agent-memory -v`
    /// does (`AGENT_MEMORY_LOG` overrides both).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `NAME=VALUE`, split at the first `=`.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// A concurrency of the benchmark: a cell with no session measures nothing.
fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("0 sessions measure nothing: give 1 or more".to_string()),
        Ok(count) => Ok(count),
        Err(error) => Err(format!("{text:?} is not a count: {error}")),
    }
}

/// Measured seconds: a cell measured for no time (or for ever) has no figures.
fn parse_measured_seconds(text: &str) -> Result<f64, String> {
    match seconds(text)? {
        0.0 => Err("0 seconds measure nothing: give more than 0".to_string()),
        seconds => Ok(seconds),
    }
}

/// Warm-up seconds: 0 (none) is fine.
fn parse_warmup_seconds(text: &str) -> Result<f64, String> {
    seconds(text)
}

/// A finite, non-negative number of seconds, at most a day.
fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && (0.0..=86_400.0).contains(&seconds) => Ok(seconds),
        Ok(_) => Err(format!("{text} is not a number of seconds from 0 to 86400")),
        Err(error) => Err(format!("{text:?} is not a number of seconds: {error}")),
    }
}

/// The benchmark's message size: at least a byte, at most 16 MiB (what a Redis value can
/// reasonably carry in a benchmark).
fn parse_message_bytes(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(bytes @ 1..=16_777_216) => Ok(bytes),
        Ok(_) => Err("give a size from 1 to 16777216 bytes".to_string()),
        Err(error) => Err(format!("{text:?} is not a size in bytes: {error}")),
    }
}
