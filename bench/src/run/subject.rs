//! What a benchmark measures: agent-memory (the policy in its sandbox, over Redis or the
//! embedded store) and the native baseline — the `redis` crate sending the Python original's
//! commands, with `serde_json` encoding and decoding — doing the same operations.

use agent_memory::{Memory, Message};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;

/// The original's window and TTL, which every subject keeps.
const WINDOW: i64 = 50;
const TTL_SECONDS: i64 = 3600;

/// One implementation under test. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub enum Subject {
    /// agent-memory's `Memory`.
    Ours(Memory),
    /// The 20 lines of native code it replaces: one multiplexed connection, MULTI RPUSH LTRIM
    /// EXPIRE to append, LRANGE and `serde_json` to read.
    Native(MultiplexedConnection),
    /// The same on a cluster, through redis-rs's cluster client (its defaults: what a user of
    /// the crate would write).
    NativeCluster(ClusterConnection),
}

/// The operations of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Append one message.
    Add,
    /// Read the whole window (50 messages).
    Get,
    /// An agent turn: read the context, append the user's message, append the reply
    /// (three round trips).
    Turn,
    /// The same turn with agent-memory's combined operation: append the user's message and
    /// read the context in one transaction, then append the reply (two round trips).
    TurnCombined,
}

impl Operation {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Get => "get",
            Self::Turn => "turn",
            Self::TurnCombined => "turn-combined",
        }
    }
}

fn key(session: &str) -> String {
    format!("ai:memory:{session}")
}

impl Subject {
    /// Run `operation` once on `session`; `text` is the message body. Whether it succeeded.
    pub async fn run(&self, operation: Operation, session: &str, text: &str) -> bool {
        match (self, operation) {
            (Self::Ours(memory), Operation::Add) => ours_add(memory, session, "user", text).await,
            (Self::Ours(memory), Operation::Get) => ours_get(memory, session).await,
            (Self::Ours(memory), Operation::Turn) => {
                ours_get(memory, session).await
                    && ours_add(memory, session, "user", text).await
                    && ours_add(memory, session, "assistant", text).await
            }
            (Self::Ours(memory), Operation::TurnCombined) => {
                let turn = memory
                    .add_and_get_context(session, [Message::user(text)])
                    .await;
                turn.is_ok_and(|turn| turn.outcome.is_stored() && turn.context.degraded.is_none())
                    && ours_add(memory, session, "assistant", text).await
            }
            (Self::Native(connection), operation) => {
                native_run(connection.clone(), operation, session, text).await
            }
            (Self::NativeCluster(connection), operation) => {
                native_run(connection.clone(), operation, session, text).await
            }
        }
    }

    /// Fill `session` to the window, so reads read 50 messages.
    pub async fn fill(&self, session: &str, text: &str) -> bool {
        let mut ok = true;
        for _ in 0..WINDOW {
            ok &= match self {
                Self::Ours(memory) => ours_add(memory, session, "user", text).await,
                Self::Native(connection) => {
                    native_add(connection.clone(), session, "user", text).await
                }
                Self::NativeCluster(connection) => {
                    native_add(connection.clone(), session, "user", text).await
                }
            };
        }
        ok
    }
}

async fn ours_add(memory: &Memory, session: &str, role: &str, text: &str) -> bool {
    memory
        .add_message(session, Message::new(role, text))
        .await
        .is_ok_and(|outcome| outcome.is_stored())
}

async fn ours_get(memory: &Memory, session: &str) -> bool {
    memory
        .get_context(session)
        .await
        .is_ok_and(|context| context.degraded.is_none())
}

async fn native_run(
    connection: impl ConnectionLike + Clone,
    operation: Operation,
    session: &str,
    text: &str,
) -> bool {
    match operation {
        Operation::Add => native_add(connection, session, "user", text).await,
        Operation::Get => native_get(connection, session).await,
        Operation::Turn | Operation::TurnCombined => {
            native_get(connection.clone(), session).await
                && native_add(connection.clone(), session, "user", text).await
                && native_add(connection, session, "assistant", text).await
        }
    }
}

async fn native_add(
    mut connection: impl ConnectionLike,
    session: &str,
    role: &str,
    text: &str,
) -> bool {
    let entry = serde_json::json!({"role": role, "content": text}).to_string();
    let key = key(session);
    redis::pipe()
        .atomic()
        .rpush(&key, entry)
        .ignore()
        .ltrim(&key, -WINDOW as isize, -1)
        .ignore()
        .expire(&key, TTL_SECONDS)
        .ignore()
        .query_async::<()>(&mut connection)
        .await
        .is_ok()
}

async fn native_get(mut connection: impl ConnectionLike, session: &str) -> bool {
    let entries: Result<Vec<Vec<u8>>, _> = redis::cmd("LRANGE")
        .arg(key(session))
        .arg(0)
        .arg(-1)
        .query_async(&mut connection)
        .await;
    let Ok(entries) = entries else {
        return false;
    };
    // Decode as the original does, skipping what is not JSON.
    let messages: Vec<serde_json::Value> = entries
        .iter()
        .filter_map(|entry| serde_json::from_slice(entry).ok())
        .collect();
    std::hint::black_box(messages);
    true
}
