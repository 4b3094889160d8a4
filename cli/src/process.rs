//! The process's edges, the same for `agent-memory` and `agent-memory-bench`: log lines on
//! stderr, panics recorded for `main` to report in one line, an error chain folded into one
//! line, and a command run to its exit status.

use std::process::ExitCode;

/// An error chain on one line (`outer: cause: root cause`, newlines folded), as the library
/// writes one ([`agent_memory::error::Chain`]: a policy refusal it explained in its own words
/// ends the line).
pub fn one_line(error: &anyhow::Error) -> String {
    let error: &(dyn std::error::Error + 'static) = error.as_ref();
    agent_memory::error::Chain(error)
        .to_string()
        .replace('\n', " ")
}

/// Logs go to stderr; `-v` shows warnings from the policy and store, `-vv` debug detail.
/// `AGENT_MEMORY_LOG` (an env-filter such as `agent_memory=debug`) overrides both.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENT_MEMORY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a terminal: in a log file or a pipe the escape codes are noise.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

/// The last panic's message and place, kept by the hook for `main` to report.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Record panics instead of printing them. The library contains panics of its dependencies
/// (redb on a damaged file) and turns them into typed errors, so a panic is only worth
/// reporting when it reaches `main`, which prints [`last_panic`] in one line.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|location| format!(" at {}:{}", location.file(), location.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|text| (*text).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let report = format!("{}{location}", message.replace('\n', " "));
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(report);
        }
    }));
}

/// The message of the last panic, if any.
pub fn last_panic() -> String {
    LAST_PANIC
        .lock()
        .ok()
        .and_then(|last| last.clone())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Run `command` on a runtime from `builder` and turn its outcome into the exit status: its own
/// status, or one `error:` line on stderr and 1 for an error or a panic (reported by the hook
/// [`install_panic_hook`] installs).
pub fn run_to_exit(
    mut builder: tokio::runtime::Builder,
    command: impl Future<Output = anyhow::Result<ExitCode>>,
) -> ExitCode {
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(command)));
    // A command stopped by a signal may leave work behind (the benchmark's workers, a store
    // call on the blocking pool): it is abandoned, not waited for, so the exit stays prompt.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: internal error: {}", last_panic());
            ExitCode::FAILURE
        }
    }
}
