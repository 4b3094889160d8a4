//! The Python original, run from the project's venv (made by `scripts/setup`): one process per
//! command ([`PythonOriginal`]) or one long-lived worker for property tests ([`PythonWorker`]).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The Python original, run from the project's venv (made by `scripts/setup`).
pub struct PythonOriginal {
    python: PathBuf,
    script: PathBuf,
    url: String,
}

impl PythonOriginal {
    /// The original, talking to the server at `url`. Panics with the fix when the venv is
    /// missing: interop is part of the suite, it is never skipped silently.
    pub fn new(url: &str) -> Self {
        Self {
            python: venv_python(),
            script: workspace_root().join("tests/python/original.py"),
            url: url.to_string(),
        }
    }

    /// Run the venv's Python with `args`; its stdout, or a panic with its stderr.
    fn python(&self, args: &[&std::ffi::OsStr]) -> String {
        let output = Command::new(&self.python)
            .args(args)
            .output()
            .expect("running the venv's python");
        assert!(
            output.status.success(),
            "python {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("python prints UTF-8")
    }

    fn run(&self, args: &[&str]) -> String {
        let mut all = vec![self.script.as_os_str(), "--url".as_ref(), self.url.as_ref()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        self.python(&all)
    }

    /// `RedisMemoryRepository.add_messages(session, [json.loads(m) for m in messages])`.
    pub fn add(&self, session: &str, messages: &[&str]) {
        let mut args = vec!["add", session];
        args.extend_from_slice(messages);
        self.run(&args);
    }

    /// `RedisMemoryRepository.clear(session)`.
    pub fn clear(&self, session: &str) {
        self.run(&["clear", session]);
    }

    /// `RedisMemoryRepository.get_context(session)`, as the JSON Python dumps of it.
    pub fn get(&self, session: &str) -> serde_json::Value {
        serde_json::from_str(&self.run(&["get", session])).expect("the original prints JSON")
    }

    /// Evaluate `expression` in Python with `entries` bound to the raw entries (bytes) of the
    /// session's list and `arg` to `arg`, and return what it prints. For byte-level checks.
    pub fn eval_on_entries(&self, session: &str, expression: &str, arg: &str) -> String {
        // The same redis-py client the original's CLI picks for the address (cluster,
        // sentinel, TLS).
        let program = format!(
            "import json, sys\n\
             sys.path.insert(0, sys.argv[4])\n\
             from original import client_from_url\n\
             entries = client_from_url(sys.argv[1]).lrange('ai:memory:' + sys.argv[2], 0, -1)\n\
             arg = sys.argv[3]\n\
             print({expression})\n"
        );
        let dir = workspace_root().join("tests/python");
        let dir = dir.to_str().expect("a UTF-8 path");
        let args = ["-c", program.as_str(), self.url.as_str(), session, arg, dir];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        self.python(&args).trim_end().to_string()
    }
}

/// A long-lived Python process running the original against one Redis (tests/python/worker.py):
/// thousands of property-test cases talk to it without starting Python each time.
pub struct PythonWorker {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl PythonWorker {
    /// Start the worker against the Redis at `url`.
    pub fn start(url: &str) -> Self {
        let python = venv_python();
        let dir = workspace_root().join("tests/python");
        let mut child = Command::new(&python)
            .arg(dir.join("worker.py"))
            .arg(url)
            .env("PYTHONPATH", &dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting the Python worker");
        let input = child.stdin.take().expect("worker stdin");
        let output = std::io::BufReader::new(child.stdout.take().expect("worker stdout"));
        Self {
            child,
            input,
            output,
        }
    }

    fn call(&mut self, request: serde_json::Value) -> serde_json::Value {
        use std::io::{BufRead, Write};
        writeln!(self.input, "{request}").expect("writing to the Python worker");
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .expect("reading from the Python worker");
        let reply: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("worker replied {line:?}"));
        assert_eq!(
            reply["ok"], true,
            "Python worker failed on {request}: {reply}"
        );
        reply
    }

    /// `original.add_messages(session, [json.loads(text) for text in texts])`.
    pub fn add(&mut self, session: &str, texts: &[&str]) {
        self.call(serde_json::json!({"op": "add", "session": session, "texts": texts}));
    }

    /// `json.dumps(original.get_context(session))`.
    pub fn get(&mut self, session: &str) -> String {
        let reply = self.call(serde_json::json!({"op": "get", "session": session}));
        reply["text"].as_str().expect("text").to_string()
    }

    /// The raw entries of the session's list.
    pub fn entries(&mut self, session: &str) -> Vec<Vec<u8>> {
        let reply = self.call(serde_json::json!({"op": "entries", "session": session}));
        reply["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|entry| {
                // Latin-1 on the Python side: each char is one byte.
                entry
                    .as_str()
                    .expect("an entry")
                    .chars()
                    .map(|ch| u8::try_from(u32::from(ch)).expect("latin-1"))
                    .collect()
            })
            .collect()
    }

    /// `json.dumps(json.loads(text))`: Python's canonical form of a JSON text.
    pub fn canonical(&mut self, text: &str) -> String {
        let reply = self.call(serde_json::json!({"op": "canonical", "text": text}));
        reply["text"].as_str().expect("text").to_string()
    }

    /// [`PythonWorker::canonical`] of many texts in one round trip.
    pub fn canonical_many(&mut self, texts: &[String]) -> Vec<String> {
        let reply = self.call(serde_json::json!({"op": "canonical_many", "texts": texts}));
        reply["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .map(|text| text.as_str().expect("a text").to_string())
            .collect()
    }

    /// Whether `json.loads(text)` holds a lone surrogate (in a name or a string value), as
    /// Python sees it: after repeated members have replaced earlier ones.
    pub fn has_lone_surrogate(&mut self, text: &str) -> bool {
        let reply = self.call(serde_json::json!({"op": "lone", "text": text}));
        reply["lone"].as_bool().expect("a bool")
    }

    /// What `json.loads(text)` is, judged by Python itself (see [`Judgement`]).
    pub fn judge(&mut self, text: &str) -> Judgement {
        let reply = self.call(serde_json::json!({"op": "judge", "text": text}));
        let flag = |name: &str| reply[name].as_bool().expect("a bool");
        Judgement {
            lone_surrogate: flag("lone"),
            message: flag("message"),
            tool_results: flag("result"),
        }
    }

    /// Whether `json.loads` of each stored entry equals `json.loads` of each of `texts` (NaN
    /// counted equal to NaN, -0.0 apart from 0.0).
    pub fn loads_equal(&mut self, session: &str, texts: &[&str]) -> Vec<bool> {
        let reply =
            self.call(serde_json::json!({"op": "loads_equal", "session": session, "texts": texts}));
        reply["equal"]
            .as_array()
            .expect("equal")
            .iter()
            .map(|flag| flag.as_bool().expect("a bool"))
            .collect()
    }
}

/// What Python makes of a JSON text (`PythonWorker::judge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// A string in it (a name or a value) holds a lone surrogate.
    pub lone_surrogate: bool,
    /// It is a message: a dict with a `str` role.
    pub message: bool,
    /// It carries tool results: a `tool` message, or a `user` message with `tool_result`
    /// blocks.
    pub tool_results: bool,
}

impl Drop for PythonWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The venv's Python (or `AGENT_MEMORY_PYTHON`). Panics with the fix when it is missing:
/// interop is part of the suite, it is never skipped silently.
fn venv_python() -> PathBuf {
    let python = std::env::var_os("AGENT_MEMORY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "the interop tests need the project's Python venv at {}: run scripts/setup",
        python.display()
    );
    python
}
