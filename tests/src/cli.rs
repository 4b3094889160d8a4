//! [`Cli`]: the `agent-memory` binary run as an operator would, with its data and cache
//! directories in a temporary home so runs never touch the real ones.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
