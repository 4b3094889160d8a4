//! `agent-memory-bench`: agent-memory against the code it replaces, side by side in one run on
//! one Redis — native Rust with the `redis` crate doing the Python original's commands, and
//! the Python original itself (threads, as it was deployed; LangChain's history too with
//! `--langchain`) — for each workload at each concurrency, plus the embedded store, the policy
//! alone, and the host's peak memory. Prints a table of ops/s, p50, p99 and ratios; `--json`
//! keeps every figure for `scripts/plot-bench`.
//!
//! Its servers are the tests' own fixtures (`agent_memory_tests::RedisServer` and
//! `RedisCluster`), tied to this process so that they die with it however it ends.

mod args;
mod run;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    agent_memory_cli::process::install_panic_hook();
    let args = args::BenchArgs::parse();
    agent_memory_cli::process::init_logging(args.verbose);
    // Its servers are started on this, the main thread, which lives as long as the process:
    // the parent-death signal that ties them to it follows the thread that started them.
    agent_memory_tests::children::tie_to_this_process();
    // Many sessions at once, on every core, as an agent runtime would.
    agent_memory_cli::process::run_to_exit(
        tokio::runtime::Builder::new_multi_thread(),
        run::run(args),
    )
}
