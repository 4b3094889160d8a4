//! A memory policy for agent-memory: the Python original's window, in Rust.
//!
//! Each session is a list at `key-prefix + session id`; a write appends `json.dumps`-identical
//! entries, trims the list to the newest `max-messages` and renews the TTL, in one
//! transaction; a read returns the newest `max-messages` entries, skipping (and counting) the
//! ones that are not messages. Store faults are values: a read degrades, a write reports.
//!
//! The operations are written against [`Host`], so the tests at the bottom run natively
//! (`cargo test`) on a fake store; the component's exports call them with the real imports.
//! Build the component with `agent-memory policy build .`.

use agent_memory_format::entry::{self, EncodeError, MemberRef, NotAMessage};

wit_bindgen::generate!({
    path: "wit",
    world: "policy",
    // So that tests can compare what the policy returns.
    additional_derives: [PartialEq],
});

use agent_memory::policy::log::Level;
use agent_memory::policy::store::{Applied, ListOp, Range};
use agent_memory::policy::types::{
    Context, EntryProblem, InvalidMessage, Member, MemberValue, MemoryError, Message, SettingSpec,
    Settings, SizeLimit, SkippedEntry, StoreError, Stored, Turn, WriteOutcome,
};

/// What the policy needs from its host: the imports of the `policy` world.
pub trait Host {
    /// `config.get-settings`: read on every call (one instance serves many calls).
    fn settings(&self) -> Settings;
    /// `store.read-range`.
    fn read_range(&self, key: &str, range: Range) -> Result<Vec<Vec<u8>>, StoreError>;
    /// `store.apply`.
    fn apply(&self, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError>;
    /// `log.log`.
    fn log(&self, level: Level, message: &str);
}

/// `get-context`: the newest `max-messages` messages. A read whose outcome is unknown (the
/// connection broke) is tried once more; any other fault degrades the read to empty.
pub fn get_context(host: &impl Host, session_id: &str) -> Context {
    let settings = host.settings();
    let Some(range) = window(&settings) else {
        return empty(None);
    };
    let key = format!("{}{session_id}", settings.key_prefix);
    let read = match host.read_range(&key, range) {
        Err(StoreError::OutcomeUnknown(_)) => host.read_range(&key, range),
        other => other,
    };
    match read {
        Ok(entries) => decode_all(host, &entries),
        Err(error) => degraded(host, error),
    }
}

/// `add-messages` (and `add-message`, a batch of one): every message encoded, then pushed,
/// trimmed and expired in one transaction. Writes are never retried: a retry after an unknown
/// outcome could store a message twice.
pub fn add_messages(
    host: &impl Host,
    session_id: &str,
    messages: &[Message],
) -> Result<WriteOutcome, MemoryError> {
    let settings = host.settings();
    let (ops, pushed, dropped) = append(encode_all(messages, &settings)?, &settings);
    Ok(match write(host, &settings, session_id, &ops) {
        Ok(applied) => WriteOutcome::Stored(report(&settings, &applied, pushed, dropped)),
        Err(error) => WriteOutcome::Failed(error),
    })
}

/// `add-and-get-context`: the append and the read of the result in one transaction.
pub fn add_and_get_context(
    host: &impl Host,
    session_id: &str,
    messages: &[Message],
) -> Result<Turn, MemoryError> {
    let settings = host.settings();
    let (mut ops, pushed, dropped) = append(encode_all(messages, &settings)?, &settings);
    ops.extend(window(&settings).map(ListOp::Read));
    Ok(match write(host, &settings, session_id, &ops) {
        Ok(applied) => Turn {
            outcome: WriteOutcome::Stored(report(&settings, &applied, pushed, dropped)),
            context: match applied.read {
                Some(Ok(entries)) => decode_all(host, &entries),
                Some(Err(error)) => degraded(host, error),
                None => empty(None),
            },
        },
        Err(error) => Turn {
            outcome: WriteOutcome::Failed(error.clone()),
            context: degraded(host, error),
        },
    })
}

/// `clear`: delete the session's list.
pub fn clear(host: &impl Host, session_id: &str) -> WriteOutcome {
    let settings = host.settings();
    match write(host, &settings, session_id, &[ListOp::Delete]) {
        Ok(applied) => WriteOutcome::Stored(Stored {
            appended: 0,
            trimmed: saturating(applied.deleted.unwrap_or(0)),
            length: 0,
            evicted: Vec::new(),
        }),
        Err(error) => WriteOutcome::Failed(error),
    }
}

/// The read range of the window, or none when it keeps nothing.
fn window(settings: &Settings) -> Option<Range> {
    (settings.max_messages > 0).then(|| Range {
        start: -i64::from(settings.max_messages),
        stop: -1,
    })
}

/// The transaction of an append, the messages it pushes and those of the batch it drops. A
/// window of 0 keeps nothing (`LTRIM key -0 -1` would keep everything): the list is deleted.
fn append(mut encoded: Vec<Vec<u8>>, settings: &Settings) -> (Vec<ListOp>, u32, u32) {
    let batch = saturating(encoded.len());
    let Some(range) = window(settings) else {
        return (vec![ListOp::Delete], 0, batch);
    };
    let pushed = encoded.split_off(encoded.len().saturating_sub(settings.max_messages as usize));
    let pushed_count = saturating(pushed.len());
    let ops = vec![
        ListOp::Push(pushed),
        ListOp::Trim(range),
        ListOp::Expire(settings.ttl_seconds),
    ];
    (ops, pushed_count, batch - pushed_count)
}

fn report(settings: &Settings, applied: &Applied, pushed: u32, dropped: u32) -> Stored {
    let after_push = applied.length_after_push.unwrap_or(0);
    let length = after_push.min(u64::from(settings.max_messages));
    let trimmed = (after_push - length).saturating_add(applied.deleted.unwrap_or(0));
    Stored {
        appended: pushed,
        trimmed: saturating(trimmed).saturating_add(dropped),
        length: saturating(length),
        evicted: Vec::new(),
    }
}

fn write(
    host: &impl Host,
    settings: &Settings,
    session_id: &str,
    ops: &[ListOp],
) -> Result<Applied, StoreError> {
    let key = format!("{}{session_id}", settings.key_prefix);
    host.apply(&key, ops)
        .inspect_err(|error| host.log(Level::Warn, &format!("write failed: {error:?}")))
}

/// Every message as the Python original stores it (`json.dumps` of the dict), or the first
/// refusal with its index.
fn encode_all(messages: &[Message], settings: &Settings) -> Result<Vec<Vec<u8>>, MemoryError> {
    if messages.is_empty() {
        return Err(MemoryError::NoMessages);
    }
    messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let members = message.members.iter().map(|member| {
                let value = match &member.value {
                    MemberValue::Text(text) => MemberRef::Text(text),
                    MemberValue::Json(text) => MemberRef::Json(text),
                };
                (member.name.as_str(), value)
            });
            entry::encode(members, settings.max_message_bytes)
                .map_err(|error| MemoryError::InvalidMessage((saturating(index), invalid(error))))
        })
        .collect()
}

