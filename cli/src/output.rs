//! How results look on a terminal.
//!
//! Everything shown to people passes through [`printable`] (or [`printable_bytes`]): stored
//! text is anyone's data, and raw control characters in it could recolour the terminal, set
//! its title, or forge output lines with a carriage return. `--json` output is exact instead.

use std::fmt::Write as _;
use std::time::Duration;

use agent_memory::{
    Message, StoreError, Stored, message::EntryProblem, message::MemberValue, report::WindowLimit,
    report::WindowRefusal, store::Ttl,
};

/// `text` safe for a terminal: control characters (C0, DEL, C1) and the Unicode bidirectional
/// overrides are shown as escapes (`\u{1b}`); everything else as it is.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        push_printable(&mut out, ch);
    }
    out
}

fn push_printable(out: &mut String, ch: char) {
    let bidi = matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if ch.is_control() || bidi {
        let _ = write!(out, "{}", ch.escape_default());
    } else {
        out.push(ch);
    }
}

/// Bytes (a Redis key) safe for a terminal: UTF-8 runs as [`printable`], other bytes as `\xNN`,
/// and a backslash as `\\`, so that the byte 0xff (`\xff`) and the text `\xff` (`\\xff`)
/// never look alike.
pub fn printable_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if ch == '\\' {
                out.push_str("\\\\");
                continue;
            }
            push_printable(&mut out, ch);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// One line per message: `[n] role: text`, with non-text content and other members shown
/// compactly so tool calls are visible. A newline in the text continues on an indented line,
/// so a message cannot pass off text as a line of its own.
pub fn message_line(number: usize, message: &Message) -> String {
    let body = match message.content() {
        Some(MemberValue::Text(text)) => text
            .split('\n')
            .map(printable)
            .collect::<Vec<_>>()
            .join("\n    "),
        Some(MemberValue::Json(value)) => printable(value.as_str()),
        None => "(no content)".to_string(),
    };
    let mut line = format!("[{number}] {}: {body}", printable(message.role()));
    let others: Vec<String> = message
        .members()
        .filter(|(name, _)| *name != "role" && *name != "content")
        .map(|(name, _)| printable(name))
        .collect();
    if !others.is_empty() {
        line.push_str(&format!("  {{+ {}}}", others.join(", ")));
    }
    line
}

/// A time to live for people.
pub fn ttl(ttl: Ttl) -> String {
    match ttl {
        Ttl::Missing => "no such session".to_string(),
        Ttl::Persistent => "never expires (no TTL)".to_string(),
        Ttl::ExpiresIn(left) => format!("expires in {}", duration(left)),
    }
}

/// `1h 02m 03s`, `4m 05s`, `6s`.
pub fn duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m {seconds:02}s"),
        _ => format!("{hours}h {minutes:02}m {seconds:02}s"),
    }
}

/// `bytes` for people: `830 B`, `130.2 KB`, `18.5 MB` (decimal units, as `ls -h --si`).
pub fn byte_size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} KB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

/// Loads that take longer than this show progress on stderr: a cached or small policy loads
/// well within it, while a Python or JavaScript policy compiles for tens of seconds the first
/// time.
const QUIET_LOAD: Duration = Duration::from_secs(2);

/// How often a long load says it is still going.
const LOAD_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Run `load` (the compile of `what`), saying on stderr that it is compiling if it takes
/// longer than [`QUIET_LOAD`], every [`LOAD_PROGRESS_EVERY`] after, and how long it took.
pub fn with_progress<T>(what: &str, load: impl FnOnce() -> T) -> T {
    let done = std::sync::Mutex::new(false);
    let finished = std::sync::Condvar::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let started = std::time::Instant::now();
            let mut wait = QUIET_LOAD;
            let mut said = false;
            let Ok(mut guard) = done.lock() else { return };
            loop {
                let Ok((next, _)) = finished.wait_timeout_while(guard, wait, |done| !*done) else {
                    return;
                };
                guard = next;
                if *guard {
                    if said {
                        eprintln!("compiled in {} s", started.elapsed().as_secs());
                    }
                    return;
                }
                if said {
                    eprintln!("  still compiling: {} s", started.elapsed().as_secs());
                } else {
                    eprintln!("compiling {what}: done once, then cached for later runs");
                    said = true;
                }
                wait = LOAD_PROGRESS_EVERY;
            }
        });
        let result = load();
        if let Ok(mut done) = done.lock() {
            *done = true;
        }
        finished.notify_all();
        result
    })
}

