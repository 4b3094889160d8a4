//! The public handle agents use: [`Memory`], built by [`MemoryBuilder`].

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tracing::Instrument;
use tracing::field::Empty;

use crate::contract as wit;
use crate::contract::convert;
use crate::error::{BuildError, LoadError, MemoryError, PolicyError};
use crate::instances::Instances;
use crate::message::Message;
use crate::policy::{Policy, read_policy_file};
use crate::report::InvalidMessage;
use crate::report::{Context, Turn, WriteOutcome};
use crate::runtime::{Isolation, PolicyRuntime};
use crate::sandbox::{self, Answer, Call};
use crate::session::SessionId;
use crate::settings::{Limits, Settings};
use crate::store::{RedisOptions, Store, StoreSpec};
use crate::swap;
use crate::telemetry::kinds::{self, Operation, Outcome};
use crate::telemetry::meter::{Meter, Summarize};

// A handle's name is configuration like its settings, and `error` words its refusal with the
// limit: both live in `settings`, below `error`, and are public here, beside the builder.
pub use crate::settings::{DEFAULT_HANDLE_NAME, MAX_HANDLE_NAME_BYTES};

/// Conversation memory for agents: a policy component in its sandbox, over a store.
///
/// Cheap to clone (an `Arc`); clones are the same handle: they share the store connection, the
/// policy and its warm instances. Calls from many tasks run concurrently, each on its own
/// instance of the policy: a warm one of this handle, or a fresh one (see [`Isolation`] for
/// what a policy may carry between calls in each mode).
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use agent_memory::{Memory, Message, StoreSpec};
///
/// let memory = Memory::builder().store(StoreSpec::InMemory).build()?;
/// let outcome = memory.add_message("session-1", Message::user("hello")).await?;
/// assert!(outcome.is_stored());
/// let context = memory.get_context("session-1").await?;
/// assert_eq!(context.messages[0].text(), Some("hello"));
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone)]
pub struct Memory {
    inner: Arc<Inner>,
}

struct Inner {
    /// The handle's name, for metrics and spans.
    name: Arc<str>,
    store: Store,
    /// The policy version serving new calls, with this handle's instances of it.
    serving: ArcSwap<Instances>,
    settings: Settings,
    limits: Limits,
    isolation: Isolation,
}

