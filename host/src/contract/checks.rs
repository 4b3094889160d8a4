//! What a policy may return. Its answers are untrusted: every JSON text is parsed before
//! anyone relies on it, member names are unique, and a message has a string `role`; an answer
//! that breaks one of these is the policy's misbehaviour ([`PolicyError::InvalidOutput`]).
//! Agents get the contract's values unconverted, after the same checks.

use agent_memory_format::json::{self as pyjson, Value as PyValue};

use super::generated as wit;
use crate::error::PolicyError;

/// Whether a message the policy returned is one the contract allows, without converting it.
pub(super) fn check_message(message: &wit::Message) -> Result<(), String> {
    check_names(message)?;
    let mut role = false;
    for member in &message.members {
        let is_text = match &member.value {
            wit::MemberValue::Text(_) => true,
            wit::MemberValue::Json(text) => {
                matches!(parse_member(&member.name, text)?, PyValue::Str(_))
            }
        };
        role |= member.name == "role" && is_text;
    }
    if !role {
        return Err("a message without a string `role`".to_string());
    }
    Ok(())
}

/// No member name twice. Names are few, so a quadratic look suffices up to a point; a
/// hostile policy returning thousands of members gets a sorted check.
pub(super) fn check_names(message: &wit::Message) -> Result<(), String> {
    let repeated = if message.members.len() <= 16 {
        message.members.iter().enumerate().find_map(|(at, member)| {
            message.members[..at]
                .iter()
                .any(|seen| seen.name == member.name)
                .then_some(&member.name)
        })
    } else {
        let mut names: Vec<&String> = message.members.iter().map(|m| &m.name).collect();
        names.sort_unstable();
        names
            .windows(2)
            .find(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
    };
    match repeated {
        Some(name) => Err(format!("member `{name}` appears twice")),
        None => Ok(()),
    }
}

pub(super) fn parse_member(member: &str, text: &str) -> Result<PyValue, String> {
    pyjson::loads_str(text, pyjson::MAX_READ_DEPTH)
        .map_err(|error| format!("member `{member}` is not JSON: {error}"))
}

/// Check a context the policy returned, for an agent that gets it as it is.
pub(crate) fn check_context(context: &wit::Context) -> Result<(), PolicyError> {
    context
        .messages
        .iter()
        .try_for_each(check_message)
        .map_err(PolicyError::InvalidOutput)
}

/// Check a write outcome the policy returned, for an agent that gets it as it is.
pub(crate) fn check_write_outcome(outcome: &wit::WriteOutcome) -> Result<(), PolicyError> {
    match outcome {
        wit::WriteOutcome::Stored(stored) => stored
            .evicted
            .iter()
            .try_for_each(check_message)
            .map_err(PolicyError::InvalidOutput),
        wit::WriteOutcome::Failed(_) => Ok(()),
    }
}
