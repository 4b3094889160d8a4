//! `redis+cluster://` against real clusters on loopback: a master killed and failed over to its
//! replica, slots migrated with `redis-cli --cluster reshard` under load, and the addresses a
//! cluster can be given wrong. (The behaviour suite in `redis_behaviour/` runs on a cluster
//! and a TLS cluster too.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent_memory::telemetry;
use agent_memory::{
    Memory, Message, Policy, Settings, StoreError, StoreSpec, WriteOutcome, store::RedisOptions,
    store::WaitForReplicas,
};
use agent_memory_tests::{
    CircularClusterNode, PythonOriginal, RedisCluster, RedisServer, eventually_blocking,
    expect_stored, recorder, texts,
};
use redis::Commands;

fn key(session: &str) -> Vec<u8> {
    format!("ai:memory:{session}").into_bytes()
}

/// A window no test here fills: every message written stays, so the lists can be checked for
/// losses and duplicates.
fn keep_everything() -> Settings {
    Settings {
        max_messages: 10_000,
        // So that a full window still fits the host's read limit.
        max_message_bytes: 4096,
        ..Settings::default()
    }
}

fn memory(url: &str, options: RedisOptions, settings: Settings) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(url).unwrap())
        .redis_options(options)
        .settings(settings)
        .build()
        .unwrap()
}

/// What happened to each numbered write of one session.
#[derive(Default)]
struct Ledger {
    /// `(number, when it returned, outcome)`.
    writes: Vec<(u64, Instant, Result<(), StoreError>)>,
    /// Reads that came back degraded.
    degraded_reads: Vec<StoreError>,
    reads: u64,
}

