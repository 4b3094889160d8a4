//! Stored entries <-> WIT messages, over the shared storage format
//! ([`agent_memory_format::entry`]), which the host uses too.
//!
//! Decoding accepts everything Python's `json.loads` does and returns every member exactly (as
//! canonical JSON text); encoding writes exactly what `json.dumps` would. This module only maps
//! between the format's types and the WIT ones.

use agent_memory_format::entry::{self, ContentRef, EncodeError, NotAMessage};

use crate::types::{Content, EntryProblem, InvalidMessage, Message, SizeLimit};

/// Decode one stored entry, or say why it is not a message.
pub fn decode(bytes: &[u8]) -> Result<Message, EntryProblem> {
    let decoded = entry::decode(bytes).map_err(problem)?;
    Ok(Message {
        role: decoded.role,
        content: decoded.content.map(|content| match content {
            entry::Content::Text(text) => Content::Text(text),
            entry::Content::Json(text) => Content::Json(text),
        }),
        extra: decoded.members,
    })
}

/// Encode one message as the Python original would store it, refusing it if the result is
/// larger than `max_bytes`.
pub fn encode(message: &Message, max_bytes: u32) -> Result<Vec<u8>, InvalidMessage> {
    let content = message.content.as_ref().map(|content| match content {
        Content::Text(text) => ContentRef::Text(text),
        Content::Json(text) => ContentRef::Json(text),
    });
    let members = message
        .extra
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()));
    entry::encode(&message.role, content, members, max_bytes).map_err(invalid)
}

fn problem(reason: NotAMessage) -> EntryProblem {
    match reason {
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
        error @ EncodeError::InvalidJson { .. } => InvalidMessage::InvalidJson(error.to_string()),
        EncodeError::TooDeep { member } => InvalidMessage::TooDeep(member),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_message(role: &str, content: &str) -> Message {
        Message {
            role: role.to_string(),
            content: Some(Content::Text(content.to_string())),
            extra: Vec::new(),
        }
    }

    #[test]
    fn a_message_round_trips_with_every_member() {
        let message = Message {
            role: "assistant".to_string(),
            content: Some(Content::Json("null".to_string())),
            extra: vec![
                ("tool_calls".to_string(), r#"[{"id": "c1"}]"#.to_string()),
                (
                    "n".to_string(),
                    "123456789012345678901234567890".to_string(),
                ),
                ("f".to_string(), "0.4245191891425139".to_string()),
            ],
        };
        let bytes = encode(&message, u32::MAX).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}], "n": 123456789012345678901234567890, "f": 0.4245191891425139}"#
        );
        assert_eq!(decode(&bytes), Ok(message));
    }

    #[test]
    fn problems_and_refusals_map_to_their_wit_cases() {
        assert_eq!(decode(b"{"), Err(EntryProblem::NotJson));
        assert_eq!(decode(b"[]"), Err(EntryProblem::NotAnObject));
        assert_eq!(
            decode(br#"{"role": "user", "content": "\udc00"}"#),
            Err(EntryProblem::LoneSurrogate)
        );
        let mut message = text_message("user", "hi");
        message.extra.push(("role".into(), "1".into()));
        assert_eq!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::DuplicateMember("role".into()))
        );
        assert!(matches!(
            encode(&text_message("user", "0123456789"), 5),
            Err(InvalidMessage::TooLarge(SizeLimit { limit: 5, .. }))
        ));
        let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
        let message = Message {
            extra: vec![("x".into(), deep)],
            ..text_message("user", "")
        };
        assert_eq!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::TooDeep("x".into()))
        );
    }
}
