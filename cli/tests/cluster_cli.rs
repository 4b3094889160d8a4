//! The operator commands on a real Redis Cluster: `sessions`, `ttl`, `doctor` and `copy` see
//! every master.

use agent_memory_tests::RedisCluster;
use agent_memory_tests::cli::{Cli, stderr, stdout};
use redis::Commands;

fn agent_memory() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_agent-memory"))
}

/// A session id whose key the node `node` serves, and that is not in `taken`.
fn session_on(cluster: &RedisCluster, node: usize, taken: &[String]) -> String {
    (0..)
        .map(|i| format!("on-{node}-{i}"))
        .find(|session| {
            !taken.contains(session)
                && cluster.node_for_key(format!("ai:memory:{session}").as_bytes()) == node
        })
        .unwrap()
}

#[test]
fn sessions_ttl_and_doctor_see_every_master_and_each_masters_eviction_policy() {
    let cluster = RedisCluster::start(3, 0);
    let masters = cluster.masters();
    // One master evicts: doctor must name it, and only it.
    let risky = masters[1];
    cluster
        .node(risky)
        .config_set("maxmemory-policy", "allkeys-lru");
    let home = agent_memory();
    let url = cluster.url();
    let run = |args: &[&str]| {
        let mut all = vec!["--store", url.as_str()];
        all.extend_from_slice(args);
        home.run(&all)
    };
    let mut healthy = Vec::new();
    for &master in &masters {
        for _ in 0..4 {
            let session = session_on(&cluster, master, &healthy);
            let output = run(&["add", &session, "hello"]);
            assert!(output.status.success(), "{}", stderr(&output));
            healthy.push(session);
        }
    }
    // A problem on each master: foreign data, a list without TTL, a list over the window.
    let mut redis = cluster.connection();
    let foreign = session_on(&cluster, masters[0], &healthy);
    let _: () = redis
        .set(format!("ai:memory:{foreign}"), "a string")
        .unwrap();
    let forever = session_on(&cluster, masters[1], &healthy);
    let _: () = redis
        .rpush(
            format!("ai:memory:{forever}"),
            r#"{"role": "user", "content": "x"}"#,
        )
        .unwrap();
    let long = session_on(&cluster, masters[2], &healthy);
    for i in 0..60 {
        let _: () = redis
            .rpush(
                format!("ai:memory:{long}"),
                format!(r#"{{"role": "user", "content": "{i}"}}"#),
            )
            .unwrap();
    }
    let _: () = redis.expire(format!("ai:memory:{long}"), 100).unwrap();

    let output = run(&["sessions"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = stdout(&output);
    for session in healthy.iter().chain([&foreign, &forever, &long]) {
        assert!(
            listed.lines().any(|line| line == session),
            "{session} not listed: {listed}"
        );
    }
    let output = run(&["sessions", "-l"]);
    assert!(stdout(&output).contains(&long), "{}", stdout(&output));
    let output = run(&["ttl", &healthy[0]]);
    assert!(output.status.success(), "{}", stderr(&output));

    let output = run(&["doctor"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = stdout(&output);
    let risky_port = cluster.node(risky).port();
    assert!(
        report.contains(&format!(
            "redis 127.0.0.1:{risky_port}: maxmemory-policy is allkeys-lru"
        )),
        "{report}"
    );
    assert_eq!(report.matches("maxmemory-policy").count(), 1, "{report}");
    assert!(
        report.contains(&format!("session \"{foreign}\": holds a string")),
        "{report}"
    );
    assert!(
        report.contains(&format!("session \"{forever}\": has no TTL")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "session \"{long}\": holds 60 entries, over the window of 50"
        )),
        "{report}"
    );
    assert!(
        report.contains("checked 15 sessions in redis cluster"),
        "{report}"
    );
    assert!(report.contains(": 4 problems"), "{report}");
}

#[test]
fn copy_moves_every_session_from_a_file_into_a_cluster_and_back() {
    let cluster = RedisCluster::start(3, 0);
    let home = agent_memory();
    let file = home.home().join("start.redb");
    let file = file.to_str().unwrap();
    for i in 0..24 {
        let session = format!("c{i}");
        for turn in 0..(i % 4 + 1) {
            let output = home.run(&["--store", file, "add", &session, &format!("turn {turn} é")]);
            assert!(output.status.success(), "{}", stderr(&output));
        }
    }
    let url = cluster.url();
    let output = home.run(&["copy", "--from", file, "--to", &url]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("copied 24 sessions"),
        "{}",
        stdout(&output)
    );
    // Spread over every master.
    for master in cluster.masters() {
        let keys: Vec<String> = cluster
            .node(master)
            .connection()
            .keys("ai:memory:*")
            .unwrap();
        assert!(!keys.is_empty(), "nothing on master {master}");
    }
    let back = home.home().join("back.redb");
    let back = back.to_str().unwrap();
    let output = home.run(&["copy", "--from", &url, "--to", back]);
    assert!(output.status.success(), "{}", stderr(&output));
    for i in 0..24 {
        let session = format!("c{i}");
        let original = home.run(&["--store", file, "get", &session, "--json"]);
        let returned = home.run(&["--store", back, "get", &session, "--json"]);
        let on_cluster = home.run(&["--store", &url, "get", &session, "--json"]);
        assert_eq!(stdout(&original), stdout(&returned), "{session}");
        assert_eq!(stdout(&original), stdout(&on_cluster), "{session}");
    }
}

#[test]
fn scans_through_an_address_that_names_one_node_of_a_cluster_are_refused_not_partial() {
    let cluster = RedisCluster::start(3, 0);
    let home = agent_memory();
    let url = cluster.url();
    let mut sessions = Vec::new();
    for master in cluster.masters() {
        let session = session_on(&cluster, master, &sessions);
        let output = home.run(&["--store", &url, "add", &session, "hello"]);
        assert!(output.status.success(), "{}", stderr(&output));
        sessions.push(session);
    }
    let one_node = format!("redis://127.0.0.1:{}", cluster.node(0).port());
    let file = home.home().join("partial.redb");
    let file = file.to_str().unwrap();
    for args in [
        vec!["--store", one_node.as_str(), "sessions"],
        vec!["--store", one_node.as_str(), "doctor"],
        vec!["copy", "--from", one_node.as_str(), "--to", file],
    ] {
        let output = home.run(&args);
        assert!(!output.status.success(), "{args:?}: {}", stdout(&output));
        let message = stderr(&output);
        assert!(
            message.contains("one node of a Redis Cluster") && message.contains("redis+cluster://"),
            "{args:?}: {message}"
        );
        assert!(!stdout(&output).contains("copied"), "{args:?}");
        assert!(!stdout(&output).contains("0 problems"), "{args:?}");
    }
    // Nothing was copied, not even this node's share.
    let output = home.run(&["--store", file, "sessions"]);
    assert!(stdout(&output).trim().is_empty(), "{}", stdout(&output));
}
