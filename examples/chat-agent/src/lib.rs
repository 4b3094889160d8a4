//! An example agent component: a chat agent whose only capability is agent-memory's `memory`
//! import.
//!
//! It shows what an agent author writes: messages in the contract's types, one
//! `add-and-get-context` per turn (the user's message in, the history out, one round trip),
//! tool calls stored as an assistant `tool_calls` message followed by its `tool` result, and
//! every `memory-error` turned into an answer rather than a trap. Which policy serves it, which
//! store, and under which tenant, is its runtime's choice, not its own.

#![deny(missing_docs)]

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "agent-memory:chat-agent/chat-agent",
        // The `memory` and `types` interfaces come from agent-memory's package.
        generate_all,
    });

    use super::ChatAgent;
    export!(ChatAgent);
}

use bindings::agent_memory::policy::memory;
use bindings::agent_memory::policy::types::{
    Context, Member, MemberValue, MemoryError, Message, WriteOutcome,
};
use bindings::exports::agent_memory::chat_agent::chat::Guest;

struct ChatAgent;

impl Guest for ChatAgent {
    fn turn(session_id: String, text: String) -> Result<String, String> {
        let user = message("user", &text);
        let turn = memory::add_and_get_context(&session_id, &[user]).map_err(describe)?;
        if let WriteOutcome::Failed(error) = &turn.outcome {
            return Err(format!("could not remember your message: {error:?}"));
        }
        let remembered = turn.context.messages.len();
        let mut written = Vec::new();
        let reply = match text.strip_prefix("/tool ") {
            Some(argument) => {
                // A tool round: the call, its result, then the answer that uses it.
                let id = format!("call-{remembered}");
                written.push(tool_call(&id, argument));
                let result = format!("{} characters", argument.chars().count());
                written.push(tool_result(&id, &result));
                format!("The tool says: {result}.")
            }
            None => format!("I remember {remembered} messages. You said: {text}"),
        };
        written.push(message("assistant", &reply));
        match memory::add_messages(&session_id, &written).map_err(describe)? {
            WriteOutcome::Stored(_) => Ok(reply),
            WriteOutcome::Failed(error) => Err(format!("could not remember my answer: {error:?}")),
        }
    }

    fn transcript(session_id: String) -> Result<Vec<String>, String> {
        let context = memory::get_context(&session_id).map_err(describe)?;
        if let Some(error) = context.degraded {
            return Err(format!("memory is unavailable: {error:?}"));
        }
        Ok(context.messages.iter().map(line).collect())
    }

    fn remember(session_id: String, message: Message) -> Result<WriteOutcome, MemoryError> {
        memory::add_message(&session_id, &message)
    }

    fn recall(session_id: String) -> Result<Context, MemoryError> {
        memory::get_context(&session_id)
    }

    fn forget(session_id: String) -> Result<u32, String> {
        match memory::clear(&session_id).map_err(describe)? {
            WriteOutcome::Stored(stored) => Ok(stored.trimmed),
            WriteOutcome::Failed(error) => Err(format!("could not forget: {error:?}")),
        }
    }
}

fn member(name: &str, value: MemberValue) -> Member {
    Member {
        name: name.to_string(),
        value,
    }
}

fn message(role: &str, text: &str) -> Message {
    Message {
        members: vec![
            member("role", MemberValue::Text(role.to_string())),
            member("content", MemberValue::Text(text.to_string())),
        ],
    }
}

/// An assistant message that calls the `measure` tool; members other than strings are JSON
/// text.
fn tool_call(id: &str, argument: &str) -> Message {
    let arguments = format!("{{\"text\": {}}}", json_string(argument));
    Message {
        members: vec![
            member("role", MemberValue::Text("assistant".to_string())),
            member("content", MemberValue::Json("null".to_string())),
            member(
                "tool_calls",
                MemberValue::Json(format!(
                    "[{{\"id\": {}, \"type\": \"function\", \"function\": {{\"name\": \"measure\", \"arguments\": {}}}}}]",
                    json_string(id),
                    json_string(&arguments)
                )),
            ),
        ],
    }
}

/// A tool result in OpenAI's own member order: `role`, `tool_call_id`, then `content`.
fn tool_result(id: &str, result: &str) -> Message {
    Message {
        members: vec![
            member("role", MemberValue::Text("tool".to_string())),
            member("tool_call_id", MemberValue::Text(id.to_string())),
            member("content", MemberValue::Text(result.to_string())),
        ],
    }
}

/// `text` as a JSON string, as Python's `json.dumps` writes it (ASCII only, escapes).
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn line(message: &Message) -> String {
    let value = |name: &str| {
        message
            .members
            .iter()
            .find(|member| member.name == name)
            .map(|member| &member.value)
    };
    let text = |value: Option<&MemberValue>| match value {
        Some(MemberValue::Text(text) | MemberValue::Json(text)) => text.clone(),
        None => String::new(),
    };
    let calls = if value("tool_calls").is_some() {
        " {+ tool_calls}"
    } else {
        ""
    };
    format!("{}: {}{calls}", text(value("role")), text(value("content")))
}

/// What a memory error means to the agent's user.
fn describe(error: MemoryError) -> String {
    match error {
        MemoryError::InvalidSessionId(reason) => format!("invalid session id: {reason}"),
        MemoryError::PolicyFailed(reason) => format!("memory policy failed: {reason}"),
        MemoryError::NoMessages => "nothing to remember".to_string(),
        MemoryError::InvalidMessage((index, reason)) => {
            format!("message {index} refused: {reason:?}")
        }
        MemoryError::DoesNotFit((index, reason)) => {
            format!("message {index} does not fit the memory window: {reason:?}")
        }
        MemoryError::RequestTooLarge(limit) => format!(
            "too much to remember at once: {} {} (limit {})",
            limit.actual, limit.what, limit.limit
        ),
    }
}
