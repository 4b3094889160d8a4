//! The embedded default store and the in-memory store: Redis list semantics without a server,
//! and (for the file) data kept across process restarts.

use std::time::Duration;

use agent_memory::{
    BlockingMemory, Memory, MemoryError, Message, Settings, StoreSpec, WriteOutcome,
    store::KeyKind, store::Ttl,
};
use agent_memory_tests::{expect_stored, texts};

fn memory_on(spec: StoreSpec, settings: Settings) -> Memory {
    Memory::builder()
        .store(spec)
        .settings(settings)
        .build()
        .unwrap()
}

fn specs(dir: &tempfile::TempDir) -> [StoreSpec; 2] {
    [
        StoreSpec::Embedded(dir.path().join("m.redb")),
        StoreSpec::InMemory,
    ]
}

#[tokio::test]
async fn both_stores_keep_the_window_trim_and_ttl_like_redis() {
    let dir = tempfile::tempdir().unwrap();
    for spec in specs(&dir) {
        let memory = memory_on(
            spec.clone(),
            Settings {
                max_messages: 3,
                ..Settings::default()
            },
        );
        for i in 1..=4 {
            let outcome = memory
                .add_message("s", Message::user(i.to_string()))
                .await
                .unwrap();
            assert!(outcome.is_stored(), "{spec:?}: {outcome:?}");
        }
        assert_eq!(
            texts(&memory.get_context("s").await.unwrap()),
            ["2", "3", "4"],
            "{spec:?}"
        );
        let key = memory.settings().key_for("s");
        assert_eq!(memory.store().kind(&key).await.unwrap(), KeyKind::List(3));
        match memory.store().ttl(&key).await.unwrap() {
            Ttl::ExpiresIn(left) => assert!(left > Duration::from_secs(3590), "{spec:?}: {left:?}"),
            other => panic!("{spec:?}: {other:?}"),
        }
        assert_eq!(memory.sessions().await.unwrap(), [b"s".to_vec()]);
        let turn = memory
            .add_and_get_context("s", [Message::user("5")])
            .await
            .unwrap();
        assert_eq!(texts(&turn.context), ["3", "4", "5"], "{spec:?}");
        assert_eq!(turn.outcome.stored().map(|stored| stored.trimmed), Some(1));
        assert!(memory.clear("s").await.unwrap().is_stored());
        assert_eq!(memory.store().ttl(&key).await.unwrap(), Ttl::Missing);
        assert!(memory.sessions().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn sessions_expire_after_their_ttl_in_both_stores() {
    let dir = tempfile::tempdir().unwrap();
    for spec in specs(&dir) {
        let memory = memory_on(
            spec.clone(),
            Settings {
                ttl_seconds: 1,
                ..Settings::default()
            },
        );
        expect_stored(
            memory
                .add_message("short", Message::user("x"))
                .await
                .unwrap(),
        );
        assert_eq!(memory.get_context("short").await.unwrap().messages.len(), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(
            memory
                .get_context("short")
                .await
                .unwrap()
                .messages
                .is_empty(),
            "{spec:?}"
        );
        assert!(memory.sessions().await.unwrap().is_empty(), "{spec:?}");
        // A write after expiry starts a new list rather than reviving the old one.
        let outcome = memory
            .add_message("short", Message::user("y"))
            .await
            .unwrap();
        assert_eq!(outcome.stored().map(|stored| stored.length), Some(1));
    }
}

#[tokio::test]
async fn the_embedded_store_keeps_sessions_when_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/m.redb");
    {
        let memory = memory_on(StoreSpec::Embedded(path.clone()), Settings::default());
        let outcome = memory
            .add_messages("kept", [Message::system("s"), Message::user("u")])
            .await
            .unwrap();
        assert!(outcome.is_stored());
    }
    let memory = memory_on(StoreSpec::Embedded(path), Settings::default());
    assert_eq!(
        texts(&memory.get_context("kept").await.unwrap()),
        ["s", "u"]
    );
}

#[test]
fn the_embedded_file_is_refused_while_another_handle_has_it_open() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StoreSpec::Embedded(dir.path().join("m.redb"));
    let _first = memory_on(spec.clone(), Settings::default());
    let error = Memory::builder().store(spec).build().unwrap_err();
    assert!(
        error.to_string().contains("open in another process"),
        "{error}"
    );
}

#[test]
fn the_blocking_wrapper_serves_synchronous_callers() {
    let memory = BlockingMemory::new(Memory::builder().build().unwrap()).unwrap();
    assert!(
        memory
            .add_message("s", Message::user("a"))
            .unwrap()
            .is_stored()
    );
    let outcome = memory.add_messages("s", [Message::assistant("b")]).unwrap();
    assert_eq!(outcome.stored().map(|stored| stored.length), Some(2));
    assert_eq!(texts(&memory.get_context("s").unwrap()), ["a", "b"]);
    assert!(matches!(
        memory.clear("s").unwrap(),
        WriteOutcome::Stored(_)
    ));
    assert!(memory.get_context("s").unwrap().messages.is_empty());
}

#[tokio::test]
async fn the_blocking_wrapper_refuses_to_block_inside_a_runtime() {
    let memory = BlockingMemory::new(Memory::builder().build().unwrap()).unwrap();
    assert!(matches!(
        memory.get_context("s"),
        Err(MemoryError::BlockingInAsync)
    ));
}

#[tokio::test]
async fn an_empty_batch_is_refused() {
    let memory = Memory::builder().build().unwrap();
    assert!(matches!(
        memory.add_messages("s", Vec::new()).await,
        Err(MemoryError::NoMessages)
    ));
}

#[test]
fn invalid_settings_are_refused_at_build_time() {
    let error = Memory::builder()
        .settings(Settings {
            ttl_seconds: 0,
            ..Settings::default()
        })
        .build()
        .unwrap_err();
    assert!(matches!(error, agent_memory::BuildError::Settings(_)));
}
