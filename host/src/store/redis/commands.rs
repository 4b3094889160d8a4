//! The store's operations as Redis commands on one [`Node`]: what is sent, and what each reply
//! means. Whether the node is the right one for the key is the caller's business (a single
//! server always is; a cluster routes by slot and follows redirects): every operation takes
//! `asking`, which sends `ASKING` first, as a cluster's `ASK` redirect requires.
//!
//! Transactions are MULTI/EXEC on one key: redis-rs's atomic pipeline, or written out as
//! commands when `ASKING` has to precede `MULTI` or `WAIT` follow `EXEC` (the write waits for
//! replicas, on a connection of its own: see [`Node::request_alone`]). EXPIRE is the one list
//! operation Redis does not type-check, so a transaction that renews the TTL also reads `PTTL`
//! first, inside the same MULTI: if the key turns out to hold someone else's data (WRONGTYPE),
//! its TTL is put back as it was. DEL is sent as `LLEN key` + `LTRIM key 1 0`: the length is what the
//! delete removed, and LTRIM empties (removes) a list but refuses any other type, so `clear`
//! can never delete foreign data.
//!
//! Under `maxmemory` with `noeviction`, Redis refuses every command queued in a MULTI, even a
//! read; so inspections never use MULTI, and a delete-only transaction that is refused for
//! memory is sent again as two plain commands (LTRIM frees memory, and is accepted): deleting
//! is what an operator does to get out of that state.
//!
//! A transaction that starts with an expectation (the list must be as the policy read it) is a
//! Lua script instead: see [`conditional`].

use std::future::Future;
use std::time::Duration;

use redis::{Cmd, FromRedisValue, Pipeline, Value};

use super::classify::{self, Failure, entries_reply, length_reply};
use super::conditional;
use super::node::Node;
use crate::store::{Applied, KeyKind, ListOp, Range, StoreError, Ttl};

/// An operation on one key, run on the node that serves the key (again after a redirect, with
/// `asking` set). A trait rather than a closure: the future stays unboxed and `Send`.
pub(super) trait KeyOperation: Sync {
    /// What it returns.
    type Output;

    /// The key: a cluster routes by its slot.
    fn key(&self) -> &[u8];

    /// The Redis command it is, as OpenTelemetry's `db.operation.name` names it: the command,
    /// or `MULTI` for a transaction.
    fn command_name(&self) -> &'static str;

    /// For a transaction, how many list operations it holds (`db.operation.batch.size`).
    fn batch_size(&self) -> Option<usize> {
        None
    }

    /// Run it on `node`, after `ASKING` when `asking`.
    fn run(
        &self,
        node: &Node,
        asking: bool,
    ) -> impl Future<Output = Result<Self::Output, Failure>> + Send;
}

/// [`read_range`] as a [`KeyOperation`].
pub(super) struct ReadRange<'a> {
    /// The list.
    pub key: &'a [u8],
    /// First index read.
    pub start: i64,
    /// Last index read, inclusive.
    pub stop: i64,
}

impl KeyOperation for ReadRange<'_> {
    type Output = Vec<Vec<u8>>;

    fn key(&self) -> &[u8] {
        self.key
    }

    fn command_name(&self) -> &'static str {
        "LRANGE"
    }

    async fn run(&self, node: &Node, asking: bool) -> Result<Self::Output, Failure> {
        read_range(node, self.key, self.start, self.stop, asking).await
    }
}

/// [`apply`] as a [`KeyOperation`].
pub(super) struct Apply<'a> {
    /// The list.
    pub key: &'a [u8],
    /// The transaction.
    pub ops: &'a [ListOp],
}

impl KeyOperation for Apply<'_> {
    type Output = Applied;

    fn key(&self) -> &[u8] {
        self.key
    }

    fn command_name(&self) -> &'static str {
        // A transaction that starts with an expectation is one script (see `conditional`).
        match self.ops.first() {
            Some(ListOp::Expect(_)) => "EVAL",
            _ => "MULTI",
        }
    }

    fn batch_size(&self) -> Option<usize> {
        Some(self.ops.len())
    }

    async fn run(&self, node: &Node, asking: bool) -> Result<Self::Output, Failure> {
        apply(node, self.key, self.ops, asking).await
    }
}

/// [`ttl`] of a key, as a [`KeyOperation`].
pub(super) struct TtlOf<'a>(pub &'a [u8]);

