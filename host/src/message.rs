//! Conversation messages as agents hand them to memory and get them back.
//!
//! A message is the JSON object the Python original stores: a string `role`, a `content`, and
//! any other members (`tool_calls`, `tool_call_id`, `name`, ...), which are kept in order and
//! never touched. Nothing is ever added: LLM APIs reject unknown message fields. Member values
//! are [`Json`]: exact, as Python reads and writes them.

use agent_memory_format::entry::{self, ContentRef, NotAMessage};
use agent_memory_format::json::{self as pyjson, Value as PyValue};
use serde_json::Value;

use crate::bindings as wit;
use crate::json::{self, Json, JsonError, NotStandardJson};

/// Why a stored entry is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EntryProblem {
    /// Not JSON that Python's `json.loads` accepts (the Python original skips it too).
    #[error("not JSON")]
    NotJson,
    /// JSON nested deeper than 1000 levels (Python cannot read it either).
    #[error("nested too deeply")]
    TooDeep,
    /// JSON Python loads, but with a lone UTF-16 surrogate in a string, which Rust strings
    /// cannot hold.
    #[error("a string holds a lone UTF-16 surrogate")]
    LoneSurrogate,
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// An object without a string `role`.
    #[error("no string `role`")]
    NoRole,
}

/// One conversation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who spoke: `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// What was said.
    pub content: Content,
    /// Every other member, in order. Names are unique: [`Message::with`] replaces.
    pub(crate) members: Vec<(String, Json)>,
}

/// The `content` of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A string.
    Text(String),
    /// Any other JSON value: `null`, or a list of content parts. (A string given here is
    /// stored as a string, and reads back as [`Content::Text`].)
    Json(Json),
    /// No `content` member at all (not the same as `"content": null`).
    Absent,
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
    /// A message with text content.
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Content::Text(text.into()),
            members: Vec::new(),
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

    /// Set another member (`tool_calls`, `name`, ...), replacing one of the same name. A
    /// member named `role` or `content` is refused when the message is written
    /// ([`crate::InvalidMessage::DuplicateMember`]): set those fields instead.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Json>) -> Self {
        let name = name.into();
        let value = value.into();
        match self.members.iter_mut().find(|(known, _)| *known == name) {
            Some(member) => member.1 = value,
            None => self.members.push((name, value)),
        }
        self
    }

    /// The member called `name`, if there is one.
    pub fn member(&self, name: &str) -> Option<&Json> {
        self.members
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value)
    }

    /// Every member besides `role` and `content`, in order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = (&str, &Json)> {
        self.members
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    /// The text content, if the content is text.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::Text(text) => Some(text),
            Content::Json(_) | Content::Absent => None,
        }
    }

    /// A message from a JSON object such as `{"role": "user", "content": "hi"}`.
    pub fn from_json(value: &Value) -> Result<Self, MessageJsonError> {
        Self::from_py(json::py_value_of(value))
    }

    /// A message from JSON text, read as Python's `json.loads` reads it (so `NaN` and integers
    /// of any size are kept exactly).
    pub fn from_json_str(text: &str) -> Result<Self, MessageJsonError> {
        let value = pyjson::loads_str(text, pyjson::MAX_READ_DEPTH)
            .map_err(|error| MessageJsonError::NotJson(JsonError::from(error)))?;
        Self::from_py(value)
    }

    /// Decode one stored entry exactly as the default policy does: what it returns, or why it
    /// skips the entry. For tools that inspect stores (`agent-memory doctor`).
    pub fn from_entry(bytes: &[u8]) -> Result<Self, EntryProblem> {
        let decoded = entry::decode(bytes).map_err(|reason| match reason {
            NotAMessage::NotJson => EntryProblem::NotJson,
            NotAMessage::TooDeep => EntryProblem::TooDeep,
            NotAMessage::LoneSurrogate => EntryProblem::LoneSurrogate,
            NotAMessage::NotAnObject => EntryProblem::NotAnObject,
            NotAMessage::NoRole => EntryProblem::NoRole,
        })?;
        Ok(Self {
            role: decoded.role,
            content: match decoded.content {
                None => Content::Absent,
                Some(entry::Content::Text(text)) => Content::Text(text),
                Some(entry::Content::Json(text)) => Content::Json(Json::from_canonical(text)),
            },
            members: decoded
                .members
                .into_iter()
                .map(|(name, text)| (name, Json::from_canonical(text)))
                .collect(),
        })
    }

    pub(crate) fn from_py(value: PyValue) -> Result<Self, MessageJsonError> {
        let PyValue::Object(object) = value else {
            return Err(MessageJsonError::NotAnObject);
        };
        let mut role = None;
        let mut content = Content::Absent;
        let mut members = Vec::with_capacity(object.len().saturating_sub(2));
        for (name, member) in object {
            match (name.as_str(), member) {
                ("role", PyValue::Str(text)) => role = Some(text),
                ("role", _) => return Err(MessageJsonError::NoRole),
                ("content", PyValue::Str(text)) => content = Content::Text(text),
                ("content", other) => content = Content::Json(Json::from_py(&other)),
                (_, other) => members.push((name, Json::from_py(&other))),
            }
        }
        Ok(Self {
            role: role.ok_or(MessageJsonError::NoRole)?,
            content,
            members,
        })
    }

    /// The message as a JSON object (`role`, `content` unless absent, then the other members),
    /// or why `serde_json` cannot hold it exactly (see [`Json::to_value`]).
    pub fn to_json(&self) -> Result<Value, NotStandardJson> {
        let mut object = serde_json::Map::with_capacity(self.members.len() + 2);
        object.insert("role".to_string(), Value::String(self.role.clone()));
        match &self.content {
            Content::Text(text) => {
                object.insert("content".to_string(), Value::String(text.clone()));
            }
            Content::Json(json) => {
                object.insert("content".to_string(), json.to_value()?);
            }
            Content::Absent => {}
        }
        for (name, value) in &self.members {
            object.insert(name.clone(), value.to_value()?);
        }
        Ok(Value::Object(object))
    }

    /// The message as `json.dumps` writes it: exactly the bytes the default policy stores.
    pub fn to_json_string(&self) -> String {
        let mut out = String::from("{\"role\": ");
        pyjson::write_str(&mut out, &self.role);
        match &self.content {
            Content::Text(text) => {
                out.push_str(", \"content\": ");
                pyjson::write_str(&mut out, text);
            }
            Content::Json(json) => {
                out.push_str(", \"content\": ");
                out.push_str(json.as_str());
            }
            Content::Absent => {}
        }
        for (name, value) in &self.members {
            out.push_str(", ");
            pyjson::write_str(&mut out, name);
            out.push_str(": ");
            out.push_str(value.as_str());
        }
        out.push('}');
        out
    }
}

