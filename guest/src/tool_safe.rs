//! The tool-call-safe policy: a window that never splits a tool call from its results, and
//! never loses history to make room.
//!
//! Trimming the newest N messages, as the original does, can keep a tool result whose call was
//! trimmed away, and the next LLM call then fails (every provider rejects a tool result that
//! answers no call). This policy keeps the stored list itself a window that is always valid to
//! send, whoever reads it (our reads, the Python original's LRANGE, a reader polling during
//! concurrent writes):
//! - no tool result without its call before it; a kept call keeps every result stored after
//!   it (trimming only removes entries from the head); the window never starts at a result.
//!   Tool calls are recognised in OpenAI's format (`tool_calls` / `tool` messages with
//!   `tool_call_id`) and Anthropic's (`tool_use` / `tool_result` content blocks, several in one
//!   message): see [`shape`];
//! - the first message stays pinned when it is a `system` message (it counts toward the
//!   window);
//! - at most `max-messages` messages and, with the `max-tokens` setting, at most that many
//!   approximate tokens (encoded bytes / 4, rounded up). A pinned system message already
//!   stored is kept even when it alone is over the budget; while it is, writes are refused
//!   (the window has no room left), never stored by dropping the pin;
//! - a write keeps every older message that still fits beside what it stores, and the message
//!   it stores is in the window it leaves. A message that no valid window within the limits can
//!   hold — alone over the budget, a call whose results can never fit beside it, a result whose
//!   call is no longer stored — is refused with `memory-error::does-not-fit` and the reason,
//!   and nothing is written (see [`window`]). A batch larger than the window keeps its newest
//!   messages, as the original does, and reports the others as trimmed;
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
//! applied). No interleaving of tool-safe writers can leave an invalid list, and no message is
//! written twice. (Writers that trim blind, such as the default policy or the Python original,
//! can: reads then show the valid window of what they left, and the next tool-safe write
//! stores that window.)

mod shape;
pub mod window;

pub use shape::Shape;
pub use window::{Limits, Refusal, Window};

use crate::codec;
use crate::policy::{self, Host};
use crate::resilience::{self, Access};
use crate::types::{
    Context, EntryProblem, IntegerRange, Level, ListOp, MemoryError, Message, Range, SettingKind,
    SettingSpec, Settings, SkippedEntry, StoreError, Stored, Turn, WriteOutcome,
};
use crate::window::saturating_u32;

/// Attempts of read-plan-write before a write that keeps meeting concurrent writers is
/// reported as a `conflict`. Each attempt is two store calls; the host's default cap is 8.
pub const MAX_ATTEMPTS: u32 = 4;

/// The `settings.extra` name of the token budget (a positive integer).
pub const MAX_TOKENS: &str = "max-tokens";

/// The `settings.extra` name of the eviction report switch (`true` or `false`).
pub const REPORT_EVICTED: &str = "report-evicted";

/// The whole list, head to tail: what a write must see to plan its window and to expect.
const WHOLE_LIST: Range = Range { start: 0, stop: -1 };

/// The settings this policy reads, as it declares them to the host (`describe.settings`).
pub fn settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec {
            name: MAX_TOKENS.to_string(),
            accepts: SettingKind::Integer(IntegerRange {
                min: 1,
                max: i64::MAX,
            }),
            description: "most approximate tokens (encoded bytes / 4) the window holds, the \
                          pinned system message included"
                .to_string(),
        },
        SettingSpec {
            name: REPORT_EVICTED.to_string(),
            accepts: SettingKind::Boolean,
            description: "whether a write reports the messages it evicted (to summarise or \
                          archive them)"
                .to_string(),
        },
    ]
}

/// This policy's own settings, from `settings.extra`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The window's limits.
    pub limits: Limits,
    /// Whether writes report what they evicted.
    pub report_evicted: bool,
}

impl Options {
    /// The options in `settings`. The host checks them against [`settings`] before any call;
    /// should one still not parse, it is logged and ignored (the window then keeps to the
    /// message count), since a memory call must not fail over its configuration.
    pub fn from_settings(host: &impl Host, settings: &Settings) -> Self {
        let mut options = Self {
            limits: Limits {
                max_messages: settings.max_messages,
                max_tokens: None,
            },
            report_evicted: false,
        };
        for (name, value) in &settings.extra {
            match name.as_str() {
                MAX_TOKENS => match value.trim().parse::<u64>() {
                    Ok(tokens) if tokens > 0 => options.limits.max_tokens = Some(tokens),
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

/// `memory.get-context`: the session's valid window, read without writing.
pub fn get_context(host: &impl Host, session_id: &str) -> Context {
    let settings = host.settings();
    let options = Options::from_settings(host, &settings);
    if options.limits.max_messages == 0 {
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
    let window = window::read_window(&shapes, &options.limits);
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
    /// Entries that leave the session (stored ones trimmed, and older messages of the request
    /// that a batch larger than the window leaves out).
    pub trimmed: u32,
    /// Entries the session holds afterwards.
    pub length: u32,
    /// Indexes (into stored entries followed by the request's) of what leaves the session.
    pub evicted: std::ops::Range<usize>,
}

/// Plan appending `new` (encoded) to a list that holds `stored`, or say why the window cannot
/// take the newest message (its index is then into `new`).
pub fn plan_write(
    stored: &[Vec<u8>],
    new: &[Vec<u8>],
    options: &Options,
    ttl_seconds: u32,
) -> Result<WritePlan, Refusal> {
    let m = stored.len();
    let all: Vec<&Vec<u8>> = stored.iter().chain(new).collect();
    let n = all.len();
    let shapes: Vec<Shape> = all.iter().map(|entry| Shape::of_entry(entry)).collect();
    let window = window::write_window(&shapes, m, &options.limits).map_err(|refusal| Refusal {
        // Refusals only ever name a message of the request.
        index: refusal.index.saturating_sub(m),
        ..refusal
    })?;
    let kept: Vec<usize> = window.kept(n).collect();
    let appended = kept.iter().filter(|&&index| index >= m).count();
    let mut ops = vec![ListOp::Expect(stored.to_vec())];
    if kept.is_empty() {
        // A window of 0 messages: the session is not kept at all (by configuration).
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
        // The request itself is larger than the window: write the window whole.
        ops.push(ListOp::Delete);
        ops.push(ListOp::Push(
            kept.iter().map(|&index| all[index].clone()).collect(),
        ));
        ops.push(ListOp::Expire(ttl_seconds));
    }
    Ok(WritePlan {
        ops,
        appended: saturating_u32(appended),
        trimmed: saturating_u32(n - kept.len()),
        length: saturating_u32(kept.len()),
        evicted: window.evicted(),
    })
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
        let mut plan = match plan_write(&stored, &encoded, &options, settings.ttl_seconds) {
            Ok(plan) => plan,
            Err(refusal) => {
                host.log(
                    Level::Info,
                    &format!("message {} refused: {:?}", refusal.index, refusal.reason),
                );
                return Err(MemoryError::DoesNotFit((
                    saturating_u32(refusal.index),
                    refusal.reason,
                )));
            }
        };
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
