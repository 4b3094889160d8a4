//! The `agent-memory` binary, run as an operator would: on the embedded default store, and
//! against a Redis that is not there.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use agent_memory_tests::RedisServer;
use redis::Commands;
use serde_json::{Value, json};

/// The CLI with its data and cache directories in `home`, so runs never touch the real ones.
fn cli(home: &tempfile::TempDir, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent-memory"))
        .args(args)
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env_remove("AGENT_MEMORY_STORE")
        .env_remove("AGENT_MEMORY_POLICY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running agent-memory");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writing stdin");
    }
    drop(input);
    child.wait_with_output().expect("agent-memory output")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr")
}

/// A failure is exactly one `error:` line on stderr and exit status 1: no panic, no backtrace.
fn assert_one_line_failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("error: "), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    lines[0].to_string()
}

#[test]
fn demo_stores_a_conversation_and_reads_it_back_with_no_server() {
    let home = tempfile::tempdir().unwrap();
    let output = cli(&home, &["demo"], None);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    assert!(out.contains("get:    4 messages"), "{out}");
    assert!(out.contains("ok: stored 4 messages"), "{out}");
    assert!(home.path().join("data/agent-memory/memory.redb").exists());
    // A second run finds the compiled policy in the cache and the store file in place.
    assert!(
        home.path()
            .join("cache/agent-memory/policies")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    assert!(cli(&home, &["demo"], None).status.success());
}

#[test]
fn add_get_ttl_sessions_and_clear_work_across_processes() {
    let home = tempfile::tempdir().unwrap();
    assert!(cli(&home, &["add", "s1", "hello"], None).status.success());
    let added = cli(
        &home,
        &["add", "s1", "--role", "assistant", "hi there"],
        None,
    );
    assert_eq!(stdout(&added).trim(), "stored 1 (session holds 2)");

    let listed = cli(&home, &["get", "s1"], None);
    assert_eq!(
        stdout(&listed),
        "[1] user: hello\n[2] assistant: hi there\n"
    );

    let ttl = cli(&home, &["ttl", "s1"], None);
    assert!(
        stdout(&ttl).starts_with("s1: expires in 59m 5"),
        "{}",
        stdout(&ttl)
    );

    let sessions = cli(&home, &["sessions"], None);
    assert_eq!(stdout(&sessions), "s1\n");

    assert!(cli(&home, &["clear", "s1"], None).status.success());
    assert_eq!(stdout(&cli(&home, &["get", "s1"], None)), "(no messages)\n");
    let line = assert_one_line_failure(&cli(&home, &["ttl", "s1"], None));
    assert!(line.contains("does not exist"), "{line}");
}

#[test]
fn json_messages_from_stdin_keep_every_member_and_get_json_prints_them() {
    let home = tempfile::tempdir().unwrap();
    let messages = json!([
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}
    ]);
    let added = cli(&home, &["add", "t", "--json"], Some(&messages.to_string()));
    assert!(added.status.success(), "{}", stderr(&added));
    let got = cli(&home, &["get", "t", "--json"], None);
    let printed: Value = serde_json::from_str(&stdout(&got)).expect("get --json prints JSON");
    assert_eq!(printed, messages);
}

#[test]
fn doctor_reports_a_clean_store() {
    let home = tempfile::tempdir().unwrap();
    assert!(cli(&home, &["add", "a", "x"], None).status.success());
    let output = cli(&home, &["doctor"], None);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("checked 1 sessions"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let home = tempfile::tempdir().unwrap();
    let line = assert_one_line_failure(&cli(&home, &["get", ""], None));
    assert!(line.contains("session id is empty"), "{line}");
    let line = assert_one_line_failure(&cli(&home, &["add", "s", "--json"], Some("{not json")));
    assert!(line.contains("not JSON"), "{line}");
    let line = assert_one_line_failure(&cli(
        &home,
        &["add", "s", "--json"],
        Some(r#"{"content": "x"}"#),
    ));
    assert!(line.contains("role"), "{line}");
    let line = assert_one_line_failure(&cli(&home, &["--store", "ftp://x", "get", "s"], None));
    assert!(line.contains("unknown scheme"), "{line}");
    let line = assert_one_line_failure(&cli(&home, &["--ttl-seconds", "0", "get", "s"], None));
    assert!(line.contains("ttl_seconds"), "{line}");
    let line =
        assert_one_line_failure(&cli(&home, &["policy", "check", "/nonexistent.wasm"], None));
    assert!(line.contains("/nonexistent.wasm"), "{line}");
}

#[test]
fn redis_that_is_not_running_is_one_clear_line() {
    let home = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = format!("redis://127.0.0.1:{port}");
    let line = assert_one_line_failure(&cli(&home, &["--store", &store, "get", "s"], None));
    assert!(
        line.contains("unavailable") && line.contains("refused"),
        "{line}"
    );
    let line = assert_one_line_failure(&cli(&home, &["--store", &store, "add", "s", "x"], None));
    assert!(line.contains("nothing was stored"), "{line}");
}

#[test]
fn policy_check_accepts_the_default_policy_file() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("default.wasm");
    std::fs::write(&file, agent_memory::DEFAULT_POLICY_WASM).unwrap();
    let output = cli(&home, &["policy", "check", file.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("imports:   agent-memory:policy/"), "{out}");
    assert!(!out.contains("wasi"), "{out}");
    assert!(out.contains("ok: fits the contract"), "{out}");
}

#[test]
fn doctor_finds_every_kind_of_problem_on_redis_and_exits_non_zero() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let mut redis = server.connection();
    let home = tempfile::tempdir().unwrap();
    let store = server.url();
    let run = |args: &[&str]| {
        let mut all = vec!["--store", store.as_str()];
        all.extend_from_slice(args);
        cli(&home, &all, None)
    };
    assert!(run(&["add", "healthy", "hi"]).status.success());
    let _: () = redis.set("ai:memory:foreign", "a string").unwrap();
    for i in 0..60 {
        let _: () = redis
            .rpush(
                "ai:memory:long",
                format!(r#"{{"role": "user", "content": "{i}"}}"#),
            )
            .unwrap();
    }
    let _: () = redis.expire("ai:memory:long", 100).unwrap();
    let _: () = redis
        .rpush("ai:memory:forever", r#"{"role": "user", "content": "x"}"#)
        .unwrap();
    let _: () = redis.rpush("ai:memory:corrupt", "{broken").unwrap();
    let _: () = redis.expire("ai:memory:corrupt", 100).unwrap();

    let output = run(&["doctor"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(
        report.contains("maxmemory-policy is allkeys-lru"),
        "{report}"
    );
    assert!(
        report.contains("session \"foreign\": holds a string, not a list"),
        "{report}"
    );
    assert!(
        report.contains("session \"long\": holds 60 entries, over the window of 50"),
        "{report}"
    );
    assert!(
        report.contains("session \"forever\": has no TTL"),
        "{report}"
    );
    assert!(
        report.contains("session \"corrupt\": 1 entries are not messages: 1 not JSON"),
        "{report}"
    );
    assert!(!report.contains("healthy"), "{report}");
    assert!(report.contains("checked 5 sessions"), "{report}");
    assert!(report.contains(": 5 problems"), "{report}");
}
