//! Store faults: Redis missing, killed, frozen or full. Memory trouble must never take the agent
//! down: every call returns in bounded time with a typed reason, and service resumes when Redis
//! is back.

use std::time::{Duration, Instant};

use agent_memory::{Memory, Message, RedisTimeouts, StoreError, StoreSpec, WriteOutcome};
use agent_memory_tests::{RedisServer, expect_stored, free_port};
use redis::Commands;

/// Short timeouts so fault tests finish quickly; the bounds asserted below follow from them.
fn timeouts() -> RedisTimeouts {
    RedisTimeouts {
        connect: Duration::from_millis(300),
        response: Duration::from_millis(300),
        rebuild_after_timeouts: 2,
    }
}

fn memory_at(url: &str) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(url).unwrap())
        .redis_timeouts(timeouts())
        .build()
        .expect("building does not need Redis to be up")
}

/// The longest a call may take against a broken store: the policy's two attempts, each bounded
/// by twice the connect or response timeout, plus slack for a loaded machine.
const CALL_BOUND: Duration = Duration::from_secs(3);

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = call.await;
    (output, started.elapsed())
}

#[tokio::test]
async fn with_no_redis_running_reads_degrade_and_writes_fail_typed_and_fast() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let memory = memory_at(&url);

    let (context, took) = timed(memory.get_context("s")).await;
    let context = context.unwrap();
    assert!(context.messages.is_empty());
    assert!(
        matches!(context.degraded, Some(StoreError::Unavailable(_))),
        "{:?}",
        context.degraded
    );
    assert!(took < CALL_BOUND, "read took {took:?}");

    let (outcome, took) = timed(memory.add_message("s", Message::user("x"))).await;
    match outcome.unwrap() {
        WriteOutcome::Failed(error @ StoreError::Unavailable(_)) => {
            assert!(!error.may_have_applied());
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(took < CALL_BOUND, "write took {took:?}");
}

#[tokio::test]
async fn an_unroutable_redis_is_bounded_by_the_connect_timeout() {
    // 10.255.255.1 is a private address nothing answers: the connect attempt hangs until its
    // timeout instead of being refused.
    let memory = memory_at("redis://10.255.255.1:6379");
    let (context, took) = timed(memory.get_context("s")).await;
    assert!(matches!(
        context.unwrap().degraded,
        Some(StoreError::Unavailable(_))
    ));
    assert!(took < CALL_BOUND, "read took {took:?}");
}

#[tokio::test]
async fn redis_killed_mid_run_degrades_then_service_resumes_after_restart() {
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
    assert!(context.degraded.is_some());
    assert!(took < CALL_BOUND, "read took {took:?}");
    let (outcome, took) = timed(memory.add_message("s", Message::user("while down"))).await;
    assert!(matches!(outcome.unwrap(), WriteOutcome::Failed(_)));
    assert!(took < CALL_BOUND, "write took {took:?}");

    // The restarted server is empty (nothing persisted): a write works again on a fresh
    // connection, and the read sees exactly it.
    server.restart();
    let outcome = memory
        .add_message("s", Message::user("after"))
        .await
        .unwrap();
    assert!(outcome.is_stored(), "{outcome:?}");
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(context.degraded, None);
    assert_eq!(context.messages, vec![Message::user("after")]);
}

#[tokio::test]
async fn a_read_after_a_restart_recovers_without_the_agent_noticing() {
    let mut server = RedisServer::start();
    let memory = memory_at(&server.url());
    expect_stored(memory.add_message("s", Message::user("x")).await.unwrap());
    server.restart();
    // The old connection is dead; the policy's one retry of a read runs on a new one.
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(context.degraded, None);
    assert!(
        context.messages.is_empty(),
        "the restarted server kept nothing"
    );
}

#[tokio::test]
async fn a_frozen_redis_times_out_and_the_connection_is_rebuilt_after_it_thaws() {
    let server = RedisServer::start();
    let memory = memory_at(&server.url());
    expect_stored(memory.add_message("s", Message::user("x")).await.unwrap());

    server.pause();
    let (context, took) = timed(memory.get_context("s")).await;
    let degraded = context.unwrap().degraded;
    server.resume();
    assert_eq!(degraded, Some(StoreError::Timeout));
    assert!(took < CALL_BOUND, "read took {took:?}");

    server.pause();
    let (outcome, took) = timed(memory.add_message("s", Message::user("y"))).await;
    server.resume();
    let outcome = outcome.unwrap();
    match &outcome {
        WriteOutcome::Failed(error) => assert!(error.may_have_applied(), "{error:?}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(took < CALL_BOUND, "write took {took:?}");

    // Once thawed, calls succeed again (on a rebuilt connection after two timeouts in a row),
    // and the frozen write, which Redis ran once it woke, may be there: never twice.
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(context.degraded, None);
    let texts: Vec<_> = context
        .messages
        .iter()
        .map(|m| m.text().unwrap().to_string())
        .collect();
    assert!(texts == ["x"] || texts == ["x", "y"], "{texts:?}");
}

#[tokio::test]
async fn a_late_reply_is_never_handed_to_the_next_request() {
    let server = RedisServer::start();
    let memory = memory_at(&server.url());
    expect_stored(
        memory
            .add_message("a", Message::user("from a"))
            .await
            .unwrap(),
    );
    expect_stored(
        memory
            .add_message("b", Message::user("from b"))
            .await
            .unwrap(),
    );

    // DEBUG SLEEP on another connection stalls the server past the response timeout, so the
    // read of `a` times out; its reply arrives later, and must not answer the read of `b`.
    let sleeper = server.stall(0.5);
    std::thread::sleep(Duration::from_millis(50));
    let context = memory.get_context("a").await.unwrap();
    assert_eq!(context.degraded, Some(StoreError::Timeout));
    sleeper.join().unwrap();
    let context = memory.get_context("b").await.unwrap();
    assert_eq!(context.degraded, None);
    assert_eq!(context.messages, vec![Message::user("from b")]);
}

#[tokio::test]
async fn redis_out_of_memory_refuses_the_write_with_a_typed_error() {
    let server = RedisServer::start();
    let memory = memory_at(&server.url());
    expect_stored(
        memory
            .add_message("s", Message::user("fits"))
            .await
            .unwrap(),
    );
    let mut redis = server.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut redis)
        .unwrap();
    let outcome = memory
        .add_message("s", Message::user("does not fit"))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Failed(StoreError::OutOfMemory));
    // Reads still work, and the refused write left nothing behind.
    let context = memory.get_context("s").await.unwrap();
    assert_eq!(context.messages, vec![Message::user("fits")]);
    assert_eq!(redis.llen::<_, u32>("ai:memory:s").unwrap(), 1);
}

#[tokio::test]
async fn the_first_write_after_a_restart_is_reported_as_unknown_and_the_next_one_is_stored() {
    let mut server = RedisServer::start();
    let memory = memory_at(&server.url());
    expect_stored(memory.add_message("s", Message::user("x")).await.unwrap());
    server.restart();
    // The connection died with the old server; the write that discovers it may have been sent,
    // so it is reported as unknown and not repeated.
    match memory.add_message("s", Message::user("y")).await.unwrap() {
        WriteOutcome::Failed(error) => assert!(error.may_have_applied(), "{error:?}"),
        WriteOutcome::Stored(_) => panic!("a write on a dead connection cannot have been stored"),
    }
    expect_stored(memory.add_message("s", Message::user("z")).await.unwrap());
    let stored: Vec<String> = server.connection().lrange("ai:memory:s", 0, -1).unwrap();
    assert_eq!(stored, [r#"{"role": "user", "content": "z"}"#]);
}
