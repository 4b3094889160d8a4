//! Stored entries <-> messages.
//!
//! An entry is what the Python original writes: `json.dumps` of a dict with a string `role`, a
//! `content` and any other members. Decoding is lenient about everything a Python writer may
//! produce (member order, escapes, `null` or list content, unknown members) and strict about
//! what makes an entry not a message at all. Encoding writes what `json.dumps` would.

use serde_json::{Map, Value};

use crate::pyjson;
use crate::types::{Content, InvalidMessage, Message, SizeLimit};

/// Why a stored entry is not a message. It is skipped and counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAMessage {
    /// Not JSON at all (also: JSON with Python's `NaN`/`Infinity`, which JSON does not allow).
    NotJson,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// An object without a string `role`.
    NoRole,
}

/// Decode one stored entry.
pub fn decode(entry: &[u8]) -> Result<Message, NotAMessage> {
    let value: Value = serde_json::from_slice(entry).map_err(|_| NotAMessage::NotJson)?;
    let Value::Object(members) = value else {
        return Err(NotAMessage::NotAnObject);
    };
    let mut role = None;
    let mut content = None;
    let mut extra = Vec::with_capacity(members.len().saturating_sub(2));
    for (name, member) in members {
        match (name.as_str(), member) {
            ("role", Value::String(text)) => role = Some(text),
            ("role", _) => return Err(NotAMessage::NoRole),
            ("content", Value::String(text)) => content = Some(Content::Text(text)),
            ("content", other) => content = Some(Content::Json(other.to_string())),
            (_, other) => extra.push((name, other.to_string())),
        }
    }
    let role = role.ok_or(NotAMessage::NoRole)?;
    Ok(Message {
        role,
        content,
        extra,
    })
}

/// Encode one message as the Python original would store it, refusing it if the result is
/// larger than `max_bytes`.
///
/// Members are written `role`, `content`, then the extras in their order: the order the
/// original's `{"role": ..., "content": ...}` literal produces.
pub fn encode(message: &Message, max_bytes: u32) -> Result<Vec<u8>, InvalidMessage> {
    let mut out = String::with_capacity(64 + message.role.len() + content_len(message));
    out.push('{');
    pyjson::write_member(&mut out, "role", &Value::String(message.role.clone()));
    match &message.content {
        None => {}
        Some(Content::Text(text)) => {
            out.push_str(", ");
            pyjson::write_string(&mut out, "content");
            out.push_str(": ");
            pyjson::write_string(&mut out, text);
        }
        Some(Content::Json(text)) => {
            let value = parse_json_text("content", text)?;
            out.push_str(", ");
            pyjson::write_member(&mut out, "content", &value);
        }
    }
    let mut seen = Map::new();
    for (name, text) in &message.extra {
        if name == "role" || name == "content" || seen.contains_key(name) {
            return Err(InvalidMessage::DuplicateMember(name.clone()));
        }
        seen.insert(name.clone(), Value::Null);
        let value = parse_json_text(name, text)?;
        out.push_str(", ");
        pyjson::write_member(&mut out, name, &value);
    }
    out.push('}');
    let actual = out.len() as u64;
    if actual > u64::from(max_bytes) {
        return Err(InvalidMessage::TooLarge(SizeLimit {
            what: "encoded message bytes".to_string(),
            actual,
            limit: u64::from(max_bytes),
        }));
    }
    Ok(out.into_bytes())
}

fn content_len(message: &Message) -> usize {
    match &message.content {
        Some(Content::Text(text) | Content::Json(text)) => text.len(),
        None => 0,
    }
}

