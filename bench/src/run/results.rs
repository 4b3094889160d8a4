//! What a run measured: its rows (one per deployment, workload, concurrency and subject) and
//! the figures measured on their own, as the report prints them and `--json` keeps them.

use super::measure::Measured;
use super::subject::Operation;

/// The deployment of the single server's rows (`--redis`, or the benchmark's own).
pub(super) const SINGLE: &str = "1 server";
/// The deployment of the benchmark's own cluster's rows (`--cluster`).
pub(super) const CLUSTER: &str = "3 masters";
/// The embedded store's rows.
pub(super) const EMBEDDED: &str = "embedded file";

/// One measured cell, as the report and the JSON file hold it.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Row {
    pub(super) deployment: &'static str,
    pub(super) workload: &'static str,
    pub(super) concurrency: usize,
    pub(super) subject: &'static str,
    #[serde(flatten)]
    pub(super) measured: Measured,
}

/// Everything a run measured.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Results {
    pub(super) machine: String,
    pub(super) date: String,
    pub(super) command: String,
    pub(super) message_bytes: usize,
    pub(super) seconds_per_cell: f64,
    /// The policy "ours" ran: where it came from, and its digest.
    pub(super) policy: String,
    /// Whether the library's metrics were recorded (`--metrics on`), and then how many
    /// samples the Prometheus text held at the end (proof that they were).
    pub(super) metrics: bool,
    pub(super) metrics_samples: Option<usize>,
    pub(super) rows: Vec<Row>,
    /// The policy alone over the in-memory store, microseconds per call (warm, then strict).
    pub(super) policy_alone_us: Vec<(&'static str, f64)>,
    /// Peak resident memory of this process while agent-memory served the highest concurrency.
    pub(super) peak_rss_bytes: u64,
    /// Whether every cell asked for was measured.
    pub(super) complete: bool,
    /// The signal that stopped the run before the end, if one did.
    pub(super) interrupted_by: Option<String>,
}

impl Results {
    /// Record one cell's figures, and say them on stderr as they come.
    pub(super) fn push(
        &mut self,
        deployment: &'static str,
        operation: Operation,
        concurrency: usize,
        subject: &'static str,
        measured: Measured,
    ) {
        let shown = match operation {
            Operation::TurnCombined => format!("{subject} (combined)"),
            _ => subject.to_string(),
        };
        eprintln!(
            "  {shown:<16} {:>9.0} ops/s  p50 {:>6} us  p99 {:>7} us",
            measured.ops_per_second, measured.p50_us, measured.p99_us
        );
        self.rows.push(Row {
            deployment,
            workload: operation.name(),
            concurrency,
            subject,
            measured,
        });
    }

    /// The single-server cell.
    pub(super) fn find(
        &self,
        workload: &str,
        concurrency: usize,
        subject: &str,
    ) -> Option<&Measured> {
        self.find_on(SINGLE, workload, concurrency, subject)
    }

    /// The cell on `deployment`.
    pub(super) fn find_on(
        &self,
        deployment: &str,
        workload: &str,
        concurrency: usize,
        subject: &str,
    ) -> Option<&Measured> {
        self.rows
            .iter()
            .find(|row| {
                row.deployment == deployment
                    && row.workload == workload
                    && row.concurrency == concurrency
                    && row.subject == subject
            })
            .map(|row| &row.measured)
    }
}
