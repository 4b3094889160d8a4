//! The tool-safe window on adversarial histories, its writes and refusals, its behaviour under
//! concurrent writers, and a property test over random conversations whose validity is judged
//! by the generator's own record of calls and results, not by the policy's parser.

use super::*;
use crate::fake_host::FakeHost;
use crate::types::{Member, MemberValue, WindowLimit, WindowOverflow, WindowRefusal};
use proptest::prelude::*;

const KEY: &str = "ai:memory:s";

fn text(role: &str, content: &str) -> Message {
    codec::text_message(role, content)
}

fn user(content: &str) -> Message {
    text("user", content)
}

fn system(content: &str) -> Message {
    text("system", content)
}

fn member(name: &str, value: MemberValue) -> Member {
    Member {
        name: name.to_string(),
        value,
    }
}

/// An OpenAI assistant message calling tools with these ids.
fn calls(ids: &[&str]) -> Message {
    let calls: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id": "{id}", "type": "function", "function": {{"name": "f", "arguments": "{{}}"}}}}"#))
        .collect();
    Message {
        members: vec![
            member("role", MemberValue::Text("assistant".into())),
            member("content", MemberValue::Json("null".into())),
            member(
                "tool_calls",
                MemberValue::Json(format!("[{}]", calls.join(", "))),
            ),
        ],
    }
}

/// The OpenAI result of the call `id`, in OpenAI's own member order.
fn result(id: &str) -> Message {
    result_sized(id, 0)
}

/// A result of the call `id` with `padding` more bytes of content.
fn result_sized(id: &str, padding: usize) -> Message {
    Message {
        members: vec![
            member("role", MemberValue::Text("tool".into())),
            member("tool_call_id", MemberValue::Text(id.into())),
            member(
                "content",
                MemberValue::Text(format!("result of {id}{}", "r".repeat(padding))),
            ),
        ],
    }
}

/// An Anthropic assistant message with `tool_use` blocks of these ids.
fn tool_use(ids: &[&str]) -> Message {
    let blocks: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"type": "tool_use", "id": "{id}", "name": "w", "input": {{}}}}"#))
        .collect();
    Message {
        members: vec![
            member("role", MemberValue::Text("assistant".into())),
            member(
                "content",
                MemberValue::Json(format!(
                    r#"[{{"type": "text", "text": "checking"}}, {}]"#,
                    blocks.join(", ")
                )),
            ),
        ],
    }
}

/// An Anthropic user message with a `tool_result` block for each of these ids.
fn tool_results(ids: &[&str]) -> Message {
    let blocks: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"type": "tool_result", "tool_use_id": "{id}", "content": "ok"}}"#))
        .collect();
    Message {
        members: vec![
            member("role", MemberValue::Text("user".into())),
            member(
                "content",
                MemberValue::Json(format!("[{}]", blocks.join(", "))),
            ),
        ],
    }
}

fn encoded(messages: &[Message]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|message| codec::encode(message, u32::MAX).unwrap())
        .collect()
}

fn decoded(host: &FakeHost) -> Vec<Message> {
    host.list(KEY)
        .iter()
        .map(|entry| codec::decode(entry).unwrap())
        .collect()
}

fn limits(max_messages: u32) -> Limits {
    Limits {
        max_messages,
        max_tokens: None,
    }
}

/// The window a read keeps of `history`, as messages.
fn kept(history: &[Message], limits: &Limits) -> Vec<Message> {
    let shapes: Vec<Shape> = encoded(history)
        .iter()
        .map(|e| Shape::of_entry(e))
        .collect();
    let window = window::read_window(&shapes, limits);
    window
        .kept(history.len())
        .map(|index| history[index].clone())
        .collect()
}

fn tokens_of(message: &Message) -> u64 {
    shape::tokens(codec::encode(message, u32::MAX).unwrap().len())
}

fn refused(outcome: Result<WriteOutcome, MemoryError>) -> (u32, WindowRefusal) {
    match outcome {
        Err(MemoryError::DoesNotFit((index, reason))) => (index, reason),
        other => panic!("not refused by the window: {other:?}"),
    }
}

