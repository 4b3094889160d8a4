//! How results look on a terminal.
//!
//! Everything shown to people passes through [`printable`] (or [`printable_bytes`]): stored
//! text is anyone's data, and raw control characters in it could recolour the terminal, set
//! its title, or forge output lines with a carriage return. `--json` output is exact instead.

use std::fmt::Write as _;
use std::time::Duration;

use agent_memory::{Content, Message, StoreError, Stored, Ttl};

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

/// Bytes (a Redis key) safe for a terminal: UTF-8 runs as [`printable`], other bytes as `\xNN`.
pub fn printable_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
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
    let body = match &message.content {
        Content::Text(text) => text
            .split('\n')
            .map(printable)
            .collect::<Vec<_>>()
            .join("\n    "),
        Content::Json(value) => printable(value.as_str()),
        Content::Absent => "(no content)".to_string(),
    };
    let mut line = format!("[{number}] {}: {body}", printable(&message.role));
    if message.members().len() > 0 {
        let names: Vec<String> = message.members().map(|(name, _)| printable(name)).collect();
        line.push_str(&format!("  {{+ {}}}", names.join(", ")));
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

/// Why a write failed, for people: what happened, and whether it may have been stored.
pub fn failed_write(error: &StoreError) -> String {
    if error.may_have_applied() {
        format!("{error} (it may have been stored anyway)")
    } else {
        format!("{error} (nothing was stored)")
    }
}

/// The report of a stored write.
pub fn stored(stored: &Stored) -> String {
    if stored.trimmed > 0 {
        format!(
            "stored {} (session holds {}, {} older trimmed)",
            stored.appended, stored.length, stored.trimmed
        )
    } else {
        format!(
            "stored {} (session holds {})",
            stored.appended, stored.length
        )
    }
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
