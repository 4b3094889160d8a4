//! The tool-call-safe policy: a window that never splits a tool call from its results.
//!
//! Trimming the newest N messages, as the original does, can keep a `tool` result whose
//! assistant `tool_calls` message was trimmed away, and the next LLM call then fails (every
//! provider rejects a tool result that answers no call). This policy keeps a window that is
//! always valid to send:
//! - the window starts at a *safe start*: not a `tool` message, and no `tool` message inside
//!   the window answers a call outside it. Trimming only ever removes entries from the head,
//!   so an assistant message with `tool_calls` that is kept keeps every result stored after it;
//! - the first message stays pinned when it is a `system` message (it counts toward the window);
//! - the window holds at most `max-messages` messages and, with the `max-tokens` setting, at
//!   most that many approximate tokens (encoded bytes / 4, rounded up); a pinned system message
//!   is kept even when it alone is over the budget. A message over the budget on its own is
//!   stored and trimmed at once (reported as trimmed): the budget is a ceiling, not a wish;
//! - with `report-evicted=true`, a write reports the messages it evicted, for a runtime to
//!   summarise or archive.
//!
//! The storage format is the original's (one `json.dumps` entry per message, RPUSH order,
//! EXPIRE renewed by every write), so the Python original reads every session, and a session
//! moves freely between this policy and the default one.
//!
//! # Concurrent writers
//!
//! The window is computed from the list as read, so the write carries an `expect` of exactly
//! those entries: the store applies the transaction (push, trim, re-pin, expire) only if the
//! list is unchanged, atomically, like Redis `WATCH` (a Lua script there). A concurrent write
//! makes it fail with `conflict`, and the policy reads again and plans anew, up to
//! [`MAX_ATTEMPTS`] times; then the write is reported failed with `conflict` (nothing was
//! applied). No interleaving can leave a split pair, and no message is written twice.
//!
//! Reads apply the same window to what they read, without writing: a session the default
//! policy wrote (which may start with an orphaned tool result) reads as a valid window.

use crate::codec;
use crate::policy::{self, Host};
use crate::resilience::{self, Access};
use crate::types::{
    Context, EntryProblem, Level, ListOp, MemoryError, Message, Range, Settings, SkippedEntry,
    StoreError, Stored, Turn, WriteOutcome,
};
use crate::window::saturating_u32;
use agent_memory_format::json::{self, Value};

/// Attempts of read-plan-write before a write that keeps meeting concurrent writers is
/// reported as a `conflict`. Each attempt is two store calls; the host's default cap is 8.
pub const MAX_ATTEMPTS: u32 = 4;

/// The `settings.extra` name of the token budget (a positive integer).
pub const MAX_TOKENS: &str = "max-tokens";

/// The `settings.extra` name of the eviction report switch (`true` or `false`).
pub const REPORT_EVICTED: &str = "report-evicted";

/// The whole list, head to tail: what a write must see to plan its window and to expect.
const WHOLE_LIST: Range = Range { start: 0, stop: -1 };

/// This policy's own settings, from `settings.extra`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Most messages the window holds (`settings.max-messages`).
    pub max_messages: u32,
    /// Most approximate tokens the window holds, if set.
    pub max_tokens: Option<u64>,
    /// Whether writes report what they evicted.
    pub report_evicted: bool,
}

impl Options {
    /// The options in `settings`. A value that does not parse is logged and ignored (the
    /// window then falls back to the message count alone), since a memory call must not fail
    /// over its configuration; unknown names are logged too.
    pub fn from_settings(host: &impl Host, settings: &Settings) -> Self {
        let mut options = Self {
            max_messages: settings.max_messages,
            max_tokens: None,
            report_evicted: false,
        };
        for (name, value) in &settings.extra {
            match name.as_str() {
                MAX_TOKENS => match value.trim().parse::<u64>() {
                    Ok(tokens) if tokens > 0 => options.max_tokens = Some(tokens),
                    _ => host.log(
                        Level::Error,
                        &format!(
                            "setting {MAX_TOKENS}={value:?} is not a positive integer; ignored"
                        ),
                    ),
                },
                REPORT_EVICTED => match value.trim() {
                    "true" => options.report_evicted = true,
                    "false" => options.report_evicted = false,
                    _ => host.log(
                        Level::Error,
                        &format!(
                            "setting {REPORT_EVICTED}={value:?} is not true or false; ignored"
                        ),
                    ),
                },
                _ => host.log(Level::Warn, &format!("unknown setting {name:?}; ignored")),
            }
        }
        options
    }
}

