//! Support for agent-memory's integration tests: real `redis-server` processes the tests own,
//! and the Python original run from the project's venv.
//!
//! Tests never touch the machine's Redis on 6379: each [`RedisServer`] listens on a free port
//! of its own, keeps nothing on disk, and can be killed, paused and restarted on the same
//! address.

#![deny(missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The hostile policy fixture's component (tests/fixtures/hostile-policy).
pub const HOSTILE_POLICY_WASM: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hostile_policy.wasm"));

/// The session ids that make the hostile policy misbehave, one per way.
pub use agent_memory_hostile_policy::BEHAVIOURS as HOSTILE_BEHAVIOURS;

/// The report of a write that must have been stored; panics with the store error otherwise.
pub fn expect_stored(outcome: agent_memory::WriteOutcome) -> agent_memory::Stored {
    match outcome {
        agent_memory::WriteOutcome::Stored(stored) => stored,
        agent_memory::WriteOutcome::Failed(error) => panic!("write failed: {error}"),
    }
}

/// The text of each message of `context` (`<not text>` for other content).
pub fn texts(context: &agent_memory::Context) -> Vec<String> {
    context
        .messages
        .iter()
        .map(|message| message.text().unwrap_or("<not text>").to_string())
        .collect()
}

/// How long a new server gets to start answering.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// A `redis-server` child process on a free local port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Start a server with the project's test configuration.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start a server with extra `redis-server` arguments (such as `["--maxmemory", "1mb"]`).
    pub fn start_with(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for redis-server");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
        };
        // A free port can be taken between finding it and binding it; try a few.
        let mut last_error = None;
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(error) => last_error = Some(error),
            }
        }
        panic!(
            "cannot start redis-server: {:#}",
            last_error.expect("an error")
        );
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = self.dir.path().join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning redis-server (is it installed? scripts/setup installs it)")?;
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("redis-server exited with {status}: {}", self.log());
            }
            if self.ping().is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "redis-server did not answer within {STARTUP_DEADLINE:?}: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> redis::RedisResult<()> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_millis(200))?;
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .map(|_| ())
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// A plain synchronous connection, for inspecting and tampering with data.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .unwrap_or_else(|error| panic!("connecting to {}: {error}\n{}", self.url(), self.log()))
    }

    /// Kill the server (SIGKILL) and wait for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same port (after [`RedisServer::kill`]); data is gone.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + STARTUP_DEADLINE;
        // The old socket may linger briefly; retry until the port is ours again.
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(error) if Instant::now() > deadline => {
                    panic!("restarting redis-server: {error:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Stall the server for `seconds` with `DEBUG SLEEP`, from another connection on a thread
    /// of its own; join the handle to wait until it answers again.
    pub fn stall(&self, seconds: f64) -> std::thread::JoinHandle<()> {
        let url = self.url();
        std::thread::spawn(move || {
            let mut redis = redis::Client::open(url)
                .and_then(|client| client.get_connection())
                .expect("a connection for DEBUG SLEEP");
            redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(seconds)
                .query::<()>(&mut redis)
                .expect("DEBUG SLEEP (the server is started with --enable-debug-command local)");
        })
    }

    /// Freeze the server (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaw a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server ignores SIGKILL's siblings but not SIGKILL itself.
        self.kill();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral port")
}

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
        let python = std::env::var_os("AGENT_MEMORY_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
        assert!(
            python.exists(),
            "the interop tests need the project's Python venv at {}: run scripts/setup",
            python.display()
        );
        Self {
            python,
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
        let program = format!(
            "import json, redis, sys\n\
             entries = redis.Redis.from_url(sys.argv[1]).lrange('ai:memory:' + sys.argv[2], 0, -1)\n\
             arg = sys.argv[3]\n\
             print({expression})\n"
        );
        let args = ["-c", program.as_str(), self.url.as_str(), session, arg];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        self.python(&args).trim_end().to_string()
    }
}
