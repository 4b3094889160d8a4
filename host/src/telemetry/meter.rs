//! A handle's metrics for one policy version: its calls and their outcomes, its instances.
//!
//! The handles a call touches every time (the `ok` counter, the two histograms, the message
//! counters, the instance gauges and recycling counters) are registered once and kept, so a call costs a few atomic
//! adds rather than a registry lookup per metric. They belong to the recorder that was
//! installed when they were registered; a call that finds another recorder installed (the
//! embedder installed one after the handle's first call) registers them again with it. The
//! rare records (failures, refusals, evictions, swaps) register as they go.

use std::sync::Arc;
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Label, Recorder, SharedString};
use arc_swap::ArcSwapOption;

use super::kinds::{self, Operation, Outcome};
use crate::contract as wit;

/// Why a policy instance was dropped: the `reason` label of
/// [`INSTANCES_RECYCLED`](super::INSTANCES_RECYCLED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recycle {
    /// It served [`crate::RuntimeConfig::reuse_limit`] calls.
    ReuseLimit,
    /// Its memory grew past [`crate::RuntimeConfig::reuse_memory_growth`].
    MemoryGrowth,
    /// One of its tables grew.
    TableGrowth,
    /// The handle runs each call on a fresh instance ([`crate::Isolation::Strict`]).
    StrictIsolation,
    /// The runtime's idle budget ([`crate::RuntimeConfig::max_idle_instances`]) was full.
    IdleBudgetFull,
    /// It stayed idle past [`crate::RuntimeConfig::idle_timeout`].
    IdleTimeout,
    /// Its policy version was replaced, or its handle dropped.
    Released,
    /// Its call did not return cleanly (a trap, a budget run out, a host error).
    FailedCall,
    /// Its answer was refused by the host (invalid output).
    RefusedAnswer,
    /// Its call was cancelled: the call timeout, or a caller that went away.
    Cancelled,
}

impl Recycle {
    /// Every reason, in declaration order (`reason as usize` indexes it).
    const ALL: [Recycle; 10] = [
        Self::ReuseLimit,
        Self::MemoryGrowth,
        Self::TableGrowth,
        Self::StrictIsolation,
        Self::IdleBudgetFull,
        Self::IdleTimeout,
        Self::Released,
        Self::FailedCall,
        Self::RefusedAnswer,
        Self::Cancelled,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::ReuseLimit => "reuse_limit",
            Self::MemoryGrowth => "memory_growth",
            Self::TableGrowth => "table_growth",
            Self::StrictIsolation => "strict_isolation",
            Self::IdleBudgetFull => "idle_budget_full",
            Self::IdleTimeout => "idle_timeout",
            Self::Released => "released",
            Self::FailedCall => "failed_call",
            Self::RefusedAnswer => "refused_answer",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What an answer the host accepted says, for the counters: taken before the answer is handed
/// on, recorded once it is accepted.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    degraded: Option<&'static str>,
    write_failed: Option<&'static str>,
    skipped: Vec<&'static str>,
    appended: u64,
    trimmed: u64,
    evicted: u64,
}

impl Summary {
    /// How the call ended.
    pub(crate) fn outcome(&self) -> Outcome {
        if self.write_failed.is_some() {
            Outcome::Failed
        } else if self.degraded.is_some() {
            Outcome::Degraded
        } else {
            Outcome::Ok
        }
    }

    /// The store error's kind, for a failed write or a degraded read.
    pub(crate) fn kind(&self) -> Option<&'static str> {
        self.write_failed.or(self.degraded)
    }

    fn read(&mut self, context: &wit::Context) {
        self.degraded = context.degraded.as_ref().map(kinds::store_error);
        self.skipped = context
            .skipped
            .iter()
            .map(|entry| kinds::entry_problem(entry.problem))
            .collect();
    }

    fn write(&mut self, outcome: &wit::WriteOutcome) {
        match outcome {
            wit::WriteOutcome::Stored(stored) => {
                self.appended = u64::from(stored.appended);
                self.trimmed = u64::from(stored.trimmed);
                self.evicted = stored.evicted.len() as u64;
            }
            wit::WriteOutcome::Failed(error) => self.write_failed = Some(kinds::store_error(error)),
        }
    }
}

/// An answer of the `memory` export, summarised for the counters.
pub(crate) trait Summarize {
    /// What it says.
    fn summarize(&self) -> Summary;
}

impl Summarize for wit::Context {
    fn summarize(&self) -> Summary {
        let mut summary = Summary::default();
        summary.read(self);
        summary
    }
}

impl Summarize for wit::WriteOutcome {
    fn summarize(&self) -> Summary {
        let mut summary = Summary::default();
        summary.write(self);
        summary
    }
}

