//! The default policy on a real Redis: exactly the Python original's behaviour.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agent_memory::{
    Content, EntryProblem, InvalidMessage, Memory, MemoryError, Message, Settings, StoreError,
    StoreSpec, WriteOutcome,
};
use agent_memory_tests::{RedisServer, expect_stored as stored, texts};
use redis::Commands;

fn memory(server: &RedisServer) -> Memory {
    memory_with(server, Settings::default())
}

fn memory_with(server: &RedisServer, settings: Settings) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .settings(settings)
        .build()
        .unwrap()
}

#[tokio::test]
async fn messages_are_stored_under_the_original_key_as_python_json() {
    let server = RedisServer::start();
    let memory = memory(&server);
    stored(
        memory
            .add_message("abc", Message::user("héllo"))
            .await
            .unwrap(),
    );
    let mut redis = server.connection();
    let entries: Vec<Vec<u8>> = redis.lrange("ai:memory:abc", 0, -1).unwrap();
    assert_eq!(
        entries,
        vec![br#"{"role": "user", "content": "h\u00e9llo"}"#.to_vec()]
    );
}

#[tokio::test]
async fn the_ttl_is_set_on_the_first_write_and_renewed_by_every_write() {
    let server = RedisServer::start();
    let memory = memory(&server);
    let mut redis = server.connection();
    stored(memory.add_message("s", Message::user("1")).await.unwrap());
    let ttl: i64 = redis.ttl("ai:memory:s").unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl after first write: {ttl}");

    let _: () = redis.expire("ai:memory:s", 10).unwrap();
    stored(memory.add_message("s", Message::user("2")).await.unwrap());
    let ttl: i64 = redis.ttl("ai:memory:s").unwrap();
    assert!(
        (3590..=3600).contains(&ttl),
        "ttl after second write: {ttl}"
    );

    let _: () = redis.expire("ai:memory:s", 10).unwrap();
    stored(
        memory
            .add_messages("s", [Message::user("3"), Message::assistant("4")])
            .await
            .unwrap(),
    );
    let ttl: i64 = redis.ttl("ai:memory:s").unwrap();
    assert!(
        (3590..=3600).contains(&ttl),
        "ttl after a batch write: {ttl}"
    );
}

#[tokio::test]
async fn the_configured_ttl_is_the_one_applied() {
    let server = RedisServer::start();
    let memory = memory_with(
        &server,
        Settings {
            ttl_seconds: 120,
            ..Settings::default()
        },
    );
    stored(memory.add_message("s", Message::user("x")).await.unwrap());
    let ttl: i64 = server.connection().ttl("ai:memory:s").unwrap();
    assert!((110..=120).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn the_window_holds_exactly_50_and_the_51st_write_trims_the_oldest() {
    let server = RedisServer::start();
    let memory = memory(&server);
    for i in 1..=50 {
        let report = stored(
            memory
                .add_message("s", Message::user(i.to_string()))
                .await
                .unwrap(),
        );
        assert_eq!((report.length, report.trimmed), (i, 0));
    }
    let mut redis = server.connection();
    assert_eq!(redis.llen::<_, u32>("ai:memory:s").unwrap(), 50);
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(texts(&context).first().map(String::as_str), Some("1"));
    assert_eq!(context.messages.len(), 50);

    let report = stored(memory.add_message("s", Message::user("51")).await.unwrap());
    assert_eq!((report.appended, report.trimmed, report.length), (1, 1, 50));
    assert_eq!(redis.llen::<_, u32>("ai:memory:s").unwrap(), 50);
    let context = memory.get_context("s").await.unwrap();
    let expected: Vec<String> = (2..=51).map(|i| i.to_string()).collect();
    assert_eq!(texts(&context), expected);
}

#[tokio::test]
async fn a_batch_larger_than_the_window_keeps_its_newest_messages() {
    let server = RedisServer::start();
    let memory = memory_with(
        &server,
        Settings {
            max_messages: 3,
            ..Settings::default()
        },
    );
    stored(memory.add_message("s", Message::user("old")).await.unwrap());
    let batch: Vec<Message> = (1..=5).map(|i| Message::user(i.to_string())).collect();
    let report = stored(memory.add_messages("s", batch).await.unwrap());
    assert_eq!((report.appended, report.trimmed, report.length), (3, 3, 3));
    assert_eq!(
        texts(&memory.get_context("s").await.unwrap()),
        ["3", "4", "5"]
    );
}

#[tokio::test]
async fn a_window_of_zero_deletes_the_session() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let _: () = redis
        .rpush("ai:memory:s", r#"{"role": "user", "content": "old"}"#)
        .unwrap();
    let memory = memory_with(
        &server,
        Settings {
            max_messages: 0,
            ..Settings::default()
        },
    );
    let report = stored(memory.add_message("s", Message::user("new")).await.unwrap());
    assert_eq!(report.length, 0);
    assert!(!redis.exists::<_, bool>("ai:memory:s").unwrap());
    assert!(memory.get_context("s").await.unwrap().messages.is_empty());
}

#[tokio::test]
async fn corrupt_entries_are_skipped_and_counted_and_the_rest_is_returned() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let entries: [&[u8]; 6] = [
        br#"{"role": "user", "content": "first"}"#,
        b"{not json",
        b"\xff\xfe\x00",
        br#"["an", "array"]"#,
        br#"{"content": "no role"}"#,
        br#"{"role": "assistant", "content": "last"}"#,
    ];
    for entry in entries {
        let _: () = redis.rpush("ai:memory:s", entry).unwrap();
    }
    let context = memory(&server).get_context("s").await.unwrap();
    assert_eq!(texts(&context), ["first", "last"]);
    let skipped: Vec<(u32, EntryProblem)> = context
        .skipped
        .iter()
        .map(|entry| (entry.position, entry.problem))
        .collect();
    assert_eq!(
        skipped,
        [
            (1, EntryProblem::NotJson),
            (2, EntryProblem::NotJson),
            (3, EntryProblem::NotAnObject),
            (4, EntryProblem::NoRole)
        ]
    );
    assert_eq!(context.degraded, None);
}

#[tokio::test]
async fn a_key_holding_a_string_is_reported_and_left_exactly_as_it_was() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let _: () = redis.set("ai:memory:foreign", "someone else's").unwrap();
    let memory = memory(&server);

    let outcome = memory
        .add_message("foreign", Message::user("x"))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Failed(StoreError::WrongType));
    let context = memory.get_context("foreign").await.unwrap();
    assert_eq!(context.degraded, Some(StoreError::WrongType));
    let cleared = memory.clear("foreign").await.unwrap();
    assert_eq!(cleared, WriteOutcome::Failed(StoreError::WrongType));

    // The value and its (absent) TTL are untouched: the EXPIRE in the write was undone and the
    // clear did not delete it.
    assert_eq!(
        redis.get::<_, String>("ai:memory:foreign").unwrap(),
        "someone else's"
    );
    assert_eq!(redis.ttl::<_, i64>("ai:memory:foreign").unwrap(), -1);
}

