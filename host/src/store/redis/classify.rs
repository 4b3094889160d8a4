//! Redis errors, read once: what a failed request means for the policy ([`StoreError`]) or,
//! for a cluster, where the request must go instead ([`Redirect`]). The only place Redis
//! errors are interpreted; it uses redis-rs's own predicates and error codes, never the text
//! of messages.

use redis::{ErrorKind, RedisError, ServerError, ServerErrorKind, Value};

use super::slots::NodeAddress;
use crate::store::StoreError;

/// Why a request to one node did not give its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// What the policy sees.
    Store(StoreError),
    /// A cluster node says another node serves the key; nothing was applied.
    Redirect(Redirect),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl Failure {
    /// What a redirect means where there is no cluster to follow it into: a `redis://`
    /// address that names one node of a cluster. Refused (nothing was applied) with the fix.
    pub(super) fn outside_a_cluster(self) -> StoreError {
        match self {
            Self::Store(error) => error,
            Self::Redirect(redirect) => StoreError::Rejected(format!(
                "the server redirected the request to {} ({}): it is a Redis Cluster node; \
                 use a redis+cluster:// address",
                redirect.to,
                redirect.kind.code()
            )),
        }
    }
}

/// A cluster's answer that the key's slot is served elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Redirect {
    /// MOVED (for good) or ASK (for this request, during a migration).
    pub kind: RedirectKind,
    /// The key's slot.
    pub slot: u16,
    /// The node to ask.
    pub to: NodeAddress,
}

/// The two redirects of Redis Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RedirectKind {
    /// The slot now lives on the named node: update the slot map.
    Moved,
    /// The slot is migrating and the key is already on the named node: ask it, once, after
    /// `ASKING`; the slot map stays.
    Ask,
}

impl RedirectKind {
    /// The reply's error code: `MOVED` or `ASK`.
    pub(super) fn code(self) -> &'static str {
        match self {
            Self::Moved => "MOVED",
            Self::Ask => "ASK",
        }
    }
}

/// `MOVED slot host:port` / `ASK slot host:port`, from an error code and its details.
fn redirect(code: &str, details: Option<&str>) -> Option<Redirect> {
    let kind = match code {
        "MOVED" => RedirectKind::Moved,
        "ASK" => RedirectKind::Ask,
        _ => return None,
    };
    let mut words = details?.split_ascii_whitespace();
    let slot = words.next()?.parse().ok()?;
    let to = NodeAddress::parse(words.next()?)?;
    Some(Redirect { kind, slot, to })
}

/// What a per-command error reply (inside a pipeline or EXEC) means.
pub(super) fn server_error(error: &ServerError) -> Failure {
    match redirect(error.code(), error.details()) {
        Some(redirect) => Failure::Redirect(redirect),
        None => Failure::Store(classify_code(error.code(), &error.to_string())),
    }
}

/// The first error reply among `replies`, with redirects before anything else: a redirect
/// means the node never ran the request, whatever else it answered.
pub(super) fn first_failure(replies: &[Value]) -> Option<Failure> {
    let errors = replies.iter().filter_map(|reply| match reply {
        Value::ServerError(error) => Some(server_error(error)),
        _ => None,
    });
    let mut first = None;
    for failure in errors {
        if matches!(failure, Failure::Redirect(_)) {
            return Some(failure);
        }
        first.get_or_insert(failure);
    }
    first
}

/// Map a failed request to what it means.
pub(super) fn request_error(error: &RedisError) -> Failure {
    // A redirect is the reply itself (MOVED/ASK, also for EXEC when the key migrated after it
    // was queued), or the queued command that made EXEC abort the transaction.
    let redirected = if error.kind() == ErrorKind::Server(ServerErrorKind::ExecAbort) {
        error.clone().into_server_errors().and_then(|queued| {
            queued
                .iter()
                .find_map(|(_, queued)| redirect(queued.code(), queued.details()))
        })
    } else {
        error
            .code()
            .zip(error.detail())
            .and_then(|(code, details)| redirect(code, Some(details)))
    };
    match redirected {
        Some(redirect) => Failure::Redirect(redirect),
        None => Failure::Store(classify(error)),
    }
}

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

/// What a server error code means for the policy.
pub(super) fn classify_code(code: &str, text: &str) -> StoreError {
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

/// Why a connection could not be opened (TCP or socket level).
pub(super) fn connect_io_failure(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connection refused ({error})"),
        _ => format!("cannot connect: {error}"),
    }
}

/// Why a connection's handshake (HELLO, AUTH, SELECT) failed.
pub(super) fn connect_failure(error: &RedisError) -> String {
    if error.is_connection_refusal() {
        format!("connection refused: {error}")
    } else if error.kind() == ErrorKind::AuthenticationFailed {
        format!("authentication failed: {error}")
    } else {
        format!("handshake failed: {error}")
    }
}

/// The length an integer reply gives (RPUSH, LLEN).
pub(super) fn length_reply(reply: &Value, command: &str) -> Result<u64, StoreError> {
    match reply {
        Value::Int(length) => Ok(u64::try_from(*length).unwrap_or(0)),
        other => Err(StoreError::OutcomeUnknown(format!(
            "{command} answered {other:?}, not a length"
        ))),
    }
}

/// The entries of an LRANGE reply inside EXEC (or a script's).
pub(super) fn entries_reply(reply: &Value) -> Result<Vec<Vec<u8>>, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn error_reply(text: &str) -> Value {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn server_error_codes_map_to_typed_errors() {
        assert_eq!(classify_code("WRONGTYPE", "x"), StoreError::WrongType);
        assert_eq!(classify_code("OOM", "x"), StoreError::OutOfMemory);
        for unavailable in ["LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN"] {
            assert!(matches!(
                classify_code(unavailable, "x"),
                StoreError::Unavailable(_)
            ));
        }
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
    fn moved_and_ask_replies_are_redirects_with_their_slot_and_node() {
        let replies = [
            Value::Okay,
            error_reply("OOM command not allowed"),
            error_reply("ASK 3999 127.0.0.1:7002"),
        ];
        assert_eq!(
            first_failure(&replies),
            Some(Failure::Redirect(Redirect {
                kind: RedirectKind::Ask,
                slot: 3999,
                to: NodeAddress::parse("127.0.0.1:7002").unwrap(),
            }))
        );
        let moved = first_failure(&[error_reply("MOVED 12182 [::1]:7001")]);
        assert!(matches!(
            moved,
            Some(Failure::Redirect(Redirect { kind: RedirectKind::Moved, slot: 12182, ref to }))
                if to.host == "::1"
        ));
        assert_eq!(
            first_failure(&[Value::Okay, error_reply("WRONGTYPE Operation")]),
            Some(Failure::Store(StoreError::WrongType))
        );
        assert_eq!(first_failure(&[Value::Okay, Value::Int(1)]), None);
    }

    #[test]
    fn a_redirect_without_a_cluster_is_refused_with_the_fix() {
        let Some(redirect) = first_failure(&[error_reply("MOVED 1 10.0.0.2:6379")]) else {
            panic!("no failure");
        };
        let StoreError::Rejected(reason) = redirect.outside_a_cluster() else {
            panic!("not rejected");
        };
        assert!(reason.contains("10.0.0.2:6379"), "{reason}");
        assert!(reason.contains("redis+cluster://"), "{reason}");
    }

    #[test]
    fn a_malformed_redirect_is_an_ordinary_rejection() {
        assert!(matches!(
            first_failure(&[error_reply("MOVED nonsense")]),
            Some(Failure::Store(StoreError::Rejected(_)))
        ));
    }
}
