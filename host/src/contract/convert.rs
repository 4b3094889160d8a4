//! The one place that converts between the WIT contract's types (generated in
//! `contract::generated`) and the library's own.
//!
//! Two directions, two levels of trust:
//! - into the contract (messages an embedder hands over, settings, store replies and errors):
//!   infallible, the host's own values;
//! - out of a policy (contexts, outcomes, errors): untrusted. Every JSON text a policy returns is
//!   parsed before anyone relies on it, and a policy that returns invalid JSON, a member twice or
//!   an error only the host may report has misbehaved ([`PolicyError::InvalidOutput`]). Agents
//!   get the contract's values unconverted, after the same checks (`contract::checks`).

use agent_memory_format::json::Value as PyValue;

use super::checks::{check_names, parse_member};
use super::declared::{SettingKind, SettingSpec};
use super::generated as wit;
use crate::error::{MemoryError, PolicyError};
use crate::json::Json;
use crate::message::{MemberValue, Message};
use crate::report::{
    Context, InvalidMessage, Stored, Turn, WindowLimit, WindowRefusal, WriteOutcome,
};
use crate::settings::Settings;
use crate::store::{Applied, StoreError};

// --- into the contract -------------------------------------------------------------------------

impl From<Message> for wit::Message {
    fn from(message: Message) -> Self {
        Self {
            members: message
                .into_members()
                .into_iter()
                .map(|(name, value)| wit::Member {
                    name,
                    value: match value {
                        MemberValue::Text(text) => wit::MemberValue::Text(text),
                        MemberValue::Json(json) => wit::MemberValue::Json(json.into_string()),
                    },
                })
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
            MemoryError::DoesNotFit { index, reason } => Self::DoesNotFit((
                u32::try_from(*index).unwrap_or(u32::MAX),
                window_refusal_to_wit(reason),
            )),
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
        InvalidMessage::NoRole => wit::InvalidMessage::NoRole,
        InvalidMessage::InvalidJson(reason) => wit::InvalidMessage::InvalidJson(reason.clone()),
        InvalidMessage::TooDeep(member) => wit::InvalidMessage::TooDeep(member.clone()),
    }
}

fn window_refusal_to_wit(reason: &WindowRefusal) -> wit::WindowRefusal {
    match reason {
        WindowRefusal::Overflow {
            limit,
            needed,
            allowed,
        } => wit::WindowRefusal::Overflow(wit::WindowOverflow {
            limit: match limit {
                WindowLimit::Messages => wit::WindowLimit::Messages,
                WindowLimit::Tokens => wit::WindowLimit::Tokens,
            },
            needed: *needed,
            allowed: *allowed,
        }),
        WindowRefusal::OrphanResult(call) => wit::WindowRefusal::OrphanResult(call.clone()),
        WindowRefusal::PolicyRule(rule) => wit::WindowRefusal::PolicyRule(rule.clone()),
    }
}

// --- out of a policy ---------------------------------------------------------------------------

impl From<wit::SettingSpec> for SettingSpec {
    fn from(spec: wit::SettingSpec) -> Self {
        Self {
            name: spec.name,
            accepts: match spec.accepts {
                wit::SettingKind::Boolean => SettingKind::Boolean,
                wit::SettingKind::Integer(range) => SettingKind::Integer {
                    min: range.min,
                    max: range.max,
                },
                wit::SettingKind::OneOf(words) => SettingKind::OneOf(words),
                wit::SettingKind::Text => SettingKind::Text,
            },
            description: spec.description,
        }
    }
}

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

impl From<wit::InvalidMessage> for InvalidMessage {
    fn from(invalid: wit::InvalidMessage) -> Self {
        match invalid {
            wit::InvalidMessage::TooLarge(limit) => Self::TooLarge {
                actual: limit.actual,
                limit: limit.limit,
            },
            wit::InvalidMessage::DuplicateMember(name) => Self::DuplicateMember(name),
            wit::InvalidMessage::NoRole => Self::NoRole,
            wit::InvalidMessage::InvalidJson(reason) => Self::InvalidJson(reason),
            wit::InvalidMessage::TooDeep(member) => Self::TooDeep(member),
        }
    }
}

impl From<wit::WindowRefusal> for WindowRefusal {
    fn from(reason: wit::WindowRefusal) -> Self {
        match reason {
            wit::WindowRefusal::Overflow(overflow) => Self::Overflow {
                limit: match overflow.limit {
                    wit::WindowLimit::Messages => WindowLimit::Messages,
                    wit::WindowLimit::Tokens => WindowLimit::Tokens,
                },
                needed: overflow.needed,
                allowed: overflow.allowed,
            },
            wit::WindowRefusal::OrphanResult(call) => Self::OrphanResult(call),
            wit::WindowRefusal::PolicyRule(rule) => Self::PolicyRule(rule),
        }
    }
}

/// A message in the contract's type (from an agent component, or a policy's answer an agent
/// got), checked as the host checks a policy's output: unique names, a string `role`, valid
/// JSON; made canonical, order kept.
impl TryFrom<wit::Message> for Message {
    type Error = String;

