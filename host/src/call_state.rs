//! What one call's instance can reach: the host side of the policy's contract.
//!
//! [`CallState`] is the data of a policy instance's wasmtime `Store`: the store it may reach
//! (through the guard of the call it is serving), its settings, its memory limits and the
//! call's compute budget. A warm instance serves many calls, so everything about one call is
//! set by [`CallState::begin_call`] and cleared by [`CallState::end_call`]. The generated `Host`
//! traits are implemented on it here, and [`new_store`] puts every limit in place. The compute budget
//! is a fixed part plus an allowance per byte handed to the policy: the messages of a write
//! (granted before the call) and each store reply (granted as it returns to the guest, through
//! the store's call hook, the one place that can add fuel while the guest runs).
//!
//! [`crate::policy`] (its linker and trial instantiation), [`crate::instances`] and
//! [`crate::sandbox`] (the calls) build on this module, which needs none of them.

use std::time::{Duration, Instant};

use tracing::Instrument;
use wasmtime::{CallHook, Engine, ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use crate::contract::faults::StoreFault;
use crate::contract::{self, Level};
use crate::guard::Guard;
use crate::runtime::RuntimeConfig;
use crate::settings::{FUEL_YIELD_INTERVAL, Limits, Settings};
use crate::store::Store;

/// Longest log line a policy may emit; longer lines are cut. Keeps a chatty or hostile
/// policy from flooding the host's logs.
const MAX_LOG_LINE_BYTES: usize = 1024;

/// Log lines one call may emit: a policy logs a handful (a retry, a skipped entry); past this
/// many, lines are counted and dropped, and one line at the end of the call says how many. A
/// loop logging at every turn would otherwise write hundreds of thousands of lines to the
/// operator's terminal before its compute budget stopped it.
const MAX_LOG_LINES_PER_CALL: u32 = 64;

/// Log bytes one call may emit (see [`MAX_LOG_LINES_PER_CALL`]).
const MAX_LOG_BYTES_PER_CALL: usize = 16 << 10;

/// Log calls one call may make at all, dropped ones included: a host call costs the policy
/// almost no fuel, so a loop that only logs would otherwise run for seconds (millions of
/// calls) before its compute budget stopped it. Far past anything a policy that reports what
/// it does needs; past it the call is stopped as a runaway (a trap, as for any other limit).
const MAX_LOG_CALLS_PER_CALL: u64 = 10_000;

/// How a policy's panic hook announces the panic in an `error` log line: the host keeps that
/// line to say why the call trapped.
const PANIC_PREFIX: &str = "panicked";

/// What a policy instance can reach: its store (through the guard of the call it serves), its
/// settings and its limits.
pub(crate) struct CallState {
    store: Option<Store>,
    /// The call being served; `None` between calls (and during instantiation), when every
    /// store call is refused.
    guard: Option<Guard>,
    settings: Settings,
    limits: Limits,
    memory: MemoryWatch,
    fuel: FuelAccount,
    logs: LogAccount,
    /// How long the call's store calls waited on the store: the rest of the call's export is
    /// the policy's own time.
    store_wait: Duration,
}

/// The memory limits, and how much the instance's memory and tables grew after it was
/// instantiated: an instance that grew too much is not reused (see [`crate::instances`]).
struct MemoryWatch {
    limits: StoreLimits,
    armed: bool,
    memory_growth: usize,
    table_grew: bool,
}

impl ResourceLimiter for MemoryWatch {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed && self.armed {
            self.memory_growth = self
                .memory_growth
                .saturating_add(desired.saturating_sub(current));
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.table_growing(current, desired, maximum)?;
        self.table_grew |= allowed && self.armed;
        Ok(allowed)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// What the call has logged: lines and bytes let through, lines dropped, the panic line.
#[derive(Default)]
struct LogAccount {
    lines: u32,
    bytes: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
    panic: Option<String>,
}

/// When the call is over (ended by [`CallState::end_call`], or its store dropped however it
/// ended: a trap, the call timeout), say once how many lines were dropped over the caps.
impl Drop for LogAccount {
    fn drop(&mut self) {
        if self.dropped_lines > 0 {
            tracing::warn!(
                target: "agent_memory::policy",
                "the policy logged {} more lines ({} bytes) in this call; dropped (at most {} \
                 lines and {} bytes per call)",
                self.dropped_lines,
                self.dropped_bytes,
                MAX_LOG_LINES_PER_CALL,
                MAX_LOG_BYTES_PER_CALL
            );
        }
    }
}

/// The call's compute budget: what it was granted, and what waits to be added when control
/// returns to the guest.
#[derive(Default)]
struct FuelAccount {
    per_byte: u64,
    granted: u64,
    pending: u64,
}

impl FuelAccount {
    /// Grant the allowance for `bytes` handed to the policy; added on return to the guest.
    fn grant_for(&mut self, bytes: u64) {
        let fuel = bytes.saturating_mul(self.per_byte);
        self.pending = self.pending.saturating_add(fuel);
        self.granted = self.granted.saturating_add(fuel);
    }
}

impl CallState {
    /// The state of an instance serving a handle with this store (`None` for a trial), settings
    /// and limits; no call yet.
    ///
    /// The instance, table and memory counts come from the runtime's `sandbox`, the same
    /// numbers its pool enforces per component: with an embedder's own engine
    /// ([`crate::PolicyRuntime::with_engine`]), whose allocator may bound nothing, they are
    /// the only bound.
    pub(crate) fn new(
        store: Option<Store>,
        settings: &Settings,
        limits: &Limits,
        sandbox: &RuntimeConfig,
    ) -> Self {
        let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            store,
            guard: None,
            settings: settings.clone(),
            limits: *limits,
            memory: MemoryWatch {
                limits: StoreLimitsBuilder::new()
                    .memory_size(limits.memory_bytes)
                    .instances(count(sandbox.max_core_instances_per_component))
                    .tables(count(sandbox.max_tables_per_component))
                    .memories(count(sandbox.max_memories_per_component))
                    .table_elements(sandbox.max_table_elements)
                    // A failed memory.grow returns -1 to the guest; Rust's allocator then
                    // aborts, which is a trap. Trapping right away gives the clearer error.
                    .trap_on_grow_failure(true)
                    .build(),
                armed: false,
                memory_growth: 0,
                table_grew: false,
            },
            fuel: FuelAccount::default(),
            logs: LogAccount::default(),
            store_wait: Duration::ZERO,
        }
    }

    /// Start serving one call about `session_id`, with `request_bytes` of messages handed to
    /// the policy: a guard for that session's key alone, a fresh log allowance, and the compute
    /// budget for the call, which is returned (the caller sets it on the Store).
    pub(crate) fn begin_call(&mut self, session_id: &str, request_bytes: u64) -> u64 {
        let limits = &self.limits;
        let initial = limits
            .fuel_base
            .saturating_add(request_bytes.saturating_mul(limits.fuel_per_byte));
        self.guard = Some(Guard::new(
            self.settings.key_for(session_id),
            self.settings.max_message_bytes,
            *limits,
        ));
        self.fuel = FuelAccount {
            per_byte: limits.fuel_per_byte,
            granted: initial,
            pending: 0,
        };
        self.logs = LogAccount::default();
        self.store_wait = Duration::ZERO;
        initial
    }

    /// The call is over and returned cleanly: report dropped log lines, and refuse store calls
    /// until the next one begins.
    pub(crate) fn end_call(&mut self) {
        self.guard = None;
        // Dropping the account reports what it dropped.
        self.logs = LogAccount::default();
    }

    /// From now on, note any growth of the instance's memory or tables: called once the
    /// instance exists, so the sizes it was made with are its baseline.
    pub(crate) fn watch_memory_growth(&mut self) {
        self.memory.armed = true;
    }

    /// How long the current call's store calls have waited on the store so far.
    pub(crate) fn store_wait(&self) -> Duration {
        self.store_wait
    }

    /// Bytes the instance's linear memory grew since it was instantiated.
    pub(crate) fn memory_growth(&self) -> usize {
        self.memory.memory_growth
    }

    /// Whether one of the instance's tables grew since it was instantiated.
    pub(crate) fn table_grew(&self) -> bool {
        self.memory.table_grew
    }
}

/// A wasmtime store for a policy instance in `engine` (the policy's), with every limit in
/// place. Its fuel is set per call.
pub(crate) fn new_store(engine: &Engine, state: CallState) -> wasmtime::Store<CallState> {
    let mut store = wasmtime::Store::new(engine, state);
    store.limiter(|state| &mut state.memory);
    // Fails only when fuel is not enabled in the engine, which the runtime configures and
    // checks of an embedder's engine; a store left without fuel would trap at once, visibly,
    // rather than run unbounded.
    let _ = store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL));
    store.call_hook(|mut context, hook| {
        if matches!(hook, CallHook::ReturningFromHost) {
            let pending = std::mem::take(&mut context.data_mut().fuel.pending);
            if pending > 0 {
                let left = context.get_fuel()?;
                context.set_fuel(left.saturating_add(pending))?;
            }
        }
        Ok(())
    });
    store
}