fn overflow(limit: WindowLimit, needed: u64, allowed: u64) -> WindowRefusal {
    WindowRefusal::Overflow(WindowOverflow {
        limit,
        needed,
        allowed,
    })
}

// --- the window a read shows -------------------------------------------------------------------

#[test]
fn only_tool_messages_keep_nothing() {
    let history = [result("a"), result("b"), result("c")];
    assert!(kept(&history, &limits(50)).is_empty());
}

#[test]
fn a_call_right_at_the_boundary_moves_the_window_past_its_results() {
    let history = [user("u1"), calls(&["c1"]), result("c1"), user("u2")];
    // Two messages would start at the result: the window moves past it.
    assert_eq!(kept(&history, &limits(2)), [user("u2")]);
    // Three start at the call: the pair is kept whole.
    assert_eq!(
        kept(&history, &limits(3)),
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
    assert_eq!(kept(&history, &limits(2)), [user("u2")]);
    assert_eq!(kept(&history, &limits(3)), [user("u2")]);
    assert_eq!(kept(&history, &limits(4)), history[1..]);
    // Results interleaved with a later call: starting at the second call would orphan the
    // first call's late result.
    let history = [
        calls(&["c1"]),
        calls(&["c2"]),
        result("c2"),
        result("c1"),
        user("u"),
    ];
    assert_eq!(kept(&history, &limits(4)), [user("u")]);
    assert_eq!(kept(&history, &limits(5)), history);
}

#[test]
fn an_orphan_in_the_middle_of_a_foreign_list_is_never_in_a_window() {
    // The default policy (or the Python original) trimmed c9's call away while its result
    // was stored later, in the middle of the list.
    let history = [user("u1"), user("u2"), result("c9"), user("u3")];
    assert_eq!(kept(&history, &limits(50)), [user("u3")]);
    let history = [system("s"), user("u1"), result("c9"), user("u3")];
    assert_eq!(kept(&history, &limits(50)), [system("s"), user("u3")]);
}

#[test]
fn anthropic_tool_use_and_tool_result_blocks_are_kept_whole() {
    let history = [
        user("u1"),
        tool_use(&["t1", "t2"]),
        tool_results(&["t1", "t2"]),
        user("u2"),
    ];
    // Two would start at the results message.
    assert_eq!(kept(&history, &limits(2)), [user("u2")]);
    assert_eq!(kept(&history, &limits(3)), history[1..]);
    // A results message answering a call that is gone is an orphan.
    let history = [tool_results(&["t0"]), user("u")];
    assert_eq!(kept(&history, &limits(50)), [user("u")]);
}

#[test]
fn mixed_formats_in_one_session_are_each_kept_whole() {
    let history = [
        calls(&["c1"]),
        result("c1"),
        tool_use(&["t1"]),
        tool_results(&["t1"]),
        user("u"),
    ];
    assert_eq!(kept(&history, &limits(4)), history[2..]);
    assert_eq!(kept(&history, &limits(5)), history);
    assert_eq!(kept(&history, &limits(2)), [user("u")]);
}

#[test]
fn the_first_system_message_stays_pinned_and_counts() {
    let history = [system("be terse"), user("u1"), user("u2"), user("u3")];
    assert_eq!(
        kept(&history, &limits(3)),
        [system("be terse"), user("u2"), user("u3")]
    );
    assert_eq!(kept(&history, &limits(1)), [system("be terse")]);
    assert!(kept(&history, &limits(0)).is_empty());
}

#[test]
fn without_a_system_message_first_nothing_is_pinned() {
    let history = [user("u1"), system("late system"), user("u2")];
    assert_eq!(
        kept(&history, &limits(2)),
        [system("late system"), user("u2")]
    );
    assert_eq!(kept(&history, &limits(1)), [user("u2")]);
}

#[test]
fn a_pinned_message_over_the_budget_is_read_alone() {
    let history = [system(&"s".repeat(400)), user("a")];
    let budget = Limits {
        max_tokens: Some(20),
        ..limits(50)
    };
    assert_eq!(kept(&history, &budget), [history[0].clone()]);
}

// --- writes: never lose what fits, never store by dropping, refuse with the reason ---------------

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
}

