//! `agent-memory copy` and `store::copy_sessions`: every session moved between an embedded
//! file, a real Redis and process memory, byte for byte with its TTL; foreign data left alone;
//! a rerun ends the same; a dry run writes nothing.

use std::time::Duration;

use agent_memory::operator::{SkipReason, copy_sessions};
use agent_memory::{Memory, Message, Store, StoreSpec, store::Ttl};
use agent_memory_tests::cli::{Cli, stderr, stdout};
use agent_memory_tests::{RedisServer, expect_stored};
use redis::Commands;

const PREFIX: &[u8] = b"ai:memory:";

fn open(spec: &StoreSpec) -> Store {
    Store::open(spec, Default::default()).unwrap()
}

/// Every list under the prefix, with entries and TTL.
async fn snapshot(store: &Store) -> Vec<(Vec<u8>, Vec<Vec<u8>>, Ttl)> {
    let mut all = Vec::new();
    for key in store.keys_with_prefix(PREFIX).await.unwrap() {
        if !matches!(
            store.kind(&key).await.unwrap(),
            agent_memory::store::KeyKind::List(_)
        ) {
            continue;
        }
        let entries = store.entries(&key, 0, -1).await.unwrap();
        let ttl = store.ttl(&key).await.unwrap();
        all.push((key, entries, ttl));
    }
    all
}

fn ttl_close(a: Ttl, b: Ttl) -> bool {
    match (a, b) {
        (Ttl::ExpiresIn(a), Ttl::ExpiresIn(b)) => a.abs_diff(b) <= Duration::from_secs(2),
        (a, b) => a == b,
    }
}

#[tokio::test]
async fn sessions_move_from_an_embedded_file_to_redis_and_back_byte_for_byte_with_their_ttl() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = StoreSpec::Embedded(dir.path().join("memory.redb"));
    let redis_spec = StoreSpec::parse(&server.url()).unwrap();
    let embedded = open(&file);
    let memory = Memory::builder()
        .store_handle(embedded.clone())
        .build()
        .unwrap();
    for session in 0..30 {
        for turn in 0..(session % 7 + 1) {
            let text = format!("session {session} turn {turn} — héllo \u{1F600}");
            let session = format!("s{session}");
            expect_stored(
                memory
                    .add_message(session.as_str(), Message::user(text))
                    .await
                    .unwrap(),
            );
        }
    }
    // A persistent list written by someone else is copied as persistent: written without a
    // TTL into database 1 of the server and copied into the file first.
    let mut writer = server.connection();
    redis::cmd("SELECT").arg(1).exec(&mut writer).unwrap();
    let _: () = writer
        .rpush(
            "ai:memory:persistent",
            "{\"role\": \"user\", \"content\": \"x\"}",
        )
        .unwrap();
    let database_1 = open(&StoreSpec::parse(&format!("{}/1", server.url())).unwrap());
    copy_sessions(&database_1, &embedded, PREFIX, false, |_| {})
        .await
        .unwrap();
    assert_eq!(
        embedded.ttl("ai:memory:persistent").await.unwrap(),
        Ttl::Persistent
    );

    let redis = open(&redis_spec);
    let mut heard = Vec::new();
    let report = copy_sessions(&embedded, &redis, PREFIX, false, |progress| {
        heard.push(progress)
    })
    .await
    .unwrap();
    assert_eq!(report.sessions, 31);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(heard.len(), 31);
    assert_eq!(heard.last().map(|p| (p.done, p.total)), Some((31, 31)));

    let (source, copied) = (snapshot(&embedded).await, snapshot(&redis).await);
    assert_eq!(source.len(), copied.len());
    for ((key, entries, ttl), (key2, entries2, ttl2)) in source.iter().zip(&copied) {
        assert_eq!(key, key2);
        assert_eq!(entries, entries2, "{}", String::from_utf8_lossy(key));
        assert!(ttl_close(*ttl, *ttl2), "{ttl:?} vs {ttl2:?}");
    }

    // And back into a fresh file: the same again.
    let back = open(&StoreSpec::Embedded(dir.path().join("back.redb")));
    copy_sessions(&redis, &back, PREFIX, false, |_| {})
        .await
        .unwrap();
    let returned = snapshot(&back).await;
    for ((key, entries, ttl), (key2, entries2, ttl2)) in source.iter().zip(&returned) {
        assert_eq!((key, entries), (key2, entries2));
        assert!(ttl_close(*ttl, *ttl2));
    }
}

