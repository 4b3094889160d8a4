//! What the tool-safe window needs to know about one stored entry: whether it is a system
//! message, which tool calls it makes, which it answers, and its size.
//!
//! Two tool formats are recognised, as their APIs define them:
//! - **OpenAI** (Chat Completions): an `assistant` message with a `tool_calls` array, each
//!   call an object with an `id`; each result is its own `tool` message with the
//!   `tool_call_id` it answers.
//! - **Anthropic** (Messages): an `assistant` message whose `content` is a list of blocks,
//!   some `{"type": "tool_use", "id": ...}`; the results are blocks
//!   `{"type": "tool_result", "tool_use_id": ...}` in the `content` of the next `user`
//!   message, several in one message.
//!
//! Anything else (legacy `function_call`, provider formats without ids) is an ordinary
//! message. A `tool` message without a string `tool_call_id` answers a call nobody can find:
//! it is an orphan wherever it stands.

use agent_memory_format::json::{self, Value};

use crate::codec;
use crate::types::{EntryProblem, MemberValue, Message};

/// What the window needs to know about one stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// A message with role `system`.
    pub system: bool,
    /// Whether it carries tool results (an OpenAI `tool` message, or a message with Anthropic
    /// `tool_result` blocks), and the call ids it answers. A result message with no id
    /// answers a call that cannot be found.
    pub result: Option<Vec<String>>,
    /// The ids of the tool calls it makes.
    pub calls: Vec<String>,
    /// How many result *messages* its calls need: one per call for OpenAI, one for all the
    /// calls of an Anthropic message.
    pub result_messages_needed: usize,
    /// Approximate tokens: encoded bytes / 4, rounded up.
    pub tokens: u64,
}

impl Shape {
    /// The shape of a stored entry; an entry that is not a message is neutral (it may start a
    /// window, and only its size counts).
    pub fn of_entry(entry: &[u8]) -> Self {
        Self::of_decoded(&codec::decode(entry), entry.len())
    }

    /// The shape of an entry of `len` bytes already decoded (for callers that keep the
    /// messages, so that each entry is decoded once).
    pub fn of_decoded(decoded: &Result<Message, EntryProblem>, len: usize) -> Self {
        let tokens = tokens(len);
        match decoded {
            Ok(message) => Self {
                tokens,
                ..Self::of_message(message)
            },
            Err(_) => Self {
                tokens,
                ..Self::default()
            },
        }
    }

    /// The shape of a message (its `tokens` left at 0: they come from the encoded entry).
    pub fn of_message(message: &Message) -> Self {
        let role = codec::role(message).unwrap_or_default();
        let mut shape = Self {
            system: role == "system",
            ..Self::default()
        };
        match role {
            "tool" => {
                // OpenAI: one result per message.
                let id = match codec::member(message, "tool_call_id") {
                    Some(MemberValue::Text(id)) => vec![id.clone()],
                    _ => Vec::new(),
                };
                shape.result = Some(id);
            }
            "assistant" => {
                if let Some(calls) = json_member(message, "tool_calls") {
                    shape.calls = openai_call_ids(calls);
                    shape.result_messages_needed = shape.calls.len();
                }
                let blocks = anthropic_block_ids(message, "tool_use", "id");
                if !blocks.is_empty() {
                    shape.result_messages_needed += 1;
                    shape.calls.extend(blocks);
                }
            }
            "user" if content_has_block(message, "tool_result") => {
                shape.result = Some(anthropic_block_ids(message, "tool_result", "tool_use_id"));
            }
            _ => {}
        }
        shape
    }

    /// Whether the entry carries tool results.
    pub fn is_result(&self) -> bool {
        self.result.is_some()
    }
}

