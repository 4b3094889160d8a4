//! The long-running commands on SIGINT and SIGTERM: `bench`, `copy` and `doctor` stop within
//! their bound, report what they did, exit with the signal's status, and leave no
//! `redis-server` of theirs behind — not even after `kill -9`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agent_memory_tests::RedisServer;
use agent_memory_tests::cli::Cli;

fn agent_memory() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory"))
}

/// How long a command may take from the signal to its exit. The commands answer within one
/// bounded request (a second at most); the rest is room for a busy 2-core machine.
const EXIT_BOUND: Duration = Duration::from_secs(3);

/// A running command whose stderr is read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Running {
    fn start(cli: &Cli, args: &[&str]) -> Self {
        let mut child = cli.command(args).spawn().expect("starting agent-memory");
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
    fn wait_for(&mut self, text: &str, within: Duration) {
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

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for the exit: its status, how long it took, stdout and the whole of stderr.
    fn finish(mut self) -> (ExitStatus, Duration, String, String) {
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
    fn stop_with(self, signal: &str, code: i32, what: &str) -> (String, String) {
        self.signal(signal);
        let (status, took, stdout, stderr) = self.finish();
        println!("{what}: SIG{signal} to exit {took:?}");
        assert_eq!(status.code(), Some(code), "{stdout}\n{stderr}");
        assert!(took < EXIT_BOUND, "{what}, SIG{signal}: {took:?}");
        (stdout, stderr)
    }

    /// The pids of the `redis-server`s it said it started.
    fn servers(&self) -> Vec<u32> {
        self.stderr
            .iter()
            .filter_map(|line| {
                let rest = line.strip_prefix("started redis-server (pid ")?;
                rest.split(',').next()?.parse().ok()
            })
            .collect()
    }
}

/// Whether a process is gone (or a zombie nobody has reaped yet: it runs nothing and holds no
/// port).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn all_gone_within(pids: &[u32], within: Duration) -> bool {
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

#[test]
fn bench_stops_on_sigint_and_sigterm_reports_what_it_measured_and_stops_its_server() {
    let cli = agent_memory();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let json = cli.home().join(format!("bench-{signal}.json"));
        let mut bench = Running::start(
            &cli,
            &[
                "bench",
                "--no-python",
                "--workloads",
                "add,get,turn,embedded,policy",
                "--concurrency",
                "1",
                "--seconds",
                "1",
                "--warmup",
                "0.1",
                "--json",
                json.to_str().unwrap(),
            ],
        );
        // The first cell is measured; the second is under way.
        bench.wait_for("[2/3]", Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(300));
        let servers = bench.servers();
        assert_eq!(servers.len(), 1, "{:?}", bench.stderr);
        let (stdout, stderr) = bench.stop_with(signal, code, "bench");
        assert!(
            stdout.contains(&format!("INCOMPLETE: stopped by SIG{signal}")),
            "{stdout}"
        );
        // What was measured is printed: the first cell's table.
        assert!(stdout.contains("add: ops/s"), "{stdout}");
        assert!(!stdout.contains("policy alone"), "{stdout}");
        assert!(
            stderr.contains(&format!("bench: stopped by SIG{signal}"))
                && stderr.contains("the server it started is stopped"),
            "{stderr}"
        );
        assert!(all_gone_within(&servers, Duration::from_millis(100)));
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(results["complete"], false);
        assert_eq!(results["interrupted_by"], format!("SIG{signal}"));
        let rows = results["rows"].as_array().unwrap();
        assert!(rows.len() >= 2, "{rows:?}");
        assert!(
            rows.iter()
                .all(|row| row["workload"] != "get" || row["subject"] != "native")
        );
    }
}

#[test]
fn bench_runs_only_the_parts_asked_for() {
    let cli = agent_memory();
    let json = cli.home().join("policy.json");
    let output = cli.run(&[
        "bench",
        "--no-python",
        "--workloads",
        "policy",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        agent_memory_tests::cli::stderr(&output)
    );
    let stderr = agent_memory_tests::cli::stderr(&output);
    assert!(!stderr.contains("started redis-server"), "{stderr}");
    assert!(!stderr.contains("embedded store"), "{stderr}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(results["complete"], true);
    assert!(results["rows"].as_array().unwrap().is_empty());
    // Warm instances and strict isolation, add and read each.
    let measured: Vec<&str> = results["policy_alone_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert_eq!(measured, ["add", "get", "add (strict)", "get (strict)"]);
    let help = agent_memory_tests::cli::stdout(&cli.run(&["bench", "--help"]));
    for name in ["embedded", "policy", "turn"] {
        assert!(help.contains(name), "{help}");
    }
}

#[test]
fn the_servers_bench_starts_die_with_it_even_after_kill_9() {
    let cli = agent_memory();
    let mut bench = Running::start(
        &cli,
        &[
            "bench",
            "--cluster",
            "--no-python",
            "--workloads",
            "add",
            "--concurrency",
            "1",
            "--seconds",
            "30",
        ],
    );
    bench.wait_for("[1/2]", Duration::from_secs(90));
    let servers = bench.servers();
    assert_eq!(
        servers.len(),
        4,
        "one server and a cluster of 3: {:?}",
        bench.stderr
    );
    assert!(servers.iter().all(|&pid| !gone(pid)));
    bench.signal("KILL");
    let (status, ..) = bench.finish();
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(
        all_gone_within(&servers, Duration::from_secs(5)),
        "servers outlived the benchmark: {:?}",
        servers
            .iter()
            .filter(|&&pid| !gone(pid))
            .collect::<Vec<_>>()
    );
}

/// A Redis holding `count` sessions of two entries each, with a TTL.
fn populated_redis(count: usize) -> RedisServer {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let mut pipe = redis::pipe();
    for i in 0..count {
        let key = format!("ai:memory:s{i}");
        pipe.rpush(&key, r#"{"role": "user", "content": "hello"}"#)
            .ignore()
            .rpush(&key, r#"{"role": "assistant", "content": "hi"}"#)
            .ignore()
            .expire(&key, 3600)
            .ignore();
    }
    let () = pipe.query(&mut redis).unwrap();
    server
}

#[test]
fn copy_stops_on_sigint_and_sigterm_between_sessions_and_a_rerun_finishes_it() {
    const SESSIONS: usize = 5000;
    let server = populated_redis(SESSIONS);
    let cli = agent_memory();
    let url = server.url();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let file = cli.home().join(format!("copy-{signal}.redb"));
        let file = file.to_str().unwrap();
        let mut copy = Running::start(&cli, &["copy", "--from", &url, "--to", file]);
        copy.wait_for("keys to copy (listed in", Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(200));
        let (stdout, stderr) = copy.stop_with(signal, code, "copy");
        assert!(!stdout.contains("copied"), "{stdout}");
        let reported = stderr
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix(&format!("copy: stopped by SIG{signal} after "))?;
                rest.split(' ').next()?.parse::<usize>().ok()
            })
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(reported < SESSIONS, "{stderr}");
        assert!(stderr.contains("run the same copy again"), "{stderr}");
        // What the message says to do finishes the copy.
        let output = cli.run(&["copy", "--from", &url, "--to", file]);
        assert!(output.status.success());
        assert!(
            agent_memory_tests::cli::stdout(&output)
                .starts_with(&format!("copied {SESSIONS} sessions")),
            "{}",
            agent_memory_tests::cli::stdout(&output)
        );
        let listed = agent_memory_tests::cli::stdout(&cli.run(&["--store", file, "sessions"]));
        assert_eq!(listed.lines().count(), SESSIONS);
        let got = cli.run(&["--store", file, "get", "s4999", "--json"]);
        assert_eq!(
            agent_memory_tests::cli::stdout(&got).trim(),
            r#"[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]"#
        );
    }
}

#[test]
fn doctor_stops_on_sigint_and_sigterm_and_reports_how_far_it_got() {
    const SESSIONS: usize = 20_000;
    let server = populated_redis(SESSIONS);
    let cli = agent_memory();
    let url = server.url();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let mut doctor = Running::start(&cli, &["--store", &url, "doctor"]);
        doctor.wait_for("checked 1000/20000 sessions", Duration::from_secs(60));
        let (stdout, _) = doctor.stop_with(signal, code, "doctor");
        assert!(
            stdout.contains(&format!("doctor: stopped by SIG{signal} after checking "))
                && stdout.contains(" of 20000 sessions")
                && stdout.contains("0 problems so far"),
            "{stdout}"
        );
    }
}