#[test]
fn a_tool_result_over_the_token_budget_is_refused_and_the_session_kept() {
    // Issue 17's first case: this used to delete the session and report success.
    let host = FakeHost::with_settings(50, &[(MAX_TOKENS, "200")]);
    let history = [
        user("what is the weather?"),
        text("assistant", "let me check"),
    ];
    add_messages(&host, "s", &history).unwrap();
    add_messages(&host, "s", &[calls(&["c1"])]).unwrap();
    let before = host.list(KEY);
    let big = result_sized("c1", 1200);
    let (index, reason) = refused(add_messages(&host, "s", std::slice::from_ref(&big)));
    assert_eq!(index, 0);
    let needed = tokens_of(&calls(&["c1"])) + tokens_of(&big);
    assert_eq!(reason, overflow(WindowLimit::Tokens, needed, 200));
    assert_eq!(host.list(KEY), before, "nothing written, nothing lost");
}

#[test]
fn a_fan_out_larger_than_the_window_is_refused_at_the_call() {
    // Issue 17's second case: five parallel calls and a window of four used to delete the
    // session at the fourth result and drop the fifth.
    let host = FakeHost::with_window(4);
    add_messages(&host, "s", &[user("u")]).unwrap();
    let (index, reason) = refused(add_messages(
        &host,
        "s",
        &[calls(&["c1", "c2", "c3", "c4", "c5"])],
    ));
    assert_eq!(index, 0);
    assert_eq!(reason, overflow(WindowLimit::Messages, 6, 4));
    assert_eq!(host.list(KEY), encoded(&[user("u")]));
    // Its results then answer a call that was never stored.
    let (_, reason) = refused(add_messages(&host, "s", &[result("c1")]));
    assert_eq!(reason, WindowRefusal::OrphanResult("c1".into()));
    assert_eq!(host.list(KEY), encoded(&[user("u")]));
}

#[test]
fn a_fan_out_that_fits_keeps_every_result_and_trims_what_is_older() {
    let host = FakeHost::with_window(4);
    add_messages(&host, "s", &[user("u")]).unwrap();
    add_messages(&host, "s", &[calls(&["c1", "c2", "c3"])]).unwrap();
    for id in ["c1", "c2", "c3"] {
        assert!(
            add_messages(&host, "s", &[result(id)])
                .unwrap()
                .is_stored_for_test()
        );
    }
    assert_eq!(
        decoded(&host),
        [
            calls(&["c1", "c2", "c3"]),
            result("c1"),
            result("c2"),
            result("c3")
        ]
    );
}

#[test]
fn a_pinned_system_message_over_the_budget_is_kept_and_writes_are_refused_with_why() {
    let host = FakeHost::with_settings(50, &[(MAX_TOKENS, "50")]);
    let pin = system(&"p".repeat(400));
    // Written by another client (the Python original), or before the budget was lowered.
    host.lists
        .borrow_mut()
        .insert(KEY.to_string(), encoded(std::slice::from_ref(&pin)));
    let (index, reason) = refused(add_messages(&host, "s", &[user("hi")]));
    assert_eq!(index, 0);
    assert_eq!(
        reason,
        overflow(
            WindowLimit::Tokens,
            tokens_of(&pin) + tokens_of(&user("hi")),
            50
        )
    );
    assert_eq!(decoded(&host), std::slice::from_ref(&pin));
    assert_eq!(get_context(&host, "s").messages, [pin]);
}

#[test]
fn a_new_system_message_over_the_budget_is_refused_like_any_message() {
    let host = FakeHost::with_settings(50, &[(MAX_TOKENS, "50")]);
    let pin = system(&"p".repeat(400));
    let (index, reason) = refused(add_messages(&host, "s", std::slice::from_ref(&pin)));
    assert_eq!(index, 0);
    assert_eq!(reason, overflow(WindowLimit::Tokens, tokens_of(&pin), 50));
    assert!(host.list(KEY).is_empty());
}

