//! Stored entries <-> messages: the bytes of one list entry, as the Python original writes it.
//!
//! An entry is `json.dumps` of a dict with a string `role`, usually a `content`, and any other
//! members (`tool_calls`, `tool_call_id`, `name`, ...). Decoding accepts everything
//! `json.loads` does (member order, escapes, compact or spaced, `NaN`, integers of any size) and
//! names what makes an entry not a message. Encoding writes exactly what `json.dumps` would:
//! `role`, then `content`, then the other members in their order — the order of the original's
//! `{"role": ..., "content": ...}` literal.
//!
//! Member values travel as JSON text in the canonical form [`crate::json::dumps`] writes, so a
//! value read from an entry and written back is the same bytes.

use crate::json::{self, ParseError, Value};

/// Deepest nesting an entry may have when *we* write it, counting the message object itself as
/// level 1. Python reads about 993 levels from a shallow stack but fewer from deep inside a
/// service (a `RecursionError` there is not caught by the original and takes the request down),
/// so writes stay at half of that. Reads take up to [`json::MAX_READ_DEPTH`].
pub const MAX_WRITE_DEPTH: usize = 500;

/// Why a stored entry is not a message. It is skipped and counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAMessage {
    /// Not JSON that Python's `json.loads` accepts (also: not text, or an integer over Python's
    /// 4300-digit limit). The original skips these too.
    NotJson,
    /// JSON nested deeper than [`json::MAX_READ_DEPTH`] (Python cannot read it either).
    TooDeep,
    /// Python loads it, but a string in it holds a lone UTF-16 surrogate, which a Rust string
    /// cannot hold.
    LoneSurrogate,
    /// JSON, but not an object.
    NotAnObject,
    /// An object without a string `role`.
    NoRole,
}

impl NotAMessage {
    fn from_parse(error: ParseError) -> Self {
        match error {
            ParseError::NotText | ParseError::Syntax { .. } | ParseError::IntegerTooLong => {
                Self::NotJson
            }
            ParseError::TooDeep => Self::TooDeep,
            ParseError::LoneSurrogate => Self::LoneSurrogate,
        }
    }
}

/// The content of a decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The member is a string.
    Text(String),
    /// Any other JSON value, as canonical JSON text.
    Json(String),
}

/// A decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The `role` member.
    pub role: String,
    /// The `content` member; `None` when the object has none (not the same as `null`).
    pub content: Option<Content>,
    /// Every other member, in order, with its value as canonical JSON text.
    pub members: Vec<(String, String)>,
}

/// Decode one stored entry.
pub fn decode(entry: &[u8]) -> Result<Decoded, NotAMessage> {
    let value = json::loads(entry).map_err(NotAMessage::from_parse)?;
    let Value::Object(object) = value else {
        return Err(NotAMessage::NotAnObject);
    };
    let mut role = None;
    let mut content = None;
    let mut members = Vec::with_capacity(object.len().saturating_sub(2));
    for (name, member) in object {
        match (name.as_str(), member) {
            ("role", Value::Str(text)) => role = Some(text),
            ("role", _) => return Err(NotAMessage::NoRole),
            ("content", Value::Str(text)) => content = Some(Content::Text(text)),
            ("content", other) => content = Some(Content::Json(json::dumps(&other))),
            (_, other) => members.push((name, json::dumps(&other))),
        }
    }
    Ok(Decoded {
        role: role.ok_or(NotAMessage::NoRole)?,
        content,
        members,
    })
}

