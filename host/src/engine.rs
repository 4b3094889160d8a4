//! The one wasmtime [`Engine`] of the process.
//!
//! Compiling a component is costly (tens of milliseconds optimised, a second unoptimised) and
//! an `Engine` owns compiled code, so the process shares one, and with it every compiled
//! policy. The configuration is fixed: async (store calls await I/O), the component model, and
//! fuel for the compute budget.
//!
//! Why fuel and not epochs or thread CPU time: a budget must stop a runaway policy, and must
//! never stop a legitimate call because the machine is busy. Epoch deadlines measure wall time,
//! which a loaded machine stretches (the foundation subtracted store waits from wall time, and
//! still failed large legitimate reads under load). Per-thread CPU time would need reading the
//! clock around every host call and every fiber switch, and a policy's fiber moves between
//! executor threads. Fuel counts the policy's own instructions: the same call costs the same
//! fuel on an idle or a saturated machine. Its price is a counter update per basic block of
//! guest code: measured with `tests/examples/policy_cost.rs` (the default policy alone over the
//! in-memory store, best of 5 rounds of 2000 calls, three runs alternating with a build using
//! epochs instead), an add took 93.7 µs against 93.0 µs, a read of 50 messages 179–198 µs against
//! 177–188 µs: 1–3 %, inside the machine's noise, and far below one Redis round trip.

use std::sync::OnceLock;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Policy instances alive at once, in the whole process: the size of the instance pool. Each
/// call runs in its own instance, so this is also the most calls that run at once; more wait
/// for a slot (bounded by their call timeout). 512 is twice the busiest benchmark (256
/// concurrent sessions); a slot costs address space (a linear-memory reservation and a fiber
/// stack), not memory, until it is used.
pub const MAX_CONCURRENT_CALLS: u32 = 512;

/// Largest linear memory a policy instance may have: the ceiling for
/// [`crate::Limits::memory_bytes`], fixed when the pool is laid out.
pub const MAX_POLICY_MEMORY_BYTES: usize = 1 << 30;

/// Linear memory (and table) bytes of a pool slot kept resident between calls, reset in place.
const KEEP_RESIDENT_BYTES: usize = 8 << 20;

/// Core instances a policy component may hold: a `wit-component` policy is its module plus a
/// shim and a fixup module.
const CORE_INSTANCES_PER_COMPONENT: u32 = 4;

/// The shared engine.
pub(crate) fn shared() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(&config())
            // The configuration is constant and valid for every target wasmtime supports
            // with cranelift; failing here is a build defect, not a runtime condition.
            .expect("the fixed wasmtime configuration is valid")
    })
}

fn config() -> Config {
    let mut config = Config::new();
    // Async support is implied by wasmtime 48's async instantiate and call functions.
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
    config
}

/// The instance pool. Every call instantiates the policy afresh (so nothing one call leaves in
/// memory reaches the next); with the default on-demand allocator that meant mapping and
/// unmapping a linear memory and a fiber stack per call, about half of all CPU time in a
/// profile. The pool keeps slots mapped and resets a slot's memory to the component's initial
/// image (copy-on-write) when it is reused: same isolation, no system calls on the hot path.
fn pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_CONCURRENT_CALLS)
        .total_core_instances(MAX_CONCURRENT_CALLS * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(MAX_CONCURRENT_CALLS)
        .total_tables(MAX_CONCURRENT_CALLS * CORE_INSTANCES_PER_COMPONENT)
        .total_stacks(MAX_CONCURRENT_CALLS)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(2)
        .max_tables_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memory_size(MAX_POLICY_MEMORY_BYTES)
        // Reset a reused slot by copying back only the pages the last call touched (found with
        // Linux's PAGEMAP_SCAN where the kernel has it, 6.7+), instead of discarding them with
        // madvise and taking a page fault on each again: the policy touches a few hundred KiB.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// A slot for one call's instance: waits while [`MAX_CONCURRENT_CALLS`] calls are running.
pub(crate) async fn call_slot() -> tokio::sync::SemaphorePermit<'static> {
    static SLOTS: tokio::sync::Semaphore =
        tokio::sync::Semaphore::const_new(MAX_CONCURRENT_CALLS as usize);
    // The semaphore is never closed, so acquiring cannot fail.
    SLOTS
        .acquire()
        .await
        .unwrap_or_else(|_| unreachable!("the call slots are never closed"))
}
