//! One policy call in its sandbox: a fresh instance, the host's imports, and the limits.
//!
//! Every call instantiates the policy into a new `Store`, so a trap, a leak or a bad state in
//! one call cannot reach the next, and calls run concurrently without sharing guest memory.
//! Limits: linear memory (`StoreLimits`), compute (fuel: the policy's own instructions, see
//! [`crate::engine`] for why), and a wall-clock bound on the whole call (fuel does not run out
//! while a host call waits on I/O; the store's own timeouts and this bound stop that).
//!
//! The compute budget is a fixed part plus an allowance per byte handed to the policy: the
//! messages of a write (granted before the call) and each store reply (granted as it returns
//! to the guest, through the store's call hook, the one place that can add fuel while the
//! guest runs). A policy handed little data that loops is stopped after the fixed part; a
//! legitimate read of a large window gets the fuel its size calls for.

use tracing::Instrument;
use wasmtime::component::{ComponentExportIndex, Instance, TypedFunc};
use wasmtime::{CallHook, StoreLimits, StoreLimitsBuilder};

use crate::bindings::{self, Level};
use crate::engine;
use crate::error::PolicyError;
use crate::guard::Guard;
use crate::policy::{MemoryExports, Policy};
use crate::settings::{FUEL_YIELD_INTERVAL, Limits, Settings};
use crate::store::{ListOp, Store};

/// Longest log line a policy may emit; longer lines are cut. Keeps a chatty or hostile
/// policy from flooding the host's logs.
const MAX_LOG_LINE_BYTES: usize = 1024;

/// What one call's instance can reach: its store (through the guard), its settings and its
/// limits.
pub(crate) struct CallState {
    store: Option<Store>,
    guard: Guard,
    settings: bindings::Settings,
    store_limits: StoreLimits,
    fuel: FuelAccount,
}

/// The call's compute budget: what it was granted, and what waits to be added when control
/// returns to the guest.
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
    fn new(
        store: Option<Store>,
        settings: &Settings,
        session_id: &str,
        limits: &Limits,
        request_bytes: u64,
    ) -> Self {
        let initial = limits
            .fuel_base
            .saturating_add(request_bytes.saturating_mul(limits.fuel_per_byte));
        Self {
            store,
            guard: Guard::new(
                settings.key_for(session_id),
                settings.max_message_bytes,
                *limits,
            ),
            settings: settings.to_wit(),
            store_limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(4)
                .tables(8)
                .memories(2)
                .table_elements(100_000)
                // A failed memory.grow returns -1 to the guest; Rust's allocator then aborts,
                // which is a trap. Trapping right away gives the clearer error.
                .trap_on_grow_failure(true)
                .build(),
            fuel: FuelAccount {
                per_byte: limits.fuel_per_byte,
                granted: initial,
                pending: 0,
            },
        }
    }
}

/// A wasmtime store for one call, with every limit in place.
fn new_store(state: CallState) -> wasmtime::Store<CallState> {
    let fuel = state.fuel.granted;
    let mut store = wasmtime::Store::new(engine::shared(), state);
    store.limiter(|state| &mut state.store_limits);
    // Both only fail when fuel is not enabled in the engine, which `engine::config` does; a
    // store left without fuel would trap at once, visibly, rather than run unbounded.
    let _ = store.set_fuel(fuel);
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

/// A store for a trial instantiation: no store access, default limits.
pub(crate) fn trial_store() -> wasmtime::Store<CallState> {
    new_store(CallState::new(
        None,
        &Settings::default(),
        "trial",
        &Limits::default(),
        0,
    ))
}

/// Where and how one call runs: the policy, the store it may reach, the handle's settings and
/// limits, and the session it is about.
pub(crate) struct Call<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a Settings,
    pub(crate) limits: &'a Limits,
    pub(crate) session_id: &'a str,
}

/// `memory.get-context`.
pub(crate) async fn get_context(call: Call<'_>) -> Result<bindings::Context, PolicyError> {
    let session = call.session_id;
    call.run(0, async move |instance, exports, store| {
        // SAFETY (for every `typed` below): see `typed`.
        let function = unsafe {
            typed::<(&str,), (bindings::Context,)>(instance, store, exports.get_context)
        }?;
        Ok(function.call_async(store, (session,)).await?.0)
    })
    .await
}

