//! Running the example agent component (examples/chat-agent) the way an agent runtime does:
//! its own engine and linker, agent-memory's `memory` import added with
//! [`agent_memory::agent::add_to_linker`], and each agent instance bound to the memory handle
//! (tenant) and session namespace its runtime chose. Used by the example runtime
//! (`examples/agent_runtime.rs`) and the agent integration tests.

use agent_memory::Memory;
use agent_memory::agent::{self, AgentMemoryCtx, AgentMemoryView};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::CHAT_AGENT_WASM;

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "../examples/chat-agent/wit"],
        world: "agent-memory:chat-agent/chat-agent",
        imports: { default: async },
        exports: { default: async },
        // agent-memory implements the `memory` import; its generated types are shared, so
        // what the agent passes reaches the policy without conversion.
        with: {
            "agent-memory:policy/types": ::agent_memory::wit::types,
            "agent-memory:policy/memory": ::agent_memory::wit::memory,
        },
    });
}

use bindings::{ChatAgent, ChatAgentPre};

/// What an agent instance's store holds: here, only its memory binding.
pub struct AgentState {
    memory: AgentMemoryCtx,
}

/// The example agent, compiled and linked once, ready to instantiate per conversation.
pub struct ChatAgentRuntime {
    engine: Engine,
    pre: ChatAgentPre<AgentState>,
}

impl ChatAgentRuntime {
    /// Compile the example agent in `engine` and link agent-memory's `memory` import.
    pub fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let component = Component::new(engine, CHAT_AGENT_WASM)?;
        let mut linker = Linker::<AgentState>::new(engine);
        agent::add_to_linker(&mut linker, |state: &mut AgentState| {
            AgentMemoryView::new(&state.memory)
        })?;
        let pre = ChatAgentPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            engine: engine.clone(),
            pre,
        })
    }

    /// An agent instance whose memory is `memory`, its session ids under `namespace`.
    pub async fn instantiate(
        &self,
        memory: Memory,
        namespace: &str,
    ) -> wasmtime::Result<ChatAgentInstance> {
        let memory = AgentMemoryCtx::builder(memory)
            .session_namespace(namespace)
            .build();
        let mut store = Store::new(&self.engine, AgentState { memory });
        // An engine that meters fuel (one shared with policies) would stop the agent at once;
        // the agent's own budget is its runtime's business, not this example's.
        let _ = store.set_fuel(u64::MAX);
        let agent = self.pre.instantiate_async(&mut store).await?;
        Ok(ChatAgentInstance { store, agent })
    }
}

/// One instance of the example agent, with its store.
pub struct ChatAgentInstance {
    store: Store<AgentState>,
    agent: ChatAgent,
}

impl ChatAgentInstance {
    /// `chat.turn`: the agent's answer, or the error text it gave.
    pub async fn turn(
        &mut self,
        session: &str,
        text: &str,
    ) -> wasmtime::Result<Result<String, String>> {
        let chat = self.agent.agent_memory_chat_agent_chat();
        chat.call_turn(&mut self.store, session, text).await
    }

    /// `chat.transcript`.
    pub async fn transcript(
        &mut self,
        session: &str,
    ) -> wasmtime::Result<Result<Vec<String>, String>> {
        let chat = self.agent.agent_memory_chat_agent_chat();
        chat.call_transcript(&mut self.store, session).await
    }

    /// `chat.remember`: memory's answer to keeping `message` as it is.
    pub async fn remember(
        &mut self,
        session: &str,
        message: agent_memory::wit::types::Message,
    ) -> wasmtime::Result<
        Result<agent_memory::wit::types::WriteOutcome, agent_memory::wit::types::MemoryError>,
    > {
        let chat = self.agent.agent_memory_chat_agent_chat();
        chat.call_remember(&mut self.store, session, &message).await
    }

    /// `chat.recall`: the history as memory returns it.
    pub async fn recall(
        &mut self,
        session: &str,
    ) -> wasmtime::Result<
        Result<agent_memory::wit::types::Context, agent_memory::wit::types::MemoryError>,
    > {
        let chat = self.agent.agent_memory_chat_agent_chat();
        chat.call_recall(&mut self.store, session).await
    }

    /// `chat.forget`.
    pub async fn forget(&mut self, session: &str) -> wasmtime::Result<Result<u32, String>> {
        let chat = self.agent.agent_memory_chat_agent_chat();
        chat.call_forget(&mut self.store, session).await
    }
}