/// What the window needs to know about one stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// A message with role `system`.
    pub system: bool,
    /// A message with role `tool`.
    pub tool: bool,
    /// Its `tool_call_id`, for a tool message that has a string one.
    pub answers: Option<String>,
    /// The ids of its `tool_calls`, for an assistant message that calls tools.
    pub calls: Vec<String>,
    /// Approximate tokens: encoded bytes / 4, rounded up.
    pub tokens: u64,
}

impl Shape {
    /// The shape of a stored entry; an entry that is not a message is neutral (it may start a
    /// window, and only its size counts).
    pub fn of_entry(entry: &[u8]) -> Self {
        Self::of_decoded(&codec::decode(entry), entry.len())
    }

    /// The shape of an entry of `len` bytes already decoded (for callers that keep the
    /// messages, so that each entry is decoded once).
    pub fn of_decoded(decoded: &Result<Message, EntryProblem>, len: usize) -> Self {
        let tokens = tokens(len);
        match decoded {
            Ok(message) => Self {
                tokens,
                ..Self::of_message(message)
            },
            Err(_) => Self {
                tokens,
                ..Self::default()
            },
        }
    }

    /// The shape of a message (its `tokens` left at 0: they come from the encoded entry).
    pub fn of_message(message: &Message) -> Self {
        let member = |name: &str| {
            message
                .extra
                .iter()
                .find(|(member, _)| member == name)
                .and_then(|(_, text)| json::loads_str(text, json::MAX_READ_DEPTH).ok())
        };
        let tool = message.role == "tool";
        Self {
            system: message.role == "system",
            tool,
            answers: tool
                .then(|| member("tool_call_id"))
                .flatten()
                .and_then(|value| match value {
                    Value::Str(id) => Some(id),
                    _ => None,
                }),
            calls: if message.role == "assistant" {
                member("tool_calls").map(call_ids).unwrap_or_default()
            } else {
                Vec::new()
            },
            tokens: 0,
        }
    }
}

/// The `id`s of a `tool_calls` array.
fn call_ids(calls: Value) -> Vec<String> {
    let Value::Array(calls) = calls else {
        return Vec::new();
    };
    calls
        .into_iter()
        .filter_map(|call| match call {
            Value::Object(members) => members.into_iter().find_map(|(name, value)| match value {
                Value::Str(id) if name == "id" => Some(id),
                _ => None,
            }),
            _ => None,
        })
        .collect()
}

fn tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// The window over a list of `n` entries: the pinned head, if any, and the tail kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Whether entry 0 (a system message) is kept in front of the tail.
    pub pinned: bool,
    /// The first entry of the kept tail; entries `start..` are kept. Entries from the pin (or
    /// 0) up to `start` are evicted.
    pub start: usize,
}

impl Window {
    /// Entries the window holds.
    pub fn len(&self, n: usize) -> usize {
        usize::from(self.pinned) + (n - self.start)
    }

    /// Whether the window holds nothing.
    pub fn is_empty(&self, n: usize) -> bool {
        self.len(n) == 0
    }

    /// The evicted entries' indexes.
    pub fn evicted(&self) -> std::ops::Range<usize> {
        usize::from(self.pinned)..self.start
    }
}

/// The largest valid window over `shapes` (oldest first) within `options`.
pub fn window(shapes: &[Shape], options: &Options) -> Window {
    let n = shapes.len();
    if options.max_messages == 0 {
        return Window {
            pinned: false,
            start: n,
        };
    }
    let pinned = shapes.first().is_some_and(|first| first.system);
    let first = usize::from(pinned);
    // The pinned message counts toward both limits.
    let mut messages_left = options.max_messages as usize - usize::from(pinned);
    let mut tokens_left = options
        .max_tokens
        .map(|budget| budget.saturating_sub(if pinned { shapes[0].tokens } else { 0 }));
    // The oldest start the limits allow: walk back from the tail while both still fit.
    let mut start = n;
    while start > first && messages_left > 0 {
        let tokens = shapes[start - 1].tokens;
        match &mut tokens_left {
            Some(left) if *left < tokens => break,
            Some(left) => *left -= tokens,
            None => {}
        }
        messages_left -= 1;
        start -= 1;
    }
    let unsafe_starts = unsafe_starts(shapes);
    while start < n && unsafe_starts[start] {
        start += 1;
    }
    Window { pinned, start }
}

