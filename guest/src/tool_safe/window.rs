//! The tool-safe window: which entries of a session are kept, and why a message cannot be.
//!
//! A window is the pinned system message (the list's first entry, when it is one) and a tail
//! of the list. A tail is *valid* when every tool result in it answers calls made inside it,
//! before it: since a tail keeps everything after its start, a call that is kept keeps every
//! result stored after it, and a result is never kept without its call. The window is the
//! longest valid tail within the limits (`max-messages`, and `max-tokens` when set; the pinned
//! message counts toward both).
//!
//! A write plans the window over the stored entries followed by the new ones, and that window
//! must keep the newest message: a write never stores a message by trimming it away at once,
//! and never wipes history to make room. When no valid window within the limits keeps it, the
//! write is refused with the reason ([`Refusal`]) and nothing is written.

use std::collections::HashMap;

use super::shape::Shape;
use crate::types::{WindowLimit, WindowOverflow, WindowRefusal};

/// The limits of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most messages the window holds, the pinned one included.
    pub max_messages: u32,
    /// Most approximate tokens it holds, the pinned message included, if set.
    pub max_tokens: Option<u64>,
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

    /// The kept entries' indexes, in order.
    pub fn kept(&self, n: usize) -> impl Iterator<Item = usize> {
        (0..usize::from(self.pinned)).chain(self.start..n)
    }
}

/// Why a write cannot keep its newest message: the message (its index among all the entries
/// planned over), and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The index of the refused message among the entries planned over (stored, then new).
    pub index: usize,
    /// Why.
    pub reason: WindowRefusal,
}

/// The window a read shows of the stored entries: the longest valid tail within `limits`
/// (possibly empty), behind the pinned message.
pub fn read_window(shapes: &[Shape], limits: &Limits) -> Window {
    let n = shapes.len();
    if limits.max_messages == 0 {
        return Window {
            pinned: false,
            start: n,
        };
    }
    let pinned = shapes.first().is_some_and(|first| first.system);
    let unsafe_starts = unsafe_starts(shapes, usize::from(pinned));
    let mut start = oldest_start_within(shapes, pinned, limits);
    while start < n && unsafe_starts[start] {
        start += 1;
    }
    Window { pinned, start }
}

/// The window a write leaves: over `shapes` (the `stored` entries, then the new ones), the
/// longest valid tail within `limits` that keeps the newest entry; or why there is none.
///
/// A window of 0 messages is the one exception: it keeps nothing by configuration, and a
/// write deletes the session (as the default policy does).
pub fn write_window(shapes: &[Shape], stored: usize, limits: &Limits) -> Result<Window, Refusal> {
    let n = shapes.len();
    if limits.max_messages == 0 || n == 0 {
        return Ok(Window {
            pinned: false,
            start: n,
        });
    }
    let pinned = shapes[0].system;
    let first = usize::from(pinned);
    let newest = n - 1;
    // A new system message that would be pinned is held to the budget like any other message;
    // only one already stored is kept over it (see `oldest_start_within`).
    if pinned && stored == 0 {
        let tokens = shapes[0].tokens;
        if let Some(max) = limits.max_tokens.filter(|&max| tokens > max) {
            return Err(overflow(0, WindowLimit::Tokens, tokens, max));
        }
    }
    // A call whose results can never fit beside it is refused before its results arrive.
    for (index, shape) in shapes.iter().enumerate().skip(stored) {
        if shape.result_messages_needed > 0 {
            let needed = (first + 1 + shape.result_messages_needed) as u64;
            let allowed = u64::from(limits.max_messages);
            if needed > allowed {
                return Err(overflow(index, WindowLimit::Messages, needed, allowed));
            }
        }
    }
    let unsafe_starts = unsafe_starts(shapes, first);
    let mut start = oldest_start_within(shapes, pinned, limits);
    while start < n && unsafe_starts[start] {
        start += 1;
    }
    if start <= newest || newest == 0 && pinned {
        return Ok(Window { pinned, start });
    }
    Err(why_not(shapes, first, &unsafe_starts, limits))
}

