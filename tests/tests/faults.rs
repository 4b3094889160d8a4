//! The fault matrix, one test per row: Redis missing, killed, frozen three ways, full, closing
//! idle connections, going silent, losing a connection right after `EXEC`, answering garbage.
//! Memory trouble must never take the agent down: every call returns within its deadline with
//! a typed reason, nothing is applied twice, no reply reaches the wrong call, and service
//! resumes when Redis is back. The bounds asserted are the ones the README's fault model
//! promises; each test prints what it measured.

use std::time::{Duration, Instant};

use agent_memory::{
    Context, Memory, Message, StoreError, StoreSpec, WriteOutcome, store::KeyKind,
    store::RedisOptions,
};
use agent_memory_tests::{
    FaultProxy, ProxyMode, RedisServer, SilentServer, expect_stored, free_port, texts,
};
use redis::Commands;

const CONNECT: Duration = Duration::from_millis(300);
const RESPONSE: Duration = Duration::from_millis(300);

/// A call's deadline against a broken Redis: at most one connect and one request (a read is
/// retried only after its connection broke, which is immediate, not after a timeout).
const DEADLINE: Duration = Duration::from_millis(600);

/// What the fault model allows past the deadline: scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(100);

fn options() -> RedisOptions {
    RedisOptions {
        connect: CONNECT,
        response: RESPONSE,
        rebuild_after_timeouts: 2,
        ..RedisOptions::default()
    }
}

fn memory_at(url: &str) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(url).unwrap())
        .redis_options(options())
        .build()
        .expect("building does not need Redis to be up")
}

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = call.await;
    (output, started.elapsed())
}

fn assert_within_deadline(what: &str, took: Duration) {
    assert!(
        took <= DEADLINE + SLACK,
        "{what} took {took:?}, past its deadline of {DEADLINE:?} + {SLACK:?}"
    );
}

