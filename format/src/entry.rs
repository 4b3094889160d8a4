//! Stored entries <-> messages: the bytes of one list entry, as the Python original writes it.
//!
//! An entry is `json.dumps` of a dict with a string `role`, usually a `content`, and any other
//! members (`tool_calls`, `tool_call_id`, `name`, ...), **in the caller's order**: `json.dumps`
//! keeps a dict's insertion order, so `{"role": "tool", "tool_call_id": "c1", "content": "x"}`
//! is stored with `content` last, and so do we. Member order is data: Python tools match
//! entries by their bytes (LREM by value, dedupe, hashes).
//!
//! Decoding accepts everything `json.loads` does (any member order, escapes, compact or spaced,
//! `NaN`, integers of any size, a repeated member keeping its first position and last value as
//! a dict does) and names what makes an entry not a message. Encoding writes exactly what
//! `json.dumps` would of the same dict: every member where it stands.
//!
//! Member values travel as JSON text in the canonical form [`crate::json::dumps`] writes (or, for
//! strings, as the text itself), so a value read from an entry and written back is the same
//! bytes.

use crate::json::{self, ParseError, Value};

/// Deepest nesting an entry may have when *we* write it, counting the message object itself as
/// level 1. Python reads about 993 levels from a shallow stack but fewer from deep inside a
/// service (a `RecursionError` there is not caught by the original and takes the request down),
/// so writes stay at half of that. Reads take up to [`json::MAX_READ_DEPTH`].
pub const MAX_WRITE_DEPTH: usize = 500;

/// The member every message has: who spoke. Its value is a string.
pub const ROLE: &str = "role";

/// The member that holds what was said, when there is one.
pub const CONTENT: &str = "content";

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

/// The value of one member of a decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// A string.
    Text(String),
    /// Any other JSON value (never a string), as canonical JSON text.
    Json(String),
}

impl Member {
    /// The member's value as a borrowed [`MemberRef`], to encode it again.
    pub fn as_ref(&self) -> MemberRef<'_> {
        match self {
            Self::Text(text) => MemberRef::Text(text),
            Self::Json(text) => MemberRef::Json(text),
        }
    }
}

/// A decoded entry: every member of the object, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Every member, in order; names are unique, and one is a [`ROLE`] with a [`Member::Text`]
    /// value.
    pub members: Vec<(String, Member)>,
}

impl Decoded {
    /// The value of the member called `name`, if the message has one.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value)
    }

    /// The `role` (every decoded message has a string one).
    pub fn role(&self) -> &str {
        match self.member(ROLE) {
            Some(Member::Text(role)) => role,
            // `decode` refuses any other entry.
            _ => "",
        }
    }
}

/// Decode one stored entry.
pub fn decode(entry: &[u8]) -> Result<Decoded, NotAMessage> {
    let value = json::loads(entry).map_err(NotAMessage::from_parse)?;
    let Value::Object(object) = value else {
        return Err(NotAMessage::NotAnObject);
    };
    let mut has_role = false;
    let mut members = Vec::with_capacity(object.len());
    for (name, value) in object {
        let member = match value {
            Value::Str(text) => Member::Text(text),
            other => Member::Json(json::dumps(&other)),
        };
        if name == ROLE {
            if !matches!(member, Member::Text(_)) {
                return Err(NotAMessage::NoRole);
            }
            has_role = true;
        }
        members.push((name, member));
    }
    if !has_role {
        return Err(NotAMessage::NoRole);
    }
    Ok(Decoded { members })
}

