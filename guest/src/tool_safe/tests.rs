//! The tool-safe window on adversarial histories, its writes, and its behaviour under a
//! concurrent writer; a property test over random conversations.

use super::*;
use crate::fake_host::FakeHost;
use crate::types::Content;
use proptest::prelude::*;

const KEY: &str = "ai:memory:s";

fn text(role: &str, content: &str) -> Message {
    Message {
        role: role.to_string(),
        content: Some(Content::Text(content.to_string())),
        extra: Vec::new(),
    }
}

fn user(content: &str) -> Message {
    text("user", content)
}

fn system(content: &str) -> Message {
    text("system", content)
}

/// An assistant message calling tools with these ids.
fn calls(ids: &[&str]) -> Message {
    let calls: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id": "{id}", "type": "function", "function": {{"name": "f", "arguments": "{{}}"}}}}"#))
        .collect();
    Message {
        role: "assistant".to_string(),
        content: Some(Content::Json("null".to_string())),
        extra: vec![("tool_calls".to_string(), format!("[{}]", calls.join(", ")))],
    }
}

/// The result of the call `id`.
fn result(id: &str) -> Message {
    Message {
        role: "tool".to_string(),
        content: Some(Content::Text(format!("result of {id}"))),
        extra: vec![("tool_call_id".to_string(), format!("\"{id}\""))],
    }
}

fn encoded(messages: &[Message]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|message| codec::encode(message, u32::MAX).unwrap())
        .collect()
}

fn options(max_messages: u32) -> Options {
    Options {
        max_messages,
        max_tokens: None,
        report_evicted: false,
    }
}

/// The window `options` keep of `history`, as messages.
fn kept(history: &[Message], options: &Options) -> Vec<Message> {
    let shapes: Vec<Shape> = encoded(history)
        .iter()
        .map(|e| Shape::of_entry(e))
        .collect();
    let window = window(&shapes, options);
    (0..usize::from(window.pinned))
        .chain(window.start..history.len())
        .map(|index| history[index].clone())
        .collect()
}

/// Whether `messages` can be sent to an LLM: no tool result without its call before it in the
/// window, and no call without the results that exist after it in `history`.
fn is_valid_window(messages: &[Message]) -> bool {
    let mut declared: Vec<String> = Vec::new();
    for message in messages {
        let shape = Shape::of_message(message);
        if shape.tool {
            match &shape.answers {
                Some(id) if declared.contains(id) => {}
                _ => return false,
            }
        }
        declared.extend(shape.calls);
    }
    true
}

#[test]
fn only_tool_messages_keep_nothing() {
    let history = [result("a"), result("b"), result("c")];
    assert!(kept(&history, &options(50)).is_empty());
}

#[test]
fn a_call_right_at_the_boundary_moves_the_window_past_its_results() {
    let history = [user("u1"), calls(&["c1"]), result("c1"), user("u2")];
    // Two messages would start at the result: the window moves past it.
    assert_eq!(kept(&history, &options(2)), [user("u2")]);
    // Three start at the call: the pair is kept whole.
    assert_eq!(
        kept(&history, &options(3)),
        [calls(&["c1"]), result("c1"), user("u2")]
    );
}

#[test]
fn parallel_tool_calls_are_kept_with_all_their_results_or_not_at_all() {
    let history = [
        user("u1"),
        calls(&["c1", "c2"]),
        result("c1"),
        result("c2"),
        user("u2"),
    ];
    assert_eq!(kept(&history, &options(2)), [user("u2")]);
    assert_eq!(kept(&history, &options(3)), [user("u2")]);
    assert_eq!(kept(&history, &options(4)), history[1..]);
    // Results interleaved with a later call: starting at the second call would orphan the
    // first call's late result.
    let history = [
        calls(&["c1"]),
        calls(&["c2"]),
        result("c2"),
        result("c1"),
        user("u"),
    ];
    assert_eq!(kept(&history, &options(4)), [user("u")]);
    assert_eq!(kept(&history, &options(5)), history);
}

#[test]
fn the_first_system_message_stays_pinned_and_counts() {
    let history = [system("be terse"), user("u1"), user("u2"), user("u3")];
    assert_eq!(
        kept(&history, &options(3)),
        [system("be terse"), user("u2"), user("u3")]
    );
    assert_eq!(kept(&history, &options(1)), [system("be terse")]);
    assert!(kept(&history, &options(0)).is_empty());
}

#[test]
fn without_a_system_message_nothing_is_pinned() {
    let history = [user("u1"), system("late system"), user("u2")];
    assert_eq!(
        kept(&history, &options(2)),
        [system("late system"), user("u2")]
    );
    assert_eq!(kept(&history, &options(1)), [user("u2")]);
}

#[test]
fn a_token_budget_smaller_than_one_message_keeps_only_the_pin() {
    let history = [system("s"), user(&"x".repeat(400)), user(&"y".repeat(400))];
    let budget = Options {
        max_tokens: Some(20),
        ..options(50)
    };
    assert_eq!(kept(&history, &budget), [system("s")]);
    let no_system = [user(&"x".repeat(400))];
    assert!(kept(&no_system, &budget).is_empty());
}

