//! The `agent-memory` binary, run as an operator would: on the embedded default store, and
//! against a Redis that is not there.

use agent_memory_tests::RedisServer;
use agent_memory_tests::cli::{Cli, Stdin, assert_one_line_failure, stderr, stdout};
use redis::Commands;
use serde_json::{Value, json};

/// The binary under test, with a home of its own.
fn agent_memory() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory"))
}

#[test]
fn demo_stores_a_conversation_and_reads_it_back_with_no_server() {
    let home = agent_memory();
    let output = home.run(&["demo"]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    assert!(out.contains("get:    4 messages"), "{out}");
    assert!(out.contains("ok: stored 4 messages"), "{out}");
    assert!(home.home().join("data/agent-memory/memory.redb").exists());
    // A second run finds the compiled policy in the cache and the store file in place.
    assert!(
        home.home()
            .join("cache/agent-memory/policies")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    assert!(home.run(&["demo"]).status.success());
}

#[test]
fn add_get_ttl_sessions_and_clear_work_across_processes() {
    let home = agent_memory();
    assert!(home.run(&["add", "s1", "hello"]).status.success());
    let added = home.run(&["add", "s1", "--role", "assistant", "hi there"]);
    assert_eq!(stdout(&added).trim(), "stored 1 (session holds 2)");

    let listed = home.run(&["get", "s1"]);
    assert_eq!(
        stdout(&listed),
        "[1] user: hello\n[2] assistant: hi there\n"
    );

    let ttl = home.run(&["ttl", "s1"]);
    assert!(
        stdout(&ttl).starts_with("s1: expires in 59m 5"),
        "{}",
        stdout(&ttl)
    );

    let sessions = home.run(&["sessions"]);
    assert_eq!(stdout(&sessions), "s1\n");

    assert!(home.run(&["clear", "s1"]).status.success());
    assert_eq!(stdout(&home.run(&["get", "s1"])), "(no messages)\n");
    let line = assert_one_line_failure(&home.run(&["ttl", "s1"]));
    assert!(line.contains("does not exist"), "{line}");
}

#[test]
fn processes_sharing_the_embedded_file_wait_their_turn_and_every_write_is_stored() {
    let home = agent_memory();
    // Six writers at once on the one file: each waits for the one before to close it.
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..6)
            .map(|i| {
                let home = &home;
                scope.spawn(move || home.run(&["add", "shared", &format!("writer {i}")]))
            })
            .collect();
        writers
            .into_iter()
            .map(|writer| writer.join().unwrap())
            .collect()
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", stderr(output));
    }
    let listed = stdout(&home.run(&["get", "shared"]));
    for i in 0..6 {
        assert!(listed.contains(&format!("user: writer {i}\n")), "{listed}");
    }
    assert_eq!(listed.lines().count(), 6, "{listed}");
}

#[test]
fn json_messages_from_stdin_keep_every_member_and_get_json_prints_them() {
    let home = agent_memory();
    let messages = json!([
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}
    ]);
    let added = home.run_with(&["add", "t", "--json"], Stdin::Text(&messages.to_string()));
    assert!(added.status.success(), "{}", stderr(&added));
    let got = home.run(&["get", "t", "--json"]);
    let printed: Value = serde_json::from_str(&stdout(&got)).expect("get --json prints JSON");
    assert_eq!(printed, messages);
    // Exactly what the Python original's `json.dumps(get_context(...))` prints: every member
    // in its place (OpenAI's tool result keeps `content` last).
    assert_eq!(
        stdout(&got),
        "[{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \
         \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}]}, {\"role\": \"tool\", \
         \"tool_call_id\": \"c1\", \"content\": \"42\"}]\n"
    );
}

