//! Writes that wait for replicas (Redis `WAIT`): with the option on, a write is only reported
//! stored once the replicas have it, and a write they do not confirm in time says so.

use std::time::Duration;

use agent_memory::{
    Memory, Message, RedisOptions, StoreError, StoreSpec, WaitForReplicas, WriteOutcome,
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
