//! Hostile session ids and messages, through the API and the CLI, against one real Redis:
//! each is refused with a typed error or stored exactly under its own key, and afterwards a
//! scan of the whole keyspace finds nothing outside the prefix.

use agent_memory::{Memory, MemoryError, Message, StoreSpec, session::SessionIdError};
use agent_memory_tests::{RedisServer, expect_stored, texts};
use redis::Commands;

fn memory(server: &RedisServer) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .build()
        .unwrap()
}

/// Session ids that look like SCAN patterns, cluster hash tags or keys themselves.
const PATTERN_LIKE_IDS: [&str; 7] = [
    "*",
    "a?b[c]",
    "{tag}",
    "{tag}x",
    "ai:memory:nested",
    "日本 語",
    "\\",
];

async fn hostile_ids_through_the_api(memory: &Memory) {
    // Each refused id, and whether its refusal is for emptiness (else a control character).
    for (id, empty) in [
        ("", true),
        ("a\0b", false),
        ("a\nb", false),
        ("\u{1b}[2J", false),
    ] {
        let expected = |error: &SessionIdError| {
            if empty {
                matches!(error, SessionIdError::Empty)
            } else {
                matches!(error, SessionIdError::ControlCharacter { .. })
            }
        };
        for result in [
            memory.add_message(id, Message::user("x")).await.map(|_| ()),
            memory.get_context(id).await.map(|_| ()),
            memory.clear(id).await.map(|_| ()),
        ] {
            match result {
                Err(MemoryError::InvalidSession(error)) => {
                    assert!(expected(&error), "{id:?}: {error}")
                }
                other => panic!("{id:?}: expected a refused id, got {other:?}"),
            }
        }
    }
    let huge = "x".repeat(100_000);
    assert!(matches!(
        memory.get_context(huge.as_str()).await,
        Err(MemoryError::InvalidSession(SessionIdError::TooLong {
            len: 100_000
        }))
    ));

    // Ids that look like patterns or cluster hash tags are ordinary names: each is its own key.
    for id in PATTERN_LIKE_IDS {
        expect_stored(memory.add_message(id, Message::user(id)).await.unwrap());
    }
    for id in PATTERN_LIKE_IDS {
        assert_eq!(texts(&memory.get_context(id).await.unwrap()), [id], "{id}");
    }
    assert!(memory.clear("*").await.unwrap().is_stored());
    assert_eq!(
        texts(&memory.get_context("a?b[c]").await.unwrap()),
        ["a?b[c]"]
    );
}

async fn hostile_messages_through_the_api(memory: &Memory) {
    // NUL and every other control character, in role, content and member names.
    let odd = Message::new(
        "us\0er",
        "nul \0 bell \u{7} esc \u{1b} del \u{7f} ls \u{2028}",
    )
    .with("\0name\n", serde_json::json!({"\0": "\u{1}"}));
    expect_stored(memory.add_message("odd", odd.clone()).await.unwrap());
    assert_eq!(memory.get_context("odd").await.unwrap().messages, [odd]);

    // 10,000 messages in one call: the newest 50 are kept, the rest counted as trimmed.
    let many: Vec<Message> = (0..10_000).map(|i| Message::user(i.to_string())).collect();
    let stored = expect_stored(memory.add_messages("many", many).await.unwrap());
    assert_eq!(
        (stored.appended, stored.trimmed, stored.length),
        (50, 9950, 50)
    );
    let context = memory.get_context("many").await.unwrap();
    assert_eq!(texts(&context).first().map(String::as_str), Some("9950"));
    assert_eq!(texts(&context).last().map(String::as_str), Some("9999"));

    // Setting `role` again replaces it in its place, as assigning to a dict does; a role that
    // is not a string is refused, never stored.
    let replaced = Message::user("x").with("role", serde_json::json!("system"));
    assert_eq!(
        replaced.to_json_string(),
        r#"{"role": "system", "content": "x"}"#
    );
    let sneaky = Message::user("x").with("role", serde_json::json!(["system"]));
    assert!(matches!(
        memory.add_message("sneaky", sneaky).await,
        Err(MemoryError::InvalidMessage {
            index: 0,
            reason: agent_memory::report::InvalidMessage::NoRole
        })
    ));
    let headless = Message::user("x").without("role");
    assert!(matches!(
        memory.add_message("sneaky", headless).await,
        Err(MemoryError::InvalidMessage {
            index: 0,
            reason: agent_memory::report::InvalidMessage::NoRole
        })
    ));
    assert!(
        memory
            .get_context("sneaky")
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

fn hostile_ids_through_the_cli(url: &str) {
    use agent_memory_tests::cli::{Cli, assert_one_line_failure, stdout};
    use std::os::unix::ffi::OsStrExt;
    let cli = Cli::new(env!("CARGO_BIN_EXE_agent-memory"));
    for (id, reason) in [
        ("", "session id is empty"),
        ("a\nb", "control character"),
        ("a\0b", "nul byte"),
    ] {
        if id.contains('\0') {
            // An argument cannot hold NUL: the OS refuses it before the CLI runs.
            let spawned = std::process::Command::new(env!("CARGO_BIN_EXE_agent-memory"))
                .arg(id)
                .output();
            assert!(spawned.is_err(), "{reason}");
            continue;
        }
        let line = assert_one_line_failure(&cli.run(&["--store", url, "add", id, "x"]));
        assert!(line.contains(reason), "{id:?}: {line}");
    }
    let long = "y".repeat(600);
    let line = assert_one_line_failure(&cli.run(&["--store", url, "add", &long, "x"]));
    assert!(line.contains("600 bytes long"), "{line}");
    // Not UTF-8: clap refuses it as a usage error (exit 2), nothing is stored.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_agent-memory"))
        .args(["--store", url, "add"])
        .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe"))
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // Pattern-like and hash-tag ids work and stay apart.
    for id in ["cli*", "{cli}"] {
        assert!(cli.run(&["--store", url, "add", id, id]).status.success());
        assert_eq!(
            stdout(&cli.run(&["--store", url, "get", id])),
            format!("[1] user: {id}\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_and_messages_are_refused_or_stored_exactly_and_nothing_escapes_the_prefix() {
    let server = RedisServer::start();
    let memory = memory(&server);
    hostile_ids_through_the_api(&memory).await;
    hostile_messages_through_the_api(&memory).await;
    let url = server.url();
    tokio::task::spawn_blocking(move || hostile_ids_through_the_cli(&url))
        .await
        .unwrap();

    let keys: Vec<Vec<u8>> = server
        .connection()
        .scan::<Vec<u8>>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(keys.len() >= 10, "{keys:?}");
    for key in &keys {
        assert!(
            key.starts_with(b"ai:memory:"),
            "a key outside the prefix: {:?}",
            String::from_utf8_lossy(key)
        );
    }
}