impl KeyOperation for TtlOf<'_> {
    type Output = Ttl;

    fn key(&self) -> &[u8] {
        self.0
    }

    fn command_name(&self) -> &'static str {
        "PTTL"
    }

    async fn run(&self, node: &Node, asking: bool) -> Result<Self::Output, Failure> {
        ttl(node, self.0, asking).await
    }
}

/// [`kind`] of a key, as a [`KeyOperation`].
pub(super) struct KindOf<'a>(pub &'a [u8]);

impl KeyOperation for KindOf<'_> {
    type Output = KeyKind;

    fn key(&self) -> &[u8] {
        self.0
    }

    fn command_name(&self) -> &'static str {
        "TYPE"
    }

    async fn run(&self, node: &Node, asking: bool) -> Result<Self::Output, Failure> {
        kind(node, self.0, asking).await
    }
}

/// Entries `start..=stop` of the list at `key` (LRANGE); a missing key reads as empty.
async fn read_range(
    node: &Node,
    key: &[u8],
    start: i64,
    stop: i64,
    asking: bool,
) -> Result<Vec<Vec<u8>>, Failure> {
    single(
        node,
        redis::cmd("LRANGE").arg(key).arg(start).arg(stop),
        asking,
    )
    .await
}

/// `ops` on the list at `key`, as one atomic transaction; then `WAIT`, when the options ask
/// for replicas.
async fn apply(node: &Node, key: &[u8], ops: &[ListOp], asking: bool) -> Result<Applied, Failure> {
    let delete_only = matches!(ops, [ListOp::Delete]);
    let written = if matches!(ops.first(), Some(ListOp::Expect(_))) {
        conditional_transaction(node, key, ops, asking).await
    } else {
        transaction(node, key, ops, asking).await
    };
    let written = match written {
        Err(Failure::Store(StoreError::OutOfMemory)) if delete_only => {
            delete_out_of_memory(node, key, asking).await?
        }
        other => other?,
    };
    if let (Some(wait), Some(acknowledged)) =
        (node.options().wait_for_replicas, written.acknowledged)
        && acknowledged < wait.replicas
    {
        return Err(StoreError::NotReplicated {
            wanted: wait.replicas,
            acknowledged,
        }
        .into());
    }
    Ok(written.applied)
}

/// What a write returned.
struct Written {
    /// What it applied.
    applied: Applied,
    /// How many replicas acknowledged it, when the options ask for replicas.
    acknowledged: Option<u32>,
}

/// `ops`, which start with an expectation, as one script (see [`conditional`]).
async fn conditional_transaction(
    node: &Node,
    key: &[u8],
    ops: &[ListOp],
    asking: bool,
) -> Result<Written, Failure> {
    let (pipe, count) = asking_before_each([conditional::command(key, ops)], asking);
    let (mut replies, acknowledged) = send_write(node, pipe, count).await?;
    let applied = match replies.pop() {
        Some(Value::ServerError(error)) => return Err(classify::server_error(&error)),
        Some(reply) => conditional::applied(&reply)?,
        None => return Err(unknown("no reply".to_string())),
    };
    Ok(Written {
        applied,
        acknowledged,
    })
}

