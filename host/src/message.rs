//! Conversation messages as agents hand them to memory and get them back.
//!
//! A message is the JSON object the Python original stores: a string `role`, a `content`, and
//! any other members (`tool_calls`, `tool_call_id`, `name`, ...), which are kept in order and
//! never touched. Nothing is ever added: LLM APIs reject unknown message fields.

use serde_json::{Map, Value};

use crate::bindings;

/// One conversation message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who spoke: `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// What was said.
    pub content: Content,
    /// Every other member, in order.
    pub extra: Map<String, Value>,
}

/// The `content` of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A string.
    Text(String),
    /// Any other JSON value: `null`, or a list of content parts.
    Json(Value),
    /// No `content` member at all (not the same as `"content": null`).
    Absent,
}

/// Why a JSON value is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageJsonError {
    /// The value is not a JSON object.
    #[error("a message must be a JSON object")]
    NotAnObject,
    /// `role` is missing or not a string.
    #[error("a message needs a string `role`")]
    NoRole,
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
}

impl Message {
    /// A message with text content.
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Content::Text(text.into()),
            extra: Map::new(),
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

    /// Add another member (`tool_calls`, `name`, ...).
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The text content, if the content is text.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::Text(text) => Some(text),
            Content::Json(_) | Content::Absent => None,
        }
    }

    /// A message from a JSON object such as `{"role": "user", "content": "hi"}`.
    pub fn from_json(value: Value) -> Result<Self, MessageJsonError> {
        let Value::Object(members) = value else {
            return Err(MessageJsonError::NotAnObject);
        };
        let mut role = None;
        let mut content = Content::Absent;
        let mut extra = Map::new();
        for (name, member) in members {
            match (name.as_str(), member) {
                ("role", Value::String(text)) => role = Some(text),
                ("role", _) => return Err(MessageJsonError::NoRole),
                ("content", Value::String(text)) => content = Content::Text(text),
                ("content", other) => content = Content::Json(other),
                (_, other) => {
                    extra.insert(name, other);
                }
            }
        }
        Ok(Self {
            role: role.ok_or(MessageJsonError::NoRole)?,
            content,
            extra,
        })
    }

    /// A message from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, MessageJsonError> {
        let value = serde_json::from_str(text)
            .map_err(|error| MessageJsonError::NotJson(error.to_string()))?;
        Self::from_json(value)
    }

    /// The message as a JSON object: `role`, `content` (unless absent), then the other members.
    pub fn to_json(&self) -> Value {
        let mut members = Map::with_capacity(self.extra.len() + 2);
        members.insert("role".to_string(), Value::String(self.role.clone()));
        match &self.content {
            Content::Text(text) => {
                members.insert("content".to_string(), Value::String(text.clone()));
            }
            Content::Json(value) => {
                members.insert("content".to_string(), value.clone());
            }
            Content::Absent => {}
        }
        for (name, value) in &self.extra {
            members.insert(name.clone(), value.clone());
        }
        Value::Object(members)
    }

    pub(crate) fn into_wit(self) -> bindings::Message {
        bindings::Message {
            role: self.role,
            content: match self.content {
                Content::Text(text) => Some(bindings::Content::Text(text)),
                Content::Json(value) => Some(bindings::Content::Json(value.to_string())),
                Content::Absent => None,
            },
            extra: self
                .extra
                .into_iter()
                .map(|(name, value)| (name, value.to_string()))
                .collect(),
        }
    }

    /// A message the policy returned. Its JSON texts come from the policy, so they are parsed
    /// strictly: an invalid one means the policy misbehaved.
    pub(crate) fn from_wit(message: bindings::Message) -> Result<Self, String> {
        let parse = |member: &str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|error| {
                format!("member `{member}` returned by the policy is not JSON: {error}")
            })
        };
        let content = match message.content {
            Some(bindings::Content::Text(text)) => Content::Text(text),
            Some(bindings::Content::Json(text)) => match parse("content", &text)? {
                Value::String(text) => Content::Text(text),
                other => Content::Json(other),
            },
            None => Content::Absent,
        };
        let mut extra = Map::with_capacity(message.extra.len());
        for (name, text) in message.extra {
            let value = parse(&name, &text)?;
            extra.insert(name, value);
        }
        Ok(Self {
            role: message.role,
            content,
            extra,
        })
    }
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
        let message = Message::from_json(value.clone()).unwrap();
        assert_eq!(message.content, Content::Json(Value::Null));
        assert_eq!(
            serde_json::to_string(&message.to_json()).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }

    #[test]
    fn absent_content_is_not_null_content() {
        let message = Message::from_json(json!({"role": "assistant", "tool_calls": []})).unwrap();
        assert_eq!(message.content, Content::Absent);
        assert_eq!(
            message.to_json(),
            json!({"role": "assistant", "tool_calls": []})
        );
    }

    #[test]
    fn values_that_are_not_messages_are_refused() {
        assert_eq!(
            Message::from_json(json!([1])),
            Err(MessageJsonError::NotAnObject)
        );
        assert_eq!(
            Message::from_json(json!({"content": "x"})),
            Err(MessageJsonError::NoRole)
        );
        assert_eq!(
            Message::from_json(json!({"role": 1})),
            Err(MessageJsonError::NoRole)
        );
        assert!(matches!(
            Message::from_json_str("{"),
            Err(MessageJsonError::NotJson(_))
        ));
    }

    #[test]
    fn wit_conversion_keeps_everything() {
        let message = Message::user("héllo").with("name", json!("ann"));
        let back = Message::from_wit(message.clone().into_wit()).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn invalid_json_from_a_policy_is_reported_not_trusted() {
        let wit = bindings::Message {
            role: "user".into(),
            content: None,
            extra: vec![("x".into(), "{oops".into())],
        };
        assert!(Message::from_wit(wit).is_err());
    }
}
