//! The CLI's parts: argument definitions, commands, output formatting, default paths.

pub mod args;
pub mod commands;
pub mod output;
pub mod paths;

/// An error chain on one line: `outer: cause: root cause`, newlines folded.
pub fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

/// A panic is a bug; report it in one line, not a backtrace.
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
        eprintln!(
            "error: internal error{location}: {}",
            message.replace('\n', " ")
        );
    }));
}
