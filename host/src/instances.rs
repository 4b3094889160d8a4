//! The policy instances of one memory handle and one policy version: warm ones kept between
//! calls, within bounds, or a fresh one per call in strict isolation.
//!
//! Why reuse, and why this shape. A profile of fresh-per-call instances put most of a call in
//! making and dropping the instance (a pool slot, resetting its dirty pages, three core modules,
//! a fiber for the async call, the Store); the policy's own code was 4-8 %. Every system that
//! runs a sandboxed policy on a hot path reuses warm instances (OPA, proxy-wasm, Extism, and
//! now `wasmtime serve`, wasmCloud and Fastly, bounded), and wasmtime 48 has no way to reset an
//! instance, so reuse means keeping the Store and the instance, and isolation means bounding
//! what they serve:
//!
//! - one handle (tenant) and one policy version per set of instances: never shared across
//!   handles; when the version is replaced, new calls go to the new version's set, and the old
//!   set (its idle instances with it) is dropped when the last call still running on it ends;
//! - at most [`RuntimeConfig::reuse_limit`] calls each;
//! - dropped after any call that did not return cleanly (a trap, fuel run out, a host error:
//!   wasmtime marks such a Store as unusable anyway; a timeout or a dropped caller: the
//!   instance goes with the cancelled call), and after an answer the host refused (see
//!   [`crate::sandbox::ServedBy`]);
//! - dropped once its linear memory grew more than [`RuntimeConfig::reuse_memory_growth`] past
//!   its size at instantiation (or a table grew at all), so a policy that leaks or hoards
//!   cannot keep memory across calls. Not any growth at all: Rust's default allocator on
//!   `wasm32` takes its heap by growing memory, never from the initial memory, so its first
//!   allocation grows every instance once;
//! - dropped after [`RuntimeConfig::idle_timeout`] unused (by a task on the Tokio runtime of
//!   the calls, which runs while instances are idle; a [`crate::BlockingMemory`]'s runtime
//!   only runs during its calls, so there the next call drops them);
//! - every per-call value (session, guard, fuel, log allowance) set afresh by
//!   [`CallState::begin_call`].
//!
//! Reuse came first because it keeps the contract: every policy and agent component works
//! unchanged. The other shape the profile suggested, a contract where the policy only plans
//! and the host does the I/O (no imports, so one core module and no fiber), would also let a
//! pool the size of the cores serve any concurrency; it changes every policy and agent. Reuse
//! alone took add from 0.36x to 0.60x native at 16 sessions, short of the 0.9x target, and
//! the profile after it (the README's benchmark section) points at that contract as the next
//! step. With reuse, an instance is held across the store round trip, so instances alive equal
//! calls in flight (bounded by [`RuntimeConfig::max_concurrent_calls`]), as they were when
//! each call made its own: 92 MB peak RSS at 256 concurrent calls.
//!
//! [`RuntimeConfig::reuse_limit`]: crate::RuntimeConfig::reuse_limit
//! [`RuntimeConfig::reuse_memory_growth`]: crate::RuntimeConfig::reuse_memory_growth
//! [`RuntimeConfig::idle_timeout`]: crate::RuntimeConfig::idle_timeout
//! [`RuntimeConfig::max_concurrent_calls`]: crate::RuntimeConfig::max_concurrent_calls

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use wasmtime::component::Instance;

use crate::call_state::{CallState, new_store};
use crate::error::PolicyError;
use crate::policy::Policy;
use crate::runtime::{Isolation, PolicyRuntime};
use crate::settings::{Limits, Settings};
use crate::store::Store;
use crate::telemetry::meter::{Meter, Recycle};

/// The instances of one policy version for one handle.
pub(crate) struct Instances {
    policy: Policy,
    store: Store,
    settings: Settings,
    limits: Limits,
    isolation: Isolation,
    idle: Mutex<Idle>,
    /// Where the calls and instances are counted; `None` for a swap's self-check, whose
    /// instances serve no one.
    meter: Option<Arc<Meter>>,
}

/// Warm instances waiting for a call, newest last.
struct Idle {
    instances: Vec<Warm>,
    /// Whether the task that drops instances idle too long runs.
    reaper: bool,
}