#[test]
fn add_json_reads_stdin_in_every_encoding_stored_entries_are_read_in() {
    let home = agent_memory();
    let text = r#"{"content": "h\u00e9 \ud83d\ude00", "role": "user"}"#;
    let raw = "{\"content\": \"hé 😀\", \"role\": \"user\"}";
    let utf16le: Vec<u8> = std::iter::once(0xfeffu16)
        .chain(raw.encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    let utf16be: Vec<u8> = raw.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let utf32le: Vec<u8> = raw
        .chars()
        .flat_map(|ch| (ch as u32).to_le_bytes())
        .collect();
    let bom: Vec<u8> = b"\xef\xbb\xbf"
        .iter()
        .chain(raw.as_bytes())
        .copied()
        .collect();
    for (name, bytes) in [
        ("UTF-8 with a BOM", bom),
        ("UTF-16LE with a BOM", utf16le),
        ("UTF-16BE", utf16be),
        ("UTF-32LE", utf32le),
    ] {
        assert!(home.run(&["clear", "e"]).status.success());
        let added = home.run_with(&["add", "e", "--json"], Stdin::Bytes(&bytes));
        assert!(added.status.success(), "{name}: {}", stderr(&added));
        let got = home.run(&["get", "e", "--json"]);
        assert_eq!(stdout(&got), format!("[{text}]\n"), "{name}");
    }
}

#[test]
fn doctor_reports_a_clean_store() {
    let home = agent_memory();
    assert!(home.run(&["add", "a", "x"]).status.success());
    let output = home.run(&["doctor"]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("checked 1 session in embedded file"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let home = agent_memory();
    let line = assert_one_line_failure(&home.run(&["get", ""]));
    assert!(line.contains("session id is empty"), "{line}");
    let line =
        assert_one_line_failure(&home.run_with(&["add", "s", "--json"], Stdin::Text("{not json")));
    assert!(line.contains("not JSON"), "{line}");
    let line = assert_one_line_failure(
        &home.run_with(&["add", "s", "--json"], Stdin::Text(r#"{"content": "x"}"#)),
    );
    assert!(line.contains("role"), "{line}");
    let line = assert_one_line_failure(&home.run(&["--store", "ftp://x", "get", "s"]));
    assert!(line.contains("unknown scheme"), "{line}");
    let line = assert_one_line_failure(&home.run(&["--ttl-seconds", "0", "get", "s"]));
    assert!(line.contains("ttl_seconds"), "{line}");
    let line = assert_one_line_failure(&home.run(&["policy", "check", "/nonexistent.wasm"]));
    assert!(line.contains("/nonexistent.wasm"), "{line}");
}

#[test]
fn redis_that_is_not_running_is_one_clear_line() {
    let home = agent_memory();
    let port = agent_memory_tests::free_port();
    let store = format!("redis://127.0.0.1:{port}");
    let line = assert_one_line_failure(&home.run(&["--store", &store, "get", "s"]));
    assert!(
        line.contains("unavailable") && line.contains("refused"),
        "{line}"
    );
    // Said once, on stderr only.
    let line = assert_one_line_failure(&home.run(&["--store", &store, "add", "s", "x"]));
    assert!(line.contains("nothing was stored"), "{line}");
    assert_eq!(line.matches("nothing was stored").count(), 1, "{line}");
}

#[test]
fn policy_check_accepts_the_default_policy_file() {
    let home = agent_memory();
    let file = home.home().join("default.wasm");
    std::fs::write(&file, agent_memory::policy::DEFAULT_POLICY_WASM).unwrap();
    let output = home.run(&["policy", "check", file.to_str().unwrap()]);
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
    let home = agent_memory();
    let store = server.url();
    let run = |args: &[&str]| {
        let mut all = vec!["--store", store.as_str()];
        all.extend_from_slice(args);
        home.run(&all)
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

#[test]
fn repair_of_a_healthy_file_says_nothing_was_lost() {
    let home = agent_memory();
    let file = home.home().join("healthy.redb");
    let store = file.to_str().unwrap();
    for session in ["a", "b", "c"] {
        assert!(
            home.run(&["--store", store, "add", session, "hi"])
                .status
                .success()
        );
    }
    let output = home.run(&["--store", store, "repair"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(
        report.starts_with(&format!(
            "rebuilt {store}: kept all 3 sessions, every one read without damage"
        )),
        "{report}"
    );
    assert!(!report.contains("repaired"), "{report}");
    let listed = home.run(&["--store", store, "get", "b"]);
    assert_eq!(stdout(&listed), "[1] user: hi\n");
}
