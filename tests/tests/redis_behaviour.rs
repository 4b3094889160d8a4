//! The behaviour suite: the default policy reproduces the Python original exactly, on every
//! kind of Redis deployment — one server, TLS, Sentinel, Sentinel over TLS, a cluster, a TLS
//! cluster — each started for real on loopback ports. Each check on each deployment is a named
//! trial (`deployment::check`), runnable alone; the trials of one deployment share it (a
//! cluster takes seconds to form; the checks use their own sessions and prefixes).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agent_memory::{
    MemoryError, Message, Policy, Settings, StoreError, WriteOutcome, message::EntryProblem,
    report::InvalidMessage,
};
use agent_memory_tests::{
    Deployment, Kind, RedisServer, expect_stored as stored, texts, tricky_messages,
};
use libtest_mimic::{Arguments, Failed, Trial};
use redis::Commands;
use serde_json::{Value, json};

type Check = for<'a> fn(&'a Deployment) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        const CHECKS: &[(&str, Check)] = &[$((stringify!($check), |d| Box::pin($check(d)))),*];
    };
}

checks![
    messages_are_stored_under_the_original_key_as_python_json,
    the_ttl_is_set_on_the_first_write_and_renewed_by_every_write,
    the_configured_ttl_is_the_one_applied,
    the_window_holds_exactly_50_and_the_51st_write_trims_the_oldest,
    a_batch_larger_than_the_window_keeps_its_newest_messages,
    a_window_of_zero_deletes_the_session,
    corrupt_entries_are_skipped_and_counted_and_the_rest_is_returned,
    a_key_holding_a_string_is_reported_and_left_exactly_as_it_was,
    a_foreign_key_keeps_its_own_ttl,
    clear_deletes_the_session_and_only_it,
    sessions_lists_keys_under_the_prefix_even_with_glob_characters,
    an_oversized_message_is_refused_and_nothing_is_written,
    odd_session_ids_are_refused_before_any_io_and_ordinary_odd_ones_work,
    messages_with_tool_calls_and_null_or_absent_content_round_trip,
    concurrent_writers_never_leave_a_list_over_the_window_or_without_a_ttl,
    add_and_get_context_appends_and_reads_the_window_in_one_transaction,
    a_failed_add_and_get_context_degrades_the_context_with_the_write_error,
    the_tool_safe_policy_writes_with_its_expectation_and_never_splits_a_tool_call,
    what_python_writes_we_read_with_every_member_intact,
    our_entries_are_what_python_json_dumps_writes_and_python_reads_them,
    python_and_rust_append_to_one_session_and_share_its_window,
    sessions_spread_over_every_master_and_no_request_is_redirected,
];

/// The deployments, as trial names spell them.
const KINDS: &[(&str, Kind)] = &[
    ("one_server", Kind::Server),
    ("tls", Kind::Tls),
    ("sentinel", Kind::Sentinel),
    ("tls_sentinel", Kind::TlsSentinel),
    ("cluster", Kind::Cluster),
    ("tls_cluster", Kind::TlsCluster),
];

/// One deployment of a kind, started by the first trial that needs it and shared by the
/// kind's trials, which take turns on it (some checks count the server's commands). A
/// deployment that failed to start fails every trial of its kind with the same reason.
#[derive(Default)]
struct Shared {
    deployment: Mutex<Option<Result<Arc<Deployment>, String>>>,
}

impl Shared {
    /// Run `check` on the kind's deployment, alone on it.
    fn run(&self, kind: Kind, check: Check) -> Result<(), Failed> {
        let mut slot = self
            .deployment
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let deployment = slot
            .get_or_insert_with(|| {
                std::panic::catch_unwind(|| Arc::new(Deployment::start(kind)))
                    .map_err(|panic| format!("{kind:?} did not start: {}", panic_text(&*panic)))
            })
            .clone()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| format!("a tokio runtime: {error}"))?;
        // The slot stays locked while the check runs: the kind's trials take turns.
        std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(check(&deployment))))
            .map_err(|panic| Failed::from(panic_text(&*panic)))
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_string()))
        .unwrap_or_else(|| "panicked".to_string())
}

