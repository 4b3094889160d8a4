//! A policy that misbehaves on purpose (tests/fixtures/hostile-policy): every misbehaviour ends
//! in a typed error or a refused request, in bounded time, and the next call is served.

use std::time::{Duration, Instant};

use agent_memory::{
    Isolation, Limits, Memory, MemoryBuilder, MemoryError, Message, Policy, PolicyError, Settings,
    StoreError, StoreSpec, WriteOutcome,
};
use agent_memory_tests::{HOSTILE_BEHAVIOURS, HOSTILE_POLICY_WASM};

fn hostile_memory() -> Memory {
    hostile_builder().build().unwrap()
}

fn hostile_builder() -> MemoryBuilder {
    Memory::builder()
        .store(StoreSpec::InMemory)
        .policy(Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap())
        .limits(Limits {
            memory_bytes: 64 << 20,
            // Well above what a well-behaved call uses, well below a runaway's appetite.
            fuel_base: 200_000_000,
            ..Limits::default()
        })
        // A window the 64 MiB sandbox can hold (the builder checks).
        .settings(Settings {
            max_message_bytes: 64 << 10,
            ..Settings::default()
        })
}

/// After any misbehaviour, a well-behaved request on the same handle still works.
async fn still_serves(memory: &Memory) {
    let context = memory.get_context("well-behaved").await.unwrap();
    assert_eq!(context.degraded, None);
}

#[tokio::test]
async fn every_behaviour_of_the_fixture_is_contained() {
    let memory = hostile_memory();
    for behaviour in HOSTILE_BEHAVIOURS {
        let started = Instant::now();
        let read = memory.get_context(*behaviour).await;
        let write = memory.add_message(*behaviour, Message::user("x")).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{behaviour} took {:?}",
            started.elapsed()
        );
        if matches!(*behaviour, "stash" | "peek" | "grow" | "burn") {
            // Not misbehaviour that a single call shows; see the tests of isolation
            // (tests/warm_isolation.rs).
            still_serves(&memory).await;
            continue;
        }
        let read_contained = read
            .as_ref()
            .map_or(true, |context| context.degraded.is_some());
        let write_contained = write.as_ref().map_or(true, |outcome| !outcome.is_stored());
        assert!(
            read_contained || write_contained,
            "{behaviour}: neither call reported the misbehaviour: {read:?} / {write:?}"
        );
        still_serves(&memory).await;
    }
}

#[tokio::test]
async fn a_trap_is_a_typed_error_and_does_not_poison_later_calls() {
    let memory = hostile_memory();
    match memory.get_context("trap").await {
        Err(MemoryError::Policy(error @ PolicyError::Trapped { .. })) => {
            let PolicyError::Trapped {
                reason,
                trap,
                panic,
            } = &error
            else {
                unreachable!()
            };
            assert!(reason.contains("unreachable"), "{reason}");
            // The kind is kept, not only its text: a Rust panic is an `unreachable` trap.
            assert_eq!(*trap, Some(wasmtime::Trap::UnreachableCodeReached));
            assert_eq!(
                panic.as_deref(),
                Some("panicked: hostile policy: trap on purpose")
            );
            // One line: the trap and the panic, no wasm backtrace.
            let text = error.to_string();
            assert!(
                !text.contains('\n') && !text.contains("backtrace"),
                "{text}"
            );
            assert!(
                text.ends_with("on a panic in the policy: hostile policy: trap on purpose"),
                "{text}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_serves(&memory).await;
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_cpu_budget() {
    let memory = hostile_memory();
    let started = Instant::now();
    let result = memory.get_context("spin").await;
    let took = started.elapsed();
    assert!(
        matches!(
            result,
            Err(MemoryError::Policy(PolicyError::ComputeBudgetExceeded {
                fuel: 200_000_000
            }))
        ),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    still_serves(&memory).await;
}

#[tokio::test]
async fn memory_growth_past_the_limit_traps() {
    let memory = hostile_memory();
    match memory.get_context("hog").await {
        Err(MemoryError::Policy(PolicyError::Trapped { reason, .. })) => {
            assert!(reason.contains("memory"), "{reason}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_serves(&memory).await;
}

#[tokio::test]
async fn keys_of_other_sessions_and_outside_the_prefix_are_denied() {
    let memory = hostile_memory();
    for session in ["escape", "escape-prefix"] {
        let context = memory.get_context(session).await.unwrap();
        assert!(
            matches!(context.degraded, Some(StoreError::Denied(_))),
            "{session}: {context:?}"
        );
    }
    let outcome = memory
        .add_message("escape", Message::user("x"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::Denied(_))),
        "{outcome:?}"
    );
    assert!(memory.sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn store_calls_past_the_per_request_cap_are_denied() {
    let memory = hostile_memory();
    let context = memory.get_context("flood").await.unwrap();
    match context.degraded {
        Some(StoreError::Denied(reason)) => assert!(reason.contains("store calls"), "{reason}"),
        other => panic!("expected denied, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_values_wide_reads_and_huge_transactions_are_refused() {
    let memory = hostile_memory();
    let outcome = memory
        .add_message("oversize", Message::user("x"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::TooLarge { .. })),
        "{outcome:?}"
    );
    let context = memory.get_context("wide-read").await.unwrap();
    assert!(
        matches!(context.degraded, Some(StoreError::TooLarge { .. })),
        "{context:?}"
    );
    let outcome = memory.clear("anything").await.unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::Denied(_))),
        "{outcome:?}"
    );
    let outcome = memory
        .add_message("expire-zero", Message::user("x"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::Denied(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn invalid_json_returned_by_a_policy_is_a_typed_error() {
    let memory = hostile_memory();
    let result = memory.get_context("garbage").await;
    assert!(
        matches!(
            result,
            Err(MemoryError::Policy(PolicyError::InvalidOutput(_)))
        ),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_strict_isolation_nothing_a_call_leaves_in_memory_reaches_a_later_call() {
    let memory = hostile_builder()
        .isolation(Isolation::Strict)
        .build()
        .unwrap();
    // Many rounds, concurrently: pooled instance slots are reused, their memory must not be.
    let mut calls = tokio::task::JoinSet::new();
    for round in 0..200 {
        let memory = memory.clone();
        calls.spawn(async move {
            memory.get_context("stash").await.unwrap();
            let peeked = memory.get_context("peek").await.unwrap();
            (round, peeked)
        });
    }
    while let Some(done) = calls.join_next().await {
        let (round, peeked) = done.unwrap();
        assert!(
            peeked.messages.is_empty(),
            "round {round}: a call found what another left: {:?}",
            peeked.messages
        );
    }
}