/// `ops` as one MULTI/EXEC.
async fn transaction(
    node: &Node,
    key: &[u8],
    ops: &[ListOp],
    asking: bool,
) -> Result<Written, Failure> {
    let renews_ttl = ops.iter().any(|op| matches!(op, ListOp::Expire(_)));
    // The common case is redis-rs's own MULTI/EXEC (it keeps only EXEC's results). Written
    // out, it takes `ASKING` before MULTI and `WAIT` after EXEC, which an atomic pipeline
    // cannot hold.
    let written_out = asking || node.options().wait_for_replicas.is_some();
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    if !written_out {
        pipe.atomic();
    } else {
        if asking {
            // Before MULTI: the flag then holds for every command of the transaction.
            pipe.cmd("ASKING");
        }
        pipe.cmd("MULTI");
    }
    let first = pipe.len();
    // Each remembered index is the command's place among EXEC's results.
    let index = |pipe: &Pipeline| pipe.len() - first;
    if renews_ttl {
        pipe.cmd("PTTL").arg(key);
    }
    let mut push_index = None;
    let mut length_before_delete_index = None;
    let mut read_index = None;
    for op in ops {
        match op {
            // Only the conditional path takes an expectation.
            ListOp::Expect(_) => continue,
            ListOp::Push(values) | ListOp::PushFront(values) if values.is_empty() => continue,
            ListOp::PushFront(values) => {
                push_index = Some(index(&pipe));
                // LPUSH inserts each value at the head in turn: reversed, they keep their order.
                pipe.cmd("LPUSH")
                    .arg(key)
                    .arg(values.iter().rev().collect::<Vec<_>>());
            }
            ListOp::Push(values) => {
                push_index = Some(index(&pipe));
                pipe.cmd("RPUSH").arg(key).arg(values);
            }
            ListOp::Trim(Range { start, stop }) => {
                pipe.cmd("LTRIM").arg(key).arg(*start).arg(*stop);
            }
            ListOp::Expire(seconds) => {
                pipe.cmd("EXPIRE").arg(key).arg(*seconds);
            }
            ListOp::Delete => {
                length_before_delete_index = Some(index(&pipe));
                pipe.cmd("LLEN").arg(key);
                pipe.cmd("LTRIM").arg(key).arg(1).arg(0);
            }
            ListOp::Read(Range { start, stop }) => {
                read_index = Some(index(&pipe));
                pipe.cmd("LRANGE").arg(key).arg(*start).arg(*stop);
            }
        }
    }
    let queued = index(&pipe);
    if queued == 0 {
        return Ok(Written {
            applied: Applied::default(),
            acknowledged: None,
        });
    }
    let (results, acknowledged) = if written_out {
        pipe.cmd("EXEC");
        let count = pipe.len();
        let (replies, acknowledged) = send_write(node, pipe, count).await?;
        (exec_results(replies, queued)?, acknowledged)
    } else {
        // A discarded transaction (EXECABORT: a redirect or OOM while queued) is an error
        // here, read by `classify::request_error`.
        let results: Vec<Value> = node
            .request(node.options().response, async |connection| {
                pipe.query_async(connection).await
            })
            .await?;
        (check_count(results, queued)?, None)
    };
    if let Some(failure) = classify::first_failure(&results) {
        if failure == Failure::Store(StoreError::WrongType) && renews_ttl {
            restore_foreign_ttl(node, key, &results[0], asking).await;
        }
        return Err(failure);
    }
    let applied = Applied {
        length_after_push: push_index
            .map(|index| length_reply(&results[index], "RPUSH"))
            .transpose()?,
        deleted: length_before_delete_index
            .map(|index| length_reply(&results[index], "LLEN"))
            .transpose()?,
        read: read_index
            .map(|index| entries_reply(&results[index]).map(Ok))
            .transpose()?,
    };
    Ok(Written {
        applied,
        acknowledged,
    })
}

/// EXEC's results, one per queued command, from the replies to `[ASKING] MULTI`, the `queued`
/// commands and `EXEC`. A transaction the server discarded (a command refused while queued:
/// a redirect, OOM) fails with why, and nothing of it was applied.
fn exec_results(mut replies: Vec<Value>, queued: usize) -> Result<Vec<Value>, Failure> {
    match replies.pop() {
        Some(Value::Array(results)) if results.len() == queued => Ok(results),
        Some(Value::Array(results)) => Err(unknown(format!(
            "EXEC answered {} results for {queued} commands",
            results.len()
        ))),
        // EXECABORT, or a redirect at EXEC itself (the key migrated after it was queued): the
        // queued replies, then EXEC's own, say why.
        Some(Value::ServerError(error)) => {
            Err(classify::first_failure(&replies).unwrap_or_else(|| classify::server_error(&error)))
        }
        other => Err(unknown(format!("EXEC answered {other:?}"))),
    }
}

/// A delete when Redis refuses MULTI for memory: LLEN then LTRIM, pipelined but not atomic
/// (a message appended between the two is deleted too, and not counted).
async fn delete_out_of_memory(node: &Node, key: &[u8], asking: bool) -> Result<Written, Failure> {
    tracing::debug!(target: "agent_memory::store", "out of memory: deleting without MULTI");
    let mut llen = redis::cmd("LLEN");
    llen.arg(key);
    let mut ltrim = redis::cmd("LTRIM");
    ltrim.arg(key).arg(1).arg(0);
    let (pipe, count) = asking_before_each([llen, ltrim], asking);
    let (replies, acknowledged) = send_write(node, pipe, count).await?;
    if let Some(failure) = classify::first_failure(&replies) {
        return Err(failure);
    }
    Ok(Written {
        applied: Applied {
            length_after_push: None,
            deleted: Some(length_reply(&replies[0], "LLEN")?),
            read: None,
        },
        acknowledged,
    })
}