impl Summarize for wit::Turn {
    fn summarize(&self) -> Summary {
        let mut summary = Summary::default();
        summary.write(&self.outcome);
        // A failed write degrades the context by the same error: counted once, as the write.
        if summary.write_failed.is_none() {
            summary.read(&self.context);
        } else {
            summary.skipped = Vec::new();
        }
        summary
    }
}

/// The metrics of one handle (by name) running one policy version.
pub(crate) struct Meter {
    handle: SharedString,
    policy: SharedString,
    hot: ArcSwapOption<Hot>,
}

/// The handles every call touches, registered with one recorder.
struct Hot {
    /// Which recorder they belong to (its address).
    recorder: usize,
    operations: [OperationHandles; 4],
    appended: Counter,
    trimmed: Counter,
    created: Counter,
    /// By [`Recycle`]: in strict isolation every call drops an instance.
    recycled: [Counter; 10],
    in_use: Gauge,
    idle: Gauge,
}

struct OperationHandles {
    ok: Counter,
    call: Histogram,
    policy: Histogram,
}

/// The address of the recorder installed for this thread now (the no-op one when none is): a
/// change means the kept handles belong to another recorder.
fn recorder_id() -> usize {
    ::metrics::with_recorder(|recorder| {
        std::ptr::from_ref::<dyn Recorder>(recorder)
            .cast::<()>()
            .addr()
    })
}

impl Meter {
    /// The metrics of the handle named `handle` running the policy version `policy` (its short
    /// digest).
    pub(crate) fn new(handle: &Arc<str>, policy: &str) -> Arc<Self> {
        Arc::new(Self {
            handle: SharedString::from(Arc::clone(handle)),
            policy: SharedString::from(Arc::<str>::from(policy)),
            hot: ArcSwapOption::empty(),
        })
    }

    /// The handle and policy labels, then `extra`.
    fn labels(&self, extra: &[(&'static str, &'static str)]) -> Vec<Label> {
        let mut labels = Vec::with_capacity(2 + extra.len());
        labels.push(Label::new("handle", self.handle.clone()));
        labels.push(Label::new("policy", self.policy.clone()));
        labels.extend(
            extra
                .iter()
                .map(|&(key, value)| Label::new(key, SharedString::const_str(value))),
        );
        labels
    }

    /// `with` the kept handles, registered again first if the recorder changed. Read through
    /// the swap's guard: no reference count is taken on the way.
    fn with_hot<R>(&self, with: impl FnOnce(&Hot) -> R) -> R {
        let recorder = recorder_id();
        let kept = self.hot.load();
        if let Some(hot) = kept.as_ref()
            && hot.recorder == recorder
        {
            return with(hot);
        }
        drop(kept);
        let hot = Arc::new(self.register(recorder));
        self.hot.store(Some(Arc::clone(&hot)));
        with(&hot)
    }

    /// Register the hot handles with the recorder installed now.
    fn register(&self, recorder: usize) -> Hot {
        let operation = |operation: Operation| {
            let name = operation.name();
            OperationHandles {
                ok: ::metrics::counter!(
                    super::CALLS,
                    self.labels(&[("operation", name), ("outcome", Outcome::Ok.name())])
                ),
                call: ::metrics::histogram!(
                    super::CALL_DURATION,
                    self.labels(&[("operation", name)])
                ),
                policy: ::metrics::histogram!(
                    super::POLICY_DURATION,
                    self.labels(&[("operation", name)])
                ),
            }
        };
        Hot {
            recorder,
            operations: Operation::ALL.map(operation),
            appended: ::metrics::counter!(super::MESSAGES_APPENDED, self.labels(&[])),
            trimmed: ::metrics::counter!(super::MESSAGES_TRIMMED, self.labels(&[])),
            created: ::metrics::counter!(super::INSTANCES_CREATED, self.labels(&[])),
            recycled: Recycle::ALL.map(|reason| {
                ::metrics::counter!(
                    super::INSTANCES_RECYCLED,
                    self.labels(&[("reason", reason.name())])
                )
            }),
            in_use: ::metrics::gauge!(super::INSTANCES_IN_USE, self.labels(&[])),
            idle: ::metrics::gauge!(super::INSTANCES_IDLE, self.labels(&[])),
        }
    }