/// Why no window within the limits keeps the newest entry.
fn why_not(shapes: &[Shape], first: usize, unsafe_starts: &[bool], limits: &Limits) -> Refusal {
    let newest = shapes.len() - 1;
    // The shortest valid tail that keeps the newest entry, whatever its size.
    let Some(start) = (first..=newest).rev().find(|&start| !unsafe_starts[start]) else {
        return Refusal {
            index: newest,
            reason: WindowRefusal::OrphanResult(blocking_orphan(shapes, first, newest)),
        };
    };
    let pin = &shapes[..first];
    let needed_messages = (pin.len() + shapes.len() - start) as u64;
    let allowed_messages = u64::from(limits.max_messages);
    if needed_messages > allowed_messages {
        return overflow(
            newest,
            WindowLimit::Messages,
            needed_messages,
            allowed_messages,
        );
    }
    let needed_tokens = pin
        .iter()
        .chain(&shapes[start..])
        .map(|shape| shape.tokens)
        .sum();
    overflow(
        newest,
        WindowLimit::Tokens,
        needed_tokens,
        limits.max_tokens.unwrap_or(u64::MAX),
    )
}

/// The call id that keeps every window from holding the newest entry: one the newest result
/// answers that no entry before it declares, else the first orphan among the entries.
fn blocking_orphan(shapes: &[Shape], first: usize, newest: usize) -> String {
    let declared = |id: &str, before: usize| {
        shapes[first..before]
            .iter()
            .any(|shape| shape.calls.iter().any(|call| call == id))
    };
    for index in std::iter::once(newest).chain(first..newest) {
        if let Some(ids) = &shapes[index].result {
            if ids.is_empty() {
                return String::new();
            }
            if let Some(id) = ids.iter().find(|id| !declared(id, index)) {
                return id.clone();
            }
        }
    }
    String::new()
}

fn overflow(index: usize, limit: WindowLimit, needed: u64, allowed: u64) -> Refusal {
    Refusal {
        index,
        reason: WindowRefusal::Overflow(WindowOverflow {
            limit,
            needed,
            allowed,
        }),
    }
}

/// The oldest start of a tail that fits the limits beside the pin (if `pinned`). A pinned
/// message over the token budget on its own leaves no room for a tail, but is itself kept.
fn oldest_start_within(shapes: &[Shape], pinned: bool, limits: &Limits) -> usize {
    let first = usize::from(pinned);
    let mut messages_left = (limits.max_messages as usize).saturating_sub(first);
    let mut tokens_left = limits
        .max_tokens
        .map(|budget| budget.saturating_sub(if pinned { shapes[0].tokens } else { 0 }));
    let mut start = shapes.len();
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
    start
}

/// For each index from `first`, whether a tail may not start there: some tool result at or
/// after it answers a call that is not made between the start and the result. (Entries before
/// `first`, the pin, are never starts.)
pub fn unsafe_starts(shapes: &[Shape], first: usize) -> Vec<bool> {
    let n = shapes.len();
    // A difference array: +1 where an unsafe interval opens, -1 past where it closes.
    let mut delta = vec![0i64; n + 1];
    let mut mark = |from: usize, to: usize| {
        if from <= to {
            delta[from] += 1;
            delta[to + 1] -= 1;
        }
    };
    // The newest entry declaring each call id, as the scan reaches it.
    let mut declared: HashMap<&str, usize> = HashMap::new();
    for (index, shape) in shapes.iter().enumerate().skip(first) {
        if let Some(ids) = &shape.result {
            // A tail that keeps this result must start at or before each call it answers.
            let calls: Option<Vec<usize>> = ids
                .iter()
                .map(|id| declared.get(id.as_str()).copied())
                .collect();
            match calls.and_then(|calls| calls.into_iter().min()) {
                Some(oldest_call) => mark(oldest_call + 1, index),
                // A call nobody made (or no id at all): an orphan in every tail that keeps it,
                // so every start up to it is unsafe.
                None => mark(first, index),
            }
        }
        for id in &shape.calls {
            declared.insert(id.as_str(), index);
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
