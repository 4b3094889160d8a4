//! How results look on a terminal.

use std::time::Duration;

use agent_memory::{Content, Message, StoreError, Ttl, WriteOutcome};

/// One line per message: `[n] role: text`, with non-text content and other members shown
/// compactly so tool calls are visible.
pub fn message_line(number: usize, message: &Message) -> String {
    let body = match &message.content {
        Content::Text(text) => text.replace('\n', "\n    "),
        Content::Json(value) => value.to_string(),
        Content::Absent => "(no content)".to_string(),
    };
    let mut line = format!("[{number}] {}: {body}", message.role);
    if !message.extra.is_empty() {
        let names: Vec<&str> = message.extra.keys().map(String::as_str).collect();
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

/// The report of a write.
pub fn write_outcome(outcome: &WriteOutcome) -> String {
    match outcome {
        WriteOutcome::Stored(stored) if stored.trimmed > 0 => format!(
            "stored {} (session holds {}, {} older trimmed)",
            stored.appended, stored.length, stored.trimmed
        ),
        WriteOutcome::Stored(stored) => {
            format!(
                "stored {} (session holds {})",
                stored.appended, stored.length
            )
        }
        WriteOutcome::Failed(error) => failed_write(error),
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
}
