//! A synchronous wrapper for runtimes without async, like the Python original's thread pool.

use crate::error::{BuildError, MemoryError};
use crate::memory::Memory;
use crate::message::Message;
use crate::report::{Context, Turn, WriteOutcome};
use crate::session::{SessionId, SessionIdError};

/// [`Memory`] with blocking methods. It owns a small Tokio runtime that drives each call.
///
/// From inside an async runtime it does what tokio's own blocking calls allow: on a
/// multi-thread runtime (a worker, its `block_on`, a `spawn_blocking` thread) the call runs in
/// [`tokio::task::block_in_place`], which hands the worker's other tasks to other threads
/// first; on a current-thread runtime, where tokio's `block_on` would panic and blocking the
/// one thread would stall everything on it, the call returns
/// [`MemoryError::BlockingInAsync`] instead.
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
        use tokio::runtime::{Handle, RuntimeFlavor};
        let Some(runtime) = &self.runtime else {
            return Err(MemoryError::BlockingInAsync);
        };
        match Handle::try_current() {
            // No runtime on this thread: block as tokio's `Runtime::block_on` does.
            Err(_) => runtime.block_on(call),
            // A multi-thread runtime's thread: tokio lets it block once its other tasks have
            // moved to other workers, which `block_in_place` does (and outside a worker, as on
            // a `spawn_blocking` thread, it just runs the closure).
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                // A multi-thread handle entered on a thread that runs a current-thread
                // runtime is the one case tokio refuses, with a panic before the closure runs:
                // that is this call refused, not a crash. A panic from inside the call itself
                // goes on as it would have.
                let started = std::cell::Cell::new(false);
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tokio::task::block_in_place(|| {
                        started.set(true);
                        runtime.block_on(call)
                    })
                }));
                match served {
                    Ok(result) => result,
                    Err(_) if !started.get() => Err(MemoryError::BlockingInAsync),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            // A current-thread runtime: blocking its one thread stalls every task on it, and
            // tokio's own `block_on` would panic here.
            Ok(_) => Err(MemoryError::BlockingInAsync),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> BlockingMemory {
        BlockingMemory::new(Memory::builder().build().unwrap()).unwrap()
    }

    #[test]
    fn inside_a_multi_thread_runtime_a_blocking_call_is_served_as_tokio_allows() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let memory = std::sync::Arc::new(memory());
        // In the runtime's own `block_on`, on a worker, and on a `spawn_blocking` thread.
        runtime.block_on(async {
            assert!(
                memory
                    .add_message("s", Message::user("block_on"))
                    .unwrap()
                    .is_stored()
            );
        });
        let on_worker = std::sync::Arc::clone(&memory);
        runtime
            .block_on(runtime.spawn(async move {
                assert!(
                    on_worker
                        .add_message("s", Message::user("worker"))
                        .unwrap()
                        .is_stored()
                );
            }))
            .unwrap();
        let on_pool = std::sync::Arc::clone(&memory);
        runtime
            .block_on(runtime.spawn_blocking(move || {
                assert!(
                    on_pool
                        .add_message("s", Message::user("pool"))
                        .unwrap()
                        .is_stored()
                );
            }))
            .unwrap();
        assert_eq!(memory.get_context("s").unwrap().messages.len(), 3);
        // The runtime inside `BlockingMemory` outlives the caller's: drop it outside.
        drop(runtime);
    }

    #[test]
    fn inside_a_current_thread_runtime_a_blocking_call_is_refused_not_a_deadlock() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let memory = memory();
        let refused = runtime.block_on(async { memory.get_context("s") });
        assert!(
            matches!(refused, Err(MemoryError::BlockingInAsync)),
            "{refused:?}"
        );
        // Outside it, the same handle serves.
        assert!(memory.get_context("s").is_ok());
    }

    #[test]
    fn a_multi_thread_handle_entered_on_a_current_thread_runtime_is_refused_not_a_panic() {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let memory = memory();
        let refused = current.block_on(async {
            let _entered = multi.handle().enter();
            memory.get_context("s")
        });
        assert!(
            matches!(refused, Err(MemoryError::BlockingInAsync)),
            "{refused:?}"
        );
    }
}
