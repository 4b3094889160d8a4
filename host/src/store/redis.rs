//! The Redis backend: one multiplexed connection per store, rebuilt when it breaks.
//!
//! Why not redis-rs's `ConnectionManager`: it cannot tell a failed connect (nothing was sent,
//! safe to retry) from a request lost on a broken connection (a write may have applied), and it
//! never rebuilds a connection that only times out (a half-open socket). Here the connection is
//! held by [`Connector`]:
//! - Connecting is a separate step, bounded by the connect timeout, so its failures are
//!   `unavailable`.
//! - One attempt at a time, shared: callers that queued behind an attempt get *its* result,
//!   success or failure, instead of each trying again in turn (N callers during an outage
//!   would otherwise wait through N connect timeouts). After a failure, attempts back off
//!   (doubling from [`RedisOptions::reconnect_backoff`] up to
//!   [`RedisOptions::reconnect_backoff_max`]); calls in between fail at once.
//! - We run the connection's driver task ourselves, so we know the moment the server closes the
//!   connection (an idle timeout, a restart): the next call reconnects *before* sending, and a
//!   write on such a connection is not reported as an unknown outcome.
//! - A connection that times out [`RedisOptions::rebuild_after_timeouts`] times in a row is
//!   presumed half-open (TCP keepalive is off, a dead peer shows up only as timeouts) and
//!   replaced.
//!
//! Transactions are MULTI/EXEC on one key. EXPIRE is the one list operation Redis does not
//! type-check, so a transaction that renews the TTL also reads `PTTL` first, inside the same
//! MULTI: if the key turns out to hold someone else's data (WRONGTYPE), its TTL is put back as
//! it was. DEL is sent as `LLEN key` + `LTRIM key 1 0`: the length is what the delete removed,
//! and LTRIM empties (removes) a list but refuses any other type, so `clear` can never delete
//! foreign data.
//!
//! Under `maxmemory` with `noeviction`, Redis refuses every command queued in a MULTI, even a
//! read; so inspections never use MULTI, and a delete-only transaction that is refused for
//! memory is sent again as two plain commands (LTRIM frees memory, and is accepted): deleting
//! is what an operator does to get out of that state.
//!
//! A transaction that starts with an expectation (the list must be as the policy read it) is a
//! Lua script instead: see [`conditional`].

mod conditional;
mod sentinel;
mod tls;

pub(crate) use self::sentinel::parse as parse_sentinel_url;
pub use self::tls::TlsOptions;
pub(crate) use self::tls::plain_url;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, ServerErrorKind,
    Value,
};

use super::{Applied, KeyKind, ListOp, OpenError, StoreError, Ttl};

/// The first pause after a failed connect. Short: a restarting Redis is usually back within
/// tens of milliseconds.
pub const DEFAULT_RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between connect attempts during an outage. It bounds how long after
/// Redis comes back the first call can still fail (well under a second), and caps connect
/// attempts at two per second however many callers there are.
pub const DEFAULT_RECONNECT_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// How the Redis backend connects, waits, and confirms writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Longest wait for a new connection (TCP connect plus handshake). redis-rs's default is
    /// 1 s; on loopback or a LAN a healthy server answers in well under 10 ms.
    pub connect: Duration,
    /// Longest wait for any reply. 500 ms (redis-rs's default for one node) is over 1000 round
    /// trips on a LAN: a server this slow is better reported than waited for.
    pub response: Duration,
    /// Consecutive timeouts after which the connection is presumed half-open and rebuilt.
    pub rebuild_after_timeouts: u32,
    /// The first pause after a failed connect; it doubles with every further failure.
    pub reconnect_backoff: Duration,
    /// The longest pause between connect attempts.
    pub reconnect_backoff_max: Duration,
    /// After each write, wait until this many replicas have it (Redis `WAIT`); a write that
    /// they do not confirm in time is reported as [`StoreError::NotReplicated`]. Off by
    /// default, as in the Python original.
    pub wait_for_replicas: Option<WaitForReplicas>,
    /// Certificates for `rediss://` addresses: a CA to trust instead of the public roots, and a
    /// client certificate for servers that require one. Verification is always on.
    pub tls: TlsOptions,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            response: Duration::from_millis(500),
            rebuild_after_timeouts: 3,
            reconnect_backoff: DEFAULT_RECONNECT_BACKOFF,
            reconnect_backoff_max: DEFAULT_RECONNECT_BACKOFF_MAX,
            wait_for_replicas: None,
            tls: TlsOptions::default(),
        }
    }
}

