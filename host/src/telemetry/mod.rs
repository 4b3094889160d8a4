//! Metrics and traces: what an operator puts on a dashboard.
//!
//! # Metrics: the `metrics` facade
//!
//! Every metric goes through the [`metrics`](https://docs.rs/metrics) crate's facade, and the
//! embedder installs the recorder that exports them (Prometheus with
//! `metrics-exporter-prometheus`, OpenTelemetry with `metrics-exporter-opentelemetry`, StatsD,
//! ...). Chosen over the OpenTelemetry metrics API because a library should cost nothing when
//! its embedder exports nothing: with no recorder installed every record is a call into a
//! no-op, where the OpenTelemetry API needs a meter provider threaded through; because its
//! recorders are many and stable (0.24 since 2024, where the OpenTelemetry Rust API still
//! changes between minor versions); and because OpenTelemetry users are served anyway, by a
//! bridge recorder for metrics and by `tracing-opentelemetry` for the spans below.
//!
//! Every name starts with `agent_memory_`; [`METRICS`] lists them with their kind, unit,
//! labels and meaning (the README's table is the same list), and [`describe_metrics`] hands
//! the descriptions and units to the recorder. Labels are bounded: a handle's name
//! ([`crate::MemoryBuilder::name`]), the policy version (the first 12 hex digits of its
//! digest), the operation, and kinds from fixed lists. Never a session id, a key or message
//! content: those would make a series per conversation, and put conversations in the
//! monitoring system.
//!
//! The recording itself is in [`meter`] (a handle's calls, per policy version) and
//! [`store_meter`] (a store's connections); [`kinds`] names each error case as a label value.
//!
//! # Traces: `tracing` spans with OpenTelemetry's names
//!
//! Each memory call is an `agent_memory.call` span (INFO) carrying the handle, the operation,
//! the policy digest and, once known, the outcome; each Redis round trip inside it is an
//! `agent_memory.store` span (INFO) with the database semantic conventions
//! (`db.system.name = "redis"`, `db.operation.name`, `db.namespace`, `server.address`,
//! `server.port`, `error.type`; `otel.kind = "client"`, `otel.name` the operation), without
//! credentials, keys or values. `tracing-opentelemetry` turns both into OpenTelemetry spans
//! as they are.

pub(crate) mod kinds;
pub(crate) mod meter;
pub(crate) mod store_meter;

use ::metrics::Unit;

