//! One policy call in its sandbox: a fresh instance, the host's imports, and the limits.
//!
//! Every call instantiates the policy into a new `Store`, so a trap, a leak or a bad state in
//! one call cannot reach the next, and calls run concurrently without sharing guest memory.
//! Limits: linear memory (`StoreLimits`), compute (fuel: the policy's own instructions, see
//! [`crate::engine`] for why), and a wall-clock bound on the whole call (fuel does not run out
//! while a host call waits on I/O; the store's own timeouts and this bound stop that).
//!
//! The compute budget (see [`crate::call_state`]) is a fixed part plus an allowance per byte
//! handed to the policy: a policy handed little data that loops is stopped after the fixed
//! part; a legitimate read of a large window gets the fuel its size calls for.

use tracing::Instrument;
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, TypedFunc,
};

use crate::bindings;
use crate::call_state::{CallState, new_store};
use crate::engine;
use crate::error::PolicyError;
use crate::policy::{MemoryExports, Policy};
use crate::settings::{Limits, Settings};
use crate::store::Store;

/// Where and how one call runs: the policy, the store it may reach, the handle's settings and
/// limits, and the session it is about.
pub(crate) struct Call<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a Settings,
    pub(crate) limits: &'a Limits,
    pub(crate) session_id: &'a str,
}

/// What a `memory` export returns: its result, or the error the policy chose to return.
pub(crate) type PolicyResult<T> = Result<T, bindings::MemoryError>;

/// `memory.get-context`.
pub(crate) async fn get_context(
    call: Call<'_>,
) -> Result<PolicyResult<bindings::Context>, PolicyError> {
    let session = call.session_id;
    call.run(0, async move |instance, exports, store| {
        // SAFETY (for every `call_export` below): the types are those the generated bindings
        // give this export, which the policy's trial instantiation checked.
        unsafe { call_export(instance, store, exports.get_context, (session,)) }.await
    })
    .await
}

/// `memory.add-message` for one message (so a policy may treat it specially), else
/// `memory.add-messages`.
pub(crate) async fn add_messages(
    call: Call<'_>,
    messages: Vec<bindings::Message>,
) -> Result<PolicyResult<bindings::WriteOutcome>, PolicyError> {
    let session = call.session_id;
    call.run(
        message_bytes(&messages),
        async move |instance, exports, store| match messages.as_slice() {
            [message] => {
                unsafe { call_export(instance, store, exports.add_message, (session, message)) }
                    .await
            }
            all => {
                unsafe { call_export(instance, store, exports.add_messages, (session, all)) }.await
            }
        },
    )
    .await
}

/// `memory.add-and-get-context`.
pub(crate) async fn add_and_get_context(
    call: Call<'_>,
    messages: Vec<bindings::Message>,
) -> Result<PolicyResult<bindings::Turn>, PolicyError> {
    let session = call.session_id;
    call.run(
        message_bytes(&messages),
        async move |instance, exports, store| {
            let index = exports.add_and_get_context;
            unsafe { call_export(instance, store, index, (session, messages.as_slice())) }.await
        },
    )
    .await
}

/// `memory.clear`.
pub(crate) async fn clear(
    call: Call<'_>,
) -> Result<PolicyResult<bindings::WriteOutcome>, PolicyError> {
    let session = call.session_id;
    call.run(0, async move |instance, exports, store| {
        unsafe { call_export(instance, store, exports.clear, (session,)) }.await
    })
    .await
}

/// Call the export at `index` of `instance` with `params`, as a typed function whose type is
/// not checked again.
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
async unsafe fn call_export<Params, Return: 'static>(
    instance: &Instance,
    store: &mut wasmtime::Store<CallState>,
    index: ComponentExportIndex,
    params: Params,
) -> wasmtime::Result<Return>
where
    Params: ComponentNamedList + Lower + Send + Sync,
    (Return,): ComponentNamedList + Lift + Send + Sync,
{
    let function = instance
        .get_func(&mut *store, index)
        .ok_or_else(|| wasmtime::format_err!("the policy lost an export it had when loaded"))?;
    // SAFETY: the caller guarantees the types (see above).
    let typed = unsafe { TypedFunc::<Params, (Return,)>::new_unchecked(function) };
    Ok(typed.call_async(store, params).await?.0)
}

/// Bytes of message data handed to the policy (member names and values): what its compute
/// budget grows with.
fn message_bytes(messages: &[bindings::Message]) -> u64 {
    messages
        .iter()
        .flat_map(|message| &message.members)
        .map(|member| {
            let value = match &member.value {
                bindings::MemberValue::Text(text) | bindings::MemberValue::Json(text) => text,
            };
            (member.name.len() + value.len()) as u64
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
            let loaded = self.policy.loaded();
            let mut wasm_store = new_store(loaded.engine(), state);
            let instance = loaded
                .pre
                .instance_pre()
                .instantiate_async(&mut wasm_store)
                .await
                .map_err(|error| classify_instantiate(&error))?;
            export(&instance, &loaded.exports, &mut wasm_store)
                .await
                .map_err(|error| classify_trap(&error, wasm_store.data()))
        };
        // Every log line of the call (the policy's own, the store's) carries the version
        // that served it.
        let span = tracing::debug_span!("agent_memory.call", policy = self.policy.short_digest());
        match tokio::time::timeout(timeout, run).instrument(span).await {
            Ok(result) => result,
            Err(_) => Err(PolicyError::CallTimeout(timeout)),
        }
    }
}

fn classify_instantiate(error: &wasmtime::Error) -> PolicyError {
    PolicyError::Instantiate(format!("{error:#}"))
}

fn classify_trap(error: &wasmtime::Error, state: &CallState) -> PolicyError {
    let trap = error.downcast_ref::<wasmtime::Trap>();
    if trap == Some(&wasmtime::Trap::OutOfFuel) {
        return PolicyError::ComputeBudgetExceeded {
            fuel: state.granted_fuel(),
        };
    }
    // One line for people; the wasm backtrace (long, mangled) is for `-v`.
    tracing::debug!(target: "agent_memory::policy", error = format!("{error:?}"), "policy trapped");
    PolicyError::Trapped {
        reason: match trap {
            Some(trap) => {
                let text = trap.to_string();
                text.strip_prefix("wasm trap: ")
                    .unwrap_or(&text)
                    .to_string()
            }
            None => error.root_cause().to_string(),
        },
        panic: state.panic_words().map(str::to_string),
    }
}
