//! The sandbox's compute budget counts the policy's own work: a legitimate call never fails
//! because the machine is busy, a runaway is still stopped, and input too large for any policy
//! is refused by the host before the policy runs (typed, not blamed on the policy).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent_memory::{
    Limits, Memory, MemoryError, Message, Policy, PolicyError, Settings, StoreSpec, json::Json,
    report::InvalidMessage,
};
use agent_memory_tests::{HOSTILE_POLICY_WASM, expect_stored};

/// Keep every core busy until dropped.
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn every_core_twice() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores * 2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Just under the default message limit once encoded.
fn big_message(i: usize) -> Message {
    Message::user(format!("{i:>8}{}", "x".repeat((1 << 20) - 64)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_window_of_maximum_size_messages_reads_on_a_saturated_machine() {
    let memory = Memory::builder()
        .store(StoreSpec::InMemory)
        .build()
        .unwrap();
    let window: Vec<Message> = (0..50).map(big_message).collect();
    expect_stored(memory.add_messages("s", window.clone()).await.unwrap());

    let busy = Busy::every_core_twice();
    let started = Instant::now();
    let context = memory.get_context("s").await.unwrap();
    let took = started.elapsed();
    drop(busy);
    println!("50 x 1 MiB read in {took:?} with every core busy twice over");
    assert_eq!(context.degraded, None);
    assert_eq!(context.messages, window);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_window_of_numbers_gets_the_fuel_its_size_calls_for() {
    // Lists of small integers: the most work per byte for the default policy.
    let numbers = Json::parse(&format!("[{}]", vec!["7"; 300_000].join(", "))).unwrap();
    let message = Message::user("").with("n", numbers);
    let memory = Memory::builder()
        .store(StoreSpec::InMemory)
        .build()
        .unwrap();
    expect_stored(memory.add_messages("s", vec![message; 20]).await.unwrap());
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(context.messages.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_policy_is_stopped_by_its_budget_on_a_saturated_machine_too() {
    let memory = Memory::builder()
        .store(StoreSpec::InMemory)
        .policy(Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap())
        .limits(Limits {
            fuel_base: 50_000_000,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let busy = Busy::every_core_twice();
    let started = Instant::now();
    let result = memory.get_context("spin").await;
    let took = started.elapsed();
    drop(busy);
    assert!(
        matches!(
            result,
            Err(MemoryError::Policy(PolicyError::ComputeBudgetExceeded {
                fuel: 50_000_000
            }))
        ),
        "{result:?}"
    );
    println!("runaway stopped after {took:?} on a saturated machine");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_hundred_megabyte_message_is_refused_by_the_host_as_too_large() {
    let memory = Memory::builder()
        .store(StoreSpec::InMemory)
        .build()
        .unwrap();
    let huge = Message::user("x".repeat(100 << 20));
    let result = memory.add_message("s", huge).await;
    match result {
        Err(MemoryError::InvalidMessage {
            index: 0,
            reason: InvalidMessage::TooLarge { actual, limit },
        }) => {
            assert!(actual > 100 << 20, "{actual}");
            assert_eq!(limit, 1 << 20);
        }
        other => panic!("expected the host's too-large refusal, got {other:?}"),
    }
    assert!(memory.sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn requests_over_the_per_call_caps_are_refused_before_the_policy_runs() {
    let memory = Memory::builder()
        .store(StoreSpec::InMemory)
        .limits(Limits {
            max_batch_messages: 1000,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let too_many = vec![Message::user("x"); 1001];
    assert!(matches!(
        memory.add_messages("s", too_many).await,
        Err(MemoryError::RequestTooLarge {
            what,
            actual: 1001,
            limit: 1000
        }) if what == "messages"
    ));
    // 70 messages of 1 MiB: each fits, together they are over the 64 MiB a call may carry.
    let too_heavy: Vec<Message> = (0..70).map(big_message).collect();
    assert!(matches!(
        memory.add_messages("s", too_heavy).await,
        Err(MemoryError::RequestTooLarge { what, .. }) if what == "bytes"
    ));
    assert!(memory.sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn settings_that_could_never_work_are_refused_when_the_handle_is_built() {
    let wide = Memory::builder()
        .settings(Settings {
            max_messages: 20_000,
            max_message_bytes: 1000,
            ..Settings::default()
        })
        .build();
    let error = wide.unwrap_err().to_string();
    assert!(error.contains("invalid settings"), "{error}");
}
