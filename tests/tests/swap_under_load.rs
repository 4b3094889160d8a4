//! Hot swapping under load: 100 swaps between the default and the tool-safe policy while
//! concurrent tasks write and read for 10 s, a second tenant with its own policy and settings
//! sharing the store connection, and a hostile component offered mid-run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent_memory::{LoadError, Memory, Message, Policy, Settings, Store, StoreSpec, WriteOutcome};
use agent_memory_tests::{HOSTILE_POLICY_WASM, RedisServer, texts};

const SWAPS: usize = 100;
const RUN: Duration = Duration::from_secs(10);
const TASKS_PER_TENANT: usize = 8;
const WINDOW: u32 = 20;

/// What the load saw.
#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    failures: AtomicU64,
}

/// Write numbered messages to one session and check, after every write, that the history is
/// exactly the newest ones, in order. Every problem is counted and described.
async fn converse(
    memory: Memory,
    session: String,
    until: Instant,
    tally: Arc<Tally>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut written = 0u32;
    while Instant::now() < until {
        let text = format!("{session}-{written}");
        // Alternate the two ways to write, so both run across swaps.
        let outcome = if written.is_multiple_of(2) {
            memory
                .add_message(session.as_str(), Message::user(text.as_str()))
                .await
                .map(|o| (o, None))
        } else {
            memory
                .add_and_get_context(session.as_str(), [Message::user(text.as_str())])
                .await
                .map(|turn| (turn.outcome, Some(turn.context)))
        };
        tally.calls.fetch_add(1, Ordering::Relaxed);
        let (outcome, turn_context) = match outcome {
            Ok(done) => done,
            Err(error) => {
                tally.failures.fetch_add(1, Ordering::Relaxed);
                problems.push(format!("write {text}: {error}"));
                continue;
            }
        };
        if !matches!(outcome, WriteOutcome::Stored(_)) {
            tally.failures.fetch_add(1, Ordering::Relaxed);
            problems.push(format!("write {text}: {outcome:?}"));
            continue;
        }
        written += 1;
        let context = match turn_context {
            Some(context) => context,
            None => {
                tally.calls.fetch_add(1, Ordering::Relaxed);
                match memory.get_context(session.as_str()).await {
                    Ok(context) => context,
                    Err(error) => {
                        tally.failures.fetch_add(1, Ordering::Relaxed);
                        problems.push(format!("read after {text}: {error}"));
                        continue;
                    }
                }
            }
        };
        let first = written.saturating_sub(WINDOW);
        let expected: Vec<String> = (first..written).map(|i| format!("{session}-{i}")).collect();
        if context.degraded.is_some() || texts(&context) != expected {
            tally.failures.fetch_add(1, Ordering::Relaxed);
            problems.push(format!(
                "history after {text}: {:?} (degraded: {:?})",
                texts(&context),
                context.degraded
            ));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_swaps_under_load_fail_no_call_and_refuse_a_hostile_component() {
    let server = RedisServer::start();
    // One store connection, shared by both tenants.
    let store = Store::open(
        &StoreSpec::parse(&server.url()).unwrap(),
        Default::default(),
    )
    .unwrap();
    let settings = Settings {
        max_messages: WINDOW,
        ..Settings::default()
    };
    let default = Policy::default_policy().unwrap();
    let tool_safe = Policy::tool_safe().unwrap();
    let swapped = Memory::builder()
        .store_handle(store.clone())
        .settings(settings.clone())
        .build()
        .unwrap();
    // A second tenant in the same process: its own policy, settings and prefix.
    let steady = Memory::builder()
        .store_handle(store)
        .policy(tool_safe.clone())
        .settings(Settings {
            key_prefix: "tenant-b:".to_string(),
            extra: vec![("max-tokens".to_string(), "100000".to_string())],
            ..settings
        })
        .build()
        .unwrap();

    let until = Instant::now() + RUN;
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for (tenant, memory) in [("a", &swapped), ("b", &steady)] {
        for task in 0..TASKS_PER_TENANT {
            tasks.push(tokio::spawn(converse(
                memory.clone(),
                format!("{tenant}{task}"),
                until,
                Arc::clone(&tally),
            )));
        }
    }

    let hostile = Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap();
    let pause = RUN / (SWAPS as u32 + 1);
    let mut swap_times = Vec::new();
    let mut digests_served = std::collections::BTreeSet::new();
    for swap in 0..SWAPS {
        tokio::time::sleep(pause).await;
        if swap == SWAPS / 2 {
            let serving = swapped.policy().digest().to_string();
            let refused = swapped.replace_policy(hostile.clone()).await;
            assert!(
                matches!(refused, Err(LoadError::SelfCheck(_))),
                "{refused:?}"
            );
            assert_eq!(swapped.policy().digest(), serving);
        }
        let next = if swap % 2 == 0 { &tool_safe } else { &default };
        let started = Instant::now();
        swapped.replace_policy(next.clone()).await.unwrap();
        swap_times.push(started.elapsed());
        assert_eq!(swapped.policy().digest(), next.digest());
        digests_served.insert(next.digest().to_string());
    }
    let mut problems = Vec::new();
    for task in tasks {
        problems.extend(task.await.unwrap());
    }
    swap_times.sort();
    let calls = tally.calls.load(Ordering::Relaxed);
    eprintln!(
        "{SWAPS} swaps in {RUN:?}: {calls} calls by {} tasks, {} failed; swap (checks + publish) p50 {:?}, max {:?}",
        2 * TASKS_PER_TENANT,
        tally.failures.load(Ordering::Relaxed),
        swap_times[swap_times.len() / 2],
        swap_times[swap_times.len() - 1],
    );
    assert!(
        problems.is_empty(),
        "{} problems, first: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert_eq!(tally.failures.load(Ordering::Relaxed), 0);
    assert!(
        calls > 1000,
        "only {calls} calls ran: the load did not overlap the swaps"
    );
    assert_eq!(digests_served.len(), 2);
}
