//! The one place that converts between the WIT contract's types (generated in
//! [`crate::bindings`]) and the library's own.
//!
//! Two directions, two levels of trust:
//! - into the contract (messages an embedder hands over, settings, store replies and errors):
//!   infallible, the host's own values;
//! - out of a policy (contexts, outcomes, errors): untrusted. Every JSON text a policy returns is
//!   parsed before anyone relies on it, and a policy that returns invalid JSON, a member twice or
//!   an error only the host may report has misbehaved ([`PolicyError::InvalidOutput`]). Agents
//!   get the contract's values unconverted, after the same checks ([`check_context`]).

use agent_memory_format::json::{self as pyjson, Value as PyValue};

use crate::bindings as wit;
use crate::error::{MemoryError, PolicyError};
use crate::json::Json;
use crate::message::{Content, EntryProblem, Message};
use crate::report::{Context, InvalidMessage, SkippedEntry, Stored, Turn, WriteOutcome};
use crate::settings::Settings;
use crate::store::{Applied, ListOp, StoreError};

// --- into the contract -------------------------------------------------------------------------

impl From<Message> for wit::Message {
    fn from(message: Message) -> Self {
        Self {
            role: message.role,
            content: match message.content {
                Content::Text(text) => Some(wit::Content::Text(text)),
                Content::Json(json) => Some(wit::Content::Json(json.into_string())),
                Content::Absent => None,
            },
            extra: message
                .members
                .into_iter()
                .map(|(name, value)| (name, value.into_string()))
                .collect(),
        }
    }
}

impl From<&Settings> for wit::Settings {
    fn from(settings: &Settings) -> Self {
        Self {
            max_messages: settings.max_messages,
            ttl_seconds: settings.ttl_seconds,
            key_prefix: settings.key_prefix.clone(),
            max_message_bytes: settings.max_message_bytes,
            extra: settings.extra.clone(),
        }
    }
}

impl From<wit::ListOp> for ListOp {
    fn from(op: wit::ListOp) -> Self {
        match op {
            wit::ListOp::Expect(entries) => Self::Expect(entries),
            wit::ListOp::Push(values) => Self::Push(values),
            wit::ListOp::PushFront(values) => Self::PushFront(values),
            wit::ListOp::Trim(range) => Self::Trim {
                start: range.start,
                stop: range.stop,
            },
            wit::ListOp::Expire(seconds) => Self::Expire { seconds },
            wit::ListOp::Delete => Self::Delete,
            wit::ListOp::Read(range) => Self::Read {
                start: range.start,
                stop: range.stop,
            },
        }
    }
}

impl From<Applied> for wit::Applied {
    fn from(applied: Applied) -> Self {
        Self {
            length_after_push: applied.length_after_push,
            deleted: applied.deleted,
            read: applied.read.map(|read| read.map_err(Into::into)),
        }
    }
}

impl From<StoreError> for wit::StoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => Self::Unavailable(reason),
            StoreError::Timeout => Self::Timeout,
            StoreError::OutcomeUnknown(reason) => Self::OutcomeUnknown(reason),
            StoreError::OutOfMemory => Self::OutOfMemory,
            StoreError::DiskFull(reason) => Self::DiskFull(reason),
            StoreError::Damaged(reason) => Self::Damaged(reason),
            StoreError::WrongType => Self::WrongType,
            StoreError::TooLarge {
                what,
                actual,
                limit,
            } => Self::TooLarge(wit::SizeLimit {
                what,
                actual,
                limit,
            }),
            StoreError::Denied(reason) => Self::Denied(reason),
            StoreError::Rejected(reason) => Self::Rejected(reason),
            StoreError::NotReplicated {
                wanted,
                acknowledged,
            } => Self::NotReplicated(wit::Replication {
                wanted,
                acknowledged,
            }),
            StoreError::Conflict => Self::Conflict,
        }
    }
}

/// What an agent component is told when its memory call has no result.
impl From<&MemoryError> for wit::MemoryError {
    fn from(error: &MemoryError) -> Self {
        match error {
            MemoryError::NoMessages => Self::NoMessages,
            MemoryError::InvalidMessage { index, reason } => Self::InvalidMessage((
                u32::try_from(*index).unwrap_or(u32::MAX),
                invalid_message_to_wit(reason),
            )),
            MemoryError::InvalidSession(error) => Self::InvalidSessionId(error.to_string()),
            MemoryError::SessionRefused(reason) => Self::InvalidSessionId(reason.clone()),
            MemoryError::RequestTooLarge {
                what,
                actual,
                limit,
            } => Self::RequestTooLarge(wit::SizeLimit {
                what: what.clone(),
                actual: *actual,
                limit: *limit,
            }),
            MemoryError::Policy(error) => Self::PolicyFailed(error.to_string()),
            // Agent calls are async: this cannot happen on their path, but is a value anyway.
            MemoryError::BlockingInAsync => Self::PolicyFailed(error.to_string()),
        }
    }
}

