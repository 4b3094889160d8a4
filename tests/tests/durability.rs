//! Writes that wait for replicas (Redis `WAIT`): with the option on, a write is only reported
//! stored once the replicas have it, and a write they do not confirm in time says so.

use std::time::Duration;

use agent_memory::{
    Memory, Message, StoreError, StoreSpec, WriteOutcome, store::RedisOptions,
    store::WaitForReplicas,
};
use agent_memory_tests::{RedisServer, expect_stored};
use redis::Commands;

fn waiting_for(server: &RedisServer, replicas: u32) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .redis_options(RedisOptions {
            wait_for_replicas: Some(WaitForReplicas {
                replicas,
                timeout: Duration::from_millis(300),
            }),
            ..RedisOptions::default()
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_write_is_stored_only_once_the_replica_has_it_and_says_so_when_it_does_not() {
    let primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(&primary);
    let memory = waiting_for(&primary, 1);

    expect_stored(memory.add_message("s", Message::user("one")).await.unwrap());
    // Acknowledged means on the replica already, not eventually.
    let on_replica: Vec<String> = replica.connection().lrange("ai:memory:s", 0, -1).unwrap();
    assert_eq!(on_replica.len(), 1);

    replica.pause();
    let outcome = memory.add_message("s", Message::user("two")).await.unwrap();
    replica.resume();
    match outcome {
        WriteOutcome::Failed(
            error @ StoreError::NotReplicated {
                wanted: 1,
                acknowledged: 0,
            },
        ) => assert!(error.may_have_applied(), "it is on the primary"),
        other => panic!("expected not-replicated, got {other:?}"),
    }
    let on_primary: Vec<String> = primary.connection().lrange("ai:memory:s", 0, -1).unwrap();
    assert_eq!(on_primary.len(), 2, "applied on the primary");

    expect_stored(
        memory
            .add_message("s", Message::user("three"))
            .await
            .unwrap(),
    );
    let asking_too_much = waiting_for(&primary, 2);
    let outcome = asking_too_much
        .add_message("s", Message::user("four"))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Failed(StoreError::NotReplicated {
            wanted: 2,
            acknowledged: 1
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_confirming_holds_up_no_other_call() {
    let primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(&primary);
    let memory = waiting_for(&primary, 1);
    expect_stored(
        memory
            .add_message("reader", Message::user("x"))
            .await
            .unwrap(),
    );
    replica.pause();
    // Sixteen writers at once, each WAIT running out its 300 ms: on one shared connection they
    // would queue behind each other (and every read behind them) past the 500 ms response
    // timeout. Each runs on a connection of its own, so each is reported not-replicated, and
    // reads go on meanwhile.
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let memory = memory.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..3 {
                    let message = Message::user(format!("{writer}-{i}"));
                    let session = format!("writer-{writer}");
                    outcomes.push(memory.add_message(session.as_str(), message).await.unwrap());
                }
                outcomes
            })
        })
        .collect();
    let mut reads = 0;
    while !writers.iter().all(tokio::task::JoinHandle::is_finished) {
        let context = memory.get_context("reader").await.unwrap();
        assert_eq!(context.degraded, None, "a read held up behind WAIT");
        reads += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    replica.resume();
    for writer in writers {
        for outcome in writer.await.unwrap() {
            assert_eq!(
                outcome,
                WriteOutcome::Failed(StoreError::NotReplicated {
                    wanted: 1,
                    acknowledged: 0
                })
            );
        }
    }
    assert!(reads > 10, "only {reads} reads while the writers waited");
    let written: u32 = (0..16)
        .map(|writer| {
            primary
                .connection()
                .llen::<_, u32>(format!("ai:memory:writer-{writer}"))
                .unwrap()
        })
        .sum();
    assert_eq!(written, 48, "every write applied on the primary");
}
