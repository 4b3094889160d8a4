//! `agent-memory-bench` as its users run it: settings that measure nothing refused before
//! anything starts, only the parts asked for measured, a cluster of its own beside one server,
//! SIGINT and SIGTERM answered with what was measured, and no `redis-server` of its left
//! behind — not even after `kill -9`.

use std::time::Duration;

use agent_memory_tests::cli::{
    Cli, Running, all_gone_within, assert_one_line_failure, gone, started_servers, stderr, stdout,
};

fn bench() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory-bench"))
}

#[test]
fn refuses_settings_that_measure_nothing_before_starting_anything() {
    let home = bench();
    for (args, expected) in [
        (&["--concurrency", "0"][..], "0 sessions measure nothing"),
        (&["--concurrency", "1,0"], "0 sessions measure nothing"),
        (&["--seconds", "0"], "0 seconds measure nothing"),
        (&["--seconds=-1"], "not a number of seconds from 0"),
        (&["--seconds", "nan"], "not a number of seconds from 0"),
        (&["--warmup", "inf"], "not a number of seconds from 0"),
        (&["--message-bytes", "0"], "from 1 to"),
    ] {
        let mut all = vec!["--no-python"];
        all.extend_from_slice(args);
        let started = std::time::Instant::now();
        let output = home.run(&all);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stdout(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
        // Refused while parsing: no server started, no cell measured.
        assert!(stdout(&output).is_empty(), "{args:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn a_policy_it_cannot_run_is_one_line_before_anything_starts() {
    let home = bench();
    let not_wasm = home.home().join("policy.wasm");
    std::fs::write(&not_wasm, "not a component").unwrap();
    for (policy, expected) in [
        ("/nonexistent/policy.wasm", "/nonexistent/policy.wasm"),
        (
            not_wasm.to_str().unwrap(),
            "not a valid WebAssembly component",
        ),
    ] {
        let output = home.run(&["--policy", policy, "--no-python"]);
        let line = assert_one_line_failure(&output);
        assert!(line.contains(expected), "{line}");
        assert!(!line.contains("started redis-server"), "{line}");
    }
}

#[test]
fn runs_only_the_parts_asked_for() {
    let cli = bench();
    let json = cli.home().join("policy.json");
    let output = cli.run(&[
        "--no-python",
        "--workloads",
        "policy",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stderr = stderr(&output);
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
    let help = stdout(&cli.run(&["--help"]));
    for name in ["embedded", "policy", "turn"] {
        assert!(help.contains(name), "{help}");
    }
}

#[test]
fn measures_a_cluster_of_its_own_beside_one_server() {
    let home = bench();
    let json = home.home().join("bench.json");
    let output = home.run(&[
        "--cluster",
        "--no-python",
        "--workloads",
        "add,get",
        "--concurrency",
        "2",
        "--seconds",
        "0.3",
        "--warmup",
        "0.1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(report.contains("3 masters vs 1 server"), "{report}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = results["rows"].as_array().unwrap();
    for subject in ["ours", "native"] {
        for workload in ["add", "get"] {
            let row = rows
                .iter()
                .find(|row| {
                    row["deployment"] == "3 masters"
                        && row["subject"] == subject
                        && row["workload"] == workload
                })
                .unwrap_or_else(|| panic!("no {subject} {workload} row on the cluster"));
            assert!(row["ops"].as_u64().unwrap() > 0, "{row}");
            assert_eq!(row["failures"], 0, "{row}");
        }
    }
}

#[test]
fn stops_on_sigint_and_sigterm_reports_what_it_measured_and_stops_its_server() {
    let cli = bench();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let json = cli.home().join(format!("bench-{signal}.json"));
        let mut bench = Running::start(
            &cli,
            &[
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
        assert_eq!(servers.len(), 1, "{:?}", bench.stderr_lines());
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
fn the_servers_it_starts_die_with_it_even_after_kill_9() {
    let cli = bench();
    let mut bench = Running::start(
        &cli,
        &[
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
        bench.stderr_lines()
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

#[test]
fn a_signal_while_its_cluster_forms_stops_it_at_once_and_leaves_no_server() {
    let cli = bench();
    let mut bench = Running::start(
        &cli,
        &[
            "--cluster",
            "--no-python",
            "--workloads",
            "add",
            "--concurrency",
            "1",
        ],
    );
    // The single server is up, and the cluster's first node has started: the cluster is being
    // made (nodes starting, `redis-cli --cluster create`, slots settling).
    bench.wait_for("started redis-server", Duration::from_secs(60));
    bench.wait_for("started redis-server", Duration::from_secs(60));
    bench.signal("INT");
    let (status, took, stdout, stderr) = bench.finish();
    println!("bench during start-up: SIGINT to exit {took:?}");
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    // Making and settling the cluster takes 2-4 s here; the start is abandoned at its next
    // look (20-100 ms) instead of finished first.
    assert!(took < Duration::from_secs(1), "{took:?}\n{stderr}");
    assert!(stdout.contains("INCOMPLETE: stopped by SIGINT"), "{stdout}");
    assert!(
        stderr.contains("bench: stopped by SIGINT after 0 measurements"),
        "{stderr}"
    );
    let servers = started_servers(stderr.lines());
    assert!(servers.len() >= 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the {} servers it started are stopped",
            servers.len()
        )),
        "{stderr}"
    );
    assert!(
        all_gone_within(&servers, Duration::from_millis(500)),
        "{stderr}"
    );
}
