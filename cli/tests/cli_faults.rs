//! The `agent-memory` binary when input or the store is bad: mistyped addresses, endless or
//! hostile input, policy paths that are not files, a damaged store file, stored text that
//! tries to drive the terminal, and a Redis that is full or keeps its CONFIG to itself. Every
//! failure is one line and a non-zero exit; operator commands keep working where they can.

use agent_memory_tests::RedisServer;
use agent_memory_tests::cli::{Cli, Stdin, assert_one_line_failure, stderr, stdout};
use redis::Commands;

fn agent_memory() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory"))
}

#[test]
fn mistyped_store_addresses_are_refused_with_the_address_meant_and_no_file_appears() {
    let cli = agent_memory();
    let cases = [
        ("localhost:6379", "did you mean redis://localhost:6379?"),
        ("127.0.0.1:6379", "did you mean redis://127.0.0.1:6379?"),
        ("redis:/host:6379", "did you mean redis://host:6379?"),
        ("memory", "did you mean memory:?"),
        ("sessions", "not a store address"),
    ];
    for (address, hint) in cases {
        let line = assert_one_line_failure(&cli.run(&["--store", address, "add", "s", "x"]));
        assert!(line.contains(hint), "{address}: {line}");
    }
    let left: Vec<_> = std::fs::read_dir(cli.home()).unwrap().collect();
    assert!(left.is_empty(), "files appeared: {left:?}");
    // The same through the environment.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_agent-memory"))
        .args(["get", "s"])
        .env("AGENT_MEMORY_STORE", "localhost:6379")
        .output()
        .unwrap();
    assert!(assert_one_line_failure(&output).contains("redis://localhost:6379"));
}

#[test]
fn endless_stdin_is_refused_after_a_bounded_read() {
    let cli = agent_memory();
    let started = std::time::Instant::now();
    let output = cli.run_with(
        &["add", "s", "--json"],
        Stdin::File(std::path::Path::new("/dev/zero")),
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("stdin holds more than"), "{line}");
    println!("/dev/zero refused after {:?}", started.elapsed());
}