/// The version serving when the handle goes stops serving it (for the `policy_info` gauge).
impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(meter) = self.serving.load().meter() {
            meter.serving(false);
        }
    }
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("name", &self.inner.name)
            .field("store", &self.inner.store.describe())
            .field("policy", &self.inner.serving.load().policy().origin())
            .field("settings", &self.inner.settings)
            .field("isolation", &self.inner.isolation)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Memory`]: a store, a policy, settings and limits, each with a default.
#[derive(Debug, Clone, Default)]
pub struct MemoryBuilder {
    name: Option<String>,
    store: Option<StoreChoice>,
    policy: Option<Policy>,
    settings: Settings,
    limits: Limits,
    redis: RedisOptions,
    isolation: Isolation,
    runtime: Option<PolicyRuntime>,
}

#[derive(Debug, Clone)]
enum StoreChoice {
    Spec(StoreSpec),
    Open(Store),
}

impl MemoryBuilder {
    /// Name the handle (default: [`DEFAULT_HANDLE_NAME`]): the `handle` label of its metrics
    /// and the `agent_memory.handle` field of its spans, so an operator tells the memories of
    /// one process apart (say `support-agent` and `planner`). 1 to
    /// [`MAX_HANDLE_NAME_BYTES`] characters of `A-Z a-z 0-9 _ - .`: a label, never a session
    /// id (a series per conversation would swamp the metrics).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Use the store `spec` names (default: process memory, [`StoreSpec::InMemory`]).
    pub fn store(mut self, spec: StoreSpec) -> Self {
        self.store = Some(StoreChoice::Spec(spec));
        self
    }

    /// Use an already open store, shared with other handles.
    pub fn store_handle(mut self, store: Store) -> Self {
        self.store = Some(StoreChoice::Open(store));
        self
    }

    /// Use this policy (default: the built-in [`Policy::default_policy`], or
    /// [`PolicyRuntime::default_policy`] of the runtime given to
    /// [`MemoryBuilder::runtime`]). Its calls run in the runtime it was compiled in.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Use these policy settings (default: [`Settings::default`], the Python original's).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Use these sandbox limits (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Run the policy on warm instances or a fresh one per call (default: [`Isolation::Warm`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Compile the default policy in `runtime` when no [`MemoryBuilder::policy`] is given
    /// (default: the shared runtime, [`PolicyRuntime::shared`]). A policy given explicitly runs
    /// in the runtime it was compiled in.
    pub fn runtime(mut self, runtime: PolicyRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Use these Redis options: timeouts, reconnect backoff, replicas to wait for (default:
    /// [`RedisOptions::default`]).
    pub fn redis_options(mut self, options: RedisOptions) -> Self {
        self.redis = options;
        self
    }

    /// Open the store, load the policy and check everything: settings and limits on their own
    /// and against each other (a window the read caps could not return is refused here, not
    /// at the first read). Redis connects on first use, so this succeeds while Redis is down;
    /// calls then degrade until it is back.
    pub fn build(self) -> Result<Memory, BuildError> {
        let name = self.name.unwrap_or_else(|| DEFAULT_HANDLE_NAME.to_string());
        check_name(&name)?;
        let name: Arc<str> = Arc::from(name);
        self.settings.validate()?;
        self.limits.validate()?;
        self.limits.check_against(&self.settings)?;
        let store = match self.store.unwrap_or(StoreChoice::Spec(StoreSpec::InMemory)) {
            StoreChoice::Spec(spec) => Store::open(&spec, self.redis)?,
            StoreChoice::Open(store) => store,
        };
        let policy = match (self.policy, self.runtime) {
            (Some(policy), _) => policy,
            (None, Some(runtime)) => runtime.default_policy()?,
            (None, None) => Policy::default_policy()?,
        };
        self.limits
            .check_memory_ceiling(policy.runtime().config().max_memory_bytes)?;
        policy.check_settings(&self.settings)?;
        // The policy was tried with the default limits when it was loaded; these may be
        // tighter (less memory, less fuel).
        policy.trial_instantiation(&self.limits)?;
        let instances = Instances::new(
            policy,
            store.clone(),
            self.settings.clone(),
            self.limits,
            self.isolation,
            Some(&name),
        );
        if let Some(meter) = instances.meter() {
            meter.serving(true);
        }
        Ok(Memory {
            inner: Arc::new(Inner {
                name,
                store,
                serving: ArcSwap::new(instances),
                settings: self.settings,
                limits: self.limits,
                isolation: self.isolation,
            }),
        })
    }
}

impl Memory {
    /// A builder with every default: process memory, the default policy, the original's
    /// settings.
    pub fn builder() -> MemoryBuilder {
        MemoryBuilder::default()
    }

    /// The history of `session_id`, oldest first. A store fault gives an empty history with
    /// [`Context::degraded`] set, not an error.
    pub async fn get_context(
        &self,
        session_id: impl TryInto<SessionId, Error = crate::session::SessionIdError>,
    ) -> Result<Context, MemoryError> {
        let session = self.session(Operation::GetContext, session_id)?;
        self.wit_get_context(&session, convert::context_from_policy)
            .await
    }

    /// Append one message to `session_id`, trimming to the window and renewing the TTL.
    pub async fn add_message(
        &self,
        session_id: impl TryInto<SessionId, Error = crate::session::SessionIdError>,
        message: Message,
    ) -> Result<WriteOutcome, MemoryError> {
        self.add_messages(session_id, [message]).await
    }

    /// Append several messages to `session_id` in one atomic write: all or none.
    ///
    /// Before the policy runs, the host refuses what no policy could store: a message whose
    /// encoding is over [`Settings::max_message_bytes`]
    /// ([`MemoryError::InvalidMessage`] with [`InvalidMessage::TooLarge`]), and a request over
    /// [`Limits::max_batch_messages`] messages or [`Limits::max_transaction_bytes`] bytes
    /// ([`MemoryError::RequestTooLarge`]).
    pub async fn add_messages(
        &self,
        session_id: impl TryInto<SessionId, Error = crate::session::SessionIdError>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<WriteOutcome, MemoryError> {
        let session = self.session(Operation::AddMessages, session_id)?;
        let messages = messages.into_iter().map(Into::into).collect();
        self.wit_add_messages(&session, messages, convert::write_outcome_from_policy)
            .await
    }

    /// An agent's turn in one round trip: append `messages` to `session_id` and read the
    /// history as it stands after them, in one transaction. Where [`Memory::add_messages`] and
    /// then [`Memory::get_context`] take two round trips to the store, this takes one; the
    /// stored entries are the same.
    ///
    /// If the write fails, [`Turn::context`] is degraded by the same error (no second read is
    /// attempted). Input is checked as for [`Memory::add_messages`].
    pub async fn add_and_get_context(
        &self,
        session_id: impl TryInto<SessionId, Error = crate::session::SessionIdError>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<Turn, MemoryError> {
        let session = self.session(Operation::AddAndGetContext, session_id)?;
        let messages = messages.into_iter().map(Into::into).collect();
        self.wit_add_and_get_context(&session, messages, convert::turn_from_policy)
            .await
    }

    /// Forget `session_id`.
    pub async fn clear(
        &self,
        session_id: impl TryInto<SessionId, Error = crate::session::SessionIdError>,
    ) -> Result<WriteOutcome, MemoryError> {
        let session = self.session(Operation::Clear, session_id)?;
        self.wit_clear(&session, convert::write_outcome_from_policy)
            .await
    }

    /// `session_id` as a [`SessionId`], or the refusal, counted.
    fn session(
        &self,
        operation: Operation,
        session_id: impl TryInto<SessionId, Error = crate::session::SessionIdError>,
    ) -> Result<SessionId, MemoryError> {
        session_id
            .try_into()
            .map_err(|error| self.refused_early(operation, MemoryError::from(error)))
    }

    /// Count `error`, a request refused before any policy ran (such as an invalid session id
    /// from an agent component), and return it.
    pub(crate) fn refused_early(&self, operation: Operation, error: MemoryError) -> MemoryError {
        count_refusal(self.inner.serving.load().meter(), operation, &error, None);
        error
    }

    // The calls in the contract's own types. Each hands the policy's answer to `accept`: the
    // methods above convert it, an agent component checks it and gets it as it is (see
    // `crate::agent`). An answer `accept` refuses drops the instance that gave it.

    pub(crate) async fn wit_get_context<R>(
        &self,
        session: &SessionId,
        accept: impl FnOnce(wit::Context) -> Result<R, PolicyError>,
    ) -> Result<R, MemoryError> {
        let run = async |call: Call<'_>| sandbox::get_context(call).await;
        self.observed(Operation::GetContext, session, Ok(()), run, accept)
            .await
    }

    pub(crate) async fn wit_add_messages<R>(
        &self,
        session: &SessionId,
        messages: Vec<wit::Message>,
        accept: impl FnOnce(wit::WriteOutcome) -> Result<R, PolicyError>,
    ) -> Result<R, MemoryError> {
        let checked = self.check_request(&messages);
        let run = async move |call: Call<'_>| sandbox::add_messages(call, messages).await;
        self.observed(Operation::AddMessages, session, checked, run, accept)
            .await
    }

    pub(crate) async fn wit_add_and_get_context<R>(
        &self,
        session: &SessionId,
        messages: Vec<wit::Message>,
        accept: impl FnOnce(wit::Turn) -> Result<R, PolicyError>,
    ) -> Result<R, MemoryError> {
        let checked = self.check_request(&messages);
        let run = async move |call: Call<'_>| sandbox::add_and_get_context(call, messages).await;
        self.observed(Operation::AddAndGetContext, session, checked, run, accept)
            .await
    }

    pub(crate) async fn wit_clear<R>(
        &self,
        session: &SessionId,
        accept: impl FnOnce(wit::WriteOutcome) -> Result<R, PolicyError>,
    ) -> Result<R, MemoryError> {
        let run = async |call: Call<'_>| sandbox::clear(call).await;
        self.observed(Operation::Clear, session, Ok(()), run, accept)
            .await
    }

    /// One call, observed: in its span, on the version serving now (it runs wholly on it even
    /// if it is replaced meanwhile), counted by outcome. `checked` is the host's verdict on the
    /// request: a refusal there means the policy never runs.
    async fn observed<T: Summarize, R>(
        &self,
        operation: Operation,
        session: &SessionId,
        checked: Result<(), MemoryError>,
        run: impl AsyncFnOnce(Call<'_>) -> Result<Answer<sandbox::PolicyResult<T>>, PolicyError>,
        accept: impl FnOnce(T) -> Result<R, PolicyError>,
    ) -> Result<R, MemoryError> {
        let started = Instant::now();
        let instances = self.inner.serving.load_full();
        // No payloads, no session id: the handle, the operation and the version.
        let span = tracing::info_span!(
            target: "agent_memory::call",
            "agent_memory.call",
            otel.name = operation.span_name(),
            agent_memory.handle = &*self.inner.name,
            agent_memory.operation = operation.name(),
            agent_memory.policy.digest = instances.policy().short_digest(),
            agent_memory.outcome = Empty,
            error.type = Empty,
        );
        let (result, settled) = match checked {
            Ok(()) => {
                let call = Call {
                    instances: &instances,
                    session_id: session.as_str(),
                };
                let answer = run(call).instrument(span.clone()).await;
                let _entered = span.enter();
                settle(&instances, operation, started, answer, accept)
            }
            Err(refusal) => {
                let call = Some(started.elapsed());
                let settled = count_refusal(instances.meter(), operation, &refusal, call);
                (Err(refusal), settled)
            }
        };
        if !span.is_disabled() {
            span.record("agent_memory.outcome", settled.outcome.name());
            if let Some(kind) = settled.kind {
                span.record("error.type", kind);
            }
        }
        result
    }

    /// The host's own checks of a write request, so oversized input is refused as such instead
    /// of exhausting the sandbox and being blamed on the policy.
    fn check_request(&self, messages: &[wit::Message]) -> Result<(), MemoryError> {
        let limits = &self.inner.limits;
        let count = messages.len() as u64;
        if count > u64::from(limits.max_batch_messages) {
            return Err(MemoryError::RequestTooLarge {
                what: "messages".to_string(),
                actual: count,
                limit: u64::from(limits.max_batch_messages),
            });
        }
        let max_message = u64::from(self.inner.settings.max_message_bytes);
        let mut total = 0u64;
        for (index, message) in messages.iter().enumerate() {
            let size = crate::contract::measure::encoded_len(message);
            if size > max_message {
                return Err(MemoryError::InvalidMessage {
                    index,
                    reason: InvalidMessage::TooLarge {
                        actual: size,
                        limit: max_message,
                    },
                });
            }
            total = total.saturating_add(size);
        }
        if total > limits.max_transaction_bytes {
            return Err(MemoryError::RequestTooLarge {
                what: "bytes".to_string(),
                actual: total,
                limit: limits.max_transaction_bytes,
            });
        }
        Ok(())
    }

    /// Serve every later call with `policy`, once it has passed the handle's checks: a trial
    /// instantiation with this handle's limits, and a self-check of the memory contract with
    /// its settings against a store in memory (write, read back, turn, clear). A policy that
    /// fails either is refused with [`LoadError::Trial`] or [`LoadError::SelfCheck`], and the
    /// current one keeps serving.
    ///
    /// The swap is atomic: each call runs wholly on the version it started with (calls
    /// already running finish on the old one); the new version's digest is logged and
    /// returned by [`Memory::policy`]. The old version's warm instances are dropped once the
    /// last call running on it ends.
    pub async fn replace_policy(&self, policy: Policy) -> Result<(), LoadError> {
        let current = self.policy();
        let inner = &self.inner;
        let ceiling = policy.runtime().config().max_memory_bytes;
        let outcome = match inner.limits.check_memory_ceiling(ceiling) {
            Ok(()) => swap::admit(&policy, &inner.settings, &inner.limits, inner.isolation).await,
            Err(error) => Err(LoadError::Settings(error)),
        };
        let candidate = Meter::new(&inner.name, policy.short_digest());
        candidate.swap(outcome.as_ref().err().map(kinds::load_error));
        if let Err(error) = &outcome {
            tracing::warn!(
                target: "agent_memory::policy",
                origin = policy.origin(),
                digest = policy.digest(),
                serving = current.digest(),
                error = %crate::error::Chain(error),
                "policy refused; the current one keeps serving"
            );
            return outcome;
        }
        tracing::info!(
            target: "agent_memory::policy",
            origin = policy.origin(),
            digest = policy.digest(),
            replaced = current.digest(),
            "policy replaced"
        );
        let instances = Instances::new(
            policy,
            inner.store.clone(),
            inner.settings.clone(),
            inner.limits,
            inner.isolation,
            Some(&inner.name),
        );
        if let Some(meter) = instances.meter() {
            meter.serving(true);
        }
        // The old version's instances go when the last call running on it ends.
        let replaced = inner.serving.swap(instances);
        if let Some(meter) = replaced.meter() {
            meter.serving(false);
        }
        Ok(())
    }

    /// Compile the component `bytes` (on a blocking thread, off the async executor, in the
    /// runtime of the policy serving now), check it like [`Memory::replace_policy`], and serve
    /// later calls with it. Returns the new policy; on any refusal the current one keeps
    /// serving.
    pub async fn replace_policy_bytes(
        &self,
        bytes: Vec<u8>,
        origin: &str,
    ) -> Result<Policy, LoadError> {
        let runtime = self.policy().runtime().clone();
        let origin = origin.to_string();
        // Named for the metrics before the bytes go: a refused candidate is still a version.
        let candidate = crate::policy::digest(&bytes);
        let loaded = tokio::task::spawn_blocking(move || runtime.load(&bytes, &origin))
            .await
            .map_err(|error| LoadError::Compile {
                reason: Some(format!("the compiling thread failed: {error}")),
                engine: None,
            })
            .and_then(|loaded| loaded);
        let policy =
            loaded.inspect_err(|error| self.count_refused_swap(&candidate[..12], error))?;
        self.replace_policy(policy.clone()).await?;
        Ok(policy)
    }

    /// Read the component file at `path` (see [`crate::read_policy_file`]) and replace the
    /// policy with it, as [`Memory::replace_policy_bytes`] does.
    pub async fn replace_policy_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Policy, LoadError> {
        let path = path.as_ref();
        let owned = path.to_path_buf();
        let bytes = tokio::task::spawn_blocking(move || read_policy_file(&owned))
            .await
            .map_err(|error| LoadError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other(error.to_string()),
            })
            .and_then(|read| read)
            // No bytes, no version: counted under `unreadable`.
            .inspect_err(|error| self.count_refused_swap("unreadable", error))?;
        self.replace_policy_bytes(bytes, &path.display().to_string())
            .await
    }

    /// Count a swap to the version `candidate` (a short digest) refused with `error` before it
    /// could be checked.
    fn count_refused_swap(&self, candidate: &str, error: &LoadError) {
        Meter::new(&self.inner.name, candidate).swap(Some(kinds::load_error(error)));
    }

    /// The policy serving new calls.
    pub fn policy(&self) -> Policy {
        self.inner.serving.load().policy().clone()
    }

    /// The handle's name ([`MemoryBuilder::name`]).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How this handle runs its policy: warm instances or a fresh one per call.
    pub fn isolation(&self) -> Isolation {
        self.inner.isolation
    }

    /// The store, for inspection (TTL, key kind, sessions).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings calls run with.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The ids of the sessions in the store: keys under the prefix, prefix removed, sorted.
    /// Ids are bytes, as Redis keys are: one written by another client need not be UTF-8
    /// (`String::from_utf8_lossy` shows it; [`Store`] takes the raw key).
    pub async fn sessions(&self) -> Result<Vec<Vec<u8>>, crate::StoreError> {
        let prefix = self.inner.settings.key_prefix.as_bytes();
        let keys = self.inner.store.keys_with_prefix(prefix).await?;
        Ok(keys
            .into_iter()
            .filter_map(|key| key.strip_prefix(prefix).map(<[u8]>::to_vec))
            .collect())
    }

    /// The limits calls run with.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }
}

/// How a call ended, for its span: the outcome, and the kind of what went wrong, if anything.
struct Settled {
    outcome: Outcome,
    kind: Option<&'static str>,
}

impl Settled {
    fn new(outcome: Outcome, kind: Option<&'static str>) -> Self {
        Self { outcome, kind }
    }
}

/// A policy call's result as the API reports it: the answer as `accept` takes it, or the policy
/// failing (logged with its version) or refusing the request, both errors; counted by outcome.
/// The instance that answered serves again only if its answer was valid: accepted, or a
/// refusal the contract allows.
fn settle<T: Summarize, R>(
    instances: &Instances,
    operation: Operation,
    started: Instant,
    result: Result<Answer<sandbox::PolicyResult<T>>, PolicyError>,
    accept: impl FnOnce(T) -> Result<R, PolicyError>,
) -> (Result<R, MemoryError>, Settled) {
    let meter: Option<&Meter> = instances.meter();
    let outcome = result.and_then(|answer| {
        let Answer {
            value,
            served_by,
            policy_time,
        } = answer;
        match value {
            Ok(value) => {
                let summary = value.summarize();
                accept(value).map(|accepted| {
                    served_by.keep();
                    if let Some(meter) = meter {
                        meter.answered(operation, &summary, started.elapsed(), policy_time);
                    }
                    Ok((accepted, Settled::new(summary.outcome(), summary.kind())))
                })
            }
            Err(refused) => match convert::memory_error_from_policy(refused) {
                // A policy returning an error only the host may report misbehaved.
                MemoryError::Policy(error) => Err(error),
                refusal => {
                    served_by.keep();
                    Ok(Err(refusal))
                }
            },
        }
    });
    match outcome {
        Ok(Ok((answer, settled))) => (Ok(answer), settled),
        Ok(Err(refusal)) => {
            let settled = count_refusal(meter, operation, &refusal, Some(started.elapsed()));
            (Err(refusal), settled)
        }
        Err(error) => {
            let policy = instances.policy();
            tracing::warn!(
                target: "agent_memory::policy",
                origin = policy.origin(),
                digest = policy.digest(),
                %error,
                "policy call failed"
            );
            let kind = kinds::policy_failure(&error);
            if let Some(meter) = meter {
                meter.policy_failed(operation, kind, started.elapsed());
            }
            (
                Err(error.into()),
                Settled::new(Outcome::PolicyFailed, Some(kind)),
            )
        }
    }
}

/// Count `refusal` of `operation` under `meter` (with the time of the call, when one began) and
/// say how the call settled: the one place a refusal is counted, wherever it was made.
fn count_refusal(
    meter: Option<&Meter>,
    operation: Operation,
    refusal: &MemoryError,
    call: Option<std::time::Duration>,
) -> Settled {
    let reason = kinds::refusal(refusal);
    if let (Some(meter), Some(reason)) = (meter, reason) {
        meter.refused(operation, reason, call);
    }
    Settled::new(Outcome::Refused, reason)
}

/// Whether `name` may name a handle ([`MemoryBuilder::name`]).
fn check_name(name: &str) -> Result<(), BuildError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > MAX_HANDLE_NAME_BYTES || !name.chars().all(allowed) {
        return Err(BuildError::InvalidName(name.to_string()));
    }
    Ok(())
}