/// Memory calls, by `operation` and `outcome`: `ok`, `degraded` (a read the store failed:
/// empty history), `failed` (a write the store failed), `refused` (the request, by the host
/// or the policy), `policy_failed`.
pub const CALLS: &str = "agent_memory_calls_total";
/// Whole calls, by `operation`: the host's checks, waiting for a call slot, the policy, the
/// store round trips.
pub const CALL_DURATION: &str = "agent_memory_call_duration_seconds";
/// The policy's own part of calls, by `operation`: the call's export, less the time its store
/// calls waited on the store.
pub const POLICY_DURATION: &str = "agent_memory_policy_duration_seconds";
/// Writes the store failed, by `operation` and store error `kind`.
pub const WRITE_FAILURES: &str = "agent_memory_write_failures_total";
/// Reads that degraded to an empty history, by `operation` and store error `kind`.
pub const DEGRADED_READS: &str = "agent_memory_degraded_reads_total";
/// Stored entries skipped on read (not messages), by `reason`.
pub const SKIPPED_ENTRIES: &str = "agent_memory_skipped_entries_total";
/// Requests refused, by `operation` and `reason`.
pub const REFUSED_REQUESTS: &str = "agent_memory_refused_requests_total";
/// Policy failures, by `operation` and `kind`.
pub const POLICY_FAILURES: &str = "agent_memory_policy_failures_total";
/// Messages appended by stored writes.
pub const MESSAGES_APPENDED: &str = "agent_memory_messages_appended_total";
/// Messages the window dropped on stored writes (trimmed older ones, and any of the write
/// outside the window).
pub const MESSAGES_TRIMMED: &str = "agent_memory_messages_trimmed_total";
/// Messages stored writes reported evicted (a policy that reports them, such as the tool-safe
/// policy with `report-evicted=true`).
pub const MESSAGES_EVICTED: &str = "agent_memory_messages_evicted_total";
/// Policy swaps, by `outcome` (`accepted`, `refused`) and `reason` (why refused; `none` when
/// accepted). `policy` is the candidate's version.
pub const POLICY_SWAPS: &str = "agent_memory_policy_swaps_total";
/// 1 for the policy version serving a handle (one series per handle and version; the sum of
/// several handles of one name).
pub const POLICY_INFO: &str = "agent_memory_policy_info";
/// Policy instances made for calls.
pub const INSTANCES_CREATED: &str = "agent_memory_instances_created_total";
/// Policy instances dropped, by `reason`.
pub const INSTANCES_RECYCLED: &str = "agent_memory_instances_recycled_total";
/// Policy instances serving a call now.
pub const INSTANCES_IN_USE: &str = "agent_memory_instances_in_use";
/// Warm policy instances waiting for a call now.
pub const INSTANCES_IDLE: &str = "agent_memory_instances_idle";
/// Connections a store made, by `store` and `server`.
pub const STORE_CONNECTS: &str = "agent_memory_store_connects_total";
/// Connect attempts that failed, by `store` and `server`.
pub const STORE_CONNECT_FAILURES: &str = "agent_memory_store_connect_failures_total";
/// Cluster redirects followed, by `store` and `kind` (`moved`, `ask`).
pub const STORE_REDIRECTS: &str = "agent_memory_store_redirects_total";
/// Sentinel failovers seen (the sentinels named another master than the last connection's),
/// by `store`.
pub const STORE_FAILOVERS: &str = "agent_memory_store_failovers_total";

/// What a metric is, for the recorder and the documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of values.
    Histogram,
}

/// One metric: its name, kind, unit, labels and meaning.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    /// The name, under `agent_memory_`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its unit.
    pub unit: Unit,
    /// Its labels, in order.
    pub labels: &'static [&'static str],
    /// What it counts or measures.
    pub help: &'static str,
}

/// The labels of a handle's metrics, before their own.
const HANDLE: [&str; 2] = ["handle", "policy"];