#[test]
fn one_giant_message_is_evicted_by_the_budget_and_the_rest_kept_before_it_is_not_revived() {
    let giant = user(&"g".repeat(10_000));
    let history = [user("a"), user("b"), giant.clone()];
    let budget = Options {
        max_tokens: Some(100),
        ..options(50)
    };
    // The window is a tail: it cannot skip the giant newest message to keep older ones.
    assert!(kept(&history, &budget).is_empty());
    let history = [giant, user("a"), user("b")];
    assert_eq!(kept(&history, &budget), [user("a"), user("b")]);
}

#[test]
fn writes_keep_the_window_in_storage_with_the_pin_put_back_in_front() {
    let host = FakeHost::with_window(3);
    add_messages(&host, "s", &[system("sys"), user("u1"), user("u2")]).unwrap();
    let outcome = add_messages(&host, "s", &[user("u3")]).unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Stored(Stored {
            appended: 1,
            trimmed: 1,
            length: 3,
            evicted: Vec::new(),
        })
    );
    assert_eq!(
        host.list(KEY),
        encoded(&[system("sys"), user("u2"), user("u3")])
    );
    // The stored bytes are what the default policy (and the Python original) write.
    assert_eq!(
        host.list(KEY)[0],
        codec::encode(&system("sys"), u32::MAX).unwrap()
    );
}

#[test]
fn a_write_that_would_split_a_pair_trims_past_it_and_reports_what_it_evicted() {
    let host = FakeHost::with_settings(3, &[(REPORT_EVICTED, "true")]);
    let first = [user("u1"), calls(&["c1"]), result("c1")];
    add_messages(&host, "s", &first).unwrap();
    let outcome = add_messages(&host, "s", &[user("u2")]).unwrap();
    let WriteOutcome::Stored(stored) = outcome else {
        panic!("not stored: {outcome:?}");
    };
    // Keeping three would start at the call: kept whole. u1 goes.
    assert_eq!(stored.evicted, [user("u1")]);
    assert_eq!(
        host.list(KEY),
        encoded(&[calls(&["c1"]), result("c1"), user("u2")])
    );
    let outcome = add_messages(&host, "s", &[user("u3")]).unwrap();
    let WriteOutcome::Stored(stored) = outcome else {
        panic!("not stored: {outcome:?}");
    };
    // Three would start at the result: the pair goes together.
    assert_eq!(stored.evicted, [calls(&["c1"]), result("c1")]);
    assert_eq!((stored.trimmed, stored.length), (2, 2));
    assert_eq!(host.list(KEY), encoded(&[user("u2"), user("u3")]));
}

#[test]
fn a_batch_larger_than_the_window_stores_only_its_valid_tail() {
    let host = FakeHost::with_window(2);
    add_messages(&host, "s", &[system("sys")]).unwrap();
    let outcome = add_messages(&host, "s", &[user("a"), calls(&["c"]), result("c")]).unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Stored(Stored {
            appended: 0,
            trimmed: 3,
            length: 1,
            evicted: Vec::new(),
        })
    );
    assert_eq!(host.list(KEY), encoded(&[system("sys")]));
}

#[test]
fn a_concurrent_write_makes_the_write_plan_again_on_what_is_there_now() {
    let host = FakeHost::with_window(3);
    add_messages(&host, "s", &[user("u1"), calls(&["c1"])]).unwrap();
    // Another client appends the result between our read and our transaction.
    host.interference.borrow_mut().push_back(Box::new(|lists| {
        lists.get_mut(KEY).unwrap().extend(encoded(&[result("c1")]));
    }));
    add_messages(&host, "s", &[user("u2")]).unwrap();
    assert_eq!(
        host.list(KEY),
        encoded(&[calls(&["c1"]), result("c1"), user("u2")])
    );
    assert_eq!(
        host.calls.borrow().len(),
        2 + 4,
        "one conflict, one more read and write"
    );
}

#[test]
fn a_write_that_keeps_meeting_concurrent_writers_fails_with_a_conflict_and_applies_nothing() {
    let host = FakeHost::with_window(50);
    add_messages(&host, "s", &[user("u1")]).unwrap();
    for _ in 0..MAX_ATTEMPTS {
        host.interference.borrow_mut().push_back(Box::new(|lists| {
            lists
                .get_mut(KEY)
                .unwrap()
                .extend(encoded(&[user("other")]));
        }));
    }
    let outcome = add_messages(&host, "s", &[user("mine")]).unwrap();
    assert_eq!(outcome, WriteOutcome::Failed(StoreError::Conflict));
    let list = host.list(KEY);
    assert_eq!(list.len(), 1 + MAX_ATTEMPTS as usize);
    assert!(!list.contains(&encoded(&[user("mine")])[0]));
}

