//! [`Cli`]: the `agent-memory` binary (or `agent-memory-bench`) run as an operator would, with
//! its data and cache directories in a temporary home so runs never touch the real ones; and
//! [`Running`]: one such run to signal while it works.

use std::io::{BufRead as _, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to give the binary on stdin.
pub enum Stdin<'a> {
    /// Nothing (closed at once).
    Empty,
    /// This text.
    Text(&'a str),
    /// These bytes (text in another encoding, say).
    Bytes(&'a [u8]),
    /// This file (a device such as `/dev/zero`, say).
    File(&'a Path),
}

/// The binary at a path (integration tests pass `env!("CARGO_BIN_EXE_agent-memory")`), with a
/// home of its own.
pub struct Cli {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl Cli {
    /// The binary at `binary`, with a fresh home.
    pub fn new(binary: &str) -> Self {
        Self {
            binary: PathBuf::from(binary),
            home: tempfile::tempdir().expect("a home for the CLI"),
        }
    }

    /// Its home directory (also its working directory).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Run with `args` and no stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, Stdin::Empty)
    }

    /// The command that runs the binary with `args` in this home, stdout and stderr piped, to
    /// be spawned by the caller (to signal it while it runs, say).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .current_dir(self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env_remove("AGENT_MEMORY_STORE")
            .env_remove("AGENT_MEMORY_POLICY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Run with `args` and `stdin`.
    pub fn run_with(&self, args: &[&str], stdin: Stdin<'_>) -> Output {
        let mut command = self.command(args);
        match stdin {
            Stdin::File(path) => {
                command.stdin(std::fs::File::open(path).expect("opening the stdin file"));
            }
            Stdin::Empty | Stdin::Text(_) | Stdin::Bytes(_) => {
                command.stdin(Stdio::piped());
            }
        }
        let mut child = command.spawn().expect("running agent-memory");
        let bytes = match stdin {
            Stdin::Text(text) => Some(text.as_bytes()),
            Stdin::Bytes(bytes) => Some(bytes),
            Stdin::Empty | Stdin::File(_) => None,
        };
        if let Some(mut input) = child.stdin.take()
            && let Some(bytes) = bytes
        {
            // The binary may refuse early and close its end; that is its answer.
            let _ = input.write_all(bytes);
        }
        child.wait_with_output().expect("agent-memory output")
    }
}

/// Its stdout, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

/// Its stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr")
}

/// A failure is exactly one `error:` line on stderr, nothing on stdout, and exit status 1: no
/// panic, no backtrace. Returns the line.
pub fn assert_one_line_failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("error: "), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(stdout(output), "", "a failure prints nothing on stdout");
    lines[0].to_string()
}

/// How long a long-running command (`copy`, `doctor`, the benchmark) may take from SIGINT or
/// SIGTERM to its exit. They answer within one bounded request (a second at most); the rest is
/// room for a busy 2-core machine.
pub const EXIT_BOUND: Duration = Duration::from_secs(3);

/// A running command whose stderr is read line by line as it comes, to be signalled.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Running {
    /// Start `cli`'s binary with `args`.
    pub fn start(cli: &Cli, args: &[&str]) -> Self {
        let mut child = cli.command(args).spawn().expect("starting the binary");
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// Wait (at most `within`) for a line of stderr that contains `text`.
    pub fn wait_for(&mut self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let found = line.contains(text);
                self.stderr.push(line);
                if found {
                    return;
                }
            }
        }
        panic!(
            "no {text:?} on stderr within {within:?}:\n{}",
            self.stderr.join("\n")
        );
    }

    /// Send `signal` (`INT`, `TERM`, `KILL`) to it.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The lines of stderr read so far.
    pub fn stderr_lines(&self) -> &[String] {
        &self.stderr
    }

    /// Wait for the exit: its status, how long it took, stdout and the whole of stderr.
    pub fn finish(mut self) -> (ExitStatus, Duration, String, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "still running a minute after the signal"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = started.elapsed();
        let mut stdout = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        // The reader thread ends with the pipe.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stderr.push(line);
        }
        (status, took, stdout, self.stderr.join("\n"))
    }

    /// Send `signal` (`INT`, `TERM`) and check the command ends with the shell's status for
    /// it (`code`) within [`EXIT_BOUND`], printing how long it took: its stdout and stderr.
    pub fn stop_with(self, signal: &str, code: i32, what: &str) -> (String, String) {
        self.signal(signal);
        let (status, took, stdout, stderr) = self.finish();
        println!("{what}: SIG{signal} to exit {took:?}");
        assert_eq!(status.code(), Some(code), "{stdout}\n{stderr}");
        assert!(took < EXIT_BOUND, "{what}, SIG{signal}: {took:?}");
        (stdout, stderr)
    }

    /// The pids of the `redis-server`s it said it started, in the stderr read so far.
    pub fn servers(&self) -> Vec<u32> {
        started_servers(self.stderr.iter().map(String::as_str))
    }
}

/// The pids in `started redis-server (pid N, port P)` lines (as a tied server is named when it
/// spawns).
pub fn started_servers<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<u32> {
    lines
        .into_iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("started redis-server (pid ")?;
            rest.split(',').next()?.parse().ok()
        })
        .collect()
}

/// Whether a process is gone (or a zombie nobody has reaped yet: it runs nothing and holds no
/// port).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Whether every process of `pids` is gone within `within`.
pub fn all_gone_within(pids: &[u32], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pids.iter().all(|&pid| gone(pid)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