fn parse_json_text(member: &str, text: &str) -> Result<Value, InvalidMessage> {
    serde_json::from_str(text).map_err(|error| {
        InvalidMessage::InvalidJson(format!("member `{member}` is not valid JSON: {error}"))
    })
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

    fn encode_str(message: &Message) -> String {
        String::from_utf8(encode(message, u32::MAX).expect("valid message")).expect("ASCII")
    }

    #[test]
    fn a_text_message_encodes_exactly_like_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps({"role": "user", "content": "héllo"}))'
        assert_eq!(
            encode_str(&text_message("user", "héllo")),
            r#"{"role": "user", "content": "h\u00e9llo"}"#
        );
    }

    #[test]
    fn extras_keep_their_order_and_nested_values_use_python_separators() {
        let message = Message {
            role: "assistant".to_string(),
            content: Some(Content::Json("null".to_string())),
            extra: vec![(
                "tool_calls".to_string(),
                r#"[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]"#
                    .to_string(),
            )],
        };
        assert_eq!(
            encode_str(&message),
            r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}"#
        );
    }

    #[test]
    fn absent_content_stays_absent() {
        let message = Message {
            role: "assistant".to_string(),
            content: None,
            extra: vec![("name".to_string(), r#""x""#.to_string())],
        };
        let encoded = encode_str(&message);
        assert_eq!(encoded, r#"{"role": "assistant", "name": "x"}"#);
        assert_eq!(decode(encoded.as_bytes()), Ok(message));
    }

    #[test]
    fn decode_then_encode_is_the_identity_on_python_output() {
        let python = r#"{"role": "tool", "content": [{"type": "text", "text": "\u65e5"}], "tool_call_id": "c1", "x": {"n": 1.5}}"#;
        let message = decode(python.as_bytes()).expect("a message");
        assert_eq!(encode_str(&message), python);
    }

    #[test]
    fn decode_accepts_compact_json_and_any_member_order() {
        let message = decode(br#"{"content":"hi","role":"user"}"#).expect("a message");
        assert_eq!(message, text_message("user", "hi"));
    }

    #[test]
    fn decode_keeps_unknown_members_in_order() {
        let message = decode(br#"{"role":"user","content":"hi","z":1,"a":[true]}"#).unwrap();
        assert_eq!(
            message.extra,
            vec![
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "[true]".to_string())
            ]
        );
    }

    #[test]
    fn entries_that_are_not_messages_are_named() {
        assert_eq!(decode(b"not json"), Err(NotAMessage::NotJson));
        assert_eq!(decode(b"{\"role\": \"user\""), Err(NotAMessage::NotJson));
        assert_eq!(decode(b"\xff\xfe"), Err(NotAMessage::NotJson));
        assert_eq!(decode(b"[1, 2]"), Err(NotAMessage::NotAnObject));
        assert_eq!(decode(b"\"text\""), Err(NotAMessage::NotAnObject));
        assert_eq!(decode(br#"{"content": "x"}"#), Err(NotAMessage::NoRole));
        assert_eq!(decode(br#"{"role": 7}"#), Err(NotAMessage::NoRole));
        assert_eq!(decode(br#"{"role": NaN}"#), Err(NotAMessage::NotJson));
    }

    #[test]
    fn extras_named_like_typed_members_are_refused() {
        let mut message = text_message("user", "hi");
        message
            .extra
            .push(("role".to_string(), "\"x\"".to_string()));
        assert_eq!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::DuplicateMember("role".to_string()))
        );
    }

    #[test]
    fn repeated_extras_are_refused() {
        let mut message = text_message("user", "hi");
        message.extra.push(("a".to_string(), "1".to_string()));
        message.extra.push(("a".to_string(), "2".to_string()));
        assert_eq!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::DuplicateMember("a".to_string()))
        );
    }

    #[test]
    fn invalid_json_in_extras_or_content_is_refused() {
        let mut message = text_message("user", "hi");
        message.extra.push(("a".to_string(), "{nope".to_string()));
        assert!(matches!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::InvalidJson(_))
        ));
        let message = Message {
            content: Some(Content::Json("[1,".to_string())),
            ..text_message("user", "")
        };
        assert!(matches!(
            encode(&message, u32::MAX),
            Err(InvalidMessage::InvalidJson(_))
        ));
    }

    #[test]
    fn a_message_over_the_byte_limit_is_refused_with_its_size() {
        let message = text_message("user", "0123456789");
        let size = encode_str(&message).len() as u64;
        match encode(&message, (size - 1) as u32) {
            Err(InvalidMessage::TooLarge(limit)) => {
                assert_eq!((limit.actual, limit.limit), (size, size - 1));
            }
            other => panic!("expected too-large, got {other:?}"),
        }
        assert!(encode(&message, size as u32).is_ok());
    }
}