#[tokio::test]
async fn a_foreign_key_keeps_its_own_ttl() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let _: () = redis.hset("ai:memory:h", "field", "value").unwrap();
    let _: () = redis.expire("ai:memory:h", 77).unwrap();
    let outcome = memory(&server)
        .add_message("h", Message::user("x"))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Failed(StoreError::WrongType));
    let ttl: i64 = redis.ttl("ai:memory:h").unwrap();
    assert!((70..=77).contains(&ttl), "foreign TTL changed to {ttl}");
    assert_eq!(
        redis.hget::<_, _, String>("ai:memory:h", "field").unwrap(),
        "value"
    );
}

#[tokio::test]
async fn clear_deletes_the_session_and_only_it() {
    let server = RedisServer::start();
    let memory = memory(&server);
    stored(memory.add_message("a", Message::user("x")).await.unwrap());
    stored(memory.add_message("b", Message::user("y")).await.unwrap());
    stored(memory.clear("a").await.unwrap());
    let mut redis = server.connection();
    assert!(!redis.exists::<_, bool>("ai:memory:a").unwrap());
    assert!(redis.exists::<_, bool>("ai:memory:b").unwrap());
    assert_eq!(memory.sessions().await.unwrap(), [b"b".to_vec()]);
}

#[tokio::test]
async fn sessions_lists_keys_under_the_prefix_even_with_glob_characters() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let _: () = redis.set("unrelated", "x").unwrap();
    let _: () = redis.set("ai:memoryX", "x").unwrap();
    let memory = memory_with(
        &server,
        Settings {
            key_prefix: "t[1]*:".to_string(),
            ..Settings::default()
        },
    );
    let _: () = redis.set("t1x:other", "x").unwrap();
    stored(memory.add_message("one", Message::user("x")).await.unwrap());
    stored(memory.add_message("two", Message::user("x")).await.unwrap());
    assert_eq!(
        memory.sessions().await.unwrap(),
        [b"one".to_vec(), b"two".to_vec()]
    );
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_nothing_is_written() {
    let server = RedisServer::start();
    let memory = memory_with(
        &server,
        Settings {
            max_message_bytes: 100,
            ..Settings::default()
        },
    );
    stored(
        memory
            .add_message("s", Message::user("small"))
            .await
            .unwrap(),
    );
    let error = memory
        .add_messages("s", [Message::user("ok"), Message::user("x".repeat(200))])
        .await
        .unwrap_err();
    match error {
        MemoryError::InvalidMessage {
            index: 1,
            reason: InvalidMessage::TooLarge { actual, limit: 100 },
        } => assert!(actual > 200),
        other => panic!("expected too-large, got {other:?}"),
    }
    assert_eq!(texts(&memory.get_context("s").await.unwrap()), ["small"]);
}

