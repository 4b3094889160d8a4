//! Conversation messages as agents hand them to memory and get them back.
//!
//! A message is the JSON object the Python original stores: `json.dumps` of a dict with a
//! string `role`, usually a `content`, and any other members (`tool_calls`, `tool_call_id`,
//! `name`, ...). **Member order is data**: `json.dumps` keeps a dict's order, Python tools match
//! stored entries by their bytes, and OpenAI's own tool result puts `content` last
//! (`{"role": "tool", "tool_call_id": "c1", "content": "18 C"}`). So a [`Message`] is its
//! members in order, `role` and `content` among them wherever they stand; nothing is ever added
//! (LLM APIs reject unknown message fields) and nothing moves. Member values are exact, as
//! Python reads and writes them ([`MemberValue`], [`Json`]).

use agent_memory_format::entry::{self, CONTENT, MemberRef, NotAMessage, ROLE};
use agent_memory_format::json::{self as pyjson, Value as PyValue};
use serde_json::Value;

use crate::json::{self, Json, JsonError, NotStandardJson};

/// Why a stored entry is not a message: the contract's own `entry-problem` (the same type a
/// policy reports and an agent receives), so it has one definition.
pub use crate::wit::types::EntryProblem;

impl std::fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotJson => "not JSON",
            Self::TooDeep => "nested too deeply",
            Self::LoneSurrogate => "a string holds a lone UTF-16 surrogate",
            Self::NotAnObject => "not a JSON object",
            Self::NoRole => "no string `role`",
        })
    }
}

impl std::error::Error for EntryProblem {}

impl From<NotAMessage> for EntryProblem {
    fn from(reason: NotAMessage) -> Self {
        match reason {
            NotAMessage::NotJson => Self::NotJson,
            NotAMessage::TooDeep => Self::TooDeep,
            NotAMessage::LoneSurrogate => Self::LoneSurrogate,
            NotAMessage::NotAnObject => Self::NotAnObject,
            NotAMessage::NoRole => Self::NoRole,
        }
    }
}

/// The value of one member of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberValue {
    /// A JSON string: the text itself.
    Text(String),
    /// Any other JSON value (`null`, a number, a list of content parts, an object), exact.
    /// Never a string: a string given as [`Json`] is kept as [`MemberValue::Text`].
    Json(Json),
}

impl MemberValue {
    /// The text, when the value is a string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Json(_) => None,
        }
    }

    /// The value as canonical JSON text (a string quoted and escaped as `json.dumps` does).
    pub fn to_json_string(&self) -> String {
        match self {
            Self::Text(text) => {
                let mut out = String::with_capacity(text.len() + 2);
                pyjson::write_str(&mut out, text);
                out
            }
            Self::Json(json) => json.as_str().to_string(),
        }
    }

    /// The value as a `serde_json::Value`, or why it cannot hold it exactly (see
    /// [`Json::to_value`]).
    pub fn to_value(&self) -> Result<Value, NotStandardJson> {
        match self {
            Self::Text(text) => Ok(Value::String(text.clone())),
            Self::Json(json) => json.to_value(),
        }
    }

    fn from_py(value: &PyValue) -> Self {
        match value {
            PyValue::Str(text) => Self::Text(text.clone()),
            other => Self::Json(Json::from_py(other)),
        }
    }

    fn as_member_ref(&self) -> MemberRef<'_> {
        match self {
            Self::Text(text) => MemberRef::Text(text),
            Self::Json(json) => MemberRef::Json(json.as_str()),
        }
    }
}

impl From<Json> for MemberValue {
    fn from(json: Json) -> Self {
        if json.as_str().starts_with('"') {
            // A string: its canonical text always parses.
            if let Ok(PyValue::Str(text)) = pyjson::loads_str(json.as_str(), pyjson::MAX_READ_DEPTH)
            {
                return Self::Text(text);
            }
        }
        Self::Json(json)
    }
}

impl From<Value> for MemberValue {
    fn from(value: Value) -> Self {
        match value {
            Value::String(text) => Self::Text(text),
            other => Self::Json(Json::from(other)),
        }
    }
}

