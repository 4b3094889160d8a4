//! `agent-memory`: the command line for operators and for trying memory out.
//!
//! Every failure is one line on stderr and a non-zero exit status: 1 for a failed command,
//! 2 for a usage error.

mod args;
mod authoring;
mod bench;
mod commands;
mod doctor;
mod interrupt;
mod keys;
mod output;
mod paths;
mod process;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    process::install_panic_hook();
    let args = args::Cli::parse();
    process::init_logging(args.verbose);
    // The benchmark runs many sessions at once, on every core, as an agent runtime would;
    // every other command is one call at a time.
    let mut builder = if matches!(args.command, args::Command::Bench(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(commands::run(args))
    }));
    // A command stopped by a signal may leave work behind (the benchmark's workers, a store
    // call on the blocking pool): it is abandoned, not waited for, so the exit stays prompt.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("error: {}", process::one_line(&error));
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: internal error: {}", process::last_panic());
            ExitCode::FAILURE
        }
    }
}
