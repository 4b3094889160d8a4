//! The checks a new policy version passes before a handle takes it.
//!
//! A version is published only after it has been compiled and checked against the world
//! ([`crate::Policy`]), tried with the handle's own limits, and run through a self-check of the
//! memory contract with the handle's settings against a store in memory. The self-check
//! catches a component that type-checks but does not keep what it writes; it cannot catch one
//! that behaves only while it is being checked (nothing can, from outside): a policy is code
//! you chose to run, sandboxed so that its worst is a wrong answer about its own session.

use crate::contract as wit;
use crate::contract::convert;
use crate::error::{LoadError, SelfCheckFailure, SelfCheckProblem};
use crate::instances::Instances;
use crate::policy::Policy;
use crate::runtime::Isolation;
use crate::sandbox::{self, Answer, Call, PolicyResult};
use crate::session::SessionId;
use crate::settings::{Limits, Settings};
use crate::store::Store;

/// The session the self-check writes, in its own store in memory.
const SELF_CHECK_SESSION: &str = "agent-memory-self-check";

/// Run every check a handle makes before it takes `policy`.
pub(crate) async fn admit(
    policy: &Policy,
    settings: &Settings,
    limits: &Limits,
    isolation: Isolation,
) -> Result<(), LoadError> {
    policy
        .check_settings(settings)
        .map_err(LoadError::Settings)?;
    policy.trial_instantiation(limits)?;
    self_check(policy, settings, limits, isolation)
        .await
        .map_err(LoadError::SelfCheck)
}

/// Write, read back, write-and-read, clear and read again, against a fresh store in memory,
/// in the isolation the handle runs with; every answer must be consistent with the writes and
/// with what the policy reported. Its instances are the self-check's own, dropped after it.
async fn self_check(
    policy: &Policy,
    settings: &Settings,
    limits: &Limits,
    isolation: Isolation,
) -> Result<(), SelfCheckFailure> {
    let store = Store::from(crate::store::InMemoryStore::new());
    // Not counted: the self-check's calls serve no one.
    let instances = Instances::new(
        policy.clone(),
        store,
        settings.clone(),
        *limits,
        isolation,
        None,
    );
    // A constant the host's own rules accept (a unit test says so).
    let session = SessionId::try_from(SELF_CHECK_SESSION)
        .map_err(|error| inconsistent("the self-check session", error.to_string()))?;
    let call = || Call {
        instances: &instances,
        session_id: session.as_str(),
    };
    let first = text_message("user", "agent-memory self-check: one");
    let second = text_message("assistant", "agent-memory self-check: two");

    let stored = stored(
        "add-messages",
        sandbox::add_messages(call(), vec![first.clone()]).await,
    )?;
    let context = answer("get-context", sandbox::get_context(call()).await)?;
    expect_window("get-context after a write", &context, &stored, &first)?;

    let turn = answer(
        "add-and-get-context",
        sandbox::add_and_get_context(call(), vec![second.clone()]).await,
    )?;
    let stored = written("add-and-get-context", turn.outcome)?;
    expect_window("add-and-get-context", &turn.context, &stored, &second)?;

    let cleared = written("clear", answer("clear", sandbox::clear(call()).await)?)?;
    if cleared.appended != 0 {
        return Err(inconsistent(
            "clear",
            format!("reported {} messages appended", cleared.appended),
        ));
    }
    let context = answer("get-context", sandbox::get_context(call()).await)?;
    if !context.messages.is_empty() {
        return Err(inconsistent(
            "get-context after clear",
            format!("returned {} messages", context.messages.len()),
        ));
    }
    Ok(())
}

/// The policy's answers at `step` do not agree with each other or with the writes.
fn inconsistent(step: &'static str, problem: String) -> SelfCheckFailure {
    SelfCheckFailure {
        step,
        problem: SelfCheckProblem::Inconsistent(problem),
    }
}

fn text_message(role: &str, text: &str) -> wit::Message {
    crate::Message::new(role, text).into()
}

/// The policy's answer to one call of the self-check, or why there is none.
fn answer<T>(
    operation: &'static str,
    result: Result<Answer<PolicyResult<T>>, crate::PolicyError>,
) -> Result<T, SelfCheckFailure> {
    match result {
        Ok(Answer {
            value: Ok(value),
            served_by,
            ..
        }) => {
            served_by.keep();
            Ok(value)
        }
        Ok(Answer {
            value: Err(refused),
            ..
        }) => Err(SelfCheckFailure {
            step: operation,
            problem: SelfCheckProblem::Refused(convert::memory_error_from_policy(refused)),
        }),
        Err(error) => Err(SelfCheckFailure {
            step: operation,
            problem: SelfCheckProblem::Failed(error),
        }),
    }
}

fn stored(
    operation: &'static str,
    result: Result<Answer<PolicyResult<wit::WriteOutcome>>, crate::PolicyError>,
) -> Result<wit::Stored, SelfCheckFailure> {
    written(operation, answer(operation, result)?)
}

fn written(
    operation: &'static str,
    outcome: wit::WriteOutcome,
) -> Result<wit::Stored, SelfCheckFailure> {
    match outcome {
        wit::WriteOutcome::Stored(stored) => Ok(stored),
        wit::WriteOutcome::Failed(error) => Err(SelfCheckFailure {
            step: operation,
            problem: SelfCheckProblem::StoreFailed(error.into()),
        }),
    }
}

/// What a read after a write of one message must show: as many messages as the write said the
/// session holds, ending with the message written, unless the window dropped it at once (then
/// it was not appended, is counted as trimmed, and the window is empty).
fn expect_window(
    what: &'static str,
    context: &wit::Context,
    stored: &wit::Stored,
    written: &wit::Message,
) -> Result<(), SelfCheckFailure> {
    if let Some(error) = &context.degraded {
        return Err(SelfCheckFailure {
            step: what,
            problem: SelfCheckProblem::StoreFailed(error.clone().into()),
        });
    }
    if context.messages.len() != stored.length as usize {
        return Err(inconsistent(
            what,
            format!(
                "the write reported {} messages held, the read returned {}",
                stored.length,
                context.messages.len()
            ),
        ));
    }
    match (stored.appended, context.messages.last()) {
        (1, Some(last)) if last == written => Ok(()),
        (1, _) => Err(inconsistent(
            what,
            "the newest message read is not the one written".to_string(),
        )),
        (0, None) if stored.trimmed >= 1 => Ok(()),
        (0, _) => Err(inconsistent(
            what,
            "reported nothing appended, yet did not drop the message".to_string(),
        )),
        (appended, _) => Err(inconsistent(
            what,
            format!("reported {appended} messages appended for one written"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_check_session_is_one_the_host_accepts() {
        assert!(SessionId::try_from(SELF_CHECK_SESSION).is_ok());
    }

    #[test]
    fn a_self_check_failure_names_its_step_and_says_what_went_wrong_once() {
        let failure = SelfCheckFailure {
            step: "clear",
            problem: SelfCheckProblem::Failed(crate::PolicyError::CallTimeout(
                std::time::Duration::from_millis(5),
            )),
        };
        let refused = LoadError::SelfCheck(failure);
        assert_eq!(
            refused.to_string(),
            "component failed the memory contract's self-check: clear: the policy failed: call \
             took longer than 5ms"
        );
        // The text is whole at the top; nothing repeats it below.
        assert!(std::error::Error::source(&refused).is_none());
    }
}
