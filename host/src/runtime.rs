//! The policy runtime: a value that owns the wasmtime engine, its instance pool and the rules
//! for keeping policy instances warm.
//!
//! Everything process-wide used to be a static; now an embedder makes its own
//! [`PolicyRuntime`] (pool size, reuse bound, memory ceiling) or takes the shared default,
//! which needs no configuration. A [`crate::Policy`] is compiled in one runtime and its calls
//! run there.
//!
//! Why fuel and not epochs or thread CPU time for the compute budget: a budget must stop a
//! runaway policy, and must never stop a legitimate call because the machine is busy. Epoch
//! deadlines measure wall time, which a loaded machine stretches. Per-thread CPU time would
//! need reading the clock around every host call and every fiber switch, and a policy's fiber
//! moves between executor threads. Fuel counts the policy's own instructions: the same call
//! costs the same fuel on an idle or a saturated machine; measured at 1-3 % of a call
//! (`tests/examples/policy_cost.rs`, fuel against epochs, alternated).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::LoadError;
pub use crate::settings::MAX_POLICY_MEMORY_BYTES;

/// Default for [`RuntimeConfig::max_concurrent_calls`]: twice the busiest benchmark (256
/// concurrent sessions). A slot costs address space (a linear-memory reservation and a fiber
/// stack), not memory, until it is used.
pub const MAX_CONCURRENT_CALLS: u32 = 512;

/// Default for [`RuntimeConfig::max_idle_instances`]: enough to keep every call of the
/// busiest benchmark (256 concurrent sessions) on a warm instance.
pub const DEFAULT_MAX_IDLE_INSTANCES: u32 = 256;

/// Default for [`RuntimeConfig::reuse_limit`]: the calls one warm instance serves before it
/// is replaced by a fresh one. `wasmtime serve` reuses an instance for 128 requests by
/// default; at that count the fresh instantiation is under 1 % of the calls' cost.
pub const DEFAULT_REUSE_LIMIT: u32 = 128;

/// Default for [`RuntimeConfig::idle_timeout`]: a warm instance unused this long is dropped,
/// so a handle that went quiet gives its memory back.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default for [`RuntimeConfig::reuse_memory_growth`]: 1 MiB, room for a Rust guest's default
/// allocator to take its first heap segments (it grows memory for them rather than use the
/// initial memory), far less than a policy that hoards or leaks would take.
pub const DEFAULT_REUSE_MEMORY_GROWTH: usize = 1 << 20;

/// Linear memory (and table) bytes of a pool slot kept resident between instances, reset in
/// place rather than discarded and faulted in again.
const KEEP_RESIDENT_BYTES: usize = 8 << 20;

/// Instances kept free in the pool for trial instantiations (loading a policy, building a
/// handle, a swap), which run outside the call slots. A swap's self-check runs its calls in
/// call slots, like any call.
const TRIAL_INSTANCES: u32 = 32;

/// Most instances a runtime's pool may hold (running calls plus idle ones): each slot reserves
/// a linear memory's address space (several GiB with guard regions), and 47 bits of address
/// space run out between 20,000 and 30,000 slots.
const MAX_INSTANCES: u32 = 16_384;

/// Default for [`RuntimeConfig::max_core_instances_per_component`]: room for interpreted
/// policies. A Rust policy made by `wit-component` holds 3 core instances (its module, a shim
/// and a fixup module); a componentize-py policy holds 38 (the interpreter's libraries are
/// linked as separate modules); a ComponentizeJS one 7. The count bounds the
/// per-instance bookkeeping wasmtime allocates, not memory reserved up front.
pub const DEFAULT_MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Default for [`RuntimeConfig::max_tables_per_component`]: tables a policy component may
/// define (a Rust policy defines 1 or 2, a componentize-py or ComponentizeJS one 2). Each
/// table slot in the pool reserves address space for [`RuntimeConfig::max_table_elements`]
/// entries.
pub const DEFAULT_MAX_TABLES_PER_COMPONENT: u32 = 16;

/// Default for [`RuntimeConfig::max_table_elements`]: the most entries one table may have
/// (function references). A Rust policy's table holds a few hundred; CPython's holds
/// 5,674, SpiderMonkey's 7,691.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 65_536;

