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

/// `--metrics-listen`: Prometheus text at `/metrics` while the conversation runs and after it,
/// until interrupted; what it serves parses strictly as Prometheus text, documents every
/// family, and names the handle and policy but never the session.
#[test]
fn the_example_runtime_serves_prometheus_metrics_after_its_conversation_until_interrupted() {
    use agent_memory_tests::prometheus;

    let mut child = Command::new(example_binary())
        .args(["--metrics-listen", "127.0.0.1:0", "--name", "scraped"])
        .args([
            "--session",
            "secret-session-314",
            "hello",
            "/tool measure",
            "bye",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("metrics: http://") {
            addr = url.strip_suffix("/metrics").map(str::to_string);
        }
        let over = line.starts_with("conversation over");
        seen.push(line);
        if over {
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no metrics address printed: {seen:?}"));
    assert!(
        seen.iter()
            .any(|line| line.starts_with("conversation over")),
        "{seen:?}"
    );

    // Still serving after the conversation: scraped twice, the same counts both times.
    let (status, body) = prometheus::scrape(&addr).unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    let scrape = prometheus::parse(&body).unwrap_or_else(|error| panic!("{error}\n{body}"));
    let handle = [("handle", "scraped")];
    let calls = scrape.sum("agent_memory_calls_total", &handle);
    assert!(
        calls >= 3.0,
        "three turns make at least three calls: {body}"
    );
    assert!(
        scrape.sum(
            "agent_memory_calls_total",
            &[("handle", "scraped"), ("outcome", "ok")]
        ) == calls,
        "every call of a plain conversation is ok: {body}"
    );
    assert_eq!(
        scrape
            .types
            .get("agent_memory_call_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    assert!(
        scrape.sum("agent_memory_call_duration_seconds_count", &handle) >= 3.0,
        "{body}"
    );
    assert_eq!(
        scrape
            .types
            .get("agent_memory_calls_total")
            .map(String::as_str),
        Some("counter")
    );
    assert!(
        scrape.help.contains_key("agent_memory_calls_total"),
        "{body}"
    );
    assert_eq!(scrape.sum("agent_memory_policy_info", &handle), 1.0);
    assert!(
        scrape
            .samples
            .iter()
            .filter(|sample| sample.name.starts_with("agent_memory_"))
            .all(|sample| sample
                .labels
                .values()
                .all(|value| !value.contains("secret-session"))),
        "a session id in a label: {body}"
    );
    assert!(!body.contains("secret-session"), "{body}");
    let (_, again) = prometheus::scrape(&addr).unwrap();
    let again = prometheus::parse(&again).unwrap();
    assert_eq!(again.sum("agent_memory_calls_total", &handle), calls);
    let (not_found, _) = {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        write!(stream, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        (response.lines().next().unwrap_or_default().to_string(), ())
    };
    assert_eq!(not_found, "HTTP/1.1 404 Not Found");

    // Interrupted: it stops, with the signal's status.
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("stopped by SIGINT"));
}
