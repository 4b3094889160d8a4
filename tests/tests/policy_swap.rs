//! Replacing the policy of a live handle: later calls run the new version, calls in flight
//! finish on the version they started with, and a bad component is refused while the old one
//! keeps serving.

use std::time::Duration;

use agent_memory::{LoadError, Memory, MemoryError, Message, Policy, PolicyError, StoreSpec};
use agent_memory_tests::{HOSTILE_POLICY_WASM, RedisServer, expect_stored, texts};

#[tokio::test]
async fn a_call_in_flight_finishes_on_its_policy_and_the_next_call_uses_the_new_one() {
    let server = RedisServer::start();
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .build()
        .unwrap();
    expect_stored(
        memory
            .add_message("s", Message::user("remembered"))
            .await
            .unwrap(),
    );

    // Stall the server so the next read is in flight (inside the default policy) while the
    // policy is replaced.
    let sleeper = server.stall(0.3);
    std::thread::sleep(Duration::from_millis(50));
    let in_flight = tokio::spawn({
        let memory = memory.clone();
        async move { memory.get_context("s").await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let hostile = Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap();
    memory.replace_policy(hostile.clone());
    assert_eq!(memory.policy().digest(), hostile.digest());

    // The old policy reads the list; the hostile one answers every ordinary session with an
    // empty context without reading, and traps on "trap".
    let old = in_flight.await.unwrap().unwrap();
    sleeper.join().unwrap();
    assert_eq!(texts(&old), ["remembered"]);
    assert!(memory.get_context("s").await.unwrap().messages.is_empty());
    assert!(matches!(
        memory.get_context("trap").await,
        Err(MemoryError::Policy(PolicyError::Trapped(_)))
    ));
}

#[tokio::test]
async fn a_component_that_fails_its_checks_is_refused_and_the_old_policy_keeps_serving() {
    let memory = Memory::builder().build().unwrap();
    let before = memory.policy().digest().to_string();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, wat::parse_str("(component)").unwrap()).unwrap();
    assert!(matches!(
        memory.replace_policy_file(&bad),
        Err(LoadError::Contract(_))
    ));
    assert_eq!(memory.policy().digest(), before);
    expect_stored(
        memory
            .add_message("s", Message::user("still here"))
            .await
            .unwrap(),
    );
    assert_eq!(
        texts(&memory.get_context("s").await.unwrap()),
        ["still here"]
    );
}