fn invalid_message_to_wit(reason: &InvalidMessage) -> wit::InvalidMessage {
    match reason {
        InvalidMessage::TooLarge { actual, limit } => {
            wit::InvalidMessage::TooLarge(wit::SizeLimit {
                what: "message bytes".to_string(),
                actual: *actual,
                limit: *limit,
            })
        }
        InvalidMessage::DuplicateMember(name) => wit::InvalidMessage::DuplicateMember(name.clone()),
        InvalidMessage::InvalidJson(reason) => wit::InvalidMessage::InvalidJson(reason.clone()),
        InvalidMessage::TooDeep(member) => wit::InvalidMessage::TooDeep(member.clone()),
    }
}

// --- out of a policy ---------------------------------------------------------------------------

impl From<wit::StoreError> for StoreError {
    fn from(error: wit::StoreError) -> Self {
        use wit::StoreError as Wit;
        match error {
            Wit::Unavailable(reason) => Self::Unavailable(reason),
            Wit::Timeout => Self::Timeout,
            Wit::OutcomeUnknown(reason) => Self::OutcomeUnknown(reason),
            Wit::OutOfMemory => Self::OutOfMemory,
            Wit::DiskFull(reason) => Self::DiskFull(reason),
            Wit::Damaged(reason) => Self::Damaged(reason),
            Wit::WrongType => Self::WrongType,
            Wit::TooLarge(limit) => Self::TooLarge {
                what: limit.what,
                actual: limit.actual,
                limit: limit.limit,
            },
            Wit::Denied(reason) => Self::Denied(reason),
            Wit::Rejected(reason) => Self::Rejected(reason),
            Wit::NotReplicated(replication) => Self::NotReplicated {
                wanted: replication.wanted,
                acknowledged: replication.acknowledged,
            },
            Wit::Conflict => Self::Conflict,
        }
    }
}

impl From<wit::SkippedEntry> for SkippedEntry {
    fn from(entry: wit::SkippedEntry) -> Self {
        use wit::EntryProblem as Wit;
        Self {
            position: entry.position,
            problem: match entry.problem {
                Wit::NotJson => EntryProblem::NotJson,
                Wit::TooDeep => EntryProblem::TooDeep,
                Wit::LoneSurrogate => EntryProblem::LoneSurrogate,
                Wit::NotAnObject => EntryProblem::NotAnObject,
                Wit::NoRole => EntryProblem::NoRole,
            },
        }
    }
}

impl From<wit::InvalidMessage> for InvalidMessage {
    fn from(invalid: wit::InvalidMessage) -> Self {
        match invalid {
            wit::InvalidMessage::TooLarge(limit) => Self::TooLarge {
                actual: limit.actual,
                limit: limit.limit,
            },
            wit::InvalidMessage::DuplicateMember(name) => Self::DuplicateMember(name),
            wit::InvalidMessage::InvalidJson(reason) => Self::InvalidJson(reason),
            wit::InvalidMessage::TooDeep(member) => Self::TooDeep(member),
        }
    }
}

/// A message the policy returned. Its JSON texts come from the policy, so they are parsed
/// strictly: an invalid one means the policy misbehaved. Valid ones are made canonical.
pub(crate) fn message_from_policy(message: wit::Message) -> Result<Message, String> {
    check_members(&message)?;
    let parse = |member: &str, text: &str| parse_member(member, text);
    let content = match message.content {
        Some(wit::Content::Text(text)) => Content::Text(text),
        Some(wit::Content::Json(text)) => match parse("content", &text)? {
            PyValue::Str(text) => Content::Text(text),
            other => Content::Json(Json::from_py(&other)),
        },
        None => Content::Absent,
    };
    let mut members = Vec::with_capacity(message.extra.len());
    for (name, text) in message.extra {
        let value = Json::from_py(&parse(&name, &text)?);
        members.push((name, value));
    }
    Ok(Message {
        role: message.role,
        content,
        members,
    })
}

