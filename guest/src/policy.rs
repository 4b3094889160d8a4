//! The default policy's operations, written against [`Host`] so that they run natively in unit
//! tests with a fake store, and in the component against the real imports.

use crate::codec;
use crate::resilience::{self, Access};
use crate::types::{
    Applied, Context, Level, ListOp, MemoryError, Message, Range, Settings, SkippedEntry,
    StoreError, Stored, Turn, WriteOutcome,
};
use crate::window;

/// What the policy needs from its host: the imports of the `policy` world.
pub trait Host {
    /// `config.get-settings`.
    fn settings(&self) -> Settings;
    /// `store.read-range`.
    fn read_range(&self, key: &str, range: Range) -> Result<Vec<Vec<u8>>, StoreError>;
    /// `store.apply`.
    fn apply(&self, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError>;
    /// `log.log`.
    fn log(&self, level: Level, message: &str);
}

/// The key of a session: the prefix and the id, as the Python original interpolates them.
pub fn session_key(settings: &Settings, session_id: &str) -> String {
    let mut key = String::with_capacity(settings.key_prefix.len() + session_id.len());
    key.push_str(&settings.key_prefix);
    key.push_str(session_id);
    key
}

/// `memory.get-context`: the newest messages of the window, skipping entries that are not
/// messages; a store fault gives an empty, degraded context.
pub fn get_context(host: &impl Host, session_id: &str) -> Context {
    let settings = host.settings();
    let Some(range) = window::read_range(&settings) else {
        return Context {
            messages: Vec::new(),
            skipped: Vec::new(),
            degraded: None,
        };
    };
    let key = session_key(&settings, session_id);
    let entries = resilience::with_retry(
        Access::Read,
        || host.read_range(&key, range),
        |error| {
            host.log(
                Level::Warn,
                &format!("read failed, retrying once: {error:?}"),
            )
        },
    );
    match entries {
        Ok(entries) => context_of(host, &entries),
        Err(error) => degraded(host, error),
    }
}

/// An empty history, degraded by `error` (logged).
pub fn degraded(host: &impl Host, error: StoreError) -> Context {
    host.log(
        Level::Warn,
        &format!("read failed, history degraded to empty: {error:?}"),
    );
    Context {
        messages: Vec::new(),
        skipped: Vec::new(),
        degraded: Some(error),
    }
}

/// The history the stored `entries` hold: each decoded, those that are not messages skipped
/// with their position and reason.
fn context_of(host: &impl Host, entries: &[Vec<u8>]) -> Context {
    let mut messages = Vec::with_capacity(entries.len());
    let mut skipped = Vec::new();
    for (position, entry) in entries.iter().enumerate() {
        match codec::decode(entry) {
            Ok(message) => messages.push(message),
            Err(problem) => {
                host.log(
                    Level::Warn,
                    &format!(
                        "skipped stored entry {position} ({} bytes): {problem:?}",
                        entry.len()
                    ),
                );
                skipped.push(SkippedEntry {
                    position: u32::try_from(position).unwrap_or(u32::MAX),
                    problem,
                });
            }
        }
    }
    Context {
        messages,
        skipped,
        degraded: None,
    }
}

/// `memory.add-messages` (and `add-message`, a batch of one): validate and encode every
/// message, then write them in one transaction that also trims and renews the TTL.
pub fn add_messages(
    host: &impl Host,
    session_id: &str,
    messages: &[Message],
) -> Result<WriteOutcome, MemoryError> {
    let settings = host.settings();
    let plan = window::plan_append(encode_all(messages, &settings)?, &settings);
    let key = session_key(&settings, session_id);
    Ok(match write(host, &key, &plan.ops) {
        Ok(applied) => WriteOutcome::Stored(window::report(&plan, &applied, &settings)),
        Err(error) => WriteOutcome::Failed(error),
    })
}

/// `memory.add-and-get-context`: the append of [`add_messages`] and the read of
/// [`get_context`] in one transaction. A failed write is not followed by a read of its own:
/// the history is degraded by the same error (a second round trip is what this saves).
pub fn add_and_get_context(
    host: &impl Host,
    session_id: &str,
    messages: &[Message],
) -> Result<Turn, MemoryError> {
    let settings = host.settings();
    let mut plan = window::plan_append(encode_all(messages, &settings)?, &settings);
    if let Some(range) = window::read_range(&settings) {
        plan.ops.push(ListOp::Read(range));
    }
    let key = session_key(&settings, session_id);
    Ok(match write(host, &key, &plan.ops) {
        Ok(applied) => Turn {
            outcome: WriteOutcome::Stored(window::report(&plan, &applied, &settings)),
            context: match applied.read {
                Some(Ok(entries)) => context_of(host, &entries),
                Some(Err(error)) => degraded(host, error),
                // A window of 0 reads nothing and keeps nothing.
                None => Context {
                    messages: Vec::new(),
                    skipped: Vec::new(),
                    degraded: None,
                },
            },
        },
        Err(error) => Turn {
            outcome: WriteOutcome::Failed(error.clone()),
            context: degraded(host, error),
        },
    })
}

/// Every message encoded as the Python original stores it, or the first refusal.
pub fn encode_all(messages: &[Message], settings: &Settings) -> Result<Vec<Vec<u8>>, MemoryError> {
    if messages.is_empty() {
        return Err(MemoryError::NoMessages);
    }
    messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            codec::encode(message, settings.max_message_bytes).map_err(|reason| {
                MemoryError::InvalidMessage((u32::try_from(index).unwrap_or(u32::MAX), reason))
            })
        })
        .collect()
}