/// A store for a trial instantiation in `engine`: no store access, the given limits, a call
/// begun so that the trial runs on the fixed part of the budget.
pub(crate) fn trial_store(
    engine: &Engine,
    limits: &Limits,
    sandbox: &RuntimeConfig,
) -> wasmtime::Store<CallState> {
    let mut state = CallState::new(None, &Settings::default(), limits, sandbox);
    let fuel = state.begin_call("trial", 0);
    let mut store = new_store(engine, state);
    let _ = store.set_fuel(fuel);
    store
}

impl CallState {
    /// Fuel granted to the call so far (the fixed part and every allowance).
    pub(crate) fn granted_fuel(&self) -> u64 {
        self.fuel.granted
    }

    /// What the policy logged as it panicked (its panic hook's `error` line), if it did.
    pub(crate) fn panic_words(&self) -> Option<&str> {
        self.logs.panic.as_deref()
    }

    /// The store, or a trap: only trial instantiations run without one, and they make no calls.
    fn store(&self) -> wasmtime::Result<Store> {
        self.store
            .clone()
            .ok_or_else(|| wasmtime::format_err!("store called during a trial instantiation"))
    }
}

/// What a store call gets when no call is being served: start code run at instantiation may
/// not touch the store (it has no session).
fn outside_a_call() -> contract::StoreError {
    contract::StoreError::Denied("the store may only be used during a call".to_string())
}