/// The messages the entries hold, oldest first; entries that are not messages are skipped
/// with their position and reason, as the original skips them.
fn decode_all(host: &impl Host, entries: &[Vec<u8>]) -> Context {
    let mut context = empty(None);
    for (position, bytes) in entries.iter().enumerate() {
        match entry::decode(bytes) {
            Ok(decoded) => context.messages.push(Message {
                members: decoded
                    .members
                    .into_iter()
                    .map(|(name, value)| Member {
                        name,
                        value: match value {
                            entry::Member::Text(text) => MemberValue::Text(text),
                            entry::Member::Json(text) => MemberValue::Json(text),
                        },
                    })
                    .collect(),
            }),
            Err(problem) => {
                host.log(
                    Level::Warn,
                    &format!("skipped entry {position}: {problem:?}"),
                );
                context.skipped.push(SkippedEntry {
                    position: saturating(position),
                    problem: entry_problem(problem),
                });
            }
        }
    }
    context
}

fn degraded(host: &impl Host, error: StoreError) -> Context {
    host.log(Level::Warn, &format!("read failed, degraded: {error:?}"));
    empty(Some(error))
}

fn empty(degraded: Option<StoreError>) -> Context {
    Context {
        messages: Vec::new(),
        skipped: Vec::new(),
        degraded,
    }
}

fn entry_problem(problem: NotAMessage) -> EntryProblem {
    match problem {
        NotAMessage::NotJson => EntryProblem::NotJson,
        NotAMessage::TooDeep => EntryProblem::TooDeep,
        NotAMessage::LoneSurrogate => EntryProblem::LoneSurrogate,
        NotAMessage::NotAnObject => EntryProblem::NotAnObject,
        NotAMessage::NoRole => EntryProblem::NoRole,
    }
}

fn invalid(error: EncodeError) -> InvalidMessage {
    match error {
        EncodeError::TooLarge { actual, limit } => InvalidMessage::TooLarge(SizeLimit {
            what: "encoded message bytes".to_string(),
            actual,
            limit,
        }),
        EncodeError::DuplicateMember(name) => InvalidMessage::DuplicateMember(name),
        EncodeError::NoRole => InvalidMessage::NoRole,
        error @ EncodeError::InvalidJson { .. } => InvalidMessage::InvalidJson(error.to_string()),
        EncodeError::TooDeep { member } => InvalidMessage::TooDeep(member),
    }
}

fn saturating(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// The component's exports, over the real imports.
struct Window;

/// Say why before a panic traps: the host quotes an `error` log line starting with `panicked`
/// as the reason of the failed call (without it, the reason is a bare `unreachable`).
fn report_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info.payload_as_str().unwrap_or("a panic without a message");
            let place = info
                .location()
                .map(|place| format!(" at {}:{}", place.file(), place.line()))
                .unwrap_or_default();
            agent_memory::policy::log::log(Level::Error, &format!("panicked{place}: {message}"));
        }));
    });
}

struct Imports;

