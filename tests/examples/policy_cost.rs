//! What one call of each built-in policy costs on its own, over the in-memory store: an add of
//! one ~200-byte message (to a full window, so it trims), and a read of a full window of 50 such
//! messages, on warm instances and in strict isolation (a fresh instance per call). Used to weigh
//! sandbox mechanisms (fuel against epochs: see `agent_memory`'s runtime module; warm against
//! fresh instances) and to price the tool-safe policy's read-before-write.
//!
//! ```sh
//! cargo run --release -p agent-memory-tests --example policy_cost
//! # one case only, e.g. under `perf record`: POLICY_COST_ONLY="default (warm)"
//! # adds only: POLICY_COST_ADD_ONLY=1
//! ```

use std::time::{Duration, Instant};

use agent_memory::{Isolation, Memory, Message, Policy, StoreSpec};

const CALLS: u32 = 2000;
const ROUNDS: u32 = 5;

fn per_call(total: Duration) -> f64 {
    total.as_secs_f64() * 1e6 / f64::from(CALLS)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for (name, policy) in [
        ("default", Policy::default_policy()),
        ("tool-safe", Policy::tool_safe()),
    ] {
        let policy = policy.expect("a built-in policy");
        for (mode, isolation) in [("warm", Isolation::Warm), ("strict", Isolation::Strict)] {
            let case = format!("{name} ({mode})");
            if std::env::var("POLICY_COST_ONLY").is_ok_and(|only| only != case) {
                continue;
            }
            let memory = Memory::builder()
                .store(StoreSpec::InMemory)
                .policy(policy.clone())
                .isolation(isolation)
                .build()
                .expect("a memory");
            runtime.block_on(measure(&case, &memory));
        }
    }
}

async fn measure(name: &str, memory: &Memory) {
    let message = Message::user("x".repeat(160));
    // Warm up: compile caches, allocator.
    for _ in 0..200 {
        let _ = memory.add_message("warm", message.clone()).await;
        let _ = memory.get_context("warm").await;
    }
    // The best of several rounds: the machine's noise only ever adds time.
    let (mut add, mut get) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..CALLS {
            let outcome = memory.add_message("add", message.clone()).await;
            assert!(outcome.is_ok_and(|outcome| outcome.is_stored()));
        }
        add = add.min(per_call(started.elapsed()));
        if std::env::var_os("POLICY_COST_ADD_ONLY").is_some() {
            continue;
        }
        let started = Instant::now();
        for _ in 0..CALLS {
            let context = memory.get_context("add").await.expect("a read");
            assert_eq!(context.messages.len(), 50);
        }
        get = get.min(per_call(started.elapsed()));
    }
    println!(
        "{name} policy alone, best of {ROUNDS} rounds of {CALLS} calls: add {add:.1} us/call, \
         read of 50 {get:.1} us/call"
    );
}