impl contract::types_host::Host for CallState {
    fn convert_store_error(&mut self, fault: StoreFault) -> wasmtime::Result<contract::StoreError> {
        contract::faults::decide(fault)
    }
}

impl contract::store::Host for CallState {
    async fn read_range(
        &mut self,
        key: String,
        range: contract::Range,
    ) -> Result<Vec<Vec<u8>>, StoreFault> {
        let store = self.store()?;
        let Some(guard) = self.guard.as_mut() else {
            return Err(outside_a_call().into());
        };
        if let Err(error) = guard
            .admit(&key)
            .and_then(|()| guard.check_read_request(range.start, range.stop))
        {
            return Err(StoreFault::Refused(error.into()));
        }
        let span = tracing::debug_span!(
            "agent_memory.read_range",
            start = range.start,
            stop = range.stop
        );
        let started = Instant::now();
        let entries = store
            .read_range(&key, range.start, range.stop)
            .instrument(span)
            .await;
        self.store_wait += started.elapsed();
        let entries =
            entries.and_then(|entries| guard.check_read_reply(&entries).map(|()| entries));
        if let Ok(entries) = &entries {
            let bytes: u64 = entries.iter().map(|entry| entry.len() as u64).sum();
            self.fuel.grant_for(bytes);
        }
        entries.map_err(|error| StoreFault::Refused(error.into()))
    }

