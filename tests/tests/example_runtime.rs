//! The example agent runtime (`tests/examples/agent_runtime.rs`) as a user runs it: a long
//! conversation stopped with SIGINT or SIGTERM ends between turns, says how far it got, and
//! exits with the signal's status.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The example's binary, which `cargo test` builds beside the test binaries.
fn example_binary() -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap();
    let target = deps.parent().unwrap().parent().unwrap();
    target.join("examples").join("agent_runtime")
}

#[test]
fn the_example_runtime_stops_between_turns_on_sigint_and_sigterm() {
    let binary = example_binary();
    assert!(
        binary.is_file(),
        "{} is missing: `cargo test` builds the examples",
        binary.display()
    );
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let turns: Vec<String> = (0..40).map(|turn| format!("turn {turn}")).collect();
        let mut child = Command::new(&binary)
            .args(["--pause-ms", "200"])
            .args(&turns)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The first reply: the conversation is under way.
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let replied = line.contains("] < ");
            seen.push(line);
            if replied {
                break;
            }
        }
        assert!(seen.iter().any(|line| line.contains("] < ")), "{seen:?}");
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        let started = Instant::now();
        let rest: Vec<String> = lines.map(Result::unwrap).collect();
        let status = child.wait().unwrap();
        let took = started.elapsed();
        println!("example runtime: SIG{signal} to exit {took:?}");
        assert_eq!(status.code(), Some(code), "{rest:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        let last = rest
            .last()
            .unwrap_or_else(|| panic!("nothing after the signal"));
        assert!(
            last.starts_with(&format!("stopped by SIG{signal} after "))
                && last.ends_with(" of 40 turns"),
            "{rest:?}"
        );
    }
}