#[test]
fn a_window_of_one_beside_a_pin_has_no_room_and_says_so() {
    let host = FakeHost::with_window(1);
    add_messages(&host, "s", &[system("sys")]).unwrap();
    let (_, reason) = refused(add_messages(&host, "s", &[user("u")]));
    assert_eq!(reason, overflow(WindowLimit::Messages, 2, 1));
    assert_eq!(decoded(&host), [system("sys")]);
}

#[test]
fn a_result_whose_call_was_trimmed_is_refused_not_stored_as_an_orphan() {
    // Issue 17: `--max-messages 3`, a call c9, three user messages, then c9's result.
    let host = FakeHost::with_window(3);
    add_messages(&host, "s", &[calls(&["c9"])]).unwrap();
    for text in ["u1", "u2", "u3"] {
        add_messages(&host, "s", &[user(text)]).unwrap();
    }
    let before = host.list(KEY);
    let (index, reason) = refused(add_messages(&host, "s", &[result("c9")]));
    assert_eq!(index, 0);
    assert_eq!(reason, WindowRefusal::OrphanResult("c9".into()));
    assert_eq!(host.list(KEY), before);
    assert_eq!(get_context(&host, "s").messages, decoded(&host));
}

#[test]
fn a_late_result_keeps_its_call_and_trims_only_what_is_older() {
    let host = FakeHost::with_window(4);
    add_messages(&host, "s", &[user("u0"), calls(&["c1"]), user("u1")]).unwrap();
    add_messages(&host, "s", &[result("c1")]).unwrap();
    assert_eq!(
        decoded(&host),
        [user("u0"), calls(&["c1"]), user("u1"), result("c1")]
    );
    add_messages(&host, "s", &[user("u2")]).unwrap();
    assert_eq!(
        decoded(&host),
        [calls(&["c1"]), user("u1"), result("c1"), user("u2")]
    );
}

#[test]
fn a_write_after_a_foreign_orphan_stores_a_valid_window() {
    let host = FakeHost::with_window(50);
    host.lists.borrow_mut().insert(
        KEY.to_string(),
        encoded(&[user("u1"), result("c0"), user("u2")]),
    );
    add_messages(&host, "s", &[user("u3")]).unwrap();
    assert_eq!(decoded(&host), [user("u2"), user("u3")]);
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
fn a_batch_larger_than_the_window_keeps_its_newest_valid_tail() {
    let host = FakeHost::with_window(3);
    add_messages(&host, "s", &[system("sys")]).unwrap();
    let outcome = add_messages(
        &host,
        "s",
        &[user("a"), user("b"), calls(&["c"]), result("c")],
    )
    .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Stored(Stored {
            appended: 2,
            trimmed: 2,
            length: 3,
            evicted: Vec::new(),
        })
    );
    assert_eq!(decoded(&host), [system("sys"), calls(&["c"]), result("c")]);
    // A batch whose newest message cannot be kept stores nothing.
    let (index, _) = refused(add_messages(
        &host,
        "s",
        &[user("x"), calls(&["d"]), result("d"), result_sized("d", 0)],
    ));
    assert_eq!(index, 3);
}

#[test]
fn a_window_of_zero_keeps_nothing_by_configuration() {
    let host = FakeHost::with_window(0);
    host.lists
        .borrow_mut()
        .insert(KEY.to_string(), encoded(&[user("old")]));
    let outcome = add_messages(&host, "s", &[user("u")]).unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Stored(Stored {
            appended: 0,
            trimmed: 2,
            length: 0,
            evicted: Vec::new(),
        })
    );
    assert!(host.list(KEY).is_empty());
}

