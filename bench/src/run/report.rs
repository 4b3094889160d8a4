//! What a run prints: per workload, a row per concurrency with ops/s, p50, p99 and the ratios
//! against native and Python; the cluster against the single server; the machine and date.

use super::measure::Measured;
use super::results::{CLUSTER, Results, Row, SINGLE};

/// The tables: per workload, a row per concurrency.
pub(super) fn report(results: &Results) -> String {
    let mut out = format!(
        "\n{}; {}; {}-byte messages; {} s per cell; policy {}\n",
        results.machine,
        results.date,
        results.message_bytes,
        results.seconds_per_cell,
        results.policy
    );
    match results.metrics_samples {
        Some(samples) => out.push_str(&format!(
            "metrics recorded (Prometheus recorder; {samples} samples at the end)\n"
        )),
        None => out.push_str("metrics not recorded (no recorder)\n"),
    }
    match (&results.interrupted_by, results.rows.is_empty()) {
        (Some(stop), true) if results.policy_alone_us.is_empty() => {
            out.push_str(&format!(
                "INCOMPLETE: stopped by {stop} before any cell was measured\n"
            ));
        }
        (Some(stop), _) => out.push_str(&format!(
            "INCOMPLETE: stopped by {stop}; only the cells below were measured\n"
        )),
        (None, _) => {}
    }
    let workloads = ["add", "get", "turn"];
    for workload in workloads {
        let concurrencies: Vec<usize> = {
            let mut seen: Vec<usize> = results
                .rows
                .iter()
                // Every concurrency any subject was measured at: an interrupted run may have
                // measured ours and not yet native.
                .filter(|row| row.deployment == SINGLE && row.workload == workload)
                .map(|row| row.concurrency)
                .collect();
            seen.dedup();
            seen
        };
        if concurrencies.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n{workload}: ops/s (p50 / p99 us)\n\
             | conc | ours | native | ours/native ops | ours/native p50 | python | ours/python | strict | strict/native |{}\n\
             |---|---|---|---|---|---|---|---|---|{}\n",
            if workload == "turn" { " ours combined | combined/native |" } else { "" },
            if workload == "turn" { "---|---|" } else { "" },
        ));
        for concurrency in concurrencies {
            let cell = |subject: &str| results.find(workload, concurrency, subject);
            let shown = |measured: Option<&Measured>| {
                measured.map_or("—".to_string(), |m| {
                    format!("{:.0} ({} / {})", m.ops_per_second, m.p50_us, m.p99_us)
                })
            };
            let ratio = |a: Option<&Measured>, b: Option<&Measured>, f: fn(&Measured) -> f64| match (
                a, b,
            ) {
                (Some(a), Some(b)) if f(b) > 0.0 => format!("{:.2}x", f(a) / f(b)),
                _ => "—".to_string(),
            };
            let (ours, native, python) = (cell("ours"), cell("native"), cell("python"));
            let strict = cell("ours-strict");
            out.push_str(&format!(
                "| {concurrency} | {} | {} | {} | {} | {} | {} | {} | {} |",
                shown(ours),
                shown(native),
                ratio(ours, native, |m| m.ops_per_second),
                ratio(ours, native, |m| m.p50_us as f64),
                shown(python),
                ratio(ours, python, |m| m.ops_per_second),
                shown(strict),
                ratio(strict, native, |m| m.ops_per_second),
            ));
            if workload == "turn" {
                let combined = results.find("turn-combined", concurrency, "ours");
                out.push_str(&format!(
                    " {} | {} |",
                    shown(combined),
                    ratio(combined, native, |m| m.ops_per_second)
                ));
            }
            out.push('\n');
        }
    }
    out.push_str(&cluster_report(results));
    // Only the parts that were measured (asked for, and reached before a signal).
    let embedded: Vec<&Row> = results
        .rows
        .iter()
        .filter(|row| row.subject == "ours-embedded")
        .collect();
    if !embedded.is_empty() {
        out.push_str("\nembedded store (ours): ");
        for row in embedded {
            out.push_str(&format!(
                "{} at {}: {:.0} ops/s (p50 {} us); ",
                row.workload, row.concurrency, row.measured.ops_per_second, row.measured.p50_us
            ));
        }
    }
    if !results.policy_alone_us.is_empty() {
        out.push_str("\npolicy alone (in-memory store): ");
        for (operation, micros) in &results.policy_alone_us {
            out.push_str(&format!("{operation} {micros:.1} us/call; "));
        }
    }
    if results.peak_rss_bytes > 0 {
        out.push_str(&format!(
            "\npeak resident memory at the highest concurrency: {:.0} MB",
            results.peak_rss_bytes as f64 / 1e6
        ));
    }
    out.push('\n');
    out
}

/// The cluster against the single server, when `--cluster` measured one.
fn cluster_report(results: &Results) -> String {
    let mut out = String::new();
    let mut cells: Vec<(&str, usize)> = results
        .rows
        .iter()
        .filter(|row| row.deployment == CLUSTER && row.subject == "ours")
        .map(|row| (row.workload, row.concurrency))
        .collect();
    cells.dedup();
    if cells.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "\n{CLUSTER} vs {SINGLE}: ops/s (p50 / p99 us)\n\
         | workload | conc | ours, {SINGLE} | ours, {CLUSTER} | ratio | native, {SINGLE} | \
         native, {CLUSTER} | ratio | ours/native, {CLUSTER} | python, {CLUSTER} |\n\
         |---|---|---|---|---|---|---|---|---|---|\n"
    ));
    let shown = |measured: Option<&Measured>| {
        measured.map_or("—".to_string(), |m| {
            format!("{:.0} ({} / {})", m.ops_per_second, m.p50_us, m.p99_us)
        })
    };
    let ratio = |a: Option<&Measured>, b: Option<&Measured>| match (a, b) {
        (Some(a), Some(b)) if b.ops_per_second > 0.0 => {
            format!("{:.2}x", a.ops_per_second / b.ops_per_second)
        }
        _ => "—".to_string(),
    };
    for (workload, concurrency) in cells {
        let cell =
            |deployment, subject| results.find_on(deployment, workload, concurrency, subject);
        let (ours_one, ours_cluster) = (cell(SINGLE, "ours"), cell(CLUSTER, "ours"));
        let (native_one, native_cluster) = (cell(SINGLE, "native"), cell(CLUSTER, "native"));
        out.push_str(&format!(
            "| {workload} | {concurrency} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            shown(ours_one),
            shown(ours_cluster),
            ratio(ours_cluster, ours_one),
            shown(native_one),
            shown(native_cluster),
            ratio(native_cluster, native_one),
            ratio(ours_cluster, native_cluster),
            shown(cell(CLUSTER, "python")),
        ));
    }
    out
}

/// `<cpu model>, <n> cores, <memory>`, from /proc.
pub(super) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(String::new(), |kib| format!(", {} GiB", kib >> 20));
    format!("{cpu}, {cores} cores{memory}")
}

/// Today's date (UTC), as `date -u +%F` prints it.
pub(super) fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default()
}
