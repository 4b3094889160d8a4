//! An agent that is itself a component: the example chat agent imports `memory`, the host routes
//! each call into the sandboxed policy of the memory handle the runtime bound it to, and the
//! Python original reads what it wrote.

use agent_memory::{Memory, Policy, StoreSpec, policy::DEFAULT_POLICY_WASM};
use agent_memory_tests::agent::ChatAgentRuntime;
use agent_memory_tests::{HOSTILE_POLICY_WASM, PythonOriginal, RedisServer};
use serde_json::json;

fn engine() -> wasmtime::Engine {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    wasmtime::Engine::new(&config).unwrap()
}

#[tokio::test]
async fn the_agent_component_remembers_through_the_policy_into_redis_and_python_reads_it() {
    let server = RedisServer::start();
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .build()
        .unwrap();
    let runtime = ChatAgentRuntime::new(&engine()).unwrap();
    let mut agent = runtime.instantiate(memory.clone(), "").await.unwrap();

    let first = agent.turn("chat-1", "héllo").await.unwrap().unwrap();
    assert_eq!(first, "I remember 1 messages. You said: héllo");
    let tool = agent.turn("chat-1", "/tool abc").await.unwrap().unwrap();
    assert_eq!(tool, "The tool says: 3 characters.");
    let second = agent.turn("chat-1", "again").await.unwrap().unwrap();
    assert_eq!(second, "I remember 7 messages. You said: again");

    // What the agent sees, what the Rust API sees and what Python reads are one history.
    let transcript = agent.transcript("chat-1").await.unwrap().unwrap();
    assert_eq!(transcript.len(), 8);
    assert_eq!(transcript[3], "assistant: null {+ tool_calls}");
    let python = PythonOriginal::new(&server.url()).get("chat-1");
    assert_eq!(
        python,
        json!([
            {"role": "user", "content": "héllo"},
            {"role": "assistant", "content": "I remember 1 messages. You said: héllo"},
            {"role": "user", "content": "/tool abc"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call-3", "type": "function",
                "function": {"name": "measure", "arguments": "{\"text\": \"abc\"}"}}]},
            {"role": "tool", "content": "3 characters", "tool_call_id": "call-3"},
            {"role": "assistant", "content": "The tool says: 3 characters."},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "I remember 7 messages. You said: again"},
        ])
    );
    // Byte for byte what json.dumps writes, for every entry the agent caused.
    let identical = PythonOriginal::new(&server.url()).eval_on_entries(
        "chat-1",
        "all(json.dumps(json.loads(e)).encode() == e for e in entries)",
        "",
    );
    assert_eq!(identical.trim(), "True");
    assert_eq!(
        memory.get_context("chat-1").await.unwrap().messages.len(),
        8
    );

    assert_eq!(agent.forget("chat-1").await.unwrap(), Ok(8));
    assert_eq!(PythonOriginal::new(&server.url()).get("chat-1"), json!([]));
}

#[tokio::test]
async fn an_agent_is_bound_to_its_tenant_and_namespace_and_cannot_leave_it() {
    let memory = Memory::builder().build().unwrap();
    let runtime = ChatAgentRuntime::new(&engine()).unwrap();
    let mut tenant_a = runtime
        .instantiate(memory.clone(), "tenant-a/")
        .await
        .unwrap();
    let mut tenant_b = runtime
        .instantiate(memory.clone(), "tenant-b/")
        .await
        .unwrap();
    tenant_a.turn("s", "a's secret").await.unwrap().unwrap();
    assert_eq!(tenant_b.transcript("s").await.unwrap(), Ok(Vec::new()));
    assert_eq!(
        memory
            .get_context("tenant-a/s")
            .await
            .unwrap()
            .messages
            .len(),
        2
    );
    // Ids that try to climb out are just ids inside the namespace.
    tenant_b.turn("../tenant-a/s", "x").await.unwrap().unwrap();
    assert_eq!(
        memory
            .get_context("tenant-a/s")
            .await
            .unwrap()
            .messages
            .len(),
        2
    );
    assert_eq!(
        memory
            .get_context("tenant-b/../tenant-a/s")
            .await
            .unwrap()
            .messages
            .len(),
        2
    );
}

#[tokio::test]
async fn a_refused_session_id_and_a_failing_policy_reach_the_agent_as_values_not_traps() {
    let memory = Memory::builder().build().unwrap();
    let runtime = ChatAgentRuntime::new(&engine()).unwrap();
    let mut agent = runtime.instantiate(memory.clone(), "ns/").await.unwrap();
    let empty = agent.turn("", "hi").await.unwrap().unwrap_err();
    assert!(empty.starts_with("invalid session id"), "{empty}");
    let control = agent.turn("a\u{7}b", "hi").await.unwrap().unwrap_err();
    assert!(control.starts_with("invalid session id"), "{control}");

    // A policy that traps, bound to another agent: the agent gets an error value and its own
    // instance keeps working.
    let hostile = Memory::builder()
        .policy(Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap())
        .build()
        .unwrap();
    let mut victim = runtime.instantiate(hostile, "").await.unwrap();
    let failed = victim.transcript("trap").await.unwrap().unwrap_err();
    assert!(failed.starts_with("memory policy failed"), "{failed}");
    let spun = victim.transcript("spin").await.unwrap().unwrap_err();
    assert!(spun.contains("compute budget"), "{spun}");
    assert_eq!(victim.transcript("ordinary").await.unwrap(), Ok(Vec::new()));
    // The well-behaved agent never noticed.
    assert!(agent.turn("s", "still fine").await.unwrap().is_ok());
}

#[tokio::test]
async fn policies_can_run_in_the_embedders_own_engine() {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).consume_fuel(true);
    let shared = wasmtime::Engine::new(&config).unwrap();
    let policy = Policy::from_bytes_in(
        &shared,
        DEFAULT_POLICY_WASM,
        "default, in the embedder's engine",
    )
    .unwrap();
    let memory = Memory::builder().policy(policy).build().unwrap();
    let runtime = ChatAgentRuntime::new(&shared).unwrap();
    let mut agent = runtime.instantiate(memory, "").await.unwrap();
    agent.turn("s", "one engine").await.unwrap().unwrap();
    assert_eq!(agent.transcript("s").await.unwrap().unwrap().len(), 2);

    // An engine without fuel could not bound a policy's compute: refused with the reason.
    let no_fuel = engine();
    let refused = Policy::from_bytes_in(&no_fuel, DEFAULT_POLICY_WASM, "no fuel").unwrap_err();
    assert!(refused.to_string().contains("fuel"), "{refused}");
}