/// A policy instance in its Store, and what it has served. Dropping it counts it as recycled,
/// for the reason last given to [`Warm::retire`] ([`Recycle::Cancelled`] if none: a call
/// dropped while it ran).
pub(crate) struct Warm {
    pub(crate) store: wasmtime::Store<CallState>,
    pub(crate) instance: Instance,
    calls: u32,
    idle_since: Instant,
    meter: Option<Arc<Meter>>,
    /// Whether it waits in the idle list (else it serves a call).
    idle: bool,
    retired: Option<Recycle>,
}

impl Warm {
    /// It is to be dropped, for `reason`.
    pub(crate) fn retire(&mut self, reason: Recycle) {
        self.retired = Some(reason);
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        if let Some(meter) = &self.meter {
            let reason = self.retired.unwrap_or(Recycle::Cancelled);
            meter.instance_dropped(self.idle, reason);
        }
    }
}

impl Instances {
    /// The instances of `policy` for a handle with this store, settings and limits, counted
    /// under the handle name `meter_as` (`None`: not counted, for a swap's self-check).
    pub(crate) fn new(
        policy: Policy,
        store: Store,
        settings: Settings,
        limits: Limits,
        isolation: Isolation,
        meter_as: Option<&Arc<str>>,
    ) -> Arc<Self> {
        let meter = meter_as.map(|handle| Meter::new(handle, policy.short_digest()));
        Arc::new(Self {
            policy,
            store,
            settings,
            limits,
            isolation,
            idle: Mutex::new(Idle {
                instances: Vec::new(),
                reaper: false,
            }),
            meter,
        })
    }

    /// Where this version's calls are counted, if they are.
    pub(crate) fn meter(&self) -> Option<&Meter> {
        self.meter.as_deref()
    }