/// `memory.add-message` for one message (so a policy may treat it specially), else
/// `memory.add-messages`.
pub(crate) async fn add_messages(
    call: Call<'_>,
    messages: Vec<bindings::Message>,
) -> Result<Result<bindings::WriteOutcome, bindings::WriteError>, PolicyError> {
    type Written = (Result<bindings::WriteOutcome, bindings::WriteError>,);
    let session = call.session_id;
    call.run(
        message_bytes(&messages),
        async move |instance, exports, store| {
            if let [message] = messages.as_slice() {
                let function = unsafe {
                    typed::<(&str, &bindings::Message), Written>(
                        instance,
                        store,
                        exports.add_message,
                    )
                }?;
                return Ok(function.call_async(store, (session, message)).await?.0);
            }
            let function = unsafe {
                typed::<(&str, &[bindings::Message]), Written>(
                    instance,
                    store,
                    exports.add_messages,
                )
            }?;
            Ok(function.call_async(store, (session, &messages)).await?.0)
        },
    )
    .await
}

/// `memory.add-and-get-context`.
pub(crate) async fn add_and_get_context(
    call: Call<'_>,
    messages: Vec<bindings::Message>,
) -> Result<Result<bindings::Turn, bindings::WriteError>, PolicyError> {
    type Turned = (Result<bindings::Turn, bindings::WriteError>,);
    let session = call.session_id;
    call.run(
        message_bytes(&messages),
        async move |instance, exports, store| {
            let function = unsafe {
                typed::<(&str, &[bindings::Message]), Turned>(
                    instance,
                    store,
                    exports.add_and_get_context,
                )
            }?;
            Ok(function.call_async(store, (session, &messages)).await?.0)
        },
    )
    .await
}

/// `memory.clear`.
pub(crate) async fn clear(call: Call<'_>) -> Result<bindings::WriteOutcome, PolicyError> {
    let session = call.session_id;
    call.run(0, async move |instance, exports, store| {
        let function =
            unsafe { typed::<(&str,), (bindings::WriteOutcome,)>(instance, store, exports.clear) }?;
        Ok(function.call_async(store, (session,)).await?.0)
    })
    .await
}

/// The export at `index` of `instance`, as a typed function, without checking its type again.
///
/// Checking the five functions of the `memory` export on every instantiation (what the
/// generated `PolicyPre::instantiate_async` does) cost about a sixth of a call. The check is
/// made once instead, when the policy is loaded: its trial instantiation resolves every export
/// through the generated bindings, with these same Rust types, and refuses a component whose
/// types differ. Every instance of that component has the same types.
///
/// # Safety
///
/// `Params` and `Return` must be the types the generated bindings use for the export at
/// `index` of the component `instance` was made from, which the policy's trial checked.
unsafe fn typed<Params, Return>(
    instance: &Instance,
    store: &mut wasmtime::Store<CallState>,
    index: ComponentExportIndex,
) -> wasmtime::Result<TypedFunc<Params, Return>>
where
    Params: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    Return: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let function = instance
        .get_func(&mut *store, index)
        .ok_or_else(|| wasmtime::format_err!("the policy lost an export it had when loaded"))?;
    // SAFETY: the caller guarantees the types (see above).
    Ok(unsafe { TypedFunc::new_unchecked(function) })
}

/// Bytes of message data handed to the policy (roles, contents and members): what its compute
/// budget grows with.
fn message_bytes(messages: &[bindings::Message]) -> u64 {
    messages
        .iter()
        .map(|message| {
            let content = match &message.content {
                Some(bindings::Content::Text(text) | bindings::Content::Json(text)) => text.len(),
                None => 0,
            };
            let members: usize = message
                .extra
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum();
            (message.role.len() + content + members) as u64
        })
        .sum()
}

impl Call<'_> {
    /// Run `export` in a fresh instance of the policy, within every limit: a slot in the
    /// instance pool (waited for within the call timeout), memory, fuel for `request_bytes`,
    /// and the wall-clock call timeout.
    async fn run<T>(
        self,
        request_bytes: u64,
        export: impl AsyncFnOnce(
            &Instance,
            &MemoryExports,
            &mut wasmtime::Store<CallState>,
        ) -> wasmtime::Result<T>,
    ) -> Result<T, PolicyError> {
        let timeout = self.limits.call_timeout;
        let run = async {
            let _slot = engine::call_slot().await;
            let state = CallState::new(
                Some(self.store.clone()),
                self.settings,
                self.session_id,
                self.limits,
                request_bytes,
            );
            let mut wasm_store = new_store(state);
            let loaded = self.policy.loaded();
            let instance = loaded
                .pre
                .instance_pre()
                .instantiate_async(&mut wasm_store)
                .await
                .map_err(|error| classify_instantiate(&error))?;
            export(&instance, &loaded.exports, &mut wasm_store)
                .await
                .map_err(|error| classify_trap(&error, wasm_store.data().fuel.granted))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(PolicyError::CallTimeout(timeout)),
        }
    }
}

