//! Each error case named as a label value: short, fixed, `snake_case`, never carrying the
//! case's text (which may hold addresses, ids or content).

use crate::contract as wit;
use crate::error::{LoadError, MemoryError, PolicyError};
use crate::report::InvalidMessage;

/// The four memory operations, as metrics and spans name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    GetContext,
    AddMessages,
    AddAndGetContext,
    Clear,
}

impl Operation {
    /// Every operation, in the order of [`Operation::index`].
    pub(crate) const ALL: [Operation; 4] = [
        Self::GetContext,
        Self::AddMessages,
        Self::AddAndGetContext,
        Self::Clear,
    ];

    /// The label value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetContext => "get_context",
            Self::AddMessages => "add_messages",
            Self::AddAndGetContext => "add_and_get_context",
            Self::Clear => "clear",
        }
    }

    /// The name of its span (`otel.name`).
    pub(crate) fn span_name(self) -> &'static str {
        match self {
            Self::GetContext => "agent_memory.get_context",
            Self::AddMessages => "agent_memory.add_messages",
            Self::AddAndGetContext => "agent_memory.add_and_get_context",
            Self::Clear => "agent_memory.clear",
        }
    }

    /// Its position in [`Operation::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// How a call ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored, or read in full.
    Ok,
    /// A read the store failed: the history is empty.
    Degraded,
    /// A write the store failed.
    Failed,
    /// The request was refused (by the host or the policy); nothing was written.
    Refused,
    /// The policy failed.
    PolicyFailed,
}

impl Outcome {
    /// The label value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Refused => "refused",
            Self::PolicyFailed => "policy_failed",
        }
    }
}

/// A store error's kind, as the contract carries it: the library's own words
/// ([`crate::StoreError::kind`]), so the table is written once. Only failures are labelled,
/// so the clone costs nothing on the way that succeeds.
pub(crate) fn store_error(error: &wit::StoreError) -> &'static str {
    crate::store::StoreError::from(error.clone()).kind()
}

/// Why an entry was skipped.
pub(crate) fn entry_problem(problem: wit::EntryProblem) -> &'static str {
    match problem {
        wit::EntryProblem::NotJson => "not_json",
        wit::EntryProblem::TooDeep => "too_deep",
        wit::EntryProblem::LoneSurrogate => "lone_surrogate",
        wit::EntryProblem::NotAnObject => "not_an_object",
        wit::EntryProblem::NoRole => "no_role",
    }
}

/// How a policy failed.
pub(crate) fn policy_failure(error: &PolicyError) -> &'static str {
    match error {
        PolicyError::ComputeBudgetExceeded { .. } => "compute_budget",
        PolicyError::CallTimeout(_) => "timeout",
        PolicyError::NoCallSlot { .. } => "no_call_slot",
        PolicyError::Trapped { .. } => "trap",
        PolicyError::Instantiate { .. } => "instantiate",
        PolicyError::InvalidOutput(_) => "invalid_output",
    }
}

/// Why a request was refused, or `None` for an error that is not a refusal (a policy failure,
/// a blocking call in the wrong place).
pub(crate) fn refusal(error: &MemoryError) -> Option<&'static str> {
    Some(match error {
        MemoryError::InvalidSession(_) => "invalid_session",
        MemoryError::SessionRefused(_) => "session_refused",
        MemoryError::InvalidMessage { reason, .. } => match reason {
            InvalidMessage::TooLarge { .. } => "message_too_large",
            InvalidMessage::DuplicateMember(_) => "duplicate_member",
            InvalidMessage::NoRole => "no_role",
            InvalidMessage::InvalidJson(_) => "invalid_json",
            InvalidMessage::TooDeep(_) => "too_deep",
        },
        MemoryError::DoesNotFit { .. } => "does_not_fit",
        MemoryError::NoMessages => "no_messages",
        MemoryError::RequestTooLarge { .. } => "request_too_large",
        MemoryError::Policy(_) | MemoryError::BlockingInAsync => return None,
    })
}

/// Why a policy swap was refused.
pub(crate) fn load_error(error: &LoadError) -> &'static str {
    match error {
        LoadError::Read { .. } => "read",
        LoadError::NotAFile(_) => "not_a_file",
        LoadError::TooLarge { .. } => "too_large",
        LoadError::Compile { .. } => "compile",
        LoadError::Contract { .. } => "contract",
        LoadError::ExceedsSandbox { .. } => "exceeds_sandbox",
        LoadError::Trial(_) => "trial",
        LoadError::SelfCheck(_) => "self_check",
        LoadError::Settings(_) => "settings",
        LoadError::Engine(_) => "engine",
    }
}