#[tokio::test]
async fn a_rerun_ends_the_same_a_dry_run_writes_nothing_and_foreign_data_is_left_alone() {
    let server = RedisServer::start();
    let source = open(&StoreSpec::InMemory);
    let memory = Memory::builder()
        .store_handle(source.clone())
        .build()
        .unwrap();
    let both = [Message::user("1"), Message::user("2")];
    expect_stored(memory.add_messages("a", both).await.unwrap());
    expect_stored(memory.add_message("b", Message::user("3")).await.unwrap());
    let target = open(&StoreSpec::parse(&server.url()).unwrap());
    // The target already has an older "a", and someone else's string under the prefix where
    // the source has "b".
    let mut redis = server.connection();
    let _: () = redis.rpush("ai:memory:a", "stale").unwrap();
    let _: () = redis.set("ai:memory:b", "foreign").unwrap();

    let dry = copy_sessions(&source, &target, PREFIX, true, |_| {})
        .await
        .unwrap();
    assert_eq!((dry.sessions, dry.entries), (2, 3));
    let stale: Vec<String> = redis.lrange("ai:memory:a", 0, -1).unwrap();
    assert_eq!(stale, ["stale"], "a dry run wrote");

    for _ in 0..2 {
        let report = copy_sessions(&source, &target, PREFIX, false, |_| {})
            .await
            .unwrap();
        assert_eq!(report.sessions, 1);
        assert_eq!(
            report.skipped,
            [(b"ai:memory:b".to_vec(), SkipReason::TargetNotAList)]
        );
        let a: Vec<String> = redis.lrange("ai:memory:a", 0, -1).unwrap();
        assert_eq!(a.len(), 2);
        assert!(a[0].contains("\"1\""));
        let b: String = redis.get("ai:memory:b").unwrap();
        assert_eq!(b, "foreign");
    }
}

#[test]
fn the_cli_copies_with_progress_and_refuses_copying_a_store_onto_itself() {
    let server = RedisServer::start();
    let cli = Cli::new(env!("CARGO_BIN_EXE_agent-memory"));
    let file = cli.home().join("start.redb");
    let file = file.to_str().unwrap();
    for session in ["one", "two"] {
        let output = cli.run(&["--store", file, "add", session, "hi"]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let url = server.url();
    let output = cli.run(&["copy", "--from", file, "--to", &url, "--dry-run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("would copy 2 sessions (2 entries"),
        "{}",
        stdout(&output)
    );
    let output = cli.run(&["copy", "--from", file, "--to", &url]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("copied 2 sessions"),
        "{}",
        stdout(&output)
    );
    let progress = stderr(&output);
    assert!(
        progress.contains("copy: 2 keys to copy (listed in "),
        "{progress}"
    );
    assert!(progress.contains("copy: 2/2 keys"), "{progress}");
    let output = cli.run(&["--store", &url, "get", "two"]);
    assert_eq!(stdout(&output).trim(), "[1] user: hi");

    // Another database of the same server is another store: the copy is made, and every
    // description names its database.
    let db3 = format!("{url}/3");
    let output = cli.run(&["copy", "--from", &url, "--to", &db3]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(report.starts_with("copied 2 sessions"), "{report}");
    assert!(report.contains(" db 3"), "{report}");
    let output = cli.run(&["--store", &db3, "get", "two", "--json"]);
    assert_eq!(
        stdout(&output).trim(),
        r#"[{"role": "user", "content": "hi"}]"#
    );
    let output = cli.run(&["--store", &db3, "doctor"]);
    assert!(
        stdout(&output).contains(" db 3: 0 problems"),
        "{}",
        stdout(&output)
    );

    // One file named twice, however it is spelled, is one store.
    let spelled_otherwise = cli.home().join(".").join("start.redb");
    let output = cli.run(&[
        "copy",
        "--from",
        file,
        "--to",
        spelled_otherwise.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("the same store"), "{message}");
    assert!(!message.contains("another process"), "{message}");

    // However it is spelled: localhost for 127.0.0.1, an explicit /0.
    let spelled_otherwise = format!("redis://localhost:{}/0", server.port());
    let output = cli.run(&["copy", "--from", &url, "--to", &spelled_otherwise]);
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("the same store"),
        "{}",
        stderr(&output)
    );
    let output = cli.run(&["copy", "--from", &url, "--to", &url]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the same store"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_cli_runs_and_checks_the_tool_safe_policy() {
    let cli = Cli::new(env!("CARGO_BIN_EXE_agent-memory"));
    let output = cli.run(&[
        "policy",
        "check",
        "tool-safe",
        "--policy-setting",
        "max-tokens=500",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("passes the self-check"),
        "{}",
        stdout(&output)
    );
    let output = cli.run(&["--policy", "tool-safe", "--max-messages", "2", "demo"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The system message is pinned; the window keeps 2.
    let out = stdout(&output);
    assert!(out.contains("get:    2 messages"), "{out}");
    assert!(out.contains("[1] system:"), "{out}");
    let output = cli.run(&["--policy", "no-such-policy.wasm", "demo"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no-such-policy.wasm"),
        "{}",
        stderr(&output)
    );
}
