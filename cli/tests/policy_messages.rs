//! What an operator reads when a policy is refused or misbehaves, through the CLI: which step a
//! refused component misses, a panic's own message instead of a wasm backtrace, a flood of log
//! lines cut to a bounded number, and no terminal colours in a log that is not a terminal.

use agent_memory_tests::HOSTILE_POLICY_WASM;
use agent_memory_tests::cli::{Cli, assert_one_line_failure, stderr};

fn agent_memory() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory"))
}

/// `bytes` written as a policy file in the CLI's home.
fn policy_file(cli: &Cli, name: &str, bytes: &[u8]) -> String {
    let path = cli.home().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn a_policy_panic_is_one_line_with_its_message_and_the_backtrace_only_at_v() {
    let cli = agent_memory();
    let hostile = policy_file(&cli, "hostile.wasm", HOSTILE_POLICY_WASM);
    let line = assert_one_line_failure(&cli.run(&["--policy", &hostile, "get", "trap"]));
    assert!(
        line.contains("wasm `unreachable` instruction executed")
            && line.contains("on a panic in the policy: hostile policy: trap on purpose"),
        "{line}"
    );
    assert!(line.len() < 400, "{line}");
    let verbose = cli.run(&["-vv", "--policy", &hostile, "get", "trap"]);
    assert!(
        stderr(&verbose).contains("wasm backtrace"),
        "{}",
        stderr(&verbose)
    );
}

#[test]
fn a_policy_that_logs_without_end_is_cut_to_a_bounded_number_of_lines() {
    let cli = agent_memory();
    let hostile = policy_file(&cli, "hostile.wasm", HOSTILE_POLICY_WASM);
    let output = cli.run(&["-v", "--policy", &hostile, "get", "chatter"]);
    let err = stderr(&output);
    let chatter = err.lines().filter(|line| line.contains("chatter")).count();
    assert!(chatter <= 70, "{chatter} lines of chatter");
    assert!(
        err.contains("more lines") && err.contains("dropped (at most 64 lines"),
        "{err}"
    );
    assert!(
        err.lines()
            .last()
            .is_some_and(|line| line.starts_with("error: ")),
        "{err}"
    );
}

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let cli = agent_memory();
    let hostile = policy_file(&cli, "hostile.wasm", HOSTILE_POLICY_WASM);
    let output = cli.run(&["-v", "--policy", &hostile, "get", "chatter"]);
    assert!(!stderr(&output).contains('\u{1b}'), "{}", stderr(&output));
}

#[test]
fn a_refused_component_says_which_step_it_misses() {
    let cli = agent_memory();
    let core = policy_file(&cli, "core.wasm", &wat::parse_str("(module)").unwrap());
    let line = assert_one_line_failure(&cli.run(&["policy", "check", &core]));
    assert!(line.contains("wasm-tools component new"), "{line}");
    let wasi = wat::parse_str(
        r#"(component
             (import "wasi:cli/environment@0.2.0" (instance
               (export "get-arguments" (func (result (list string))))))
             (import "wasi:io/streams@0.2.0" (instance))
           )"#,
    )
    .unwrap();
    let wasi = policy_file(&cli, "wasi.wasm", &wasi);
    let line = assert_one_line_failure(&cli.run(&["policy", "check", &wasi]));
    assert!(
        line.contains("imports WASI (wasi:cli/environment@0.2.0, wasi:io/streams@0.2.0)")
            && !line.contains("matching implementation"),
        "{line}"
    );
    let old = wat::parse_str(
        r#"(component
             (import "agent-memory:policy/store@0.2.0" (instance)))"#,
    )
    .unwrap();
    let old = policy_file(&cli, "old.wasm", &old);
    let line = assert_one_line_failure(&cli.run(&["policy", "check", &old]));
    assert!(
        line.contains("built for contract 0.2.0; this host speaks 0.3.0"),
        "{line}"
    );
}