/// Default for [`RuntimeConfig::max_memories_per_component`]: every policy toolchain in use
/// makes components with one linear memory; one more leaves room for an adapter's.
pub const DEFAULT_MAX_MEMORIES_PER_COMPONENT: u32 = 2;

/// How a memory handle runs its policy: on warm instances (the default) or a fresh instance
/// per call.
///
/// | | may see from an earlier call | never sees |
/// |---|---|---|
/// | `Warm` | what it left in its own memory during an earlier call *of the same handle and the same policy version*, at most [`RuntimeConfig::reuse_limit`] calls back, if that call ended cleanly | another handle's calls; anything from a call that trapped, failed, ran out of fuel or timed out; anything once its memory grew more than [`RuntimeConfig::reuse_memory_growth`] past its initial size, once it sat idle past [`RuntimeConfig::idle_timeout`], or once its version was replaced |
/// | `Strict` | nothing | anything from any other call |
///
/// Per-call state is never carried in either mode: the session, the key the call may touch,
/// the compute budget, the store-call count and the log allowance are set afresh for every
/// call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Reuse an instance for many calls of one handle (bounded, see the table above). A call
    /// pays for a component call, not for a new instance.
    #[default]
    Warm,
    /// Instantiate the policy afresh for every call and drop it afterwards: nothing a call
    /// leaves in memory reaches the next, at the price of an instantiation per call.
    Strict,
}

/// The sizes and limits of a [`PolicyRuntime`]. Every field has a default
/// ([`RuntimeConfig::default`]); change what your deployment needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Policy calls that run at once in the whole runtime ([`MAX_CONCURRENT_CALLS`]); more
    /// wait for a slot, within their call timeout.
    pub max_concurrent_calls: u32,
    /// Warm instances kept idle across every handle of the runtime
    /// ([`DEFAULT_MAX_IDLE_INSTANCES`]); past it an instance that finished its call is
    /// dropped. 0 keeps none (every handle behaves as [`Isolation::Strict`]).
    pub max_idle_instances: u32,
    /// Calls one warm instance serves before it is dropped ([`DEFAULT_REUSE_LIMIT`]). At least 1.
    pub reuse_limit: u32,
    /// How long a warm instance may sit unused before it is dropped
    /// ([`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// How many bytes a warm instance's linear memory may grow past its size at instantiation
    /// and still be reused ([`DEFAULT_REUSE_MEMORY_GROWTH`]); one that grew more is dropped
    /// after its call, as is one whose table grew at all. 0 drops any instance that grew.
    pub reuse_memory_growth: usize,
    /// Largest linear memory any policy instance may have ([`MAX_POLICY_MEMORY_BYTES`], which
    /// is also the most it can be set to): fixed when the pool is laid out, the ceiling for
    /// every handle's [`crate::Limits::memory_bytes`].
    pub max_memory_bytes: usize,
    /// Core module instances one policy component may hold
    /// ([`DEFAULT_MAX_CORE_INSTANCES_PER_COMPONENT`]). A component that holds more is refused
    /// at load with [`LoadError::ExceedsSandbox`] naming this setting.
    pub max_core_instances_per_component: u32,
    /// Tables one policy component may define ([`DEFAULT_MAX_TABLES_PER_COMPONENT`]).
    pub max_tables_per_component: u32,
    /// Entries one table may hold ([`DEFAULT_MAX_TABLE_ELEMENTS`]).
    pub max_table_elements: usize,
    /// Linear memories one policy component may define
    /// ([`DEFAULT_MAX_MEMORIES_PER_COMPONENT`]).
    pub max_memories_per_component: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: MAX_CONCURRENT_CALLS,
            max_idle_instances: DEFAULT_MAX_IDLE_INSTANCES,
            reuse_limit: DEFAULT_REUSE_LIMIT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            reuse_memory_growth: DEFAULT_REUSE_MEMORY_GROWTH,
            max_memory_bytes: MAX_POLICY_MEMORY_BYTES,
            max_core_instances_per_component: DEFAULT_MAX_CORE_INSTANCES_PER_COMPONENT,
            max_tables_per_component: DEFAULT_MAX_TABLES_PER_COMPONENT,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_memories_per_component: DEFAULT_MAX_MEMORIES_PER_COMPONENT,
        }
    }
}

