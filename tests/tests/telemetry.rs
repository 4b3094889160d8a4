//! Metrics and traces as an operator's dashboard sees them: each counter moves for its own
//! outcome (against a real Redis, killed and restarted; a hostile policy; swaps refused and
//! accepted), the gauges come back to rest, the spans carry OpenTelemetry's database names,
//! and no label or span field ever carries a session id.
//!
//! One recorder for the whole binary ([`recorder`]); each test names its handle, and reads
//! only its own series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_memory::telemetry::{self, METRICS, MetricKind};
use agent_memory::{
    Limits, LoadError, Memory, MemoryError, Message, Policy, Settings, StoreError, StoreSpec,
    WriteOutcome, store::RedisOptions,
};
use agent_memory_tests::{HOSTILE_POLICY_WASM, RedisServer, SilentServer, expect_stored, recorder};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// The labels every series of handle `name` on the default policy carries.
fn of(handle: &str) -> Vec<(&str, &str)> {
    vec![("handle", handle)]
}

fn with<'a>(handle: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut labels = of(handle);
    labels.extend_from_slice(more);
    labels
}

/// Whether any label value of any series holds `secret`.
fn labels_holding(secret: &str) -> Vec<(String, String, String)> {
    recorder()
        .label_values()
        .into_iter()
        .filter(|(_, _, value)| value.contains(secret))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_outcome_moves_its_own_counter_and_no_label_names_a_session() {
    let metrics = recorder();
    let redis = RedisServer::start();
    let name = "outcomes";
    let memory = Memory::builder()
        .name(name)
        .store(StoreSpec::parse(&redis.url()).unwrap())
        .settings(Settings {
            max_messages: 3,
            ..Settings::default()
        })
        .build()
        .unwrap();
    let session = "secret-session-4711";

    for turn in 0..5 {
        expect_stored(
            memory
                .add_message(session, Message::user(format!("turn {turn}")))
                .await
                .unwrap(),
        );
    }
    let calls = |operation: &str, outcome: &str| {
        metrics.counter(
            telemetry::CALLS,
            &with(name, &[("operation", operation), ("outcome", outcome)]),
        )
    };
    assert_eq!(calls("add_messages", "ok"), 5);
    assert_eq!(metrics.counter(telemetry::MESSAGES_APPENDED, &of(name)), 5);
    assert_eq!(
        metrics.counter(telemetry::MESSAGES_TRIMMED, &of(name)),
        2,
        "a window of 3 after 5 single writes trims 2"
    );
    let add = with(name, &[("operation", "add_messages")]);
    assert_eq!(metrics.histogram_count(telemetry::CALL_DURATION, &add), 5);
    assert_eq!(metrics.histogram_count(telemetry::POLICY_DURATION, &add), 5);

    assert_eq!(memory.get_context(session).await.unwrap().messages.len(), 3);
    let turn = memory
        .add_and_get_context(session, [Message::assistant("reply")])
        .await
        .unwrap();
    assert!(turn.outcome.is_stored());
    expect_stored(memory.clear(session).await.unwrap());
    assert_eq!(calls("get_context", "ok"), 1);
    assert_eq!(calls("add_and_get_context", "ok"), 1);
    assert_eq!(calls("clear", "ok"), 1);

    // Refusals, by the host and by the policy, each by its reason.
    let refused = |reason: &str| {
        metrics.counter(
            telemetry::REFUSED_REQUESTS,
            &with(name, &[("reason", reason)]),
        )
    };
    assert!(matches!(
        memory.get_context("").await,
        Err(MemoryError::InvalidSession(_))
    ));
    let huge = "x".repeat(Settings::default().max_message_bytes as usize + 1);
    assert!(matches!(
        memory.add_message(session, Message::user(huge)).await,
        Err(MemoryError::InvalidMessage { .. })
    ));
    assert!(matches!(
        memory.add_messages(session, []).await,
        Err(MemoryError::NoMessages)
    ));
    assert_eq!(refused("invalid_session"), 1);
    assert_eq!(refused("message_too_large"), 1);
    assert_eq!(refused("no_messages"), 1);
    assert_eq!(calls("get_context", "refused"), 1);
    assert_eq!(calls("add_messages", "refused"), 2);

    // Entries that are not messages (the window's 3), skipped on read, by reason.
    let mut raw = redis.connection();
    let key = format!("ai:memory:{session}");
    redis::cmd("RPUSH")
        .arg(&key)
        .arg("not json")
        .arg("[1, 2]")
        .arg(r#"{"content": "no role"}"#)
        .exec(&mut raw)
        .unwrap();
    let context = memory.get_context(session).await.unwrap();
    assert_eq!(context.skipped.len(), 3, "{context:?}");
    for reason in ["not_json", "not_an_object", "no_role"] {
        assert_eq!(
            metrics.counter(
                telemetry::SKIPPED_ENTRIES,
                &with(name, &[("reason", reason)])
            ),
            1,
            "{reason}"
        );
    }

    // The instances: made, and back at rest (none in use, the warm one idle).
    assert!(metrics.counter(telemetry::INSTANCES_CREATED, &of(name)) >= 1);
    assert_eq!(metrics.gauge(telemetry::INSTANCES_IN_USE, &of(name)), 0.0);
    assert!(metrics.gauge(telemetry::INSTANCES_IDLE, &of(name)) >= 1.0);
    assert_eq!(
        metrics.gauge(
            telemetry::POLICY_INFO,
            &with(name, &[("policy", memory.policy().short_digest())])
        ),
        1.0
    );
    // Every series of the handle names its policy version.
    assert!(
        metrics
            .label_values()
            .iter()
            .filter(|(_, label, value)| label == "handle" && value == name)
            .count()
            > 0
    );
    assert_eq!(labels_holding("secret-session").len(), 0);
    assert_eq!(
        labels_holding("turn ").len(),
        0,
        "message content in a label"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_counts_failed_writes_degraded_reads_and_connect_failures_by_kind() {
    let metrics = recorder();
    let mut redis = RedisServer::start();
    let name = "redis-killed";
    let memory = Memory::builder()
        .name(name)
        .store(StoreSpec::parse(&redis.url()).unwrap())
        .redis_options(RedisOptions {
            connect: Duration::from_millis(300),
            response: Duration::from_millis(300),
            reconnect_backoff: Duration::from_millis(10),
            reconnect_backoff_max: Duration::from_millis(20),
            ..RedisOptions::default()
        })
        .build()
        .unwrap();
    let store = memory.store().describe();
    let server = format!("127.0.0.1:{}", redis.port());
    let store_labels = [("store", store.as_str()), ("server", server.as_str())];
    expect_stored(
        memory
            .add_message("s", Message::user("before"))
            .await
            .unwrap(),
    );
    assert_eq!(metrics.counter(telemetry::STORE_CONNECTS, &store_labels), 1);

    redis.kill();
    let outcome = memory
        .add_message("s", Message::user("during"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
    let context = memory.get_context("s").await.unwrap();
    assert!(
        matches!(context.degraded, Some(StoreError::Unavailable(_))),
        "{context:?}"
    );
    let turn = memory
        .add_and_get_context("s", [Message::user("during a turn")])
        .await
        .unwrap();
    assert!(!turn.outcome.is_stored());
    assert_eq!(
        metrics.counter(
            telemetry::WRITE_FAILURES,
            &with(
                name,
                &[("operation", "add_messages"), ("kind", "unavailable")]
            )
        ),
        1
    );
    assert_eq!(
        metrics.counter(
            telemetry::DEGRADED_READS,
            &with(
                name,
                &[("operation", "get_context"), ("kind", "unavailable")]
            )
        ),
        1
    );
    // A turn whose write failed is one failure (its context is degraded by the same error).
    assert_eq!(
        metrics.counter(
            telemetry::WRITE_FAILURES,
            &with(
                name,
                &[
                    ("operation", "add_and_get_context"),
                    ("kind", "unavailable")
                ]
            )
        ),
        1
    );
    assert_eq!(
        metrics.counter(
            telemetry::DEGRADED_READS,
            &with(name, &[("operation", "add_and_get_context")])
        ),
        0
    );
    let calls = |operation: &str, outcome: &str| {
        metrics.counter(
            telemetry::CALLS,
            &with(name, &[("operation", operation), ("outcome", outcome)]),
        )
    };
    assert_eq!(calls("add_messages", "failed"), 1);
    assert_eq!(calls("get_context", "degraded"), 1);
    assert_eq!(calls("add_and_get_context", "failed"), 1);
    assert!(metrics.counter(telemetry::STORE_CONNECT_FAILURES, &store_labels) >= 1);

    // Back: a new connection, counted, and calls are ok again.
    redis.restart();
    let stored = loop {
        match memory
            .add_message("s", Message::user("after"))
            .await
            .unwrap()
        {
            WriteOutcome::Stored(stored) => break stored,
            WriteOutcome::Failed(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(stored.appended, 1);
    assert_eq!(metrics.counter(telemetry::STORE_CONNECTS, &store_labels), 2);
    assert!(calls("add_messages", "ok") >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_policy_is_counted_by_failure_kind_and_its_instances_by_recycling_reason() {
    let metrics = recorder();
    let name = "hostile";
    let memory = Memory::builder()
        .name(name)
        .policy(Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap())
        .build()
        .unwrap();
    let failures = |kind: &str| {
        metrics.counter(
            telemetry::POLICY_FAILURES,
            &with(name, &[("operation", "get_context"), ("kind", kind)]),
        )
    };
    let recycled = |reason: &str| {
        metrics.counter(
            telemetry::INSTANCES_RECYCLED,
            &with(name, &[("reason", reason)]),
        )
    };
    for (session, kind) in [
        ("trap", "trap"),
        ("spin", "compute_budget"),
        ("garbage", "invalid_output"),
    ] {
        let error = memory.get_context(session).await.unwrap_err();
        assert!(
            matches!(error, MemoryError::Policy(_)),
            "{session}: {error}"
        );
        assert_eq!(failures(kind), 1, "{session}");
    }
    assert_eq!(
        metrics.counter(
            telemetry::CALLS,
            &with(
                name,
                &[("operation", "get_context"), ("outcome", "policy_failed")]
            )
        ),
        3
    );
    // The trap and the budget ended their calls; the invalid answer was refused.
    assert_eq!(recycled("failed_call"), 2);
    assert_eq!(recycled("refused_answer"), 1);
    // A call that grew the instance's memory past the reuse allowance retires it.
    memory.get_context("grow").await.unwrap();
    assert_eq!(recycled("memory_growth"), 1);
    assert_eq!(metrics.gauge(telemetry::INSTANCES_IN_USE, &of(name)), 0.0);
    assert_eq!(metrics.counter(telemetry::INSTANCES_CREATED, &of(name)), 4);

    // A store that never answers: the call times out, the instance goes with it.
    let silent = SilentServer::start();
    let name = "timeout";
    let slow = Memory::builder()
        .name(name)
        .store(StoreSpec::parse(&silent.url()).unwrap())
        .redis_options(RedisOptions {
            connect: Duration::from_secs(5),
            ..RedisOptions::default()
        })
        .limits(Limits {
            call_timeout: Duration::from_millis(200),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let error = slow.get_context("s").await.unwrap_err();
    assert!(matches!(error, MemoryError::Policy(_)), "{error}");
    assert_eq!(
        metrics.counter(
            telemetry::POLICY_FAILURES,
            &with(name, &[("kind", "timeout")])
        ),
        1
    );
    assert_eq!(
        metrics.counter(
            telemetry::INSTANCES_RECYCLED,
            &with(name, &[("reason", "cancelled")])
        ),
        1
    );
    assert_eq!(metrics.gauge(telemetry::INSTANCES_IN_USE, &of(name)), 0.0);
}

#[tokio::test]
async fn swaps_are_counted_accepted_or_refused_by_reason_and_the_serving_version_is_shown() {
    let metrics = recorder();
    let name = "swaps";
    let memory = Memory::builder().name(name).build().unwrap();
    let first = memory.policy();
    let info = |policy: &Policy| {
        metrics.gauge(
            telemetry::POLICY_INFO,
            &with(name, &[("policy", policy.short_digest())]),
        )
    };
    let swaps = |outcome: &str, reason: &str| {
        metrics.counter(
            telemetry::POLICY_SWAPS,
            &with(name, &[("outcome", outcome), ("reason", reason)]),
        )
    };
    assert_eq!(info(&first), 1.0);

    let hostile = Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap();
    let refused = memory.replace_policy(hostile.clone()).await.unwrap_err();
    assert!(matches!(refused, LoadError::SelfCheck(_)), "{refused}");
    assert_eq!(swaps("refused", "self_check"), 1);
    assert_eq!(
        metrics.counter(
            telemetry::POLICY_SWAPS,
            &with(name, &[("policy", hostile.short_digest())])
        ),
        1,
        "the refused candidate is named"
    );
    let junk = memory
        .replace_policy_bytes(b"not a component".to_vec(), "junk")
        .await
        .unwrap_err();
    assert!(matches!(junk, LoadError::Compile { .. }), "{junk}");
    assert_eq!(swaps("refused", "compile"), 1);
    let missing = memory
        .replace_policy_file("/nonexistent/policy.wasm")
        .await
        .unwrap_err();
    assert!(matches!(missing, LoadError::Read { .. }), "{missing}");
    assert_eq!(swaps("refused", "read"), 1);
    assert_eq!(info(&first), 1.0, "a refused swap changes nothing");

    let tool_safe = Policy::tool_safe().unwrap();
    memory.replace_policy(tool_safe.clone()).await.unwrap();
    assert_eq!(swaps("accepted", "none"), 1);
    assert_eq!(info(&first), 0.0);
    assert_eq!(info(&tool_safe), 1.0);
    expect_stored(memory.add_message("s", Message::user("hi")).await.unwrap());
    assert_eq!(
        metrics.counter(
            telemetry::CALLS,
            &with(
                name,
                &[("policy", tool_safe.short_digest()), ("outcome", "ok")]
            )
        ),
        1,
        "calls are counted under the version that served them"
    );
    drop(memory);
    assert_eq!(info(&tool_safe), 0.0, "a dropped handle serves nothing");
}

#[test]
fn a_handle_name_is_a_short_label_never_free_text() {
    for bad in ["", "has space", "quote\"", &"x".repeat(65), "émoji"] {
        let refused = Memory::builder().name(bad).build().unwrap_err();
        assert!(
            refused.to_string().contains("invalid handle name"),
            "{bad:?}: {refused}"
        );
    }
    assert_eq!(
        Memory::builder()
            .name("support-agent.v2_eu")
            .build()
            .unwrap()
            .name(),
        "support-agent.v2_eu"
    );
    assert_eq!(
        Memory::builder().build().unwrap().name(),
        agent_memory::memory::DEFAULT_HANDLE_NAME
    );
}

#[test]
fn every_metric_the_library_records_is_documented_in_the_readme() {
    let readme =
        std::fs::read_to_string(agent_memory_tests::workspace_root().join("README.md")).unwrap();
    for spec in METRICS {
        assert!(
            readme.contains(&format!("`{}`", spec.name)),
            "the README does not document {}",
            spec.name
        );
        for label in spec.labels {
            assert!(
                readme.contains(&format!("`{label}`")),
                "the README does not document the label {label} of {}",
                spec.name
            );
        }
        let kind = match spec.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let row = readme
            .lines()
            .find(|line| line.contains(&format!("`{}`", spec.name)) && line.starts_with('|'))
            .unwrap_or_else(|| panic!("no README table row for {}", spec.name));
        assert!(row.contains(kind), "{}: {row}", spec.name);
    }
}

/// A span's name and fields.
type Opened = (String, BTreeMap<String, String>);

/// What the spans of a call said: each span's name and fields, in the order they opened.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Opened>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").replace('"', ""),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// Keeps each span's position in [`Spans`] in its extensions, to add later records there.
struct Position(usize);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        context: Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        attributes.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().unwrap();
        spans.push((attributes.metadata().name().to_string(), fields));
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(Position(spans.len() - 1));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        context: Context<'_, S>,
    ) {
        let Some(span) = context.span(id) else { return };
        let Some(Position(at)) = span.extensions().get::<Position>().map(|p| Position(p.0)) else {
            return;
        };
        values.record(&mut Fields(&mut self.0.lock().unwrap()[at].1));
    }
}

#[test]
fn each_call_and_each_redis_round_trip_is_a_span_with_opentelemetry_names_and_no_payload() {
    let redis = RedisServer::start_with(&["--requirepass", "pw-never-in-a-span"]);
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    // A runtime on this thread, so the subscriber set here sees every span of the calls.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let memory = Memory::builder()
                .name("traced")
                .store(StoreSpec::parse(&redis.url()).unwrap())
                .build()
                .unwrap();
            expect_stored(
                memory
                    .add_message("secret-session-99", Message::user("secret content"))
                    .await
                    .unwrap(),
            );
            memory.get_context("secret-session-99").await.unwrap();
            let policy = memory.policy();
            let spans = spans.0.lock().unwrap().clone();
            let calls: Vec<&BTreeMap<String, String>> = spans
                .iter()
                .filter(|(name, _)| name == "agent_memory.call")
                .map(|(_, fields)| fields)
                .collect();
            assert_eq!(calls.len(), 2, "{spans:?}");
            for (call, operation) in calls.iter().zip(["add_messages", "get_context"]) {
                assert_eq!(call["agent_memory.handle"], "traced");
                assert_eq!(call["agent_memory.operation"], operation);
                assert_eq!(call["agent_memory.policy.digest"], policy.short_digest());
                assert_eq!(call["agent_memory.outcome"], "ok");
                assert_eq!(call["otel.name"], format!("agent_memory.{operation}"));
            }
            let round_trips: Vec<&BTreeMap<String, String>> = spans
                .iter()
                .filter(|(name, _)| name == "agent_memory.store")
                .map(|(_, fields)| fields)
                .collect();
            assert_eq!(round_trips.len(), 2, "{spans:?}");
            for (trip, command) in round_trips.iter().zip(["MULTI", "LRANGE"]) {
                assert_eq!(trip["db.system.name"], "redis");
                assert_eq!(trip["db.operation.name"], command);
                assert_eq!(trip["otel.name"], command);
                assert_eq!(trip["otel.kind"], "client");
                assert_eq!(trip["db.namespace"], "0");
                assert_eq!(trip["server.address"], "127.0.0.1");
                assert_eq!(trip["server.port"], redis.port().to_string());
                assert!(!trip.contains_key("error.type"), "{trip:?}");
            }
            assert_eq!(round_trips[0]["db.operation.batch.size"], "3");
            let everything = format!("{spans:?}");
            for secret in ["secret-session", "secret content", "pw-never-in-a-span"] {
                assert!(!everything.contains(secret), "{secret} in {everything}");
            }
        });
    });
}

#[test]
fn the_grafana_dashboard_is_json_and_asks_only_for_metrics_the_library_records() {
    let path = agent_memory_tests::workspace_root().join("dashboards/agent-memory.grafana.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    let mut asked = std::collections::BTreeSet::new();
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("agent_memory_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| METRICS.iter().any(|spec| spec.name == *base))
                    .unwrap_or(&name)
                    .to_string();
                assert!(
                    METRICS.iter().any(|spec| spec.name == family),
                    "the dashboard asks for {name}, which the library does not record"
                );
                asked.insert(family);
            }
        }
    }
    // Every metric is on the dashboard.
    for spec in METRICS {
        assert!(asked.contains(spec.name), "{} is on no panel", spec.name);
    }
}