/// How many replicas must confirm each write, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitForReplicas {
    /// Replicas that must have the write.
    pub replicas: u32,
    /// How long to wait for them (Redis `WAIT`'s timeout; never 0, which would wait forever).
    pub timeout: Duration,
}

/// A Redis server reached through one shared multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Connector>,
}

/// The connection and how it is (re)made.
struct Connector {
    info: ConnectionInfo,
    /// The TLS client, for a `rediss://` address.
    tls: Option<tls::Tls>,
    /// The sentinels that say where the master is, for a `redis+sentinel://` address.
    sentinels: Option<sentinel::Sentinels>,
    options: RedisOptions,
    current: ArcSwapOption<Live>,
    /// Held while connecting; the state records the last failure for those who waited.
    connecting: tokio::sync::Mutex<ConnectState>,
    /// Connect attempts finished so far: a caller that waited for the lock compares it with
    /// what it saw before waiting to know whether an attempt ran meanwhile.
    attempts: AtomicU64,
    consecutive_timeouts: AtomicU32,
}

#[derive(Default)]
struct ConnectState {
    last_failure: Option<ConnectFailure>,
}

struct ConnectFailure {
    at: Instant,
    reason: String,
    backoff: Duration,
}

/// A connection whose driver task we run, so we know when the server has closed it.
struct Live {
    connection: MultiplexedConnection,
    alive: Arc<AtomicBool>,
    driver: tokio::task::AbortHandle,
}

