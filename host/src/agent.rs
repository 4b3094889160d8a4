//! Agent components that import `memory`: the host side of the `agent` world.
//!
//! The shape is wasmtime's own host crates' (`wasmtime-wasi-keyvalue`): a builder, a context
//! that owns the configuration ([`AgentMemoryCtx`], kept in the embedder's store data), a
//! short-lived borrowed view on which the generated `Host` trait is implemented
//! ([`AgentMemoryView`]), and [`add_to_linker`], which takes a closure from the store data to
//! the view. The `HasData` plumbing stays private.
//!
//! The embedder binds each agent to one [`Memory`] handle (a tenant: its store, settings and
//! policy) and optionally a session namespace, so an agent cannot choose its policy, read
//! another tenant's sessions, or leave its namespace. Each call runs the handle's policy on an
//! instance of that handle's own (warm or fresh, see [`crate::Isolation`]), in its own
//! wasmtime store, in the policy's runtime, whose engine may be the embedder's own
//! ([`crate::PolicyRuntime::with_engine`]). Whatever goes wrong reaches the agent as a
//! `memory-error` value, never as a trap in the agent.
//!
//! ```
//! # async fn demo() -> anyhow::Result<()> {
//! use agent_memory::Memory;
//! use agent_memory::agent::{self, AgentMemoryCtx, AgentMemoryView};
//! use wasmtime::component::Linker;
//!
//! struct AgentState {
//!     memory: AgentMemoryCtx,
//! }
//!
//! let engine = wasmtime::Engine::default();
//! let mut linker = Linker::<AgentState>::new(&engine);
//! agent::add_to_linker(&mut linker, |state: &mut AgentState| AgentMemoryView::new(&state.memory))?;
//!
//! let memory = Memory::builder().build()?; // the tenant: store, settings, policy
//! let state = AgentState {
//!     memory: AgentMemoryCtx::builder(memory).session_namespace("tenant-7/").build(),
//! };
//! // ... instantiate the agent component with `linker` in a store holding `state`.
//! # let _ = state;
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

use wasmtime::component::{HasData, Linker};

use crate::contract::checks;
use crate::contract::{self as wit, agent_memory_import as memory_import};
use crate::error::MemoryError;
use crate::memory::Memory;
use crate::session::SessionId;
use crate::telemetry::kinds::Operation;

/// Builds an [`AgentMemoryCtx`].
#[derive(Debug, Clone)]
pub struct AgentMemoryCtxBuilder {
    memory: Memory,
    namespace: String,
}

impl AgentMemoryCtxBuilder {
    /// Put every session id the agent names under `namespace`: the agent's `chat-1` is the
    /// handle's `{namespace}chat-1`. The agent never sees the namespace and cannot leave it.
    /// Default: none (the agent's ids are the handle's).
    pub fn session_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The context, ready to be kept in the agent's store data.
    pub fn build(self) -> AgentMemoryCtx {
        AgentMemoryCtx {
            memory: self.memory,
            namespace: self.namespace,
        }
    }
}

/// The memory one agent instance is bound to: a [`Memory`] handle and a session namespace.
/// Keep it in the store data of the agent's wasmtime store.
#[derive(Debug, Clone)]
pub struct AgentMemoryCtx {
    memory: Memory,
    namespace: String,
}

impl AgentMemoryCtx {
    /// A builder binding an agent to `memory`.
    pub fn builder(memory: Memory) -> AgentMemoryCtxBuilder {
        AgentMemoryCtxBuilder {
            memory,
            namespace: String::new(),
        }
    }

    /// The handle the agent's calls go to.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The handle's session id for the agent's `session_id`.
    /// The agent's id is checked on its own too: under a namespace, an empty id would
    /// otherwise name the namespace itself.
    /// A refused id is counted as a refusal of `operation`.
    fn session(
        &self,
        operation: Operation,
        session_id: &str,
    ) -> Result<SessionId, wit::MemoryError> {
        let refuse = |error| {
            let error = self
                .memory
                .refused_early(operation, MemoryError::InvalidSession(error));
            wit::MemoryError::from(&error)
        };
        SessionId::try_from(session_id).map_err(refuse)?;
        SessionId::try_from(format!("{}{session_id}", self.namespace)).map_err(refuse)
    }
}