/// `memory.clear`: delete the session's list.
pub fn clear(host: &impl Host, session_id: &str) -> WriteOutcome {
    let settings = host.settings();
    let key = session_key(&settings, session_id);
    match write(host, &key, &window::plan_clear()) {
        Ok(applied) => WriteOutcome::Stored(Stored {
            appended: 0,
            trimmed: window::saturating_u32(applied.deleted.unwrap_or(0)),
            length: 0,
            evicted: Vec::new(),
        }),
        Err(error) => WriteOutcome::Failed(error),
    }
}

fn write(host: &impl Host, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError> {
    resilience::with_retry(
        Access::Write,
        || host.apply(key, ops),
        |error| {
            host.log(
                Level::Warn,
                &format!("write failed, retrying once: {error:?}"),
            )
        },
    )
    .inspect_err(|error| host.log(Level::Warn, &format!("write failed: {error:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::FakeHost;
    use crate::types::{EntryProblem, InvalidMessage, MemberValue};

    fn user(content: &str) -> Message {
        codec::text_message("user", content)
    }

    fn contents(context: &Context) -> Vec<String> {
        context
            .messages
            .iter()
            .map(|message| match codec::member(message, "content") {
                Some(MemberValue::Text(text)) => text.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn messages_written_are_read_back_in_order_under_the_session_key() {
        let host = FakeHost::with_window(50);
        add_messages(&host, "s1", &[user("a"), user("b")]).unwrap();
        let context = get_context(&host, "s1");
        assert_eq!(contents(&context), ["a", "b"]);
        assert!(host.lists.borrow().contains_key("ai:memory:s1"));
    }

    #[test]
    fn the_window_keeps_the_newest_messages_and_reports_what_it_trimmed() {
        let host = FakeHost::with_window(2);
        add_messages(&host, "s", &[user("a"), user("b")]).unwrap();
        let outcome = add_messages(&host, "s", &[user("c")]).unwrap();
        assert_eq!(
            outcome,
            WriteOutcome::Stored(Stored {
                appended: 1,
                trimmed: 1,
                length: 2,
                evicted: Vec::new(),
            })
        );
        assert_eq!(contents(&get_context(&host, "s")), ["b", "c"]);
    }

    #[test]
    fn entries_that_are_not_messages_are_skipped_and_counted() {
        let host = FakeHost::with_window(50);
        host.lists.borrow_mut().insert(
            "ai:memory:s".to_string(),
            vec![
                br#"{"role": "user", "content": "a"}"#.to_vec(),
                b"{broken".to_vec(),
                b"42".to_vec(),
                br#"{"role": "user", "content": "b"}"#.to_vec(),
            ],
        );
        let context = get_context(&host, "s");
        assert_eq!(contents(&context), ["a", "b"]);
        assert_eq!(
            context.skipped,
            vec![
                SkippedEntry {
                    position: 1,
                    problem: EntryProblem::NotJson
                },
                SkippedEntry {
                    position: 2,
                    problem: EntryProblem::NotAnObject
                },
            ]
        );
        assert_eq!(context.degraded, None);
    }

    #[test]
    fn a_failed_read_degrades_to_an_empty_history_with_the_reason() {
        let host = FakeHost::with_window(50);
        host.failures.borrow_mut().extend([StoreError::Timeout]);
        let context = get_context(&host, "s");
        assert_eq!(context.messages, Vec::new());
        assert_eq!(context.degraded, Some(StoreError::Timeout));
    }

    #[test]
    fn a_read_survives_one_dropped_connection() {
        let host = FakeHost::with_window(50);
        add_messages(&host, "s", &[user("a")]).unwrap();
        host.failures
            .borrow_mut()
            .push_back(StoreError::OutcomeUnknown("reset".into()));
        let context = get_context(&host, "s");
        assert_eq!(
            (contents(&context), context.degraded),
            (vec!["a".to_string()], None)
        );
    }

    #[test]
    fn a_write_with_an_unknown_outcome_is_reported_not_repeated() {
        let host = FakeHost::with_window(50);
        let lost = StoreError::OutcomeUnknown("reset".into());
        host.failures.borrow_mut().push_back(lost.clone());
        let outcome = add_messages(&host, "s", &[user("a")]).unwrap();
        assert_eq!(outcome, WriteOutcome::Failed(lost));
        assert_eq!(host.calls.borrow().len(), 1);
    }

    #[test]
    fn an_invalid_message_refuses_the_whole_batch_before_any_write() {
        let host = FakeHost::with_window(50);
        let big = user(&"x".repeat(200_000));
        let error = add_messages(&host, "s", &[user("ok"), big]).unwrap_err();
        assert!(matches!(
            error,
            MemoryError::InvalidMessage((1, InvalidMessage::TooLarge(_)))
        ));
        assert!(host.calls.borrow().is_empty());
    }

    #[test]
    fn add_and_get_context_writes_and_reads_in_one_store_call() {
        let host = FakeHost::with_window(2);
        add_messages(&host, "s", &[user("a"), user("b")]).unwrap();
        host.calls.borrow_mut().clear();
        let turn = add_and_get_context(&host, "s", &[user("c")]).unwrap();
        assert_eq!(
            turn.outcome,
            WriteOutcome::Stored(Stored {
                appended: 1,
                trimmed: 1,
                length: 2,
                evicted: Vec::new(),
            })
        );
        assert_eq!(contents(&turn.context), ["b", "c"]);
        assert_eq!(host.calls.borrow().as_slice(), ["apply ai:memory:s"]);
    }

    #[test]
    fn a_failed_add_and_get_degrades_the_context_with_the_same_error() {
        let host = FakeHost::with_window(50);
        host.failures.borrow_mut().push_back(StoreError::Timeout);
        let turn = add_and_get_context(&host, "s", &[user("a")]).unwrap();
        assert_eq!(turn.outcome, WriteOutcome::Failed(StoreError::Timeout));
        assert_eq!(turn.context.degraded, Some(StoreError::Timeout));
        assert_eq!(host.calls.borrow().len(), 1, "a write is never retried");
    }

    #[test]
    fn an_empty_batch_is_refused() {
        let host = FakeHost::with_window(50);
        assert_eq!(add_messages(&host, "s", &[]), Err(MemoryError::NoMessages));
    }

    #[test]
    fn a_window_of_zero_deletes_and_reads_nothing() {
        let host = FakeHost::with_window(0);
        host.lists
            .borrow_mut()
            .insert("ai:memory:s".to_string(), vec![b"old".to_vec(); 3]);
        let outcome = add_messages(&host, "s", &[user("a"), user("b")]).unwrap();
        // The three stored entries and the two of the batch: all dropped by the window.
        assert_eq!(
            outcome,
            WriteOutcome::Stored(Stored {
                appended: 0,
                trimmed: 5,
                length: 0,
                evicted: Vec::new(),
            })
        );
        assert!(host.lists.borrow().is_empty());
        assert_eq!(get_context(&host, "s").messages, Vec::new());
        assert_eq!(host.calls.borrow().as_slice(), ["apply ai:memory:s"]);
    }

    #[test]
    fn clear_deletes_the_session_and_counts_what_it_held() {
        let host = FakeHost::with_window(50);
        add_messages(&host, "s", &[user("a"), user("b")]).unwrap();
        assert_eq!(
            clear(&host, "s"),
            WriteOutcome::Stored(Stored {
                appended: 0,
                trimmed: 2,
                length: 0,
                evicted: Vec::new(),
            })
        );
        assert!(host.lists.borrow().is_empty());
    }
}