impl RuntimeConfig {
    fn validate(&self) -> Result<(), LoadError> {
        let refuse = |what: &str| Err(LoadError::Engine(what.to_string()));
        if self.max_concurrent_calls == 0 {
            return refuse("max_concurrent_calls is 0: no call could ever run");
        }
        if self.idle_timeout.is_zero() && self.max_idle_instances > 0 {
            return refuse(
                "idle_timeout is 0 while max_idle_instances is not: an instance could never be \
                 kept (for no warm instances, set max_idle_instances to 0)",
            );
        }
        if self.reuse_limit == 0 {
            return refuse(
                "reuse_limit is 0: an instance serves at least the call it was made for",
            );
        }
        if self.max_memory_bytes == 0 || self.max_memory_bytes > MAX_POLICY_MEMORY_BYTES {
            return Err(LoadError::Engine(format!(
                "max_memory_bytes is {}: it must be from 1 to {MAX_POLICY_MEMORY_BYTES}",
                self.max_memory_bytes
            )));
        }
        if self
            .max_concurrent_calls
            .saturating_add(self.max_idle_instances)
            > MAX_INSTANCES
        {
            return Err(LoadError::Engine(format!(
                "max_concurrent_calls + max_idle_instances is over {MAX_INSTANCES} instances: the \
                 pool reserves several GiB of address space for each"
            )));
        }
        Ok(())
    }

    /// Instances alive at once: every running call holds one, idle ones wait, and loading a
    /// policy, building a handle or swapping makes one on trial, outside the call slots.
    fn total_instances(&self) -> u32 {
        self.max_concurrent_calls + self.max_idle_instances + TRIAL_INSTANCES
    }
}

/// A wasmtime engine with its instance pool, and the rules for warm policy instances.
///
/// Cheap to clone (an `Arc`). Policies compiled in it ([`PolicyRuntime::load`]) run their
/// calls in it; handles built on those policies share its call slots and its idle-instance
/// budget.
///
/// ```
/// use agent_memory::{Memory, PolicyRuntime, RuntimeConfig};
///
/// let runtime = PolicyRuntime::new(RuntimeConfig {
///     max_concurrent_calls: 64,
///     reuse_limit: 32,
///     ..RuntimeConfig::default()
/// })?;
/// let memory = Memory::builder().policy(runtime.default_policy()?).build()?;
/// # let _ = memory;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PolicyRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    config: RuntimeConfig,
    /// Permits to run a call: [`RuntimeConfig::max_concurrent_calls`].
    call_slots: Semaphore,
    /// Warm instances idle now, across every handle: kept at most
    /// [`RuntimeConfig::max_idle_instances`], so that running calls plus idle instances never
    /// exceed the pool.
    idle_instances: AtomicU32,
    /// Policy instances made for calls so far (trial instantiations not counted).
    instantiations: AtomicU64,
}

impl std::fmt::Debug for PolicyRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRuntime")
            .field("config", &self.inner.config)
            .field("idle_instances", &self.idle_instances())
            .finish_non_exhaustive()
    }
}