/// Send a write's `pipe` (`count` replies expected) to `node`. With `wait_for_replicas`,
/// `WAIT` follows it in the same pipeline, on a connection of the write's own: WAIT blocks the
/// connection it is sent on, and on the shared one it would hold up every other call to the
/// node for as long as a replica is missing. The write's replies, and how many replicas
/// acknowledged it.
async fn send_write(
    node: &Node,
    mut pipe: Pipeline,
    count: usize,
) -> Result<(Vec<Value>, Option<u32>), Failure> {
    let response = node.options().response;
    let Some(wait) = node.options().wait_for_replicas else {
        let replies: Vec<Value> = node
            .request(response, async |connection| {
                pipe.query_async(connection).await
            })
            .await?;
        return Ok((check_count(replies, count)?, None));
    };
    // Never 0, which would wait forever.
    let timeout_ms = u64::try_from(wait.timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    pipe.cmd("WAIT").arg(wait.replicas).arg(timeout_ms);
    let replies: Vec<Value> = node
        .request_alone(wait.timeout.saturating_add(response), async |connection| {
            pipe.query_async(connection).await
        })
        .await?;
    let mut replies = check_count(replies, count + 1)?;
    // The write was applied whatever WAIT answers; an answer that is not a count confirms no
    // replica.
    let acknowledged = match replies.pop() {
        Some(Value::Int(acknowledged)) => u32::try_from(acknowledged).unwrap_or(0),
        _ => 0,
    };
    Ok((replies, Some(acknowledged)))
}

fn check_count(replies: Vec<Value>, count: usize) -> Result<Vec<Value>, Failure> {
    if replies.len() == count {
        Ok(replies)
    } else {
        Err(unknown(format!(
            "{} replies for {count} commands",
            replies.len()
        )))
    }
}

/// Undo the EXPIRE that a transaction applied to a key holding someone else's data, using
/// the PTTL read at the start of the same transaction. Best effort: if this fails, the
/// foreign key keeps our TTL, which is logged loudly.
async fn restore_foreign_ttl(node: &Node, key: &[u8], pttl_reply: &Value, asking: bool) {
    let restore = match pttl_reply {
        Value::Int(-1) => redis::cmd("PERSIST").arg(key).clone(),
        Value::Int(ms) if *ms > 0 => redis::cmd("PEXPIRE").arg(key).arg(*ms).clone(),
        // -2: the key did not exist when the transaction began, so nothing foreign was there.
        _ => return,
    };
    let result: Result<Value, Failure> = single(node, &restore, asking).await;
    if let Err(error) = result {
        tracing::error!(
            target: "agent_memory::store",
            ?error,
            "could not restore the TTL of a key holding foreign data"
        );
    }
}

/// The time to live of `key`.
async fn ttl(node: &Node, key: &[u8], asking: bool) -> Result<Ttl, Failure> {
    let ms: i64 = single(node, redis::cmd("PTTL").arg(key), asking).await?;
    Ok(match ms {
        -2 => Ttl::Missing,
        -1 => Ttl::Persistent,
        ms => Ttl::ExpiresIn(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

/// What `key` holds.
async fn kind(node: &Node, key: &[u8], asking: bool) -> Result<KeyKind, Failure> {
    // TYPE and LLEN pipelined, not in a MULTI (refused under maxmemory): if the key changes
    // between the two, LLEN fails (ignored) or the length is a moment newer.
    let mut kind = redis::cmd("TYPE");
    kind.arg(key);
    let mut length = redis::cmd("LLEN");
    length.arg(key);
    let replies = pipelined(node, [kind, length], asking).await?;
    let kind = match &replies[0] {
        Value::SimpleString(kind) => kind.clone(),
        Value::BulkString(kind) => String::from_utf8_lossy(kind).into_owned(),
        Value::ServerError(error) => return Err(classify::server_error(error)),
        other => return Err(unknown(format!("TYPE answered {other:?}"))),
    };
    let length = match &replies[1] {
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    };
    Ok(match (kind.as_str(), length) {
        ("none", _) => KeyKind::Missing,
        ("list", Some(length)) => KeyKind::List(length),
        _ => KeyKind::Other(kind),
    })
}

/// Every key on this node that starts with `prefix`, walked with SCAN (never KEYS, which
/// blocks a large server).
pub(super) async fn keys_with_prefix(node: &Node, prefix: &[u8]) -> Result<Vec<Vec<u8>>, Failure> {
    let mut pattern = escape_glob(prefix);
    pattern.push(b'*');
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let command = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone();
        let (next, batch): (u64, Vec<Vec<u8>>) = single(node, &command, false).await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// This node's `maxmemory-policy`.
pub(super) async fn eviction_policy(node: &Node) -> Result<String, Failure> {
    let reply: Vec<String> = single(
        node,
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"),
        false,
    )
    .await?;
    reply.get(1).cloned().ok_or_else(|| {
        StoreError::Rejected("CONFIG GET maxmemory-policy answered nothing".to_string()).into()
    })
}

/// Whether this server runs in cluster mode (`INFO cluster`: `cluster_enabled:1`).
pub(super) async fn cluster_enabled(node: &Node) -> Result<bool, Failure> {
    let info: String = single(node, redis::cmd("INFO").arg("cluster"), false).await?;
    Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1"))
}

/// The server's `run_id` (`INFO server`): random per server process, so two addresses that
/// reach one server (`localhost`, `127.0.0.1`, a DNS name) give the same one.
pub(super) async fn run_id(node: &Node) -> Result<String, Failure> {
    let info: String = single(node, redis::cmd("INFO").arg("server"), false).await?;
    info.lines()
        .find_map(|line| line.trim().strip_prefix("run_id:"))
        .map(str::to_string)
        .ok_or_else(|| unknown("INFO server has no run_id".to_string()))
}

/// `CLUSTER SLOTS`, as this node sees the cluster.
pub(super) async fn cluster_slots(node: &Node) -> Result<Value, Failure> {
    single(node, redis::cmd("CLUSTER").arg("SLOTS"), false).await
}

/// One command, after `ASKING` when asking.
async fn single<T: FromRedisValue>(node: &Node, command: &Cmd, asking: bool) -> Result<T, Failure> {
    let timeout = node.options().response;
    if !asking {
        return node
            .request(timeout, async |connection| {
                command.query_async(connection).await
            })
            .await;
    }
    let mut replies = pipelined(node, [command.clone()], true).await?;
    match replies.pop() {
        Some(Value::ServerError(error)) => Err(classify::server_error(&error)),
        Some(value) => redis::from_redis_value(value)
            .map_err(|error| unknown(format!("unexpected reply: {error}"))),
        None => Err(unknown("no reply".to_string())),
    }
}

/// `commands` pipelined (each after `ASKING`, when asking: the flag lasts one command); their
/// replies, errors included as values, one per command.
async fn pipelined<const N: usize>(
    node: &Node,
    commands: [Cmd; N],
    asking: bool,
) -> Result<Vec<Value>, Failure> {
    let (pipe, count) = asking_before_each(commands, asking);
    let replies: Vec<Value> = node
        .request(node.options().response, async |connection| {
            pipe.query_async(connection).await
        })
        .await?;
    check_count(replies, count)
}

/// A pipeline of `commands`, each after an `ASKING` whose reply is dropped when asking, and
/// how many replies it gives.
fn asking_before_each<const N: usize>(commands: [Cmd; N], asking: bool) -> (Pipeline, usize) {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for command in commands {
        if asking {
            pipe.cmd("ASKING").ignore();
        }
        pipe.add_command(command);
    }
    (pipe, N)
}

fn unknown(reason: String) -> Failure {
    StoreError::OutcomeUnknown(reason).into()
}

/// Escape SCAN MATCH glob characters so that the prefix matches only itself.
fn escape_glob(prefix: &[u8]) -> Vec<u8> {
    let mut escaped = Vec::with_capacity(prefix.len() + 1);
    for &byte in prefix {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            escaped.push(b'\\');
        }
        escaped.push(byte);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_are_escaped_for_scan() {
        assert_eq!(escape_glob(b"ai:memory:"), b"ai:memory:");
        assert_eq!(escape_glob(b"a*b?[c]\\"), b"a\\*b\\?\\[c\\]\\\\");
    }
}
