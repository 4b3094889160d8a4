//! `agent-memory`: the command line (the library's `main` says what it does).

fn main() -> std::process::ExitCode {
    agent_memory_cli::main()
}
