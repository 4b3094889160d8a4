//! Stored entries <-> WIT messages, over the shared storage format
//! ([`agent_memory_format::entry`]), which the host uses too, and the few questions policies
//! ask of a message (its role, one member).
//!
//! Decoding accepts everything Python's `json.loads` does and returns every member exactly, in
//! its order (strings as text, other values as canonical JSON text); encoding writes exactly
//! what `json.dumps` would of the same dict. This module only maps between the format's types
//! and the WIT ones.

use agent_memory_format::entry::{self, EncodeError, MemberRef, NotAMessage, ROLE};

use crate::types::{EntryProblem, InvalidMessage, Member, MemberValue, Message, SizeLimit};

/// Decode one stored entry, or say why it is not a message.
pub fn decode(bytes: &[u8]) -> Result<Message, EntryProblem> {
    let decoded = entry::decode(bytes).map_err(problem)?;
    Ok(Message {
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
    })
}

/// Encode one message as the Python original would store it, refusing it if the result is
/// larger than `max_bytes`.
pub fn encode(message: &Message, max_bytes: u32) -> Result<Vec<u8>, InvalidMessage> {
    let members = message.members.iter().map(|member| {
        let value = match &member.value {
            MemberValue::Text(text) => MemberRef::Text(text),
            MemberValue::Json(text) => MemberRef::Json(text),
        };
        (member.name.as_str(), value)
    });
    entry::encode(members, max_bytes).map_err(invalid)
}

/// The value of the member called `name`, if the message has one.
pub fn member<'a>(message: &'a Message, name: &str) -> Option<&'a MemberValue> {
    message
        .members
        .iter()
        .find(|member| member.name == name)
        .map(|member| &member.value)
}

/// The message's `role`, when it is text (as in every message decoded or accepted).
pub fn role(message: &Message) -> Option<&str> {
    match member(message, ROLE) {
        Some(MemberValue::Text(role)) => Some(role),
        _ => None,
    }
}

/// A message of `role` with text `content`, in the original's order (`role`, `content`).
pub fn text_message(role: &str, content: &str) -> Message {
    Message {
        members: vec![
            Member {
                name: ROLE.to_string(),
                value: MemberValue::Text(role.to_string()),
            },
            Member {
                name: entry::CONTENT.to_string(),
                value: MemberValue::Text(content.to_string()),
            },
        ],
    }
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
        EncodeError::NoRole => InvalidMessage::NoRole,
        error @ EncodeError::InvalidJson { .. } => InvalidMessage::InvalidJson(error.to_string()),
        EncodeError::TooDeep { member } => InvalidMessage::TooDeep(member),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(name: &str, text: &str) -> Member {
        Member {
            name: name.to_string(),
            value: MemberValue::Json(text.to_string()),
        }
    }

    fn text(name: &str, text: &str) -> Member {
        Member {
            name: name.to_string(),
            value: MemberValue::Text(text.to_string()),
        }
    }

    #[test]
    fn a_message_round_trips_with_every_member_in_its_place() {
        let message = Message {
            members: vec![
                json("tool_calls", r#"[{"id": "c1"}]"#),
                text("role", "assistant"),
                json("n", "123456789012345678901234567890"),
                json("content", "null"),
                json("f", "0.4245191891425139"),
            ],
        };
        let bytes = encode(&message, u32::MAX).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"tool_calls": [{"id": "c1"}], "role": "assistant", "n": 123456789012345678901234567890, "content": null, "f": 0.4245191891425139}"#
        );
        assert_eq!(decode(&bytes), Ok(message.clone()));
        assert_eq!(role(&message), Some("assistant"));
        assert_eq!(
            member(&message, "content"),
            Some(&MemberValue::Json("null".into()))
        );
    }

    #[test]
    fn problems_and_refusals_map_to_their_wit_cases() {
        assert_eq!(decode(b"{"), Err(EntryProblem::NotJson));
        assert_eq!(decode(b"[]"), Err(EntryProblem::NotAnObject));
        assert_eq!(decode(br#"{"content": "x"}"#), Err(EntryProblem::NoRole));
        assert_eq!(
            decode(br#"{"role": "user", "content": "\udc00"}"#),
            Err(EntryProblem::LoneSurrogate)
        );
        let mut message = text_message("user", "hi");
        message.members.push(text("role", "again"));
        assert_eq!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::DuplicateMember("role".into()))
        );
        let no_role = Message {
            members: vec![text("content", "hi")],
        };
        assert_eq!(encode(&no_role, u32::MAX), Err(InvalidMessage::NoRole));
        assert!(matches!(
            encode(&text_message("user", "0123456789"), 5),
            Err(InvalidMessage::TooLarge(SizeLimit { limit: 5, .. }))
        ));
        let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
        let mut message = text_message("user", "");
        message.members.push(json("x", &deep));
        assert_eq!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::TooDeep("x".into()))
        );
    }
}
