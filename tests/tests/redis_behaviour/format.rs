//! The key, the format and what is refused: entries exactly as the original's json.dumps, tool calls and null content, oversized messages and odd session ids.

use super::*;

pub(super) async fn messages_are_stored_under_the_original_key_as_python_json(d: &Deployment) {
    let memory = d.memory(Settings::default());
    stored(
        memory
            .add_message("abc", Message::user("héllo"))
            .await
            .unwrap(),
    );
    let entries: Vec<Vec<u8>> = d.raw().lrange("ai:memory:abc", 0, -1).unwrap();
    assert_eq!(
        entries,
        vec![br#"{"role": "user", "content": "h\u00e9llo"}"#.to_vec()]
    );
}

pub(super) async fn an_oversized_message_is_refused_and_nothing_is_written(d: &Deployment) {
    let memory = d.memory(Settings {
        max_message_bytes: 100,
        ..Settings::default()
    });
    stored(
        memory
            .add_message("oversized", Message::user("small"))
            .await
            .unwrap(),
    );
    let error = memory
        .add_messages(
            "oversized",
            [Message::user("ok"), Message::user("x".repeat(200))],
        )
        .await
        .unwrap_err();
    match error {
        MemoryError::InvalidMessage {
            index: 1,
            reason: InvalidMessage::TooLarge { actual, limit: 100 },
        } => assert!(actual > 200),
        other => panic!("expected too-large, got {other:?}"),
    }
    assert_eq!(
        texts(&memory.get_context("oversized").await.unwrap()),
        ["small"]
    );
}

pub(super) async fn odd_session_ids_are_refused_before_any_io_and_ordinary_odd_ones_work(
    d: &Deployment,
) {
    let memory = d.memory(Settings {
        key_prefix: "odd:".to_string(),
        ..Settings::default()
    });
    for bad in ["", "a\nb", "nul\0"] {
        assert!(matches!(
            memory.get_context(bad).await,
            Err(MemoryError::InvalidSession(_))
        ));
    }
    let long = "x".repeat(agent_memory::session::MAX_SESSION_ID_BYTES + 1);
    assert!(
        memory
            .add_message(long.as_str(), Message::user("x"))
            .await
            .is_err()
    );
    // Braces make a hash tag on a cluster, as they do for the Python original's keys.
    for odd in [
        "with space",
        "ключ",
        "a:b:c",
        "*",
        "emoji 😀",
        "{tag}x",
        "x{}",
    ] {
        stored(memory.add_message(odd, Message::user(odd)).await.unwrap());
        assert_eq!(texts(&memory.get_context(odd).await.unwrap()), [odd]);
    }
    let keys: Vec<String> = d.raw().keys("odd:*").unwrap();
    assert_eq!(keys.len(), 7, "{keys:?}");
}

pub(super) async fn messages_with_tool_calls_and_null_or_absent_content_round_trip(d: &Deployment) {
    let memory = d.memory(Settings::default());
    let call = Message::from_json(&json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]
    }))
    .unwrap();
    let result = Message::new("tool", "42").with("tool_call_id", json!("c1"));
    let bare = Message::from_json(&json!({"role": "assistant", "tool_calls": []})).unwrap();
    let parts = Message::from_json(&json!({
        "role": "user", "content": [{"type": "text", "text": "hi"}]
    }))
    .unwrap();
    let all = vec![call, result, bare, parts];
    stored(memory.add_messages("tools", all.clone()).await.unwrap());
    let context = memory.get_context("tools").await.unwrap();
    assert_eq!(context.messages, all);
    assert_eq!(context.messages[2].content(), None);
}
