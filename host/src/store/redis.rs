//! The Redis backend: one multiplexed connection per store, rebuilt when it breaks.
//!
//! Why not redis-rs's `ConnectionManager`: it cannot tell a failed connect (nothing was sent,
//! safe to retry) from a request lost on a broken connection (a write may have applied), and it
//! never rebuilds a connection that only times out (a half-open socket). Here connecting is a
//! separate step, so its failures are `unavailable`; a connection that drops, or that times out
//! [`RedisTimeouts::rebuild_after_timeouts`] times in a row, is discarded and the next call
//! connects afresh. Only one caller connects at a time; the others wait for its result.
//!
//! Transactions are MULTI/EXEC on one key. EXPIRE is the one list operation Redis does not
//! type-check, so a transaction that renews the TTL also reads `PTTL` first, inside the same
//! MULTI: if the key turns out to hold someone else's data (WRONGTYPE), its TTL is put back as
//! it was. DEL is sent as `LTRIM key 1 0`, which empties (removes) a list and refuses any other
//! type, so `clear` can never delete foreign data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, ServerErrorKind, Value};

use super::{Applied, KeyKind, ListOp, OpenError, StoreError, Ttl};

/// How long the Redis backend waits, and when it gives up on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// Longest wait for a new connection (TCP connect plus handshake). redis-rs's default is
    /// 1 s; on loopback or a LAN a healthy server answers in well under 10 ms.
    pub connect: Duration,
    /// Longest wait for any reply. 500 ms (redis-rs's default for one node) is over 1000 round
    /// trips on a LAN: a server this slow is better reported than waited for.
    pub response: Duration,
    /// Consecutive timeouts after which the connection is presumed half-open and rebuilt.
    /// TCP keepalive is off by default, so a dead peer shows up only as timeouts.
    pub rebuild_after_timeouts: u32,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            response: Duration::from_millis(500),
            rebuild_after_timeouts: 3,
        }
    }
}

