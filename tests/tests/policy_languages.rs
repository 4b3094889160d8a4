//! Policies written in Python and JavaScript (examples/policies), built with componentize-py
//! `--stub-wasi` and ComponentizeJS `--disable all`: they load in the default sandbox, pass the
//! self-check, store exactly what the built-in policy and the Python original store, serve
//! agent components, are swapped in and out under load, and when they misbehave they are
//! contained like any policy. The exactness properties over generated messages are in
//! interop_properties.rs (`*_example_policy_*`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent_memory::{
    Limits, LoadError, Memory, MemoryError, Message, Policy, PolicyError, PolicyRuntime,
    RuntimeConfig, StoreSpec,
};
use agent_memory_tests::agent::ChatAgentRuntime;
use agent_memory_tests::language_policies::{
    hostile_js, hostile_python, redact_python, window_js, window_python, window_python_wasm,
};
use agent_memory_tests::{PythonOriginal, RedisServer, expect_stored, texts, tricky_messages};

/// Each language's window, with its name.
fn windows() -> [(&'static str, Policy); 2] {
    [("python", window_python()), ("javascript", window_js())]
}

fn memory_on(server: &RedisServer, policy: Policy) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .policy(policy)
        .build()
        .unwrap()
}

fn raw_entries(server: &RedisServer, key: &str) -> Vec<Vec<u8>> {
    let mut connection = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(&mut connection)
        .unwrap()
}

#[tokio::test]
async fn each_language_policy_passes_the_checks_a_swap_runs() {
    for (name, policy) in windows().into_iter().chain([("redact", redact_python())]) {
        let memory = Memory::builder()
            .store(StoreSpec::InMemory)
            .policy(Policy::default_policy().unwrap())
            .build()
            .unwrap();
        // The swap runs the self-check of the memory contract (write, read back, turn, clear).
        memory
            .replace_policy(policy.clone())
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(memory.policy().digest(), policy.digest(), "{name}");
        assert!(
            policy
                .imports()
                .iter()
                .all(|import| import.starts_with("agent-memory:policy/")),
            "{name} imports {:?}",
            policy.imports()
        );
    }
}

#[tokio::test]
async fn each_language_policy_stores_the_bytes_the_built_in_policy_stores_and_reads_them_back() {
    let server = RedisServer::start();
    let messages: Vec<Message> = tricky_messages()
        .into_iter()
        .map(|value| Message::from_json(&value).unwrap())
        .collect();
    let reference = memory_on(&server, Policy::default_policy().unwrap());
    expect_stored(
        reference
            .add_messages("reference", messages.clone())
            .await
            .unwrap(),
    );
    let expected = raw_entries(&server, "ai:memory:reference");
    for (name, policy) in windows() {
        let memory = memory_on(&server, policy);
        let session = format!("written-by-{name}");
        // One at a time and as a batch: both ways must write the same bytes.
        for message in &messages[..3] {
            expect_stored(
                memory
                    .add_message(session.as_str(), message.clone())
                    .await
                    .unwrap(),
            );
        }
        expect_stored(
            memory
                .add_messages(session.as_str(), messages[3..].to_vec())
                .await
                .unwrap(),
        );
        let stored = raw_entries(&server, &format!("ai:memory:{session}"));
        assert_eq!(stored, expected, "{name} wrote other bytes");
        let context = memory.get_context(session.as_str()).await.unwrap();
        assert_eq!(context.messages, messages, "{name} read back");
        let turn = memory
            .add_and_get_context(session.as_str(), [Message::user("and now?")])
            .await
            .unwrap();
        expect_stored(turn.outcome);
        assert_eq!(turn.context.messages.len(), messages.len() + 1, "{name}");
        // What the reference policy wrote, this one reads the same.
        let theirs = memory.get_context("reference").await.unwrap();
        assert_eq!(
            theirs.messages, messages,
            "{name} reading the built-in's entries"
        );
    }
}

