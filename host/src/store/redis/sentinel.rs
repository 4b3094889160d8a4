//! `redis+sentinel://` addresses: the master is found through Redis Sentinel, on every connect.
//!
//! `redis+sentinel://[user:pass@]sentinel1:port,sentinel2:port/MASTER_NAME[/db]`, and
//! `rediss+sentinel://…` for TLS: the sentinels and the master both reached over TLS and
//! verified with the same trust and client certificate (a deployment with `tls-replication yes`
//! serves them so). Each new connection asks the sentinels in turn
//! (`SENTINEL get-master-addr-by-name`) where the master is now, connects there, and checks
//! with `ROLE` that it really is a master (during a failover a sentinel can still name the old
//! one). The store retires its connection when it breaks and when a server answers `READONLY`
//! (a demoted master), so the next call finds the promoted replica without restarting the
//! host. The user and password are the master's; a sentinel is asked without them first, and
//! again with them only if it answers `NOAUTH` (sentinels with `requirepass`, commonly set to
//! the master's password), so a sentinel without a password, which refuses any `AUTH`, is
//! asked as before.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, Value};

use super::slots::NodeAddress;
use super::tls::Tls;

/// The sentinels to ask, and the master they watch.
#[derive(Debug, Clone)]
pub(crate) struct Sentinels {
    /// Sentinel addresses, asked in this order.
    addresses: Vec<NodeAddress>,
    /// The master's name in the sentinels' configuration.
    master: String,
    /// The address's user and password (no database: a sentinel has none), for sentinels
    /// that require them. Its `Debug` redacts the password.
    credentials: Option<RedisConnectionInfo>,
}

impl Sentinels {
    /// The sentinels at `addresses`, watching the master they call `master`; `settings` are
    /// the master's, whose user and password are offered to a sentinel that asks for them.
    pub(crate) fn new(
        addresses: Vec<NodeAddress>,
        master: String,
        settings: &RedisConnectionInfo,
    ) -> Self {
        let credentials = settings.password().map(|password| {
            let info = RedisConnectionInfo::default().set_password(password);
            match settings.username() {
                Some(user) => info.set_username(user),
                None => info,
            }
        });
        Self {
            addresses,
            master,
            credentials,
        }
    }

    /// Where the master is now, by the first sentinel that answers with an address (each
    /// asked over TLS when `tls` is given).
    pub(super) async fn master_address(
        &self,
        timeout: Duration,
        tls: Option<&Tls>,
    ) -> Result<(String, u16), String> {
        let mut failures = Vec::new();
        for sentinel in &self.addresses {
            let (host, port) = (&sentinel.host, sentinel.port);
            match tokio::time::timeout(timeout, self.ask(host, port, tls)).await {
                Ok(Ok(Some(address))) => return Ok(address),
                Ok(Ok(None)) => failures.push(format!(
                    "{host}:{port} does not know master {}",
                    self.master
                )),
                Ok(Err(error)) => failures.push(format!("{host}:{port}: {error}")),
                Err(_) => failures.push(format!("{host}:{port}: no answer within {timeout:?}")),
            }
        }
        Err(format!(
            "no sentinel named the master: {}",
            failures.join("; ")
        ))
    }

    async fn ask(
        &self,
        host: &str,
        port: u16,
        tls: Option<&Tls>,
    ) -> Result<Option<(String, u16)>, String> {
        let anonymous = RedisConnectionInfo::default();
        let reply = match self.query(host, port, tls, &anonymous).await {
            Err(Refusal::NoAuth(reason)) => match &self.credentials {
                Some(credentials) => self.query(host, port, tls, credentials).await,
                None => Err(Refusal::NoAuth(format!(
                    "{reason} (the sentinel requires a password and the address has none)"
                ))),
            },
            reply => reply,
        }
        .map_err(Refusal::into_reason)?;
        match reply {
            Value::Nil => Ok(None),
            Value::Array(items) => match items.as_slice() {
                [host, port] => {
                    let host: String =
                        redis::from_redis_value_ref(host).map_err(|e| e.to_string())?;
                    let port: String =
                        redis::from_redis_value_ref(port).map_err(|e| e.to_string())?;
                    let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
                    Ok(Some((host, port)))
                }
                _ => Err(format!("unexpected answer {items:?}")),
            },
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// `SENTINEL get-master-addr-by-name` on a new connection to one sentinel, authenticated
    /// with `settings`.
    async fn query(
        &self,
        host: &str,
        port: u16,
        tls: Option<&Tls>,
        settings: &RedisConnectionInfo,
    ) -> Result<Value, Refusal> {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|error| Refusal::Other(error.to_string()))?;
        let mut command = redis::cmd("SENTINEL");
        command.arg("get-master-addr-by-name").arg(&self.master);
        match tls {
            Some(tls) => {
                let stream = tls.connect(host, stream).await.map_err(Refusal::Other)?;
                one_request(stream, command, settings).await
            }
            None => one_request(stream, command, settings).await,
        }
    }

    /// For descriptions: the master's name and the sentinels.
    pub(super) fn describe(&self) -> String {
        let sentinels: Vec<String> = self.addresses.iter().map(ToString::to_string).collect();
        format!(
            "sentinel master {} via {}",
            self.master,
            sentinels.join(",")
        )
    }
}

/// Why a sentinel gave no answer: it wants a password, or anything else.
enum Refusal {
    /// `NOAUTH`: the sentinel requires a password.
    NoAuth(String),
    /// Unreachable, a TLS failure, a wrong password, any other error.
    Other(String),
}

impl Refusal {
    fn into_reason(self) -> String {
        match self {
            Self::NoAuth(reason) | Self::Other(reason) => reason,
        }
    }
}

/// Send one command on a fresh connection over `stream` (authenticated with `settings`) and
/// return its reply.
async fn one_request<S>(
    stream: S,
    command: redis::Cmd,
    settings: &RedisConnectionInfo,
) -> Result<Value, Refusal>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let refusal = |error: redis::RedisError| match error.code() {
        Some("NOAUTH") => Refusal::NoAuth(error.to_string()),
        _ => Refusal::Other(error.to_string()),
    };
    let (mut connection, driver) =
        MultiplexedConnection::new_with_config(settings, stream, AsyncConnectionConfig::new())
            .await
            .map_err(refusal)?;
    let driver = tokio::spawn(driver);
    let reply = command
        .query_async::<Value>(&mut connection)
        .await
        .map_err(refusal);
    driver.abort();
    reply
}

/// Whether the server behind `connection` is a master (`ROLE`'s first element).
pub(super) async fn is_master(connection: &mut MultiplexedConnection) -> Result<bool, String> {
    let role: Value = redis::cmd("ROLE")
        .query_async(connection)
        .await
        .map_err(|error| error.to_string())?;
    match role {
        Value::Array(items) => Ok(matches!(
            items.first(),
            Some(Value::BulkString(role)) if role == b"master"
        )),
        other => Err(format!("ROLE answered {other:?}")),
    }
}
