//! [`Node`]: one Redis server reached through one shared multiplexed connection, rebuilt when
//! it breaks. A single-server store has one; a cluster store has one per node it talks to.
//!
//! Why not redis-rs's `ConnectionManager`: it cannot tell a failed connect (nothing was sent,
//! safe to retry) from a request lost on a broken connection (a write may have applied), and it
//! never rebuilds a connection that only times out (a half-open socket). Here:
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
//! - A write that waits for replicas (`WAIT`) runs on a connection of its own
//!   ([`Node::request_alone`]): WAIT blocks the connection it is sent on, and on the shared one
//!   a missing replica would hold up every other call for a WAIT timeout each.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, RedisConnectionInfo, RedisError};

use super::classify::{self, Failure};
use super::options::RedisOptions;
use super::sentinel;
use super::sentinel::Sentinels;
use super::tls::Tls;
use crate::store::StoreError;
use crate::telemetry::store_meter::StoreMeter;

/// Where a connect attempt stands, so that running out of time can say what went unanswered.
const CONNECTING: u8 = 0;
/// TCP connected, the TLS handshake under way.
const TLS_HANDSHAKE: u8 = 1;
/// Connected (TLS done, if any), the Redis handshake (HELLO, AUTH, SELECT) under way.
const REDIS_HANDSHAKE: u8 = 2;

/// Writes that wait for replicas, in flight at once on one node: each holds a connection of
/// its own while its `WAIT` lasts. Beyond this a write waits (up to the connect timeout) for
/// one to finish, then fails as `unavailable`: a replica that stopped confirming must not make
/// a host open a connection per caller.
pub const MAX_WAITING_WRITES: usize = 64;

/// Connections kept open for writes that wait for replicas, between writes.
const IDLE_WAITING_CONNECTIONS: usize = 16;

/// Where a node's connections go.
#[derive(Debug, Clone)]
pub(super) enum NodeTarget {
    /// A server at a fixed address (TCP or unix socket).
    Server(ConnectionAddr),
    /// Whichever server the sentinels name as the master, asked on every connect.
    Sentinel(Sentinels),
}