#[tokio::test]
async fn odd_session_ids_are_refused_before_any_io_and_ordinary_odd_ones_work() {
    let server = RedisServer::start();
    let memory = memory(&server);
    for bad in ["", "a\nb", "nul\0"] {
        assert!(matches!(
            memory.get_context(bad).await,
            Err(MemoryError::InvalidSession(_))
        ));
    }
    let long = "x".repeat(agent_memory::MAX_SESSION_ID_BYTES + 1);
    assert!(
        memory
            .add_message(long.as_str(), Message::user("x"))
            .await
            .is_err()
    );
    for odd in ["with space", "ключ", "a:b:c", "*", "emoji 😀"] {
        stored(memory.add_message(odd, Message::user(odd)).await.unwrap());
        assert_eq!(texts(&memory.get_context(odd).await.unwrap()), [odd]);
    }
    let keys: Vec<String> = server.connection().keys("*").unwrap();
    assert_eq!(keys.len(), 5, "{keys:?}");
}

#[tokio::test]
async fn messages_with_tool_calls_and_null_or_absent_content_round_trip() {
    let server = RedisServer::start();
    let memory = memory(&server);
    let call = Message::from_json(&serde_json::json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]
    }))
    .unwrap();
    let result = Message::new("tool", "42").with("tool_call_id", serde_json::json!("c1"));
    let bare =
        Message::from_json(&serde_json::json!({"role": "assistant", "tool_calls": []})).unwrap();
    let parts = Message::from_json(&serde_json::json!({
        "role": "user", "content": [{"type": "text", "text": "hi"}]
    }))
    .unwrap();
    let all = vec![call, result, bare, parts];
    stored(memory.add_messages("s", all.clone()).await.unwrap());
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(context.messages, all);
    assert_eq!(context.messages[2].content, Content::Absent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_leave_a_list_over_the_window_or_without_a_ttl() {
    let server = RedisServer::start();
    let memory = memory_with(
        &server,
        Settings {
            max_messages: 5,
            ..Settings::default()
        },
    );
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let memory = memory.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    let message = Message::user(format!("{writer}-{i}"));
                    assert!(
                        memory
                            .add_message("hot", message)
                            .await
                            .unwrap()
                            .is_stored()
                    );
                }
            })
        })
        .collect();

    // Watch from another connection while the writers run: each observation is one MULTI, so
    // the length and the TTL belong to the same moment.
    let writers_done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let url = server.url();
        let writers_done = Arc::clone(&writers_done);
        tokio::task::spawn_blocking(move || {
            let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut observations = 0u32;
            while !writers_done.load(Ordering::Acquire) {
                let (exists, length, ttl): (bool, u32, i64) = redis::pipe()
                    .atomic()
                    .exists("ai:memory:hot")
                    .llen("ai:memory:hot")
                    .ttl("ai:memory:hot")
                    .query(&mut redis)
                    .unwrap();
                if exists {
                    observations += 1;
                    assert!(length <= 5, "a reader saw {length} entries");
                    assert!(ttl > 0, "a reader saw the list without a TTL ({ttl})");
                }
            }
            observations
        })
    };
    for writer in writers {
        writer.await.unwrap();
    }
    writers_done.store(true, Ordering::Release);
    let observations = watcher.await.unwrap();
    assert!(
        observations > 50,
        "the watcher saw the list only {observations} times"
    );
    let context = memory.get_context("hot").await.unwrap();
    assert_eq!(context.messages.len(), 5);
}

/// `calls` of each Redis command so far (INFO commandstats).
fn command_calls(server: &RedisServer, command: &str) -> u64 {
    let stats = server.info("commandstats");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test]
async fn add_and_get_context_appends_and_reads_the_window_in_one_transaction() {
    let server = RedisServer::start();
    let memory = memory(&server);
    let history: Vec<Message> = (0..50).map(|i| Message::user(format!("m{i}"))).collect();
    stored(memory.add_messages("s", history).await.unwrap());
    let (exec, lrange) = (
        command_calls(&server, "exec"),
        command_calls(&server, "lrange"),
    );

    let turn = memory
        .add_and_get_context("s", [Message::user("new")])
        .await
        .unwrap();
    assert_eq!(
        turn.outcome
            .stored()
            .map(|s| (s.appended, s.trimmed, s.length)),
        Some((1, 1, 50))
    );
    let read = texts(&turn.context);
    assert_eq!(read.len(), 50);
    assert_eq!((read[0].as_str(), read[49].as_str()), ("m1", "new"));
    // One MULTI/EXEC holding the read: one round trip.
    assert_eq!(command_calls(&server, "exec"), exec + 1);
    assert_eq!(command_calls(&server, "lrange"), lrange + 1);
    // The same entries a separate read returns, and a TTL as after any write.
    assert_eq!(memory.get_context("s").await.unwrap(), turn.context);
    assert!(server.connection().ttl::<_, i64>("ai:memory:s").unwrap() > 3500);
}

#[tokio::test]
async fn a_failed_add_and_get_context_degrades_the_context_with_the_write_error() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let _: () = redis.set("ai:memory:foreign", "x").unwrap();
    let turn = memory(&server)
        .add_and_get_context("foreign", [Message::user("x")])
        .await
        .unwrap();
    assert_eq!(turn.outcome, WriteOutcome::Failed(StoreError::WrongType));
    assert_eq!(turn.context.degraded, Some(StoreError::WrongType));
    assert_eq!(redis.get::<_, String>("ai:memory:foreign").unwrap(), "x");
}