impl PolicyRuntime {
    /// The process's shared runtime, with [`RuntimeConfig::default`]: what
    /// [`crate::Policy::from_bytes`] and the built-in policies use.
    pub fn shared() -> &'static PolicyRuntime {
        static SHARED: std::sync::OnceLock<PolicyRuntime> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            // The default configuration is constant and valid on every target wasmtime
            // supports with cranelift; failing here is a build defect, not a runtime
            // condition.
            PolicyRuntime::new(RuntimeConfig::default())
                .expect("the default runtime configuration is valid")
        })
    }

    /// A runtime with its own engine and instance pool, sized by `config`.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        config.validate()?;
        let engine = Engine::new(&engine_config(&config))
            .map_err(|error| LoadError::Engine(format!("{error:#}")))?;
        Ok(Self::assemble(engine, config))
    }

    /// A runtime over an embedder's own `engine` (so a runtime that already has one, for its
    /// agent components, keeps one code cache and one configuration). The engine must have the
    /// component model and fuel enabled (`Config::wasm_component_model(true)`,
    /// `Config::consume_fuel(true)`); its own allocation strategy applies, so `config`'s
    /// `max_memory_bytes` is checked against each handle's limits but the pool is the
    /// engine's (a Rust policy needs at least 4 core instances, 2 memories and 4 tables per
    /// component; interpreted ones far more: see [`RuntimeConfig::default`]'s values, which
    /// [`PolicyRuntime::new`] gives its pool).
    pub fn with_engine(engine: Engine, config: RuntimeConfig) -> Result<Self, LoadError> {
        config.validate()?;
        check_engine(&engine)?;
        Ok(Self::assemble(engine, config))
    }

    fn assemble(engine: Engine, config: RuntimeConfig) -> Self {
        Self {
            inner: Arc::new(RuntimeInner {
                engine,
                call_slots: Semaphore::new(config.max_concurrent_calls as usize),
                config,
                idle_instances: AtomicU32::new(0),
                instantiations: AtomicU64::new(0),
            }),
        }
    }

    /// The engine policies are compiled in.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The sizes and limits it was made with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Warm instances idle now, across every handle.
    pub fn idle_instances(&self) -> u32 {
        self.inner.idle_instances.load(Ordering::Relaxed)
    }

    /// Policy instances made for calls so far, across every handle, a swap's self-check
    /// included (trial instantiations are not counted): with warm instances, far fewer than
    /// the calls; in strict isolation, one per call.
    pub fn instantiations(&self) -> u64 {
        self.inner.instantiations.load(Ordering::Relaxed)
    }

    /// Count one instance made for calls.
    pub(crate) fn count_instantiation(&self) {
        self.inner.instantiations.fetch_add(1, Ordering::Relaxed);
    }

    /// A slot to run one call: waits while [`RuntimeConfig::max_concurrent_calls`] calls are
    /// running.
    pub(crate) async fn call_slot(&self) -> SemaphorePermit<'_> {
        // The semaphore is never closed, so acquiring cannot fail.
        self.inner
            .call_slots
            .acquire()
            .await
            .unwrap_or_else(|_| unreachable!("the call slots are never closed"))
    }

    /// Take one place in the idle budget; `false` when it is full.
    pub(crate) fn reserve_idle(&self) -> bool {
        let max = self.inner.config.max_idle_instances;
        self.inner
            .idle_instances
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| {
                (idle < max).then_some(idle + 1)
            })
            .is_ok()
    }

    /// Give back `count` places of the idle budget.
    pub(crate) fn release_idle(&self, count: u32) {
        self.inner.idle_instances.fetch_sub(count, Ordering::AcqRel);
    }
}

/// A component the pool refused because it needs more than one instance's share, as a
/// [`LoadError::ExceedsSandbox`] naming the [`RuntimeConfig`] field that raises the limit, or
/// `None` for any other error.
///
/// wasmtime reports these refusals as text only (`PoolingInstanceAllocator::validate_*`), so
/// they are recognised by their wording, which `tests/tests/policy_languages.rs` pins against
/// the wasmtime in use: a changed wording falls back to the generic compile error, which still
/// carries wasmtime's own message.
pub(crate) fn sandbox_refusal(error: &wasmtime::Error) -> Option<LoadError> {
    const LIMITS: [(&str, &str, &str); 9] = [
        // The per-store counts (`CallState`'s limiter), which mirror the pool's.
        (
            "instance count too high",
            "core module instances",
            "max_core_instances_per_component",
        ),
        ("table count too high", "tables", "max_tables_per_component"),
        (
            "memory count too high",
            "linear memories",
            "max_memories_per_component",
        ),
        (
            "core module instances, which exceeds",
            "core module instances",
            "max_core_instances_per_component",
        ),
        (
            "linear memories, which exceeds",
            "linear memories",
            "max_memories_per_component",
        ),
        (
            "tables, which exceeds",
            "tables",
            "max_tables_per_component",
        ),
        (
            "defined tables count of",
            "tables in one module",
            "max_tables_per_component",
        ),
        (
            "minimum element size of",
            "table entries",
            "max_table_elements",
        ),
        (
            "memory has a minimum byte size of",
            "linear memory bytes",
            "max_memory_bytes",
        ),
    ];
    let text = format!("{error:#}");
    LIMITS
        .iter()
        .find(|(wording, _, _)| text.contains(wording))
        .map(|&(_, what, setting)| LoadError::ExceedsSandbox {
            what,
            setting,
            detail: text.replace('\n', " "),
        })
}

