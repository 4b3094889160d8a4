//! 1,000 concurrent callers through a 30 s outage (Redis frozen by SIGSTOP): the host makes a
//! bounded number of connection attempts (counted by Redis itself once it thaws), stays under
//! one core of CPU, and answers every call within its deadline. (Its own test binary, so the
//! process's CPU time is this test's alone.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent_memory::{Memory, Message, StoreSpec, store::RedisOptions};
use agent_memory_tests::RedisServer;

const CALLERS: usize = 1000;
const OUTAGE: Duration = Duration::from_secs(30);
/// Each caller calls once per period: an agent turn is seconds apart.
const PERIOD: Duration = Duration::from_secs(1);
const DEADLINE: Duration = Duration::from_millis(600);
const SLACK: Duration = Duration::from_millis(100);

/// CPU time this process has used (user + system), from /proc (ticks of 1/100 s on Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_through_a_thirty_second_outage_stay_bounded() {
    let server = RedisServer::start();
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .redis_options(RedisOptions {
            connect: Duration::from_millis(300),
            response: Duration::from_millis(300),
            rebuild_after_timeouts: 2,
            ..RedisOptions::default()
        })
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let slowest_ms = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let (memory, stop, slowest_ms, calls, failures) = (
            memory.clone(),
            Arc::clone(&stop),
            Arc::clone(&slowest_ms),
            Arc::clone(&calls),
            Arc::clone(&failures),
        );
        callers.spawn(async move {
            let session = format!("caller-{caller}");
            // Spread the callers over the period.
            tokio::time::sleep(PERIOD.mul_f64(caller as f64 / CALLERS as f64)).await;
            let mut ticker = tokio::time::interval(PERIOD);
            let mut turn = 0u64;
            while !stop.load(Ordering::Acquire) {
                ticker.tick().await;
                let started = Instant::now();
                let ok = if turn.is_multiple_of(2) {
                    let context = memory.get_context(session.as_str()).await.unwrap();
                    context.degraded.is_none()
                } else {
                    let outcome = memory
                        .add_message(session.as_str(), Message::user(format!("turn {turn}")))
                        .await
                        .unwrap();
                    outcome.is_stored()
                };
                let took = started.elapsed().as_millis() as u64;
                slowest_ms.fetch_max(took, Ordering::AcqRel);
                calls.fetch_add(1, Ordering::AcqRel);
                if !ok {
                    failures.fetch_add(1, Ordering::AcqRel);
                }
                turn += 1;
            }
        });
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        failures.load(Ordering::Acquire),
        0,
        "calls failed before the outage"
    );
    let connections_before = server.info_number("stats", "total_connections_received");
    let (calls_before, cpu_before) = (calls.load(Ordering::Acquire), cpu_time());
    slowest_ms.store(0, Ordering::Release);

    server.pause();
    let outage_started = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    let cpu_during = cpu_time() - cpu_before;
    let outage = outage_started.elapsed();
    let calls_during = calls.load(Ordering::Acquire) - calls_before;
    let slowest_during = Duration::from_millis(slowest_ms.load(Ordering::Acquire));
    server.resume();

    // Once thawed, Redis accepts the connections its backlog held and counts them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failures_before_recovery = failures.load(Ordering::Acquire);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failures_after_recovery = failures.load(Ordering::Acquire) - failures_before_recovery;
    stop.store(true, Ordering::Release);
    while callers.join_next().await.is_some() {}
    // Our own INFO connection counts once.
    let attempts =
        server.info_number("stats", "total_connections_received") - connections_before - 1;

    let cores = cpu_during.as_secs_f64() / outage.as_secs_f64();
    println!(
        "{CALLERS} callers, {calls_during} calls in a {outage:?} outage: {attempts} connection \
         attempts, {cores:.2} cores of CPU, slowest call {slowest_during:?}"
    );
    assert!(
        slowest_during <= DEADLINE + SLACK,
        "a call took {slowest_during:?} during the outage"
    );
    // The backoff caps attempts at about two a second after a short ramp.
    assert!(
        attempts <= 80,
        "{attempts} connection attempts in {outage:?}"
    );
    assert!(cores < 1.0, "{cores:.2} cores during the outage");
    assert!(
        calls_during >= (CALLERS as u64) * 20,
        "callers stalled: {calls_during} calls"
    );
    assert_eq!(
        failures_after_recovery, 0,
        "calls still failing after recovery"
    );
}