impl Host for Imports {
    fn settings(&self) -> Settings {
        agent_memory::policy::config::get_settings()
    }
    fn read_range(&self, key: &str, range: Range) -> Result<Vec<Vec<u8>>, StoreError> {
        agent_memory::policy::store::read_range(key, range)
    }
    fn apply(&self, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError> {
        agent_memory::policy::store::apply(key, ops)
    }
    fn log(&self, level: Level, message: &str) {
        agent_memory::policy::log::log(level, message);
    }
}

impl exports::agent_memory::policy::memory::Guest for Window {
    fn get_context(session_id: String) -> Result<Context, MemoryError> {
        report_panics();
        Ok(get_context(&Imports, &session_id))
    }
    fn add_message(session_id: String, message: Message) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        add_messages(&Imports, &session_id, std::slice::from_ref(&message))
    }
    fn add_messages(
        session_id: String,
        messages: Vec<Message>,
    ) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        add_messages(&Imports, &session_id, &messages)
    }
    fn add_and_get_context(
        session_id: String,
        messages: Vec<Message>,
    ) -> Result<Turn, MemoryError> {
        report_panics();
        add_and_get_context(&Imports, &session_id, &messages)
    }
    fn clear(session_id: String) -> Result<WriteOutcome, MemoryError> {
        report_panics();
        Ok(clear(&Imports, &session_id))
    }
}

impl exports::agent_memory::policy::describe::Guest for Window {
    fn settings() -> Vec<SettingSpec> {
        // This window reads no settings beyond the common ones; declare yours here and read
        // them from `settings.extra`.
        Vec::new()
    }
}

export!(Window);

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A list store in memory with Redis semantics for what this policy uses.
    struct FakeStore {
        lists: RefCell<std::collections::HashMap<String, Vec<Vec<u8>>>>,
        max_messages: u32,
    }

    impl FakeStore {
        fn new(max_messages: u32) -> Self {
            Self {
                lists: RefCell::default(),
                max_messages,
            }
        }
    }

    fn slice(list: &[Vec<u8>], range: Range) -> Vec<Vec<u8>> {
        let len = list.len() as i64;
        let at = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
        let (start, stop) = (at(range.start), (at(range.stop) + 1).min(len));
        list.get(start as usize..stop.max(start) as usize)
            .unwrap_or_default()
            .to_vec()
    }

    impl Host for FakeStore {
        fn settings(&self) -> Settings {
            Settings {
                max_messages: self.max_messages,
                ttl_seconds: 3600,
                key_prefix: "ai:memory:".into(),
                max_message_bytes: 1 << 20,
                extra: Vec::new(),
            }
        }
        fn read_range(&self, key: &str, range: Range) -> Result<Vec<Vec<u8>>, StoreError> {
            Ok(slice(
                self.lists.borrow().get(key).map_or(&[][..], |l| l),
                range,
            ))
        }
        fn apply(&self, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError> {
            let mut lists = self.lists.borrow_mut();
            let mut applied = Applied {
                length_after_push: None,
                deleted: None,
                read: None,
            };
            for op in ops {
                let list = lists.entry(key.to_string()).or_default();
                match op {
                    ListOp::Push(values) => {
                        list.extend(values.iter().cloned());
                        applied.length_after_push = Some(list.len() as u64);
                    }
                    ListOp::Trim(range) => *list = slice(list, *range),
                    ListOp::Delete => {
                        applied.deleted = Some(list.len() as u64);
                        list.clear();
                    }
                    ListOp::Read(range) => applied.read = Some(Ok(slice(list, *range))),
                    ListOp::Expire(_) => {}
                    other => unimplemented!("{other:?}"),
                }
            }
            Ok(applied)
        }
        fn log(&self, _: Level, _: &str) {}
    }

    fn message(role: &str, content: &str) -> Message {
        let text = |name: &str, value: &str| Member {
            name: name.into(),
            value: MemberValue::Text(value.into()),
        };
        Message {
            members: vec![text("role", role), text("content", content)],
        }
    }

    #[test]
    fn entries_are_what_python_json_dumps_writes_and_the_window_keeps_the_newest() {
        let store = FakeStore::new(2);
        for text in ["one", "two", "thrée"] {
            add_messages(&store, "s", &[message("user", text)]).unwrap();
        }
        let stored = store.lists.borrow()["ai:memory:s"].clone();
        assert_eq!(
            stored,
            [
                br#"{"role": "user", "content": "two"}"#.to_vec(),
                br#"{"role": "user", "content": "thr\u00e9e"}"#.to_vec()
            ]
        );
        let context = get_context(&store, "s");
        assert_eq!(
            context.messages,
            vec![message("user", "two"), message("user", "thrée")]
        );
    }

    #[test]
    fn an_entry_that_is_not_a_message_is_skipped_and_counted() {
        let store = FakeStore::new(50);
        store.lists.borrow_mut().insert(
            "ai:memory:s".into(),
            vec![
                b"{broken".to_vec(),
                br#"{"role": "user", "content": "hi"}"#.to_vec(),
            ],
        );
        let context = get_context(&store, "s");
        assert_eq!(context.messages, vec![message("user", "hi")]);
        assert_eq!(context.skipped[0].position, 0);
        assert_eq!(context.skipped[0].problem, EntryProblem::NotJson);
    }
}