/// A borrowed view of an [`AgentMemoryCtx`], made for each call by the closure given to
/// [`add_to_linker`].
pub struct AgentMemoryView<'a> {
    ctx: &'a AgentMemoryCtx,
}

impl<'a> AgentMemoryView<'a> {
    /// A view of `ctx`.
    pub fn new(ctx: &'a AgentMemoryCtx) -> Self {
        Self { ctx }
    }
}

/// Add the `agent-memory:policy/memory` import (and the `types` it uses) to `linker`: every
/// call an agent component makes is served by the [`AgentMemoryCtx`] that `get` finds in the
/// store data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> AgentMemoryView<'_>,
) -> wasmtime::Result<()> {
    wit::types_host::add_to_linker::<T, HasAgentMemory>(linker, get)?;
    memory_import::add_to_linker::<T, HasAgentMemory>(linker, get)?;
    Ok(())
}

struct HasAgentMemory;

impl HasData for HasAgentMemory {
    type Data<'a> = AgentMemoryView<'a>;
}

/// What the agent is told when its call has no result.
fn refusal(error: &MemoryError) -> wit::MemoryError {
    error.into()
}

/// The agent world shares the policy world's `types`, whose host side includes the store
/// fault conversion; an agent makes no store calls, so it never runs, but it decides as the
/// policy's does.
impl wit::types_host::Host for AgentMemoryView<'_> {
    fn convert_store_error(
        &mut self,
        fault: wit::faults::StoreFault,
    ) -> wasmtime::Result<wit::StoreError> {
        wit::faults::decide(fault)
    }
}

impl memory_import::Host for AgentMemoryView<'_> {
    async fn get_context(&mut self, session_id: String) -> Result<wit::Context, wit::MemoryError> {
        let session = self.ctx.session(Operation::GetContext, &session_id)?;
        let accept = |context| checks::check_context(&context).map(|()| context);
        let context = self.ctx.memory.wit_get_context(&session, accept).await;
        context.map_err(|error| refusal(&error))
    }

    async fn add_message(
        &mut self,
        session_id: String,
        message: wit::Message,
    ) -> Result<wit::WriteOutcome, wit::MemoryError> {
        self.add_messages(session_id, vec![message]).await
    }

    async fn add_messages(
        &mut self,
        session_id: String,
        messages: Vec<wit::Message>,
    ) -> Result<wit::WriteOutcome, wit::MemoryError> {
        let session = self.ctx.session(Operation::AddMessages, &session_id)?;
        let accept = |outcome| checks::check_write_outcome(&outcome).map(|()| outcome);
        let outcome = self.ctx.memory.wit_add_messages(&session, messages, accept);
        outcome.await.map_err(|error| refusal(&error))
    }

    async fn add_and_get_context(
        &mut self,
        session_id: String,
        messages: Vec<wit::Message>,
    ) -> Result<wit::Turn, wit::MemoryError> {
        let session = self.ctx.session(Operation::AddAndGetContext, &session_id)?;
        let accept = |turn: wit::Turn| {
            checks::check_write_outcome(&turn.outcome)
                .and_then(|()| checks::check_context(&turn.context))
                .map(|()| turn)
        };
        let turn = self
            .ctx
            .memory
            .wit_add_and_get_context(&session, messages, accept);
        turn.await.map_err(|error| refusal(&error))
    }

    async fn clear(&mut self, session_id: String) -> Result<wit::WriteOutcome, wit::MemoryError> {
        let session = self.ctx.session(Operation::Clear, &session_id)?;
        let accept = |outcome| checks::check_write_outcome(&outcome).map(|()| outcome);
        let outcome = self.ctx.memory.wit_clear(&session, accept).await;
        outcome.map_err(|error| refusal(&error))
    }
}