#[test]
fn deeply_nested_json_on_stdin_is_refused_not_a_crash() {
    let cli = agent_memory();
    let deep = format!(
        r#"{{"role": "user", "content": {}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let line = assert_one_line_failure(&cli.run_with(&["add", "s", "--json"], Stdin::Text(&deep)));
    assert!(line.contains("nested too deeply"), "{line}");
    // Deep but within what Python readers take is stored.
    let fine = format!(
        r#"{{"role": "user", "content": {}{}}}"#,
        "[".repeat(400),
        "]".repeat(400)
    );
    let output = cli.run_with(&["add", "s", "--json"], Stdin::Text(&fine));
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn policy_paths_that_are_not_regular_files_are_refused_without_hanging() {
    let cli = agent_memory();
    let fifo = cli.home().join("policy.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let big = cli.home().join("big.wasm");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(agent_memory::policy::MAX_POLICY_BYTES + 1)
        .unwrap();
    let fifo = fifo.to_str().unwrap();
    for (path, expected) in [
        (fifo, "not a regular file"),
        ("/dev/zero", "not a regular file"),
        ("/tmp", "not a regular file"),
        (big.to_str().unwrap(), "larger than"),
    ] {
        let line = assert_one_line_failure(&cli.run(&["policy", "check", path]));
        assert!(line.contains(expected), "{path}: {line}");
        let line = assert_one_line_failure(&cli.run(&["--policy", path, "get", "s"]));
        assert!(line.contains(expected), "{path}: {line}");
    }
}

#[test]
fn settings_that_cannot_work_are_refused_before_anything_is_stored() {
    let cli = agent_memory();
    let line = assert_one_line_failure(&cli.run(&["--max-messages", "20000", "add", "s", "x"]));
    assert!(
        line.contains("max_messages") && line.contains("cannot work"),
        "{line}"
    );
    assert_eq!(stdout(&cli.run(&["sessions"])), "");
}

#[test]
fn a_window_of_zero_reports_everything_it_deleted() {
    let cli = agent_memory();
    for text in ["a", "b", "c"] {
        assert!(cli.run(&["add", "s", text]).status.success());
    }
    let output = cli.run(&["--max-messages", "0", "add", "s", "d"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "stored 0 of 1 (the window keeps no messages; 3 older deleted)"
    );
}

#[test]
fn stored_text_cannot_drive_the_terminal_and_json_output_stays_exact() {
    let cli = agent_memory();
    let hostile = serde_json::json!({
        "role": "user\u{1b}[2J",
        "content": "red \u{1b}[31mtext\u{1b}]0;pwned\u{7}\rforged line\u{202e}gnirts\nsecond",
        "x\u{1b}": 1
    });
    let added = cli.run_with(&["add", "s", "--json"], Stdin::Text(&hostile.to_string()));
    assert!(added.status.success(), "{}", stderr(&added));
    let shown = stdout(&cli.run(&["get", "s"]));
    assert!(
        !shown
            .chars()
            .any(|ch| (ch.is_control() && ch != '\n') || ch == '\u{202e}'),
        "{shown:?}"
    );
    assert!(
        shown.contains("\\u{1b}[31m") && shown.contains("\\r"),
        "{shown}"
    );
    assert!(shown.contains("\n    second"), "{shown}");
    let listed = stdout(&cli.run(&["sessions"]));
    assert_eq!(listed, "s\n");
    // --json is exact (and, being json.dumps, plain ASCII).
    let json = stdout(&cli.run(&["get", "s", "--json"]));
    let read: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(read, serde_json::json!([hostile]));
    assert!(json.is_ascii());
}

#[test]
fn a_damaged_store_file_is_one_line_naming_it_and_a_repair_with_nothing_to_recover_says_so() {
    let cli = agent_memory();
    let file = cli.home().join("memory.redb");
    let store = file.to_str().unwrap();
    assert!(
        cli.run(&["--store", store, "add", "s", "kept"])
            .status
            .success()
    );
    // Damage the header: redb cannot open it at all.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..64].fill(0xff);
    std::fs::write(&file, &bytes).unwrap();
    for args in [
        &["sessions"][..],
        &["doctor"],
        &["get", "s"],
        &["clear", "s"],
    ] {
        let mut all = vec!["--store", store];
        all.extend_from_slice(args);
        let line = assert_one_line_failure(&cli.run(&all));
        assert!(
            line.contains("damaged") && line.contains(store),
            "{args:?}: {line}"
        );
        assert!(line.contains("repair"), "{line}");
    }
    // Nothing can be read from it: repair says so, exits non-zero, and touches nothing.
    let line = assert_one_line_failure(&cli.run(&["--store", store, "repair"]));
    assert!(
        line.contains("nothing could be recovered") && line.contains(store),
        "{line}"
    );
    assert!(
        line.contains("backup") && line.contains("move it aside"),
        "{line}"
    );
    assert!(!line.contains("kept"), "{line}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    // What the message says to do works.
    std::fs::rename(&file, cli.home().join("memory.redb.old")).unwrap();
    assert!(
        cli.run(&["--store", store, "add", "s", "again"])
            .status
            .success()
    );
}

#[test]
fn a_damaged_session_value_is_reported_and_cleared_while_the_rest_is_served() {
    let cli = agent_memory();
    let file = cli.home().join("memory.redb");
    let store = file.to_str().unwrap();
    for session in ["a", "b"] {
        assert!(
            cli.run(&["--store", store, "add", session, "hi"])
                .status
                .success()
        );
    }
    {
        let db = redb::Database::open(&file).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("lists");
            let mut table = txn.open_table(table).unwrap();
            table
                .insert("ai:memory:a", b"\x02garbage".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    assert_eq!(stdout(&cli.run(&["--store", store, "sessions"])), "a\nb\n");
    let doctor = cli.run(&["--store", store, "doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    let report = stdout(&doctor);
    assert!(
        report.contains("session \"a\": its stored value is damaged"),
        "{report}"
    );
    assert!(!report.contains("session \"b\""), "{report}");
    assert!(cli.run(&["--store", store, "clear", "a"]).status.success());
    assert!(cli.run(&["--store", store, "doctor"]).status.success());
    assert_eq!(
        stdout(&cli.run(&["--store", store, "get", "b"])),
        "[1] user: hi\n"
    );
}

#[test]
fn doctor_checks_every_key_and_keeps_going_where_config_is_not_permitted() {
    let server = RedisServer::start_with(&["--rename-command", "CONFIG", ""]);
    let mut redis = server.connection();
    let entry = r#"{"role": "user", "content": "x"}"#;
    // Keys the Python original writes for session ids agents cannot use, and worse.
    let keys: [&[u8]; 5] = [
        b"ai:memory:",
        b"ai:memory:line\nbreak",
        b"ai:memory:\xff\xfe",
        b"ai:memory:ok",
        b"ai:memory:odd\x1b[31m",
    ];
    for key in keys {
        let _: () = redis.rpush(key, entry).unwrap();
        let _: () = redis.expire(key, 100).unwrap();
    }
    let long = format!("ai:memory:{}", "x".repeat(600));
    let _: () = redis.rpush(&long, entry).unwrap();
    let _: () = redis.expire(&long, 100).unwrap();
    let _: () = redis.rpush("ai:memory:ok", "{broken").unwrap();
    let _: () = redis.set("ai:memory:foreign", "a string").unwrap();

    let cli = agent_memory();
    let output = cli.run(&["--store", &server.url(), "doctor"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(
        report.contains("could not check the eviction policy"),
        "{report}"
    );
    assert!(
        report.contains("session \"\": session id is empty"),
        "{report}"
    );
    assert!(
        report.contains("session \"line\\nbreak\": session id has a control character"),
        "{report}"
    );
    assert!(
        report.contains("session \"\\xff\\xfe\": the session id is not UTF-8"),
        "{report}"
    );
    assert!(report.contains("is 600 bytes long"), "{report}");
    assert!(report.contains("session \"odd\\u{1b}[31m\""), "{report}");
    assert!(
        report.contains("session \"ok\": 1 entries are not messages: 1 not JSON"),
        "{report}"
    );
    assert!(
        report.contains("session \"foreign\": holds a string"),
        "{report}"
    );
    assert!(report.contains("checked 7 sessions"), "{report}");
    assert!(!report.contains('\u{1b}'), "raw escape in the report");

    // Each key agents cannot name comes with the command that removes it, naming this store,
    // and the command, pasted into a shell as printed, removes exactly that key (byte for
    // byte, not UTF-8 included).
    let commands: Vec<&str> = report
        .lines()
        .filter_map(|line| {
            let (_, after) = line.split_once("remove it with `")?;
            Some(after.split_once('`')?.0)
        })
        .collect();
    assert_eq!(commands.len(), 5, "{report}");
    for command in &commands {
        let prefix = format!("agent-memory --store '{}' clear --raw-key '", server.url());
        assert!(command.starts_with(&prefix), "{command}");
        let pasted = command.replacen("agent-memory", env!("CARGO_BIN_EXE_agent-memory"), 1);
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&pasted)
            .current_dir(cli.home())
            .env("XDG_DATA_HOME", cli.home().join("data"))
            .env_remove("AGENT_MEMORY_STORE")
            .output()
            .unwrap();
        assert!(output.status.success(), "{command}: {}", stderr(&output));
        assert!(
            stdout(&output).contains("(1 entries)"),
            "{}",
            stdout(&output)
        );
    }
    for key in keys.iter().copied().filter(|key| *key != b"ai:memory:ok") {
        let exists: bool = redis.exists(key).unwrap();
        assert!(!exists, "{}", String::from_utf8_lossy(key));
    }
    let exists: bool = redis.exists(&long).unwrap();
    assert!(!exists);
    let output = cli.run(&["--store", &server.url(), "doctor"]);
    assert!(
        stdout(&output).contains("checked 2 sessions"),
        "{}",
        stdout(&output)
    );

    // Someone else's data is never deleted, and the commands say what it is.
    for args in [["clear", "foreign"], ["ttl", "foreign"]] {
        let mut all = vec!["--store", server.url().leak() as &str];
        all.extend_from_slice(&args);
        let line = assert_one_line_failure(&cli.run(&all));
        assert!(
            line.contains("not a session") && line.contains("holds a string"),
            "{args:?}: {line}"
        );
    }
    let output = cli.run(&[
        "--store",
        &server.url(),
        "clear",
        "--raw-key",
        "ai:memory:foreign",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nothing was deleted"),
        "{}",
        stderr(&output)
    );
    let output = cli.run(&["--store", &server.url(), "clear", "--raw-key", "other:key"]);
    assert!(
        stderr(&output).contains("not under the key prefix"),
        "{}",
        stderr(&output)
    );
    let value: String = redis.get("ai:memory:foreign").unwrap();
    assert_eq!(value, "a string");
}

#[test]
fn doctor_on_a_frozen_server_says_it_does_not_answer_and_blames_nothing_else() {
    let server = RedisServer::start();
    let cli = agent_memory();
    let url = server.url();
    assert!(
        cli.run(&["--store", &url, "add", "s", "hi"])
            .status
            .success()
    );
    server.pause();
    let started = std::time::Instant::now();
    let output = cli.run(&["--store", &url, "doctor"]);
    let took = started.elapsed();
    server.resume();
    // A failure: one line on stderr, nothing on stdout (no half report).
    assert_one_line_failure(&output);
    let everything = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!everything.contains("CONFIG"), "{everything}");
    assert!(!everything.contains("backoff"), "{everything}");
    assert!(!everything.contains("0 problems"), "{everything}");
    assert!(
        everything.contains("timed out") || everything.contains("did not answer"),
        "{everything}"
    );
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
}

#[test]
fn operator_commands_work_on_a_redis_that_is_out_of_memory() {
    let server = RedisServer::start();
    let cli = agent_memory();
    let store = server.url();
    for text in ["a", "b", "c"] {
        assert!(
            cli.run(&["--store", &store, "add", "s", text])
                .status
                .success()
        );
    }
    assert!(
        cli.run(&["--store", &store, "add", "t", "x"])
            .status
            .success()
    );
    server.config_set("maxmemory", "1");
    let line = assert_one_line_failure(&cli.run(&["--store", &store, "add", "s", "d"]));
    assert!(
        line.contains("out of memory") && line.contains("nothing was stored"),
        "{line}"
    );

    let long = cli.run(&["--store", &store, "sessions", "-l"]);
    assert!(long.status.success(), "{}", stderr(&long));
    assert!(
        stdout(&long).contains("s\t3 entries\texpires in"),
        "{}",
        stdout(&long)
    );
    let doctor = cli.run(&["--store", &store, "doctor"]);
    assert!(
        doctor.status.success(),
        "{}{}",
        stdout(&doctor),
        stderr(&doctor)
    );
    let ttl = cli.run(&["--store", &store, "ttl", "s"]);
    assert!(ttl.status.success(), "{}", stderr(&ttl));
    let cleared = cli.run(&["--store", &store, "clear", "s"]);
    assert!(cleared.status.success(), "{}", stderr(&cleared));
    assert_eq!(stdout(&cleared), "cleared s (3 messages deleted)\n");
    assert!(
        !server
            .connection()
            .exists::<_, bool>("ai:memory:s")
            .unwrap()
    );
}