/// One task per session, each writing `"<session> <n>"` for n = 1, 2, ... (and reading every
/// `read_every` writes) until `stop`.
fn start_writers(
    memory: &Memory,
    sessions: &[String],
    pause: Duration,
    read_every: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<(String, tokio::task::JoinHandle<Ledger>)> {
    sessions
        .iter()
        .map(|session| {
            let (memory, stop, session) = (memory.clone(), Arc::clone(stop), session.clone());
            let task = tokio::spawn({
                let session = session.clone();
                async move {
                    let mut ledger = Ledger::default();
                    let mut n = 0;
                    while !stop.load(Ordering::Acquire) {
                        n += 1;
                        let message = Message::user(format!("{session} {n}"));
                        let outcome = match memory.add_message(session.as_str(), message).await {
                            Ok(WriteOutcome::Stored(_)) => Ok(()),
                            Ok(WriteOutcome::Failed(error)) => Err(error),
                            Err(error) => panic!("{session}: {error}"),
                        };
                        ledger.writes.push((n, Instant::now(), outcome));
                        if read_every > 0 && n % read_every == 0 {
                            let context = memory.get_context(session.as_str()).await.unwrap();
                            ledger.reads += 1;
                            if let Some(error) = context.degraded {
                                ledger.degraded_reads.push(error);
                            }
                        }
                        tokio::time::sleep(pause).await;
                    }
                    ledger
                }
            });
            (session, task)
        })
        .collect()
}

/// The message numbers stored for `session`, in list order.
fn stored_numbers(cluster: &RedisCluster, session: &str) -> Vec<u64> {
    let entries: Vec<String> = cluster.connection().lrange(key(session), 0, -1).unwrap();
    entries
        .iter()
        .map(|entry| {
            let value: serde_json::Value = serde_json::from_str(entry).unwrap();
            let text = value["content"].as_str().unwrap();
            text.rsplit_once(' ').unwrap().1.parse().unwrap()
        })
        .collect()
}

/// Every acknowledged write is stored, once, in order; a write reported as not applied is not
/// stored; one whose outcome was unknown is stored at most once. Returns the failures by kind.
fn check_ledger(cluster: &RedisCluster, session: &str, ledger: &Ledger) -> BTreeMap<String, u32> {
    let stored = stored_numbers(cluster, session);
    assert!(
        stored.windows(2).all(|pair| pair[0] < pair[1]),
        "{session}: out of order or doubled: {stored:?}"
    );
    let mut failures = BTreeMap::new();
    for (n, _, outcome) in &ledger.writes {
        let present = stored.binary_search(n).is_ok();
        match outcome {
            Ok(()) => assert!(present, "{session}: acknowledged write {n} lost"),
            Err(error) => {
                if !error.may_have_applied() {
                    assert!(!present, "{session}: write {n} stored after {error}");
                }
                let kind = format!("{error:?}");
                let kind = kind
                    .split(|ch: char| !ch.is_alphanumeric())
                    .next()
                    .unwrap_or(&kind)
                    .to_string();
                *failures.entry(kind).or_insert(0) += 1;
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_to_its_replica_and_nothing_acknowledged_is_lost_or_doubled() {
    let mut cluster = RedisCluster::start(3, 1);
    let options = RedisOptions {
        connect: Duration::from_millis(300),
        response: Duration::from_millis(300),
        // A write reported stored is on the replica too: the failover cannot lose it.
        wait_for_replicas: Some(WaitForReplicas {
            replicas: 1,
            timeout: Duration::from_millis(300),
        }),
        ..RedisOptions::default()
    };
    let memory = memory(&cluster.url(), options, keep_everything());
    let sessions: Vec<String> = (0..24).map(|i| format!("failover-{i}")).collect();
    let victim = cluster.node_for_key(&key(&sessions[0]));
    let replica = cluster.replicas_of(victim)[0];
    let on_victim: Vec<bool> = sessions
        .iter()
        .map(|session| cluster.node_for_key(&key(session)) == victim)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(&memory, &sessions, Duration::from_millis(20), 0, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    cluster.node_mut(victim).kill();
    let killed = Instant::now();
    let promoted = tokio::task::block_in_place(|| {
        eventually_blocking(
            "failover: the replica promoted",
            Duration::from_secs(30),
            || cluster.role(replica) == "master",
        );
        let promoted = killed.elapsed();
        cluster.wait_until_stable();
        promoted
    });
    // Writes go on a while on the promoted replica (which has no replica of its own: those
    // writes are applied and reported not-replicated, truthfully).
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Release);

    // Failures on the killed master's slots, and on the others' (a cluster that lost a
    // master refuses every slot, CLUSTERDOWN, until the failover: cluster-require-full-coverage).
    let (mut failures, mut elsewhere): (BTreeMap<String, u32>, BTreeMap<String, u32>) =
        Default::default();
    let mut first_applied_after_kill: Vec<Duration> = Vec::new();
    let mut writes = 0;
    for ((session, task), on_victim) in writers.into_iter().zip(&on_victim) {
        let ledger = task.await.unwrap();
        writes += ledger.writes.len();
        let tally = if *on_victim {
            &mut failures
        } else {
            &mut elsewhere
        };
        for (kind, count) in check_ledger(&cluster, &session, &ledger) {
            *tally.entry(kind).or_insert(0) += count;
        }
        for (_, _, outcome) in &ledger.writes {
            if let Err(error) = outcome {
                assert!(
                    matches!(
                        error,
                        StoreError::Unavailable(_)
                            | StoreError::Timeout
                            | StoreError::OutcomeUnknown(_)
                            | StoreError::NotReplicated { .. }
                    ),
                    "{session}: an untyped failure: {error}"
                );
            }
        }
        if *on_victim {
            let first = ledger
                .writes
                .iter()
                .find(|(_, at, outcome)| {
                    *at > killed
                        && matches!(outcome, Ok(()) | Err(StoreError::NotReplicated { .. }))
                })
                .map(|(_, at, _)| at.duration_since(killed))
                .unwrap_or_else(|| {
                    let last: Vec<String> = ledger
                        .writes
                        .iter()
                        .rev()
                        .take(3)
                        .map(|(n, at, outcome)| {
                            format!("{n} at {:?}: {outcome:?}", at.duration_since(killed))
                        })
                        .collect();
                    panic!("{session}: no write applied after the failover; the last: {last:?}")
                });
            first_applied_after_kill.push(first);
        }
    }
    let recovered = first_applied_after_kill.iter().max().copied().unwrap();
    eprintln!(
        "cluster failover: {writes} writes on {} sessions ({} on the killed master's slots); \
         its replica was promoted {promoted:?} after the kill; every session of the killed \
         master applied writes again within {recovered:?} of the kill; failures on its slots: \
         {failures:?}; on the other masters' slots: {elsewhere:?}",
        sessions.len(),
        on_victim.iter().filter(|on| **on).count(),
    );
    assert!(
        failures.contains_key("Unavailable") || failures.contains_key("Timeout"),
        "the failover was not noticed: {failures:?}"
    );

    // The old master comes back as a replica of the promoted one; the Python original's
    // cluster client reads the same sessions.
    cluster.node_mut(victim).restart();
    tokio::task::block_in_place(|| cluster.wait_until_stable());
    assert!(!cluster.masters().contains(&victim));
    let python = PythonOriginal::new(&cluster.python_url());
    let ours = memory.get_context(sessions[0].as_str()).await.unwrap();
    assert_eq!(
        python.get(&sessions[0]).as_array().map(Vec::len),
        Some(ours.messages.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migration_under_load_fails_no_call_and_doubles_no_message() {
    recorder();
    let cluster = RedisCluster::start(3, 0);
    let masters = cluster.masters();
    let (source, target) = (masters[0], masters[1]);
    // redis-cli moves the source's lowest slots: find sessions that live there, and a few
    // that do not move.
    let slots_moved = 300;
    let first_slot = cluster.first_slot_of(source);
    let moving = first_slot..first_slot + slots_moved;
    let mut sessions = Vec::new();
    let mut staying = 0;
    let mut candidate = 0;
    while sessions.len() < 32 {
        let session = format!("reshard-{candidate}");
        candidate += 1;
        if moving.contains(&cluster.key_slot(&key(&session))) {
            sessions.push(session);
        } else if staying < 8 {
            staying += 1;
            sessions.push(session);
        }
    }
    let memory_default = memory(&cluster.url(), RedisOptions::default(), keep_everything());
    // Some sessions run the tool-safe policy: its writes are a script with an expectation.
    let memory_tool_safe = Memory::builder()
        .store(StoreSpec::parse(&cluster.url()).unwrap())
        .policy(Policy::tool_safe().unwrap())
        .settings(keep_everything())
        .build()
        .unwrap();
    let rejected_before = rejected_calls(cluster.node(source));
    let stop = Arc::new(AtomicBool::new(false));
    let (default_sessions, tool_safe_sessions) = sessions.split_at(24);
    let mut writers = start_writers(
        &memory_default,
        default_sessions,
        Duration::from_millis(5),
        3,
        &stop,
    );
    writers.extend(start_writers(
        &memory_tool_safe,
        tool_safe_sessions,
        Duration::from_millis(5),
        3,
        &stop,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The slots move there and back (each key migrates twice, once each way), again until a
    // request met a key mid-migration and followed an ASK (the window is milliseconds per
    // slot: a round or two is usually enough).
    let asked = || -> u64 {
        cluster
            .masters()
            .into_iter()
            .map(|master| command_calls(cluster.node(master), "asking"))
            .sum()
    };
    let migration = Instant::now();
    let mut rounds = 0;
    tokio::task::block_in_place(|| {
        while rounds < 5 && (rounds == 0 || asked() == 0) {
            rounds += 1;
            cluster
                .reshard(source, target, u32::from(slots_moved))
                .unwrap();
            cluster.wait_until_stable();
            cluster
                .reshard(target, source, u32::from(slots_moved))
                .unwrap();
            cluster.wait_until_stable();
        }
    });
    let migration = migration.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);

    let (mut writes, mut reads) = (0, 0);
    for (session, task) in writers {
        let ledger = task.await.unwrap();
        writes += ledger.writes.len();
        reads += ledger.reads;
        let failures = check_ledger(&cluster, &session, &ledger);
        assert!(failures.is_empty(), "{session}: failed writes {failures:?}");
        assert!(
            ledger.degraded_reads.is_empty(),
            "{session}: degraded reads {:?}",
            ledger.degraded_reads
        );
        // Every write acknowledged, so the list is exactly 1..=n.
        let stored = stored_numbers(&cluster, &session);
        assert_eq!(stored.len(), ledger.writes.len(), "{session}");
    }
    let redirected = rejected_calls(cluster.node(source)) - rejected_before;
    // ASK redirects were followed too: requests came to the importing node after ASKING.
    let asked = asked();
    eprintln!(
        "reshard: {slots_moved} slots there and back ({rounds} rounds) in {migration:?} under \
         {writes} writes and \
         {reads} reads on {} sessions: 0 failed, 0 doubled; the source redirected {redirected} \
         commands meanwhile, {asked} requests followed an ASK",
        sessions.len()
    );
    // The migration really met the load: the source answered ASK or MOVED, and ASK was
    // followed.
    assert!(redirected > 0, "no request was redirected");
    assert!(asked > 0, "no request followed an ASK");
    // And the operator sees them: ASK redirects followed, counted under the store.
    let store = memory_default.store().describe();
    assert!(
        recorder().counter(
            telemetry::STORE_REDIRECTS,
            &[("store", store.as_str()), ("kind", "ask")]
        ) > 0,
        "no ASK redirect counted"
    );
}

/// `calls` of a command on a node so far (INFO commandstats).
fn command_calls(server: &RedisServer, command: &str) -> u64 {
    server
        .info("commandstats")
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Commands a node refused so far (a cluster counts its MOVED and ASK replies here).
fn rejected_calls(server: &RedisServer) -> u64 {
    server
        .info("commandstats")
        .lines()
        .filter_map(|line| line.split_once("rejected_calls=").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_redis_address_naming_one_cluster_node_is_refused_with_the_fix() {
    let cluster = RedisCluster::start(3, 0);
    let single = memory(
        &cluster.node(0).url(),
        RedisOptions::default(),
        Settings::default(),
    );
    // Some session lives elsewhere: that node answers MOVED.
    let elsewhere = (0..)
        .map(|i| format!("elsewhere-{i}"))
        .find(|session| cluster.node_for_key(&key(session)) != 0)
        .unwrap();
    let outcome = single
        .add_message(elsewhere.as_str(), Message::user("x"))
        .await
        .unwrap();
    let WriteOutcome::Failed(StoreError::Rejected(reason)) = outcome else {
        panic!("expected a refusal, got {outcome:?}");
    };
    assert!(reason.contains("redis+cluster://"), "{reason}");
    // The cluster address stores it.
    let routed = memory(&cluster.url(), RedisOptions::default(), Settings::default());
    expect_stored(
        routed
            .add_message(elsewhere.as_str(), Message::user("x"))
            .await
            .unwrap(),
    );
    assert!(routed.store().describe().starts_with("redis cluster"));
}

#[tokio::test]
async fn a_cluster_that_redirects_in_circles_fails_typed_after_the_redirect_limit() {
    // Installed before the calls, so that they are counted.
    recorder();
    let node = CircularClusterNode::start();
    let memory = memory(&node.url(), RedisOptions::default(), Settings::default());
    let outcome = memory
        .add_message("circle", Message::user("x"))
        .await
        .unwrap();
    let WriteOutcome::Failed(StoreError::Unavailable(reason)) = outcome else {
        panic!("expected unavailable, got {outcome:?}");
    };
    assert!(
        reason.contains(&format!(
            "redirected {} times and then again",
            agent_memory::store::MAX_REDIRECTS
        )),
        "{reason}"
    );
    let context = memory.get_context("circle").await.unwrap();
    assert!(
        matches!(context.degraded, Some(StoreError::Unavailable(ref reason)) if reason.contains("redirected")),
        "{:?}",
        context.degraded
    );
    // The write's transaction was redirected as a whole (every queued command answered MOVED,
    // EXEC aborted), MAX_REDIRECTS + 1 times, and so was the read.
    assert!(node.redirects() >= 2 * u64::from(agent_memory::store::MAX_REDIRECTS + 1));
    // Each redirect followed is counted (the last of each request is refused, not followed).
    let store = memory.store().describe();
    assert_eq!(
        recorder().counter(
            telemetry::STORE_REDIRECTS,
            &[("store", store.as_str()), ("kind", "moved")]
        ),
        2 * u64::from(agent_memory::store::MAX_REDIRECTS)
    );
}

#[tokio::test]
async fn seeds_that_are_down_are_skipped_and_with_none_reachable_calls_fail_fast_and_typed() {
    let cluster = RedisCluster::start(3, 0);
    let dead = agent_memory_tests::free_port();
    let options = RedisOptions {
        connect: Duration::from_millis(300),
        response: Duration::from_millis(300),
        ..RedisOptions::default()
    };
    let url = format!(
        "redis+cluster://127.0.0.1:{dead},127.0.0.1:{}",
        cluster.node(1).port()
    );
    let memory_ok = memory(&url, options.clone(), Settings::default());
    expect_stored(
        memory_ok
            .add_message("seeds", Message::user("x"))
            .await
            .unwrap(),
    );
    assert_eq!(texts(&memory_ok.get_context("seeds").await.unwrap()), ["x"]);

    let nowhere = memory(
        &format!("redis+cluster://127.0.0.1:{dead}"),
        options,
        Settings::default(),
    );
    let started = Instant::now();
    let context = nowhere.get_context("seeds").await.unwrap();
    assert!(
        matches!(context.degraded, Some(StoreError::Unavailable(ref reason)) if reason.contains("slot map")),
        "{:?}",
        context.degraded
    );
    assert!(matches!(
        nowhere
            .add_message("seeds", Message::user("y"))
            .await
            .unwrap(),
        WriteOutcome::Failed(StoreError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(2));

    // A plain server given as a cluster seed: refused as not a cluster, nothing written.
    let plain = RedisServer::start();
    let not_a_cluster = memory(
        &format!("redis+cluster://127.0.0.1:{}", plain.port()),
        RedisOptions::default(),
        Settings::default(),
    );
    let outcome = not_a_cluster
        .add_message("seeds", Message::user("x"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::Unavailable(ref reason)) if reason.contains("cluster")),
        "{outcome:?}"
    );
    let keys: Vec<String> = plain.connection().keys("*").unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn a_cluster_with_a_password_is_served_and_a_wrong_one_is_refused_without_echoing_it() {
    let cluster = RedisCluster::start_with_password(3, "s3cret-pw");
    let seeds: Vec<String> = (0..cluster.len())
        .map(|index| format!("127.0.0.1:{}", cluster.node(index).port()))
        .collect();
    let url = format!("redis+cluster://:s3cret-pw@{}", seeds.join(","));
    let memory_ok = memory(&url, RedisOptions::default(), Settings::default());
    assert!(!memory_ok.store().describe().contains("s3cret"));
    for i in 0..10 {
        let session = format!("auth-{i}");
        expect_stored(
            memory_ok
                .add_message(session.as_str(), Message::user("x"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(memory_ok.sessions().await.unwrap().len(), 10);

    let wrong = memory(
        &format!("redis+cluster://:wrong-pw@{}", seeds.join(",")),
        RedisOptions::default(),
        Settings::default(),
    );
    let outcome = wrong
        .add_message("auth-0", Message::user("x"))
        .await
        .unwrap();
    let WriteOutcome::Failed(StoreError::Unavailable(reason)) = outcome else {
        panic!("expected unavailable, got {outcome:?}");
    };
    assert!(reason.contains("authentication"), "{reason}");
    assert!(!reason.contains("wrong-pw"), "{reason}");
}