/// Why a write failed, for people: what happened, and whether it may have been stored.
pub fn failed_write(error: &StoreError) -> String {
    if error.may_have_applied() {
        format!("{error} (it may have been stored anyway)")
    } else {
        format!("{error} (nothing was stored)")
    }
}

/// The report of a stored write of `given` messages: how many were stored, what the session
/// holds, and what left it. A batch larger than the window says how many of its own messages
/// the window kept.
pub fn stored(stored: &Stored, given: usize) -> String {
    let appended = stored.appended as usize;
    let left_out = given.saturating_sub(appended);
    let older = (stored.trimmed as usize).saturating_sub(left_out);
    if stored.length == 0 && appended == 0 {
        // A window of 0 messages: memory is off by configuration.
        return format!(
            "stored 0 of {given} (the window keeps no messages; {older} older deleted)"
        );
    }
    let mut notes = vec![format!("session holds {}", stored.length)];
    if left_out > 0 {
        notes.push(format!("{left_out} of the {given} left out by the window"));
    }
    if older > 0 {
        notes.push(format!("{older} older trimmed"));
    }
    let count = if left_out > 0 {
        format!("{appended} of {given}")
    } else {
        appended.to_string()
    };
    format!("stored {count} ({})", notes.join(", "))
}

/// What to do about a message the window refused.
pub fn does_not_fit_hint(reason: &WindowRefusal) -> &'static str {
    match reason {
        WindowRefusal::Overflow {
            limit: WindowLimit::Tokens,
            ..
        } => " (shorten the message, or raise --policy-setting max-tokens)",
        WindowRefusal::Overflow {
            limit: WindowLimit::Messages,
            ..
        } => " (raise --max-messages, or make fewer parallel tool calls)",
        WindowRefusal::OrphanResult(_) => {
            " (store the call with its results, or keep a window large enough for the turn)"
        }
        WindowRefusal::PolicyRule(_) => "",
    }
}

/// Counts of each problem, in a fixed order, as `2 not JSON, 1 no string role`.
pub fn problem_counts(problems: impl Iterator<Item = EntryProblem>) -> String {
    let mut counts: Vec<(EntryProblem, usize)> = Vec::new();
    for problem in problems {
        match counts.iter_mut().find(|(known, _)| *known == problem) {
            Some((_, count)) => *count += 1,
            None => counts.push((problem, 1)),
        }
    }
    counts
        .iter()
        .map(|(problem, count)| format!("{count} {problem}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_secs(6)), "6s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(duration(Duration::from_secs(3723)), "1h 02m 03s");
    }

    #[test]
    fn a_write_report_says_what_was_stored_and_what_left() {
        let report = |appended, trimmed, length, given| {
            stored(
                &Stored {
                    appended,
                    trimmed,
                    length,
                    evicted: Vec::new(),
                },
                given,
            )
        };
        assert_eq!(report(1, 0, 2, 1), "stored 1 (session holds 2)");
        assert_eq!(
            report(1, 2, 3, 1),
            "stored 1 (session holds 3, 2 older trimmed)"
        );
        assert_eq!(
            report(2, 3, 3, 3),
            "stored 2 of 3 (session holds 3, 1 of the 3 left out by the window, 2 older trimmed)"
        );
        assert_eq!(
            report(0, 4, 0, 1),
            "stored 0 of 1 (the window keeps no messages; 3 older deleted)"
        );
    }

    #[test]
    fn messages_show_their_extra_members() {
        let message = Message::assistant("hi").with("name", serde_json::json!("bot"));
        assert_eq!(message_line(1, &message), "[1] assistant: hi  {+ name}");
    }

    #[test]
    fn terminal_control_sequences_are_shown_not_obeyed() {
        let hostile = Message::new(
            "user\u{1b}[31m",
            "title\u{1b}]0;pwned\u{7}\rforged\u{9b}2J\u{202e}txt\nnext",
        );
        let line = message_line(1, &hostile);
        assert!(
            !line.chars().any(|ch| ch.is_control() && ch != '\n'),
            "{line:?}"
        );
        assert!(!line.contains('\u{202e}'));
        assert_eq!(
            line,
            "[1] user\\u{1b}[31m: title\\u{1b}]0;pwned\\u{7}\\rforged\\u{9b}2J\\u{202e}txt\n    next"
        );
    }

    #[test]
    fn keys_that_are_not_utf8_are_shown_byte_by_byte() {
        assert_eq!(printable_bytes(b"ai:\xff\x1b:x"), "ai:\\xff\\u{1b}:x");
    }
}
