//! The window: exactly 50, a batch larger than it, a window of 0, concurrent writers, add-and-get in one transaction, and the tool-safe policy's expectation.

use super::*;

pub(super) async fn the_window_holds_exactly_50_and_the_51st_write_trims_the_oldest(
    d: &Deployment,
) {
    let memory = d.memory(Settings::default());
    for i in 1..=50 {
        let report = stored(
            memory
                .add_message("window", Message::user(i.to_string()))
                .await
                .unwrap(),
        );
        assert_eq!((report.length, report.trimmed), (i, 0));
    }
    let mut redis = d.raw();
    assert_eq!(redis.llen::<_, u32>("ai:memory:window").unwrap(), 50);
    let context = memory.get_context("window").await.unwrap();
    assert_eq!(texts(&context).first().map(String::as_str), Some("1"));
    assert_eq!(context.messages.len(), 50);

    let report = stored(
        memory
            .add_message("window", Message::user("51"))
            .await
            .unwrap(),
    );
    assert_eq!((report.appended, report.trimmed, report.length), (1, 1, 50));
    assert_eq!(redis.llen::<_, u32>("ai:memory:window").unwrap(), 50);
    let context = memory.get_context("window").await.unwrap();
    let expected: Vec<String> = (2..=51).map(|i| i.to_string()).collect();
    assert_eq!(texts(&context), expected);
}

pub(super) async fn a_batch_larger_than_the_window_keeps_its_newest_messages(d: &Deployment) {
    let memory = d.memory(settings(3));
    stored(
        memory
            .add_message("batch", Message::user("old"))
            .await
            .unwrap(),
    );
    let batch: Vec<Message> = (1..=5).map(|i| Message::user(i.to_string())).collect();
    let report = stored(memory.add_messages("batch", batch).await.unwrap());
    assert_eq!((report.appended, report.trimmed, report.length), (3, 3, 3));
    assert_eq!(
        texts(&memory.get_context("batch").await.unwrap()),
        ["3", "4", "5"]
    );
}

pub(super) async fn a_window_of_zero_deletes_the_session(d: &Deployment) {
    let mut redis = d.raw();
    let _: () = redis
        .rpush("ai:memory:zero", r#"{"role": "user", "content": "old"}"#)
        .unwrap();
    let memory = d.memory(settings(0));
    let report = stored(
        memory
            .add_message("zero", Message::user("new"))
            .await
            .unwrap(),
    );
    assert_eq!(report.length, 0);
    assert!(!redis.exists::<_, bool>("ai:memory:zero").unwrap());
    assert!(
        memory
            .get_context("zero")
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

pub(super) async fn concurrent_writers_never_leave_a_list_over_the_window_or_without_a_ttl(
    d: &Deployment,
) {
    let memory = d.memory(settings(5));
    let key = "ai:memory:hot";
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

    // Watch from another connection, on the server that holds the key, while the writers
    // run: each observation is one MULTI, so the length and the TTL belong to the same moment.
    let writers_done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let url = d.server_for(key.as_bytes()).url();
        let writers_done = Arc::clone(&writers_done);
        tokio::task::spawn_blocking(move || {
            let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut observations = 0u32;
            while !writers_done.load(Ordering::Acquire) {
                let (exists, length, ttl): (bool, u32, i64) = redis::pipe()
                    .atomic()
                    .exists(key)
                    .llen(key)
                    .ttl(key)
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

/// `(calls, rejected calls)` of a Redis command so far on `server` (INFO commandstats; a
/// cluster counts a redirected command as rejected).
pub(super) fn command_calls(server: &RedisServer, command: &str) -> (u64, u64) {
    let stats = server.info("commandstats");
    let Some(line) = stats
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:")))
    else {
        return (0, 0);
    };
    let field = |name: &str| {
        line.split(',')
            .find_map(|field| field.strip_prefix(&format!("{name}=")))
            .map_or(0, |value| value.parse().unwrap())
    };
    (field("calls"), field("rejected_calls"))
}

pub(super) async fn add_and_get_context_appends_and_reads_the_window_in_one_transaction(
    d: &Deployment,
) {
    let memory = d.memory(Settings::default());
    let history: Vec<Message> = (0..50).map(|i| Message::user(format!("m{i}"))).collect();
    stored(memory.add_messages("combined", history).await.unwrap());
    let server = d.server_for(b"ai:memory:combined");
    let (exec, lrange) = (
        command_calls(server, "exec").0,
        command_calls(server, "lrange").0,
    );

    let turn = memory
        .add_and_get_context("combined", [Message::user("new")])
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
    assert_eq!(command_calls(server, "exec").0, exec + 1);
    assert_eq!(command_calls(server, "lrange").0, lrange + 1);
    // The same entries a separate read returns, and a TTL as after any write.
    assert_eq!(memory.get_context("combined").await.unwrap(), turn.context);
    assert!(d.raw().ttl::<_, i64>("ai:memory:combined").unwrap() > 3500);
}

pub(super) async fn a_failed_add_and_get_context_degrades_the_context_with_the_write_error(
    d: &Deployment,
) {
    let mut redis = d.raw();
    let _: () = redis.set("ai:memory:foreign-turn", "x").unwrap();
    let turn = d
        .memory(Settings::default())
        .add_and_get_context("foreign-turn", [Message::user("x")])
        .await
        .unwrap();
    assert_eq!(turn.outcome, WriteOutcome::Failed(StoreError::WrongType));
    assert_eq!(turn.context.degraded, Some(StoreError::WrongType));
    assert_eq!(
        redis.get::<_, String>("ai:memory:foreign-turn").unwrap(),
        "x"
    );
}

pub(super) async fn the_tool_safe_policy_writes_with_its_expectation_and_never_splits_a_tool_call(
    d: &Deployment,
) {
    let memory = agent_memory::Memory::builder()
        .store(agent_memory::StoreSpec::parse(d.url()).unwrap())
        .redis_options(d.redis_options())
        .policy(Policy::tool_safe().unwrap())
        .settings(settings(3))
        .build()
        .unwrap();
    let call = Message::from_json(
        &json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
    )
    .unwrap();
    let result = Message::new("tool", "r").with("tool_call_id", json!("t1"));
    stored(
        memory
            .add_messages("tool-safe", [Message::user("q"), call, result])
            .await
            .unwrap(),
    );
    // A window of 3 that kept the last three would start at the call's result: the policy
    // keeps the call with it instead, then the new message.
    stored(
        memory
            .add_message("tool-safe", Message::user("next"))
            .await
            .unwrap(),
    );
    let entries: Vec<Vec<u8>> = d.raw().lrange("ai:memory:tool-safe", 0, -1).unwrap();
    let roles: Vec<String> = entries
        .iter()
        .map(|entry| {
            let value: Value = serde_json::from_slice(entry).unwrap();
            value["role"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(roles, ["assistant", "tool", "user"]);
    // Someone else's value: the script refuses it before changing anything.
    let _: () = d.raw().set("ai:memory:tool-safe-foreign", "x").unwrap();
    assert_eq!(
        memory
            .add_message("tool-safe-foreign", Message::user("x"))
            .await
            .unwrap(),
        WriteOutcome::Failed(StoreError::WrongType)
    );
    assert_eq!(
        d.raw()
            .ttl::<_, i64>("ai:memory:tool-safe-foreign")
            .unwrap(),
        -1
    );
}
