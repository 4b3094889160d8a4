//! `agent-memory`, the command line for operators and for trying memory out: [`main`] is the
//! whole binary (`src/main.rs` calls it).
//!
//! Every failure is one line on stderr and a non-zero exit status: 1 for a failed command,
//! 2 for a usage error.
//!
//! The library also holds what the benchmark (`agent-memory-bench`, in `bench/`) does the
//! same way as the CLI, so that it is written once: catching SIGINT and SIGTERM
//! ([`interrupt`]), loading a `--policy` ([`load_policy`]) and the process's edges
//! ([`process`]).

#![deny(missing_docs)]

mod args;
mod authoring;
mod commands;
mod doctor;
pub mod interrupt;
mod keys;
mod output;
mod paths;
pub mod process;

use std::process::ExitCode;

use clap::Parser;

pub use commands::load_policy;

/// The `agent-memory` binary: parse the command line, run the command, exit with its status.
pub fn main() -> ExitCode {
    process::install_panic_hook();
    let args = args::Cli::parse();
    process::init_logging(args.verbose);
    // One call at a time: no command needs more than one thread.
    process::run_to_exit(
        tokio::runtime::Builder::new_current_thread(),
        commands::run(args),
    )
}