    async fn apply(
        &mut self,
        key: String,
        ops: Vec<contract::ListOp>,
    ) -> Result<contract::Applied, StoreFault> {
        let store = self.store()?;
        let Some(guard) = self.guard.as_mut() else {
            return Err(outside_a_call().into());
        };
        if let Err(error) = guard
            .admit(&key)
            .and_then(|()| guard.check_transaction(&ops))
        {
            return Err(StoreFault::Refused(error.into()));
        }
        let span = tracing::debug_span!("agent_memory.apply", ops = ops.len());
        let started = Instant::now();
        let applied = store.apply(&key, ops).instrument(span).await;
        self.store_wait += started.elapsed();
        applied
            .map(|mut applied| {
                // The writes are applied; entries over the read caps are not handed over, and
                // the policy is told why.
                applied.read = applied.read.map(|read| {
                    read.and_then(|entries| {
                        guard.check_read_reply(&entries)?;
                        let bytes: u64 = entries.iter().map(|entry| entry.len() as u64).sum();
                        self.fuel.grant_for(bytes);
                        Ok(entries)
                    })
                });
                applied.into()
            })
            .map_err(|error| StoreFault::Refused(error.into()))
    }
}

impl contract::log::Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = truncate(&message, MAX_LOG_LINE_BYTES);
        let logs = &mut self.logs;
        if level == Level::Error && message.starts_with(PANIC_PREFIX) {
            // Kept for the trap that follows, which reports it: not logged twice.
            logs.panic = Some(message.to_string());
            tracing::debug!(target: "agent_memory::policy", "{message}");
            return Ok(());
        }
        if logs.lines >= MAX_LOG_LINES_PER_CALL
            || logs.bytes + message.len() > MAX_LOG_BYTES_PER_CALL
        {
            logs.dropped_lines += 1;
            logs.dropped_bytes += message.len() as u64;
            if u64::from(logs.lines) + logs.dropped_lines >= MAX_LOG_CALLS_PER_CALL {
                return Err(wasmtime::Error::msg(format!(
                    "logged {MAX_LOG_CALLS_PER_CALL} lines in one call: stopped as a runaway \
                     loop"
                )));
            }
            return Ok(());
        }
        logs.lines += 1;
        logs.bytes += message.len();
        match level {
            Level::Debug => tracing::debug!(target: "agent_memory::policy", "{message}"),
            Level::Info => tracing::info!(target: "agent_memory::policy", "{message}"),
            Level::Warn => tracing::warn!(target: "agent_memory::policy", "{message}"),
            Level::Error => tracing::error!(target: "agent_memory::policy", "{message}"),
        }
        Ok(())
    }
}

