//! [`TestRecorder`]: a `metrics` recorder whose values tests read as they stand, installed once
//! per test binary. Reading never resets anything (unlike `metrics-util`'s debugging recorder,
//! whose snapshots drain every metric), so tests running in parallel can each read their own
//! series: each gives its handle a name of its own and filters by it.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

/// A recorder that keeps every series, to be read by tests.
pub struct TestRecorder {
    registry: Registry<Key, AtomicStorage>,
}

/// The recorder of this test binary, installed as the global one on first use.
pub fn recorder() -> &'static TestRecorder {
    static INSTALLED: OnceLock<&'static TestRecorder> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let recorder: &'static TestRecorder = Box::leak(Box::new(TestRecorder {
            registry: Registry::atomic(),
        }));
        metrics::set_global_recorder(Forward(recorder))
            .unwrap_or_else(|_| panic!("another metrics recorder is installed in this binary"));
        recorder
    })
}

/// The global recorder: forwards to the leaked [`TestRecorder`], which tests keep reading.
struct Forward(&'static TestRecorder);

impl Recorder for Forward {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .registry
            .get_or_create_counter(key, |counter| Counter::from_arc(Arc::clone(counter)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .registry
            .get_or_create_gauge(key, |gauge| Gauge::from_arc(Arc::clone(gauge)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .registry
            .get_or_create_histogram(key, |histogram| Histogram::from_arc(Arc::clone(histogram)))
    }
}

/// Whether `key` is named `name` and carries every pair of `labels`.
fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.name() == name
        && labels.iter().all(|(label, value)| {
            key.labels()
                .any(|pair| pair.key() == *label && pair.value() == *value)
        })
}

impl TestRecorder {
    /// The sum of the counters named `name` that carry `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.registry
            .get_counter_handles()
            .iter()
            .filter(|(key, _)| matches(key, name, labels))
            .map(|(_, value)| value.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    }

    /// The sum of the gauges named `name` that carry `labels`.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.registry
            .get_gauge_handles()
            .iter()
            .filter(|(key, _)| matches(key, name, labels))
            .map(|(_, value)| f64::from_bits(value.load(std::sync::atomic::Ordering::SeqCst)))
            .sum()
    }

    /// How many values the histograms named `name` that carry `labels` hold.
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.registry
            .get_histogram_handles()
            .iter()
            .filter(|(key, _)| matches(key, name, labels))
            .map(|(_, bucket)| bucket.data().len())
            .sum()
    }

    /// Every label value of every series, as `(metric, label, value)`.
    pub fn label_values(&self) -> Vec<(String, String, String)> {
        let mut keys: Vec<Key> = Vec::new();
        keys.extend(self.registry.get_counter_handles().into_keys());
        keys.extend(self.registry.get_gauge_handles().into_keys());
        keys.extend(self.registry.get_histogram_handles().into_keys());
        keys.iter()
            .flat_map(|key| {
                key.labels().map(|label| {
                    (
                        key.name().to_string(),
                        label.key().to_string(),
                        label.value().to_string(),
                    )
                })
            })
            .collect()
    }
}
