//! The tool-safe window as a new user meets it: `agent-memory --policy tool-safe` processes
//! writing one session at once against a real Redis, the way agent runtimes stream tool calls,
//! while a Python reader polls the stored list and judges every sample as an LLM API would
//! (tests/python/poll_window.py). And the refusals an operator sees, one by one.

use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agent_memory_tests::cli::{Cli, Stdin, assert_one_line_failure, stderr, stdout};
use agent_memory_tests::{PythonOriginal, RedisServer, workspace_root};
use serde_json::{Value, json};

/// The binary under test, with a home of its own.
fn agent_memory() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory"))
}

/// Writers at once, and how long they write. Each write is one process, as a shell script
/// calling the CLI would make it.
const WRITERS: u32 = 4;
const WRITE_FOR: Duration = Duration::from_secs(8);
const MAX_MESSAGES: &str = "8";

/// What one write came to.
#[derive(Default)]
struct Tally {
    stored: AtomicU32,
    orphan: AtomicU32,
    overflow: AtomicU32,
    conflict: AtomicU32,
}

impl Tally {
    fn count(&self, output: &Output) {
        if output.status.success() {
            self.stored.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let line = assert_one_line_failure(output);
        let counter = if line.contains("does not fit") && line.contains("tool call") {
            &self.orphan
        } else if line.contains("does not fit") {
            &self.overflow
        } else if line.contains("conflict") || line.contains("another writer") {
            &self.conflict
        } else {
            panic!("unexpected failure: {line}");
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A small deterministic random source per writer.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn call(ids: &[&str]) -> Value {
    let calls: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}}))
        .collect();
    json!({"role": "assistant", "content": null, "tool_calls": calls})
}

fn result(id: &str) -> Value {
    json!({"role": "tool", "tool_call_id": id, "content": format!("result of {id}")})
}

#[test]
fn concurrent_cli_writers_never_leave_an_invalid_window_for_any_reader() {
    let server = RedisServer::start();
    let url = server.url();
    // The pinned system message, written by the Python original.
    PythonOriginal::new(&url).add(
        "s",
        &[r#"{"role": "system", "content": "You are the pinned system prompt."}"#],
    );
    let cli = agent_memory();
    // Compile the policy once into the shared cache before the writers start.
    let warm = cli.run(&["--store", &url, "--policy", "tool-safe", "get", "s"]);
    assert!(warm.status.success(), "{}", stderr(&warm));

    let stop_file = cli.home().join("stop-polling");
    let poller = std::process::Command::new(workspace_root().join(".venv/bin/python"))
        .arg(workspace_root().join("tests/python/poll_window.py"))
        .args([&url, "ai:memory:s", "60", MAX_MESSAGES, "-"])
        .arg(&stop_file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the Python poller");

    let tally = Tally::default();
    let done = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (cli, url, tally, done) = (&cli, &url, &tally, &done);
            scope.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(writer + 1));
                let mut turn = 0;
                while started.elapsed() < WRITE_FOR && !done.load(Ordering::Relaxed) {
                    turn += 1;
                    let id = |n: u32| format!("w{writer}-{turn}-{n}");
                    let add = |batch: Value| {
                        let text = batch.to_string();
                        let args = [
                            "--store",
                            url,
                            "--policy",
                            "tool-safe",
                            "--max-messages",
                            MAX_MESSAGES,
                            "add",
                            "s",
                            "--json",
                        ];
                        tally.count(&cli.run_with(&args, Stdin::Text(&text)));
                    };
                    match rng.below(10) {
                        // A call with its two results, in one batch.
                        0..=3 => {
                            let (a, b) = (id(1), id(2));
                            add(json!([call(&[&a, &b]), result(&a), result(&b)]));
                        }
                        // A call, then its result as a separate write, as runtimes stream
                        // them: other writers may trim the call away in between.
                        4..=6 => {
                            let a = id(1);
                            add(call(&[&a]));
                            add(result(&a));
                        }
                        _ => add(json!({"role": "user", "content": format!("user text {turn}")})),
                    }
                }
            });
        }
    });
    done.store(true, Ordering::Relaxed);
    std::fs::write(&stop_file, b"").unwrap();
    let polled = poller.wait_with_output().expect("the poller's report");
    let report: Value = serde_json::from_slice(&polled.stdout).expect("the poller prints JSON");

    let stored = tally.stored.load(Ordering::Relaxed);
    let (orphan, overflow, conflict) = (
        tally.orphan.load(Ordering::Relaxed),
        tally.overflow.load(Ordering::Relaxed),
        tally.conflict.load(Ordering::Relaxed),
    );
    println!(
        "{WRITERS} CLI writers for {:.1} s on one session (window {MAX_MESSAGES}, pinned system \
         message): {stored} writes stored, {orphan} refused as orphaned results (their call \
         trimmed by other writers), {overflow} refused as over the window, {conflict} gave up \
         after conflicts; the Python poller took {} samples: {} invalid, {} cut to the pinned \
         message alone, longest {}",
        started.elapsed().as_secs_f64(),
        report["samples"],
        report["invalid"],
        report["cut_to_pin"],
        report["max_length"],
    );
    assert_eq!(report["invalid"], 0, "invalid samples: {report}");
    assert!(report["samples"].as_u64().unwrap() >= 200, "{report}");
    assert!(stored >= 20, "too few writes stored: {stored}");
    assert_eq!(overflow, 0, "nothing these writers send is too large");
    // The list as it stands is a valid window, read by our own get too.
    let got = cli.run(&[
        "--store",
        &url,
        "--policy",
        "tool-safe",
        "--max-messages",
        MAX_MESSAGES,
        "get",
        "s",
        "--json",
    ]);
    let messages: Value = serde_json::from_str(&stdout(&got)).unwrap();
    assert_eq!(messages[0]["role"], "system");
}

