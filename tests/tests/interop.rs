//! Interop with the Python original (tests/python/original.py, redis-py, `json.dumps`): both
//! read and write the same sessions on the same Redis, and every member survives either way.
//! The two basic directions (what Python writes we read; what we write is what `json.dumps`
//! writes, byte for byte, and Python reads it) are checks of the behaviour suite
//! (`redis_behaviour/`), which runs them on every kind of deployment, this one server too.

use agent_memory::{Memory, Message, StoreSpec, message::EntryProblem, report::SkippedEntry};
use agent_memory_tests::{PythonOriginal, RedisServer, expect_stored, tricky_messages};
use redis::Commands;
use serde_json::{Value, json};

fn memory(server: &RedisServer) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_combined_turn_reads_what_python_wrote_and_writes_what_python_reads() {
    let server = RedisServer::start();
    let python = PythonOriginal::new(&server.url());
    let theirs = tricky_messages();
    let written: Vec<String> = theirs.iter().map(Value::to_string).collect();
    python.add(
        "turn",
        &written.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let ours: Vec<Message> = tricky_messages()
        .into_iter()
        .map(|value| Message::from_json(&value).unwrap())
        .collect();

    let turn = memory(&server)
        .add_and_get_context("turn", ours.clone())
        .await
        .unwrap();
    expect_stored(turn.outcome);
    // The window it returns holds Python's messages, then ours, every member intact.
    let returned: Vec<Value> = turn
        .context
        .messages
        .iter()
        .map(|message| message.to_json().unwrap())
        .collect();
    let expected: Vec<Value> = theirs.iter().chain(theirs.iter()).cloned().collect();
    assert_eq!(returned, expected);
    // And Python reads the same window, every entry as json.dumps writes it.
    assert_eq!(python.get("turn"), Value::Array(expected));
    let canonical = python.eval_on_entries(
        "turn",
        "all(json.dumps(json.loads(e)).encode() == e for e in entries)",
        "",
    );
    assert_eq!(canonical, "True");
}

#[tokio::test]
async fn python_and_rust_append_to_one_session_and_share_its_window() {
    let server = RedisServer::start();
    let memory = memory(&server);
    let python = PythonOriginal::new(&server.url());
    for i in 0..30 {
        python.add(
            "shared",
            &[&json!({"role": "user", "content": format!("py {i}")}).to_string()],
        );
        let outcome = memory
            .add_message("shared", Message::assistant(format!("rs {i}")))
            .await;
        assert!(outcome.unwrap().is_stored());
    }
    let ours: Vec<Value> = memory
        .get_context("shared")
        .await
        .unwrap()
        .messages
        .iter()
        .map(|message| message.to_json().unwrap())
        .collect();
    let theirs = python.get("shared");
    assert_eq!(ours.len(), 50);
    assert_eq!(Value::Array(ours.clone()), theirs);
    assert_eq!(ours[0], json!({"role": "user", "content": "py 5"}));
    assert_eq!(ours[49], json!({"role": "assistant", "content": "rs 29"}));
}

#[tokio::test]
async fn hand_inserted_corrupt_entries_are_skipped_by_both() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let good_a = json!({"role": "user", "content": "a"});
    let good_b = json!({"role": "assistant", "content": "b"});
    let _: () = redis.rpush("ai:memory:c", good_a.to_string()).unwrap();
    let _: () = redis.rpush("ai:memory:c", "{truncated").unwrap();
    let _: () = redis
        .rpush("ai:memory:c", b"\xff\xfe binary".as_slice())
        .unwrap();
    let _: () = redis.rpush("ai:memory:c", good_b.to_string()).unwrap();

    let context = memory(&server).get_context("c").await.unwrap();
    let ours: Vec<Value> = context
        .messages
        .iter()
        .map(|message| message.to_json().unwrap())
        .collect();
    assert_eq!(ours, vec![good_a.clone(), good_b.clone()]);
    assert_eq!(
        context.skipped,
        [
            SkippedEntry {
                position: 1,
                problem: EntryProblem::NotJson
            },
            SkippedEntry {
                position: 2,
                problem: EntryProblem::NotJson
            }
        ]
    );
    let python = PythonOriginal::new(&server.url());
    assert_eq!(python.get("c"), json!([good_a, good_b]));
}

#[tokio::test]
async fn a_session_python_cleared_is_empty_for_us_and_vice_versa() {
    let server = RedisServer::start();
    let memory = memory(&server);
    let python = PythonOriginal::new(&server.url());
    expect_stored(memory.add_message("x", Message::user("hi")).await.unwrap());
    python.add(
        "y",
        &[&json!({"role": "user", "content": "hi"}).to_string()],
    );
    python.clear("x");
    assert!(memory.clear("y").await.unwrap().is_stored());
    assert!(memory.get_context("x").await.unwrap().messages.is_empty());
    assert_eq!(python.get("y"), json!([]));
}

#[tokio::test]
async fn entries_in_every_encoding_and_with_python_only_values_are_returned_like_python_reads_them()
{
    let server = RedisServer::start();
    let mut redis = server.connection();
    let text = r#"{"role": "user", "content": "\u00e9t\u00e9", "n": 123456789012345678901234567890, "f": NaN, "i": -Infinity}"#;
    let utf16le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf32be: Vec<u8> = text
        .chars()
        .flat_map(|c| (c as u32).to_be_bytes())
        .collect();
    let entries: [Vec<u8>; 4] = [
        text.as_bytes().to_vec(),
        [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
        [b"\xff\xfe".as_slice(), &utf16le].concat(),
        utf32be,
    ];
    for entry in &entries {
        let _: () = redis.rpush("ai:memory:enc", entry.as_slice()).unwrap();
    }
    let context = memory(&server).get_context("enc").await.unwrap();
    assert_eq!(context.skipped, []);
    let ours: Vec<String> = context
        .messages
        .iter()
        .map(Message::to_json_string)
        .collect();
    // What the original returns, as its own json.dumps prints it.
    let python = PythonOriginal::new(&server.url());
    let theirs = python.eval_on_entries("enc", "json.dumps([json.loads(e) for e in entries])", "");
    assert_eq!(format!("[{}]", ours.join(", ")), theirs);
    assert_eq!(ours.len(), 4);
}

#[tokio::test]
async fn a_session_written_before_contract_0_3_0_reads_back_exactly_as_stored() {
    // Before 0.3.0 every entry we wrote had `role`, then `content`, then the other members,
    // whatever the caller's order: such sessions live on in Redis and embedded files.
    let server = RedisServer::start();
    let stored: Vec<&str> = vec![
        r#"{"role": "system", "content": "be terse"}"#,
        r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}"#,
        r#"{"role": "tool", "content": "18 C", "tool_call_id": "c1"}"#,
        r#"{"role": "user", "content": "hi", "name": "alice"}"#,
    ];
    let mut redis = redis::Client::open(server.url()).unwrap();
    let _: () = redis.rpush("ai:memory:old", &stored).unwrap();
    for policy in [
        agent_memory::Policy::default_policy().unwrap(),
        agent_memory::Policy::tool_safe().unwrap(),
    ] {
        let memory = Memory::builder()
            .store(StoreSpec::parse(&server.url()).unwrap())
            .policy(policy)
            .build()
            .unwrap();
        let context = memory.get_context("old").await.unwrap();
        let read: Vec<String> = context
            .messages
            .iter()
            .map(Message::to_json_string)
            .collect();
        assert_eq!(read, stored);
    }
}