/// For each index, whether a window may not start there: it is a `tool` message, or a `tool`
/// message at or after it answers a call made before it.
fn unsafe_starts(shapes: &[Shape]) -> Vec<bool> {
    let n = shapes.len();
    // A difference array: +1 where an unsafe interval opens, -1 past where it closes.
    let mut delta = vec![0i64; n + 1];
    let mut mark = |from: usize, to: usize| {
        delta[from] += 1;
        delta[to + 1] -= 1;
    };
    // The newest assistant message declaring each call id, as the scan reaches it.
    let mut declared: Vec<(&str, usize)> = Vec::new();
    for (index, shape) in shapes.iter().enumerate() {
        if shape.tool {
            let call = shape.answers.as_deref().and_then(|id| {
                declared
                    .iter()
                    .rev()
                    .find(|(declared_id, _)| *declared_id == id)
                    .map(|(_, at)| *at)
            });
            match call {
                // Starting anywhere after the call, up to this result, would orphan it.
                Some(call) => mark(call + 1, index),
                // An orphan already: it can never start a window.
                None => mark(index, index),
            }
        }
        for id in &shape.calls {
            declared.push((id.as_str(), index));
        }
    }
    let mut depth = 0;
    delta[..n]
        .iter()
        .map(|change| {
            depth += change;
            depth > 0
        })
        .collect()
}

/// `memory.get-context`: the session's valid window, read without writing.
pub fn get_context(host: &impl Host, session_id: &str) -> Context {
    let settings = host.settings();
    let options = Options::from_settings(host, &settings);
    if options.max_messages == 0 {
        return empty_context();
    }
    let key = policy::session_key(&settings, session_id);
    match read_all(host, &key) {
        Ok(entries) => windowed_context(host, &entries, &options),
        Err(error) => policy::degraded(host, error),
    }
}

fn empty_context() -> Context {
    Context {
        messages: Vec::new(),
        skipped: Vec::new(),
        degraded: None,
    }
}

fn read_all(host: &impl Host, key: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    resilience::with_retry(
        Access::Read,
        || host.read_range(key, WHOLE_LIST),
        |error| {
            host.log(
                Level::Warn,
                &format!("read failed, retrying once: {error:?}"),
            )
        },
    )
}

/// The context of the window over `entries`, with skipped entries at their positions in
/// `entries`.
fn windowed_context(host: &impl Host, entries: &[Vec<u8>], options: &Options) -> Context {
    // Each entry is decoded once: for its shape, and for the context if the window keeps it.
    let decoded: Vec<Result<Message, EntryProblem>> =
        entries.iter().map(|entry| codec::decode(entry)).collect();
    let shapes: Vec<Shape> = decoded
        .iter()
        .zip(entries)
        .map(|(decoded, entry)| Shape::of_decoded(decoded, entry.len()))
        .collect();
    let window = window(&shapes, options);
    let pinned = usize::from(window.pinned);
    let mut context = empty_context();
    for (position, decoded) in decoded.into_iter().enumerate() {
        if position >= pinned && position < window.start {
            continue;
        }
        match decoded {
            Ok(message) => context.messages.push(message),
            Err(problem) => {
                host.log(
                    Level::Warn,
                    &format!("skipped stored entry {position}: {problem:?}"),
                );
                context.skipped.push(SkippedEntry {
                    position: saturating_u32(position),
                    problem,
                });
            }
        }
    }
    context
}

/// A planned write: the transaction, and what it will have done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    /// The transaction, starting with the expectation.
    pub ops: Vec<ListOp>,
    /// Messages of the request that end up stored.
    pub appended: u32,
    /// Entries that leave the session (stored ones trimmed, and messages of the request that
    /// fall outside the window at once).
    pub trimmed: u32,
    /// Entries the session holds afterwards.
    pub length: u32,
    /// Indexes (into stored entries followed by the request's) of what leaves the session.
    pub evicted: std::ops::Range<usize>,
}