impl Live {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // A half-open socket would keep the driver waiting for replies forever.
        self.driver.abort();
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.describe())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the server at `url`. Nothing is connected until the first operation.
    pub fn new(url: &str, options: RedisOptions) -> Result<Self, OpenError> {
        use redis::IntoConnectionInfo;
        // redis-rs parses `rediss://` only with its own TLS features, which this crate does not
        // use (TLS is done here): the address is parsed as the `redis://` one it wraps.
        let (plain, tls) = match tls::plain_url(url)? {
            Some(plain) => (plain, Some(tls::Tls::new(&options.tls)?)),
            None => (url.to_string(), None),
        };
        // A sentinel address: the master is found on every connect; the URL left carries its
        // credentials and database.
        let (plain, sentinels) = match sentinel::parse(&plain)? {
            Some((sentinels, plain)) => (plain, Some(sentinels)),
            None => (plain, None),
        };
        let info = plain.as_str().into_connection_info().map_err(|error| {
            OpenError::RedisUrl(format!("{}: {error}", super::spec::redact(url)))
        })?;
        Ok(Self {
            inner: Arc::new(Connector {
                info,
                tls,
                sentinels,
                options,
                current: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(ConnectState::default()),
                attempts: AtomicU64::new(0),
                consecutive_timeouts: AtomicU32::new(0),
            }),
        })
    }

    /// `redis host:port` or `redis unix-socket-path`, never credentials.
    pub fn describe(&self) -> String {
        if let Some(sentinels) = &self.inner.sentinels {
            return format!("redis {}", sentinels.describe());
        }
        let tls = if self.inner.tls.is_some() {
            " (TLS)"
        } else {
            ""
        };
        format!("redis {}{tls}", self.inner.info.addr())
    }

    /// The live connection, or a new one. Failing here means nothing was sent.
    async fn connection(&self) -> Result<Arc<Live>, StoreError> {
        if let Some(live) = self.inner.current.load_full() {
            if live.is_alive() {
                return Ok(live);
            }
            // The server closed it (idle timeout, restart) before we sent anything on it.
            self.retire(&live);
        }
        let attempts_seen = self.inner.attempts.load(Ordering::Acquire);
        let mut state = self.inner.connecting.lock().await;
        if let Some(live) = self.inner.current.load_full()
            && live.is_alive()
        {
            return Ok(live);
        }
        if let Some(failure) = &state.last_failure {
            if self.inner.attempts.load(Ordering::Acquire) != attempts_seen {
                // An attempt ran while we waited for it, and failed: that is our answer too.
                return Err(StoreError::Unavailable(failure.reason.clone()));
            }
            let next = failure.at + failure.backoff;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                return Err(StoreError::Unavailable(format!(
                    "{} (next connect attempt in {} ms)",
                    failure.reason,
                    wait.as_millis()
                )));
            }
        }
        let attempt = self.connect().await;
        self.inner.attempts.fetch_add(1, Ordering::AcqRel);
        match attempt {
            Ok(live) => {
                if state.last_failure.take().is_some() {
                    tracing::info!(target: "agent_memory::store", "Redis connection restored");
                }
                self.inner.consecutive_timeouts.store(0, Ordering::Relaxed);
                self.inner.current.store(Some(Arc::clone(&live)));
                Ok(live)
            }
            Err(reason) => {
                let options = &self.inner.options;
                let backoff =
                    state
                        .last_failure
                        .as_ref()
                        .map_or(options.reconnect_backoff, |previous| {
                            previous
                                .backoff
                                .saturating_mul(2)
                                .min(options.reconnect_backoff_max)
                        });
                tracing::warn!(target: "agent_memory::store", %reason, ?backoff, "Redis connect failed");
                state.last_failure = Some(ConnectFailure {
                    at: Instant::now(),
                    reason: reason.clone(),
                    backoff,
                });
                Err(StoreError::Unavailable(reason))
            }
        }
    }

    /// One connect attempt: TCP (or unix socket) plus handshake, within the connect timeout.
    async fn connect(&self) -> Result<Arc<Live>, String> {
        let bound = self.inner.options.connect;
        match tokio::time::timeout(bound, self.open()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no connection within {bound:?}")),
        }
    }

    async fn open(&self) -> Result<Arc<Live>, String> {
        if let Some(sentinels) = &self.inner.sentinels {
            return self.open_sentinel_master(sentinels).await;
        }
        match self.inner.info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|error| connect_io_failure(&error))?;
                // Requests are small and latency-bound: do not let Nagle hold them back.
                let _ = stream.set_nodelay(true);
                match &self.inner.tls {
                    Some(tls) => self.handshake(tls.connect(host, stream).await?).await,
                    None => self.handshake(stream).await,
                }
            }
            ConnectionAddr::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|error| connect_io_failure(&error))?;
                self.handshake(stream).await
            }
            other => Err(format!("unsupported Redis address {other}")),
        }
    }

    /// Ask the sentinels where the master is, connect there, and make sure it is a master.
    async fn open_sentinel_master(
        &self,
        sentinels: &sentinel::Sentinels,
    ) -> Result<Arc<Live>, String> {
        let (host, port) = sentinels.master_address(self.inner.options.connect).await?;
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|error| format!("master {host}:{port}: {}", connect_io_failure(&error)))?;
        let _ = stream.set_nodelay(true);
        let live = self.handshake(stream).await?;
        let mut connection = live.connection.clone();
        if !sentinel::is_master(&mut connection).await? {
            live.driver.abort();
            return Err(format!(
                "the sentinels name {host}:{port} as master {}, but it is not one yet (failover in progress)",
                sentinels.describe()
            ));
        }
        Ok(live)
    }

    async fn handshake<S>(&self, stream: S) -> Result<Arc<Live>, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let config =
            AsyncConnectionConfig::new().set_response_timeout(Some(self.inner.options.response));
        let (connection, driver) = MultiplexedConnection::new_with_config(
            self.inner.info.redis_settings(),
            stream,
            config,
        )
        .await
        .map_err(|error| connect_failure(&error))?;
        let alive = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&alive);
        let task = tokio::spawn(async move {
            driver.await;
            flag.store(false, Ordering::Release);
        });
        Ok(Arc::new(Live {
            connection,
            alive,
            driver: task.abort_handle(),
        }))
    }

    /// Run one request on the shared connection, classify its failure, and retire the
    /// connection when the failure says it is broken.
    async fn request<T>(
        &self,
        response_timeout: Duration,
        run: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let live = self.connection().await?;
        let mut connection = live.connection.clone();
        connection.set_response_timeout(response_timeout);
        // The connection's own response timeout fires first; this bound only guards against a
        // request that never reaches it.
        let bound = response_timeout.saturating_mul(2);
        let result = match tokio::time::timeout(bound, run(&mut connection)).await {
            Ok(result) => result,
            Err(_) => {
                self.note_timeout(&live);
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
                    self.note_timeout(&live);
                } else if error.is_unrecoverable_error()
                    || error.is_connection_dropped()
                    // A demoted master: the next connection finds the new one (through the
                    // sentinels, for a sentinel address).
                    || error.code() == Some("READONLY")
                {
                    self.retire(&live);
                }
                Err(classify(&error))
            }
        }
    }

    fn note_timeout(&self, live: &Arc<Live>) {
        let count = self
            .inner
            .consecutive_timeouts
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if count >= self.inner.options.rebuild_after_timeouts {
            tracing::warn!(
                target: "agent_memory::store",
                count,
                "consecutive Redis timeouts: rebuilding the connection"
            );
            self.retire(live);
        }
    }

    /// Drop `live` so the next call connects again, unless another caller already replaced it.
    fn retire(&self, live: &Arc<Live>) {
        let previous = self.inner.current.compare_and_swap(live, None);
        if previous
            .as_ref()
            .is_some_and(|previous| Arc::ptr_eq(previous, live))
        {
            self.inner.consecutive_timeouts.store(0, Ordering::Relaxed);
            tracing::debug!(target: "agent_memory::store", "Redis connection retired");
        }
    }

    fn response_timeout(&self) -> Duration {
        self.inner.options.response
    }

    pub(super) async fn read_range(
        &self,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.request(self.response_timeout(), async |connection| {
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
        let delete_only = matches!(ops.as_slice(), [ListOp::Delete]);
        let result = if matches!(ops.first(), Some(ListOp::Expect(_))) {
            self.conditional_transaction(key, &ops).await
        } else {
            self.transaction(key, &ops).await
        };
        let applied = match result {
            Err(StoreError::OutOfMemory) if delete_only => self.delete_out_of_memory(key).await?,
            other => other?,
        };
        self.wait_for_replicas().await?;
        Ok(applied)
    }

    /// `ops`, which start with an expectation, as one script (see [`conditional`]).
    async fn conditional_transaction(
        &self,
        key: &str,
        ops: &[ListOp],
    ) -> Result<Applied, StoreError> {
        let command = conditional::command(key, ops);
        let reply: Value = self
            .request(self.response_timeout(), async |connection| {
                command.query_async(connection).await
            })
            .await?;
        conditional::applied(&reply)
    }

    /// `ops` as one MULTI/EXEC.
    async fn transaction(&self, key: &str, ops: &[ListOp]) -> Result<Applied, StoreError> {
        let renews_ttl = ops.iter().any(|op| matches!(op, ListOp::Expire { .. }));
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
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
                    push_index = Some(pipe.len());
                    // LPUSH inserts each value at the head in turn: reversed, they keep
                    // their order.
                    pipe.cmd("LPUSH")
                        .arg(key)
                        .arg(values.iter().rev().collect::<Vec<_>>());
                }
                ListOp::Push(values) => {
                    push_index = Some(pipe.len());
                    pipe.cmd("RPUSH").arg(key).arg(values);
                }
                ListOp::Trim { start, stop } => {
                    pipe.cmd("LTRIM").arg(key).arg(*start).arg(*stop);
                }
                ListOp::Expire { seconds } => {
                    pipe.cmd("EXPIRE").arg(key).arg(*seconds);
                }
                ListOp::Delete => {
                    length_before_delete_index = Some(pipe.len());
                    pipe.cmd("LLEN").arg(key);
                    pipe.cmd("LTRIM").arg(key).arg(1).arg(0);
                }
                ListOp::Read { start, stop } => {
                    read_index = Some(pipe.len());
                    pipe.cmd("LRANGE").arg(key).arg(*start).arg(*stop);
                }
            }
        }
        if pipe.is_empty() {
            return Ok(Applied::default());
        }
        let replies: Vec<Value> = self
            .request(self.response_timeout(), async |connection| {
                pipe.query_async(connection).await
            })
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
        Ok(Applied {
            length_after_push: push_index
                .map(|index| length_reply(&replies[index], "RPUSH"))
                .transpose()?,
            deleted: length_before_delete_index
                .map(|index| length_reply(&replies[index], "LLEN"))
                .transpose()?,
            read: read_index
                .map(|index| entries_reply(&replies[index]).map(Ok))
                .transpose()?,
        })
    }

    /// A delete when Redis refuses MULTI for memory: LLEN then LTRIM, pipelined but not atomic
    /// (a message appended between the two is deleted too, and not counted).
    async fn delete_out_of_memory(&self, key: &str) -> Result<Applied, StoreError> {
        tracing::debug!(target: "agent_memory::store", "out of memory: deleting without MULTI");
        let replies: Vec<Value> = self
            .request(self.response_timeout(), async |connection| {
                redis::pipe()
                    .ignore_errors()
                    .cmd("LLEN")
                    .arg(key)
                    .cmd("LTRIM")
                    .arg(key)
                    .arg(1)
                    .arg(0)
                    .query_async(connection)
                    .await
            })
            .await?;
        if let Some(error) = first_server_error(&replies) {
            return Err(error);
        }
        let length = replies
            .first()
            .map(|reply| length_reply(reply, "LLEN"))
            .transpose()?;
        Ok(Applied {
            length_after_push: None,
            deleted: length,
            read: None,
        })
    }

    /// Redis `WAIT`, when the options ask for replicas.
    async fn wait_for_replicas(&self) -> Result<(), StoreError> {
        let Some(wait) = self.inner.options.wait_for_replicas else {
            return Ok(());
        };
        let timeout_ms = u64::try_from(wait.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let acknowledged: i64 = self
            .request(
                wait.timeout.saturating_add(self.response_timeout()),
                async |connection| {
                    redis::cmd("WAIT")
                        .arg(wait.replicas)
                        .arg(timeout_ms)
                        .query_async(connection)
                        .await
                },
            )
            .await?;
        let acknowledged = u32::try_from(acknowledged).unwrap_or(0);
        if acknowledged < wait.replicas {
            return Err(StoreError::NotReplicated {
                wanted: wait.replicas,
                acknowledged,
            });
        }
        Ok(())
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
            .request(self.response_timeout(), async |connection| {
                restore.query_async(connection).await
            })
            .await;
        if let Err(error) = result {
            tracing::error!(
                target: "agent_memory::store",
                %error,
                "could not restore the TTL of a key holding foreign data"
            );
        }
    }

    pub(super) async fn ttl(&self, key: &[u8]) -> Result<Ttl, StoreError> {
        let ms: i64 = self
            .request(self.response_timeout(), async |connection| {
                redis::cmd("PTTL").arg(key).query_async(connection).await
            })
            .await?;
        Ok(match ms {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::ExpiresIn(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        })
    }

    pub(super) async fn kind(&self, key: &[u8]) -> Result<KeyKind, StoreError> {
        // TYPE and LLEN pipelined, not in a MULTI (refused under maxmemory): if the key changes
        // between the two, LLEN fails (ignored) or the length is a moment newer.
        let replies: Vec<Value> = self
            .request(self.response_timeout(), async |connection| {
                redis::pipe()
                    .ignore_errors()
                    .cmd("TYPE")
                    .arg(key)
                    .cmd("LLEN")
                    .arg(key)
                    .query_async(connection)
                    .await
            })
            .await?;
        let kind = match replies.first() {
            Some(Value::SimpleString(kind)) => kind.clone(),
            Some(Value::BulkString(kind)) => String::from_utf8_lossy(kind).into_owned(),
            Some(Value::ServerError(error)) => {
                return Err(classify_code(error.code(), &error.to_string()));
            }
            other => {
                return Err(StoreError::OutcomeUnknown(format!(
                    "TYPE answered {other:?}"
                )));
            }
        };
        let length = match replies.get(1) {
            Some(Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        Ok(match (kind.as_str(), length) {
            ("none", _) => KeyKind::Missing,
            ("list", Some(length)) => KeyKind::List(length),
            _ => KeyKind::Other(kind),
        })
    }

    pub(super) async fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut pattern = escape_glob(prefix);
        pattern.push(b'*');
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self
                .request(self.response_timeout(), async |connection| {
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
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(keys)
    }

    pub(super) async fn eviction_policy(&self) -> Result<String, StoreError> {
        let reply: Vec<String> = self
            .request(self.response_timeout(), async |connection| {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async(connection)
                    .await
            })
            .await?;
        reply.get(1).cloned().ok_or_else(|| {
            StoreError::Rejected("CONFIG GET maxmemory-policy answered nothing".to_string())
        })
    }
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

fn length_reply(reply: &Value, command: &str) -> Result<u64, StoreError> {
    match reply {
        Value::Int(length) => Ok(u64::try_from(*length).unwrap_or(0)),
        other => Err(StoreError::OutcomeUnknown(format!(
            "{command} answered {other:?}, not a length"
        ))),
    }
}

/// The entries of an LRANGE reply inside EXEC.
fn entries_reply(reply: &Value) -> Result<Vec<Vec<u8>>, StoreError> {
    let Value::Array(items) = reply else {
        return Err(StoreError::OutcomeUnknown(format!(
            "LRANGE answered {reply:?}, not a list"
        )));
    };
    items
        .iter()
        .map(|item| match item {
            Value::BulkString(bytes) => Ok(bytes.clone()),
            other => Err(StoreError::OutcomeUnknown(format!(
                "LRANGE answered an entry {other:?}"
            ))),
        })
        .collect()
}

fn connect_io_failure(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connection refused ({error})"),
        _ => format!("cannot connect: {error}"),
    }
}

fn connect_failure(error: &RedisError) -> String {
    if error.is_connection_refusal() {
        format!("connection refused: {error}")
    } else if error.kind() == ErrorKind::AuthenticationFailed {
        format!("authentication failed: {error}")
    } else {
        format!("handshake failed: {error}")
    }
}

/// The first per-command error inside an EXEC (or pipeline) reply, classified.
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
        assert_eq!(escape_glob(b"ai:memory:"), b"ai:memory:");
        assert_eq!(escape_glob(b"a*b?[c]\\"), b"a\\*b\\?\\[c\\]\\\\");
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

    #[test]
    fn tls_addresses_are_accepted_and_never_without_verification() {
        assert!(RedisStore::new("rediss://localhost:6380", RedisOptions::default()).is_ok());
        assert!(matches!(
            RedisStore::new("rediss://localhost:6380/#insecure", RedisOptions::default()),
            Err(OpenError::Tls(_))
        ));
        let missing = RedisOptions {
            tls: TlsOptions {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..TlsOptions::default()
            },
            ..RedisOptions::default()
        };
        assert!(matches!(
            RedisStore::new("rediss://localhost:6380", missing),
            Err(OpenError::Tls(reason)) if reason.contains("/nonexistent/ca.pem")
        ));
    }
}