/// Every metric agent-memory records.
pub const METRICS: &[MetricSpec] = &[
    spec(
        CALLS,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "operation", "outcome"],
        "Memory calls by operation and outcome (ok, degraded, failed, refused, policy_failed).",
    ),
    spec(
        CALL_DURATION,
        MetricKind::Histogram,
        Unit::Seconds,
        &["handle", "policy", "operation"],
        "Whole memory calls: host checks, call slot, policy and store round trips.",
    ),
    spec(
        POLICY_DURATION,
        MetricKind::Histogram,
        Unit::Seconds,
        &["handle", "policy", "operation"],
        "The policy's own part of calls: its export, less the time its store calls waited.",
    ),
    spec(
        WRITE_FAILURES,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "operation", "kind"],
        "Writes the store failed, by store error kind.",
    ),
    spec(
        DEGRADED_READS,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "operation", "kind"],
        "Reads that degraded to an empty history, by store error kind.",
    ),
    spec(
        SKIPPED_ENTRIES,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "reason"],
        "Stored entries skipped on read because they are not messages, by reason.",
    ),
    spec(
        REFUSED_REQUESTS,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "operation", "reason"],
        "Requests refused by the host or the policy, by reason.",
    ),
    spec(
        POLICY_FAILURES,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "operation", "kind"],
        "Policy failures by kind (trap, compute_budget, timeout, no_call_slot, instantiate, \
         invalid_output).",
    ),
    spec(
        MESSAGES_APPENDED,
        MetricKind::Counter,
        Unit::Count,
        &HANDLE,
        "Messages appended by stored writes.",
    ),
    spec(
        MESSAGES_TRIMMED,
        MetricKind::Counter,
        Unit::Count,
        &HANDLE,
        "Messages the window dropped on stored writes.",
    ),
    spec(
        MESSAGES_EVICTED,
        MetricKind::Counter,
        Unit::Count,
        &HANDLE,
        "Messages stored writes reported evicted (policies that report them).",
    ),
    spec(
        POLICY_SWAPS,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "outcome", "reason"],
        "Policy swaps by outcome (accepted, refused) and refusal reason; policy is the \
         candidate.",
    ),
    spec(
        POLICY_INFO,
        MetricKind::Gauge,
        Unit::Count,
        &HANDLE,
        "1 for the policy version serving a handle.",
    ),
    spec(
        INSTANCES_CREATED,
        MetricKind::Counter,
        Unit::Count,
        &HANDLE,
        "Policy instances made for calls.",
    ),
    spec(
        INSTANCES_RECYCLED,
        MetricKind::Counter,
        Unit::Count,
        &["handle", "policy", "reason"],
        "Policy instances dropped, by reason.",
    ),
    spec(
        INSTANCES_IN_USE,
        MetricKind::Gauge,
        Unit::Count,
        &HANDLE,
        "Policy instances serving a call now.",
    ),
    spec(
        INSTANCES_IDLE,
        MetricKind::Gauge,
        Unit::Count,
        &HANDLE,
        "Warm policy instances waiting for a call now.",
    ),
    spec(
        STORE_CONNECTS,
        MetricKind::Counter,
        Unit::Count,
        &["store", "server"],
        "Connections a store made to a server.",
    ),
    spec(
        STORE_CONNECT_FAILURES,
        MetricKind::Counter,
        Unit::Count,
        &["store", "server"],
        "Connect attempts that failed.",
    ),
    spec(
        STORE_REDIRECTS,
        MetricKind::Counter,
        Unit::Count,
        &["store", "kind"],
        "Redis Cluster redirects followed (moved, ask).",
    ),
    spec(
        STORE_FAILOVERS,
        MetricKind::Counter,
        Unit::Count,
        &["store"],
        "Sentinel failovers seen: the sentinels named a new master.",
    ),
];

const fn spec(
    name: &'static str,
    kind: MetricKind,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricSpec {
    MetricSpec {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

/// Hand every metric's description and unit to the installed recorder (exporters use them
/// for `# HELP` lines and unit suffixes). Call it once, after installing the recorder;
/// recording works without it.
pub fn describe_metrics() {
    for spec in METRICS {
        match spec.kind {
            MetricKind::Counter => ::metrics::describe_counter!(spec.name, spec.unit, spec.help),
            MetricKind::Gauge => ::metrics::describe_gauge!(spec.name, spec.unit, spec.help),
            MetricKind::Histogram => {
                ::metrics::describe_histogram!(spec.name, spec.unit, spec.help)
            }
        }
    }
}

/// The histogram buckets (seconds) that suit the latency histograms: from 10 µs (a read in
/// process memory) to 10 s (the longest call timeout an embedder would set), about three per
/// decade. For exporters that need buckets set (Prometheus's histograms).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_listed_once_under_the_prefix_with_bounded_labels() {
        let mut names: Vec<&str> = METRICS.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a metric is listed twice");
        for spec in METRICS {
            assert!(spec.name.starts_with("agent_memory_"), "{}", spec.name);
            assert_eq!(
                spec.kind == MetricKind::Counter,
                spec.name.ends_with("_total"),
                "{}: counters, and only they, end in _total",
                spec.name
            );
            for label in spec.labels {
                assert!(
                    !["session", "session_id", "key", "content", "message"].contains(label),
                    "{} has an unbounded label {label}",
                    spec.name
                );
            }
        }
    }
}