/// One server and its connection.
pub(super) struct Node {
    target: NodeTarget,
    settings: RedisConnectionInfo,
    /// The TLS client, for a `rediss` address.
    tls: Option<Tls>,
    options: RedisOptions,
    current: ArcSwapOption<Live>,
    /// Held while connecting; the state records the last failure for those who waited.
    connecting: tokio::sync::Mutex<ConnectState>,
    /// Connect attempts finished so far: a caller that waited for the lock compares it with
    /// what it saw before waiting to know whether an attempt ran meanwhile.
    attempts: AtomicU64,
    consecutive_timeouts: AtomicU32,
    /// Idle connections for writes that wait for replicas.
    waiting_idle: Mutex<Vec<Arc<Live>>>,
    /// Bounds those writes in flight ([`MAX_WAITING_WRITES`]).
    waiting_permits: tokio::sync::Semaphore,
    /// The store's connection metrics.
    meter: StoreMeter,
    /// For a sentinel target: the master the last connection went to, so that a new one
    /// elsewhere is seen as a failover.
    last_master: Mutex<Option<(String, u16)>>,
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

/// `host:port`, the socket path, or the sentinels and master name of `target`, with the
/// database when it is not 0; never credentials.
pub(super) fn describe(target: &NodeTarget, settings: &RedisConnectionInfo) -> String {
    let place = match target {
        NodeTarget::Server(addr) => addr.to_string(),
        NodeTarget::Sentinel(sentinels) => sentinels.describe(),
    };
    // Two databases of one server are two stores: say which.
    match settings.db() {
        0 => place,
        db => format!("{place} db {db}"),
    }
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

impl Node {
    /// A node for `target`. Nothing is connected until the first request.
    pub(super) fn new(
        target: NodeTarget,
        settings: RedisConnectionInfo,
        tls: Option<Tls>,
        options: RedisOptions,
        meter: StoreMeter,
    ) -> Self {
        Self {
            target,
            settings,
            tls,
            options,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(ConnectState::default()),
            attempts: AtomicU64::new(0),
            consecutive_timeouts: AtomicU32::new(0),
            waiting_idle: Mutex::new(Vec::new()),
            waiting_permits: tokio::sync::Semaphore::new(MAX_WAITING_WRITES),
            meter,
            last_master: Mutex::new(None),
        }
    }

    /// The database number this node's connections select.
    pub(super) fn db(&self) -> i64 {
        self.settings.db()
    }

    /// `host:port`, the socket path, or the sentinels and master name; never credentials.
    pub(super) fn describe(&self) -> String {
        describe(&self.target, &self.settings)
    }

    /// The server requests go to, as OpenTelemetry's `server.address` and `server.port` name
    /// it: the host (or socket path) and port; for a sentinel target, the master the last
    /// connection went to (the master's name before any did). Never credentials.
    pub(super) fn server_address(&self) -> (String, Option<u16>) {
        match &self.target {
            NodeTarget::Server(ConnectionAddr::Tcp(host, port))
            | NodeTarget::Server(ConnectionAddr::TcpTls { host, port, .. }) => {
                (host.clone(), Some(*port))
            }
            NodeTarget::Server(other) => (other.to_string(), None),
            NodeTarget::Sentinel(sentinels) => {
                match &*self
                    .last_master
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                {
                    Some((host, port)) => (host.clone(), Some(*port)),
                    None => (sentinels.describe(), None),
                }
            }
        }
    }

    /// The server a connection was just made to, for the connection metrics: the node's
    /// address, or for a sentinel target the master's.
    fn connected_server(&self) -> String {
        match &self.target {
            NodeTarget::Server(_) => self.describe(),
            NodeTarget::Sentinel(_) => match self.server_address() {
                (host, Some(port)) => format!("{host}:{port}"),
                (place, None) => place,
            },
        }
    }

    /// The options this node connects and waits with.
    pub(super) fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// The live connection, or a new one. Failing here means nothing was sent.
    async fn connection(&self) -> Result<Arc<Live>, String> {
        if let Some(live) = self.current.load_full() {
            if live.is_alive() {
                return Ok(live);
            }
            // The server closed it (idle timeout, restart) before we sent anything on it.
            self.retire(&live);
        }
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.connecting.lock().await;
        if let Some(live) = self.current.load_full()
            && live.is_alive()
        {
            return Ok(live);
        }
        if let Some(failure) = &state.last_failure {
            if self.attempts.load(Ordering::Acquire) != attempts_seen {
                // An attempt ran while we waited for it, and failed: that is our answer too.
                return Err(failure.reason.clone());
            }
            let next = failure.at + failure.backoff;
            if next > Instant::now() {
                // Backing off: the last failure is the answer. (When the next attempt is due is
                // the host's business, logged with the failure, not the caller's.)
                return Err(failure.reason.clone());
            }
        }
        let attempt = self.connect().await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match attempt {
            Ok(live) => {
                self.meter.connected(self.connected_server());
                if state.last_failure.take().is_some() {
                    tracing::info!(target: "agent_memory::store", node = %self.describe(), "Redis connection restored");
                }
                self.consecutive_timeouts.store(0, Ordering::Relaxed);
                self.current.store(Some(Arc::clone(&live)));
                Ok(live)
            }
            Err(reason) => {
                let backoff = state.last_failure.as_ref().map_or(
                    self.options.reconnect_backoff,
                    |previous| {
                        previous
                            .backoff
                            .saturating_mul(2)
                            .min(self.options.reconnect_backoff_max)
                    },
                );
                tracing::warn!(target: "agent_memory::store", node = %self.describe(), %reason, ?backoff, "Redis connect failed");
                self.meter.connect_failed(self.describe());
                state.last_failure = Some(ConnectFailure {
                    at: Instant::now(),
                    reason: reason.clone(),
                    backoff,
                });
                Err(reason)
            }
        }
    }

    /// One connect attempt: TCP (or unix socket) plus handshake, within the connect timeout.
    async fn connect(&self) -> Result<Arc<Live>, String> {
        let bound = self.options.connect;
        let stage = AtomicU8::new(CONNECTING);
        match tokio::time::timeout(bound, self.open(&stage)).await {
            Ok(result) => result,
            // Where the attempt stood when time ran out says what is likely wrong.
            Err(_) => Err(match stage.load(Ordering::Relaxed) {
                // A server that accepted the connection and never answered the TLS greeting
                // is most often a plain one (redis:// port) given a rediss:// address.
                TLS_HANDSHAKE => format!(
                    "connected, but no TLS handshake within {bound:?}: is the server speaking \
                     TLS? (rediss:// needs the server's tls-port; a plain port takes redis://)"
                ),
                // The kernel accepts connections for a server that runs nothing (stopped,
                // or stuck in a long command): the handshake is what goes unanswered.
                REDIS_HANDSHAKE => format!(
                    "connected, but the server did not answer within {bound:?} (stopped, \
                     overloaded, or busy with a long command?)"
                ),
                _ => format!("no connection within {bound:?}"),
            }),
        }
    }

    async fn open(&self, stage: &AtomicU8) -> Result<Arc<Live>, String> {
        let addr = match &self.target {
            NodeTarget::Sentinel(sentinels) => return self.open_sentinel_master(sentinels).await,
            NodeTarget::Server(addr) => addr,
        };
        match addr {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|error| classify::connect_io_failure(&error))?;
                // Requests are small and latency-bound: do not let Nagle hold them back.
                let _ = stream.set_nodelay(true);
                match &self.tls {
                    Some(tls) => {
                        stage.store(TLS_HANDSHAKE, Ordering::Relaxed);
                        let stream = tls.connect(host, stream).await?;
                        stage.store(REDIS_HANDSHAKE, Ordering::Relaxed);
                        self.handshake(stream).await
                    }
                    None => {
                        stage.store(REDIS_HANDSHAKE, Ordering::Relaxed);
                        self.handshake(stream).await
                    }
                }
            }
            ConnectionAddr::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|error| classify::connect_io_failure(&error))?;
                stage.store(REDIS_HANDSHAKE, Ordering::Relaxed);
                self.handshake(stream).await
            }
            other => Err(format!("unsupported Redis address {other}")),
        }
    }

    /// Ask the sentinels where the master is, connect there, and make sure it is a master.
    async fn open_sentinel_master(&self, sentinels: &Sentinels) -> Result<Arc<Live>, String> {
        let (host, port) = sentinels
            .master_address(self.options.connect, self.tls.as_ref())
            .await?;
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|error| {
                format!(
                    "master {host}:{port}: {}",
                    classify::connect_io_failure(&error)
                )
            })?;
        let _ = stream.set_nodelay(true);
        let live = match &self.tls {
            Some(tls) => {
                let stream = tls
                    .connect(&host, stream)
                    .await
                    .map_err(|error| format!("master {host}:{port}: {error}"))?;
                self.handshake(stream).await?
            }
            None => self.handshake(stream).await?,
        };
        let mut connection = live.connection.clone();
        if !sentinel::is_master(&mut connection).await? {
            live.driver.abort();
            return Err(format!(
                "the sentinels name {host}:{port} as master {}, but it is not one yet (failover in progress)",
                sentinels.describe()
            ));
        }
        let master = (host, port);
        let previous = self
            .last_master
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(master.clone());
        if previous.is_some_and(|previous| previous != master) {
            tracing::info!(
                target: "agent_memory::store",
                node = %self.describe(),
                master = %format_args!("{}:{}", master.0, master.1),
                "the sentinels name a new master: failed over"
            );
            self.meter.failed_over();
        }
        Ok(live)
    }

    async fn handshake<S>(&self, stream: S) -> Result<Arc<Live>, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(self.options.response));
        let (connection, driver) =
            MultiplexedConnection::new_with_config(&self.settings, stream, config)
                .await
                .map_err(|error| classify::connect_failure(&error))?;
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
    pub(super) async fn request<T>(
        &self,
        response_timeout: Duration,
        run: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, Failure> {
        let live = self.connection().await.map_err(StoreError::Unavailable)?;
        let mut connection = live.connection.clone();
        connection.set_response_timeout(response_timeout);
        // The connection's own response timeout fires first; this bound only guards against a
        // request that never reaches it.
        let bound = response_timeout.saturating_mul(2);
        let result = match tokio::time::timeout(bound, run(&mut connection)).await {
            Ok(result) => result,
            Err(_) => {
                self.note_timeout(&live);
                return Err(StoreError::Timeout.into());
            }
        };
        match result {
            Ok(value) => {
                self.consecutive_timeouts.store(0, Ordering::Relaxed);
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
                Err(classify::request_error(&error))
            }
        }
    }

    /// Run one request on a connection of its own (a write followed by `WAIT`), made or reused
    /// from the idle ones. Nothing is connected unless the shared connection is up (or was
    /// just made, by its rules: one attempt at a time, backing off after failures), so an
    /// outage costs no extra connect attempts. A connection whose request failed or timed out
    /// is closed, never reused.
    pub(super) async fn request_alone<T>(
        &self,
        response_timeout: Duration,
        run: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, Failure> {
        self.connection().await.map_err(StoreError::Unavailable)?;
        let Ok(Ok(_permit)) =
            tokio::time::timeout(self.options.connect, self.waiting_permits.acquire()).await
        else {
            return Err(StoreError::Unavailable(format!(
                "{MAX_WAITING_WRITES} writes are already waiting for replicas on {}",
                self.describe()
            ))
            .into());
        };
        let idle = self
            .waiting_idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let live = match idle {
            Some(live) if live.is_alive() => live,
            _ => match self.connect().await {
                Ok(live) => {
                    self.meter.connected(self.connected_server());
                    live
                }
                Err(reason) => {
                    self.meter.connect_failed(self.describe());
                    return Err(StoreError::Unavailable(reason).into());
                }
            },
        };
        let mut connection = live.connection.clone();
        connection.set_response_timeout(response_timeout);
        let bound = response_timeout.saturating_mul(2);
        match tokio::time::timeout(bound, run(&mut connection)).await {
            Ok(Ok(value)) => {
                let mut idle = self
                    .waiting_idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if idle.len() < IDLE_WAITING_CONNECTIONS {
                    idle.push(live);
                }
                Ok(value)
            }
            // The idle ones may be as stale (a demoted master answering READONLY, a server
            // that restarted): closed too, the next write connects afresh.
            Ok(Err(error)) => {
                self.forget_idle_waiting();
                Err(classify::request_error(&error))
            }
            Err(_) => {
                self.forget_idle_waiting();
                Err(StoreError::Timeout.into())
            }
        }
    }

    fn forget_idle_waiting(&self) {
        self.waiting_idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn note_timeout(&self, live: &Arc<Live>) {
        let count = self.consecutive_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
        if count >= self.options.rebuild_after_timeouts {
            tracing::warn!(
                target: "agent_memory::store",
                node = %self.describe(),
                count,
                "consecutive Redis timeouts: rebuilding the connection"
            );
            self.retire(live);
        }
    }

    /// Drop `live` so the next call connects again, unless another caller already replaced it.
    fn retire(&self, live: &Arc<Live>) {
        let previous = self.current.compare_and_swap(live, None);
        if previous
            .as_ref()
            .is_some_and(|previous| Arc::ptr_eq(previous, live))
        {
            self.consecutive_timeouts.store(0, Ordering::Relaxed);
            // Whatever made the shared connection unusable (a restart, a failover) makes the
            // idle write connections suspect too.
            self.forget_idle_waiting();
            tracing::debug!(target: "agent_memory::store", node = %self.describe(), "Redis connection retired");
        }
    }
}