/// The value of one member of a message to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRef<'a> {
    /// A string.
    Text(&'a str),
    /// Any JSON value, as JSON text (Python's grammar, any layout). A JSON string here is the
    /// same as [`MemberRef::Text`] of its text.
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
    /// A member name appears twice.
    DuplicateMember(String),
    /// There is no `role` member, or its value is not a string.
    NoRole,
    /// A member's JSON text is not JSON Python would load, or holds a lone surrogate.
    InvalidJson {
        /// The member.
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
            Self::NoRole => f.write_str("a message needs a `role` member whose value is a string"),
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

/// Names already written, to refuse a repeated one: a short list is searched linearly, a long
/// one (a hostile message with thousands of members) through an index.
#[derive(Default)]
struct SeenNames<'a> {
    list: Vec<&'a str>,
    index: Option<std::collections::BTreeSet<&'a str>>,
}

impl<'a> SeenNames<'a> {
    const LINEAR_SEARCH_MAX: usize = 16;

    /// Record `name`; false when it was seen before.
    fn insert(&mut self, name: &'a str) -> bool {
        if let Some(index) = &mut self.index {
            return index.insert(name);
        }
        if self.list.contains(&name) {
            return false;
        }
        self.list.push(name);
        if self.list.len() > Self::LINEAR_SEARCH_MAX {
            self.index = Some(self.list.drain(..).collect());
        }
        true
    }
}

/// Encode one message as `json.dumps` would write the dict with these members, in this order,
/// refusing it if it is over `max_bytes`, has no string `role`, or names a member twice.
///
/// JSON texts are parsed and written again, so any valid JSON layout goes in and the canonical
/// one comes out; what another writer sent cannot smuggle bytes past the check.
pub fn encode<'a>(
    members: impl IntoIterator<Item = (&'a str, MemberRef<'a>)>,
    max_bytes: u32,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = String::with_capacity(64);
    out.push('{');
    let mut seen = SeenNames::default();
    let mut has_role = false;
    for (name, value) in members {
        if !seen.insert(name) {
            return Err(EncodeError::DuplicateMember(name.to_string()));
        }
        if out.len() > 1 {
            out.push_str(", ");
        }
        json::write_str(&mut out, name);
        out.push_str(": ");
        let is_text = match value {
            MemberRef::Text(text) => {
                json::write_str(&mut out, text);
                true
            }
            MemberRef::Json(text) => {
                let value = parse_member(name, text)?;
                json::write_value(&mut out, &value);
                matches!(value, Value::Str(_))
            }
        };
        if name == ROLE {
            if !is_text {
                return Err(EncodeError::NoRole);
            }
            has_role = true;
        }
    }
    if !has_role {
        return Err(EncodeError::NoRole);
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
pub fn encoded_len<'a>(members: impl IntoIterator<Item = (&'a str, MemberRef<'a>)>) -> u64 {
    // {} around, ", " between, "name": value for each.
    let mut len = 2u64;
    let mut first = true;
    for (name, value) in members {
        if !first {
            len += 2;
        }
        first = false;
        len += 2 + json::escaped_len(name) as u64;
        len += match value {
            MemberRef::Text(text) => json::escaped_len(text) as u64,
            MemberRef::Json(text) => text.len() as u64,
        };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(role: &str, content: &str) -> Vec<(String, Member)> {
        vec![
            (ROLE.to_string(), Member::Text(role.to_string())),
            (CONTENT.to_string(), Member::Text(content.to_string())),
        ]
    }

    fn encode_str(members: &[(&str, MemberRef<'_>)]) -> Result<String, EncodeError> {
        encode(members.iter().copied(), u32::MAX)
            .map(|bytes| String::from_utf8(bytes).expect("ASCII"))
    }

    fn encode_decoded(decoded: &Decoded) -> String {
        let members = decoded
            .members
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_ref()));
        String::from_utf8(encode(members, u32::MAX).unwrap()).unwrap()
    }

    #[test]
    fn a_text_message_encodes_exactly_like_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps({"role": "user", "content": "héllo"}))'
        assert_eq!(
            encode_str(&[
                ("role", MemberRef::Text("user")),
                ("content", MemberRef::Text("héllo"))
            ])
            .unwrap(),
            r#"{"role": "user", "content": "h\u00e9llo"}"#
        );
    }

    #[test]
    fn every_member_keeps_its_place_role_and_content_included() {
        // What json.dumps writes for OpenAI's tool result, and for dicts built in other orders.
        for python in [
            r#"{"role": "tool", "tool_call_id": "call_1", "content": "18 C"}"#,
            r#"{"content": "first", "role": "user"}"#,
            r#"{"role": "user", "name": "alice", "content": "hi"}"#,
            r#"{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}], "refusal": null, "content": "checking"}"#,
            r#"{"tool_calls": [], "role": "assistant"}"#,
        ] {
            let decoded = decode(python.as_bytes()).unwrap();
            assert_eq!(encode_decoded(&decoded), python);
        }
    }

    #[test]
    fn any_layout_comes_out_canonical_in_the_same_order() {
        let encoded = encode_str(&[
            ("role", MemberRef::Text("assistant")),
            ("content", MemberRef::Json("null")),
            (
                "tool_calls",
                MemberRef::Json(
                    r#"[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]"#,
                ),
            ),
        ])
        .unwrap();
        assert_eq!(
            encoded,
            r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}"#
        );
    }

    #[test]
    fn absent_content_stays_absent() {
        let encoded = encode_str(&[
            ("role", MemberRef::Text("assistant")),
            ("name", MemberRef::Json(r#""x""#)),
        ])
        .unwrap();
        assert_eq!(encoded, r#"{"role": "assistant", "name": "x"}"#);
        let decoded = decode(encoded.as_bytes()).unwrap();
        assert_eq!(decoded.member(CONTENT), None);
        assert_eq!(decoded.member("name"), Some(&Member::Text("x".into())));
    }

    #[test]
    fn decode_then_encode_is_the_identity_on_python_output() {
        let python = r#"{"role": "tool", "content": [{"type": "text", "text": "\u65e5"}], "tool_call_id": "c1", "x": {"n": 1.5, "big": 123456789012345678901234567890, "nan": NaN}}"#;
        assert_eq!(encode_decoded(&decode(python.as_bytes()).unwrap()), python);
    }

    #[test]
    fn decode_takes_any_member_order_and_layout_and_keeps_the_order() {
        let decoded = decode(br#"{"content":"hi","z":1,"role":"user","a":[true]}"#).unwrap();
        assert_eq!(decoded.role(), "user");
        assert_eq!(
            decoded.members,
            vec![
                ("content".into(), Member::Text("hi".into())),
                ("z".into(), Member::Json("1".into())),
                ("role".into(), Member::Text("user".into())),
                ("a".into(), Member::Json("[true]".into())),
            ]
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
    fn a_repeated_member_keeps_its_first_place_and_last_value_as_a_dict_does() {
        // python3 -c 'import json; print(json.dumps(json.loads(
        //     """{"role": "user", "content": "x", "role": "assistant"}""")))'
        let decoded = decode(br#"{"role": "user", "content": "x", "role": "assistant"}"#).unwrap();
        assert_eq!(decoded.role(), "assistant");
        assert_eq!(
            encode_decoded(&decoded),
            r#"{"role": "assistant", "content": "x"}"#
        );
        // A string role replaced by a number is no role at all.
        assert_eq!(
            decode(br#"{"role": "user", "role": 1}"#),
            Err(NotAMessage::NoRole)
        );
    }

    #[test]
    fn repeated_names_and_missing_or_non_string_roles_are_refused() {
        let text = MemberRef::Text;
        assert_eq!(
            encode_str(&[("role", text("u")), ("a", text("1")), ("a", text("2"))]),
            Err(EncodeError::DuplicateMember("a".into()))
        );
        assert_eq!(
            encode_str(&[("role", text("u")), ("role", text("v"))]),
            Err(EncodeError::DuplicateMember("role".into()))
        );
        assert_eq!(
            encode_str(&[("content", text("x"))]),
            Err(EncodeError::NoRole)
        );
        assert_eq!(
            encode_str(&[("role", MemberRef::Json("1"))]),
            Err(EncodeError::NoRole)
        );
        // A role given as a JSON string is a string.
        assert_eq!(
            encode_str(&[("role", MemberRef::Json(r#""user""#))]).unwrap(),
            r#"{"role": "user"}"#
        );
    }

    #[test]
    fn a_thousand_members_are_checked_for_repeats_without_quadratic_work() {
        let names: Vec<String> = (0..5000).map(|at| format!("m{at}")).collect();
        let mut members: Vec<(&str, MemberRef<'_>)> = vec![("role", MemberRef::Text("u"))];
        members.extend(
            names
                .iter()
                .map(|name| (name.as_str(), MemberRef::Json("1"))),
        );
        assert!(encode_str(&members).is_ok());
        members.push(("m4321", MemberRef::Json("2")));
        assert_eq!(
            encode_str(&members),
            Err(EncodeError::DuplicateMember("m4321".into()))
        );
    }

    #[test]
    fn invalid_or_unholdable_json_is_refused_with_the_member_named() {
        let role = ("role", MemberRef::Text("user"));
        assert!(matches!(
            encode_str(&[role, ("a", MemberRef::Json("{nope"))]),
            Err(EncodeError::InvalidJson { member, .. }) if member == "a"
        ));
        assert!(matches!(
            encode_str(&[role, ("content", MemberRef::Json("[1,"))]),
            Err(EncodeError::InvalidJson { member, .. }) if member == "content"
        ));
        assert!(matches!(
            encode_str(&[role, ("a", MemberRef::Json(r#""\udc00""#))]),
            Err(EncodeError::InvalidJson {
                reason: ParseError::LoneSurrogate,
                ..
            })
        ));
    }

    #[test]
    fn writes_stay_within_the_depth_python_readers_take() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let role = ("role", MemberRef::Text("user"));
        let ok = nested(MAX_WRITE_DEPTH - 1);
        assert!(encode_str(&[role, ("a", MemberRef::Json(&ok))]).is_ok());
        let deep = nested(MAX_WRITE_DEPTH);
        assert_eq!(
            encode_str(&[role, ("a", MemberRef::Json(&deep))]),
            Err(EncodeError::TooDeep { member: "a".into() })
        );
    }

    #[test]
    fn a_message_over_the_byte_limit_is_refused_with_its_size() {
        let members = text("user", "0123456789");
        let refs = || {
            members
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_ref()))
        };
        let size = encode(refs(), u32::MAX).unwrap().len() as u64;
        assert_eq!(
            encode(refs(), (size - 1) as u32),
            Err(EncodeError::TooLarge {
                actual: size,
                limit: size - 1
            })
        );
    }

    #[test]
    fn encoded_len_predicts_the_encoding_of_canonical_members() {
        let cases: [&[(&str, MemberRef<'_>)]; 4] = [
            &[
                ("role", MemberRef::Text("user")),
                ("content", MemberRef::Text("héllo \"x\" 😀\n")),
            ],
            &[
                ("tool_calls", MemberRef::Json("[{\"id\": \"c\\u00e9\"}]")),
                ("role", MemberRef::Text("assistant")),
            ],
            &[
                ("role", MemberRef::Text("tool")),
                ("n", MemberRef::Json("1")),
                ("content", MemberRef::Json("[1, 2.5, null]")),
                ("é", MemberRef::Json("{}")),
            ],
            &[
                ("content", MemberRef::Json("null")),
                ("role", MemberRef::Text("")),
            ],
        ];
        for members in cases {
            let encoded = encode(members.iter().copied(), u32::MAX).unwrap();
            assert_eq!(
                encoded_len(members.iter().copied()),
                encoded.len() as u64,
                "{members:?}"
            );
        }
    }
}