#[tokio::test]
async fn the_python_original_reads_what_each_language_policy_wrote_and_the_other_way_round() {
    let server = RedisServer::start();
    let original = PythonOriginal::new(&server.url());
    for (name, policy) in windows() {
        let memory = memory_on(&server, policy);
        let session = format!("py-{name}");
        for text in ["first", "second, ünïcode 日本"] {
            expect_stored(
                memory
                    .add_message(session.as_str(), Message::user(text))
                    .await
                    .unwrap(),
            );
        }
        let read = original.get(&session);
        assert_eq!(
            read,
            serde_json::json!([
                {"role": "user", "content": "first"},
                {"role": "user", "content": "second, ünïcode 日本"}
            ]),
            "{name}"
        );
        original.add(&session, &[r#"{"role": "user", "content": "from python"}"#]);
        let context = memory.get_context(session.as_str()).await.unwrap();
        assert_eq!(
            texts(&context),
            ["first", "second, ünïcode 日本", "from python"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_window_keeps_the_newest_messages_and_skips_entries_that_are_not_messages() {
    let server = RedisServer::start();
    for (name, policy) in windows() {
        let memory = Memory::builder()
            .store(StoreSpec::parse(&server.url()).unwrap())
            .policy(policy)
            .settings(agent_memory::Settings {
                max_messages: 3,
                ..agent_memory::Settings::default()
            })
            .build()
            .unwrap();
        let session = format!("window-{name}");
        for i in 0..5 {
            let stored = expect_stored(
                memory
                    .add_message(session.as_str(), Message::user(format!("m{i}")))
                    .await
                    .unwrap(),
            );
            assert_eq!(stored.length, (i + 1).min(3), "{name}");
        }
        let key = format!("ai:memory:{session}");
        let mut connection = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut connection).unwrap();
        assert!((3590..=3600).contains(&ttl), "{name}: ttl {ttl}");
        let _: i64 = redis::cmd("RPUSH")
            .arg(&key)
            .arg(&b"{broken"[..])
            .query(&mut connection)
            .unwrap();
        let context = memory.get_context(session.as_str()).await.unwrap();
        assert_eq!(texts(&context), ["m3", "m4"], "{name}");
        assert_eq!(context.skipped.len(), 1, "{name}");
        assert_eq!(context.skipped[0].position, 2, "{name}");
    }
}

#[tokio::test]
async fn the_redacting_policy_stores_no_address_and_no_secret() {
    let server = RedisServer::start();
    let memory = memory_on(&server, redact_python());
    let parts = Message::from_json(&serde_json::json!({
        "role": "user",
        "content": [
            {"type": "text", "text": "key sk-abcdefghijklmnopqrstuvwx please"},
            {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}
        ]
    }))
    .unwrap();
    expect_stored(
        memory
            .add_messages(
                "s",
                [
                    Message::user("mail me at ada.lovelace@example.com, token ghp_0123456789abcdefghijABCDEFGHIJ012345"),
                    parts,
                ],
            )
            .await
            .unwrap(),
    );
    let stored: Vec<String> = raw_entries(&server, "ai:memory:s")
        .into_iter()
        .map(|entry| String::from_utf8(entry).unwrap())
        .collect();
    let all = stored.join("\n");
    for secret in [
        "ada.lovelace@example.com",
        "sk-abcdefghij",
        "ghp_0123456789",
    ] {
        assert!(!all.contains(secret), "{secret} was stored: {all}");
    }
    assert!(all.contains("mail me at"), "{all}");
    assert!(all.contains("https://example.invalid/a.png"), "{all}");
}

#[tokio::test]
async fn an_agent_component_keeps_its_conversation_through_each_language_policy() {
    let server = RedisServer::start();
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let agents = ChatAgentRuntime::new(&engine).unwrap();
    for (name, policy) in windows() {
        let memory = memory_on(&server, policy);
        let mut agent = agents.instantiate(memory, name).await.unwrap();
        agent.turn("talk", "hello").await.unwrap().unwrap();
        agent.turn("talk", "again").await.unwrap().unwrap();
        let transcript = agent.transcript("talk").await.unwrap().unwrap();
        assert_eq!(transcript.len(), 4, "{name}: {transcript:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_policies_are_swapped_in_and_out_under_load_without_a_failed_call() {
    const WRITERS: usize = 4;
    const SWAPS: usize = 12;
    let server = RedisServer::start();
    let memory = memory_on(&server, Policy::default_policy().unwrap());
    let policies = [
        Policy::default_policy().unwrap(),
        window_python(),
        window_js(),
    ];
    let failures = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(6);
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (memory, failures, calls) = (memory.clone(), failures.clone(), calls.clone());
            tokio::spawn(async move {
                let session = format!("load-{writer}");
                let mut written = 0u32;
                let mut problems = Vec::new();
                while Instant::now() < until {
                    let turn = memory
                        .add_and_get_context(
                            session.as_str(),
                            [Message::user(format!("{session}-{written}"))],
                        )
                        .await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    match turn {
                        Ok(turn) if turn.outcome.is_stored() => {
                            written += 1;
                            let first = written.saturating_sub(50);
                            let expected: Vec<String> =
                                (first..written).map(|i| format!("{session}-{i}")).collect();
                            if texts(&turn.context) != expected {
                                failures.fetch_add(1, Ordering::Relaxed);
                                problems.push(format!("history after {written}"));
                            }
                        }
                        other => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            problems.push(format!("{other:?}"));
                        }
                    }
                }
                problems
            })
        })
        .collect();
    for swap in 0..SWAPS {
        let next = policies[(swap + 1) % policies.len()].clone();
        memory.replace_policy(next).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut problems = Vec::new();
    for writer in writers {
        problems.extend(writer.await.unwrap());
    }
    println!(
        "{} calls across {SWAPS} swaps, {} failed",
        calls.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert!(calls.load(Ordering::Relaxed) > (WRITERS * SWAPS) as u64);
}

/// Messages of the shapes that cost an interpreted policy the most per byte (measured by the
/// example policies' authors: lists of small objects and of numbers for CPython, emoji and
/// non-Latin scripts for SpiderMonkey), each about `bytes` long.
fn costly_messages(bytes: usize) -> Vec<Message> {
    let objects: Vec<serde_json::Value> = (0..bytes / 24)
        .map(|i| serde_json::json!({"k": i, "v": [i, -1.5]}))
        .collect();
    let floats: Vec<f64> = (0..bytes / 20).map(|i| i as f64 * 1.000_000_1).collect();
    let shapes = [
        serde_json::json!({"role": "tool", "tool_call_id": "c1", "content": objects}),
        serde_json::json!({"role": "user", "content": "😀🎉 日本語のテキスト ".repeat(bytes / 40)}),
        serde_json::json!({"role": "assistant", "content": null, "data": floats}),
        serde_json::json!({"role": "user", "content": "Ça coûte très cher, n’est-ce pas ? ".repeat(bytes / 40)}),
    ];
    shapes
        .iter()
        .map(|value| Message::from_json(value).unwrap())
        .collect()
}

#[tokio::test]
async fn a_full_window_of_the_costliest_shapes_fits_the_default_budget() {
    let server = RedisServer::start();
    let window: Vec<Message> = costly_messages(16 << 10)
        .into_iter()
        .cycle()
        .take(50)
        .collect();
    for (name, policy) in windows() {
        let memory = memory_on(&server, policy);
        let session = format!("costly-{name}");
        for message in &window {
            expect_stored(
                memory
                    .add_message(session.as_str(), message.clone())
                    .await
                    .unwrap_or_else(|error| panic!("{name} writing: {error:?}")),
            );
        }
        let started = Instant::now();
        let context = memory
            .get_context(session.as_str())
            .await
            .unwrap_or_else(|error| panic!("{name} reading: {error}"));
        println!(
            "{name}: a window of 50 messages of 16 KiB read in {:?}",
            started.elapsed()
        );
        assert_eq!(context.messages, window, "{name}");
    }
}

/// The hostile policies' behaviours, by session id prefix.
const MISBEHAVIOURS: [&str; 4] = ["loop", "alloc", "raise", "bad-output"];

#[tokio::test]
async fn misbehaving_python_and_javascript_policies_are_contained_with_typed_errors() {
    for (language, policy) in [("python", hostile_python()), ("javascript", hostile_js())] {
        let memory = Memory::builder()
            .store(StoreSpec::InMemory)
            .policy(policy)
            .limits(Limits {
                // Compute enough for an allocation to reach the memory cap (zeroing 64 MiB
                // takes an interpreter hundreds of millions of instructions), so that each way
                // of misbehaving meets the limit it is about.
                fuel_base: 4_000_000_000,
                memory_bytes: 128 << 20,
                ..Limits::default()
            })
            .settings(agent_memory::Settings {
                max_message_bytes: 64 << 10,
                ..agent_memory::Settings::default()
            })
            .build()
            .unwrap();
        for behaviour in MISBEHAVIOURS {
            let started = Instant::now();
            let error = memory
                .get_context(format!("{behaviour}-1").as_str())
                .await
                .expect_err(&format!("{language} {behaviour} was not refused"));
            let MemoryError::Policy(error) = error else {
                panic!("{language} {behaviour}: {error:?}");
            };
            let expected = match behaviour {
                "loop" => matches!(error, PolicyError::ComputeBudgetExceeded { .. }),
                "alloc" => matches!(error, PolicyError::Trapped { .. }),
                // The exception's own words reach the error: the templates' export wrappers log
                // them as the host's panic line before the trap.
                "raise" => matches!(
                    &error,
                    PolicyError::Trapped { panic: Some(words), .. } if words.contains("hostile policy")
                ),
                _ => matches!(error, PolicyError::InvalidOutput(_)),
            };
            assert!(expected, "{language} {behaviour}: {error:?}");
            println!("{language} {behaviour}: {error} ({:?})", started.elapsed());
            // The next call gets a fresh instance and is served.
            let context = memory.get_context("well-behaved").await.unwrap();
            assert_eq!(context.degraded, None, "{language} after {behaviour}");
        }
    }
}

#[test]
fn a_sandbox_too_small_for_a_component_names_the_setting_that_raises_it() {
    let runtime = PolicyRuntime::new(RuntimeConfig {
        max_core_instances_per_component: 4,
        max_concurrent_calls: 4,
        max_idle_instances: 0,
        idle_timeout: Duration::ZERO,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let error = runtime
        .load(&window_python_wasm(), "window-python")
        .expect_err("a 4-instance sandbox cannot hold CPython");
    assert!(
        matches!(
            error,
            LoadError::ExceedsSandbox {
                setting: "max_core_instances_per_component",
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("RuntimeConfig::max_core_instances_per_component"),
        "{text}"
    );
}

#[test]
fn a_compiled_policy_is_loaded_from_the_cache_on_the_next_load() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = small_runtime();
    let started = Instant::now();
    let first = runtime
        .load_cached(&window_python_wasm(), "window-python", cache.path())
        .unwrap();
    let compiled_in = started.elapsed();
    let artifact = &only_file(cache.path());
    assert!(
        artifact
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(first.digest()),
        "{artifact:?}"
    );
    // Reused: the cache entry is what loads, so a different (valid) artifact under the
    // component's name is what serves. Proven with the tool-safe policy's artifact, which
    // declares settings where the Python window declares none.
    assert!(first.settings().is_empty());
    let other = tempfile::tempdir().unwrap();
    runtime
        .load_cached(
            agent_memory::policy::TOOL_SAFE_POLICY_WASM,
            "tool-safe",
            other.path(),
        )
        .unwrap();
    std::fs::copy(only_file(other.path()), artifact).unwrap();
    let started = Instant::now();
    let reused = runtime
        .load_cached(&window_python_wasm(), "window-python", cache.path())
        .unwrap();
    println!(
        "compiled in {compiled_in:?}; loaded from the cache in {:?}",
        started.elapsed()
    );
    assert!(
        !reused.settings().is_empty(),
        "the artifact in the cache was not what loaded"
    );
}

#[test]
fn an_artifact_compiled_under_another_configuration_is_recompiled_and_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = small_runtime();
    let bytes = agent_memory::policy::DEFAULT_POLICY_WASM;
    runtime.load_cached(bytes, "default", cache.path()).unwrap();
    let artifact = only_file(cache.path());
    // The same component compiled without fuel metering: another configuration, whose code
    // must never run under this runtime (it would ignore the compute budget).
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let foreign =
        wasmtime::component::Component::new(&wasmtime::Engine::new(&config).unwrap(), bytes)
            .unwrap()
            .serialize()
            .unwrap();
    std::fs::write(&artifact, &foreign).unwrap();
    let policy = runtime.load_cached(bytes, "default", cache.path()).unwrap();
    assert_eq!(policy.digest(), Policy::default_policy().unwrap().digest());
    let replaced = std::fs::read(&artifact).unwrap();
    assert_ne!(replaced, foreign, "the foreign artifact was kept");
}

/// A runtime of its own, small, keeping no idle instance: for tests of loading.
fn small_runtime() -> PolicyRuntime {
    PolicyRuntime::new(RuntimeConfig {
        max_concurrent_calls: 4,
        max_idle_instances: 0,
        idle_timeout: Duration::ZERO,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// The one file in `dir`.
fn only_file(dir: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// 200 calls (add, then read the window) of one handle on `policy`; the instances they took.
async fn instances_for_200_calls(runtime: &PolicyRuntime, name: &str, bytes: &[u8]) -> u64 {
    let policy = runtime
        .load_cached(
            bytes,
            name,
            &agent_memory_tests::language_policies::compile_cache(),
        )
        .unwrap();
    let memory = Memory::builder().policy(policy).build().unwrap();
    let before = runtime.instantiations();
    for turn in 0..100 {
        let text = format!("message {turn} {}", "x".repeat(500));
        expect_stored(memory.add_message("s", Message::user(text)).await.unwrap());
        let context = memory.get_context("s").await.unwrap();
        assert_eq!(context.messages.len(), (turn + 1).min(50), "{name}");
    }
    runtime.instantiations() - before
}

#[tokio::test]
async fn a_warm_interpreter_instance_serves_many_calls_before_it_is_replaced() {
    use agent_memory_tests::language_policies::window_js_wasm;
    let runtime = |reuse_memory_growth| {
        PolicyRuntime::new(RuntimeConfig {
            reuse_limit: 500,
            reuse_memory_growth,
            max_concurrent_calls: 8,
            max_idle_instances: 8,
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    // CPython's heap settles within the default growth allowance (1 MiB): one instance.
    let python = instances_for_200_calls(&runtime(1 << 20), "python", &window_python_wasm()).await;
    // SpiderMonkey's garbage-collected heap grows past it every few dozen calls, so each
    // instance is replaced after them; an allowance the size of its heap keeps one.
    let js_default =
        instances_for_200_calls(&runtime(1 << 20), "javascript", &window_js_wasm()).await;
    let js_roomy =
        instances_for_200_calls(&runtime(64 << 20), "javascript", &window_js_wasm()).await;
    println!(
        "200 calls: python {python} instance(s); javascript {js_default} with a 1 MiB growth \
         allowance, {js_roomy} with 64 MiB"
    );
    assert_eq!(python, 1);
    assert!(
        js_default > 1,
        "the JavaScript heap no longer grows: update the README"
    );
    assert_eq!(js_roomy, 1);
}
