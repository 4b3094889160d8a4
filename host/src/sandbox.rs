//! One policy call in its sandbox: an instance of the handle's policy (warm or fresh, see
//! [`crate::instances`]), the host's imports, and the limits.
//!
//! Calls run concurrently, each on its own instance: no two calls ever share guest memory at
//! once. Limits: linear memory (`StoreLimits`), compute (fuel: the policy's own instructions,
//! see [`crate::runtime`] for why), and a wall-clock bound on the whole call (fuel does not run
//! out while a host call waits on I/O; the store's own timeouts and this bound stop that). An
//! instance whose call did not return cleanly is dropped, never reused.
//!
//! The compute budget (see [`crate::call_state`]) is a fixed part plus an allowance per byte
//! handed to the policy: a policy handed little data that loops is stopped after the fixed
//! part; a legitimate read of a large window gets the fuel its size calls for.

use std::time::{Duration, Instant};

use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, TypedFunc,
};

use std::sync::Arc;

use crate::call_state::CallState;
use crate::contract;
use crate::error::PolicyError;
use crate::instances::{Instances, Warm};
use crate::policy::MemoryExports;
use crate::telemetry::meter::Recycle;

/// Where one call runs: the instances of the handle's policy version (which know its store,
/// settings and limits), and the session it is about.
pub(crate) struct Call<'a> {
    pub(crate) instances: &'a Arc<Instances>,
    pub(crate) session_id: &'a str,
}

/// What a `memory` export returns: its result, or the error the policy chose to return.
pub(crate) type PolicyResult<T> = Result<T, contract::MemoryError>;

/// A policy's answer, and the instance that gave it.
pub(crate) struct Answer<T> {
    /// What the export returned.
    pub(crate) value: T,
    /// The instance, kept warm only once the host has accepted the answer.
    pub(crate) served_by: ServedBy,
    /// The policy's own time: the export's, less what its store calls waited on the store.
    pub(crate) policy_time: Duration,
}

/// The instance that answered a call: [`ServedBy::keep`] gives it back to its handle once the
/// host has accepted the answer; dropped instead (an answer the host refused, such as invalid
/// JSON in a message), it is dropped with it, never reused.
pub(crate) struct ServedBy {
    /// Always `Some` until kept.
    instance: Option<Warm>,
    instances: Arc<Instances>,
}

impl ServedBy {
    /// The answer was accepted: the instance may serve the handle's next call.
    pub(crate) fn keep(mut self) {
        if let Some(instance) = self.instance.take() {
            self.instances.checkin(instance);
        }
    }
}

impl Drop for ServedBy {
    fn drop(&mut self) {
        if let Some(instance) = &mut self.instance {
            instance.retire(Recycle::RefusedAnswer);
        }
    }
}

/// `memory.get-context`.
pub(crate) async fn get_context(
    call: Call<'_>,
) -> Result<Answer<PolicyResult<contract::Context>>, PolicyError> {
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
    messages: Vec<contract::Message>,
) -> Result<Answer<PolicyResult<contract::WriteOutcome>>, PolicyError> {
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
    messages: Vec<contract::Message>,
) -> Result<Answer<PolicyResult<contract::Turn>>, PolicyError> {
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
) -> Result<Answer<PolicyResult<contract::WriteOutcome>>, PolicyError> {
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
fn message_bytes(messages: &[contract::Message]) -> u64 {
    messages
        .iter()
        .flat_map(|message| &message.members)
        .map(|member| {
            let value = match &member.value {
                contract::MemberValue::Text(text) | contract::MemberValue::Json(text) => text,
            };
            (member.name.len() + value.len()) as u64
        })
        .sum()
}

impl Call<'_> {
    /// Run `export` on an instance of the policy, within every limit: a call slot of the
    /// runtime (waited for within the call timeout), memory, fuel for `request_bytes`, and the
    /// wall-clock call timeout. The answer holds the instance (see [`ServedBy`]); a call that
    /// did not return cleanly drops it, and on a timeout it is dropped with the cancelled call.
    async fn run<T>(
        self,
        request_bytes: u64,
        export: impl AsyncFnOnce(
            &Instance,
            &MemoryExports,
            &mut wasmtime::Store<CallState>,
        ) -> wasmtime::Result<T>,
    ) -> Result<Answer<T>, PolicyError> {
        let instances = self.instances;
        let policy = instances.policy();
        let timeout = instances.limits().call_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let run = async {
            // Waiting for a slot counts against the call's timeout, but running out of time
            // there is the runtime's saturation, not the policy's slowness: said apart.
            let Ok(_slot) = tokio::time::timeout_at(deadline, policy.runtime().call_slot()).await
            else {
                return Err(PolicyError::NoCallSlot {
                    waited: timeout,
                    max_concurrent_calls: policy.runtime().config().max_concurrent_calls,
                });
            };
            let call = async {
                let mut warm = instances.checkout().await?;
                let fuel = warm
                    .store
                    .data_mut()
                    .begin_call(self.session_id, request_bytes);
                // Fails only without fuel in the engine, which the runtime checks.
                let _ = warm.store.set_fuel(fuel);
                let started = Instant::now();
                let result =
                    export(&warm.instance, &policy.loaded().exports, &mut warm.store).await;
                let policy_time = started
                    .elapsed()
                    .saturating_sub(warm.store.data().store_wait());
                match result {
                    Ok(value) => Ok(Answer {
                        value,
                        served_by: ServedBy {
                            instance: Some(warm),
                            instances: Arc::clone(instances),
                        },
                        policy_time,
                    }),
                    Err(error) => {
                        warm.retire(Recycle::FailedCall);
                        Err(classify_trap(&error, warm.store.data()))
                    }
                }
            };
            match tokio::time::timeout_at(deadline, call).await {
                Ok(result) => result,
                Err(_) => Err(PolicyError::CallTimeout(timeout)),
            }
        };
        // The caller's span (see `crate::memory`) names the version that served the call.
        run.await
    }
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
        trap: trap.copied(),
        panic: state.panic_words().map(str::to_string),
    }
}
