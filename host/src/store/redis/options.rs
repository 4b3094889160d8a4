//! [`RedisOptions`]: how the Redis backend connects, waits, and confirms writes; the same for
//! every node of a deployment.

use std::time::Duration;

use super::tls::TlsOptions;

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
    /// they do not confirm in time is reported as
    /// [`StoreError::NotReplicated`](crate::store::StoreError::NotReplicated). Off by
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