    fn try_from(message: wit::Message) -> Result<Self, String> {
        message_from_policy(message)
    }
}

/// A message the policy returned. Its JSON texts come from the policy, so they are parsed
/// strictly: an invalid one means the policy misbehaved. Valid ones are made canonical (a
/// string given as JSON becomes text), and the order of the members is kept.
pub(crate) fn message_from_policy(message: wit::Message) -> Result<Message, String> {
    check_names(&message)?;
    let mut members = Vec::with_capacity(message.members.len());
    for member in message.members {
        let value = match member.value {
            wit::MemberValue::Text(text) => MemberValue::Text(text),
            wit::MemberValue::Json(text) => match parse_member(&member.name, &text)? {
                PyValue::Str(text) => MemberValue::Text(text),
                other => MemberValue::Json(Json::from_py(&other)),
            },
        };
        members.push((member.name, value));
    }
    let message = Message::from_members(members);
    match message.member("role") {
        Some(MemberValue::Text(_)) => Ok(message),
        _ => Err("a message without a string `role`".to_string()),
    }
}

/// A context the policy returned, checked and converted.
pub(crate) fn context_from_policy(context: wit::Context) -> Result<Context, PolicyError> {
    Ok(Context {
        messages: messages_from_policy(context.messages)?,
        skipped: context.skipped,
        degraded: context.degraded.map(Into::into),
    })
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
        wit::MemoryError::DoesNotFit((index, reason)) => MemoryError::DoesNotFit {
            index: index as usize,
            reason: reason.into(),
        },
        wit::MemoryError::PolicyFailed(reason) => MemoryError::Policy(PolicyError::InvalidOutput(
            format!("returned `policy-failed`, which only the host reports: {reason}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::checks::check_message;
    use serde_json::json;

    #[test]
    fn a_message_round_trips_through_the_contract_with_everything() {
        let message = Message::user("héllo").with("name", json!("ann"));
        let back = message_from_policy(message.clone().into()).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn invalid_or_repeated_members_from_a_policy_are_reported_not_trusted() {
        let member = |name: &str, value: wit::MemberValue| wit::Member {
            name: name.to_string(),
            value,
        };
        let role = || member("role", wit::MemberValue::Text("user".into()));
        for members in [
            vec![role(), member("x", wit::MemberValue::Json("{oops".into()))],
            vec![
                role(),
                member("x", wit::MemberValue::Json("1".into())),
                member("x", wit::MemberValue::Json("2".into())),
            ],
            vec![
                role(),
                member("role", wit::MemberValue::Text("user".into())),
            ],
            vec![member("content", wit::MemberValue::Text("no role".into()))],
            vec![member("role", wit::MemberValue::Json("7".into()))],
        ] {
            let wit = wit::Message { members };
            assert!(check_message(&wit).is_err(), "{wit:?}");
            assert!(message_from_policy(wit).is_err());
        }
    }

    #[test]
    fn the_order_a_policy_returns_is_kept_and_strings_given_as_json_become_text() {
        let wit = wit::Message {
            members: vec![
                wit::Member {
                    name: "tool_call_id".into(),
                    value: wit::MemberValue::Json(r#""c1""#.into()),
                },
                wit::Member {
                    name: "role".into(),
                    value: wit::MemberValue::Text("tool".into()),
                },
            ],
        };
        let message = message_from_policy(wit).unwrap();
        assert_eq!(
            message.to_json_string(),
            r#"{"tool_call_id": "c1", "role": "tool"}"#
        );
    }

    #[test]
    fn only_the_host_may_report_a_policy_failure() {
        let error = memory_error_from_policy(wit::MemoryError::PolicyFailed("x".into()));
        assert!(matches!(
            error,
            MemoryError::Policy(PolicyError::InvalidOutput(_))
        ));
        let back = wit::MemoryError::from(&MemoryError::Policy(PolicyError::Trapped {
            reason: "t".into(),
            trap: None,
            panic: None,
        }));
        assert!(matches!(back, wit::MemoryError::PolicyFailed(text) if text.contains("t")));
    }
}
