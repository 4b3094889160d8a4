//! The public handle agents use: [`Memory`], built by [`MemoryBuilder`].

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::bindings as wit;
use crate::convert;
use crate::error::{BuildError, LoadError, MemoryError, PolicyError};
use crate::message::{self, Message};
use crate::policy::{Policy, read_policy_file};
use crate::report::InvalidMessage;
use crate::report::{Context, Turn, WriteOutcome};
use crate::sandbox::{self, Call};
use crate::session::SessionId;
use crate::settings::{Limits, Settings};
use crate::store::{RedisOptions, Store, StoreSpec};
use crate::swap;

/// Conversation memory for agents: a policy component in its sandbox, over a store.
///
/// Cheap to clone (an `Arc`); clones share the store connection and the policy. Every call
/// runs in a fresh instance of the policy, so calls from many tasks run concurrently.
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
    store: Store,
    policy: ArcSwap<Policy>,
    settings: Settings,
    limits: Limits,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("store", &self.inner.store.describe())
            .field("policy", &self.inner.policy.load().origin())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Memory`]: a store, a policy, settings and limits, each with a default.
#[derive(Debug, Clone, Default)]
pub struct MemoryBuilder {
    store: Option<StoreChoice>,
    policy: Option<Policy>,
    settings: Settings,
    limits: Limits,
    redis: RedisOptions,
}

#[derive(Debug, Clone)]
enum StoreChoice {
    Spec(StoreSpec),
    Open(Store),
}

impl MemoryBuilder {
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

    /// Use this policy (default: the built-in [`Policy::default_policy`]).
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
        self.settings.validate()?;
        self.limits.validate()?;
        self.limits.check_against(&self.settings)?;
        let store = match self.store.unwrap_or(StoreChoice::Spec(StoreSpec::InMemory)) {
            StoreChoice::Spec(spec) => Store::open(&spec, self.redis)?,
            StoreChoice::Open(store) => store,
        };
        let policy = match self.policy {
            Some(policy) => policy,
            None => Policy::default_policy()?,
        };
        policy.check_settings(&self.settings)?;
        // The policy was tried with the default limits when it was loaded; these may be
        // tighter (less memory, less fuel).
        policy.trial_instantiation(&self.limits)?;
        Ok(Memory {
            inner: Arc::new(Inner {
                store,
                policy: ArcSwap::from_pointee(policy),
                settings: self.settings,
                limits: self.limits,
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
        session_id: impl TryInto<SessionId, Error = crate::SessionIdError>,
    ) -> Result<Context, MemoryError> {
        let context = self.wit_get_context(&session_id.try_into()?).await?;
        Ok(convert::context_from_policy(context)?)
    }

    /// Append one message to `session_id`, trimming to the window and renewing the TTL.
    pub async fn add_message(
        &self,
        session_id: impl TryInto<SessionId, Error = crate::SessionIdError>,
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
        session_id: impl TryInto<SessionId, Error = crate::SessionIdError>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<WriteOutcome, MemoryError> {
        let session = session_id.try_into()?;
        let messages = messages.into_iter().map(Into::into).collect();
        let outcome = self.wit_add_messages(&session, messages).await?;
        Ok(convert::write_outcome_from_policy(outcome)?)
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
        session_id: impl TryInto<SessionId, Error = crate::SessionIdError>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<Turn, MemoryError> {
        let session = session_id.try_into()?;
        let messages = messages.into_iter().map(Into::into).collect();
        let turn = self.wit_add_and_get_context(&session, messages).await?;
        Ok(convert::turn_from_policy(turn)?)
    }

    /// Forget `session_id`.
    pub async fn clear(
        &self,
        session_id: impl TryInto<SessionId, Error = crate::SessionIdError>,
    ) -> Result<WriteOutcome, MemoryError> {
        let outcome = self.wit_clear(&session_id.try_into()?).await?;
        Ok(convert::write_outcome_from_policy(outcome)?)
    }

    // The calls in the contract's own types: what the methods above convert, and what an agent
    // component gets as it is (see `crate::agent`).

    pub(crate) async fn wit_get_context(
        &self,
        session: &SessionId,
    ) -> Result<wit::Context, MemoryError> {
        let policy = self.inner.policy.load_full();
        let call = self.call(&policy, session);
        settle(&policy, sandbox::get_context(call).await)
    }

    pub(crate) async fn wit_add_messages(
        &self,
        session: &SessionId,
        messages: Vec<wit::Message>,
    ) -> Result<wit::WriteOutcome, MemoryError> {
        self.check_request(&messages)?;
        let policy = self.inner.policy.load_full();
        let call = self.call(&policy, session);
        settle(&policy, sandbox::add_messages(call, messages).await)
    }

    pub(crate) async fn wit_add_and_get_context(
        &self,
        session: &SessionId,
        messages: Vec<wit::Message>,
    ) -> Result<wit::Turn, MemoryError> {
        self.check_request(&messages)?;
        let policy = self.inner.policy.load_full();
        let call = self.call(&policy, session);
        settle(&policy, sandbox::add_and_get_context(call, messages).await)
    }

    pub(crate) async fn wit_clear(
        &self,
        session: &SessionId,
    ) -> Result<wit::WriteOutcome, MemoryError> {
        let policy = self.inner.policy.load_full();
        let call = self.call(&policy, session);
        settle(&policy, sandbox::clear(call).await)
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
            let size = message::encoded_len(message);
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
    /// returned by [`Memory::policy`].
    pub async fn replace_policy(&self, policy: Policy) -> Result<(), LoadError> {
        let current = self.policy();
        let outcome = swap::admit(&policy, &self.inner.settings, &self.inner.limits).await;
        if let Err(error) = &outcome {
            tracing::warn!(
                target: "agent_memory::policy",
                origin = policy.origin(),
                digest = policy.digest(),
                serving = current.digest(),
                %error,
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
        self.inner.policy.store(Arc::new(policy));
        Ok(())
    }

    /// Compile the component `bytes` (on a blocking thread, off the async executor, in the
    /// engine of the policy serving now), check it like [`Memory::replace_policy`], and serve
    /// later calls with it. Returns the new policy; on any refusal the current one keeps
    /// serving.
    pub async fn replace_policy_bytes(
        &self,
        bytes: Vec<u8>,
        origin: &str,
    ) -> Result<Policy, LoadError> {
        let engine = self.policy().loaded().engine().clone();
        let origin = origin.to_string();
        let policy =
            tokio::task::spawn_blocking(move || Policy::from_bytes_in(&engine, &bytes, &origin))
                .await
                .map_err(|error| {
                    LoadError::Compile(format!("the compiling thread failed: {error}"))
                })??;
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
            })??;
        self.replace_policy_bytes(bytes, &path.display().to_string())
            .await
    }

    /// The policy serving new calls.
    pub fn policy(&self) -> Policy {
        Policy::clone(&self.inner.policy.load())
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

    /// A call of `policy` for `session`. The caller loaded the policy once: the call runs on
    /// that version even if it is replaced meanwhile.
    fn call<'a>(&'a self, policy: &'a Policy, session: &'a SessionId) -> Call<'a> {
        Call {
            policy,
            store: &self.inner.store,
            settings: &self.inner.settings,
            limits: &self.inner.limits,
            session_id: session.as_str(),
        }
    }
}

/// A policy call's result as the API reports it: the policy failing (logged with its version)
/// or refusing the request are both errors.
fn settle<T>(
    policy: &Policy,
    result: Result<sandbox::PolicyResult<T>, PolicyError>,
) -> Result<T, MemoryError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(refused)) => Err(convert::memory_error_from_policy(refused)),
        Err(error) => {
            tracing::warn!(
                target: "agent_memory::policy",
                origin = policy.origin(),
                digest = policy.digest(),
                %error,
                "policy call failed"
            );
            Err(error.into())
        }
    }
}
