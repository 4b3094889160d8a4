//! A synchronous wrapper for runtimes without async, like the Python original's thread pool.

use crate::error::{BuildError, MemoryError};
use crate::memory::Memory;
use crate::message::Message;
use crate::report::{Context, Turn, WriteOutcome};
use crate::session::{SessionId, SessionIdError};

/// [`Memory`] with blocking methods. It owns a small Tokio runtime that drives each call.
///
/// Calling it from inside an async runtime would block that runtime's thread (and deadlock a
/// current-thread runtime), so such a call returns [`MemoryError::BlockingInAsync`] instead.
///
/// ```
/// use agent_memory::{BlockingMemory, Memory, Message};
///
/// let memory = BlockingMemory::new(Memory::builder().build()?)?;
/// memory.add_message("s", Message::user("hi"))?;
/// assert_eq!(memory.get_context("s")?.messages.len(), 1);
/// let turn = memory.add_and_get_context("s", [Message::assistant("hello")])?;
/// assert!(turn.outcome.is_stored());
/// assert_eq!(turn.context.messages.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BlockingMemory {
    memory: Memory,
    /// Always `Some` until dropped; an `Option` so `Drop` can take it.
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingMemory {
    /// Wrap `memory`.
    pub fn new(memory: Memory) -> Result<Self, BuildError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| BuildError::Runtime(error.to_string()))?;
        Ok(Self {
            memory,
            runtime: Some(runtime),
        })
    }

    /// The async handle underneath.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    fn block_on<T>(
        &self,
        call: impl Future<Output = Result<T, MemoryError>>,
    ) -> Result<T, MemoryError> {
        match &self.runtime {
            Some(runtime) if tokio::runtime::Handle::try_current().is_err() => {
                runtime.block_on(call)
            }
            _ => Err(MemoryError::BlockingInAsync),
        }
    }

    /// See [`Memory::get_context`].
    pub fn get_context(
        &self,
        session_id: impl TryInto<SessionId, Error = SessionIdError>,
    ) -> Result<Context, MemoryError> {
        self.block_on(self.memory.get_context(session_id))
    }

    /// See [`Memory::add_message`].
    pub fn add_message(
        &self,
        session_id: impl TryInto<SessionId, Error = SessionIdError>,
        message: Message,
    ) -> Result<WriteOutcome, MemoryError> {
        self.block_on(self.memory.add_message(session_id, message))
    }

    /// See [`Memory::add_messages`].
    pub fn add_messages(
        &self,
        session_id: impl TryInto<SessionId, Error = SessionIdError>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<WriteOutcome, MemoryError> {
        self.block_on(self.memory.add_messages(session_id, messages))
    }

    /// See [`Memory::add_and_get_context`]: an agent's turn in one round trip.
    pub fn add_and_get_context(
        &self,
        session_id: impl TryInto<SessionId, Error = SessionIdError>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<Turn, MemoryError> {
        self.block_on(self.memory.add_and_get_context(session_id, messages))
    }

    /// See [`Memory::clear`].
    pub fn clear(
        &self,
        session_id: impl TryInto<SessionId, Error = SessionIdError>,
    ) -> Result<WriteOutcome, MemoryError> {
        self.block_on(self.memory.clear(session_id))
    }
}

impl Drop for BlockingMemory {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which panics inside another runtime;
        // the wrapper may well be dropped there (moved into an async task, say).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