fn classify_instantiate(error: &wasmtime::Error) -> PolicyError {
    PolicyError::Instantiate(format!("{error:#}"))
}

fn classify_trap(error: &wasmtime::Error, granted: u64) -> PolicyError {
    if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) {
        return PolicyError::ComputeBudgetExceeded { fuel: granted };
    }
    PolicyError::Trapped(format!("{error:#}"))
}

impl CallState {
    /// The store, or a trap: only trial instantiations run without one, and they make no calls.
    fn store(&self) -> wasmtime::Result<Store> {
        self.store
            .clone()
            .ok_or_else(|| wasmtime::format_err!("store called during a trial instantiation"))
    }
}

impl bindings::agent_memory::policy::types::Host for CallState {}

impl bindings::agent_memory::policy::store::Host for CallState {
    async fn read_range(
        &mut self,
        key: String,
        range: bindings::Range,
    ) -> wasmtime::Result<Result<Vec<Vec<u8>>, bindings::StoreError>> {
        let store = self.store()?;
        if let Err(error) = self
            .guard
            .admit(&key)
            .and_then(|()| self.guard.check_read_request(range.start, range.stop))
        {
            return Ok(Err(error.into()));
        }
        let span = tracing::debug_span!(
            "agent_memory.read_range",
            start = range.start,
            stop = range.stop
        );
        let entries = store
            .read_range(&key, range.start, range.stop)
            .instrument(span)
            .await
            .and_then(|entries| self.guard.check_read_reply(&entries).map(|()| entries));
        if let Ok(entries) = &entries {
            let bytes: u64 = entries.iter().map(|entry| entry.len() as u64).sum();
            self.fuel.grant_for(bytes);
        }
        Ok(entries.map_err(Into::into))
    }

    async fn apply(
        &mut self,
        key: String,
        ops: Vec<bindings::ListOp>,
    ) -> wasmtime::Result<Result<bindings::Applied, bindings::StoreError>> {
        let store = self.store()?;
        let ops: Vec<ListOp> = ops.into_iter().map(ListOp::from).collect();
        if let Err(error) = self
            .guard
            .admit(&key)
            .and_then(|()| self.guard.check_transaction(&ops))
        {
            return Ok(Err(error.into()));
        }
        let span = tracing::debug_span!("agent_memory.apply", ops = ops.len());
        let applied = store.apply(&key, ops).instrument(span).await;
        Ok(applied
            .map(|applied| {
                // The writes are applied; entries over the read caps are not handed over, and
                // the policy is told why.
                let read = applied.read.map(|read| {
                    read.and_then(|entries| {
                        self.guard.check_read_reply(&entries)?;
                        let bytes: u64 = entries.iter().map(|entry| entry.len() as u64).sum();
                        self.fuel.grant_for(bytes);
                        Ok(entries)
                    })
                    .map_err(Into::into)
                });
                bindings::Applied {
                    length_after_push: applied.length_after_push,
                    deleted: applied.deleted,
                    read,
                }
            })
            .map_err(Into::into))
    }
}

impl bindings::agent_memory::policy::log::Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = truncate(&message, MAX_LOG_LINE_BYTES);
        match level {
            Level::Debug => tracing::debug!(target: "agent_memory::policy", "{message}"),
            Level::Info => tracing::info!(target: "agent_memory::policy", "{message}"),
            Level::Warn => tracing::warn!(target: "agent_memory::policy", "{message}"),
            Level::Error => tracing::error!(target: "agent_memory::policy", "{message}"),
        }
        Ok(())
    }
}

impl bindings::agent_memory::policy::config::Host for CallState {
    async fn get_settings(&mut self) -> wasmtime::Result<bindings::Settings> {
        Ok(self.settings.clone())
    }
}

impl From<bindings::ListOp> for ListOp {
    fn from(op: bindings::ListOp) -> Self {
        match op {
            bindings::ListOp::Push(values) => Self::Push(values),
            bindings::ListOp::Trim(range) => Self::Trim {
                start: range.start,
                stop: range.stop,
            },
            bindings::ListOp::Expire(seconds) => Self::Expire { seconds },
            bindings::ListOp::Delete => Self::Delete,
            bindings::ListOp::Read(range) => Self::Read {
                start: range.start,
                stop: range.stop,
            },
        }
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

    #[test]
    fn log_lines_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