/// Every check on every deployment, each a trial of its own named `deployment::check`
/// (`cargo test --test redis_behaviour -- cluster::a_window_of_zero` runs one). Deployments
/// start only for the trials selected, run side by side, and are stopped once all are done.
fn main() {
    let arguments = Arguments::from_args();
    let shared: Vec<Arc<Shared>> = KINDS.iter().map(|_| Arc::default()).collect();
    let trials = KINDS
        .iter()
        .zip(&shared)
        .flat_map(|(&(kind_name, kind), shared)| {
            CHECKS.iter().map(move |&(check_name, check)| {
                let shared = Arc::clone(shared);
                Trial::test(format!("{kind_name}::{check_name}"), move || {
                    shared.run(kind, check)
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&arguments, trials);
    // Stop every deployment before exiting (`exit` runs no destructors).
    drop(shared);
    conclusion.exit();
}

fn settings(max_messages: u32) -> Settings {
    Settings {
        max_messages,
        ..Settings::default()
    }
}

async fn messages_are_stored_under_the_original_key_as_python_json(d: &Deployment) {
    let memory = d.memory(Settings::default());
    stored(
        memory
            .add_message("abc", Message::user("héllo"))
            .await
            .unwrap(),
    );
    let entries: Vec<Vec<u8>> = d.raw().lrange("ai:memory:abc", 0, -1).unwrap();
    assert_eq!(
        entries,
        vec![br#"{"role": "user", "content": "h\u00e9llo"}"#.to_vec()]
    );
}

async fn the_ttl_is_set_on_the_first_write_and_renewed_by_every_write(d: &Deployment) {
    let memory = d.memory(Settings::default());
    let mut redis = d.raw();
    let key = "ai:memory:ttl";
    stored(memory.add_message("ttl", Message::user("1")).await.unwrap());
    let ttl: i64 = redis.ttl(key).unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl after first write: {ttl}");

    let _: () = redis.expire(key, 10).unwrap();
    stored(memory.add_message("ttl", Message::user("2")).await.unwrap());
    let ttl: i64 = redis.ttl(key).unwrap();
    assert!(
        (3590..=3600).contains(&ttl),
        "ttl after second write: {ttl}"
    );

    let _: () = redis.expire(key, 10).unwrap();
    stored(
        memory
            .add_messages("ttl", [Message::user("3"), Message::assistant("4")])
            .await
            .unwrap(),
    );
    let ttl: i64 = redis.ttl(key).unwrap();
    assert!(
        (3590..=3600).contains(&ttl),
        "ttl after a batch write: {ttl}"
    );
}

async fn the_configured_ttl_is_the_one_applied(d: &Deployment) {
    let memory = d.memory(Settings {
        ttl_seconds: 120,
        ..Settings::default()
    });
    stored(
        memory
            .add_message("ttl-120", Message::user("x"))
            .await
            .unwrap(),
    );
    let ttl: i64 = d.raw().ttl("ai:memory:ttl-120").unwrap();
    assert!((110..=120).contains(&ttl), "{ttl}");
}

async fn the_window_holds_exactly_50_and_the_51st_write_trims_the_oldest(d: &Deployment) {
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

async fn a_batch_larger_than_the_window_keeps_its_newest_messages(d: &Deployment) {
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

async fn a_window_of_zero_deletes_the_session(d: &Deployment) {
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

async fn corrupt_entries_are_skipped_and_counted_and_the_rest_is_returned(d: &Deployment) {
    let mut redis = d.raw();
    let entries: [&[u8]; 6] = [
        br#"{"role": "user", "content": "first"}"#,
        b"{not json",
        b"\xff\xfe\x00",
        br#"["an", "array"]"#,
        br#"{"content": "no role"}"#,
        br#"{"role": "assistant", "content": "last"}"#,
    ];
    for entry in entries {
        let _: () = redis.rpush("ai:memory:corrupt", entry).unwrap();
    }
    let context = d
        .memory(Settings::default())
        .get_context("corrupt")
        .await
        .unwrap();
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

async fn a_key_holding_a_string_is_reported_and_left_exactly_as_it_was(d: &Deployment) {
    let mut redis = d.raw();
    let _: () = redis.set("ai:memory:foreign", "someone else's").unwrap();
    let memory = d.memory(Settings::default());

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

async fn a_foreign_key_keeps_its_own_ttl(d: &Deployment) {
    let mut redis = d.raw();
    let _: () = redis.hset("ai:memory:h", "field", "value").unwrap();
    let _: () = redis.expire("ai:memory:h", 77).unwrap();
    let outcome = d
        .memory(Settings::default())
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

async fn clear_deletes_the_session_and_only_it(d: &Deployment) {
    let memory = d.memory(Settings {
        key_prefix: "clear:".to_string(),
        ..Settings::default()
    });
    stored(memory.add_message("a", Message::user("x")).await.unwrap());
    stored(memory.add_message("b", Message::user("y")).await.unwrap());
    stored(memory.clear("a").await.unwrap());
    let mut redis = d.raw();
    assert!(!redis.exists::<_, bool>("clear:a").unwrap());
    assert!(redis.exists::<_, bool>("clear:b").unwrap());
    assert_eq!(memory.sessions().await.unwrap(), [b"b".to_vec()]);
}

async fn sessions_lists_keys_under_the_prefix_even_with_glob_characters(d: &Deployment) {
    let mut redis = d.raw();
    let _: () = redis.set("unrelated", "x").unwrap();
    let _: () = redis.set("ai:memoryX", "x").unwrap();
    let memory = d.memory(Settings {
        key_prefix: "t[1]*:".to_string(),
        ..Settings::default()
    });
    let _: () = redis.set("t1x:other", "x").unwrap();
    // Enough sessions to land on every master of a cluster.
    let mut expected = Vec::new();
    for i in 0..20 {
        let session = format!("s{i:02}");
        stored(
            memory
                .add_message(session.as_str(), Message::user("x"))
                .await
                .unwrap(),
        );
        expected.push(session.into_bytes());
    }
    assert_eq!(memory.sessions().await.unwrap(), expected);
}

async fn an_oversized_message_is_refused_and_nothing_is_written(d: &Deployment) {
    let memory = d.memory(Settings {
        max_message_bytes: 100,
        ..Settings::default()
    });
    stored(
        memory
            .add_message("oversized", Message::user("small"))
            .await
            .unwrap(),
    );
    let error = memory
        .add_messages(
            "oversized",
            [Message::user("ok"), Message::user("x".repeat(200))],
        )
        .await
        .unwrap_err();
    match error {
        MemoryError::InvalidMessage {
            index: 1,
            reason: InvalidMessage::TooLarge { actual, limit: 100 },
        } => assert!(actual > 200),
        other => panic!("expected too-large, got {other:?}"),
    }
    assert_eq!(
        texts(&memory.get_context("oversized").await.unwrap()),
        ["small"]
    );
}

async fn odd_session_ids_are_refused_before_any_io_and_ordinary_odd_ones_work(d: &Deployment) {
    let memory = d.memory(Settings {
        key_prefix: "odd:".to_string(),
        ..Settings::default()
    });
    for bad in ["", "a\nb", "nul\0"] {
        assert!(matches!(
            memory.get_context(bad).await,
            Err(MemoryError::InvalidSession(_))
        ));
    }
    let long = "x".repeat(agent_memory::session::MAX_SESSION_ID_BYTES + 1);
    assert!(
        memory
            .add_message(long.as_str(), Message::user("x"))
            .await
            .is_err()
    );
    // Braces make a hash tag on a cluster, as they do for the Python original's keys.
    for odd in [
        "with space",
        "ключ",
        "a:b:c",
        "*",
        "emoji 😀",
        "{tag}x",
        "x{}",
    ] {
        stored(memory.add_message(odd, Message::user(odd)).await.unwrap());
        assert_eq!(texts(&memory.get_context(odd).await.unwrap()), [odd]);
    }
    let keys: Vec<String> = d.raw().keys("odd:*").unwrap();
    assert_eq!(keys.len(), 7, "{keys:?}");
}

async fn messages_with_tool_calls_and_null_or_absent_content_round_trip(d: &Deployment) {
    let memory = d.memory(Settings::default());
    let call = Message::from_json(&json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]
    }))
    .unwrap();
    let result = Message::new("tool", "42").with("tool_call_id", json!("c1"));
    let bare = Message::from_json(&json!({"role": "assistant", "tool_calls": []})).unwrap();
    let parts = Message::from_json(&json!({
        "role": "user", "content": [{"type": "text", "text": "hi"}]
    }))
    .unwrap();
    let all = vec![call, result, bare, parts];
    stored(memory.add_messages("tools", all.clone()).await.unwrap());
    let context = memory.get_context("tools").await.unwrap();
    assert_eq!(context.messages, all);
    assert_eq!(context.messages[2].content(), None);
}

async fn concurrent_writers_never_leave_a_list_over_the_window_or_without_a_ttl(d: &Deployment) {
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
fn command_calls(server: &RedisServer, command: &str) -> (u64, u64) {
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

async fn add_and_get_context_appends_and_reads_the_window_in_one_transaction(d: &Deployment) {
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

async fn a_failed_add_and_get_context_degrades_the_context_with_the_write_error(d: &Deployment) {
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

async fn the_tool_safe_policy_writes_with_its_expectation_and_never_splits_a_tool_call(
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

async fn what_python_writes_we_read_with_every_member_intact(d: &Deployment) {
    let python = d.python();
    let written: Vec<String> = tricky_messages().iter().map(Value::to_string).collect();
    let args: Vec<&str> = written.iter().map(String::as_str).collect();
    python.add("from-python", &args);
    let context = d
        .memory(Settings::default())
        .get_context("from-python")
        .await
        .unwrap();
    assert_eq!(context.skipped, []);
    assert_eq!(context.degraded, None);
    let read: Vec<Value> = context
        .messages
        .iter()
        .map(|message| message.to_json().unwrap())
        .collect();
    assert_eq!(read, tricky_messages());
    // And what Python reads back of its own writes agrees.
    assert_eq!(python.get("from-python"), Value::Array(tricky_messages()));
}

async fn our_entries_are_what_python_json_dumps_writes_and_python_reads_them(d: &Deployment) {
    let messages: Vec<Message> = tricky_messages()
        .into_iter()
        .map(|value| Message::from_json(&value).unwrap())
        .collect();
    let memory = d.memory(Settings::default());
    stored(memory.add_messages("to-python", messages).await.unwrap());
    let python = d.python();
    // json.loads gives dicts equal (==, member order aside) to what was written, every member
    // intact: as the original returns them, and entry by entry.
    assert_eq!(python.get("to-python"), Value::Array(tricky_messages()));
    let equal = python.eval_on_entries(
        "to-python",
        "[json.loads(e) for e in entries] == json.loads(arg)",
        &Value::Array(tricky_messages()).to_string(),
    );
    assert_eq!(equal, "True");
    // Byte for byte what json.dumps writes, for messages in the member order a dict literal
    // gives (role, content, ...): ours writes role and content first.
    let role_first: Vec<Message> = tricky_messages()
        .into_iter()
        .filter(|value| {
            value.as_object().unwrap().keys().next().map(String::as_str) == Some("role")
        })
        .map(|value| Message::from_json(&value).unwrap())
        .collect();
    let count = role_first.len();
    assert!(count >= 6);
    stored(
        memory
            .add_messages("to-python-bytes", role_first)
            .await
            .unwrap(),
    );
    let identical = python.eval_on_entries(
        "to-python-bytes",
        "len(entries) == int(arg) and all(json.dumps(json.loads(e)).encode() == e for e in entries)",
        &count.to_string(),
    );
    assert_eq!(identical, "True");
}

async fn python_and_rust_append_to_one_session_and_share_its_window(d: &Deployment) {
    let memory = d.memory(settings(6));
    let python = d.python();
    for i in 0..5 {
        // The original's own window is 50; ours trims to 6 on each of our writes.
        python.add(
            "shared",
            &[&json!({"role": "user", "content": format!("py {i}")}).to_string()],
        );
        stored(
            memory
                .add_message("shared", Message::assistant(format!("rs {i}")))
                .await
                .unwrap(),
        );
    }
    let ours: Vec<Value> = memory
        .get_context("shared")
        .await
        .unwrap()
        .messages
        .iter()
        .map(|message| message.to_json().unwrap())
        .collect();
    assert_eq!(ours.len(), 6);
    assert_eq!(Value::Array(ours.clone()), python.get("shared"));
    assert_eq!(ours[0], json!({"role": "user", "content": "py 2"}));
    assert_eq!(ours[5], json!({"role": "assistant", "content": "rs 4"}));
}

/// The commands the default policy sends, and EXEC (refused when a queued command was).
const KEYED_COMMANDS: [&str; 6] = ["pttl", "rpush", "ltrim", "expire", "lrange", "exec"];

async fn sessions_spread_over_every_master_and_no_request_is_redirected(d: &Deployment) {
    let memory = d.memory(Settings {
        key_prefix: "spread:".to_string(),
        ..Settings::default()
    });
    let servers = d.masters();
    let rejected_before: Vec<u64> = servers
        .iter()
        .map(|server| {
            KEYED_COMMANDS
                .iter()
                .map(|command| command_calls(server, command).1)
                .sum()
        })
        .collect();
    let sessions: Vec<String> = (0..60).map(|i| format!("spread-{i}")).collect();
    for session in &sessions {
        stored(
            memory
                .add_message(session.as_str(), Message::user("x"))
                .await
                .unwrap(),
        );
        assert_eq!(
            texts(&memory.get_context(session.as_str()).await.unwrap()),
            ["x"]
        );
    }
    for (server, before) in servers.iter().zip(rejected_before) {
        // Routed by our own slot computation, every request met its master the first time.
        let rejected: u64 = KEYED_COMMANDS
            .iter()
            .map(|command| command_calls(server, command).1)
            .sum();
        assert_eq!(rejected, before, "requests redirected by {}", server.url());
        let mut redis = server.connection();
        let held: Vec<String> = redis.keys("spread:*").unwrap();
        assert!(
            !held.is_empty(),
            "no session landed on {} of {} servers",
            server.url(),
            servers.len()
        );
    }
    assert_eq!(memory.sessions().await.unwrap().len(), sessions.len());
}