impl From<&str> for MemberValue {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for MemberValue {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

/// One conversation message: a JSON object's members, in order.
///
/// Built in Rust, a message has the original's usual order: [`Message::new`] gives `role`
/// then `content`, and [`Message::with`] appends a new member (or replaces one in its place, as
/// assigning to a dict does). Read from JSON or from a store, it keeps the order it came in.
///
/// ```
/// use agent_memory::{Message, message::MemberValue};
///
/// let result = Message::from_json_str(
///     r#"{"role": "tool", "tool_call_id": "call_1", "content": "18 C"}"#,
/// )?;
/// assert_eq!(result.role(), "tool");
/// assert_eq!(result.text(), Some("18 C"));
/// assert_eq!(result.member("tool_call_id"), Some(&MemberValue::Text("call_1".into())));
/// // Exactly what Python's json.dumps writes for that dict: content stays last.
/// assert_eq!(
///     result.to_json_string(),
///     r#"{"role": "tool", "tool_call_id": "call_1", "content": "18 C"}"#
/// );
/// # Ok::<(), agent_memory::message::MessageJsonError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Every member, in order. Names are unique; one is `role` (a [`MemberValue::Text`]
    /// unless [`Message::with`] set it to something else, which makes the message invalid).
    members: Vec<(String, MemberValue)>,
}

/// Why JSON is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageJsonError {
    /// The value is not a JSON object.
    #[error("a message must be a JSON object")]
    NotAnObject,
    /// `role` is missing or not a string.
    #[error("a message needs a string `role`")]
    NoRole,
    /// The text is not JSON (as Python's `json.loads` reads it).
    #[error("not JSON: {0}")]
    NotJson(#[from] JsonError),
}

impl Message {
    /// A message of `role` with text content: `{"role": ..., "content": ...}`, in that order.
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            members: vec![
                (ROLE.to_string(), MemberValue::Text(role.into())),
                (CONTENT.to_string(), MemberValue::Text(text.into())),
            ],
        }
    }

    /// A `user` message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new("user", text)
    }

    /// An `assistant` message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new("assistant", text)
    }

    /// A `system` message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new("system", text)
    }

    /// Who spoke: `system`, `user`, `assistant`, `tool`, ... (empty only for a message whose
    /// `role` [`Message::with`] set to something other than a string: such a message is
    /// refused when written, [`crate::InvalidMessage::NoRole`]).
    pub fn role(&self) -> &str {
        self.member(ROLE)
            .and_then(MemberValue::as_text)
            .unwrap_or_default()
    }

    /// The `content` member; `None` when the message has none (not the same as
    /// `"content": null`, which is `Some(MemberValue::Json(null))`).
    pub fn content(&self) -> Option<&MemberValue> {
        self.member(CONTENT)
    }

    /// The content, if it is text.
    pub fn text(&self) -> Option<&str> {
        self.content().and_then(MemberValue::as_text)
    }

    /// The member called `name`, if there is one (`role` and `content` included).
    pub fn member(&self, name: &str) -> Option<&MemberValue> {
        self.members
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value)
    }

    /// Every member, in order, `role` and `content` included.
    pub fn members(&self) -> impl ExactSizeIterator<Item = (&str, &MemberValue)> {
        self.members
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    /// Set a member, as assigning to a Python dict does: one of the same name is replaced in
    /// its place, a new one goes last. Works for `role` and `content` too (a `role` that is
    /// not a string makes the message invalid: writing it is refused).
    ///
    /// ```
    /// # use agent_memory::Message;
    /// let message = Message::assistant("checking").with("name", "bot");
    /// assert_eq!(
    ///     message.to_json_string(),
    ///     r#"{"role": "assistant", "content": "checking", "name": "bot"}"#
    /// );
    /// ```
    pub fn with(mut self, name: impl Into<String>, value: impl Into<MemberValue>) -> Self {
        let name = name.into();
        let value = value.into();
        match self.members.iter_mut().find(|(known, _)| *known == name) {
            Some(member) => member.1 = value,
            None => self.members.push((name, value)),
        }
        self
    }

    /// Remove the member called `name`, if there is one (as `del` on a dict); the others keep
    /// their order. Removing `role` makes the message invalid.
    pub fn without(mut self, name: &str) -> Self {
        self.members.retain(|(known, _)| known != name);
        self
    }

    /// A message from a JSON object such as `{"role": "user", "content": "hi"}`, members in
    /// the object's order.
    pub fn from_json(value: &Value) -> Result<Self, MessageJsonError> {
        Self::from_py(json::py_value_of(value))
    }

    /// A message from JSON text, read as Python's `json.loads` reads a `str` (so `NaN` and
    /// integers of any size are kept exactly, and a repeated member keeps its first place and
    /// last value, as a dict does).
    pub fn from_json_str(text: &str) -> Result<Self, MessageJsonError> {
        let value = pyjson::loads_str(text, pyjson::MAX_READ_DEPTH)
            .map_err(|error| MessageJsonError::NotJson(JsonError::from(error)))?;
        Self::from_py(value)
    }

    /// A message from JSON bytes, read as Python's `json.loads` reads `bytes`: UTF-8 with or
    /// without a byte-order mark, UTF-16 or UTF-32 (the encodings stored entries are read in).
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, MessageJsonError> {
        let value = pyjson::loads(bytes)
            .map_err(|error| MessageJsonError::NotJson(JsonError::from(error)))?;
        Self::from_py(value)
    }

    /// Decode one stored entry exactly as the default policy does: what it returns, or why it
    /// skips the entry. For tools that inspect stores (`agent-memory doctor`).
    pub fn from_entry(bytes: &[u8]) -> Result<Self, EntryProblem> {
        let decoded = entry::decode(bytes)?;
        Ok(Self {
            members: decoded
                .members
                .into_iter()
                .map(|(name, value)| {
                    let value = match value {
                        entry::Member::Text(text) => MemberValue::Text(text),
                        entry::Member::Json(text) => MemberValue::Json(Json::from_canonical(text)),
                    };
                    (name, value)
                })
                .collect(),
        })
    }

    pub(crate) fn from_py(value: PyValue) -> Result<Self, MessageJsonError> {
        let PyValue::Object(object) = value else {
            return Err(MessageJsonError::NotAnObject);
        };
        let members: Vec<(String, MemberValue)> = object
            .iter()
            .map(|(name, value)| (name.clone(), MemberValue::from_py(value)))
            .collect();
        let message = Self { members };
        match message.member(ROLE) {
            Some(MemberValue::Text(_)) => Ok(message),
            _ => Err(MessageJsonError::NoRole),
        }
    }

    /// The message as a JSON object, members in order, or why `serde_json` cannot hold it
    /// exactly (see [`Json::to_value`]).
    pub fn to_json(&self) -> Result<Value, NotStandardJson> {
        let mut object = serde_json::Map::with_capacity(self.members.len());
        for (name, value) in &self.members {
            object.insert(name.clone(), value.to_value()?);
        }
        Ok(Value::Object(object))
    }

    /// The message as `json.dumps` writes the dict: exactly the bytes the built-in policies
    /// store.
    pub fn to_json_string(&self) -> String {
        let mut out = String::from("{");
        for (index, (name, value)) in self.members.iter().enumerate() {
            if index > 0 {
                out.push_str(", ");
            }
            pyjson::write_str(&mut out, name);
            out.push_str(": ");
            match value {
                MemberValue::Text(text) => pyjson::write_str(&mut out, text),
                MemberValue::Json(json) => out.push_str(json.as_str()),
            }
        }
        out.push('}');
        out
    }

    /// The members, for the conversions into the contract.
    pub(crate) fn into_members(self) -> Vec<(String, MemberValue)> {
        self.members
    }

    /// A message of these members, as they are (checked by whoever writes it).
    pub(crate) fn from_members(members: Vec<(String, MemberValue)>) -> Self {
        Self { members }
    }

    /// The size of the message's stored entry (its [`Message::to_json_string`]).
    pub fn encoded_len(&self) -> u64 {
        entry::encoded_len(
            self.members
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_member_ref())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_with_every_member_in_its_place() {
        let value = json!({
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function"}],
            "refusal": null,
            "content": "checking"
        });
        let message = Message::from_json(&value).unwrap();
        assert_eq!(message.text(), Some("checking"));
        assert_eq!(message.to_json(), Ok(value));
        assert_eq!(
            message.to_json_string(),
            r#"{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}], "refusal": null, "content": "checking"}"#
        );
    }

    #[test]
    fn role_and_content_stay_wherever_they_stand() {
        for text in [
            r#"{"content": "first", "role": "user"}"#,
            r#"{"role": "user", "name": "alice", "content": "hi"}"#,
            r#"{"name": "x", "role": "tool", "tool_call_id": "c", "content": null}"#,
        ] {
            assert_eq!(Message::from_json_str(text).unwrap().to_json_string(), text);
        }
    }

    #[test]
    fn absent_content_is_not_null_content() {
        let message = Message::from_json(&json!({"role": "assistant", "tool_calls": []})).unwrap();
        assert_eq!(message.content(), None);
        let null = Message::from_json(&json!({"role": "assistant", "content": null})).unwrap();
        assert_eq!(null.content(), Some(&MemberValue::Json(Json::null())));
    }

    #[test]
    fn values_that_are_not_messages_are_refused() {
        assert_eq!(
            Message::from_json(&json!([1])),
            Err(MessageJsonError::NotAnObject)
        );
        assert_eq!(
            Message::from_json(&json!({"content": "x"})),
            Err(MessageJsonError::NoRole)
        );
        assert_eq!(
            Message::from_json(&json!({"role": 1})),
            Err(MessageJsonError::NoRole)
        );
        assert!(matches!(
            Message::from_json_str("{"),
            Err(MessageJsonError::NotJson(_))
        ));
    }

    #[test]
    fn python_only_values_are_kept_exactly() {
        let text = r#"{"role":"user","content":"x","n":123456789012345678901234567890,"f":NaN,"g":0.4245191891425139}"#;
        let message = Message::from_json_str(text).unwrap();
        assert_eq!(
            message.to_json_string(),
            r#"{"role": "user", "content": "x", "n": 123456789012345678901234567890, "f": NaN, "g": 0.4245191891425139}"#
        );
        assert_eq!(message.to_json(), Err(NotStandardJson::IntegerBeyond64Bits));
    }

    #[test]
    fn json_bytes_are_read_in_every_encoding_python_detects() {
        let text = r#"{"role": "user", "content": "h\u00e9"}"#;
        let utf16: Vec<u8> = "{\"role\": \"user\", \"content\": \"hé\"}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(text.as_bytes());
        for bytes in [text.as_bytes().to_vec(), bom, utf16] {
            let message = Message::from_json_bytes(&bytes).unwrap();
            assert_eq!(message.to_json_string(), text);
        }
    }

    #[test]
    fn with_replaces_a_member_in_its_place_and_appends_a_new_one() {
        let message = Message::from_json_str(r#"{"name": "a", "role": "user", "content": "x"}"#)
            .unwrap()
            .with("name", json!("b"))
            .with("content", "y")
            .with("z", json!(1));
        assert_eq!(
            message.to_json_string(),
            r#"{"name": "b", "role": "user", "content": "y", "z": 1}"#
        );
        assert_eq!(message.member("name"), Some(&MemberValue::Text("b".into())));
        assert_eq!(
            message.without("name").to_json_string(),
            r#"{"role": "user", "content": "y", "z": 1}"#
        );
    }

    #[test]
    fn a_string_given_as_json_is_text() {
        let message = Message::user("x").with("tool_call_id", Json::parse(r#""c1""#).unwrap());
        assert_eq!(
            message.member("tool_call_id"),
            Some(&MemberValue::Text("c1".into()))
        );
    }

    #[test]
    fn encoded_len_is_the_length_of_the_json_string() {
        for message in [
            Message::user("héllo \"wörld\" 😀\n"),
            Message::assistant("")
                .with("tool_calls", json!([{"id": "c", "f": 0.1}]))
                .with("é", json!(null)),
            Message::from_json(&json!({"content": [1, {"a": "ß"}], "role": "tool"})).unwrap(),
        ] {
            let json = message.to_json_string();
            assert_eq!(message.encoded_len(), json.len() as u64);
            assert_eq!(
                crate::contract::measure::encoded_len(&message.clone().into()),
                json.len() as u64
            );
        }
    }
}
