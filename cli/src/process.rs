//! The process's edges: log lines on stderr, panics recorded for `main` to report in one
//! line, an error chain folded into one line.

/// An error chain on one line: `outer: cause: root cause`, newlines folded. A policy refusal
/// the library explained in its own words ends there: wasmtime's account, which the library
/// keeps as the refusal's source for programs, would repeat it in the engine's terms.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for (at, cause) in error.chain().enumerate() {
        if at > 0 {
            line.push_str(": ");
        }
        line.push_str(&cause.to_string());
        if cause
            .downcast_ref::<agent_memory::LoadError>()
            .is_some_and(agent_memory::LoadError::names_its_reason)
        {
            break;
        }
    }
    line.replace('\n', " ")
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