#[test]
fn reads_show_a_valid_window_of_a_session_the_default_policy_trimmed() {
    let host = FakeHost::with_window(50);
    // The default policy's LTRIM cut the call away and left its result first.
    host.lists.borrow_mut().insert(
        KEY.to_string(),
        encoded(&[result("c0"), user("u1"), user("u2")]),
    );
    let context = get_context(&host, "s");
    assert_eq!(context.messages, [user("u1"), user("u2")]);
    assert!(
        host.calls
            .borrow()
            .iter()
            .all(|call| call.starts_with("read"))
    );
}

#[test]
fn add_and_get_context_returns_the_window_it_left_in_one_transaction() {
    let host = FakeHost::with_window(2);
    add_messages(&host, "s", &[system("sys"), user("u1")]).unwrap();
    let turn = add_and_get_context(&host, "s", &[user("u2")]).unwrap();
    assert_eq!(turn.context.messages, [system("sys"), user("u2")]);
    assert!(turn.outcome != WriteOutcome::Failed(StoreError::Conflict));
}

#[test]
fn a_failed_read_fails_the_write_without_applying_anything() {
    let host = FakeHost::with_window(50);
    host.failures
        .borrow_mut()
        .push_back(StoreError::Unavailable("down".into()));
    let outcome = add_messages(&host, "s", &[user("u")]).unwrap();
    assert!(matches!(
        outcome,
        WriteOutcome::Failed(StoreError::Unavailable(_))
    ));
    assert!(host.list(KEY).is_empty());
}

#[test]
fn bad_settings_are_logged_and_ignored() {
    let host = FakeHost::with_settings(50, &[(MAX_TOKENS, "lots"), ("colour", "blue")]);
    let options = Options::from_settings(&host, &host.settings);
    assert_eq!(options.max_tokens, None);
    assert_eq!(host.logged.borrow().len(), 2);
}

/// One step of a random conversation.
#[derive(Debug, Clone)]
enum Step {
    User(usize),
    System,
    /// An assistant message calling this many tools, with its results.
    ToolRound {
        calls: usize,
        answered: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..300).prop_map(Step::User),
        1 => Just(Step::System),
        3 => (1usize..4, 0usize..4).prop_map(|(calls, answered)| Step::ToolRound {
            calls,
            answered: answered.min(calls),
        }),
    ]
}

proptest! {
    /// Whatever the conversation, the stored window after every write is valid to send,
    /// within both limits (the pin aside), and a tail of everything written (plus the pin).
    #[test]
    fn every_write_leaves_a_valid_window_that_is_a_tail_of_the_conversation(
        steps in proptest::collection::vec(step(), 1..30),
        max_messages in 0u32..12,
        max_tokens in proptest::option::of(20u64..400),
    ) {
        let mut extra = Vec::new();
        let tokens_text = max_tokens.map(|tokens| tokens.to_string());
        if let Some(tokens) = &tokens_text {
            extra.push((MAX_TOKENS, tokens.as_str()));
        }
        let host = FakeHost::with_settings(max_messages, &extra);
        let mut written: Vec<Message> = Vec::new();
        for (number, step) in steps.iter().enumerate() {
            let batch = match step {
                Step::User(len) => vec![user(&format!("{number}{}", "x".repeat(*len)))],
                Step::System => vec![system(&format!("system {number}"))],
                Step::ToolRound { calls: count, answered } => {
                    let ids: Vec<String> = (0..*count).map(|i| format!("c{number}-{i}")).collect();
                    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                    let mut batch = vec![calls(&refs)];
                    batch.extend(ids.iter().take(*answered).map(|id| result(id)));
                    batch
                }
            };
            let outcome = add_messages(&host, "s", &batch).unwrap();
            prop_assert!(outcome.is_stored_for_test());
            written.extend(batch);

            let stored: Vec<Message> = host
                .list(KEY)
                .iter()
                .map(|entry| codec::decode(entry).unwrap())
                .collect();
            prop_assert!(stored.len() <= max_messages as usize);
            prop_assert!(is_valid_window(&stored), "invalid window {stored:?}");
            // The list's first message is pinned when it is a system message.
            let pinned = stored.first().is_some_and(|first| first.role == "system");
            let tail = &stored[usize::from(pinned)..];
            prop_assert!(written.ends_with(tail), "not a tail of the conversation");
            if let Some(budget) = max_tokens {
                let tokens: u64 = encoded(tail).iter().map(|entry| tokens(entry.len())).sum();
                let pin_tokens = if pinned { tokens_of(&stored[0]) } else { 0 };
                prop_assert!(tokens <= budget.saturating_sub(pin_tokens));
            }
            // Reading shows exactly what is stored: the stored list is a window already.
            prop_assert_eq!(get_context(&host, "s").messages, stored);
        }
    }
}

fn tokens_of(message: &Message) -> u64 {
    tokens(codec::encode(message, u32::MAX).unwrap().len())
}

trait StoredForTest {
    fn is_stored_for_test(&self) -> bool;
}

impl StoredForTest for WriteOutcome {
    fn is_stored_for_test(&self) -> bool {
        matches!(self, WriteOutcome::Stored(_))
    }
}