/// The content of a message to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRef<'a> {
    /// A string.
    Text(&'a str),
    /// Any JSON value, as JSON text (Python's grammar, any layout).
    Json(&'a str),
}

/// Why a message cannot be encoded. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded message would be `actual` bytes, over the limit.
    TooLarge {
        /// Its encoded size.
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// A member is named `role` or `content`, or appears twice.
    DuplicateMember(String),
    /// A member's JSON text is not JSON Python would load, or holds a lone surrogate.
    InvalidJson {
        /// The member (`content` for the content).
        member: String,
        /// Why.
        reason: ParseError,
    },
    /// The message would nest deeper than [`MAX_WRITE_DEPTH`].
    TooDeep {
        /// The member that nests too deeply.
        member: String,
    },
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { actual, limit } => {
                write!(f, "message is {actual} bytes encoded; the limit is {limit}")
            }
            Self::DuplicateMember(name) => write!(f, "member `{name}` appears twice"),
            Self::InvalidJson { member, reason } => {
                write!(f, "member `{member}` is not valid JSON: {reason}")
            }
            Self::TooDeep { member } => write!(
                f,
                "member `{member}` nests deeper than {MAX_WRITE_DEPTH} levels, more than \
                 Python readers can take"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Encode one message as `json.dumps` would, refusing it if it is over `max_bytes`.
///
/// Member texts are parsed and written again, so any valid JSON layout goes in and the
/// canonical one comes out; what another writer sent cannot smuggle bytes past the check.
pub fn encode<'a>(
    role: &str,
    content: Option<ContentRef<'_>>,
    members: impl IntoIterator<Item = (&'a str, &'a str)>,
    max_bytes: u32,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = String::with_capacity(64);
    out.push_str("{\"role\": ");
    json::write_str(&mut out, role);
    match content {
        None => {}
        Some(ContentRef::Text(text)) => {
            out.push_str(", \"content\": ");
            json::write_str(&mut out, text);
        }
        Some(ContentRef::Json(text)) => {
            let value = parse_member("content", text)?;
            out.push_str(", \"content\": ");
            json::write_value(&mut out, &value);
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (name, text) in members {
        if name == "role" || name == "content" || seen.contains(&name) {
            return Err(EncodeError::DuplicateMember(name.to_string()));
        }
        seen.push(name);
        let value = parse_member(name, text)?;
        out.push_str(", ");
        json::write_str(&mut out, name);
        out.push_str(": ");
        json::write_value(&mut out, &value);
    }
    out.push('}');
    let actual = out.len() as u64;
    if actual > u64::from(max_bytes) {
        return Err(EncodeError::TooLarge {
            actual,
            limit: u64::from(max_bytes),
        });
    }
    Ok(out.into_bytes())
}

/// The member value in `text`, within the write depth (the message object is one level).
fn parse_member(member: &str, text: &str) -> Result<Value, EncodeError> {
    json::loads_str(text, MAX_WRITE_DEPTH - 1).map_err(|reason| match reason {
        ParseError::TooDeep => EncodeError::TooDeep {
            member: member.to_string(),
        },
        reason => EncodeError::InvalidJson {
            member: member.to_string(),
            reason,
        },
    })
}

/// The length [`encode`] gives a message whose JSON texts are already canonical (as
/// [`json::dumps`] writes them), computed without encoding: lets a caller refuse an oversized
/// message before handing it to anyone.
pub fn encoded_len<'a>(
    role: &str,
    content: Option<ContentRef<'_>>,
    members: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> u64 {
    // {"role": R}
    let mut len = 10 + json::escaped_len(role) as u64;
    len += match content {
        None => 0,
        // , "content": C
        Some(ContentRef::Text(text)) => 13 + json::escaped_len(text) as u64,
        Some(ContentRef::Json(text)) => 13 + text.len() as u64,
    };
    for (name, text) in members {
        // , "name": value
        len += 4 + json::escaped_len(name) as u64 + text.len() as u64;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_str(
        role: &str,
        content: Option<ContentRef<'_>>,
        members: &[(&str, &str)],
    ) -> Result<String, EncodeError> {
        encode(role, content, members.iter().copied(), u32::MAX)
            .map(|bytes| String::from_utf8(bytes).expect("ASCII"))
    }

    #[test]
    fn a_text_message_encodes_exactly_like_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps({"role": "user", "content": "héllo"}))'
        assert_eq!(
            encode_str("user", Some(ContentRef::Text("héllo")), &[]).unwrap(),
            r#"{"role": "user", "content": "h\u00e9llo"}"#
        );
    }

    #[test]
    fn members_keep_their_order_and_any_layout_comes_out_canonical() {
        let encoded = encode_str(
            "assistant",
            Some(ContentRef::Json("null")),
            &[(
                "tool_calls",
                r#"[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]"#,
            )],
        )
        .unwrap();
        assert_eq!(
            encoded,
            r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}"#
        );
    }

    #[test]
    fn absent_content_stays_absent() {
        let encoded = encode_str("assistant", None, &[("name", r#""x""#)]).unwrap();
        assert_eq!(encoded, r#"{"role": "assistant", "name": "x"}"#);
        let decoded = decode(encoded.as_bytes()).unwrap();
        assert_eq!(decoded.content, None);
        assert_eq!(decoded.members, vec![("name".into(), "\"x\"".into())]);
    }

    #[test]
    fn decode_then_encode_is_the_identity_on_python_output() {
        let python = r#"{"role": "tool", "content": [{"type": "text", "text": "\u65e5"}], "tool_call_id": "c1", "x": {"n": 1.5, "big": 123456789012345678901234567890, "nan": NaN}}"#;
        let decoded = decode(python.as_bytes()).unwrap();
        let Some(Content::Json(content)) = &decoded.content else {
            panic!("JSON content");
        };
        let members = decoded
            .members
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let again = encode(
            &decoded.role,
            Some(ContentRef::Json(content)),
            members,
            u32::MAX,
        )
        .unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), python);
    }

    #[test]
    fn decode_takes_any_member_order_and_layout() {
        let decoded = decode(br#"{"content":"hi","role":"user","z":1,"a":[true]}"#).unwrap();
        assert_eq!(decoded.role, "user");
        assert_eq!(decoded.content, Some(Content::Text("hi".into())));
        assert_eq!(
            decoded.members,
            vec![("z".into(), "1".into()), ("a".into(), "[true]".into())]
        );
    }

    #[test]
    fn entries_that_are_not_messages_are_named() {
        assert_eq!(decode(b"not json"), Err(NotAMessage::NotJson));
        assert_eq!(decode(b"{\"role\": \"user\""), Err(NotAMessage::NotJson));
        assert_eq!(decode(b"\xff\xfe\xff"), Err(NotAMessage::NotJson));
        assert_eq!(decode(b"[1, 2]"), Err(NotAMessage::NotAnObject));
        assert_eq!(decode(b"\"text\""), Err(NotAMessage::NotAnObject));
        assert_eq!(decode(br#"{"content": "x"}"#), Err(NotAMessage::NoRole));
        assert_eq!(decode(br#"{"role": 7}"#), Err(NotAMessage::NoRole));
        assert_eq!(
            decode(br#"{"role": "user", "content": "\ud800"}"#),
            Err(NotAMessage::LoneSurrogate)
        );
        let deep = format!("{}{}", "[".repeat(1001), "]".repeat(1001));
        assert_eq!(decode(deep.as_bytes()), Err(NotAMessage::TooDeep));
    }

    #[test]
    fn a_repeated_role_takes_the_last_value_as_python_does() {
        let decoded = decode(br#"{"role": "user", "content": "x", "role": "assistant"}"#).unwrap();
        assert_eq!(decoded.role, "assistant");
    }

    #[test]
    fn members_named_like_typed_members_or_repeated_are_refused() {
        for members in [
            &[("role", "\"x\"")][..],
            &[("content", "1")],
            &[("a", "1"), ("a", "2")],
        ] {
            assert!(matches!(
                encode_str("user", None, members),
                Err(EncodeError::DuplicateMember(_))
            ));
        }
    }

    #[test]
    fn invalid_or_unholdable_json_is_refused_with_the_member_named() {
        assert!(matches!(
            encode_str("user", None, &[("a", "{nope")]),
            Err(EncodeError::InvalidJson { member, .. }) if member == "a"
        ));
        assert!(matches!(
            encode_str("user", Some(ContentRef::Json("[1,")), &[]),
            Err(EncodeError::InvalidJson { member, .. }) if member == "content"
        ));
        assert!(matches!(
            encode_str("user", None, &[("a", r#""\udc00""#)]),
            Err(EncodeError::InvalidJson {
                reason: ParseError::LoneSurrogate,
                ..
            })
        ));
    }

    #[test]
    fn writes_stay_within_the_depth_python_readers_take() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(encode_str("user", None, &[("a", &nested(MAX_WRITE_DEPTH - 1))]).is_ok());
        assert_eq!(
            encode_str("user", None, &[("a", &nested(MAX_WRITE_DEPTH))]),
            Err(EncodeError::TooDeep { member: "a".into() })
        );
    }

    #[test]
    fn a_message_over_the_byte_limit_is_refused_with_its_size() {
        let size = encode_str("user", Some(ContentRef::Text("0123456789")), &[])
            .unwrap()
            .len() as u64;
        let refused = encode(
            "user",
            Some(ContentRef::Text("0123456789")),
            [],
            (size - 1) as u32,
        );
        assert_eq!(
            refused,
            Err(EncodeError::TooLarge {
                actual: size,
                limit: size - 1
            })
        );
    }

    #[test]
    fn encoded_len_predicts_the_encoding_of_canonical_members() {
        type Case<'a> = (&'a str, Option<ContentRef<'a>>, &'a [(&'a str, &'a str)]);
        let cases: [Case<'_>; 4] = [
            ("user", Some(ContentRef::Text("héllo \"x\" 😀\n")), &[]),
            (
                "assistant",
                None,
                &[("tool_calls", "[{\"id\": \"c\\u00e9\"}]")],
            ),
            (
                "tool",
                Some(ContentRef::Json("[1, 2.5, null]")),
                &[("n", "1"), ("é", "{}")],
            ),
            ("", Some(ContentRef::Json("null")), &[]),
        ];
        for (role, content, members) in cases {
            let encoded = encode(role, content, members.iter().copied(), u32::MAX).unwrap();
            assert_eq!(
                encoded_len(role, content, members.iter().copied()),
                encoded.len() as u64,
                "{role} {content:?} {members:?}"
            );
        }
    }
}