// --- concurrent writers --------------------------------------------------------------------------

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
fn a_result_whose_call_a_concurrent_writer_trims_away_is_refused_on_the_next_plan() {
    let host = FakeHost::with_window(2);
    add_messages(&host, "s", &[calls(&["c1"])]).unwrap();
    // Between our read and our write, another writer's two messages trim the call away.
    host.interference.borrow_mut().push_back(Box::new(|lists| {
        *lists.get_mut(KEY).unwrap() = encoded(&[user("x"), user("y")]);
    }));
    let (_, reason) = refused(add_messages(&host, "s", &[result("c1")]));
    assert_eq!(reason, WindowRefusal::OrphanResult("c1".into()));
    assert_eq!(decoded(&host), [user("x"), user("y")]);
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

// --- reads, turns, settings ----------------------------------------------------------------------

#[test]
fn reads_show_a_valid_window_of_a_session_the_default_policy_trimmed() {
    let host = FakeHost::with_window(50);
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
    assert!(turn.outcome.is_stored_for_test());
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
fn the_declared_settings_are_the_ones_read() {
    let names: Vec<String> = settings().into_iter().map(|spec| spec.name).collect();
    assert_eq!(names, [MAX_TOKENS, REPORT_EVICTED]);
    let host = FakeHost::with_settings(7, &[(MAX_TOKENS, "120"), (REPORT_EVICTED, "true")]);
    let options = Options::from_settings(&host, &host.settings);
    assert_eq!(
        options,
        Options {
            limits: Limits {
                max_messages: 7,
                max_tokens: Some(120)
            },
            report_evicted: true
        }
    );
}

#[test]
fn bad_settings_that_reach_the_policy_anyway_are_logged_and_ignored() {
    let host = FakeHost::with_settings(50, &[(MAX_TOKENS, "lots"), ("colour", "blue")]);
    let options = Options::from_settings(&host, &host.settings);
    assert_eq!(options.limits.max_tokens, None);
    assert_eq!(host.logged.borrow().len(), 2);
}

// --- a property test over random, adversarial conversations --------------------------------------

/// What the generator knows of a message it made: the ids it calls and answers, in its own
/// terms (never through the policy's parser).
#[derive(Debug, Clone, Default)]
struct Known {
    system: bool,
    calls: Vec<String>,
    answers: Option<Vec<String>>,
}

/// One step of a random conversation: what a runtime sends in one write.
#[derive(Debug, Clone)]
enum Step {
    /// A user message of this many bytes of text (some over any budget).
    User(usize),
    System,
    /// A call with `calls` ids in a format, and the results sent in the same batch.
    Round {
        anthropic: bool,
        calls: usize,
        answered_now: usize,
        result_bytes: usize,
    },
    /// A late result for call number `of` (counting back from the newest call made), sent
    /// alone, as runtimes stream them; possibly for a call that was trimmed long ago.
    LateResult {
        of: usize,
        result_bytes: usize,
    },
    /// Another writer's message, appended between our read and our write (a conflict).
    Interference,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop_oneof![3 => 1usize..300, 1 => 300usize..3000].prop_map(Step::User),
        1 => Just(Step::System),
        3 => (any::<bool>(), 1usize..7, 0usize..7, prop_oneof![3 => 0usize..100, 1 => 100usize..2000])
            .prop_map(|(anthropic, calls, answered, result_bytes)| Step::Round {
                anthropic,
                calls,
                answered_now: answered.min(calls),
                result_bytes,
            }),
        3 => (0usize..4, prop_oneof![3 => 0usize..100, 1 => 100usize..2000])
            .prop_map(|(of, result_bytes)| Step::LateResult { of, result_bytes }),
        1 => Just(Step::Interference),
    ]
}

/// Whether `window` (the generator's knowledge of each entry, in order) is one an LLM API
/// takes: no result without every call it answers before it.
fn is_valid(window: &[&Known]) -> bool {
    let mut declared: Vec<&str> = Vec::new();
    for known in window {
        if let Some(answers) = &known.answers
            && (answers.is_empty() || answers.iter().any(|id| !declared.contains(&id.as_str())))
        {
            return false;
        }
        declared.extend(known.calls.iter().map(String::as_str));
    }
    true
}

/// Whether the pin (if any) and `tail` fit the limits; a pin alone may be over the budget.
fn fits(
    pin: Option<&Vec<u8>>,
    tail: &[Vec<u8>],
    max_messages: u32,
    max_tokens: Option<u64>,
) -> bool {
    let count = usize::from(pin.is_some()) + tail.len();
    let tokens: u64 = pin
        .into_iter()
        .chain(tail)
        .map(|entry| shape::tokens(entry.len()))
        .sum();
    count <= max_messages as usize
        && (tail.is_empty() || max_tokens.is_none_or(|budget| tokens <= budget))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the conversation (oversized messages, late results, fan-outs larger than the
    /// window, both tool formats, concurrent writers), after every write the stored list is a
    /// valid window within both limits (the pin aside) that keeps every stored result of each
    /// call it keeps; a stored write keeps its newest message and no longer valid tail would
    /// have fit; a refused write changes nothing, and no valid window within the limits could
    /// have kept its message.
    #[test]
    fn every_write_leaves_a_valid_window_and_refusals_lose_nothing(
        steps in proptest::collection::vec(step(), 1..40),
        max_messages in 1u32..12,
        max_tokens in proptest::option::of(20u64..600),
    ) {
        let mut extra = Vec::new();
        let tokens_text = max_tokens.map(|tokens| tokens.to_string());
        if let Some(tokens) = &tokens_text {
            extra.push((MAX_TOKENS, tokens.as_str()));
        }
        let host = FakeHost::with_settings(max_messages, &extra);
        // Every entry ever written, by its bytes (each is unique: numbered).
        let mut known: std::collections::HashMap<Vec<u8>, Known> = Default::default();
        // Every result entry that was ever in the stored list, by the calls it answers.
        let mut ever_stored_results: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
        let mut made_calls: Vec<String> = Vec::new();
        for (number, step) in steps.iter().enumerate() {
            let mut batch: Vec<(Message, Known)> = Vec::new();
            let mut interference: Option<Vec<u8>> = None;
            match step {
                Step::User(len) => batch.push((
                    user(&format!("{number}:{}", "x".repeat(*len))),
                    Known::default(),
                )),
                Step::System => batch.push((
                    system(&format!("system {number}")),
                    Known { system: true, ..Known::default() },
                )),
                Step::Round { anthropic, calls: count, answered_now, result_bytes } => {
                    let ids: Vec<String> = (0..*count).map(|i| format!("c{number}-{i}")).collect();
                    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                    let call = if *anthropic { tool_use(&refs) } else { calls(&refs) };
                    batch.push((call, Known { calls: ids.clone(), ..Known::default() }));
                    if *anthropic {
                        if *answered_now > 0 {
                            batch.push((
                                tool_results(&refs),
                                Known { answers: Some(ids.clone()), ..Known::default() },
                            ));
                        }
                    } else {
                        for id in ids.iter().take(*answered_now) {
                            batch.push((
                                result_sized(id, *result_bytes),
                                Known { answers: Some(vec![id.clone()]), ..Known::default() },
                            ));
                        }
                    }
                    made_calls.extend(ids);
                }
                Step::LateResult { of, result_bytes } => {
                    let Some(id) = made_calls.iter().rev().nth(*of).cloned() else { continue };
                    batch.push((
                        result_sized(&id, *result_bytes + number),
                        Known { answers: Some(vec![id]), ..Known::default() },
                    ));
                }
                Step::Interference => {
                    let other = user(&format!("other writer {number}"));
                    let bytes = codec::encode(&other, u32::MAX).unwrap();
                    known.insert(bytes.clone(), Known::default());
                    interference = Some(bytes.clone());
                    host.interference.borrow_mut().push_back(Box::new(move |lists| {
                        lists.entry(KEY.to_string()).or_default().push(bytes);
                    }));
                    batch.push((user(&format!("{number}: after interference")), Known::default()));
                }
            }
            let new: Vec<Vec<u8>> = batch
                .iter()
                .map(|(message, _)| codec::encode(message, u32::MAX).unwrap())
                .collect();
            for ((_, meta), bytes) in batch.iter().zip(&new) {
                known.insert(bytes.clone(), meta.clone());
            }
            let before = host.list(KEY);
            let messages: Vec<Message> = batch.iter().map(|(message, _)| message.clone()).collect();
            let outcome = add_messages(&host, "s", &messages);
            let interfered = interference.is_some() && host.interference.borrow().is_empty();
            host.interference.borrow_mut().clear();
            let after = host.list(KEY);
            let meta = |entries: &[Vec<u8>]| -> Vec<Known> {
                entries.iter().map(|entry| known[entry].clone()).collect()
            };

            // Always: a valid window within the limits (the pin aside) ...
            let metas = meta(&after);
            prop_assert!(is_valid(&metas.iter().collect::<Vec<_>>()), "invalid window {:?}", decoded(&host));
            let pinned = metas.first().is_some_and(|first| first.system);
            let pin = pinned.then(|| &after[0]);
            prop_assert!(fits(pin, &after[usize::from(pinned)..], max_messages, max_tokens), "over a limit");
            // ... that keeps every stored result of each call it keeps.
            let kept_calls: Vec<&String> = metas.iter().flat_map(|known| &known.calls).collect();
            for (answers, bytes) in &ever_stored_results {
                if answers.iter().any(|id| kept_calls.contains(&id)) {
                    prop_assert!(after.contains(bytes), "a kept call lost a result");
                }
            }
            for (entry, known) in after.iter().zip(&metas) {
                if let Some(answers) = &known.answers {
                    ever_stored_results.push((answers.clone(), entry.clone()));
                }
            }

            // What the write planned over: the list as it was at its last read, then the batch.
            let mut planned = before.clone();
            if interfered {
                planned.push(interference.clone().unwrap());
            }
            let all: Vec<Vec<u8>> = planned.iter().chain(&new).cloned().collect();
            let all_meta = meta(&all);
            let all_pinned = all_meta[0].system;
            let first = usize::from(all_pinned);
            let newest = all.len() - 1;
            let valid_and_fits = |start: usize| {
                let tail: Vec<&Known> = all_meta[start..].iter().collect();
                is_valid(&tail) && fits(all_pinned.then(|| &all[0]), &all[start..], max_messages, max_tokens)
            };
            match outcome {
                Ok(WriteOutcome::Stored(stored)) => {
                    prop_assert_eq!(after.last(), all.last(), "the newest message is kept");
                    prop_assert_eq!(stored.length as usize, after.len());
                    // No longer valid tail would have fit: nothing that fits was lost.
                    let start = all.len() - (after.len() - first);
                    for longer in (first..start).rev() {
                        prop_assert!(!valid_and_fits(longer), "a longer window fit: history lost");
                    }
                }
                Ok(WriteOutcome::Failed(StoreError::Conflict)) => prop_assert_eq!(&after, &planned),
                Ok(other) => prop_assert!(false, "unexpected outcome {other:?}"),
                Err(MemoryError::DoesNotFit((index, _))) => {
                    prop_assert_eq!(&after, &planned, "a refused write changed the session");
                    let refused = &batch[index as usize].1;
                    let group = match step {
                        Step::Round { anthropic: true, .. } => 1,
                        _ => refused.calls.len(),
                    };
                    let call_never_fits = !refused.calls.is_empty()
                        && first + 1 + group > max_messages as usize;
                    if !call_never_fits {
                        for start in first..=newest {
                            prop_assert!(!valid_and_fits(start), "refused, but a window could keep it");
                        }
                    }
                }
                Err(error) => prop_assert!(false, "unexpected error {error:?}"),
            }
            // Reading shows exactly what is stored: the stored list is a window already.
            let read: Vec<Vec<u8>> = encoded(&get_context(&host, "s").messages);
            prop_assert_eq!(read, after);
        }
    }
}

trait StoredForTest {
    fn is_stored_for_test(&self) -> bool;
}

impl StoredForTest for WriteOutcome {
    fn is_stored_for_test(&self) -> bool {
        matches!(self, WriteOutcome::Stored(_))
    }
}
