//! What is not ours or not a message: corrupt entries skipped and counted, someone else's string left as it was, clear, and listing sessions.

use super::*;

pub(super) async fn corrupt_entries_are_skipped_and_counted_and_the_rest_is_returned(
    d: &Deployment,
) {
    let mut redis = d.raw();
    let entries: [&[u8]; 6] = [
        br#"{"role": "user", "content": "first"}"#,
        b"{not json",
        b"\xff\xfe\x00",
        br#"["an", "array"]"#,
        br#"{"content": "no role"}"#,
        br#"{"role": "assistant", "content": "last"}"#,
    ];
    for entry in entries {
        let _: () = redis.rpush("ai:memory:corrupt", entry).unwrap();
    }
    let context = d
        .memory(Settings::default())
        .get_context("corrupt")
        .await
        .unwrap();
    assert_eq!(texts(&context), ["first", "last"]);
    let skipped: Vec<(u32, EntryProblem)> = context
        .skipped
        .iter()
        .map(|entry| (entry.position, entry.problem))
        .collect();
    assert_eq!(
        skipped,
        [
            (1, EntryProblem::NotJson),
            (2, EntryProblem::NotJson),
            (3, EntryProblem::NotAnObject),
            (4, EntryProblem::NoRole)
        ]
    );
    assert_eq!(context.degraded, None);
}

pub(super) async fn a_key_holding_a_string_is_reported_and_left_exactly_as_it_was(d: &Deployment) {
    let mut redis = d.raw();
    let _: () = redis.set("ai:memory:foreign", "someone else's").unwrap();
    let memory = d.memory(Settings::default());

    let outcome = memory
        .add_message("foreign", Message::user("x"))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Failed(StoreError::WrongType));
    let context = memory.get_context("foreign").await.unwrap();
    assert_eq!(context.degraded, Some(StoreError::WrongType));
    let cleared = memory.clear("foreign").await.unwrap();
    assert_eq!(cleared, WriteOutcome::Failed(StoreError::WrongType));

    // The value and its (absent) TTL are untouched: the EXPIRE in the write was undone and the
    // clear did not delete it.
    assert_eq!(
        redis.get::<_, String>("ai:memory:foreign").unwrap(),
        "someone else's"
    );
    assert_eq!(redis.ttl::<_, i64>("ai:memory:foreign").unwrap(), -1);
}

pub(super) async fn clear_deletes_the_session_and_only_it(d: &Deployment) {
    let memory = d.memory(Settings {
        key_prefix: "clear:".to_string(),
        ..Settings::default()
    });
    stored(memory.add_message("a", Message::user("x")).await.unwrap());
    stored(memory.add_message("b", Message::user("y")).await.unwrap());
    stored(memory.clear("a").await.unwrap());
    let mut redis = d.raw();
    assert!(!redis.exists::<_, bool>("clear:a").unwrap());
    assert!(redis.exists::<_, bool>("clear:b").unwrap());
    assert_eq!(memory.sessions().await.unwrap(), [b"b".to_vec()]);
}

pub(super) async fn sessions_lists_keys_under_the_prefix_even_with_glob_characters(d: &Deployment) {
    let mut redis = d.raw();
    let _: () = redis.set("unrelated", "x").unwrap();
    let _: () = redis.set("ai:memoryX", "x").unwrap();
    let memory = d.memory(Settings {
        key_prefix: "t[1]*:".to_string(),
        ..Settings::default()
    });
    let _: () = redis.set("t1x:other", "x").unwrap();
    // Enough sessions to land on every master of a cluster.
    let mut expected = Vec::new();
    for i in 0..20 {
        let session = format!("s{i:02}");
        stored(
            memory
                .add_message(session.as_str(), Message::user("x"))
                .await
                .unwrap(),
        );
        expected.push(session.into_bytes());
    }
    assert_eq!(memory.sessions().await.unwrap(), expected);
}