/// Whether a message the policy returned is one the contract allows, without converting it.
fn check_message(message: &wit::Message) -> Result<(), String> {
    check_members(message)?;
    if let Some(wit::Content::Json(text)) = &message.content {
        parse_member("content", text)?;
    }
    for (name, text) in &message.extra {
        parse_member(name, text)?;
    }
    Ok(())
}

fn check_members(message: &wit::Message) -> Result<(), String> {
    for (position, (name, _)) in message.extra.iter().enumerate() {
        let repeated = message.extra[..position]
            .iter()
            .any(|(seen, _)| seen == name);
        if name == "role" || name == "content" || repeated {
            return Err(format!("member `{name}` returned twice by the policy"));
        }
    }
    Ok(())
}

fn parse_member(member: &str, text: &str) -> Result<PyValue, String> {
    pyjson::loads_str(text, pyjson::MAX_READ_DEPTH)
        .map_err(|error| format!("member `{member}` returned by the policy is not JSON: {error}"))
}

/// A context the policy returned, checked and converted.
pub(crate) fn context_from_policy(context: wit::Context) -> Result<Context, PolicyError> {
    Ok(Context {
        messages: messages_from_policy(context.messages)?,
        skipped: context.skipped.into_iter().map(Into::into).collect(),
        degraded: context.degraded.map(Into::into),
    })
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

fn messages_from_policy(messages: Vec<wit::Message>) -> Result<Vec<Message>, PolicyError> {
    messages
        .into_iter()
        .map(message_from_policy)
        .collect::<Result<_, _>>()
        .map_err(PolicyError::InvalidOutput)
}

/// A write outcome the policy returned, checked and converted.
pub(crate) fn write_outcome_from_policy(
    outcome: wit::WriteOutcome,
) -> Result<WriteOutcome, PolicyError> {
    Ok(match outcome {
        wit::WriteOutcome::Stored(stored) => WriteOutcome::Stored(Stored {
            appended: stored.appended,
            trimmed: stored.trimmed,
            length: stored.length,
            evicted: messages_from_policy(stored.evicted)?,
        }),
        wit::WriteOutcome::Failed(error) => WriteOutcome::Failed(error.into()),
    })
}

/// A turn the policy returned, checked and converted.
pub(crate) fn turn_from_policy(turn: wit::Turn) -> Result<Turn, PolicyError> {
    Ok(Turn {
        outcome: write_outcome_from_policy(turn.outcome)?,
        context: context_from_policy(turn.context)?,
    })
}

/// An error the policy returned. `policy-failed` is the host's to report: a policy returning it
/// misbehaved.
pub(crate) fn memory_error_from_policy(error: wit::MemoryError) -> MemoryError {
    match error {
        wit::MemoryError::NoMessages => MemoryError::NoMessages,
        wit::MemoryError::InvalidMessage((index, reason)) => MemoryError::InvalidMessage {
            index: index as usize,
            reason: reason.into(),
        },
        wit::MemoryError::InvalidSessionId(reason) => MemoryError::SessionRefused(reason),
        wit::MemoryError::RequestTooLarge(limit) => MemoryError::RequestTooLarge {
            what: limit.what,
            actual: limit.actual,
            limit: limit.limit,
        },
        wit::MemoryError::PolicyFailed(reason) => MemoryError::Policy(PolicyError::InvalidOutput(
            format!("returned `policy-failed`, which only the host reports: {reason}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_round_trips_through_the_contract_with_everything() {
        let message = Message::user("héllo").with("name", json!("ann"));
        let back = message_from_policy(message.clone().into()).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn invalid_or_repeated_members_from_a_policy_are_reported_not_trusted() {
        for extra in [
            vec![("x".to_string(), "{oops".to_string())],
            vec![("x".into(), "1".into()), ("x".into(), "2".into())],
            vec![("role".into(), "\"user\"".into())],
        ] {
            let wit = wit::Message {
                role: "user".into(),
                content: None,
                extra,
            };
            assert!(check_message(&wit).is_err());
            assert!(message_from_policy(wit).is_err());
        }
    }

    #[test]
    fn only_the_host_may_report_a_policy_failure() {
        let error = memory_error_from_policy(wit::MemoryError::PolicyFailed("x".into()));
        assert!(matches!(
            error,
            MemoryError::Policy(PolicyError::InvalidOutput(_))
        ));
        let back = wit::MemoryError::from(&MemoryError::Policy(PolicyError::Trapped("t".into())));
        assert!(matches!(back, wit::MemoryError::PolicyFailed(text) if text.contains("t")));
    }
}