/// Approximate tokens of an entry of `bytes` bytes: a quarter, rounded up (a common rule of
/// thumb for English text and JSON; the budget is a ceiling, not a tokenizer).
pub fn tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// The member `name` parsed, when it holds JSON other than a string.
fn json_member(message: &Message, name: &str) -> Option<Value> {
    match codec::member(message, name)? {
        MemberValue::Json(text) => json::loads_str(text, json::MAX_READ_DEPTH).ok(),
        MemberValue::Text(_) => None,
    }
}

/// The `id`s of an OpenAI `tool_calls` array.
fn openai_call_ids(calls: Value) -> Vec<String> {
    let Value::Array(calls) = calls else {
        return Vec::new();
    };
    calls
        .into_iter()
        .filter_map(|call| string_member(call, "id"))
        .collect()
}

/// The blocks of a list `content`, when it is one.
fn content_blocks(message: &Message) -> Vec<Value> {
    match json_member(message, "content") {
        Some(Value::Array(blocks)) => blocks,
        _ => Vec::new(),
    }
}

fn content_has_block(message: &Message, kind: &str) -> bool {
    content_blocks(message)
        .iter()
        .any(|block| block_type(block) == Some(kind))
}

/// The `id_member` of every content block of type `kind` (Anthropic's `tool_use` and
/// `tool_result` blocks).
fn anthropic_block_ids(message: &Message, kind: &str, id_member: &str) -> Vec<String> {
    content_blocks(message)
        .into_iter()
        .filter(|block| block_type(block) == Some(kind))
        .filter_map(|block| string_member(block, id_member))
        .collect()
}

fn block_type(block: &Value) -> Option<&str> {
    let Value::Object(members) = block else {
        return None;
    };
    members.iter().find_map(|(name, value)| match value {
        Value::Str(kind) if name == "type" => Some(kind.as_str()),
        _ => None,
    })
}

fn string_member(object: Value, name: &str) -> Option<String> {
    let Value::Object(members) = object else {
        return None;
    };
    members.into_iter().find_map(|(member, value)| match value {
        Value::Str(text) if member == name => Some(text),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Shape {
        Shape::of_entry(text.as_bytes())
    }

    #[test]
    fn openai_calls_and_results_are_recognised() {
        let call = shape(
            r#"{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function"}, {"id": "c2", "type": "function"}]}"#,
        );
        assert_eq!(call.calls, ["c1", "c2"]);
        assert_eq!(call.result_messages_needed, 2);
        assert!(!call.is_result());
        let result = shape(r#"{"role": "tool", "tool_call_id": "c1", "content": "18 C"}"#);
        assert_eq!(result.result, Some(vec!["c1".to_string()]));
    }

    #[test]
    fn anthropic_tool_use_and_tool_result_blocks_are_recognised() {
        let call = shape(
            r#"{"role": "assistant", "content": [{"type": "text", "text": "checking"}, {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}, {"type": "tool_use", "id": "toolu_2", "name": "w", "input": {}}]}"#,
        );
        assert_eq!(call.calls, ["toolu_1", "toolu_2"]);
        // Both results travel in one user message.
        assert_eq!(call.result_messages_needed, 1);
        let results = shape(
            r#"{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"}, {"type": "tool_result", "tool_use_id": "toolu_2", "content": "b"}]}"#,
        );
        assert_eq!(
            results.result,
            Some(vec!["toolu_1".to_string(), "toolu_2".to_string()])
        );
        let plain = shape(r#"{"role": "user", "content": [{"type": "text", "text": "hi"}]}"#);
        assert!(!plain.is_result());
    }

    #[test]
    fn a_tool_message_without_an_id_is_a_result_that_answers_nothing_findable() {
        let result = shape(r#"{"role": "tool", "content": "x"}"#);
        assert_eq!(result.result, Some(Vec::new()));
    }

    #[test]
    fn entries_that_are_not_messages_are_neutral_and_sized() {
        let neutral = shape("[1, 2, 3]");
        assert_eq!(
            neutral,
            Shape {
                tokens: 3,
                ..Shape::default()
            }
        );
    }
}