/// A Redis server reached through one shared multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    config: AsyncConnectionConfig,
    timeouts: RedisTimeouts,
    current: ArcSwapOption<MultiplexedConnection>,
    connecting: tokio::sync::Mutex<()>,
    consecutive_timeouts: AtomicU32,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.describe())
            .field("timeouts", &self.inner.timeouts)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the server at `url`. Nothing is connected until the first operation.
    pub fn new(url: &str, timeouts: RedisTimeouts) -> Result<Self, OpenError> {
        let client =
            redis::Client::open(url).map_err(|error| OpenError::RedisUrl(error.to_string()))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                timeouts,
                current: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
                consecutive_timeouts: AtomicU32::new(0),
            }),
        })
    }

    /// `redis host:port` or `redis unix-socket-path`, never credentials.
    pub fn describe(&self) -> String {
        format!("redis {}", self.inner.client.get_connection_info().addr())
    }

    /// The current connection, or a new one. Failing here means nothing was sent.
    async fn connection(&self) -> Result<Arc<MultiplexedConnection>, StoreError> {
        if let Some(connection) = self.inner.current.load_full() {
            return Ok(connection);
        }
        let _only_one_connects = self.inner.connecting.lock().await;
        if let Some(connection) = self.inner.current.load_full() {
            return Ok(connection);
        }
        // The connect timeout covers each attempt inside redis-rs; this bound covers the whole
        // call (DNS, handshake, AUTH/SELECT) so a server that accepts and then stalls cannot
        // hold the caller.
        let bound = self.inner.timeouts.connect.saturating_mul(2);
        let connecting = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&self.inner.config);
        let connection = match tokio::time::timeout(bound, connecting).await {
            Ok(Ok(connection)) => Arc::new(connection),
            Ok(Err(error)) => return Err(StoreError::Unavailable(connect_failure(&error))),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "no connection within {bound:?}"
                )));
            }
        };
        self.inner.current.store(Some(Arc::clone(&connection)));
        self.inner.consecutive_timeouts.store(0, Ordering::Relaxed);
        Ok(connection)
    }

    /// Run one request on the shared connection, classify its failure, and retire the
    /// connection when the failure says it is broken.
    async fn request<T>(
        &self,
        run: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let shared = self.connection().await?;
        let mut connection = (*shared).clone();
        // The connection's response timeout should fire first; this outer bound also covers
        // waiting for a slot in the connection's send queue.
        let bound = self.inner.timeouts.response.saturating_mul(2);
        let result = match tokio::time::timeout(bound, run(&mut connection)).await {
            Ok(result) => result,
            Err(_) => {
                self.note_timeout(&shared);
                return Err(StoreError::Timeout);
            }
        };
        match result {
            Ok(value) => {
                self.inner.consecutive_timeouts.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(error) => {
                if error.is_timeout() {
                    self.note_timeout(&shared);
                } else if error.is_unrecoverable_error() || error.is_connection_dropped() {
                    self.retire(&shared);
                }
                Err(classify(&error))
            }
        }
    }

    fn note_timeout(&self, connection: &Arc<MultiplexedConnection>) {
        let count = self
            .inner
            .consecutive_timeouts
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if count >= self.inner.timeouts.rebuild_after_timeouts {
            tracing::warn!(
                target: "agent_memory::store",
                count,
                "consecutive Redis timeouts: rebuilding the connection"
            );
            self.retire(connection);
        }
    }

    /// Drop `connection` so the next call connects again, unless another caller already
    /// replaced it.
    fn retire(&self, connection: &Arc<MultiplexedConnection>) {
        let previous = self.inner.current.compare_and_swap(connection, None);
        if previous
            .as_ref()
            .is_some_and(|previous| Arc::ptr_eq(previous, connection))
        {
            self.inner.consecutive_timeouts.store(0, Ordering::Relaxed);
            tracing::debug!(target: "agent_memory::store", "Redis connection retired");
        }
    }

    pub(super) async fn read_range(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.request(async |connection| {
            redis::cmd("LRANGE")
                .arg(key)
                .arg(start)
                .arg(stop)
                .query_async(connection)
                .await
        })
        .await
    }

    pub(super) async fn apply(&self, key: &str, ops: Vec<ListOp>) -> Result<Applied, StoreError> {
        let renews_ttl = ops.iter().any(|op| matches!(op, ListOp::Expire { .. }));
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        if renews_ttl {
            pipe.cmd("PTTL").arg(key);
        }
        let mut push_indexes = Vec::new();
        for op in &ops {
            match op {
                ListOp::Push(values) if values.is_empty() => continue,
                ListOp::Push(values) => {
                    push_indexes.push(pipe.len());
                    pipe.cmd("RPUSH").arg(key).arg(values);
                }
                ListOp::Trim { start, stop } => {
                    pipe.cmd("LTRIM").arg(key).arg(*start).arg(*stop);
                }
                ListOp::Expire { seconds } => {
                    pipe.cmd("EXPIRE").arg(key).arg(*seconds);
                }
                ListOp::Delete => {
                    pipe.cmd("LTRIM").arg(key).arg(1).arg(0);
                }
            }
        }
        if pipe.is_empty() {
            return Ok(Applied::default());
        }
        let replies: Vec<Value> = self
            .request(async |connection| pipe.query_async(connection).await)
            .await?;
        if replies.len() != pipe.len() {
            return Err(StoreError::OutcomeUnknown(format!(
                "EXEC answered {} replies for {} commands",
                replies.len(),
                pipe.len()
            )));
        }
        if let Some(error) = first_server_error(&replies) {
            if error == StoreError::WrongType && renews_ttl {
                self.restore_foreign_ttl(key, &replies[0]).await;
            }
            return Err(error);
        }
        let length_after_push = match push_indexes.last() {
            Some(&index) => match &replies[index] {
                Value::Int(length) => Some(u64::try_from(*length).unwrap_or(0)),
                other => {
                    return Err(StoreError::OutcomeUnknown(format!(
                        "RPUSH answered {other:?}, not a length"
                    )));
                }
            },
            None => None,
        };
        Ok(Applied { length_after_push })
    }

    /// Undo the EXPIRE that a transaction applied to a key holding someone else's data, using
    /// the PTTL read at the start of the same transaction. Best effort: if this fails, the
    /// foreign key keeps our TTL, which is logged loudly.
    async fn restore_foreign_ttl(&self, key: &str, pttl_reply: &Value) {
        let restore = match pttl_reply {
            Value::Int(-1) => redis::cmd("PERSIST").arg(key).clone(),
            Value::Int(ms) if *ms > 0 => redis::cmd("PEXPIRE").arg(key).arg(*ms).clone(),
            // -2: the key did not exist when the transaction began, so nothing foreign was there.
            _ => return,
        };
        let result: Result<Value, StoreError> = self
            .request(async |connection| restore.query_async(connection).await)
            .await;
        if let Err(error) = result {
            tracing::error!(
                target: "agent_memory::store",
                %error,
                "could not restore the TTL of a key holding foreign data"
            );
        }
    }

    pub(super) async fn ttl(&self, key: &str) -> Result<Ttl, StoreError> {
        let ms: i64 = self
            .request(async |connection| redis::cmd("PTTL").arg(key).query_async(connection).await)
            .await?;
        Ok(match ms {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::ExpiresIn(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        })
    }

    pub(super) async fn kind(&self, key: &str) -> Result<KeyKind, StoreError> {
        let (kind, length): (String, Option<u64>) = self
            .request(async |connection| {
                // TYPE and LLEN in one MULTI so the length belongs to the type we report; LLEN
                // fails (ignored) when the key is not a list.
                let replies: Vec<Value> = redis::pipe()
                    .atomic()
                    .ignore_errors()
                    .cmd("TYPE")
                    .arg(key)
                    .cmd("LLEN")
                    .arg(key)
                    .query_async(connection)
                    .await?;
                let kind = match replies.first() {
                    Some(Value::SimpleString(kind)) => kind.clone(),
                    Some(Value::BulkString(kind)) => String::from_utf8_lossy(kind).into_owned(),
                    other => format!("{other:?}"),
                };
                let length = match replies.get(1) {
                    Some(Value::Int(n)) => u64::try_from(*n).ok(),
                    _ => None,
                };
                Ok((kind, length))
            })
            .await?;
        Ok(match (kind.as_str(), length) {
            ("none", _) => KeyKind::Missing,
            ("list", Some(length)) => KeyKind::List(length),
            _ => KeyKind::Other(kind),
        })
    }

    pub(super) async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}*", escape_glob(prefix));
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self
                .request(async |connection| {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(connection)
                        .await
                })
                .await?;
            for key in batch {
                match String::from_utf8(key) {
                    Ok(key) => keys.push(key),
                    Err(_) => tracing::warn!(
                        target: "agent_memory::store",
                        "skipped a key under the prefix that is not UTF-8"
                    ),
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key more than once.
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    pub(super) async fn eviction_risk(&self) -> Result<Option<String>, StoreError> {
        let reply: Vec<String> = self
            .request(async |connection| {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async(connection)
                    .await
            })
            .await?;
        let policy = reply.get(1).cloned().unwrap_or_default();
        Ok((policy.starts_with("volatile-") || policy.starts_with("allkeys-")).then_some(policy))
    }
}

/// Escape SCAN MATCH glob characters so that the prefix matches only itself.
fn escape_glob(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for ch in prefix.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}

fn connect_failure(error: &RedisError) -> String {
    if error.is_connection_refusal() {
        format!("connection refused: {error}")
    } else if error.kind() == ErrorKind::AuthenticationFailed {
        format!("authentication failed: {error}")
    } else {
        error.to_string()
    }
}

/// The first per-command error inside an EXEC reply, classified.
fn first_server_error(replies: &[Value]) -> Option<StoreError> {
    replies.iter().find_map(|reply| match reply {
        Value::ServerError(error) => Some(classify_code(error.code(), &error.to_string())),
        _ => None,
    })
}

/// Map a failed request to what the policy may see. The only place Redis errors are read.
fn classify(error: &RedisError) -> StoreError {
    if error.is_timeout() {
        return StoreError::Timeout;
    }
    if error.is_connection_refusal() {
        return StoreError::Unavailable(error.to_string());
    }
    if error.kind() == ErrorKind::Server(ServerErrorKind::ExecAbort) {
        // A command was refused while queued (OOM under maxmemory, most often): the server
        // discarded the whole transaction. The queued error says why.
        if let Some(queued) = error.clone().into_server_errors()
            && let Some((_, first)) = queued.first()
        {
            return classify_code(first.code(), &first.to_string());
        }
        return StoreError::Rejected(error.to_string());
    }
    if let Some(code) = error.code() {
        return classify_code(code, &error.to_string());
    }
    // I/O failure after sending, a reply that does not parse, or a reply of the wrong shape:
    // the request may have been applied.
    tracing::debug!(target: "agent_memory::store", %error, "Redis request failed");
    StoreError::OutcomeUnknown(error.to_string())
}

fn classify_code(code: &str, text: &str) -> StoreError {
    match code {
        "WRONGTYPE" => StoreError::WrongType,
        "OOM" => StoreError::OutOfMemory,
        // The server is not ready to serve the request at all; nothing was applied.
        "LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" => {
            StoreError::Unavailable(text.to_string())
        }
        _ => StoreError::Rejected(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_are_escaped_for_scan() {
        assert_eq!(escape_glob("ai:memory:"), "ai:memory:");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn server_error_codes_map_to_typed_errors() {
        assert_eq!(classify_code("WRONGTYPE", "x"), StoreError::WrongType);
        assert_eq!(classify_code("OOM", "x"), StoreError::OutOfMemory);
        assert!(matches!(
            classify_code("LOADING", "x"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify_code("READONLY", "x"),
            StoreError::Rejected(_)
        ));
        assert!(matches!(
            classify_code("NOPERM", "x"),
            StoreError::Rejected(_)
        ));
    }
}