/// Run `add` through the tool-safe policy with these options.
fn add(cli: &Cli, options: &[&str], session: &str, message: &Value) -> Output {
    let mut args = vec!["--policy", "tool-safe"];
    args.extend_from_slice(options);
    args.extend(["add", session, "--json"]);
    cli.run_with(&args, Stdin::Text(&message.to_string()))
}

#[test]
fn a_tool_result_over_the_budget_is_refused_with_what_to_do_and_the_session_kept() {
    let cli = agent_memory();
    let budget = ["--policy-setting", "max-tokens=200"];
    for message in [
        json!({"role": "user", "content": "weather?"}),
        json!({"role": "assistant", "content": "let me check"}),
        call(&["c1"]),
    ] {
        assert!(add(&cli, &budget, "s", &message).status.success());
    }
    let big = json!({"role": "tool", "tool_call_id": "c1", "content": "x".repeat(1200)});
    let line = assert_one_line_failure(&add(&cli, &budget, "s", &big));
    assert!(
        line.contains("not stored: message 1 of 1 does not fit the window")
            && line.contains("tokens")
            && line.contains("max-tokens"),
        "{line}"
    );
    let got = cli.run(&["--policy", "tool-safe", "get", "s"]);
    assert_eq!(stdout(&got).lines().count(), 3, "{}", stdout(&got));
}

#[test]
fn a_fan_out_larger_than_the_window_is_refused_at_the_call() {
    let cli = agent_memory();
    let window = ["--max-messages", "4"];
    assert!(
        add(
            &cli,
            &window,
            "s",
            &json!({"role": "user", "content": "go"})
        )
        .status
        .success()
    );
    let fan_out = call(&["a", "b", "c", "d", "e"]);
    let line = assert_one_line_failure(&add(&cli, &window, "s", &fan_out));
    assert!(
        line.contains("needs a window of 6 messages") && line.contains("--max-messages"),
        "{line}"
    );
}

#[test]
fn a_result_whose_call_was_trimmed_is_refused_as_an_orphan() {
    let cli = agent_memory();
    let window = ["--max-messages", "3"];
    assert!(add(&cli, &window, "s", &call(&["c9"])).status.success());
    for text in ["u1", "u2", "u3"] {
        let message = json!({"role": "user", "content": text});
        assert!(add(&cli, &window, "s", &message).status.success());
    }
    let line = assert_one_line_failure(&add(&cli, &window, "s", &result("c9")));
    assert!(line.contains("tool call `c9`"), "{line}");
    let got = cli.run(&["--policy", "tool-safe", "get", "s", "--json"]);
    assert!(!stdout(&got).contains("c9"), "{}", stdout(&got));
}

#[test]
fn settings_a_policy_does_not_read_or_accept_are_refused_before_anything_runs() {
    let cli = agent_memory();
    for (policy, setting, expected) in [
        (
            "tool-safe",
            "max-tokns=100",
            "reads no setting `max-tokns`; it reads: max-tokens, report-evicted",
        ),
        (
            "default",
            "max-tokens=100",
            "reads no setting `max-tokens`; it reads none",
        ),
        ("tool-safe", "max-tokens=0", "a whole number of at least 1"),
        (
            "tool-safe",
            "max-tokens=abc",
            "a whole number of at least 1",
        ),
        ("tool-safe", "report-evicted=yes", "true or false"),
    ] {
        let options = ["--policy", policy, "--policy-setting", setting];
        let mut add = options.to_vec();
        add.extend(["add", "s", "hi"]);
        let line = assert_one_line_failure(&cli.run(&add));
        assert!(line.contains(expected), "{setting} with {policy}: {line}");
        let check = ["--policy-setting", setting, "policy", "check", policy];
        let line = assert_one_line_failure(&cli.run(&check));
        assert!(
            line.contains(expected),
            "policy check {policy} {setting}: {line}"
        );
    }
    assert_eq!(stdout(&cli.run(&["sessions"])), "", "nothing was written");
}

#[test]
fn add_shows_what_a_write_evicted_when_asked() {
    let cli = agent_memory();
    let options = [
        "--max-messages",
        "2",
        "--policy-setting",
        "report-evicted=true",
    ];
    for text in ["first", "second"] {
        let message = json!({"role": "user", "content": text});
        assert!(add(&cli, &options, "s", &message).status.success());
    }
    let output = add(
        &cli,
        &options,
        "s",
        &json!({"role": "user", "content": "third"}),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "stored 1 (session holds 2, 1 older trimmed)\nevicted [1] user: first\n"
    );
}

#[test]
fn policy_check_lists_the_settings_a_policy_reads() {
    let cli = agent_memory();
    let output = cli.run(&["policy", "check", "tool-safe"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("setting:   max-tokens (a whole number of at least 1)")
            && out.contains("setting:   report-evicted (true or false)"),
        "{out}"
    );
    let output = cli.run(&["policy", "check", "default"]);
    assert!(stdout(&output).contains("settings:  none of its own"));
}
