//! The tool-safe policy against real stores: its window in Redis as the Python original reads
//! it, and concurrent writers on one session. (Its conditional transaction, `expect`, is tested
//! on every backend by the library's own `store::transaction_tests`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_memory::{Memory, Message, Policy, Settings, StoreError, StoreSpec, WriteOutcome};
use agent_memory_tests::{PythonOriginal, RedisServer, expect_stored};
use serde_json::json;

fn call(id: &str) -> Message {
    Message::from_json(
        &json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
    )
    .unwrap()
}

fn result(id: &str) -> Message {
    Message::from_json(
        &json!({"role": "tool", "content": format!("result {id}"), "tool_call_id": id}),
    )
    .unwrap()
}

/// Whether the stored entries form a window an LLM accepts: every tool result answers a call
/// before it in the window, and every call has the results that were written with it.
fn is_valid(entries: &[Vec<u8>]) -> bool {
    let mut open: Vec<String> = Vec::new();
    for entry in entries {
        let value: serde_json::Value = serde_json::from_slice(entry).unwrap();
        if let Some(calls) = value["tool_calls"].as_array() {
            if !open.is_empty() {
                return false; // a call left without its result
            }
            open.extend(calls.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        } else if value["role"] == "tool" {
            let id = value["tool_call_id"].as_str().unwrap();
            let Some(at) = open.iter().position(|open| open == id) else {
                return false; // an orphaned result
            };
            open.remove(at);
        } else if !open.is_empty() {
            return false;
        }
    }
    open.is_empty()
}

#[tokio::test]
async fn the_tool_safe_window_in_redis_is_what_the_python_original_reads() {
    let server = RedisServer::start();
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .policy(Policy::tool_safe().unwrap())
        .settings(Settings {
            max_messages: 4,
            ..Settings::default()
        })
        .build()
        .unwrap();
    let turns = [
        vec![Message::system("be terse"), Message::user("u1")],
        vec![call("c1"), result("c1")],
        vec![Message::user("u2")],
        vec![call("c2"), result("c2")],
    ];
    for turn in turns {
        expect_stored(memory.add_messages("s", turn).await.unwrap());
    }
    // Keeping four would start at c1's result: the window starts at the next message instead,
    // and the system message stays in front.
    let python = PythonOriginal::new(&server.url()).get("s");
    assert_eq!(
        python,
        json!([
            {"role": "system", "content": "be terse"},
            {"role": "user", "content": "u2"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "content": "result c2", "tool_call_id": "c2"},
        ])
    );
    let identical = PythonOriginal::new(&server.url()).eval_on_entries(
        "s",
        "all(json.dumps(json.loads(e)).encode() == e for e in entries)",
        "",
    );
    assert_eq!(identical.trim(), "True");
    let ttl = memory.store().ttl("ai:memory:s").await.unwrap();
    assert!(
        matches!(ttl, agent_memory::store::Ttl::ExpiresIn(left) if left > Duration::from_secs(3500))
    );
    // Python writes too (its LTRIM keeps 50): the tool-safe read shows the valid window of
    // four, pinned system message first.
    PythonOriginal::new(&server.url()).add("s", &[r#"{"role": "user", "content": "from python"}"#]);
    let context = memory.get_context("s").await.unwrap();
    let texts: Vec<_> = context.messages.iter().map(|m| m.role()).collect();
    assert_eq!(texts, ["system", "assistant", "tool", "user"]);
    assert_eq!(context.messages[3].text(), Some("from python"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_session_never_leave_a_split_pair() {
    let server = RedisServer::start();
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .policy(Policy::tool_safe().unwrap())
        .settings(Settings {
            max_messages: 6,
            ..Settings::default()
        })
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    let outcomes = Arc::new(std::sync::Mutex::new((0u32, 0u32)));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let memory = memory.clone();
        let outcomes = Arc::clone(&outcomes);
        writers.push(tokio::spawn(async move {
            let mut turn = 0;
            while Instant::now() < until {
                let id = format!("w{writer}-{turn}");
                let batch = if turn % 2 == 0 {
                    vec![call(&id), result(&id)]
                } else {
                    vec![Message::user(id.as_str())]
                };
                let outcome = memory.add_messages("shared", batch).await.unwrap();
                let mut tally = outcomes.lock().unwrap();
                match outcome {
                    WriteOutcome::Stored(_) => tally.0 += 1,
                    WriteOutcome::Failed(StoreError::Conflict) => tally.1 += 1,
                    WriteOutcome::Failed(other) => panic!("write failed: {other}"),
                }
                turn += 1;
            }
        }));
    }
    let mut samples = 0;
    while Instant::now() < until {
        let entries = memory
            .store()
            .entries("ai:memory:shared", 0, -1)
            .await
            .unwrap();
        assert!(entries.len() <= 6, "{} entries", entries.len());
        assert!(is_valid(&entries), "a split pair in {entries:?}");
        samples += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let (stored, conflicts) = *outcomes.lock().unwrap();
    eprintln!(
        "{stored} writes stored, {conflicts} gave up after conflicts, {samples} samples, every one valid"
    );
    assert!(stored > 100, "only {stored} writes stored");
}
