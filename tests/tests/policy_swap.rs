//! Replacing the policy of a live handle: later calls run the new version, calls in flight
//! finish on the version they started with, and a bad component is refused while the old one
//! keeps serving.

use std::time::Duration;

use agent_memory::{
    LoadError, Memory, Message, Policy, StoreSpec, error::SelfCheckProblem, follow::FollowStatus,
    policy::DEFAULT_POLICY_WASM, policy::TOOL_SAFE_POLICY_WASM,
};
use agent_memory_tests::{HOSTILE_POLICY_WASM, RedisServer, expect_stored, texts};
use serde_json::json;

#[tokio::test]
async fn a_call_in_flight_finishes_on_its_policy_and_the_next_call_uses_the_new_one() {
    let server = RedisServer::start();
    let memory = Memory::builder()
        .store(StoreSpec::parse(&server.url()).unwrap())
        .build()
        .unwrap();
    // A history the default policy left with an orphaned tool result first: the default
    // policy returns it, the tool-safe one hides it. That tells which version served a call.
    let orphan =
        Message::from_json(&json!({"role": "tool", "content": "r", "tool_call_id": "gone"}))
            .unwrap();
    expect_stored(
        memory
            .add_messages("s", [orphan, Message::user("remembered")])
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
    let tool_safe = Policy::tool_safe().unwrap();
    memory.replace_policy(tool_safe.clone()).await.unwrap();
    assert_eq!(memory.policy().digest(), tool_safe.digest());

    let old = in_flight.await.unwrap().unwrap();
    sleeper.join().unwrap();
    assert_eq!(
        texts(&old),
        ["r", "remembered"],
        "the old version served the call in flight"
    );
    assert_eq!(
        texts(&memory.get_context("s").await.unwrap()),
        ["remembered"],
        "the new version serves the next call"
    );
}

#[tokio::test]
async fn a_component_that_fails_its_checks_is_refused_and_the_old_policy_keeps_serving() {
    let memory = Memory::builder().build().unwrap();
    let before = memory.policy().digest().to_string();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, wat::parse_str("(component)").unwrap()).unwrap();
    assert!(matches!(
        memory.replace_policy_file(&bad).await,
        Err(LoadError::Contract { .. })
    ));
    // A component that fits the contract but does not keep what it writes fails the
    // self-check.
    let hostile = Policy::from_bytes(HOSTILE_POLICY_WASM, "hostile fixture").unwrap();
    let refused = memory.replace_policy(hostile).await.unwrap_err();
    // The failure is named: the step, and what the policy did there.
    let LoadError::SelfCheck(failure) = &refused else {
        panic!("not a self-check failure: {refused}");
    };
    assert_eq!(failure.step, "get-context after a write", "{refused}");
    assert!(
        matches!(failure.problem, SelfCheckProblem::Inconsistent(_)),
        "{refused}"
    );
    assert!(refused.to_string().contains("get-context"), "{refused}");
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

#[tokio::test]
async fn a_followed_policy_file_is_swapped_in_when_it_changes_and_a_bad_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.wasm");
    // Replace the file as deployment tools do: write aside, then rename over it.
    let deploy = |bytes: &[u8]| {
        let aside = dir.path().join("policy.wasm.new");
        std::fs::write(&aside, bytes).unwrap();
        std::fs::rename(&aside, &file).unwrap();
    };
    deploy(DEFAULT_POLICY_WASM);
    let memory = Memory::builder().build().unwrap();
    let mut follower = memory.follow_policy_file(&file, Duration::from_millis(20));
    expect_stored(
        memory
            .add_message("s", Message::user("kept"))
            .await
            .unwrap(),
    );

    deploy(TOOL_SAFE_POLICY_WASM);
    let status = tokio::time::timeout(Duration::from_secs(10), follower.changed())
        .await
        .unwrap()
        .unwrap();
    let tool_safe = Policy::tool_safe().unwrap();
    assert!(
        matches!(&status, FollowStatus::Serving { digest } if digest == tool_safe.digest()),
        "{status:?}"
    );
    assert_eq!(memory.policy().digest(), tool_safe.digest());

    deploy(b"not a component");
    let status = tokio::time::timeout(Duration::from_secs(10), follower.changed())
        .await
        .unwrap()
        .unwrap();
    let FollowStatus::Refused {
        refused,
        error,
        serving,
    } = status
    else {
        panic!("not refused: {status:?}");
    };
    // The refused version is named: `sha256sum` of the bytes deployed.
    assert_eq!(
        refused,
        "a8a79aba8d88c7df8dcc2623d7b21b4815fe2ca50bc5a52d489303563437de31"
    );
    assert!(matches!(*error, LoadError::Compile { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("not a valid WebAssembly component"),
        "{error}"
    );
    assert_eq!(serving, tool_safe.digest());
    assert_eq!(texts(&memory.get_context("s").await.unwrap()), ["kept"]);

    // A file that disappears (not just for a moment) is reported; the policy keeps serving;
    // back, it is followed again.
    std::fs::remove_file(&file).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), follower.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&status, FollowStatus::Unreadable { serving, .. } if serving == tool_safe.digest()),
        "{status:?}"
    );
    deploy(TOOL_SAFE_POLICY_WASM);
    let status = tokio::time::timeout(Duration::from_secs(10), follower.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&status, FollowStatus::Serving { digest } if digest == tool_safe.digest()),
        "{status:?}"
    );

    // Dropping the follower stops it: a later version is not picked up.
    drop(follower);
    deploy(DEFAULT_POLICY_WASM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(memory.policy().digest(), tool_safe.digest());
}