/// Call until a read and a write both succeed; how long that took.
async fn time_to_recover(memory: &Memory, session: &str) -> Duration {
    let started = Instant::now();
    loop {
        let read_ok = memory
            .get_context(session)
            .await
            .is_ok_and(|context| context.degraded.is_none());
        if read_ok
            && memory
                .add_message(session, Message::user("probe"))
                .await
                .is_ok_and(|outcome| outcome.is_stored())
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn redis_not_running_at_start_degrades_typed_and_serves_within_a_second_of_starting() {
    let port = free_port();
    let memory = memory_at(&format!("redis://127.0.0.1:{port}"));

    let (context, took) = timed(memory.get_context("s")).await;
    let context = context.unwrap();
    assert!(context.messages.is_empty());
    assert!(
        matches!(context.degraded, Some(StoreError::Unavailable(_))),
        "{:?}",
        context.degraded
    );
    assert_within_deadline("read", took);
    let (outcome, took) = timed(memory.add_message("s", Message::user("x"))).await;
    match outcome.unwrap() {
        WriteOutcome::Failed(error @ StoreError::Unavailable(_)) => {
            assert!(!error.may_have_applied());
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_within_deadline("write", took);

    let _server = RedisServer::start_on_port(port);
    let recovery = time_to_recover(&memory, "s").await;
    println!("recovered {recovery:?} after Redis started");
    assert!(recovery <= Duration::from_secs(1), "{recovery:?}");
}

#[tokio::test]
async fn a_redis_that_hangs_while_connecting_is_bounded_by_the_connect_timeout() {
    let silent = SilentServer::start();
    let memory = memory_at(&silent.url());
    let (context, took) = timed(memory.get_context("s")).await;
    assert!(matches!(
        context.unwrap().degraded,
        Some(StoreError::Unavailable(_))
    ));
    assert!(took >= CONNECT, "it did wait for the handshake: {took:?}");
    assert_within_deadline("read", took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_to_a_hanging_redis_share_one_connect_and_degrade_promptly() {
    let silent = SilentServer::start();
    let memory = memory_at(&silent.url());
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let memory = memory.clone();
        calls.spawn(async move { timed(memory.get_context(format!("s{i}"))).await });
    }
    let mut slowest = Duration::ZERO;
    while let Some(done) = calls.join_next().await {
        let (context, took) = done.unwrap();
        // A value, never a policy timeout: the calls did not queue behind each other's
        // connect attempts.
        let context = context.expect("a degraded read, not an error");
        assert!(
            matches!(context.degraded, Some(StoreError::Unavailable(_))),
            "{:?}",
            context.degraded
        );
        assert_within_deadline("read", took);
        slowest = slowest.max(took);
    }
    println!(
        "200 concurrent reads of a hanging Redis: slowest {slowest:?}, {} connect attempts",
        silent.accepted()
    );
    assert_eq!(silent.accepted(), 1, "one attempt, shared by all");
}

#[tokio::test]
async fn redis_killed_and_restarted_on_its_port_serves_again_within_a_second() {
    let mut server = RedisServer::start();
    let memory = memory_at(&server.url());
    expect_stored(
        memory
            .add_message("s", Message::user("before"))
            .await
            .unwrap(),
    );

    server.kill();
    let (context, took) = timed(memory.get_context("s")).await;
    let context = context.unwrap();
    assert!(context.messages.is_empty());
    assert!(
        matches!(context.degraded, Some(StoreError::Unavailable(_))),
        "the dead connection is noticed before sending: {:?}",
        context.degraded
    );
    assert_within_deadline("read", took);
    let (outcome, took) = timed(memory.add_message("s", Message::user("while down"))).await;
    match outcome.unwrap() {
        WriteOutcome::Failed(error) => assert!(!error.may_have_applied(), "{error:?}"),
        other => panic!("a write to a dead Redis cannot be stored: {other:?}"),
    }
    assert_within_deadline("write", took);

    server.restart();
    let recovery = time_to_recover(&memory, "s").await;
    println!("recovered {recovery:?} after the restart");
    assert!(recovery <= Duration::from_secs(1), "{recovery:?}");
    // The restarted server kept nothing (no persistence); the write that was refused while it
    // was down is not there either.
    let stored: Vec<String> = server.connection().lrange("ai:memory:s", 0, -1).unwrap();
    assert!(
        stored.iter().all(|entry| entry.contains("probe")),
        "{stored:?}"
    );
}

/// A Redis behind a [`FaultProxy`] (passing everything for now), and a memory reaching it
/// through the proxy that has stored "first" in session `s`.
async fn behind_a_proxy() -> (RedisServer, FaultProxy, Memory) {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let memory = memory_at(&proxy.url());
    expect_stored(
        memory
            .add_message("s", Message::user("first"))
            .await
            .unwrap(),
    );
    (server, proxy, memory)
}

/// The three ways to freeze a running server.
#[derive(Debug, Clone, Copy)]
enum Freeze {
    Sigstop,
    ClientPause,
    DebugSleep,
}

/// Distinct payloads per session, concurrent reads and writes during a freeze, then checks
/// that every call kept its deadline and that after the thaw every session holds and returns
/// only its own payloads: a late reply never answers another call.
async fn freeze_and_thaw(freeze: Freeze) {
    const SESSIONS: usize = 16;
    const FROZEN: Duration = Duration::from_millis(1500);
    let server = RedisServer::start();
    let memory = memory_at(&server.url());
    let session = |i: usize| format!("s{i}");
    let payload = |i: usize, n: &str| format!("session {i} payload {n}");
    for i in 0..SESSIONS {
        expect_stored(
            memory
                .add_message(session(i), Message::user(payload(i, "before")))
                .await
                .unwrap(),
        );
    }

    let thaw = match freeze {
        Freeze::Sigstop => {
            server.pause();
            None
        }
        Freeze::ClientPause => {
            server.client_pause(FROZEN.as_millis() as u64);
            None
        }
        Freeze::DebugSleep => Some(server.stall(FROZEN.as_secs_f64())),
    };
    let frozen_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..SESSIONS {
        let memory = memory.clone();
        calls.spawn(async move {
            let (read, read_took) = timed(memory.get_context(session(i))).await;
            let (write, write_took) =
                timed(memory.add_message(session(i), Message::user(payload(i, "during")))).await;
            (i, read.unwrap(), read_took, write.unwrap(), write_took)
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(result) = calls.join_next().await {
        let (i, read, read_took, write, write_took) = result.unwrap();
        assert_within_deadline(&format!("{freeze:?} read of s{i}"), read_took);
        assert_within_deadline(&format!("{freeze:?} write of s{i}"), write_took);
        slowest = slowest.max(read_took).max(write_took);
        match &read.degraded {
            Some(StoreError::Timeout | StoreError::Unavailable(_)) => {}
            None => assert!(
                read.messages
                    .iter()
                    .all(|m| m.text().unwrap().starts_with(&format!("session {i} "))),
                "{freeze:?}: s{i} read another session's data: {read:?}"
            ),
            other => panic!("{freeze:?}: unexpected {other:?}"),
        }
        if let WriteOutcome::Failed(error) = &write {
            assert!(
                matches!(error, StoreError::Timeout | StoreError::Unavailable(_)),
                "{freeze:?}: {error:?}"
            );
        }
    }
    // Thaw: the freeze ends FROZEN after it began, however it was made.
    tokio::time::sleep(FROZEN.saturating_sub(frozen_at.elapsed())).await;
    if let Freeze::Sigstop = freeze {
        server.resume();
    }
    if let Some(thaw) = thaw {
        tokio::task::spawn_blocking(move || thaw.join().unwrap())
            .await
            .unwrap();
    }
    let recovery = time_to_recover(&memory, "probe").await;
    println!(
        "{freeze:?}: slowest call during the freeze {slowest:?}; recovered {recovery:?} after the thaw"
    );

    // After the thaw: every session holds only its own payloads (the writes sent during the
    // freeze may have run when Redis woke: once at most), and reads, all at once, return them.
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..SESSIONS {
        let memory = memory.clone();
        reads.spawn(async move { (i, memory.get_context(session(i)).await.unwrap()) });
    }
    while let Some(result) = reads.join_next().await {
        let (i, context): (usize, Context) = result.unwrap();
        assert_eq!(context.degraded, None);
        let texts = texts(&context);
        let during = payload(i, "during");
        assert!(
            texts == [payload(i, "before")] || texts == [payload(i, "before"), during],
            "{freeze:?}: s{i} holds {texts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_frozen_by_sigstop_keeps_every_call_within_its_deadline_and_replies_apart() {
    freeze_and_thaw(Freeze::Sigstop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_paused_by_client_pause_keeps_every_call_within_its_deadline_and_replies_apart() {
    freeze_and_thaw(Freeze::ClientPause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stalled_by_debug_sleep_keeps_every_call_within_its_deadline_and_replies_apart() {
    freeze_and_thaw(Freeze::DebugSleep).await;
}

#[tokio::test]
async fn a_connection_lost_after_exec_was_sent_is_an_unknown_outcome_applied_once() {
    let (server, proxy, memory) = behind_a_proxy().await;

    proxy.set_mode(ProxyMode::DropAfterExec);
    let (outcome, took) = timed(memory.add_message("s", Message::user("second"))).await;
    proxy.set_mode(ProxyMode::Forward);
    match outcome.unwrap() {
        WriteOutcome::Failed(error @ StoreError::OutcomeUnknown(_)) => {
            assert!(error.may_have_applied());
        }
        other => panic!("a write whose reply was lost cannot be reported stored: {other:?}"),
    }
    assert_within_deadline("write", took);
    // Redis ran it once; the policy did not retry it.
    let stored: Vec<String> = server.connection().lrange("ai:memory:s", 0, -1).unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    expect_stored(
        memory
            .add_message("s", Message::user("third"))
            .await
            .unwrap(),
    );
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(texts(&context), ["first", "second", "third"]);
}

#[tokio::test]
async fn a_connection_lost_before_exec_is_an_unknown_outcome_and_nothing_applied() {
    let (server, proxy, memory) = behind_a_proxy().await;

    proxy.set_mode(ProxyMode::DropBeforeExec);
    let outcome = memory
        .add_message("s", Message::user("lost"))
        .await
        .unwrap();
    proxy.set_mode(ProxyMode::Forward);
    assert!(
        matches!(outcome, WriteOutcome::Failed(StoreError::OutcomeUnknown(_))),
        "{outcome:?}"
    );
    let stored: Vec<String> = server.connection().lrange("ai:memory:s", 0, -1).unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
}

#[tokio::test]
async fn replies_that_are_not_resp_are_unknown_outcomes_and_service_resumes() {
    let (_server, proxy, memory) = behind_a_proxy().await;

    proxy.set_mode(ProxyMode::Garbage);
    let (outcome, took) = timed(memory.add_message("s", Message::user("x"))).await;
    assert!(
        matches!(
            outcome.unwrap(),
            WriteOutcome::Failed(StoreError::OutcomeUnknown(_) | StoreError::Timeout)
        ),
        "a garbled reply says nothing about whether the write applied"
    );
    assert_within_deadline("write", took);
    let (context, took) = timed(memory.get_context("s")).await;
    assert!(context.unwrap().degraded.is_some());
    assert_within_deadline("read", took);

    proxy.set_mode(ProxyMode::Forward);
    let recovery = time_to_recover(&memory, "s").await;
    println!("recovered {recovery:?} after the garbage stopped");
    assert!(recovery <= Duration::from_secs(1), "{recovery:?}");
}

#[tokio::test]
async fn redis_out_of_memory_refuses_writes_typed_keeps_history_and_still_lets_operators_work() {
    let server = RedisServer::start();
    let memory = memory_at(&server.url());
    expect_stored(
        memory
            .add_messages("s", [Message::user("fits"), Message::assistant("too")])
            .await
            .unwrap(),
    );
    server.config_set("maxmemory", "1");
    let outcome = memory
        .add_message("s", Message::user("does not fit"))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Failed(StoreError::OutOfMemory));
    // Reads and every inspection still work (none needs MULTI, which Redis refuses when full)…
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(texts(&context), ["fits", "too"]);
    let store = memory.store();
    assert_eq!(memory.sessions().await.unwrap(), [b"s".to_vec()]);
    assert_eq!(store.kind("ai:memory:s").await.unwrap(), KeyKind::List(2));
    assert!(store.ttl("ai:memory:s").await.is_ok());
    // …and deleting, which frees memory, works and says how much it deleted.
    let cleared = expect_stored(memory.clear("s").await.unwrap());
    assert_eq!(cleared.trimmed, 2);
    assert!(
        !server
            .connection()
            .exists::<_, bool>("ai:memory:s")
            .unwrap()
    );
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced_before_the_next_write() {
    let server = RedisServer::start();
    server.config_set("timeout", "1");
    let memory = memory_at(&server.url());
    expect_stored(memory.add_message("s", Message::user("one")).await.unwrap());
    // Redis closes idle clients after 1 s (its check runs about every 100 ms).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let outcome = memory.add_message("s", Message::user("two")).await.unwrap();
    assert!(
        outcome.is_stored(),
        "the closed connection is noticed before sending, so this is not an unknown outcome: \
         {outcome:?}"
    );
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(texts(&context), ["one", "two"]);
}

#[tokio::test]
async fn a_half_open_connection_is_replaced_after_a_few_timeouts() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let memory = memory_at(&proxy.url());
    expect_stored(memory.add_message("s", Message::user("x")).await.unwrap());

    // The peer goes silent without closing; connections made from now on work.
    proxy.silence_existing();
    let mut timeouts = 0;
    let started = Instant::now();
    loop {
        let (context, took) = timed(memory.get_context("s")).await;
        assert_within_deadline("read", took);
        match context.unwrap().degraded {
            Some(StoreError::Timeout) => timeouts += 1,
            None => break,
            other => panic!("{other:?}"),
        }
        assert!(timeouts <= 2, "still timing out after {timeouts} timeouts");
    }
    println!(
        "replaced after {timeouts} timeouts, {:?}; {} connections made",
        started.elapsed(),
        proxy.accepted()
    );
    assert_eq!(timeouts, 2, "rebuild_after_timeouts is 2");
    assert_eq!(proxy.accepted(), 2);
}