/// The size of a message's stored entry (its [`Message::to_json_string`]), computed without
/// building it: what the host checks against `max_message_bytes` before any policy runs. Exact
/// when the message's JSON texts are canonical (as every [`Message`]'s are).
pub(crate) fn encoded_len(message: &wit::Message) -> u64 {
    let content = message.content.as_ref().map(|content| match content {
        wit::Content::Text(text) => ContentRef::Text(text),
        wit::Content::Json(json) => ContentRef::Json(json),
    });
    let members = message
        .extra
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()));
    entry::encoded_len(&message.role, content, members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_with_every_member_in_order() {
        let value = json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{"id": "c1", "type": "function"}],
            "name": "bot"
        });
        let message = Message::from_json(&value).unwrap();
        assert_eq!(message.content, Content::Json(Json::null()));
        assert_eq!(message.to_json(), Ok(value));
        assert_eq!(
            message.to_json_string(),
            r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function"}], "name": "bot"}"#
        );
    }

    #[test]
    fn absent_content_is_not_null_content() {
        let message = Message::from_json(&json!({"role": "assistant", "tool_calls": []})).unwrap();
        assert_eq!(message.content, Content::Absent);
        assert_eq!(
            message.to_json(),
            Ok(json!({"role": "assistant", "tool_calls": []}))
        );
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
    fn with_replaces_a_member_of_the_same_name() {
        let message = Message::user("hi")
            .with("name", json!("a"))
            .with("name", json!("b"));
        assert_eq!(message.members().len(), 1);
        assert_eq!(message.member("name").map(Json::as_str), Some("\"b\""));
    }

    #[test]
    fn encoded_len_is_the_length_of_the_json_string() {
        for message in [
            Message::user("héllo \"wörld\" 😀\n"),
            Message::assistant("")
                .with("tool_calls", json!([{"id": "c", "f": 0.1}]))
                .with("é", json!(null)),
            Message::from_json(&json!({"role": "tool", "content": [1, {"a": "ß"}]})).unwrap(),
        ] {
            assert_eq!(
                encoded_len(&message.clone().into()),
                message.to_json_string().len() as u64
            );
        }
    }
}