impl contract::config::Host for CallState {
    async fn get_settings(&mut self) -> wasmtime::Result<contract::Settings> {
        Ok((&self.settings).into())
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::config::Host as _;
    use crate::contract::log::Host as _;
    use crate::contract::store::Host as _;
    use crate::store::InMemoryStore;

    #[test]
    fn log_lines_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    // The capability's `Host` impls on their own, over a store in memory, without an engine
    // or a component: what a policy's imports do, call by call.

    /// The state of an instance over a fresh store in memory, with default settings and limits.
    fn state() -> CallState {
        CallState::new(
            Some(Store::from(InMemoryStore::new())),
            &Settings::default(),
            &Limits::default(),
            &RuntimeConfig::default(),
        )
    }

    fn range(start: i64, stop: i64) -> contract::Range {
        contract::Range { start, stop }
    }

    #[tokio::test]
    async fn a_call_reads_and_writes_its_own_session_and_nothing_else() {
        let mut state = state();
        state.begin_call("s", 0);
        let key = Settings::default().key_for("s");
        let push = contract::ListOp::Push(vec![b"{\"role\": \"user\"}".to_vec()]);
        let applied = state
            .apply(
                key.clone(),
                vec![push.clone(), contract::ListOp::Read(range(0, -1))],
            )
            .await
            .unwrap();
        assert_eq!(applied.length_after_push, Some(1));
        assert_eq!(
            applied.read,
            Some(Ok(vec![b"{\"role\": \"user\"}".to_vec()]))
        );
        let read = state.read_range(key, range(0, -1)).await.unwrap();
        assert_eq!(read.len(), 1);
        // Another session's key, and a key outside the prefix: denied, as values.
        for other in [Settings::default().key_for("t"), "elsewhere".to_string()] {
            let denied = state.read_range(other.clone(), range(0, -1)).await;
            assert!(
                matches!(
                    denied,
                    Err(StoreFault::Refused(contract::StoreError::Denied(_)))
                ),
                "{other}: {denied:?}"
            );
            let denied = state.apply(other, vec![push.clone()]).await;
            assert!(matches!(
                denied,
                Err(StoreFault::Refused(contract::StoreError::Denied(_)))
            ));
        }
    }

    #[tokio::test]
    async fn outside_a_call_every_store_call_is_denied_and_a_trial_has_no_store() {
        let mut state = state();
        let key = Settings::default().key_for("s");
        let denied = state.read_range(key.clone(), range(0, -1)).await;
        assert!(matches!(
            denied,
            Err(StoreFault::Refused(contract::StoreError::Denied(_)))
        ));
        state.begin_call("s", 0);
        state.end_call();
        let denied = state.apply(key.clone(), vec![]).await;
        assert!(matches!(
            denied,
            Err(StoreFault::Refused(contract::StoreError::Denied(_)))
        ));
        // A trial instantiation's state has no store at all: a call traps (the fault is a
        // trap, not a value the policy could handle).
        let mut trial = CallState::new(
            None,
            &Settings::default(),
            &Limits::default(),
            &RuntimeConfig::default(),
        );
        trial.begin_call("s", 0);
        let fault = trial.read_range(key, range(0, -1)).await;
        assert!(matches!(fault, Err(StoreFault::Trap(_))), "{fault:?}");
    }

    #[tokio::test]
    async fn a_read_grants_fuel_for_the_bytes_it_hands_over_and_the_wait_is_timed() {
        let mut state = state();
        let granted = state.begin_call("s", 0);
        assert_eq!(granted, Limits::default().fuel_base);
        let key = Settings::default().key_for("s");
        let entry = vec![b'x'; 1000];
        state
            .apply(key.clone(), vec![contract::ListOp::Push(vec![entry])])
            .await
            .unwrap();
        let before = state.granted_fuel();
        state.read_range(key, range(0, -1)).await.unwrap();
        assert_eq!(
            state.granted_fuel() - before,
            1000 * Limits::default().fuel_per_byte
        );
        assert!(state.store_wait() > Duration::ZERO);
        // A new call starts its accounts afresh.
        state.begin_call("s", 0);
        assert_eq!(state.granted_fuel(), Limits::default().fuel_base);
        assert_eq!(state.store_wait(), Duration::ZERO);
    }

    #[tokio::test]
    async fn the_settings_are_the_handles_and_a_panic_line_is_kept_not_logged() {
        let mut state = state();
        let settings = state.get_settings().await.unwrap();
        assert_eq!(settings.max_messages, Settings::default().max_messages);
        state.begin_call("s", 0);
        state
            .log(Level::Error, "panicked at src/lib.rs:1: boom".to_string())
            .await
            .unwrap();
        assert_eq!(state.panic_words(), Some("panicked at src/lib.rs:1: boom"));
        // A loop that only logs is stopped once it passes the cap of log calls.
        let mut stopped = false;
        for _ in 0..=MAX_LOG_CALLS_PER_CALL {
            if state.log(Level::Info, "x".to_string()).await.is_err() {
                stopped = true;
                break;
            }
        }
        assert!(
            stopped,
            "{MAX_LOG_CALLS_PER_CALL} log calls were not stopped"
        );
    }
}
