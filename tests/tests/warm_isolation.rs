//! What a policy may carry between calls on warm instances, and what it never can: each line of
//! the README's isolation table, proven with the hostile fixture (tests/fixtures/hostile-policy),
//! whose `stash` call leaves a secret in the instance's memory and whose `peek` call returns
//! whatever it finds there.
//!
//! Every test first shows that a `peek` right after a `stash` on the same handle does see the
//! secret (the instance really is reused, so the test can fail), then that the boundary it is
//! about hides it.

use std::time::Duration;

use agent_memory::{
    Isolation, Limits, Memory, MemoryError, Message, Policy, PolicyError, PolicyRuntime,
    RuntimeConfig, Settings, StoreSpec, store::RedisOptions,
};
use agent_memory_tests::{HOSTILE_POLICY_WASM, RedisServer, eventually};

/// A runtime of the test's own, so that no other test shares its idle-instance budget.
fn runtime(config: RuntimeConfig) -> PolicyRuntime {
    PolicyRuntime::new(config).unwrap()
}

fn hostile(runtime: &PolicyRuntime) -> Policy {
    runtime
        .load(HOSTILE_POLICY_WASM, "hostile fixture")
        .unwrap()
}

fn limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        fuel_base: 200_000_000,
        ..Limits::default()
    }
}

fn handle(policy: &Policy, isolation: Isolation, limits: Limits) -> Memory {
    Memory::builder()
        .store(StoreSpec::InMemory)
        .policy(policy.clone())
        .isolation(isolation)
        .limits(limits)
        .settings(Settings {
            max_message_bytes: 64 << 10,
            // So that the fixture passes the self-check of a swap.
            extra: vec![("serve-self-check".to_string(), "true".to_string())],
            ..Settings::default()
        })
        .build()
        .unwrap()
}

async fn stash(memory: &Memory) {
    memory.get_context("stash").await.unwrap();
}

/// Whether the instance serving this call finds what a `stash` left.
async fn peek(memory: &Memory) -> bool {
    let context = memory.get_context("peek").await.unwrap();
    !context.messages.is_empty()
}

/// A handle whose instance holds a secret now: the reuse every test relies on, shown.
async fn stashed(policy: &Policy) -> Memory {
    let memory = handle(policy, Isolation::Warm, limits());
    stash(&memory).await;
    assert!(
        peek(&memory).await,
        "a warm handle served its next call on a fresh instance: nothing below is tested"
    );
    memory
}

#[tokio::test]
async fn a_warm_instance_carries_data_only_to_later_calls_of_its_own_handle() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let tenant = stashed(&policy).await;
    // A clone is the same handle.
    assert!(peek(&tenant.clone()).await);
    // Another handle on the same policy and runtime never gets the tenant's instance.
    let other = handle(&policy, Isolation::Warm, limits());
    assert!(!peek(&other).await, "another handle saw the tenant's data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_hammered_at_once_never_see_each_others_data() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let tenant = stashed(&policy).await;
    let other = handle(&policy, Isolation::Warm, limits());
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let tenant = tenant.clone();
        calls.spawn(async move {
            stash(&tenant).await;
            None
        });
        let other = other.clone();
        calls.spawn(async move { Some(peek(&other).await) });
    }
    while let Some(done) = calls.join_next().await {
        assert_ne!(
            done.unwrap(),
            Some(true),
            "another handle saw the tenant's data"
        );
    }
}

#[tokio::test]
async fn an_instance_that_trapped_never_serves_again() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    let trapped = memory.get_context("trap").await;
    assert!(
        matches!(
            trapped,
            Err(MemoryError::Policy(PolicyError::Trapped { .. }))
        ),
        "{trapped:?}"
    );
    assert!(
        !peek(&memory).await,
        "a call found what a trapped instance held"
    );
}

#[tokio::test]
async fn an_instance_that_ran_out_of_fuel_never_serves_again() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    let stopped = memory.get_context("spin").await;
    assert!(
        matches!(
            stopped,
            Err(MemoryError::Policy(
                PolicyError::ComputeBudgetExceeded { .. }
            ))
        ),
        "{stopped:?}"
    );
    assert!(!peek(&memory).await);
}

#[tokio::test]
async fn an_instance_whose_answer_the_host_refused_never_serves_again() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    // `garbage` returns, cleanly, a message whose member is not JSON.
    let refused = memory.get_context("garbage").await;
    assert!(
        matches!(
            refused,
            Err(MemoryError::Policy(PolicyError::InvalidOutput(_)))
        ),
        "{refused:?}"
    );
    assert!(
        !peek(&memory).await,
        "an instance whose answer was refused served again"
    );
}

