//! A message's stored size, measured in the contract's type before any policy runs.

use agent_memory_format::entry::{self, MemberRef};

use super::generated as wit;

/// The size of a message's stored entry, computed without building it: what the host checks
/// against `max_message_bytes` before any policy runs. Exact when the message's JSON texts are
/// canonical (as every [`crate::Message`]'s are).
pub(crate) fn encoded_len(message: &wit::Message) -> u64 {
    entry::encoded_len(message.members.iter().map(|member| {
        let value = match &member.value {
            wit::MemberValue::Text(text) => MemberRef::Text(text),
            wit::MemberValue::Json(json) => MemberRef::Json(json),
        };
        (member.name.as_str(), value)
    }))
}