    /// A call the policy answered and the host accepted: its outcome and what it says, the
    /// whole call's time and the policy's part.
    pub(crate) fn answered(
        &self,
        operation: Operation,
        summary: &Summary,
        call: Duration,
        policy: Duration,
    ) {
        let outcome = summary.outcome();
        self.with_hot(|hot| {
            let handles = &hot.operations[operation.index()];
            handles.call.record(call.as_secs_f64());
            handles.policy.record(policy.as_secs_f64());
            if outcome == Outcome::Ok {
                handles.ok.increment(1);
            }
            if summary.appended > 0 {
                hot.appended.increment(summary.appended);
            }
            if summary.trimmed > 0 {
                hot.trimmed.increment(summary.trimmed);
            }
        });
        if outcome != Outcome::Ok {
            self.count_outcome(operation, outcome);
        }
        if summary.evicted > 0 {
            ::metrics::counter!(super::MESSAGES_EVICTED, self.labels(&[]))
                .increment(summary.evicted);
        }
        let name = operation.name();
        if let Some(kind) = summary.write_failed {
            ::metrics::counter!(
                super::WRITE_FAILURES,
                self.labels(&[("operation", name), ("kind", kind)])
            )
            .increment(1);
        }
        if let Some(kind) = summary.degraded {
            ::metrics::counter!(
                super::DEGRADED_READS,
                self.labels(&[("operation", name), ("kind", kind)])
            )
            .increment(1);
        }
        for reason in &summary.skipped {
            ::metrics::counter!(super::SKIPPED_ENTRIES, self.labels(&[("reason", reason)]))
                .increment(1);
        }
    }

    /// A request refused (by the host before the policy ran, or by the policy) for `reason`,
    /// after `call` (`None`: refused before any call began, such as an invalid session id:
    /// nothing to time).
    pub(crate) fn refused(
        &self,
        operation: Operation,
        reason: &'static str,
        call: Option<Duration>,
    ) {
        if let Some(call) = call {
            self.finished(operation, call);
        }
        self.count_outcome(operation, Outcome::Refused);
        ::metrics::counter!(
            super::REFUSED_REQUESTS,
            self.labels(&[("operation", operation.name()), ("reason", reason)])
        )
        .increment(1);
    }

    /// A call whose policy failed, as `kind`.
    pub(crate) fn policy_failed(&self, operation: Operation, kind: &'static str, call: Duration) {
        self.finished(operation, call);
        self.count_outcome(operation, Outcome::PolicyFailed);
        ::metrics::counter!(
            super::POLICY_FAILURES,
            self.labels(&[("operation", operation.name()), ("kind", kind)])
        )
        .increment(1);
    }

    fn finished(&self, operation: Operation, call: Duration) {
        self.with_hot(|hot| {
            hot.operations[operation.index()]
                .call
                .record(call.as_secs_f64());
        });
    }

    fn count_outcome(&self, operation: Operation, outcome: Outcome) {
        ::metrics::counter!(
            super::CALLS,
            self.labels(&[("operation", operation.name()), ("outcome", outcome.name())])
        )
        .increment(1);
    }

    /// A policy instance was made for a call.
    pub(crate) fn instance_created(&self) {
        self.with_hot(|hot| {
            hot.created.increment(1);
            hot.in_use.increment(1.0);
        });
    }

    /// An idle instance was taken for a call.
    pub(crate) fn instance_taken(&self) {
        self.with_hot(|hot| {
            hot.idle.decrement(1.0);
            hot.in_use.increment(1.0);
        });
    }

    /// An instance that served a call was kept idle for the next.
    pub(crate) fn instance_kept(&self) {
        self.with_hot(|hot| {
            hot.in_use.decrement(1.0);
            hot.idle.increment(1.0);
        });
    }

    /// An instance was dropped for `reason`, while idle or in use.
    pub(crate) fn instance_dropped(&self, idle: bool, reason: Recycle) {
        self.with_hot(|hot| {
            match idle {
                true => hot.idle.decrement(1.0),
                false => hot.in_use.decrement(1.0),
            }
            hot.recycled[reason as usize].increment(1);
        });
    }

    /// This version started (`serving`) or stopped serving its handle.
    pub(crate) fn serving(&self, serving: bool) {
        let gauge = ::metrics::gauge!(super::POLICY_INFO, self.labels(&[]));
        match serving {
            true => gauge.increment(1.0),
            false => gauge.decrement(1.0),
        }
    }

    /// A swap to this version (the candidate) was accepted, or refused for `refused`.
    pub(crate) fn swap(&self, refused: Option<&'static str>) {
        let (outcome, reason) = match refused {
            None => ("accepted", "none"),
            Some(reason) => ("refused", reason),
        };
        ::metrics::counter!(
            super::POLICY_SWAPS,
            self.labels(&[("outcome", outcome), ("reason", reason)])
        )
        .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_recycling_reason_indexes_its_own_counter() {
        for (index, reason) in Recycle::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, index, "{reason:?}");
        }
    }
}
