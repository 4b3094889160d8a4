//! One cell of the benchmark: an operation, run in a closed loop by `concurrency` tasks (each
//! on its own session) for a fixed time after a warm-up, with every latency recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::subject::{Operation, Subject};

/// What a cell measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measured {
    /// Operations completed in the measured window.
    pub ops: u64,
    /// Operations per second.
    pub ops_per_second: f64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// Operations that failed (a benchmark with failures is not a fair comparison).
    pub failures: u64,
}

impl Measured {
    /// Statistics of `latencies_us` (unsorted) over `seconds`.
    pub fn from_latencies(mut latencies_us: Vec<u64>, seconds: f64, failures: u64) -> Self {
        latencies_us.sort_unstable();
        let at = |quantile: f64| -> u64 {
            if latencies_us.is_empty() {
                return 0;
            }
            let index = ((latencies_us.len() as f64 - 1.0) * quantile).round() as usize;
            latencies_us[index.min(latencies_us.len() - 1)]
        };
        Self {
            ops: latencies_us.len() as u64,
            ops_per_second: latencies_us.len() as f64 / seconds,
            p50_us: at(0.50),
            p99_us: at(0.99),
            failures,
        }
    }
}

/// How long a cell runs.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Untimed first part: connections, caches, the instance pool warm up.
    pub warmup: Duration,
    /// The measured part.
    pub measure: Duration,
}

/// Run `operation` on `subject` with `concurrency` tasks; `label` names the cell's sessions.
pub async fn cell(
    subject: &Subject,
    operation: Operation,
    concurrency: usize,
    timing: Timing,
    label: &str,
    text: &str,
) -> Measured {
    let failures = Arc::new(AtomicU64::new(0));
    // Sessions filled to the window first, so reads and turns see 50 messages.
    let mut fill = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let (subject, session, text) =
            (subject.clone(), format!("{label}-{task}"), text.to_string());
        fill.spawn(async move { subject.fill(&session, &text).await });
    }
    while fill.join_next().await.is_some() {}

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let (subject, session, text) =
            (subject.clone(), format!("{label}-{task}"), text.to_string());
        let (measuring, stop, failures) = (
            Arc::clone(&measuring),
            Arc::clone(&stop),
            Arc::clone(&failures),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let counted = measuring.load(Ordering::Acquire);
                let started = Instant::now();
                let ok = subject.run(operation, &session, &text).await;
                if counted {
                    latencies.push(started.elapsed().as_micros() as u64);
                    if !ok {
                        failures.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
            latencies
        });
    }
    tokio::time::sleep(timing.warmup).await;
    measuring.store(true, Ordering::Release);
    let started = Instant::now();
    tokio::time::sleep(timing.measure).await;
    stop.store(true, Ordering::Release);
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap_or_default());
    }
    Measured::from_latencies(latencies, seconds, failures.load(Ordering::Acquire))
}

/// The process's resident memory now and at its peak, in bytes (Linux `/proc/self/status`).
pub fn resident_memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The most resident memory seen while `work` runs (sampled every 20 ms).
pub async fn peak_resident_during<T>(work: impl Future<Output = T>) -> (T, u64) {
    let peak = Arc::new(AtomicU64::new(resident_memory().0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                peak.fetch_max(resident_memory().0, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let output = work.await;
    done.store(true, Ordering::Release);
    let _ = sampler.await;
    (output, peak.load(Ordering::Acquire))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_latencies() {
        let measured = Measured::from_latencies((1..=100).rev().collect(), 2.0, 0);
        assert_eq!(
            (measured.ops, measured.p50_us, measured.p99_us),
            (100, 51, 99)
        );
        assert_eq!(measured.ops_per_second, 50.0);
    }
}