#[tokio::test]
async fn an_instance_the_host_stopped_never_serves_again() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    // `chatter` logs without end; the host stops it (an error out of a host function).
    let stopped = memory.get_context("chatter").await;
    assert!(stopped.is_err(), "{stopped:?}");
    assert!(!peek(&memory).await);
}

#[tokio::test]
async fn the_built_in_policy_serves_every_call_up_to_the_reuse_limit_on_one_instance() {
    let runtime = runtime(RuntimeConfig {
        reuse_limit: 500,
        ..RuntimeConfig::default()
    });
    let memory = Memory::builder()
        .policy(runtime.default_policy().unwrap())
        .build()
        .unwrap();
    // A full window read back and rewritten: the policy's arena must start over after every
    // call, or its memory would grow past the allowance and the instance be replaced.
    for turn in 0..200 {
        let outcome = memory
            .add_message("s", Message::user("x".repeat(2000)))
            .await
            .unwrap();
        assert!(outcome.is_stored());
        let context = memory.get_context("s").await.unwrap();
        assert_eq!(context.messages.len(), (turn + 1).min(50));
    }
    assert_eq!(
        runtime.instantiations(),
        1,
        "400 calls needed more than one instance"
    );
    // Strict isolation: one instance per call.
    let strict = Memory::builder()
        .policy(runtime.default_policy().unwrap())
        .isolation(Isolation::Strict)
        .build()
        .unwrap();
    for _ in 0..10 {
        strict.get_context("s").await.unwrap();
    }
    assert_eq!(runtime.instantiations(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_call_timed_out_never_serves_again() {
    let server = RedisServer::start();
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        // The store would wait far longer than the call may take.
        .redis_options(RedisOptions {
            response: Duration::from_secs(30),
            ..RedisOptions::default()
        })
        .policy(policy)
        .limits(Limits {
            call_timeout: Duration::from_millis(500),
            ..limits()
        })
        .settings(Settings {
            max_message_bytes: 64 << 10,
            ..Settings::default()
        })
        .build()
        .unwrap();
    stash(&memory).await;
    assert!(peek(&memory).await, "the handle did not reuse its instance");
    // A write that waits on a frozen server: the call times out mid-way, its instance inside
    // a store call.
    server.pause();
    let timed_out = memory.add_message("slow", Message::user("x")).await;
    server.resume();
    assert!(
        matches!(
            timed_out,
            Err(MemoryError::Policy(PolicyError::CallTimeout(_)))
        ),
        "{timed_out:?}"
    );
    assert!(
        !peek(&memory).await,
        "an instance whose call timed out served again"
    );
    assert_eq!(runtime.instantiations(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_finds_no_free_slot_says_so_rather_than_blame_the_policy() {
    let server = RedisServer::start();
    let runtime = runtime(RuntimeConfig {
        max_concurrent_calls: 1,
        ..RuntimeConfig::default()
    });
    let handle = |call_timeout| {
        Memory::builder()
            .store(StoreSpec::parse(&server.url()).unwrap())
            .redis_options(RedisOptions {
                response: Duration::from_secs(30),
                ..RedisOptions::default()
            })
            .policy(runtime.default_policy().unwrap())
            .limits(Limits {
                call_timeout,
                ..Limits::default()
            })
            .build()
            .unwrap()
    };
    let holder = handle(Duration::from_secs(3));
    let waiter = handle(Duration::from_millis(300));
    // The one slot is held by a call waiting on a frozen server.
    server.pause();
    let made = runtime.instantiations();
    let held = tokio::spawn(async move { holder.get_context("held").await });
    // The holder has its slot once the runtime made its instance.
    eventually("the holder's call started", Duration::from_secs(10), || {
        runtime.instantiations() > made
    })
    .await;
    let waited = waiter.get_context("waiting").await;
    server.resume();
    assert!(
        matches!(
            waited,
            Err(MemoryError::Policy(PolicyError::NoCallSlot {
                max_concurrent_calls: 1,
                ..
            }))
        ),
        "{waited:?}"
    );
    held.await.unwrap().unwrap();
    // With the slot free again, the waiter is served.
    waiter.get_context("waiting").await.unwrap();
}

#[tokio::test]
async fn an_instance_is_dropped_after_the_reuse_limit() {
    let runtime = runtime(RuntimeConfig {
        reuse_limit: 4,
        ..RuntimeConfig::default()
    });
    let policy = hostile(&runtime);
    // Calls 1 (stash) and 2 (peek) are in `stashed`.
    let memory = stashed(&policy).await;
    assert!(peek(&memory).await, "call 3");
    assert!(peek(&memory).await, "call 4, the last the instance serves");
    assert!(
        !peek(&memory).await,
        "call 5 ran on an instance past its limit"
    );
}

#[tokio::test]
async fn an_instance_whose_memory_grew_is_dropped() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    // `grow` answers normally, having grown its memory by 8 MiB and kept it.
    let grown = memory.get_context("grow").await.unwrap();
    assert!(grown.degraded.is_none());
    assert!(
        !peek(&memory).await,
        "an instance that grew its memory served again"
    );
}

#[tokio::test]
async fn an_instance_idle_past_the_timeout_is_dropped() {
    let runtime = runtime(RuntimeConfig {
        idle_timeout: Duration::from_millis(200),
        ..RuntimeConfig::default()
    });
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    assert_eq!(runtime.idle_instances(), 1);
    // The reaper wakes every half timeout: the instance goes within a few of them.
    eventually("the idle instance dropped", Duration::from_secs(10), || {
        runtime.idle_instances() == 0
    })
    .await;
    assert!(!peek(&memory).await);
}

#[tokio::test]
async fn a_replaced_version_never_serves_again() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    memory.replace_policy(policy.clone()).await.unwrap();
    assert!(
        !peek(&memory).await,
        "an instance of the replaced version served"
    );
    assert_eq!(
        runtime.idle_instances(),
        1,
        "only the new version's instance is kept"
    );
}

#[tokio::test]
async fn in_strict_isolation_no_call_sees_the_previous_one() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = handle(&policy, Isolation::Strict, limits());
    for _ in 0..5 {
        stash(&memory).await;
        assert!(!peek(&memory).await, "strict isolation reused an instance");
    }
    assert_eq!(runtime.idle_instances(), 0);
}

#[tokio::test]
async fn a_runtime_with_no_idle_budget_keeps_no_instance() {
    let runtime = runtime(RuntimeConfig {
        max_idle_instances: 0,
        ..RuntimeConfig::default()
    });
    let policy = hostile(&runtime);
    let memory = handle(&policy, Isolation::Warm, limits());
    stash(&memory).await;
    assert!(!peek(&memory).await);
}

#[tokio::test]
async fn each_call_on_a_warm_instance_may_touch_only_its_own_session() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let memory = stashed(&policy).await;
    // The default behaviour pushes to `ai:memory:{session}`: the instance that served `alpha`
    // may write `beta` in the next call, and only because the guard is the new call's.
    for session in ["alpha", "beta"] {
        let outcome = memory
            .add_message(session, Message::user("x"))
            .await
            .unwrap();
        assert!(outcome.is_stored(), "{session}: {outcome:?}");
    }
    // Still the same instance: the writes above ran on it.
    assert!(peek(&memory).await);
    // And a call about `escape` cannot reach another session's key from it.
    let escaped = memory.get_context("escape").await.unwrap();
    assert!(escaped.degraded.is_some(), "{escaped:?}");
    let mut sessions = memory.sessions().await.unwrap();
    sessions.sort();
    assert_eq!(sessions, [b"alpha".to_vec(), b"beta".to_vec()]);
}

/// The smallest fixed compute budget (of a doubling series) under which one `burn` call
/// succeeds on a fresh instance: the call costs more than half of it.
async fn budget_for_one_burn(policy: &Policy) -> u64 {
    let mut fuel = 100_000;
    loop {
        let memory = handle(
            policy,
            Isolation::Strict,
            Limits {
                fuel_base: fuel,
                ..limits()
            },
        );
        if memory.get_context("burn").await.is_ok() {
            return fuel;
        }
        fuel *= 2;
        assert!(fuel < 1 << 40, "burn never fit a budget");
    }
}

#[tokio::test]
async fn every_call_on_a_warm_instance_gets_its_whole_compute_budget() {
    let runtime = runtime(RuntimeConfig::default());
    let policy = hostile(&runtime);
    let budget = budget_for_one_burn(&policy).await;
    // Two burns would not fit one budget: had the budget carried over, the second would fail.
    let memory = handle(
        &policy,
        Isolation::Warm,
        Limits {
            fuel_base: budget,
            ..limits()
        },
    );
    stash(&memory).await;
    for call in 0..5 {
        let burned = memory.get_context("burn").await;
        assert!(
            burned.is_ok(),
            "burn {call} with budget {budget}: {burned:?}"
        );
    }
    assert!(
        peek(&memory).await,
        "the burns did not all run on one instance"
    );
}