/// Refuse an embedder's engine that could not run a policy within its limits.
fn check_engine(engine: &Engine) -> Result<(), LoadError> {
    let mut store = wasmtime::Store::new(engine, ());
    store.set_fuel(0).map_err(|_| {
        LoadError::Engine("fuel is not enabled (Config::consume_fuel(true))".to_string())
    })
}

fn engine_config(config: &RuntimeConfig) -> Config {
    let mut engine = Config::new();
    // Async support is implied by wasmtime 48's async instantiate and call functions.
    engine
        .wasm_component_model(true)
        .consume_fuel(true)
        // The component-model-async machinery (streams, futures, concurrent tasks) is not part
        // of the policy contract, and its cargo feature is not compiled in (the workspace's
        // wasmtime features), so there is no concurrent-task state per Store for `call_async`
        // to pay for (wasmtime#11209). Said here too, so that enabling the feature for
        // something else does not quietly bring that cost back.
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool(config)));
    engine
}

/// The instance pool. With the default on-demand allocator each instance meant mapping and
/// unmapping a linear memory and a fiber stack, about half of all CPU time in a profile of
/// fresh-per-call instances. The pool keeps slots mapped and resets a slot's memory to the
/// component's initial image (copy-on-write) when it is reused. It holds every running call's
/// instance plus every idle warm one.
fn pool(config: &RuntimeConfig) -> PoolingAllocationConfig {
    let instances = config.total_instances();
    let mut pool = PoolingAllocationConfig::new();
    // Core instances are counted, not reserved, so their total may assume every instance is
    // the largest allowed. Memories and tables reserve address space per slot: their totals
    // assume one memory per instance on average, and a few tables.
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(config.max_core_instances_per_component))
        .total_memories(instances)
        .total_tables(instances.saturating_mul(config.max_tables_per_component))
        .total_stacks(instances)
        .max_core_instances_per_component(config.max_core_instances_per_component)
        .max_memories_per_component(config.max_memories_per_component)
        .max_tables_per_component(config.max_tables_per_component)
        .max_tables_per_module(config.max_tables_per_component)
        .table_elements(config.max_table_elements)
        .max_memory_size(config.max_memory_bytes)
        // Reset a reused slot by copying back only the pages the last instance touched (found
        // with Linux's PAGEMAP_SCAN where the kernel has it, 6.7+), instead of discarding them
        // with madvise and taking a page fault on each again.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_that_cannot_serve_are_refused() {
        let refused = |config: RuntimeConfig| PolicyRuntime::new(config).unwrap_err().to_string();
        let base = RuntimeConfig::default();
        assert!(
            refused(RuntimeConfig {
                max_concurrent_calls: 0,
                ..base
            })
            .contains("max_concurrent_calls")
        );
        assert!(
            refused(RuntimeConfig {
                reuse_limit: 0,
                ..base
            })
            .contains("reuse_limit")
        );
        assert!(
            refused(RuntimeConfig {
                max_memory_bytes: MAX_POLICY_MEMORY_BYTES + 1,
                ..base
            })
            .contains("max_memory_bytes")
        );
    }

    #[test]
    fn the_idle_budget_is_never_exceeded() {
        let runtime = PolicyRuntime::new(RuntimeConfig {
            max_concurrent_calls: 4,
            max_idle_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert!(runtime.reserve_idle());
        assert!(runtime.reserve_idle());
        assert!(!runtime.reserve_idle());
        runtime.release_idle(1);
        assert!(runtime.reserve_idle());
        assert_eq!(runtime.idle_instances(), 2);
    }
}