    /// The policy version these instances run.
    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The handle's limits.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    fn runtime(&self) -> &PolicyRuntime {
        self.policy.runtime()
    }

    /// An instance for one call: the most recently used warm one, or a fresh one.
    pub(crate) async fn checkout(&self) -> Result<Warm, PolicyError> {
        if let Some(mut warm) = self.take_idle() {
            warm.idle = false;
            if let Some(meter) = &self.meter {
                meter.instance_taken();
            }
            return Ok(warm);
        }
        self.instantiate().await
    }

    /// The most recently used idle instance, if one is still fresh enough. Idle instances are
    /// kept newest last, so when the newest has expired, every one has.
    fn take_idle(&self) -> Option<Warm> {
        let timeout = self.runtime().config().idle_timeout;
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let newest = idle.instances.pop()?;
        let (found, mut expired) = if newest.idle_since.elapsed() <= timeout {
            (Some(newest), Vec::new())
        } else {
            let mut expired = std::mem::take(&mut idle.instances);
            expired.push(newest);
            (None, expired)
        };
        expired
            .iter_mut()
            .for_each(|warm| warm.retire(Recycle::IdleTimeout));
        drop(idle);
        // Dropped outside the lock: dropping a Store is not free.
        let released = expired.len() + usize::from(found.is_some());
        drop(expired);
        self.runtime().release_idle(released as u32);
        found
    }

    async fn instantiate(&self) -> Result<Warm, PolicyError> {
        let loaded = self.policy.loaded();
        let state = CallState::new(
            Some(self.store.clone()),
            &self.settings,
            &self.limits,
            self.runtime().config(),
        );
        let mut store = new_store(loaded.engine(), state);
        // Start code runs on the fixed part of the budget.
        let _ = store.set_fuel(self.limits.fuel_base);
        let instance = loaded
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(|error| PolicyError::Instantiate {
                reason: format!("{error:#}"),
                trap: error.downcast_ref::<wasmtime::Trap>().copied(),
            })?;
        store.data_mut().watch_memory_growth();
        self.runtime().count_instantiation();
        if let Some(meter) = &self.meter {
            meter.instance_created();
        }
        Ok(Warm {
            store,
            instance,
            calls: 0,
            idle_since: Instant::now(),
            meter: self.meter.clone(),
            idle: false,
            retired: None,
        })
    }

    /// Take back `warm` after a call that returned cleanly: kept for the next call if every
    /// bound allows, dropped otherwise.
    pub(crate) fn checkin(self: &Arc<Self>, mut warm: Warm) {
        warm.store.data_mut().end_call();
        warm.calls += 1;
        let config = self.runtime().config();
        let state = warm.store.data();
        let not_reusable = if self.isolation == Isolation::Strict {
            Some(Recycle::StrictIsolation)
        } else if warm.calls >= config.reuse_limit {
            Some(Recycle::ReuseLimit)
        } else if state.memory_growth() > config.reuse_memory_growth {
            Some(Recycle::MemoryGrowth)
        } else if state.table_grew() {
            Some(Recycle::TableGrowth)
        } else if !self.runtime().reserve_idle() {
            Some(Recycle::IdleBudgetFull)
        } else {
            None
        };
        if let Some(reason) = not_reusable {
            warm.retire(reason);
            return;
        }
        if let Some(meter) = &self.meter {
            meter.instance_kept();
        }
        warm.idle = true;
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Stamped under the lock, so the list stays ordered by it.
        warm.idle_since = Instant::now();
        idle.instances.push(warm);
        let start_reaper = !std::mem::replace(&mut idle.reaper, true);
        // Started outside the lock: a task spawned on a runtime that is shutting down is
        // dropped at once, and its drop takes the lock.
        drop(idle);
        if start_reaper && !self.start_reaper() {
            self.idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .reaper = false;
        }
    }

    /// Drop the instances idle past the timeout. Returns `false`, and marks the reaper as
    /// stopped, when none is left idle: the next instance kept starts it again.
    fn drop_expired(&self) -> bool {
        let timeout = self.runtime().config().idle_timeout;
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Newest last: the expired ones are a prefix.
        let fresh_from = idle
            .instances
            .iter()
            .position(|warm| warm.idle_since.elapsed() <= timeout)
            .unwrap_or(idle.instances.len());
        let mut expired: Vec<Warm> = idle.instances.drain(..fresh_from).collect();
        expired
            .iter_mut()
            .for_each(|warm| warm.retire(Recycle::IdleTimeout));
        let keep_running = !idle.instances.is_empty();
        if !keep_running {
            idle.reaper = false;
        }
        drop(idle);
        let released = expired.len() as u32;
        drop(expired);
        self.runtime().release_idle(released);
        keep_running
    }

    /// Start the task that drops instances left idle past the timeout, on the Tokio runtime
    /// of the call that first kept one (calls always run on one), until these instances are
    /// dropped. If that runtime shuts down first, the next instance kept starts it again on
    /// its own; meanwhile the expired instances are still dropped by the next checkout.
    fn start_reaper(self: &Arc<Self>) -> bool {
        let Ok(tokio) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let mut reaper = Reaper {
            instances: Arc::downgrade(self),
            stopped: false,
        };
        // Half the timeout: an instance goes at most half a timeout late.
        let period = self.runtime().config().idle_timeout / 2;
        tokio.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(instances) = reaper.instances.upgrade() else {
                    return;
                };
                if !instances.drop_expired() {
                    // Nothing idle left: marked as stopped by `drop_expired`.
                    reaper.stopped();
                    return;
                }
            }
        });
        true
    }
}

/// The reaper task's hold on the instances it tends; when the task ends before it stopped on
/// its own (its runtime shut down), the instances learn that no reaper runs.
struct Reaper {
    instances: Weak<Instances>,
    stopped: bool,
}

impl Reaper {
    /// The task stopped on its own, and said so: nothing to do when it is dropped.
    fn stopped(&mut self) {
        self.stopped = true;
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        if let Some(instances) = self.instances.upgrade() {
            let mut idle = instances
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            idle.reaper = false;
        }
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        let idle = self
            .idle
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = idle.instances.len() as u32;
        idle.instances
            .iter_mut()
            .for_each(|warm| warm.retire(Recycle::Released));
        idle.instances.clear();
        self.policy.runtime().release_idle(count);
    }
}
