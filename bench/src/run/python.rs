//! The Python side of the benchmark: the original repository class (and LangChain's
//! `RedisChatMessageHistory`, when installed) driven by threads, as the original was deployed.
//! The scripts are built into the binary and written to a temporary directory to run.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use super::measure::{Measured, Timing};
use super::subject::Operation;

const ORIGINAL: &str = include_str!("../../../tests/python/original.py");
const BENCH: &str = include_str!("../../python/bench.py");

/// Which Python implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// tests/python/original.py.
    Original,
    /// LangChain's RedisChatMessageHistory.
    LangChain,
}

/// A Python interpreter (with redis-py) and the scripts, ready to run cells.
pub struct Python {
    interpreter: String,
    scripts: tempfile::TempDir,
}

impl Python {
    /// Use `interpreter`; check that it can import redis-py.
    pub fn new(interpreter: &str) -> anyhow::Result<Self> {
        let scripts = tempfile::tempdir().context("a directory for the Python scripts")?;
        std::fs::write(scripts.path().join("original.py"), ORIGINAL)?;
        std::fs::write(scripts.path().join("bench.py"), BENCH)?;
        let mut probe = Command::new(interpreter);
        agent_memory_tests::children::prepare(&mut probe);
        let probe = probe
            .args(["-c", "import redis"])
            .output()
            .with_context(|| format!("running {interpreter}"))?;
        if !probe.status.success() {
            bail!("{interpreter} cannot import redis (run scripts/setup, or pass --python)");
        }
        Ok(Self {
            interpreter: interpreter.to_string(),
            scripts,
        })
    }

    /// One cell: `operation` by `threads` threads. `None` when the implementation is not
    /// installed (LangChain is optional). The Python process is killed if this future is
    /// dropped (the benchmark interrupted), and dies with the benchmark.
    pub async fn cell(
        &self,
        implementation: Implementation,
        url: &str,
        operation: Operation,
        threads: usize,
        timing: Timing,
        message_bytes: usize,
    ) -> anyhow::Result<Option<Measured>> {
        let workload = match operation {
            Operation::Add => "add",
            Operation::Get => "get",
            Operation::Turn | Operation::TurnCombined => "turn",
        };
        let implementation = match implementation {
            Implementation::Original => "original",
            Implementation::LangChain => "langchain",
        };
        let mut command = tokio::process::Command::new(&self.interpreter);
        agent_memory_tests::children::prepare_async(&mut command);
        let output = command
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .arg(script(self.scripts.path()))
            .args([
                "--url",
                url,
                "--impl",
                implementation,
                "--workload",
                workload,
            ])
            .args(["--threads", &threads.to_string()])
            .args(["--seconds", &timing.measure.as_secs_f64().to_string()])
            .args(["--warmup", &timing.warmup.as_secs_f64().to_string()])
            .args(["--message-bytes", &message_bytes.to_string()])
            .env("PYTHONPATH", self.scripts.path())
            .output()
            .await
            .context("running the Python benchmark")?;
        if !output.status.success() {
            bail!(
                "the Python benchmark failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let result: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("the Python benchmark's output")?;
        if result.get("unavailable").is_some() {
            return Ok(None);
        }
        let latencies: Vec<u64> = result["latencies_us"]
            .as_array()
            .context("latencies")?
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect();
        let seconds = result["seconds"].as_f64().unwrap_or(1.0);
        Ok(Some(Measured::from_latencies(latencies, seconds, 0)))
    }
}

fn script(dir: &Path) -> std::path::PathBuf {
    dir.join("bench.py")
}