/// Plan appending `new` (encoded) to a list that holds `stored`.
pub fn plan_write(
    stored: &[Vec<u8>],
    new: &[Vec<u8>],
    options: &Options,
    ttl_seconds: u32,
) -> WritePlan {
    let m = stored.len();
    let all: Vec<&Vec<u8>> = stored.iter().chain(new).collect();
    let n = all.len();
    let shapes: Vec<Shape> = all.iter().map(|entry| Shape::of_entry(entry)).collect();
    let window = window(&shapes, options);
    let kept: Vec<usize> = (0..usize::from(window.pinned))
        .chain(window.start..n)
        .collect();
    let appended = kept.iter().filter(|&&index| index >= m).count();
    let mut ops = vec![ListOp::Expect(stored.to_vec())];
    if kept.is_empty() {
        ops.push(ListOp::Delete);
    } else if window.start == usize::from(window.pinned) {
        // Nothing leaves: append.
        ops.push(ListOp::Push(new.to_vec()));
        ops.push(ListOp::Expire(ttl_seconds));
    } else if window.start <= m {
        // Trim stored entries from the head, and put the pinned message back in front (a
        // pinned message is entry 0, so it is a stored one here: `start` is past it).
        ops.push(ListOp::Push(new.to_vec()));
        ops.push(ListOp::Trim(Range {
            start: i64::try_from(window.start).unwrap_or(i64::MAX),
            stop: -1,
        }));
        if window.pinned {
            ops.push(ListOp::PushFront(vec![stored[0].clone()]));
        }
        ops.push(ListOp::Expire(ttl_seconds));
    } else {
        // Part of the request itself falls outside the window: write the window whole.
        ops.push(ListOp::Delete);
        ops.push(ListOp::Push(
            kept.iter().map(|&index| all[index].clone()).collect(),
        ));
        ops.push(ListOp::Expire(ttl_seconds));
    }
    let evicted = window.evicted();
    WritePlan {
        ops,
        appended: saturating_u32(appended),
        trimmed: saturating_u32(n - kept.len()),
        length: saturating_u32(kept.len()),
        evicted,
    }
}

/// `memory.add-messages` (and `add-message`).
pub fn add_messages(
    host: &impl Host,
    session_id: &str,
    messages: &[Message],
) -> Result<WriteOutcome, MemoryError> {
    write(host, session_id, messages, false).map(|(outcome, _)| outcome)
}

/// `memory.add-and-get-context`: the write, and the window it leaves, read in its transaction.
pub fn add_and_get_context(
    host: &impl Host,
    session_id: &str,
    messages: &[Message],
) -> Result<Turn, MemoryError> {
    let (outcome, context) = write(host, session_id, messages, true)?;
    Ok(Turn {
        context: context.unwrap_or_else(|| match &outcome {
            WriteOutcome::Failed(error) => policy::degraded(host, error.clone()),
            WriteOutcome::Stored(_) => empty_context(),
        }),
        outcome,
    })
}

/// Read, plan and apply (with the expectation), again on a conflict; with `read_back`, the
/// transaction also reads the window it leaves.
fn write(
    host: &impl Host,
    session_id: &str,
    messages: &[Message],
    read_back: bool,
) -> Result<(WriteOutcome, Option<Context>), MemoryError> {
    let settings = host.settings();
    let encoded = policy::encode_all(messages, &settings)?;
    let options = Options::from_settings(host, &settings);
    let key = policy::session_key(&settings, session_id);
    let mut attempt = 1;
    loop {
        let stored = match read_all(host, &key) {
            Ok(stored) => stored,
            Err(error) => return Ok((WriteOutcome::Failed(error), None)),
        };
        let mut plan = plan_write(&stored, &encoded, &options, settings.ttl_seconds);
        if read_back && plan.length > 0 {
            plan.ops.push(ListOp::Read(WHOLE_LIST));
        }
        match host.apply(&key, &plan.ops) {
            Ok(applied) => {
                let evicted = if options.report_evicted {
                    evicted_messages(&stored, &encoded, plan.evicted.clone())
                } else {
                    Vec::new()
                };
                let outcome = WriteOutcome::Stored(Stored {
                    appended: plan.appended,
                    trimmed: plan.trimmed,
                    length: plan.length,
                    evicted,
                });
                let context = read_back.then(|| match applied.read {
                    Some(Ok(entries)) => windowed_context(host, &entries, &options),
                    Some(Err(error)) => policy::degraded(host, error),
                    None => empty_context(),
                });
                return Ok((outcome, context));
            }
            Err(StoreError::Conflict) if attempt < MAX_ATTEMPTS => {
                host.log(
                    Level::Debug,
                    &format!(
                        "another writer changed the session; planning again (attempt {attempt})"
                    ),
                );
                attempt += 1;
            }
            Err(error) => {
                host.log(Level::Warn, &format!("write failed: {error:?}"));
                return Ok((WriteOutcome::Failed(error), None));
            }
        }
    }
}

/// The messages among `stored` followed by `new` at `indexes` (entries that are not messages
/// are left out: they are counted in `trimmed`).
fn evicted_messages(
    stored: &[Vec<u8>],
    new: &[Vec<u8>],
    indexes: std::ops::Range<usize>,
) -> Vec<Message> {
    stored
        .iter()
        .chain(new)
        .skip(indexes.start)
        .take(indexes.len())
        .filter_map(|entry| codec::decode(entry).ok())
        .collect()
}

/// `memory.clear`, as the default policy does it.
pub fn clear(host: &impl Host, session_id: &str) -> WriteOutcome {
    policy::clear(host, session_id)
}

#[cfg(test)]
mod tests;
