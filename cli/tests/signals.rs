//! The long-running commands on SIGINT and SIGTERM: `copy` and `doctor` stop within their
//! bound, report what they did and exit with the signal's status (the benchmark's own are in
//! bench/tests).

use std::time::Duration;

use agent_memory_tests::RedisServer;
use agent_memory_tests::cli::{Cli, Running};

fn agent_memory() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory"))
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
